"""Loads the project's SQL files (`sql/` at the repository root)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SQL_ROOT = Path(__file__).resolve().parent.parent / "sql"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@cache
def load_sql(name: str) -> str:
    """Text of `sql/<name>`, e.g. `load_sql("ingest/validate.sql")`."""
    return (SQL_ROOT / name).read_text()


def render_sql(name: str, **params: str) -> str:
    """A SQL file with `{{placeholders}}` filled in one pass, so text inside
    a filled value (a file name, a CSV header) is never read as a
    placeholder. Only for SQL fragments and literals the code itself builds
    (see `literal`); values go as `?` or `$name`."""
    return _PLACEHOLDER.sub(lambda m: params[m.group(1)], load_sql(name))


def literal(value: str) -> str:
    """A SQL string literal; DuckDB strings know no backslash escapes."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
