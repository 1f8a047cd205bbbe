-- Per-batch scratch tables (TEMP: they never outlive the connection, so a
-- crash leaves nothing behind in the warehouse).
CREATE OR REPLACE TEMP TABLE staged (
    file_seq        BIGINT,
    row_number      BIGINT,
    tenant_id       VARCHAR,
    metric          VARCHAR,
    customer_ref    VARCHAR,
    resource_id     VARCHAR,
    quantity        DECIMAL(38, 9),
    ts              TIMESTAMP,
    idempotency_key VARCHAR,
    key_hash        UBIGINT,
    key_derived     BOOLEAN,
    meta            VARCHAR,
    reason          VARCHAR,
    detail          VARCHAR,
    raw             VARCHAR
);

-- Staged rows not to append (verdicts.sql): duplicate | conflict, and the
-- first row with their key.
CREATE OR REPLACE TEMP TABLE verdicts (
    file_seq   BIGINT,
    row_number BIGINT,
    verdict    VARCHAR,
    first_file VARCHAR,
    first_row  BIGINT
);
