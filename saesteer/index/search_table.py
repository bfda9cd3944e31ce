"""The search tables of a build: what a feature search reads, in the shape it reads it.

``feature_stats`` holds one row per (feature, condition), written condition by condition; a search needs,
per feature, sums and maxima over the conditions, i.e. a GROUP BY over millions of rows at 1M features,
and then every row of the few features it returns, scattered over the whole table. Written once at
build / merge time, two tables make both cheap with the same results:

- the *search table* ``search_<b>_<k>``: one row per feature (that has a row in the build), sorted by
  feature, one group of columns per condition (``n{i}``, ``s{i}``, ``q{i}``, ``b{i}``, ``p{i}``; see
  ``features_db/queries/index_search_table.sql``) plus what every search would otherwise recompute from
  them (:data:`DERIVED`: the active-token count summed over each label's non-random conditions, over all
  non-random ones and over every condition, the BOS count, the dense-filter inputs, the default score and
  random-token verdict per condition), and the stored logit-lens tokens. A search is one scan of a few of
  its columns (``select_search_agg_wide.sql``);
- its *rows table* ``search_<b>_<k>_rows``: the build's ``feature_stats`` rows clustered by feature
  (``index_search_rows.sql``), so the detail of the returned features (``select_detail_rows.sql``) reads a
  few row groups instead of the whole of ``feature_stats``;
- its *conditions table* ``search_<b>_<k>_conds``: per condition, what every default search of that
  target computes over all features (:class:`CondFacts`: its filter step counts, and the default score of
  its 1000th best feature, with which it sorts a thousand rows instead of all).

Their name carries a hash of the build id and of the build's conditions (names, source hashes, completion
times, token counts) and of :data:`LAYOUT`: a build that gained a condition since (or tables written by
an older saesteer) has no current tables, and searches read ``feature_stats`` as before until the next
build / merge writes them. Stale tables of the build are dropped when new ones are written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field, replace

from saesteer.index.db import IndexDb, load_query

log = logging.getLogger(__name__)
LAYOUT = 6  # bump when the tables' columns change: older tables become stale (rewritten by the next build)
_NAME = re.compile(r"search_[0-9a-f]{16}_[0-9a-f]{12}(_rows|_conds)?")
_ROW = "FILTER (WHERE s.condition = $c{i})"  # the condition's row (at most one per feature)
COLUMNS = (  # name, value (0 / FALSE where the feature has no row in the condition)
    ("n{i}", f"coalesce(sum(s.n_active) {_ROW}, 0)::BIGINT"),
    ("s{i}", f"coalesce(sum(s.sum_act) {_ROW}, 0.0)::DOUBLE"),
    ("q{i}", f"coalesce(sum(s.sum_sq) {_ROW}, 0.0)::DOUBLE"),
    ("b{i}", f"coalesce(sum(s.n_bos_active) {_ROW}, 0)::BIGINT"),
    ("p{i}", f"count(*) {_ROW} > 0"),
)
DERIVED = ("g{j}_n", "nr_n", "a_n", "bos_n", "nr_rows", "nr_min_freq", "z{i}", "k{i}")  # see derived_columns
STORED_ALPHA = 0.5  # the z{i} columns hold the default ranking, log_odds_z with this smoothing
STORED_RANDOM_RELATIVE = 0.2  # the k{i} columns hold the default random-token filter, with this ratio
CUT_RANK = 1000  # the conditions table holds, per condition, the stored score of its CUT_RANK-th best feature


def random_relative_sql(r_max_freq: str, t_n: str, tok_t: str, ratio: str) -> str:
    """The SQL of LangFIR's relative random-token test (keep a feature whose frequency on every random
    condition is at most ``ratio`` x its frequency on the target; :class:`saesteer.select.filters.DropRandom`):
    the one text the search compiles and the stored ``k{i}`` columns are computed with."""
    return f"{r_max_freq} <= {ratio} * {t_n} / {tok_t}"


def log_odds_z_sql(t_n: str, c_n: str, tok_t: str, tok_c: str, alpha: str) -> str:
    """The SQL of the smoothed log-odds over its standard error (the default ranking,
    :class:`saesteer.select.ranking.LogOddsZ`), over these operands: the one text the search compiles and the
    search table's stored ``z{i}`` columns are computed with, so both give the same bits."""
    a = alpha
    lo = f"(ln(({t_n} + {a}) / ({tok_t} - {t_n} + {a})) - ln(({c_n} + {a}) / ({tok_c} - {c_n} + {a})))"
    var = (f"(1.0 / ({t_n} + {a}) + 1.0 / ({tok_t} - {t_n} + {a}) + 1.0 / ({c_n} + {a}) + "
           f"1.0 / ({tok_c} - {c_n} + {a}))")
    return f"{lo} / sqrt({var})"


