"""Per-format readers: each turns one local file into the common raw-row
query that `sql/ledger/validate.sql` validates.

Every raw row has: row_number, raw, parse_error, and for each event field
its text and its kind (string | number | object | null | invalid). `raw` is
the line's text for JSONL and the row as a STRUCT otherwise, turned into JSON
text (`raw_text`) only for the rows that are quarantined. A NULL
row_number means "by position": the reader emits rows in file order and
they are numbered once staged, from `FIRST_ROW[format]`.
"""

from __future__ import annotations

import csv
import gzip
import io

import duckdb

from stripemeter_assets.warehouse import ident, literal, render_sql

# Landing field -> accepted column names (the contract's camelCase first).
FIELDS = {
    "tenant_id": ("tenantId", "tenant_id"),
    "metric": ("metric",),
    "customer_ref": ("customerRef", "customer_ref"),
    "quantity": ("quantity",),
    "ts": ("ts",),
    "idempotency_key": ("idempotencyKey", "idempotency_key"),
    "resource_id": ("resourceId", "resource_id"),
    "meta": ("meta",),
}
SUFFIXES = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonl.gz": "jsonl", ".ndjson.gz": "jsonl",
    ".csv": "csv", ".csv.gz": "csv",
    ".parquet": "parquet",
}
# JSONL lines count from 1; CSV rows count the header as 1.
FIRST_ROW = {"jsonl": 1, "csv": 2}
# Lines longer than MAX_LINE_BYTES reject their file. Files are read with the
# short limit first: DuckDB then splits even a 10 MB file across threads.
SHORT_LINE_BYTES = 2 << 20
MAX_LINE_BYTES = 16 << 20
# JSON never carries a raw control character, so no valid line contains it.
RECORD_SEPARATOR = "\x1e"


class UnreadableFile(Exception):
    """The file cannot be parsed at all; it is recorded as rejected."""


def detect_format(name: str) -> str | None:
    lower = name.lower()
    for suffix, fmt in SUFFIXES.items():
        if lower.endswith(suffix):
            return fmt
    return None


def rows_sql(conn: duckdb.DuckDBPyConnection, path: str, fmt: str, *, parallel: bool = True,
             max_line: int = MAX_LINE_BYTES) -> str:
    """`parallel=False` is for CSV files with quoted line breaks, which
    DuckDB's parallel CSV scanner refuses together with null padding."""
    if fmt == "jsonl":
        return render_sql(
            "ledger/rows_jsonl.sql",
            path=literal(path),
            delim=literal(RECORD_SEPARATOR),
            max_line=str(int(max_line)),
            compression="'gzip'" if path.lower().endswith(".gz") else "'none'",
        )
    if fmt == "csv":
        return _csv_rows(path, parallel, max_line)
    if fmt == "parquet":
        return _parquet_rows(conn, path)
    raise UnreadableFile(f"unsupported format {fmt!r}")


def raw_text(fmt: str) -> str:
    """The SQL expression giving the quarantined row's text from `raw`."""
    return "raw" if fmt == "jsonl" else "to_json(raw)::VARCHAR"


def columns_for(names: list[str]) -> dict[str, str]:
    present = {}
    for field, aliases in FIELDS.items():
        for alias in aliases:
            if alias in names:
                present[field] = alias
                break
    return present


def _csv_header(path: str) -> list[str]:
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as fh:
            header = next(csv.reader(io.StringIO(fh.readline())), None)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise UnreadableFile(f"cannot read CSV header: {exc}") from exc
    if not header:
        raise UnreadableFile("CSV file has no header row")
    return [h.strip().lstrip("\ufeff") for h in header]


