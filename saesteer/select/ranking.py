"""Score objects: each compiles to a SQL expression (to rank the whole index) and evaluates the same
formula in numpy (:mod:`saesteer.select.scores`) on the detail of the returned features.

The SQL is written over the aggregate columns of :mod:`saesteer.select.sqlbuild` (``t_n`` = target
active count, ``c_n`` = pooled contrast active count, ...) and its constants (``$tok_t``, ``$tok_c``, ``$n_contrast``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from saesteer.errors import SaesteerError
from saesteer.index.search_table import log_odds_z_sql
from saesteer.select import scores as S
from saesteer.select.detail import DetailStats
from saesteer.select.sqlbuild import SqlContext


@dataclass(frozen=True)
class Score:
    """Base class. Subclasses set ``name``, ``higher_is_better``, ``_needs`` and implement ``sql``/``numpy``."""

    name: ClassVar[str] = "score"
    higher_is_better: ClassVar[bool] = True
    _needs: ClassVar[tuple[str, ...]] = ()

    def needs(self, n_bins: int) -> tuple[str, ...]:
        return self._needs

    def helpers(self, ctx: SqlContext) -> list[tuple[str, str]]:
        return []

    def requires(self, ctx: SqlContext) -> list[tuple[str, str]]:
        return []

    def sql(self, ctx: SqlContext) -> str:
        raise NotImplementedError

    def numpy(self, d: DetailStats) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name

    def as_weight(self, values: np.ndarray, d: DetailStats) -> np.ndarray:
        """Feature weights from score values (``weights="score"``): non-negative, larger = stronger."""
        return np.clip(np.nan_to_num(values), 0.0, None)


@dataclass(frozen=True)
class FreqDiff(Score):
    """``f_t - f_c``: target minus pooled contrast activation frequency (:func:`scores.freq_diff`)."""

    name: ClassVar[str] = "freq_diff"
    _needs: ClassVar[tuple[str, ...]] = ("t_n", "c_n")

    def sql(self, ctx: SqlContext) -> str:
        return "t_n / $tok_t - c_n / $tok_c"

    def numpy(self, d: DetailStats) -> np.ndarray:
        return S.freq_diff(d.t("n_active"), d.t_tokens, d.pooled("n_active"), d.tokens())


@dataclass(frozen=True)
class FreqRatio(Score):
    """``(f_t + eps) / (f_c + eps)`` (:func:`scores.freq_ratio`)."""

    eps: float = 1e-6
    name: ClassVar[str] = "freq_ratio"
    _needs: ClassVar[tuple[str, ...]] = ("t_n", "c_n")

    def sql(self, ctx: SqlContext) -> str:
        e = ctx.bind(float(self.eps), "eps")
        return f"(t_n / $tok_t + {e}) / (c_n / $tok_c + {e})"

    def numpy(self, d: DetailStats) -> np.ndarray:
        return S.freq_ratio(d.t("n_active"), d.t_tokens, d.pooled("n_active"), d.tokens(), self.eps)


@dataclass(frozen=True)
class LogOdds(Score):
    """Smoothed log-odds ratio, target vs pooled contrast (:func:`scores.log_odds`)."""

    alpha: float = 0.5
    name: ClassVar[str] = "log_odds"
    _needs: ClassVar[tuple[str, ...]] = ("t_n", "c_n")

    def sql(self, ctx: SqlContext) -> str:
        a = ctx.bind(float(self.alpha), "alpha")
        return f"ln((t_n + {a}) / ($tok_t - t_n + {a})) - ln((c_n + {a}) / ($tok_c - c_n + {a}))"

    def numpy(self, d: DetailStats) -> np.ndarray:
        return S.log_odds(d.t("n_active"), d.t_tokens, d.pooled("n_active"), d.tokens(), self.alpha)


@dataclass(frozen=True)
class LogOddsZ(Score):
    """The smoothed log-odds over its standard error (:func:`scores.log_odds_z`): the default ranking."""

    alpha: float = 0.5
    name: ClassVar[str] = "log_odds_z"
    _needs: ClassVar[tuple[str, ...]] = ("t_n", "c_n")

    def sql(self, ctx: SqlContext) -> str:
        return log_odds_z_sql("t_n", "c_n", "$tok_t", "$tok_c", ctx.bind(float(self.alpha), "alpha"))

    def numpy(self, d: DetailStats) -> np.ndarray:
        return S.log_odds_z(d.t("n_active"), d.t_tokens, d.pooled("n_active"), d.tokens(), self.alpha)


@dataclass(frozen=True)
class Monolinguality(Score):
    """ν: mean activation on the target minus the mean of the contrast conditions' means (Deng et al. 2025)."""

    name: ClassVar[str] = "nu"
    _needs: ClassVar[tuple[str, ...]] = ("t_sum", "c_mean_sum")

    def sql(self, ctx: SqlContext) -> str:
        return "t_sum / $tok_t - c_mean_sum / $n_contrast"

    def numpy(self, d: DetailStats) -> np.ndarray:
        idx = list(d.contrast)
        return S.monolinguality(d.t("sum_act"), d.t_tokens, d.sum_act[:, idx], d.n_tokens[idx])


