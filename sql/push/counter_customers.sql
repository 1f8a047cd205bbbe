-- TEMP counter_customers: the Stripe customer of each customer ref of TEMP
-- {{counters}} that has one. A ref named in `stripe.customers` (TEMP
-- configured_customers) is that customer; a ref that is itself a Stripe id
-- (cus_…) is itself; any other ref is unmapped and has no row.
CREATE OR REPLACE TEMP TABLE counter_customers AS
SELECT r.customer_ref,
       coalesce(c.stripe_customer, CASE WHEN starts_with(r.customer_ref, 'cus_') THEN r.customer_ref END)
           AS stripe_customer
FROM (SELECT DISTINCT customer_ref FROM {{counters}}) r
LEFT JOIN configured_customers c USING (customer_ref)
WHERE c.stripe_customer IS NOT NULL OR starts_with(r.customer_ref, 'cus_')
