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
