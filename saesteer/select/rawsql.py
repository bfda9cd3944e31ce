"""Raw SQL for power users, on a read-only, sandboxed connection: only reading statements are accepted.

The database file is opened read-only, which makes DuckDB refuse writes to it; statements that could
write elsewhere while the database stays untouched (``COPY ... TO``, ``EXPORT``, ``ATTACH``, ``SET``,
``INSTALL``...) are refused before they run, so ``saesteer sql`` can never change anything.

The connection is also a sandbox (:data:`SANDBOX`, DuckDB settings given when it is opened): no file
system or network access beyond the index itself (``read_csv('/etc/passwd')``, ``glob``, ``s3://``
are refused), no extension installing or loading, and the configuration is locked, so the user's SQL
cannot switch any of it back on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from saesteer.errors import IndexDbError
from saesteer.index.db import IndexDb

_READING = ("SELECT", "EXPLAIN")

SANDBOX: dict[str, Any] = {
    "enable_external_access": False,  # no files, URLs or databases other than the index
    "autoinstall_known_extensions": False,  # no network installs (s3://, https://)
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}  # then `SET lock_configuration = true` (after the progress bar is off): SET / RESET cannot undo them


def check_readonly_sql(sql: str) -> str:
    """``sql`` if it is exactly one reading statement (SELECT, WITH, FROM, SHOW, DESCRIBE, SUMMARIZE,
    EXPLAIN); otherwise :class:`IndexDbError` saying what was refused."""

    text = sql.strip()
    if not text:
        raise IndexDbError("empty SQL statement")
    try:
        stmts = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise IndexDbError(f"cannot parse the SQL: {_first_line(exc)}") from exc
    if len(stmts) != 1:
        raise IndexDbError(f"give exactly one statement ({len(stmts)} found)")
    kind = stmts[0].type.name
    if kind not in _READING:
        raise IndexDbError(
            f"refused: `saesteer sql` is read-only and only runs SELECT queries; this is a {kind} statement "
            "(to change an index use `saesteer index ...`)"
        )
    return text


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__


def run_readonly_sql(path: str | Path, sql: str, params: dict[str, Any] | None = None) -> Any:
    """Run one reading statement on a read-only connection to ``path``; returns a pandas DataFrame."""
    text = check_readonly_sql(sql)
    with IndexDb(path, read_only=True, config=SANDBOX) as db:
        db.quiet()
        db.execute("SET lock_configuration = true")
        try:
            return db.fetch_df(text, params or None)
        except IndexDbError as exc:
            cause = exc.__cause__
            if exc.sql is None:  # not the user's SQL failing (a damaged file, a lock): say it as it is
                raise
            if isinstance(cause, duckdb.PermissionException) or "disabled by configuration" in str(cause):
                raise IndexDbError(
                    "refused: `saesteer sql` sees only the index (no files, network or extensions): "
                    + _first_line(cause)
                ) from exc
            raise IndexDbError(f"the SQL failed: {_first_line(cause)}") from exc
