"""Raw SQL for power users, on a read-only connection: only reading statements are accepted.

The database file is opened read-only, which makes DuckDB refuse writes to it; statements that could
write elsewhere while the database stays untouched (``COPY ... TO``, ``EXPORT``, ``ATTACH``, ``SET``,
``INSTALL``...) are refused before they run, so ``saesteer sql`` can never change anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from saesteer.errors import IndexDbError
from saesteer.index.db import IndexDb

_READING = ("SELECT", "EXPLAIN")


def check_readonly_sql(sql: str) -> str:
    """``sql`` if it is exactly one reading statement (SELECT, WITH, FROM, SHOW, DESCRIBE, SUMMARIZE,
    EXPLAIN); otherwise :class:`IndexDbError` saying what was refused."""
    import duckdb

    text = sql.strip()
    if not text:
        raise IndexDbError("empty SQL statement")
    try:
        stmts = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise IndexDbError(f"cannot parse the SQL: {exc}", text) from exc
    if len(stmts) != 1:
        raise IndexDbError(f"give exactly one statement ({len(stmts)} found)", text)
    kind = stmts[0].type.name
    if kind not in _READING:
        raise IndexDbError(
            f"refused: `saesteer sql` is read-only and only runs SELECT queries; this is a {kind} statement "
            "(to change an index use `saesteer index ...`)",
            text,
        )
    return text


def run_readonly_sql(path: str | Path, sql: str, params: dict[str, Any] | None = None) -> Any:
    """Run one reading statement on a read-only connection to ``path``; returns a pandas DataFrame."""
    text = check_readonly_sql(sql)
    with IndexDb(path, read_only=True) as db:
        db.quiet()
        return db.fetch_df(text, params or None)
