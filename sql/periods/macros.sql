-- The period-close rule for SQL: the twin of stripemeter_assets/periods/close.py.
-- A period closes when Stripe finalizes its invoice, at period_end + G.
CREATE OR REPLACE TEMP MACRO sm_closes_at(period_end, grace_us) AS
    make_timestamp(epoch_us(period_end) + grace_us);

-- A counter's total in the units Stripe holds (floor(unit_scale × value)) as
-- of $now: for a closed period, its total at close (the changes recorded
-- since, `since_close`, are carried forward instead). Python's twin:
-- push/planner.py (`scaled` of the value less since_close once closed).
CREATE OR REPLACE TEMP MACRO sm_units_at_close(value, since_close, period_end, grace_us, unit_scale, now) AS
    CAST(floor((value - CASE WHEN now >= sm_closes_at(period_end, grace_us) THEN since_close ELSE 0 END)
               * unit_scale) AS HUGEINT);