@dataclass(frozen=True)
class Entropy(Score):
    """LAPE-style entropy of the activation probabilities over target + contrast (Tang et al. 2024).

    Lower is better. With ``peak_on_target`` (default) a feature must fire most often on the target
    (LAPE assigns a low-entropy feature to the conditions where it fires): otherwise a German feature
    would rank high in a French search.
    """

    peak_on_target: bool = True
    name: ClassVar[str] = "entropy"
    higher_is_better: ClassVar[bool] = False
    _needs: ClassVar[tuple[str, ...]] = ("e_fsum", "e_fln", "t_n", "c_max_freq")

    def sql(self, ctx: SqlContext) -> str:
        return "CASE WHEN e_fsum > 0 THEN greatest(ln(e_fsum) - e_fln / e_fsum, 0.0) END"

    def requires(self, ctx: SqlContext) -> list[tuple[str, str]]:
        if not self.peak_on_target:
            return []
        return [
            (
                "entropy: fires more often on another condition than on the target",
                "t_n / $tok_t >= c_max_freq",
            )
        ]

    def numpy(self, d: DetailStats) -> np.ndarray:
        idx = [d.target, *d.contrast]
        return np.maximum(S.lape_entropy(d.n_active[:, idx], d.n_tokens[idx]), 0.0)

    def as_weight(self, values: np.ndarray, d: DetailStats) -> np.ndarray:
        return np.clip(np.log(1 + len(d.contrast)) - np.nan_to_num(values, nan=np.inf), 0.0, None)


@dataclass(frozen=True)
class Smd(Score):
    """Standardized mean difference (Cohen's d), target vs pooled contrast, from sums and sums of squares."""

    name: ClassVar[str] = "smd"
    _needs: ClassVar[tuple[str, ...]] = ("t_sum", "t_sq", "c_sum", "c_sq")

    def sql(self, ctx: SqlContext) -> str:
        ss = "(greatest(t_sq - t_sum * t_sum / $tok_t, 0.0) + greatest(c_sq - c_sum * c_sum / $tok_c, 0.0))"
        return f"(t_sum / $tok_t - c_sum / $tok_c) / NULLIF(sqrt({ss} / greatest($tok_t + $tok_c - 2.0, 1.0)), 0.0)"

    def numpy(self, d: DetailStats) -> np.ndarray:
        return S.smd(
            d.t("sum_act"), d.t("sum_sq"), d.t_tokens, d.pooled("sum_act"), d.pooled("sum_sq"), d.tokens()
        )


@dataclass(frozen=True)
class Auroc(Score):
    """AUROC of target vs pooled contrast tokens, from the activation histograms (:func:`scores.auroc_from_hist`)."""

    name: ClassVar[str] = "auroc"

    def needs(self, n_bins: int) -> tuple[str, ...]:
        return tuple(f"{side}_h{i}" for side in "tc" for i in range(1, n_bins + 1))

    def helpers(self, ctx: SqlContext) -> list[tuple[str, str]]:
        b = ctx.n_bins
        out = [
            ("_t0", "$tok_t - (" + " + ".join(f"t_h{i}" for i in range(1, b + 1)) + ")"),
            ("_c0", "$tok_c - (" + " + ".join(f"c_h{i}" for i in range(1, b + 1)) + ")"),
            ("_cc0", "_c0"),
        ]
        out += [(f"_cc{i}", f"_cc{i - 1} + c_h{i}") for i in range(1, b + 1)]
        return out

    def sql(self, ctx: SqlContext) -> str:
        terms = ["_t0 * _c0 / 2.0"] + [
            f"t_h{i} * (_cc{i - 1} + c_h{i} / 2.0)" for i in range(1, ctx.n_bins + 1)
        ]
        return "(" + " + ".join(terms) + ") / ($tok_t * $tok_c)"

    def bounds(self, ctx: SqlContext) -> tuple[str, str, tuple[str, ...]]:
        """Bounds from the active fractions ``p_t``, ``p_c`` alone (valid when active = positive, i.e. a
        build threshold of 0): a target token that fires beats at least every silent contrast token and at
        most everything; a silent one ties with the silent contrast tokens. So
        ``p_t (1 - p_c) + (1 - p_t)(1 - p_c) / 2 <= AUROC <= p_t + (1 - p_t)(1 - p_c) / 2`` (width ``p_t p_c``)."""
        pt, pc = "(t_n / $tok_t)", "(c_n / $tok_c)"
        tie = f"(1.0 - {pt}) * (1.0 - {pc}) / 2.0"
        return f"{pt} * (1.0 - {pc}) + {tie}", f"{pt} + {tie}", ("t_n", "c_n")

    def numpy(self, d: DetailStats) -> np.ndarray:
        return S.auroc_from_hist(d.t("hist"), d.t_tokens, d.pooled("hist"), d.tokens())

    def as_weight(self, values: np.ndarray, d: DetailStats) -> np.ndarray:
        return np.clip(np.nan_to_num(values) - 0.5, 0.0, None)


SCORES: dict[str, type[Score]] = {
    cls.name: cls for cls in (LogOddsZ, LogOdds, FreqDiff, FreqRatio, Monolinguality, Entropy, Smd, Auroc)
}
DEFAULT_RANK = "log_odds_z"


def get_score(score: str | Score, **params: float | bool) -> Score:
    """A score object by name (``log_odds_z``, ``log_odds``, ``freq_diff``, ``freq_ratio``, ``nu``, ``entropy``, ``smd``,
    ``auroc``) with its parameters, or ``score`` itself."""
    if isinstance(score, Score):
        if params:
            raise SaesteerError("pass parameters to the score object itself, not with an object")
        return score
    key = score.strip().lower().replace("-", "_")
    key = {"ν": "nu", "monolinguality": "nu", "lape": "entropy", "cohen_d": "smd", "logodds": "log_odds"}.get(
        key, key
    )
    if key not in SCORES:
        raise SaesteerError(f"unknown score {score!r}; known scores: {', '.join(SCORES)}")
    try:
        return SCORES[key](**params)  # type: ignore[arg-type]
    except TypeError as exc:
        raise SaesteerError(f"bad parameters for score {key!r}: {exc}") from exc