def _csv_rows(path: str, parallel: bool, max_line: int) -> str:
    header = _csv_header(path)
    present = columns_for(header)
    col_types = ", ".join(f"{literal(h)}: 'VARCHAR'" for h in header)
    spill = [f"spill{i}" for i in range(4)]
    spill_types = ", ".join(f"'{s}': 'VARCHAR'" for s in spill)
    select = []
    for field in FIELDS:
        if field not in present:
            select.append(f"NULL::VARCHAR AS {field}, NULL::VARCHAR AS {field}_type")
            continue
        col = ident(present[field])
        if field == "meta":
            kind = (f"CASE WHEN nullif({col}, '') IS NULL THEN NULL "
                    f"WHEN json_valid({col}) AND json_type({col}) = 'OBJECT' THEN 'object' ELSE 'invalid' END")
            select.append(f"nullif({col}, '') AS meta, {kind} AS meta_type")
        else:
            select.append(f"nullif({col}, '') AS {field}, "
                          f"CASE WHEN nullif({col}, '') IS NOT NULL THEN 'string' END AS {field}_type")
    raw = "struct_pack(" + ", ".join(f"{ident(h)} := {ident(h)}" for h in header) + ")"
    spilled = " OR ".join(f"{s} IS NOT NULL" for s in spill)
    return f"""
        SELECT NULL::BIGINT AS row_number,
               {raw} AS raw,
               CASE WHEN {spilled} THEN 'malformed_row' END AS parse_error,
               {", ".join(select)}
        FROM read_csv({literal(path)}, columns = {{{col_types}, {spill_types}}}, header = true,
                      delim = ',', quote = '"', escape = '"', auto_detect = false,
                      null_padding = true, strict_mode = false, max_line_size = {int(max_line)},
                      parallel = {"true" if parallel else "false"})
    """


_TEXT = ("VARCHAR",)
_NUMBER_PREFIXES = ("DECIMAL", "DOUBLE", "FLOAT", "REAL", "BIGINT", "INTEGER", "SMALLINT", "TINYINT",
                    "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT", "UHUGEINT")


def _parquet_rows(conn: duckdb.DuckDBPyConnection, path: str) -> str:
    try:
        schema = conn.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(path)})").fetchall()
    except duckdb.Error as exc:
        raise UnreadableFile(f"not a readable Parquet file: {exc}") from exc
    types = {name: typ for name, typ, *_ in schema}
    present = columns_for(list(types))
    select = []
    for field in FIELDS:
        if field not in present:
            select.append(f"NULL::VARCHAR AS {field}, NULL::VARCHAR AS {field}_type")
            continue
        col, typ = ident(present[field]), types[present[field]].upper()
        if field == "ts" and typ.startswith("TIMESTAMP WITH TIME ZONE"):
            text, kind = f"strftime({col} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ')", "'string'"
        elif field == "ts" and typ.startswith("TIMESTAMP"):
            text, kind = f"strftime({col}::TIMESTAMP, '%Y-%m-%dT%H:%M:%S.%f')", "'string'"
        elif field == "meta" and (typ.startswith("STRUCT") or typ.startswith("MAP")):
            text, kind = f"to_json({col})::VARCHAR", "'object'"
        elif field == "meta" and typ in _TEXT:
            text = f"{col}"
            kind = f"CASE WHEN json_valid({col}) AND json_type({col}) = 'OBJECT' THEN 'object' ELSE 'invalid' END"
        elif typ in _TEXT:
            text, kind = col, "'string'"
        elif typ.startswith(_NUMBER_PREFIXES):
            text, kind = f"{col}::VARCHAR", "'number'"
        else:
            text, kind = f"{col}::VARCHAR", "'invalid'"
        select.append(f"{text} AS {field}, CASE WHEN {col} IS NOT NULL THEN {kind} END AS {field}_type")
    return f"""
        SELECT file_row_number + 1 AS row_number,
               struct_pack({", ".join(f"{ident(n)} := p.{ident(n)}" for n in types)}) AS raw,
               NULL::VARCHAR AS parse_error,
               {", ".join(select)}
        FROM read_parquet({literal(path)}, file_row_number = true) p
    """
