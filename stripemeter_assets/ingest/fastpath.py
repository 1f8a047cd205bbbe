"""The typed fast path: files that parse cleanly are read by a typed,
multi-threaded reader and staged without the per-row text work of the exact
path (`formats.rows_sql`); any doubt sends the file to the exact path, so the
ledger ends up with the same rows either way.

- JSONL (uncompressed): pyarrow's JSON reader, with every field a string
  except `quantity`, read as DECIMAL(38,9) from the number's (or string's)
  own text: a value that does not fit exactly fails the read. Unknown
  fields, `meta`, repeated keys, nested values and wrong types fail it too.
  Row numbers are line numbers, so the bytes are checked first: every line
  starts with `{` (pyarrow skips blank lines and reads two objects on one
  line as two rows; the row count must equal the line count), no `\\r`
  (DuckDB's line reader splits there), no backslash (escapes are unescaped
  by two different parsers), no quantity with an exponent or 30 integer
  digits (see _RISKY_QUANTITY).
- Parquet: DuckDB's reader, with quantity and ts taken from their typed
  columns when the type holds them exactly (integers, DECIMAL with at most
  9 fractional and 29 integer digits, timestamps between years 1000 and
  9999), and no raw row text built.

The typed rows go through `sql/ingest/validate.sql` like every other file.
The whole file is staged in one transaction; if any row gets a quarantine
reason, it is rolled back and the caller stages the file again through the
exact path, which then gives every reason, raw text and row number.
"""

from __future__ import annotations

import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from stripemeter_assets.ingest.formats import FIELDS, _columns_for
from stripemeter_assets.sqlfiles import ident, literal, render_sql

# The contract's JSONL fields but `meta`, which is left to the exact path
# (it keeps meta's JSON text as DuckDB writes it).
JSONL_SCHEMA = pa.schema([("tenantId", pa.string()), ("metric", pa.string()), ("customerRef", pa.string()),
                          ("quantity", pa.decimal128(38, 9)), ("ts", pa.string()),
                          ("idempotencyKey", pa.string()), ("resourceId", pa.string())])
# Bytes handed to the reader at once (bounds the memory of a large file);
# a line longer than one pyarrow block fails the read and goes the exact way.
CHUNK_BYTES = 128 << 20
BLOCK_BYTES = 1 << 20
# pyarrow scales a decimal up to the column's scale without an overflow
# check: a quantity with 30 integer digits, or with an exponent, could wrap
# around to a wrong value instead of failing (quantity is the only key that
# can be followed by a number, and no string holds a quote).
_RISKY_QUANTITY = r'"quantity"\s*:\s*"?\s*[-+]?(?:[0-9.]*[eE]|[0-9]{30})'
_INTEGERS = ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
VIEW = "sm_fast_rows"


class NotClean(Exception):
    """The file needs the exact path."""


def stage_clean_file(conn: duckdb.DuckDBPyConnection, local: str, fmt: str, file_seq: int) -> bool:
    """Stages `local` through the typed path; False (nothing staged) when the
    file must go the exact path instead."""
    if fmt == "jsonl" and not local.lower().endswith(".gz"):
        sources = _jsonl_tables(local)
    elif fmt == "parquet":
        sources = iter([None])
    else:
        return False
    conn.execute("BEGIN TRANSACTION")
    try:
        for table in sources:
            if table is None:
                rows, quantity_value, ts_value = _parquet_rows(conn, local)
            else:
                conn.register(VIEW, table)
                rows = render_sql("ingest/rows_typed_jsonl.sql", source=VIEW)
                quantity_value, ts_value = "quantity_value", "sm_timestamp(ts)"
            conn.execute(render_sql("ingest/validate.sql", rows=rows, raw_text="raw", file_seq=str(int(file_seq)),
                                    quantity_value=quantity_value, ts_value=ts_value))
        [(bad,)] = conn.execute("SELECT count(*) FROM staged WHERE file_seq = ? AND reason IS NOT NULL",
                                [file_seq]).fetchall()
    except (NotClean, pa.ArrowException, UnicodeDecodeError, duckdb.ConversionException, duckdb.InvalidInputException,
            duckdb.IOException):
        bad = -1
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT" if bad == 0 else "ROLLBACK")
    conn.unregister(VIEW)
    return bad == 0


def _jsonl_tables(path: str):
    """The file as Arrow tables of at most CHUNK_BYTES each, cut at line ends,
    with the typed fields renamed as validate.sql reads them."""
    first_row = 1
    carry = b""
    with open(path, "rb") as fh:
        while True:
            block = fh.read(CHUNK_BYTES)
            data = carry + block if carry else block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    raise NotClean("a line longer than a chunk")
                data, carry = data[:cut], data[cut:]
            elif not data:
                if first_row == 1:
                    raise NotClean("empty file")
                return
            else:
                carry = b""
            lines = _check_lines(data)
            table = pa_json.read_json(
                pa.BufferReader(data), read_options=pa_json.ReadOptions(block_size=BLOCK_BYTES),
                parse_options=pa_json.ParseOptions(explicit_schema=JSONL_SCHEMA, unexpected_field_behavior="error"))
            if table.num_rows != lines:
                raise NotClean("rows and lines differ")
            yield table.append_column("row_number", pa.array(np.arange(first_row, first_row + lines, dtype=np.int64)))
            first_row += lines
            if not block:
                return


def _check_lines(data: bytes) -> int:
    """The number of lines of a chunk that ends at a line end (or at the
    file's end), if every line starts with `{`, no byte is a backslash or a
    carriage return and no quantity risks pyarrow's decimal conversion.
    pyarrow then gives at least one row per line, so as many rows as lines
    means exactly one row per line."""
    if b"\\" in data or b"\r" in data:
        raise NotClean("escaped strings or carriage returns")
    newlines = data.count(b"\n")
    open_end = not data.endswith(b"\n")
    if data[:1] != b"{" or data.count(b"\n{") != newlines - (not open_end):
        raise NotClean("blank or indented lines")
    text = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, len(data)], dtype=np.int64)), pa.py_buffer(data)])
    if pc.match_substring_regex(text, _RISKY_QUANTITY)[0].as_py():
        raise NotClean("a quantity with an exponent or 30 integer digits")
    return newlines + open_end


def _parquet_rows(conn: duckdb.DuckDBPyConnection, path: str) -> tuple[str, str, str]:
    """(rows query, quantity value, ts value) of a Parquet file: typed columns
    where their type holds the value exactly, else the exact path's texts."""
    try:
        schema = conn.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(path)})").fetchall()
    except duckdb.Error as exc:
        raise NotClean(str(exc)) from exc
    types = {name: typ.upper() for name, typ, *_ in schema}
    present = _columns_for(list(types))
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
