"""The typed fast paths. Parquet: a file whose quantity and ts columns
already hold exact typed values is staged from those columns, without the
text round trip and the raw row of the exact path (`formats.rows_sql`); any
doubt sends the file to the exact path, so the ledger ends up with the same
rows either way.

Typed means: quantity an integer type, or a DECIMAL with at most 9
fractional and 29 integer digits; ts a TIMESTAMP or TIMESTAMP WITH TIME ZONE
between the years 1000 and 9999 (where the exact path's text round trip is
the identity). Other columns are read as the exact path reads them; a
column of another type sends the file the exact way.

The typed rows go through `sql/ledger/validate.sql` like every other file,
in one transaction; if any row gets a quarantine reason, it is rolled back
and the caller stages the file again through the exact path, which gives
every reason, raw text and row number.

JSONL (uncompressed) goes through DuckDB's multi-threaded JSON reader,
which parses each line once into VARCHAR fields (the exact path reads each
line as text, then extracts its fields and takes them apart), when a first
scan of the lines (`sql/ledger/jsonl_doubts.sql`) finds none that the reader
could read differently, such as a text field holding a number; its rows are
numbered by position like the exact path's, after a check that there is one
per line. pyarrow's JSON reader was tried before: on 2 cores it staged 1M
events in 4.0-4.3 s against 2.2-2.5 s for the exact path of then, and was
dropped.
"""

from __future__ import annotations

import re

import duckdb

from stripemeter_assets.ledger.formats import FIELDS, MAX_LINE_BYTES, RECORD_SEPARATOR, columns_for
from stripemeter_assets.warehouse import ident, literal, render_sql

_INTEGERS = ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


class NotClean(Exception):
    """The file needs the exact path."""


def stage_clean_file(conn: duckdb.DuckDBPyConnection, local: str, fmt: str, file_seq: int) -> bool:
    """Stages `local` through the typed path; False (nothing staged) when the
    file must go the exact path instead."""
    if fmt == "jsonl" and not local.lower().endswith(".gz"):
        lines = _jsonl_lines(conn, local)
        if lines is None:
            return False
        rows = render_sql("ledger/rows_jsonl_typed.sql", path=literal(local), max_line=str(MAX_LINE_BYTES))
        quantity_value, ts_value = "sm_decimal(quantity)", "sm_timestamp(ts)"
    elif fmt == "parquet":
        lines = None
    else:
        return False
    conn.execute("BEGIN TRANSACTION")
    try:
        if fmt == "parquet":
            rows, quantity_value, ts_value = _parquet_rows(conn, local)
        conn.execute(render_sql("ledger/validate.sql", rows=rows, raw_text="raw", file_seq=str(int(file_seq)),
                                quantity_value=quantity_value, ts_value=ts_value))
        [(total, bad)] = conn.execute("SELECT count(*), count(reason) FROM staged WHERE file_seq = ?",
                                      [file_seq]).fetchall()
        clean = bad == 0 and (lines is None or total == lines)
    except (NotClean, duckdb.ConversionException, duckdb.InvalidInputException, duckdb.IOException):
        clean = False
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT" if clean else "ROLLBACK")
    return clean


def _jsonl_lines(conn: duckdb.DuckDBPyConnection, path: str) -> int | None:
    """The number of lines of a JSONL file whose rows DuckDB's JSON reader
    gives exactly, else None."""
    sql = render_sql("ledger/jsonl_doubts.sql", path=literal(path), delim=literal(RECORD_SEPARATOR),
                     max_line=str(MAX_LINE_BYTES))
    try:
        [(lines, doubtful)] = conn.execute(sql).fetchall()
    except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.IOException):
        return None
    return lines if not doubtful else None


def _parquet_rows(conn: duckdb.DuckDBPyConnection, path: str) -> tuple[str, str, str]:
    """(rows query, quantity value, ts value) of a Parquet file: typed columns
    where their type holds the value exactly, else the exact path's texts."""
    try:
        schema = conn.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(path)})").fetchall()
    except duckdb.Error as exc:
        raise NotClean(str(exc)) from exc
    types = {name: typ.upper() for name, typ, *_ in schema}
    present = columns_for(list(types))
    select, quantity_value, ts_value = [], "sm_decimal(quantity)", "sm_timestamp(ts)"
    for field in FIELDS:
        if field not in present:
            select.append(f"NULL::VARCHAR AS {field}, NULL::VARCHAR AS {field}_type")
            continue
        col, typ = ident(present[field]), types[present[field]]
        decimal = _DECIMAL.fullmatch(typ)
        if field == "quantity" and (typ in _INTEGERS or (decimal and int(decimal[2]) <= 9
                                                         and int(decimal[1]) - int(decimal[2]) <= 29)):
            select.append(f"NULL::VARCHAR AS quantity, CASE WHEN {col} IS NOT NULL THEN 'number' END AS quantity_type, "
                          f"{col}::DECIMAL(38, 9) AS quantity_value")
            quantity_value = "quantity_value"
        elif field == "ts" and typ in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP"):
            instant = f"epoch_us({col})"
            select.append(f"NULL::VARCHAR AS ts, CASE WHEN {col} IS NOT NULL THEN 'string' END AS ts_type, "
                          # strftime's text of years outside 1000-9999 is read differently: exact path
                          f"CASE WHEN {instant} BETWEEN -30610224000000000 AND 253402300799999999 "
                          f"THEN make_timestamp({instant}) END AS ts_value")
            ts_value = "ts_value"
        elif field == "meta" or typ != "VARCHAR":
            raise NotClean(f"{field} is {typ}")
        else:
            select.append(f"{col} AS {field}, CASE WHEN {col} IS NOT NULL THEN 'string' END AS {field}_type")
    rows = f"""
        SELECT file_row_number + 1 AS row_number, NULL::VARCHAR AS raw, NULL::VARCHAR AS parse_error,
               {", ".join(select)}
        FROM read_parquet({literal(path)}, file_row_number = true)
    """
    return rows, quantity_value, ts_value
