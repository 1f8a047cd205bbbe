-- The lines SQL left unpriced (numbers out of HUGEINT's range), for Python.
SELECT price_id, unit_scale, q9 FROM projection_line_costs WHERE cost IS NULL
