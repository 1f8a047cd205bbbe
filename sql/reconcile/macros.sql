-- A DECIMAL as report text: integral values without their zero decimals.
CREATE OR REPLACE TEMP MACRO sm_number(x) AS
    CASE WHEN x = trunc(x) THEN CAST(CAST(x AS HUGEINT) AS VARCHAR) ELSE CAST(x AS VARCHAR) END;
