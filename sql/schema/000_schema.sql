-- The fingerprint of the schema files last run on this warehouse
-- (warehouse.ensure_schema): a connection whose code carries the same files
-- skips them. Every file is idempotent (IF NOT EXISTS), so a changed or
-- missing fingerprint only means running them all again.
CREATE TABLE IF NOT EXISTS schema_fingerprint (
    fingerprint VARCHAR NOT NULL,
    applied_at  TIMESTAMP NOT NULL
);