@dataclass(frozen=True)
class CondFacts:
    """What every default search of one target (log_odds_z against the rest of its label, the default
    random-token filter) computes over all features, stored at build time (the conditions table).

    ``cut``: the stored score of the target's ``rank``-th best feature among those the default filters keep
    (None when fewer are kept). A top-k search over the stored score with ``k <= rank`` first sorts only
    the features scoring at least ``cut`` (a filter the scan applies before sorting): when at least ``k``
    of them pass its filters they hold its exact top k; else it runs again without the cut.
    ``n_rows``, ``n_active``, ``n_kept``: the features with a row in the build, those active on the target,
    those the default filters keep (None without random conditions): the default search's step counts."""

    rank: int
    cut: float | None
    n_rows: int
    n_active: int
    n_kept: int | None


@dataclass(frozen=True)
class SearchTable:
    """A build's current search tables and the conditions of their columns (column group ``i`` is
    ``conditions[i]``, ordered by name), with what the derived columns sum over."""

    name: str
    conditions: tuple[str, ...]
    n_tokens: tuple[int, ...]
    is_random: tuple[bool, ...]
    label_keys: tuple[str, ...]
    conds: dict[int, CondFacts] = field(default_factory=dict, compare=False)  # the conditions table, by i

    @property
    def rows(self) -> str:
        """The rows table (``feature_stats`` of the build clustered by feature)."""
        return self.name + "_rows"

    @property
    def conds_table(self) -> str:
        """The conditions table: :class:`CondFacts` of every condition with a stored score."""
        return self.name + "_conds"

    @property
    def nonrandom(self) -> tuple[int, ...]:
        return tuple(i for i, r in enumerate(self.is_random) if not r)

    def count_sums(self) -> dict[frozenset[int], str]:
        """``{condition indices: column}``: the stored sums of ``n{i}`` (exact integers, so a search's sum over
        a set, or that sum minus the target's count, reads one column instead of one per condition)."""
        out: dict[frozenset[int], str] = {}
        keys = sorted({self.label_keys[i] for i in self.nonrandom})
        for j, key in enumerate(keys):
            out.setdefault(frozenset(i for i in self.nonrandom if self.label_keys[i] == key), f"g{j}_n")
        out.setdefault(frozenset(self.nonrandom), "nr_n")
        out.setdefault(frozenset(range(len(self.conditions))), "a_n")
        return {k: v for k, v in out.items() if k}

    def rest(self, i: int) -> tuple[int, ...]:
        """The conditions ``against="rest"`` contrasts condition ``i`` with: the other non-random ones of its label."""
        return tuple(j for j in self.nonrandom if j != i and self.label_keys[j] == self.label_keys[i])

    @property
    def random(self) -> tuple[int, ...]:
        return tuple(i for i, r in enumerate(self.is_random) if r)

    def stored_keeps(self) -> dict[int, str]:
        """``{i: column}``: the conditions whose default random-token verdict is stored (``k{i}``, see
        :data:`STORED_RANDOM_RELATIVE`): every non-random one, when the build has random conditions."""
        return {i: f"k{i}" for i in self.nonrandom} if self.random else {}

    def stored_scores(self) -> dict[int, str]:
        """``{i: column}``: the conditions whose default score against the rest of their label is stored
        (``z{i}``: log_odds_z with alpha :data:`STORED_ALPHA`), i.e. every non-random one with a rest."""
        return {i: f"z{i}" for i in self.nonrandom if self.rest(i)}

    def inv_n(self, i: int) -> float:
        """``1 / n_tokens`` of condition ``i`` (the bound value every frequency is computed with)."""
        return 1.0 / max(self.n_tokens[i], 1)


