"""Compile a search (filters + a ranking score) into one parameterized SQL statement.

The statement is ``features_db/queries/select_search.sql``; its ``{{...}}`` slots are filled with
fragments that contain only column names, fixed keywords and ``$parameters``: every value (thresholds,
condition names, token counts) is bound, never formatted into the text.

Fragments are written over the per-feature aggregate columns of :data:`AGGREGATES` (a filter or score
names the ones it needs; only those are computed, which keeps the scan cheap) and over these bound
constants, set by the compiler for every search:

================  ============================================================================
``$tok_t``        counted tokens of the target condition
``$tok_c``        counted tokens of the contrast conditions (pooled)
``$n_contrast``   number of contrast conditions
``$tok_r``        counted tokens of the random-token conditions in use
``$tok_all``      counted tokens of every condition of the build
``$bos_all``      BOS positions of every condition of the build
``$n_nonrandom``  number of non-random conditions of the build
================  ============================================================================

DuckDB matches parameter names case-insensitively: bound names are lower case, and the binder's names
end in a number so they never meet a constant's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from saesteer.index.db import load_query
from saesteer.index.search_table import STORED_ALPHA, SearchTable

# name -> (aggregate over the rows of one feature, joined with their condition's weights; value for a
# feature with no row at all). ``s`` is feature_stats, ``c`` the weighted conditions of the search:
# w_t = 1 on the target, w_c on contrast conditions, w_r on the random-token conditions in use,
# w_nr on non-random conditions, w_e on target + contrast (entropy), inv_n = 1 / n_tokens.
AGGREGATES: dict[str, tuple[str, str]] = {
    "t_n": ("sum(s.n_active * c.w_t)", "0.0"),
    "t_sum": ("sum(s.sum_act * c.w_t)", "0.0"),
    "t_sq": ("sum(s.sum_sq * c.w_t)", "0.0"),
    "c_n": ("sum(s.n_active * c.w_c)", "0.0"),
    "c_sum": ("sum(s.sum_act * c.w_c)", "0.0"),
    "c_sq": ("sum(s.sum_sq * c.w_c)", "0.0"),
    "c_mean_sum": ("sum(s.sum_act * c.inv_n * c.w_c)", "0.0"),
    "c_max_freq": ("max(s.n_active * c.inv_n * c.w_c)", "0.0"),
    "e_fsum": ("sum(s.n_active * c.inv_n * c.w_e)", "0.0"),
    "e_fln": (
        "sum(CASE WHEN s.n_active > 0 AND c.w_e > 0 THEN s.n_active * c.inv_n * ln(s.n_active * c.inv_n) ELSE 0.0 END)",
        "0.0",
    ),
    "r_n": ("sum(s.n_active * c.w_r)", "0.0"),
    "r_max_freq": ("max(s.n_active * c.inv_n * c.w_r)", "0.0"),
    "r_max_mean": ("max(s.sum_act * c.inv_n * c.w_r)", "0.0"),
    "a_n": ("sum(s.n_active::DOUBLE)", "0.0"),
    "bos_n": ("sum(s.n_bos_active::DOUBLE)", "0.0"),
    # min frequency over the non-random rows (random rows pushed above 1); with nr_rows, the number of
    # non-random conditions where the feature has a row (a missing row is a frequency of 0)
    "nr_min_freq": ("min(s.n_active * c.inv_n + (1.0 - c.w_nr) * 2.0)", "0.0"),
    "nr_rows": ("sum(c.w_nr)", "0.0"),
}
_HIST = re.compile(r"^([tc])_h(\d+)$")


def aggregate_sql(name: str) -> tuple[str, str]:
    """The aggregate and the empty value of column ``name`` (``t_h3`` / ``c_h3``: histogram bin 3, 1-based)."""
    m = _HIST.match(name)
    if m:
        w = "c.w_t" if m.group(1) == "t" else "c.w_c"
        return f"sum(s.hist[{int(m.group(2))}] * {w})", "0.0"
    if name not in AGGREGATES:
        raise KeyError(f"unknown aggregate column {name!r}")
    return AGGREGATES[name]


@dataclass(frozen=True)
class WideLayout:
    """A build's search table (:class:`saesteer.index.search_table.SearchTable`) and the search's conditions
    as indices into its column groups: the target, the contrast, the random-token conditions in use and
    the non-random ones."""

    table: SearchTable
    target: int
    contrast: tuple[int, ...]
    random: tuple[int, ...]
    nonrandom: tuple[int, ...]

    @classmethod
    def of(cls, table: SearchTable, target: str, contrast: Sequence[str], random: Sequence[str]) -> WideLayout:
        ix = {c: i for i, c in enumerate(table.conditions)}
        return cls(table, ix[target], tuple(ix[c] for c in contrast), tuple(ix[c] for c in random),
                   table.nonrandom)


    def stored_random_keep(self) -> str | None:
        """The column holding the default random-token filter's verdict for the target (``k{i}``: LangFIR's
        frequency on every random condition <= :data:`~saesteer.index.search_table.STORED_RANDOM_RELATIVE`
        x the target's), when this search filters on all of the build's random conditions."""
        if set(self.random) != set(self.table.random):
            return None
        return self.table.stored_keeps().get(self.target)

    def stored_counts(self, predicates: Sequence[str]) -> list[int] | None:
        """The cumulative counts of these filter steps (their SQL predicates, in order) when they are a prefix
        of the default search's: every feature with a row (``feature IS NOT NULL``), active on the target
        (``t_n > 0``), kept by the default random-token filter (its stored verdict). None otherwise."""
        facts = self.table.conds.get(self.target)
        if facts is None:
            return None
        known = [("feature IS NOT NULL", facts.n_rows), ("t_n > 0", facts.n_active),
                 (self.stored_random_keep(), facts.n_kept)]
        if len(predicates) > len(known):
            return None
        out: list[int] = []
        for pred, (text, n) in zip(predicates, known, strict=False):
            if text is None or n is None or pred != text:
                return None
            out.append(n)
        return out

    def stored_score(self, score: RankScore) -> str | None:
        """The search table's column holding ``score`` for this search, if it stores it: the default
        log_odds_z (its smoothing as stored) of the target against the rest of its label."""
        if getattr(score, "name", None) != "log_odds_z" or getattr(score, "alpha", None) != STORED_ALPHA:
            return None
        if set(self.contrast) != set(self.table.rest(self.target)):
            return None
        return self.table.stored_scores().get(self.target)


def wide_aggregate_sql(name: str, lay: WideLayout, ctx: SqlContext) -> str | None:
    """The aggregate ``name`` of :data:`AGGREGATES` over the search table's columns: the value the GROUP BY
    computes (a missing row counts 0, and every stored quantity is >= 0, so a maximum over the rows equals
    the maximum over the conditions with 0 added). A count summed over a set of conditions reads the stored
    sum (``count_sums``, minus the target's count for "the rest of its label"): exact integers, the same
    value. None for the histogram columns, which the search table does not hold (such searches read
    ``feature_stats``)."""
    inv: dict[int, str] = {}

    def inv_n(i: int) -> str:  # 1 / n_tokens of condition i, bound once per condition
        if i not in inv:
            inv[i] = ctx.bind(lay.table.inv_n(i), f"inv{i}")
        return inv[i]

    def plus(terms: Sequence[str]) -> str:
        return "(" + " + ".join(terms) + ")::DOUBLE" if terms else "0.0::DOUBLE"

    def biggest(terms: Sequence[str], nonneg: bool = False) -> str:
        # ``nonneg``: every term is >= 0 (a count times 1 / n_tokens), so 0 adds nothing; one term is then
        # its own maximum (greatest() costs several times a product per row)
        if nonneg and len(terms) == 1:
            return terms[0]
        if nonneg and terms:
            return "greatest(" + ", ".join(terms) + ")"
        return "greatest(0.0::DOUBLE, " + ", ".join(terms) + ")" if terms else "0.0::DOUBLE"

    def fln(i: int) -> str:
        f = f"n{i} * {inv_n(i)}"
        return f"CASE WHEN n{i} > 0 THEN {f} * ln({f}) ELSE 0.0 END"

    sums = lay.table.count_sums()

    def count(idx: Sequence[int]) -> str:  # the sum of n{i} over idx, from a stored sum where one fits
        s = frozenset(idx)
        if s in sums:
            return f"{sums[s]}::DOUBLE"
        t = lay.target
        if t not in s and s | {t} in sums:
            return f"({sums[s | {t}]} - n{t})::DOUBLE"
        return plus([f"n{i}" for i in idx])

    t, c, r = [lay.target], list(lay.contrast), list(lay.random)
    e = list(dict.fromkeys([*t, *c]))
    exprs = {
        "t_n": lambda: plus([f"n{i}" for i in t]),
        "t_sum": lambda: plus([f"s{i}" for i in t]),
        "t_sq": lambda: plus([f"q{i}" for i in t]),
        "c_n": lambda: count(c),
        "c_sum": lambda: plus([f"s{i}" for i in c]),
        "c_sq": lambda: plus([f"q{i}" for i in c]),
        "c_mean_sum": lambda: plus([f"s{i} * {inv_n(i)}" for i in c]),
        "c_max_freq": lambda: biggest([f"n{i} * {inv_n(i)}" for i in c], nonneg=True),
        "e_fsum": lambda: plus([f"n{i} * {inv_n(i)}" for i in e]),
        "e_fln": lambda: plus([fln(i) for i in e]),
        "r_n": lambda: count(r),
        "r_max_freq": lambda: biggest([f"n{i} * {inv_n(i)}" for i in r], nonneg=True),
        "r_max_mean": lambda: biggest([f"s{i} * {inv_n(i)}" for i in r]),
        "a_n": lambda: count(range(len(lay.table.conditions))),  # a stored sum, whatever its column's name
        "bos_n": lambda: "bos_n::DOUBLE",
        "nr_min_freq": lambda: "nr_min_freq",
        "nr_rows": lambda: "nr_rows::DOUBLE",
    }
    make = exprs.get(name)
    return make() if make is not None else None


class Binder:
    """Collects bound parameters; :meth:`bind` returns the ``$name`` to put in the SQL text."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any, hint: str = "p") -> str:
        base = re.sub(r"[^a-z0-9_]", "_", hint.lower()) or "p"
        name = f"{base}_{len(self.params)}"
        self.params[name] = value
        return f"${name}"


@dataclass(frozen=True)
class SqlContext:
    """What a fragment may use: the binder and the histogram width of the build."""

    binder: Binder
    n_bins: int

    def bind(self, value: Any, hint: str = "p") -> str:
        return self.binder.bind(value, hint)


class Predicate(Protocol):
    """A filter: one or more named SQL predicates (true = keep the feature)."""

    def needs(self, n_bins: int) -> tuple[str, ...]: ...

    def predicates(self, ctx: SqlContext) -> list[tuple[str, str]]: ...

    def describe(self) -> str: ...


class RankScore(Protocol):
    """A ranking score: a SQL expression, its direction, and the aggregates it needs."""

    @property
    def name(self) -> str: ...

    @property
    def higher_is_better(self) -> bool: ...

    def needs(self, n_bins: int) -> tuple[str, ...]: ...

    def helpers(self, ctx: SqlContext) -> list[tuple[str, str]]: ...

    def sql(self, ctx: SqlContext) -> str: ...

    def requires(self, ctx: SqlContext) -> list[tuple[str, str]]: ...


@dataclass
class CompiledSearch:
    """The statement, its parameters, and the description of each counted filter step in order, with the
    index in ``filters`` of the filter that contributed it (``owners``; None for implicit and score steps)."""

    sql: str
    params: dict[str, Any]
    steps: list[str] = field(default_factory=list)
    aggregates: list[str] = field(default_factory=list)
    owners: list[int | None] = field(default_factory=list)
    wide: bool = False  # reads the build's search table (no GROUP BY over feature_stats)
    cut: bool = False  # the top k reads only the features scoring at least the stored cut (see Search.run)


def compile_search(
    *,
    filters: Sequence[Predicate],
    implicit: Sequence[tuple[str, str]],
    score: RankScore,
    constants: dict[str, Any],
    n_bins: int,
    limit: int,
    refine: bool = True,
    wide: WideLayout | None = None,
    cut: bool = True,
) -> CompiledSearch:
    """Fill ``select_search.sql``: aggregates, the rank score, one predicate per filter step, the counts.

    ``implicit`` are predicates applied before the user's filters (e.g. "active on the target").
    ``constants`` binds ``$build``, ``$target``, ``$contrast``, ``$random``, ``$d_sae`` and the ``$tok_t``...
    constants of the module docstring.

    A score with cheap ``bounds`` (``lower, upper, needs``: e.g. the AUROC from frequencies alone) is
    ranked exactly in two phases when ``refine``: the bounds over every feature, then the expensive
    score only for the features whose upper bound reaches the k-th best lower bound
    (``select_search_refine.sql``).

    With ``wide`` (the build's current search table) the per-feature aggregates are read in one scan of
    that table instead of a GROUP BY over ``feature_stats`` (same values), unless the search needs the
    histograms in that phase; the default score against the rest of the target's label is read from its
    stored column (the same expression, computed at build time: the same bits). Then, with ``cut`` and
    ``limit`` at most the cut's rank, the top k considers only the features scoring at least the table's cut for the
    target (``CompiledSearch.cut``): exact when at least ``limit`` features come back, which the caller
    checks (else it compiles again without the cut).
    """
    binder = Binder()
    ctx = SqlContext(binder, n_bins)
    steps: list[tuple[str, str]] = list(implicit)
    owners: list[int | None] = [None] * len(steps)
    needs: list[tuple[str, ...]] = []
    for i, f in enumerate(filters):
        needs.append(f.needs(n_bins))
        own = f.predicates(ctx)
        steps += own
        owners += [i] * len(own)
    required = score.requires(ctx)
    steps += required
    owners += [None] * len(required)
    bounds = getattr(score, "bounds", None)
    two_phase = bool(refine and bounds is not None and score.higher_is_better)
    slots: dict[str, str] = {}
    cheap: tuple[str, ...] = ()
    if two_phase:
        assert bounds is not None
        lower, upper, cheap = bounds(ctx)
        exact = list(dict.fromkeys(score.needs(n_bins)))
        slots["exact_aggregates"] = ",\n        ".join(f"{aggregate_sql(a)[0]} AS {a}" for a in exact)
        slots["lower"], slots["upper"] = lower, upper
    score_needs = () if two_phase else score.needs(n_bins)
    every = list(dict.fromkeys(["t_n", *(a for n in needs for a in n), *cheap, *score_needs]))
    wide_sql = {a: wide_aggregate_sql(a, wide, ctx) for a in every} if wide is not None else {}
    use_wide = wide is not None and all(v is not None for v in wide_sql.values())
    # on the search table, what it stores replaces what the search would compute: the same values
    stored = wide.stored_score(score) if wide is not None and use_wide and not two_phase else None
    scan_steps = list(steps)
    replaced: set[int] = set()
    if wide is not None and use_wide:
        for i, f in enumerate(filters):
            hook = getattr(f, "stored_predicates", None)
            kept = hook(wide) if hook is not None else None  # [(description, a stored flag column)]
            at = [k for k, o in enumerate(owners) if o == i]
            if (kept is not None and [d for d, _ in kept] == [steps[k][0] for k in at]
                    and all(re.fullmatch(r"k\d+", c) for _, c in kept)):
                for k, (_, pred) in zip(at, kept, strict=True):
                    scan_steps[k] = (steps[k][0], pred)
                replaced.add(i)
    aggs = list(dict.fromkeys([
        "t_n",
        *(a for i, n in enumerate(needs) if i not in replaced for a in n),
        *cheap,
        *(() if stored else score_needs),
    ]))
    # counts: the real rows with count(*) (a NULL predicate drops the row, as FALSE would), plus the
    # pseudo-row e of the features without rows (weight e.w, every aggregate empty) where its predicates hold
    row_counts = ["count(*) AS n_universe"]
    counts = ["r.n_universe + e.w AS n_universe"]
    for i in range(len(steps)):
        cond = " AND ".join(f"p{j}" for j in range(i + 1))
        row_counts.append(f"count(*) FILTER (WHERE {cond}) AS n_step{i}")
        e_cond = " AND ".join(f"e.p{j}" for j in range(i + 1))
        counts.append(f"r.n_step{i} + CASE WHEN ({e_cond}) IS TRUE THEN e.w ELSE 0 END AS n_step{i}")
    if wide is not None and use_wide:
        name = wide.table.name
        if not re.fullmatch(r"search_[0-9a-f]{16}_[0-9a-f]{12}", name):
            raise ValueError(f"not a search table name: {name!r}")
        slots["agg"] = load_query("select_search_agg_wide").replace("{{table}}", name)
        slots["stream"], slots["agg_rows"] = "NOT MATERIALIZED ", name
        columns = [f"{wide_sql[a]} AS {a}" for a in aggs]
        columns += [f"{c} AS {c}" for c in dict.fromkeys(
            pred for k, (_, pred) in enumerate(scan_steps) if owners[k] in replaced)]  # stored flag columns
        if stored is not None:
            columns.append(f"{stored} AS stored_score")
        agg_columns = ",\n        ".join(columns)
    else:
        slots["agg"] = load_query("select_search_agg_rows")
        slots["stream"], slots["agg_rows"] = "", "agg"
        agg_columns = ",\n        ".join(f"{aggregate_sql(a)[0]} AS {a}" for a in aggs)
    facts = wide.table.conds.get(wide.target) if wide is not None and stored is not None else None
    use_cut = bool(cut and facts is not None and facts.cut is not None and limit <= facts.rank)
    stored_counts = wide.stored_counts([p for _, p in scan_steps]) if wide is not None and use_wide else None
    if stored_counts is not None:  # the default search's steps: their counts were taken at build time
        row_counts = [f"{ctx.bind(stored_counts[0], 'n_rows')} AS n_universe"]
        row_counts += [f"{ctx.bind(n, 'n_kept')} AS n_step{i}" for i, n in enumerate(stored_counts)]
        row_count_sql = "SELECT " + ", ".join(row_counts)
    else:
        row_count_sql = "SELECT " + ", ".join(row_counts) + " FROM scored"
    slots.update(
        {
            "cut": f" AND score >= {ctx.bind(facts.cut, 'zcut')}" if use_cut and facts else "",
            "aggregates": agg_columns,
            "empty": ", ".join(f"{aggregate_sql(a)[1]} AS {a}" for a in every),
            "helpers": "" if stored else "".join(f"{expr} AS {name}, " for name, expr in score.helpers(ctx)),
            "score": "stored_score" if stored else score.sql(ctx),
            "empty_predicates": ", ".join(f"({p}) AS p{i}" for i, (_, p) in enumerate(steps)) or "TRUE AS p_none",
            "predicates": ", ".join(f"({p}) AS p{i}" for i, (_, p) in enumerate(scan_steps)) or "TRUE AS p_none",
            "counts": ", ".join(counts),
            "row_counts": row_count_sql,
            "keep": " AND ".join(f"p{i}" for i in range(len(steps))) or "TRUE",
            "order": "DESC" if score.higher_is_better else "ASC",
        }
    )
    sql = load_query("select_search_refine" if two_phase else "select_search")
    sql = sql.replace("{{agg}}", slots.pop("agg"))  # first: it brings the {{aggregates}} slot
    for slot, text in slots.items():
        sql = sql.replace("{{" + slot + "}}", text)
    params = {**constants, **binder.params, "top_k": int(limit)}
    return CompiledSearch(sql, prune_params(sql, params), [d for d, _ in steps], aggs, owners, use_wide, use_cut)


def prune_params(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the text uses (DuckDB rejects unused named parameters)."""
    code = re.sub(r"--[^\n]*", "", sql)
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", code))
    missing = used - set(params)
    if missing:
        raise KeyError(f"unbound SQL parameters: {sorted(missing)}")
    return {k: v for k, v in params.items() if k in used}
