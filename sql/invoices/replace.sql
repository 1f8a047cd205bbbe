-- Replaces the invoice reconciliation of the periods $periods (TIMESTAMP[])
-- with `new_invoice_rows` (registered by invoices/run.py). Run inside one transaction.
DELETE FROM invoice_reconciliation WHERE period_start IN (SELECT unnest($periods::TIMESTAMP[]));
INSERT INTO invoice_reconciliation BY NAME SELECT * FROM new_invoice_rows;