def _prefix(build_id: str) -> str:
    """``search_<hash of the build id>_`` (any build id gives a valid table name)."""
    return f"search_{hashlib.sha256(build_id.encode()).hexdigest()[:16]}_"


def _state(db: IndexDb, build_id: str) -> tuple[SearchTable, set[str]]:
    """The build's current search table (present or not) as its conditions define it, and the names of
    the build's search tables present (one query)."""
    rows = db.query("index_search_table_key", {"build": build_id, "prefix": _prefix(build_id)}).fetchall()
    key = hashlib.sha256(json.dumps([LAYOUT, *[list(r[:6]) for r in rows]]).encode()).hexdigest()[:12]
    table = SearchTable(
        _prefix(build_id) + key,
        tuple(str(r[0]) for r in rows),
        tuple(int(r[3]) for r in rows),
        tuple(bool(r[4]) for r in rows),
        tuple(str(r[5]) for r in rows),
    )
    return table, set(rows[0][6] or []) if rows else set()


def search_table_state(db: IndexDb, build_id: str) -> SearchTable:
    """The build's current search table (present or not) as its conditions define it."""
    return _state(db, build_id)[0]


def _present(db: IndexDb, build_id: str) -> list[str]:
    return [str(r[0]) for r in db.query("index_search_tables", {"prefix": _prefix(build_id)}).fetchall()]


def drop_search_tables(db: IndexDb, build_id: str) -> list[str]:
    """Drop every search table of the build (``saesteer index rm``); returns their names."""
    have = _present(db, build_id)
    for name in have:
        if _NAME.fullmatch(name):
            db.execute(f"DROP TABLE {name}")
    return have


def current_search_table(db: IndexDb, build_id: str) -> SearchTable | None:
    """The build's search tables when they are current (with their conditions table's facts), else None."""
    table, have = _state(db, build_id)
    if not {table.name, table.rows, table.conds_table} <= have:
        return None
    sql = load_query("select_search_conds").replace("{{table}}", table.conds_table)
    facts = {
        int(r[0]): CondFacts(int(r[1]), None if r[2] is None else float(r[2]), int(r[3]), int(r[4]),
                             None if r[5] is None else int(r[5]))
        for r in db.execute(sql).fetchall()
    }
    return replace(table, conds=facts)


