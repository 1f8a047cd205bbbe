-- Stripe customers (per mode and account) a push was acknowledged for and
-- that no error report has since called unknown: the push does not look
-- them up again before sending (a customer deleted later is caught by
-- Stripe's error reports, and then looked up before every send again).
SELECT DISTINCT p.mode, p.account, p.stripe_customer
FROM stripe_pushes p
WHERE p.status = 'acknowledged'
  AND NOT EXISTS (SELECT 1 FROM stripe_pushes r
                  WHERE r.mode = p.mode AND r.account = p.account AND r.stripe_customer = p.stripe_customer
                    AND r.status = 'rejected_by_stripe' AND r.last_error LIKE 'meter_event_customer_not_found%')
