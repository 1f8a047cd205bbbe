-- Replaces the period's rows of `reconciliation` with the TEMP table
-- reconciliation_rows; run in one transaction.
DELETE FROM reconciliation WHERE period_start = $period_start;

INSERT INTO reconciliation BY NAME SELECT * FROM reconciliation_rows