def derived_columns(table: SearchTable) -> tuple[str, dict[str, float]]:
    """The SQL of the derived columns (:data:`DERIVED`) over the per-condition columns, and its parameters.

    Each is the very expression :func:`saesteer.select.sqlbuild.wide_aggregate_sql` would evaluate per
    search (same operands, same bound ``1 / n_tokens``), so reading it gives the same bits."""
    every = range(len(table.conditions))
    nr = set(table.nonrandom)
    params = {f"inv{i}": table.inv_n(i) for i in every}
    cols = [f"({' + '.join(f'n{i}' for i in sorted(idx))})::BIGINT AS {name}"
            for idx, name in table.count_sums().items()]
    cols.append(f"({' + '.join(f'b{i}' for i in every)})::BIGINT AS bos_n")
    cols.append(f"({' + '.join(f'p{i}::INTEGER' for i in sorted(nr)) or '0'})::INTEGER AS nr_rows")
    least = ", ".join(f"CASE WHEN p{i} THEN n{i} * $inv{i}{'' if i in nr else ' + 2.0'} END" for i in every)
    cols.append(f"least({least})::DOUBLE AS nr_min_freq")
    sums = table.count_sums()
    for i, col in table.stored_scores().items():
        params["zalpha"] = STORED_ALPHA
        rest = table.rest(i)
        params[f"ztt{i}"] = float(table.n_tokens[i])
        params[f"ztc{i}"] = float(max(sum(table.n_tokens[j] for j in rest), 1))
        c_n = f"({sums[frozenset((*rest, i))]} - n{i})::DOUBLE"
        cols.append(f"{log_odds_z_sql(f'n{i}::DOUBLE', c_n, f'$ztt{i}', f'$ztc{i}', '$zalpha')} AS {col}")
    r_max = [f"n{j} * $inv{j}" for j in table.random]  # >= 0 each: their maximum, as the search computes it
    r_max_freq = r_max[0] if len(r_max) == 1 else f"greatest({', '.join(r_max)})"
    for i, col in table.stored_keeps().items():
        params["krel"] = STORED_RANDOM_RELATIVE
        params[f"ztt{i}"] = float(table.n_tokens[i])
        cols.append(f"({random_relative_sql(f'({r_max_freq})', f'(n{i})::DOUBLE', f'$ztt{i}', '$krel')}) AS {col}")
    return ",\n    ".join(cols), params



def refresh_search_table(db: IndexDb, build_id: str) -> str | None:
    """Write the build's search tables unless they are current; drop its stale ones. Returns the search
    table's name (None for a build without conditions). Runs in one transaction."""
    table = search_table_state(db, build_id)
    if not table.conditions:
        return None
    assert _NAME.fullmatch(table.name)
    with db.transaction():
        have = _present(db, build_id)
        for old in have:
            if old not in (table.name, table.rows, table.conds_table) and _NAME.fullmatch(old):
                db.execute(f"DROP TABLE {old}")
        if {table.name, table.rows, table.conds_table} <= set(have):
            return table.name
        conds = {f"c{i}": c for i, c in enumerate(table.conditions)}
        cols = ",\n        ".join(
            f"{expr.format(i=i)} AS {col.format(i=i)}" for i in range(len(table.conditions)) for col, expr in COLUMNS
        )
        db.quiet()
        derived, inv = derived_columns(table)
        sql = (load_query("index_search_table").replace("{{table}}", table.name)
               .replace("{{columns}}", cols).replace("{{derived}}", derived))
        db.execute(sql, {"build": build_id, **conds, **inv})
        sql = load_query("index_search_rows").replace("{{table}}", table.rows)
        db.execute(sql, {"build": build_id, "conditions": list(table.conditions)})
        keeps, t = table.stored_keeps(), table.name
        facts = " UNION ALL\n".join(
            f"SELECT {i}::SMALLINT AS ci, $rank::INTEGER AS rank, "
            f"(SELECT {z} FROM {t} WHERE {kept} ORDER BY {z} DESC NULLS LAST, feature LIMIT 1 OFFSET $skip) AS cut, "
            f"(SELECT count(*) FROM {t}) AS n_rows, (SELECT count(*) FROM {t} WHERE n{i} > 0) AS n_active, "
            f"{f'(SELECT count(*) FROM {t} WHERE {kept})' if i in keeps else 'NULL::BIGINT'} AS n_kept"
            for i, z in table.stored_scores().items()
            for kept in [f"n{i} > 0" + (f" AND {keeps[i]}" if i in keeps else "")]
        ) or ("SELECT NULL::SMALLINT AS ci, NULL::INTEGER AS rank, NULL::DOUBLE AS cut, NULL::BIGINT AS n_rows, "
              "NULL::BIGINT AS n_active, NULL::BIGINT AS n_kept WHERE FALSE")
        sql = load_query("index_search_conds").replace("{{table}}", table.conds_table).replace("{{conds}}", facts)
        db.execute(sql, {"skip": CUT_RANK - 1, "rank": CUT_RANK} if table.stored_scores() else None)
    log.info("wrote the search tables %s (%d conditions)", table.name, len(table.conditions))
    return table.name
