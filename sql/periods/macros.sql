-- The period-close rule for SQL: the twin of stripemeter_assets/periods/close.py.
-- A period closes when Stripe finalizes its invoice, at period_end + G.
CREATE OR REPLACE TEMP MACRO sm_closes_at(period_end, grace_us) AS
    make_timestamp(epoch_us(period_end) + grace_us);
