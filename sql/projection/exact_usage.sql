-- The projections project.sql left to Python (past HUGEINT's range).
SELECT rowid AS rid, aggregation, value, elapsed_us, total_us FROM projection_stage WHERE exact
