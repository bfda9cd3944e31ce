"""The search table of a build: what a feature search reads, in the shape it reads it.

``feature_stats`` holds one row per (feature, condition); a search needs, per feature, sums and maxima
over the conditions, i.e. a GROUP BY over millions of rows at 1M features. The search table holds one
row per feature with one group of columns per condition (``n{i}``, ``s{i}``, ``q{i}``, ``b{i}``,
``p{i}``: see ``features_db/queries/index_search_table.sql``), written once at build / merge time, so a
search is one scan (``select_search_agg_wide.sql``) with the same results.

Its name, ``search_<hash of the build id>_<hash of the conditions>``, carries a hash of the build's conditions (names, source hashes, completion times): a build that
gained a condition since has no current table, and searches read ``feature_stats`` as before until the
next build / merge writes one. Stale tables of the build are dropped when a new one is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re

from saesteer.index.db import IndexDb, load_query

log = logging.getLogger(__name__)
_NAME = re.compile(r"search_[0-9a-f]{16}_[0-9a-f]{12}")
_ROW = "FILTER (WHERE s.condition = $c{i})"  # the condition's row (at most one per feature)
COLUMNS = (  # name, value (0 / FALSE where the feature has no row in the condition)
    ("n{i}", f"coalesce(sum(s.n_active) {_ROW}, 0)::BIGINT"),
    ("s{i}", f"coalesce(sum(s.sum_act) {_ROW}, 0.0)::DOUBLE"),
    ("q{i}", f"coalesce(sum(s.sum_sq) {_ROW}, 0.0)::DOUBLE"),
    ("b{i}", f"coalesce(sum(s.n_bos_active) {_ROW}, 0)::BIGINT"),
    ("p{i}", f"count(*) {_ROW} > 0"),
)


def _prefix(build_id: str) -> str:
    """``search_<hash of the build id>_`` (any build id gives a valid table name)."""
    return f"search_{hashlib.sha256(build_id.encode()).hexdigest()[:16]}_"


def search_table_state(db: IndexDb, build_id: str) -> tuple[str, list[str]]:
    """The name the build's current search table has (or would have) and its condition order."""
    rows = db.query("index_search_table_key", {"build": build_id}).fetchall()
    key = hashlib.sha256(json.dumps([list(r) for r in rows]).encode()).hexdigest()[:12]
    return _prefix(build_id) + key, [str(r[0]) for r in rows]


def drop_search_tables(db: IndexDb, build_id: str) -> list[str]:
    """Drop every search table of the build (``saesteer index rm``); returns their names."""
    have = [str(r[0]) for r in db.query("index_search_tables", {"prefix": _prefix(build_id)}).fetchall()]
    for name in have:
        if _NAME.fullmatch(name):
            db.execute(f"DROP TABLE {name}")
    return have


def current_search_table(db: IndexDb, build_id: str) -> tuple[str, list[str]] | None:
    """``(table, conditions in column order)`` when the build has a current search table, else None."""
    name, conds = search_table_state(db, build_id)
    have = {str(r[0]) for r in db.query("index_search_tables", {"prefix": _prefix(build_id)}).fetchall()}
    return (name, conds) if name in have else None


def refresh_search_table(db: IndexDb, build_id: str) -> str | None:
    """Write the build's search table unless it is current; drop its stale ones. Returns its name
    (None for a build without conditions). Runs in one transaction."""
    name, conds = search_table_state(db, build_id)
    if not conds:
        return None
    assert _NAME.fullmatch(name)
    with db.transaction():
        have = [str(r[0]) for r in db.query("index_search_tables", {"prefix": _prefix(build_id)}).fetchall()]
        for old in have:
            if old != name and _NAME.fullmatch(old):
                db.execute(f"DROP TABLE {old}")
        if name in have:
            return name
        cols = ",\n    ".join(
            f"{expr.format(i=i)} AS {col.format(i=i)}" for i in range(len(conds)) for col, expr in COLUMNS
        )
        sql = load_query("index_search_table").replace("{{table}}", name).replace("{{columns}}", cols)
        db.execute(sql, {"build": build_id, **{f"c{i}": c for i, c in enumerate(conds)}})
    log.info("wrote the search table %s (%d conditions)", name, len(conds))
    return name
