-- The immutable ledger and its bookkeeping. Created on first connection;
-- every statement is idempotent.

-- One row per accepted usage event; never updated or deleted.
-- idempotency_key: the producer's key, or the derived key (DESIGN §2):
--   first 128 bits of SHA-256, lowercase hex.
-- seq: ingestion order (file_seq << 32 | row_number), the tie-break for `last`.
-- key_hash: 64 bits of md5(tenant_id ␟ idempotency_key) (sm_key_hash), only to find
--   candidate duplicates by scanning one narrow column; the exact
--   (tenant_id, idempotency_key) comparison always decides.
CREATE TABLE IF NOT EXISTS events (
    tenant_id       VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    customer_ref    VARCHAR NOT NULL,
    resource_id     VARCHAR,
    quantity        DECIMAL(38, 9) NOT NULL,
    ts              TIMESTAMP NOT NULL,   -- UTC, microseconds
    idempotency_key VARCHAR NOT NULL,
    key_hash        UBIGINT NOT NULL,
    key_derived     BOOLEAN NOT NULL,
    meta            JSON,
    source_file     VARCHAR NOT NULL,
    row_number      BIGINT NOT NULL,
    batch_id        VARCHAR NOT NULL,
    seq             BIGINT NOT NULL,
    ingested_at     TIMESTAMP NOT NULL
);

-- The ledger's key hashes in runs sorted by key_hash (ledger/key_runs.py),
-- so that finding a batch's keys reads the few row groups whose min/max
-- zone maps hold them instead of every key_hash of the ledger. A run holds
-- every event with seq in (the previous run's end, its end]; events after
-- event_keys_state.compacted_through (the ledger's tail) are looked up in
-- `events` itself, read by seq. Derived from `events`: rebuilt from it if lost.
CREATE TABLE IF NOT EXISTS event_keys (
    key_hash UBIGINT NOT NULL,
    seq      BIGINT NOT NULL
);

-- One row: the greatest seq covered by event_keys' runs. A warehouse from
-- before event_keys starts at -1 (its whole ledger is the tail, looked up as
-- before) and its next batch writes the runs.
CREATE TABLE IF NOT EXISTS event_keys_state (
    compacted_through BIGINT NOT NULL
);
INSERT INTO event_keys_state SELECT -1 WHERE NOT EXISTS (FROM event_keys_state);

-- Rows that could not be accepted, with the reason; never dropped.
CREATE TABLE IF NOT EXISTS quarantine (
    source_file     VARCHAR NOT NULL,
    row_number      BIGINT,               -- JSONL line; CSV row counting the header as 1; Parquet row from 1
    raw             VARCHAR,
    reason          VARCHAR NOT NULL,
    detail          VARCHAR,
    tenant_id       VARCHAR,
    idempotency_key VARCHAR,
    batch_id        VARCHAR NOT NULL,
    quarantined_at  TIMESTAMP NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS landing_file_seq START 1;

-- Every landing file seen, whether loaded, rejected or skipped as a re-drop.
CREATE TABLE IF NOT EXISTS landing_files (
    file_seq          BIGINT NOT NULL,
    path              VARCHAR NOT NULL,
    content_hash      VARCHAR NOT NULL,   -- sha256 of the bytes as stored
    format            VARCHAR NOT NULL,   -- jsonl | csv | parquet
    size_bytes        BIGINT,
    rows_total        BIGINT NOT NULL DEFAULT 0,
    rows_loaded       BIGINT NOT NULL DEFAULT 0,
    rows_duplicate    BIGINT NOT NULL DEFAULT 0,
    rows_quarantined  BIGINT NOT NULL DEFAULT 0,
    status            VARCHAR NOT NULL,   -- loaded | rejected | skipped
    error             VARCHAR,
    batch_id          VARCHAR NOT NULL,
    loaded_at         TIMESTAMP NOT NULL
);

-- A batch finds earlier loads of its files' content by hash through this
-- index (ledger/batch.py): a scan of every hash on record cost 30-50 ms a
-- batch at 1M landing files, and an API-fed ledger has one file per call.
CREATE INDEX IF NOT EXISTS landing_files_content_hash ON landing_files (content_hash);

-- Greatest event ts folded in so far, per counter (DESIGN §3).
CREATE TABLE IF NOT EXISTS watermarks (
    tenant_id    VARCHAR NOT NULL,
    metric       VARCHAR NOT NULL,
    customer_ref VARCHAR NOT NULL,
    watermark    TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, metric, customer_ref)
);

-- Events that arrived later than the lateness window. They stay in the
-- ledger but count only once a replay or backfill applies them.
CREATE TABLE IF NOT EXISTS late_events (
    tenant_id       VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    customer_ref    VARCHAR NOT NULL,
    idempotency_key VARCHAR NOT NULL,
    ts              TIMESTAMP NOT NULL,
    lateness        INTERVAL NOT NULL,    -- watermark at arrival minus ts
    status          VARCHAR NOT NULL,     -- pending | applied
    batch_id        VARCHAR NOT NULL,
    detected_at     TIMESTAMP NOT NULL,
    applied_at      TIMESTAMP,
    PRIMARY KEY (tenant_id, idempotency_key)
);

-- The UTC days each batch changed, written in the batch's transaction. The
-- watermark sensor learns them from the ingest run's materialization; if
-- that run died between the DuckDB commit and Dagster recording it, the next
-- ingest run announces the days again (announced_in = the run that last
-- announced them; confirmed once that run succeeded).
CREATE TABLE IF NOT EXISTS ingest_batches (
    batch_id     VARCHAR NOT NULL,
    days         VARCHAR[] NOT NULL,
    announced_in VARCHAR NOT NULL,
    confirmed    BOOLEAN NOT NULL DEFAULT false,
    created_at   TIMESTAMP NOT NULL
);

-- Parquet segments of the append-only tables (events, quarantine) written
-- for the analyst snapshot (stripemeter_assets/snapshot.py): each holds the
-- rows of one rowid range, written once. A compaction merges segments into
-- a new one and retires them; retired files are deleted once no snapshot a
-- reader may still hold refers to them.
CREATE TABLE IF NOT EXISTS snapshot_segments (
    table_name  VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    first_rowid BIGINT NOT NULL,
    last_rowid  BIGINT NOT NULL,
    rows        BIGINT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    retired_at  TIMESTAMP
);

-- Parquet files of the mutable tables that grow with the history
-- (daily_usage, stripe_pushes) written for the analyst snapshot, one per
-- unit of days (a day, or a whole month once it is old): each holds the rows
-- of its unit as of `signature` (analytics/units_<table>.sql); a unit whose
-- signature moved on is written again and its old file retired, like a
-- segment.
CREATE TABLE IF NOT EXISTS snapshot_unit_files (
    table_name VARCHAR NOT NULL,
    path       VARCHAR NOT NULL,
    unit       VARCHAR NOT NULL,  -- 2025-03-14 (a day) or 2025-01 (a month)
    signature  VARCHAR NOT NULL,
    rows       BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);
