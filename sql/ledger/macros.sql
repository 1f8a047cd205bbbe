-- Parsing helpers for staging, created with the schema (warehouse.SCHEMA_MACROS).

-- A plain decimal text ("-12.50") -> DECIMAL(38,9), or NULL when it does not
-- fit exactly (more than 29 integer or 9 fractional significant digits):
-- DuckDB's cast would silently round extra fractional digits. The length
-- tests first: rtrim copies the text.
CREATE OR REPLACE MACRO sm_plain_decimal(t) AS (
    CASE
        WHEN strpos(t, '.') = 0 OR strlen(t) - strpos(t, '.') <= 9 THEN TRY_CAST(t AS DECIMAL(38, 9))
        WHEN length(rtrim(t, '0')) - strpos(t, '.') > 9 THEN NULL
        ELSE TRY_CAST(t AS DECIMAL(38, 9))
    END
);

-- Exponent notation ("1.5e-3") rewritten as plain decimal text by moving the
-- point in the digit string, so no float ever touches the value.
CREATE OR REPLACE MACRO sm_place_point(sign, digits, point) AS (
    CASE
        WHEN ltrim(digits, '0') = '' THEN '0'
        -- beyond this the value is out of DECIMAL(38,9) range either way
        WHEN point IS NULL OR abs(point) > 80 THEN NULL
        WHEN point <= 0 THEN sign || '0.' || repeat('0', -point) || digits
        WHEN point >= length(digits) THEN sign || digits || repeat('0', point - length(digits))
        ELSE sign || substr(digits, 1, point) || '.' || substr(digits, point + 1)
    END
);

-- Leading zeros of the integer part are dropped first, so they never push
-- the point out of range. The parts go through a lambda so each regex is
-- bound once: a macro argument is expanded at every use, and sm_place_point
-- uses its arguments a dozen times (binding those regexes cost ~80 ms per
-- batch, whatever its size).
CREATE OR REPLACE MACRO sm_expand_exponent(t) AS (
    list_transform([{'sign': regexp_extract(t, '^([+-]?)', 1),
                     'whole': ltrim(regexp_extract(t, '^[+-]?([0-9]*)', 1), '0'),
                     'fraction': regexp_extract(t, '^[+-]?[0-9]*\.?([0-9]*)[eE]', 1),
                     'exponent': TRY_CAST(regexp_extract(t, '[eE]([+-]?[0-9]+)$', 1) AS INTEGER)}],
                   lambda p: sm_place_point(p.sign, p.whole || p.fraction, length(p.whole) + p.exponent))[1]
);

CREATE OR REPLACE MACRO sm_decimal(t) AS (
    CASE
        WHEN t IS NULL THEN NULL
        -- the cheap test first: the exponent regex is costly on every row
        -- (a macro argument is expanded at every use, so trim only when needed)
        WHEN NOT (contains(t, 'e') OR contains(t, 'E')) THEN
            CASE WHEN starts_with(t, ' ') OR ends_with(t, ' ') THEN sm_plain_decimal(trim(t)) ELSE sm_plain_decimal(t) END
        WHEN regexp_full_match(trim(t), '[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+')
            THEN list_transform([sm_expand_exponent(trim(t))], lambda e: sm_plain_decimal(e))[1]
    END
);

-- RFC 3339 text -> UTC TIMESTAMP. Through TIMESTAMPTZ, because a straight
-- cast to TIMESTAMP drops the offset; naive text is UTC (the session
-- TimeZone). The shape test (date, T or space, time) is positional rather
-- than a regex, and the instant goes through epoch microseconds rather than
-- AT TIME ZONE: both are several times cheaper per row.
CREATE OR REPLACE MACRO sm_timestamp(t) AS (
    CASE WHEN (t LIKE '____-__-__T__:__:__%Z' AND substr(t, -3, 1) <> ':')  -- the common shape, tested cheaply
              OR (length(t) >= 19 AND substr(t, 5, 1) = '-' AND substr(t, 8, 1) = '-'
                  AND substr(t, 11, 1) IN ('T', 't', ' ') AND substr(t, 14, 1) = ':' AND substr(t, 17, 1) = ':'
                  -- DuckDB would take +24:00 or -99:99 and move the instant
                  AND (substr(t, -6, 1) NOT IN ('+', '-') OR substr(t, -3, 1) <> ':'
                       OR (TRY_CAST(substr(t, -5, 2) AS INTEGER) <= 23 AND TRY_CAST(substr(t, -2, 2) AS INTEGER) <= 59)))
         THEN make_timestamp(epoch_us(TRY_CAST(t AS TIMESTAMPTZ))) END
);

-- The canonical quantity text of the derived key: no exponent, no trailing
-- fractional zeros, no trailing point.
CREATE OR REPLACE MACRO sm_canonical_quantity(q) AS (
    CASE WHEN q = 0 THEN '0' ELSE rtrim(rtrim(q::VARCHAR, '0'), '.') END
);

-- DESIGN §2 derived key; keys.py holds the Python twin.
CREATE OR REPLACE MACRO sm_derived_key(tenant_id, metric, customer_ref, resource_id, ts, quantity) AS (
    substr(sha256(concat_ws(chr(31), tenant_id, metric, customer_ref, coalesce(resource_id, ''),
                            epoch_us(ts)::VARCHAR, sm_canonical_quantity(quantity))), 1, 32)
);

-- events.key_hash: 64 bits of md5 (the upper half of md5_number, as
-- md5_number_lower gives, at a fifth of its cost), only to find candidate
-- duplicates; the exact (tenant_id, idempotency_key) comparison decides.
CREATE OR REPLACE MACRO sm_key_hash(tenant_id, idempotency_key) AS (
    (md5_number(tenant_id || chr(31) || idempotency_key) >> 64)::UBIGINT
);

-- Kind of a JSON value text from json_extract: string, number, object, ...
-- NULL when the field is absent.
CREATE OR REPLACE MACRO sm_json_kind(j) AS (
    CASE left(j, 1)
        WHEN '"' THEN 'string' WHEN '{' THEN 'object' WHEN '[' THEN 'array'
        WHEN 't' THEN 'boolean' WHEN 'f' THEN 'boolean' WHEN 'n' THEN 'null'
        ELSE CASE WHEN j IS NOT NULL THEN 'number' END
    END
);

-- The text of a JSON value: strings unquoted (unescaped only when needed),
-- null as absent, anything else as written.
CREATE OR REPLACE MACRO sm_json_text(j) AS (
    CASE
        WHEN j = 'null' THEN NULL
        WHEN left(j, 1) <> '"' THEN j
        WHEN contains(j, '\') THEN json_extract_string(j, '$')
        ELSE substr(j, 2, length(j) - 2)
    END
);

-- The same kinds from a json_type (the typed JSONL reader's fields); numbers
-- too large for 64 bits keep their text and are typed DOUBLE.
CREATE OR REPLACE MACRO sm_json_type_kind(t) AS (
    CASE t
        WHEN 'VARCHAR' THEN 'string' WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array'
        WHEN 'BOOLEAN' THEN 'boolean' WHEN 'NULL' THEN 'null'
        ELSE CASE WHEN t IS NOT NULL THEN 'number' END
    END
);
