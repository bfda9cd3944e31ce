"""``SearchResult``: a ranked search result, its filter bookkeeping, and the hand-off to steering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from saesteer.errors import SaesteerError
from saesteer.featureset import INDEX_WEIGHTINGS, FeatureSet
from saesteer.select.catalog import BuildInfo
from saesteer.select.detail import DetailStats
from saesteer.select.ranking import Score, get_score

if TYPE_CHECKING:
    import pandas as pd

    from saesteer.select.weights import IndexRef

Weights = Literal["uniform", "mean", "score", "mean_act", "mean_diff"]
WEIGHTS: tuple[str, ...] = ("uniform", "mean", "score", *INDEX_WEIGHTINGS)


@dataclass
class SearchResult:
    """A ranked search result. ``df`` has one row per feature, best first."""

    df: pd.DataFrame
    target: str
    contrast: list[str]
    random: list[str]
    build: BuildInfo
    build_note: str
    rank_by: str
    dropped: dict[str, int]
    n_universe: int
    n_kept: int  # features passing every filter (before the top-k cut)
    filters: list[str]
    sql: str
    params: dict[str, Any]
    detail: DetailStats | None = None
    score_objects: dict[str, Score] = field(default_factory=dict)
    sql_scores: np.ndarray | None = None  # the rank score as SQL computed it (equals the numpy column)
    domain_warning: str | None = None  # target and contrast differ in domain signals (saesteer.select.domain)
    dropped_random: int = 0  # features removed by the random-token (LangFIR) filter steps
    db: IndexRef | None = None  # the index the result was read from (for index-derived weights)
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per stage of the search

    @property
    def features(self) -> list[int]:
        return [int(f) for f in self.df["feature"]] if len(self.df) else []

    def __len__(self) -> int:
        return len(self.df)

    def arrow(self) -> Any:
        """The result as a pyarrow Table."""
        import pyarrow as pa

        return pa.Table.from_pandas(self.df, preserve_index=False)

    def polars(self) -> Any:
        """The result as a polars DataFrame (needs ``polars``, an optional dependency)."""
        try:
            import polars as pl
        except ImportError as exc:
            raise SaesteerError(
                "polars is not installed: `pip install polars`, or use .df (pandas) / .arrow()"
            ) from exc
        return pl.from_arrow(self.arrow())

    def summary(self) -> str:
        """One line: what was searched, on which build, and how many features each filter removed."""
        drops = "; ".join(f"{k}: -{v}" for k, v in self.dropped.items() if v)
        return (
            f"{len(self)} features for {self.target} vs {len(self.contrast)} conditions, ranked by {self.rank_by} "
            f"(build {self.build.build_id}, {self.build_note}); {self.n_kept} of {self.n_universe} passed the "
            f"filters ({drops or 'none dropped'})"
        )

    def to_featureset(self, weights: Weights = "uniform") -> FeatureSet:
        """The hand-off to steering: the features, their weights and scores, and the provenance.

        ``weights``: ``uniform`` (none stored), ``mean`` (mean activation on the target), ``score`` (the
        rank score as a weight), or an index weighting, ``mean_act`` / ``mean_diff``
        (:mod:`saesteer.select.weights`, read from the index the search ran on)."""
        if weights not in WEIGHTS:
            raise SaesteerError(f"weights must be one of {', '.join(map(repr, WEIGHTS))}, got {weights!r}")
        w: list[float] | None = None
        if weights == "mean":
            w = [float(x) for x in self.df["mean_target"]]
        elif weights == "score":
            score = self.score_objects.get(self.rank_by) or get_score(self.rank_by)
            vals = self.df[self.rank_by].to_numpy(dtype=np.float64)
            w = (
                [float(x) for x in score.as_weight(vals, self.detail)]
                if self.detail is not None
                else list(vals)
            )
        names = [n for n in self.score_objects if n in self.df.columns]
        if "output_mass" in self.df.columns:
            names.append("output_mass")
        scores = {n: [float(x) for x in self.df[n].to_numpy(dtype=np.float64)] for n in names}
        filters = [
            f"target={self.target}",
            f"against={','.join(self.contrast)}",
            *self.filters,
            f"rank_by={self.rank_by}",
            f"top={len(self)}",
        ]
        fs = FeatureSet(
            features=self.features,
            target=self.target,
            weights=w,
            scores=scores,
            build_id=self.build.build_id,
            model_id=self.build.model_id,
            sae_id=self.build.sae_id,
            hook_name=self.build.hook_name,
            filters=filters,
            weighting=weights if weights in ("mean", "score") else "uniform",
            contrast=list(self.contrast),
            random=list(self.random),
            domain_warning=self.domain_warning,
        )
        if weights in INDEX_WEIGHTINGS:
            from saesteer.select.weights import with_index_weights

            if self.db is None:
                raise SaesteerError(f"weights {weights!r} read the index, and this result does not name one")
            fs = with_index_weights(fs, self.db, weights)
        return fs


def bookkeeping(raw: pd.DataFrame, steps: list[str]) -> tuple[dict[str, int], list[int], int, int]:
    """``(dropped per step description, dropped per step, n_universe, n_kept)``."""
    first = raw.iloc[0]
    n_universe = int(first["n_universe"])
    dropped: dict[str, int] = {}
    per_step: list[int] = []
    prev = n_universe
    for i, desc in enumerate(steps):
        n = int(first[f"n_step{i}"])
        key, j = desc, 2
        while key in dropped:
            key, j = f"{desc} ({j})", j + 1
        dropped[key] = prev - n
        per_step.append(prev - n)
        prev = n
    return dropped, per_step, n_universe, prev


def empty_message(target: str, n_universe: int, dropped: dict[str, int]) -> str:
    if n_universe == 0:
        return f"no features to search: the build has no features for {target}"
    left = n_universe
    for desc, n in dropped.items():
        if n and n == left:
            return (
                f"no features left for {target}: the filter '{desc}' removed the last {n} "
                f"(removed per filter: {_fmt_dropped(dropped)}); relax or remove it"
            )
        left -= n
    return f"no features left for {target} (removed per filter: {_fmt_dropped(dropped)})"


def _fmt_dropped(dropped: dict[str, int]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in dropped.items())


def build_frame(
    feats: list[int],
    d: DetailStats,
    rank: Score,
    display: dict[str, Score],
    tokens: dict[int, list[str]],
    out_cols: dict[str, Any],
) -> pd.DataFrame:
    import pandas as pd

    cols: dict[str, Any] = {
        "rank": np.arange(1, len(feats) + 1),
        "feature": np.asarray(feats, dtype=np.int64),
    }
    cols[rank.name] = rank.numpy(d) if len(feats) else np.zeros(0)
    for name, sc in display.items():
        if name != rank.name:
            cols[name] = sc.numpy(d) if len(feats) else np.zeros(0)
    freq = d.freq
    c_idx = list(d.contrast)
    cols["f_target"] = freq[:, d.target] if len(feats) else np.zeros(0)
    cols["f_contrast"] = d.pooled("n_active") / max(d.tokens(), 1.0)
    cols["f_contrast_max"] = freq[:, c_idx].max(axis=1) if len(feats) and c_idx else np.zeros(len(feats))
    cols["max_contrast"] = (
        [d.conditions[c_idx[int(i)]] for i in freq[:, c_idx].argmax(axis=1)]
        if len(feats) and c_idx
        else [None] * len(feats)
    )
    r_idx = list(d.random)
    cols["f_random"] = freq[:, r_idx].max(axis=1) if len(feats) and r_idx else np.full(len(feats), np.nan)
    cols["mean_target"] = d.mean[:, d.target] if len(feats) else np.zeros(0)
    for j, c in enumerate(d.conditions):
        cols[f"freq[{c}]"] = freq[:, j] if len(feats) else np.zeros(0)
    cols.update(out_cols)
    cols["top_tokens"] = [tokens.get(int(f), []) for f in feats]
    return pd.DataFrame(cols)
