-- The distinct quantities to price: usage to date and projected usage of
-- every priced counter with no negative usage.
CREATE OR REPLACE TEMP TABLE projection_lines AS
SELECT DISTINCT price_id, unit_scale, q9 FROM (
    SELECT price_id, unit_scale, v9 AS q9 FROM projection_stage
    WHERE sm_priceable(price_id, v9, projected9)
    UNION ALL
    SELECT price_id, unit_scale, projected9 FROM projection_stage
    WHERE sm_priceable(price_id, v9, projected9) AND projected9 IS NOT NULL
)
