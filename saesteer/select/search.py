"""``Search``: find the few features that matter for a target condition, and say why.

    res = (Search("features_db/index.duckdb", target="language=fr", against="rest")
           .drop_random().drop_bos_only().rank_by("log_odds").top(20).run())
    res.df            # pandas: feature, scores, frequency per condition, top logit-lens tokens
    res.dropped       # {"random: frequency on random tokens > 0.2 x target frequency": 312, ...}
    res.to_featureset(weights="mean_diff").save("fr.json")  # weights read from the index (select.weights)

The filters and the ranking score compile to one parameterized SQL statement over the whole index
(:mod:`saesteer.select.sqlbuild`), which also counts how many features each filter step removes; a
second small query reads the per-condition statistics of the returned features, from which every score
is computed in numpy (:mod:`saesteer.select.scores`) for display. An optional output-score step
(needs the model) re-ranks or filters a pool of candidates by their logit-lens mass on the target's
tokens (:mod:`saesteer.select.output`).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from saesteer.errors import CorpusError, EmptyResultError, SaesteerError
from saesteer.index.db import IndexDb
from saesteer.index.search_table import SearchTable, current_search_table
from saesteer.select.catalog import Catalog, load_catalog
from saesteer.select.detail import DetailStats, fetch_detail, stored_tokens
from saesteer.select.domain import domain_warning
from saesteer.select.filters import DropBosOnly, DropDead, DropDense, DropRandom, MinFreq, MinRatio
from saesteer.select.ranking import DEFAULT_RANK, SCORES, Score, get_score
from saesteer.select.result import SearchResult, bookkeeping, build_frame, empty_message
from saesteer.select.sqlbuild import CompiledSearch, Predicate, WideLayout, compile_search

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputStep:
    """Re-rank / filter a pool of candidates by their output (logit-lens) score; needs the model."""

    model: Any
    sae: Any
    min_mass: float | None = None
    rerank: bool = False
    pool: int = 200
    top_n: int = 10


class Search:
    """A composable search for the features of ``target`` against ``against`` (see the module docstring).

    ``db`` is an index path (opened read-only for each :meth:`run`) or an open :class:`IndexDb`.
    ``against``: ``"rest"`` (the other non-random conditions with the target's label), ``"all"``, or a
    list of conditions. ``build_id``: default the only build, else the most recent (the result says so).
    Every method returns a new ``Search``; the object itself never changes.
    """

    def __init__(
        self,
        db: IndexDb | str | Path,
        target: str,
        against: str | Sequence[str] = "rest",
        build_id: str | None = None,
    ) -> None:
        self.db = db
        self.target = target
        self.against: str | list[str] = against if isinstance(against, str) else list(against)
        self.build_id = build_id
        self.filters: list[Predicate] = []
        self.random_conditions: tuple[str, ...] | None = None
        self.rank: Score = get_score(DEFAULT_RANK)
        self.display: dict[str, Score] = {name: cls() for name, cls in SCORES.items()}
        self.k = 20
        self.output: OutputStep | None = None
        self.refine = True  # exact two-phase top-k for scores with cheap bounds (AUROC)
        self.search_table = True  # read the build's search table when it is current (same results, one scan)

    # -- building -------------------------------------------------------------------------------------------
    def _copy(self) -> Search:
        new = copy.copy(self)
        new.filters = list(self.filters)
        new.display = dict(self.display)
        return new

    def where(self, flt: Predicate) -> Search:
        """Add any filter object (``needs(n_bins)`` + ``predicates(ctx)`` + ``describe()``)."""
        new = self._copy()
        new.filters.append(flt)
        return new

    def drop_random(
        self,
        max_freq: float | None = None,
        max_mean: float | None = None,
        relative_to_target: float | None = None,
        conditions: Sequence[str] | None = None,
    ) -> Search:
        """LangFIR: drop features active on random-token sequences (:class:`~saesteer.select.filters.DropRandom`)."""
        conds = tuple(conditions) if conditions else None
        if conds and self.random_conditions and conds != self.random_conditions:
            raise SaesteerError(
                "drop_random: every random filter of a search must use the same random conditions"
            )
        new = self.where(DropRandom(max_freq, max_mean, relative_to_target, conds))
        new.random_conditions = conds or self.random_conditions
        return new

    def drop_dead(self, min_count: int = 10) -> Search:
        return self.where(DropDead(min_count))

    def drop_dense(self, max_freq: float = 0.1) -> Search:
        return self.where(DropDense(max_freq))

    def drop_bos_only(self, ratio: float = 10.0) -> Search:
        return self.where(DropBosOnly(ratio))

    def min_freq(self, target_freq: float) -> Search:
        return self.where(MinFreq(target_freq))

    def min_ratio(self, ratio: float) -> Search:
        """Keep features firing at least ``ratio`` times as often on the target as on any contrast condition."""
        return self.where(MinRatio(ratio))

    def rank_by(self, score: str | Score, **params: Any) -> Search:
        """Rank by a score (default ``log_odds``); see :data:`saesteer.select.ranking.SCORES`."""
        new = self._copy()
        new.rank = get_score(score, **params)
        new.display[new.rank.name] = new.rank
        return new

    def score(self, score: str | Score, **params: Any) -> Search:
        """Show a score (with these parameters) in the result; every known score is shown by default."""
        new = self._copy()
        obj = get_score(score, **params)
        new.display[obj.name] = obj
        return new

    def top(self, k: int) -> Search:
        if int(k) < 1:
            raise SaesteerError(f"top(k) needs k >= 1, got {k}")
        new = self._copy()
        new.k = int(k)
        return new

    def output_score(
        self,
        model: HookedTransformer,
        sae: SAE,
        *,
        min_mass: float | None = None,
        rerank: bool = False,
        pool: int = 200,
        top_n: int = 10,
    ) -> Search:
        """Score the best ``pool`` candidates by the mass of their logit lens on the target's tokens
        (Arad et al. 2025); drop those under ``min_mass`` and/or re-rank by it."""
        new = self._copy()
        new.output = OutputStep(model, sae, min_mass, rerank, max(int(pool), 1), top_n)
        return new

    # -- running --------------------------------------------------------------------------------------------
    @contextmanager
    def _open(self) -> Iterator[IndexDb]:
        if isinstance(self.db, IndexDb):
            yield self.db
            return
        with IndexDb(self.db, read_only=True) as db:
            yield db

    def _plan(
        self, cat: Catalog, db: IndexDb, cut: bool = True
    ) -> tuple[str, list[str], list[str], CompiledSearch, SearchTable | None]:
        target = cat.resolve(self.target)
        contrast = cat.contrast(target, self.against)
        needs_random = any(isinstance(f, DropRandom) for f in self.filters)
        random = cat.random_set(self.random_conditions) if needs_random else cat.random
        info = cat.conditions
        if info[target].n_tokens <= 0:
            raise CorpusError(f"the target {target} has no counted tokens in build {cat.build.build_id}")
        constants = {
            "build": cat.build.build_id,
            "target": target,
            "contrast": contrast,
            "random": random,
            "d_sae": int(cat.build.d_sae),
            "tok_t": float(info[target].n_tokens),
            "tok_c": float(max(sum(info[c].n_tokens for c in contrast), 1)),
            "n_contrast": float(len(contrast)),
            "tok_r": float(sum(info[c].n_tokens for c in random)),
            "tok_all": float(sum(c.n_tokens for c in info.values())),
            "bos_all": float(sum(c.n_bos for c in info.values())),
            "n_nonrandom": float(sum(not c.is_random for c in info.values())),
        }
        implicit = [
            ("dead: never active in this build", "feature IS NOT NULL"),
            (f"inactive on the target {target}", "t_n > 0"),
        ]
        limit = max(self.k, self.output.pool) if self.output else self.k
        wide = None
        table = current_search_table(db, cat.build.build_id) if self.search_table else None
        if table is not None and set(table.conditions) != set(info):
            table = None
        if table is None and self.search_table:
            log.info(
                "build %s has no current search table (written by `saesteer index build` / `index merge`): "
                "searching feature_stats with a GROUP BY, same results, slower", cat.build.build_id
            )
        if table is not None:
            wide = WideLayout.of(table, target, contrast, random)
        compiled = compile_search(
            filters=self.filters,
            implicit=implicit,
            score=self.rank,
            constants=constants,
            n_bins=cat.build.n_bins,
            limit=limit,
            refine=self.refine and cat.build.threshold == 0.0,
            wide=wide,
            cut=cut,
        )
        return target, contrast, random, compiled, table

    def compile(self) -> CompiledSearch:
        """The SQL statement and parameters :meth:`run` would execute (for inspection)."""
        with self._open() as db:
            return self._plan(load_catalog(db, self.build_id), db)[3]

    def run(self, *, allow_empty: bool = False) -> SearchResult:
        """Execute the search. An empty result raises :class:`EmptyResultError` naming the filter that
        emptied it, unless ``allow_empty``."""
        lap = _Laps()
        with self._open() as db:
            lap("open")
            cat = load_catalog(db, self.build_id)
            target, contrast, random, compiled, table = self._plan(cat, db)
            lap("plan")
            log.info(
                "search %s vs %s on build %s (%s)", target, ",".join(contrast), cat.build.build_id, cat.chosen
            )
            confound = domain_warning(db, cat, target, contrast)
            if confound:
                log.warning(confound)
            lap("domain check")
            with _tuned(db, None if compiled.wide else cat.build.d_sae):
                raw = db.fetch_df(compiled.sql, compiled.params)
                if compiled.cut and int(raw["feature"].notna().sum()) < int(compiled.params["top_k"]):
                    compiled = self._plan(cat, db, cut=False)[3]  # fewer than k above the cut: all of them
                    raw = db.fetch_df(compiled.sql, compiled.params)
            dropped, per_step, n_universe, n_kept = bookkeeping(raw, compiled.steps)
            dropped_random = sum(
                n for n, owner in zip(per_step, compiled.owners, strict=True)
                if owner is not None and isinstance(self.filters[owner], DropRandom)
            )
            hits = raw[raw["feature"].notna()]
            feats = [int(f) for f in hits["feature"]]
            sql_scores = hits["score"].to_numpy(dtype=np.float64)
            lap("scan (filters, score, top-k)")
            conds = cat.names
            detail = fetch_detail(
                db,
                cat.build.build_id,
                feats,
                conds,
                [cat.conditions[c].n_tokens for c in conds],
                [cat.conditions[c].n_bos for c in conds],
                cat.build.n_bins,
                rows=table,
            )
            detail.target = conds.index(target)
            detail.contrast = tuple(conds.index(c) for c in contrast)
            detail.random = tuple(conds.index(c) for c in random)
            lap("detail")
            tokens = stored_tokens(db, cat.build.build_id, feats, table)
            lap("top tokens")
            out_cols: dict[str, Any] = {}
            if self.output is not None and feats:
                feats, detail, sql_scores, out_cols, n_out = self._output_step(
                    db, cat, target, contrast, detail, sql_scores
                )
                if self.output.min_mass is not None:
                    dropped[
                        f"output: target-token mass < {self.output.min_mass:g} (best {self.output.pool})"
                    ] = n_out
                    n_kept = min(n_kept, len(feats))
                lap("output score")
            feats, detail, sql_scores = feats[: self.k], _take(detail, slice(0, self.k)), sql_scores[: self.k]
            out_cols = {k: v[: self.k] for k, v in out_cols.items()}
        if not feats and not allow_empty:
            raise EmptyResultError(empty_message(target, n_universe, dropped))
        df = build_frame(feats, detail, self.rank, self.display, tokens, out_cols)
        filters = [f.describe() for f in self.filters]
        lap("frame")
        return SearchResult(
            df=df,
            target=target,
            contrast=contrast,
            random=random,
            build=cat.build,
            build_note=cat.chosen,
            rank_by=self.rank.name,
            dropped=dropped,
            n_universe=n_universe,
            n_kept=n_kept,
            filters=filters,
            sql=compiled.sql,
            params=compiled.params,
            detail=detail,
            score_objects={
                self.rank.name: self.rank,
                **{k: v for k, v in self.display.items() if k != self.rank.name},
            },
            sql_scores=sql_scores,
            domain_warning=confound,
            dropped_random=dropped_random,
            db=self.db,
            timings=lap.laps,
        )

    def _output_step(
        self,
        db: IndexDb,
        cat: Catalog,
        target: str,
        contrast: list[str],
        detail: DetailStats,
        sql_scores: np.ndarray,
    ) -> tuple[list[int], DetailStats, np.ndarray, dict[str, Any], int]:
        from saesteer.select.output import output_scores, target_tokens

        assert self.output is not None
        step = self.output
        toks = target_tokens(db, cat.build.build_id, target, contrast)
        res = output_scores(step.model, step.sae, detail.features.tolist(), toks.token_ids, top_n=step.top_n)
        order = np.arange(len(detail.features))
        if step.rerank:
            order = np.argsort(-res.mass, kind="stable")
        keep = order if step.min_mass is None else order[res.mass[order] >= step.min_mass]
        n_out = len(order) - len(keep)
        cols = {
            "output_mass": res.mass[keep],
            "output_lift": res.lift[keep],
            "output_tokens": [res.top_tokens[i] for i in keep],
        }
        return [int(f) for f in detail.features[keep]], _take(detail, keep), sql_scores[keep], cols, n_out


class _Laps:
    """Wall seconds per stage of a search (:attr:`SearchResult.timings`): each call closes a stage."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = self.laps.get(stage, 0.0) + now - self._t
        self._t = now


@contextmanager
def _tuned(db: IndexDb, d_sae: int | None) -> Iterator[None]:
    """For the search scan only: no progress bar on stdout, and for a GROUP BY over ``feature_stats``
    (``d_sae`` given) a perfect-hash aggregate over the dense feature ids (several times faster than a
    hash table at 1M features, but costly for small queries, so the old value is restored)."""
    db.quiet()
    if d_sae is None:  # one scan of the search table: no GROUP BY to tune
        yield
        return
    bits = min(max(12, math.ceil(math.log2(max(d_sae, 2))) + 1), 24)
    old = db.execute("SELECT current_setting('perfect_ht_threshold')").fetchall()[0][0]
    db.execute(f"SET perfect_ht_threshold = {int(bits)}")
    try:
        yield
    finally:
        db.execute(f"SET perfect_ht_threshold = {int(old)}")


def _take(d: DetailStats, idx: Any) -> DetailStats:
    new = copy.copy(d)
    for name in (
        "features",
        "n_active",
        "n_docs_active",
        "sum_act",
        "sum_sq",
        "max_act",
        "n_bos_active",
        "hist",
    ):
        setattr(new, name, getattr(d, name)[idx])
    return new
