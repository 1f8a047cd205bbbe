-- Fills in the costs Python computed (TEMP projection_exact_costs).
UPDATE projection_line_costs AS l SET cost = e.cost
FROM projection_exact_costs e
WHERE l.price_id = e.price_id AND l.unit_scale = e.unit_scale AND l.q9 = e.q9::HUGEINT;
