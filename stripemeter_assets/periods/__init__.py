"""Billing periods: Stripe's per-customer periods (`billing_periods`), the calendar-month
fallback, and the one rule for when a period closes (`close`)."""
