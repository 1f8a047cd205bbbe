"""Loads the project's SQL files (`sql/` at the repository root)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_ROOT = Path(__file__).resolve().parent.parent / "sql"


@cache
def load_sql(name: str) -> str:
    """Text of `sql/<name>`, e.g. `load_sql("ingest/validate.sql")`."""
    return (SQL_ROOT / name).read_text()


def render_sql(name: str, **params: str) -> str:
    """A SQL file with `{{placeholders}}` filled. Only for SQL fragments and
    literals the code itself builds (see `literal`); values go as `?`."""
    text = load_sql(name)
    for key, value in params.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise KeyError(f"unfilled placeholder in sql/{name}")
    return text


def literal(value: str) -> str:
    """A SQL string literal; DuckDB strings know no backslash escapes."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
