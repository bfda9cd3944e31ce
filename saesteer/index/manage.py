"""Managing the builds of an index: which are complete, and removing one.

A build is complete when every condition its last run planned has finished (``planned_conditions``,
schema 3). ``remove_build`` deletes every row of one build from every table (and drops its search
tables, :mod:`saesteer.index.search_table`) in one transaction; it
refuses while another process writes the file (DuckDB's lock) or while the process that is building it
still runs.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import NamedTuple

from saesteer.errors import DatabaseLockedError, IndexDbError
from saesteer.index.db import IndexDb
from saesteer.index.search_table import drop_search_tables

INTERRUPTED = "interrupted; rerun the same command to resume"


def _has_table(db: IndexDb, name: str) -> bool:
    return bool(db.query("select_has_table", {"name": name}).fetchall()[0][0])


def pending_conditions(db: IndexDb, build_prefix: str = "") -> dict[str, list[tuple[str, int, str]]]:
    """``{build_id: [(condition, pid, host), ...]}``: planned conditions that have not finished."""
    if not _has_table(db, "planned_conditions"):
        return {}
    out: dict[str, list[tuple[str, int, str]]] = {}
    for build_id, cond, pid, host in db.query("index_pending_conditions", [build_prefix]).fetchall():
        out.setdefault(str(build_id), []).append((str(cond), int(pid), str(host)))
    return out


def build_status(db: IndexDb, build_id: str, n_conditions: int, pending: list[str] | None) -> str:
    """``complete``, or ``interrupted; rerun the same command to resume (...)`` saying what is missing."""
    if pending:
        shown = ", ".join(pending[:4]) + (f" and {len(pending) - 4} more" if len(pending) > 4 else "")
        return f"{INTERRUPTED} ({len(pending)} condition(s) not finished: {shown})"
    if n_conditions == 0:
        return f"{INTERRUPTED} (no condition finished)"
    return "complete"


def _alive(pid: int, host: str) -> bool:
    """True if process ``pid`` runs on this machine (a process on another host cannot be checked: True)."""
    if host != socket.gethostname():
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Removed(NamedTuple):
    build_id: str
    rows: dict[str, int]


def remove_build(db_path: str | Path, build_id: str, *, wait_s: float = 2.0) -> Removed:
    """Delete build ``build_id`` (an id or unique prefix) from every table of the index, in one transaction.

    Refuses (:class:`DatabaseLockedError`) while another process writes the file or while the process
    that is building it is alive; an unknown or ambiguous id is an :class:`IndexDbError`.
    """
    from saesteer.index.shards import resolve_build_ids

    path = Path(db_path)
    if not path.exists():
        raise IndexDbError(f"no index at {path}")
    with IndexDb(path, read_only=True, wait_s=wait_s) as ro:  # resolve before taking the write lock
        (full,) = resolve_build_ids(ro, build_id)
    with IndexDb(path, wait_s=wait_s) as db:
        running = [(c, pid, host) for c, pid, host in pending_conditions(db, full).get(full, []) if _alive(pid, host)]
        if running:
            _, pid, host = running[0]
            raise DatabaseLockedError(
                f"build {full} is being built by process {pid} on {host} ({len(running)} condition(s) to go); "
                "wait for it to finish or stop it, then run `saesteer index rm` again"
            )
        tables = [str(r[0]) for r in db.query("index_build_tables").fetchall()]
        rows: dict[str, int] = {}
        with db.transaction():
            for table in tables:
                n = db.execute(f'DELETE FROM "{table}" WHERE build_id = ?', [full]).fetchall()
                rows[table] = int(n[0][0]) if n else 0
            for name in drop_search_tables(db, full):
                rows[f"{name} (dropped)"] = 1
    return Removed(full, rows)


__all__ = ["INTERRUPTED", "Removed", "build_status", "pending_conditions", "remove_build"]
