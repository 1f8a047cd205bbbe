-- A snapshot unit of a date (analytics/snapshot.py): the day itself from
-- `recent` on (the first of the month before the publication's as-of time,
-- the days late changes still reach), else its whole month, so that a long
-- history is a few dozen files.
CREATE OR REPLACE TEMP MACRO sm_unit(d, recent) AS
    CASE WHEN d >= recent THEN strftime(d, '%Y-%m-%d') ELSE strftime(d, '%Y-%m') END;
CREATE OR REPLACE TEMP MACRO sm_unit_first(d, recent) AS
    CASE WHEN d >= recent THEN d ELSE date_trunc('month', d)::DATE END;
CREATE OR REPLACE TEMP MACRO sm_unit_last(d, recent) AS
    CASE WHEN d >= recent THEN d ELSE last_day(d) END;
