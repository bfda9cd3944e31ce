"""Filters over the per-feature aggregates of a search; each compiles to named SQL predicates.

A filter contributes one or more ``(description, predicate)`` steps; a predicate is true for the
features to keep. The search counts how many features each step removes, in order, so a result can
say which filter emptied it. Values are bound as parameters (:meth:`SqlContext.bind`).

Frequencies are per counted token: ``n_active / conditions.n_tokens``; means are ``sum_act / n_tokens``
(inactive tokens count as 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from saesteer.errors import SaesteerError
from saesteer.index.search_table import STORED_RANDOM_RELATIVE, random_relative_sql
from saesteer.select.sqlbuild import SqlContext, WideLayout

DEFAULT_RANDOM_RELATIVE = 0.2


def _check(name: str, value: float, lo: float = 0.0, hi: float | None = None) -> float:
    v = float(value)
    if v != v or v < lo or (hi is not None and v > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise SaesteerError(f"{name} must be in {rng}, got {value!r}")
    return v


@dataclass(frozen=True)
class DropRandom:
    """LangFIR's random-token filter: drop the features that also fire on random-token sequences.

    A feature is dropped when, on any random-token condition in use (all of the build's by default):

    - ``max_freq``: its activation frequency exceeds this absolute value, or
    - ``max_mean``: its mean activation per token exceeds this absolute value, or
    - ``relative_to_target``: its frequency exceeds this fraction of its frequency on the target
      (and its mean exceeds this fraction of its target mean, when ``max_mean`` is also given).

    With no threshold given, ``relative_to_target = 0.2``. Each criterion is counted separately.
    """

    max_freq: float | None = None
    max_mean: float | None = None
    relative_to_target: float | None = None
    conditions: tuple[str, ...] | None = None  # random conditions; None = every is_random condition

    def __post_init__(self) -> None:
        if self.max_freq is not None:
            _check("drop_random max_freq", self.max_freq, 0.0, 1.0)
        if self.max_mean is not None:
            _check("drop_random max_mean", self.max_mean)
        if self.relative_to_target is not None:
            _check("drop_random relative_to_target", self.relative_to_target)

    @property
    def resolved_relative(self) -> float | None:
        if self.max_freq is None and self.max_mean is None and self.relative_to_target is None:
            return DEFAULT_RANDOM_RELATIVE
        return self.relative_to_target

    def needs(self, n_bins: int) -> tuple[str, ...]:
        out = ["t_n", "r_max_freq"]
        if self.max_mean is not None:
            out += ["t_sum", "r_max_mean"]
        return tuple(out)

    def predicates(self, ctx: SqlContext) -> list[tuple[str, str]]:
        out = []
        if self.max_freq is not None:
            p = ctx.bind(self.max_freq, "random_max_freq")
            out.append((f"random: frequency on random tokens > {self.max_freq:g}", f"r_max_freq <= {p}"))
        if self.max_mean is not None:
            p = ctx.bind(self.max_mean, "random_max_mean")
            out.append(
                (f"random: mean activation on random tokens > {self.max_mean:g}", f"r_max_mean <= {p}")
            )
        rel = self.resolved_relative
        if rel is not None:
            p = ctx.bind(rel, "random_rel")
            out.append(
                (
                    f"random: frequency on random tokens > {rel:g} x target frequency",
                    random_relative_sql("r_max_freq", "t_n", "$tok_t", p),
                )
            )
            if self.max_mean is not None:
                out.append(
                    (
                        f"random: mean on random tokens > {rel:g} x target mean",
                        f"r_max_mean <= {p} * t_sum / $tok_t",
                    )
                )
        return out

    def stored_predicates(self, lay: WideLayout) -> list[tuple[str, str]] | None:
        """On a search table that stores this filter's verdict (the defaults: the relative test alone, on
        every random condition), its step reads the stored column (the same expression at build time)."""
        rel = self.resolved_relative
        if self.max_freq is not None or self.max_mean is not None or rel != STORED_RANDOM_RELATIVE:
            return None
        col = lay.stored_random_keep()
        if col is None:
            return None
        return [(f"random: frequency on random tokens > {rel:g} x target frequency", col)]

    def describe(self) -> str:
        parts = []
        if self.max_freq is not None:
            parts.append(f"max_freq={self.max_freq:g}")
        if self.max_mean is not None:
            parts.append(f"max_mean={self.max_mean:g}")
        if self.resolved_relative is not None:
            parts.append(f"relative_to_target={self.resolved_relative:g}")
        if self.conditions:
            parts.append("on " + ",".join(self.conditions))
        return f"drop_random({', '.join(parts)})"


@dataclass(frozen=True)
class DropDead:
    """Drop dead and nearly dead features: active on fewer than ``min_count`` counted tokens over every
    condition of the build (random-token conditions included); their statistics are noise.

    (A search always excludes the features never active in the build, and reports them as dead.)
    """

    min_count: int = 10

    def __post_init__(self) -> None:
        _check("drop_dead min_count", self.min_count, 1.0)

    def needs(self, n_bins: int) -> tuple[str, ...]:
        return ("a_n",)

    def predicates(self, ctx: SqlContext) -> list[tuple[str, str]]:
        p = ctx.bind(int(self.min_count), "dead_min_count")
        return [(f"nearly dead: active on fewer than {self.min_count} tokens in the build", f"a_n >= {p}")]

    def describe(self) -> str:
        return f"drop_dead(min_count={self.min_count})"


@dataclass(frozen=True)
class DropDense:
    """Drop ultra-dense features: active on more than ``max_freq`` of the counted tokens of *every*
    non-random condition (a language feature is dense on its own language only, so it survives)."""

    max_freq: float = 0.1

    def __post_init__(self) -> None:
        _check("drop_dense max_freq", self.max_freq, 0.0, 1.0)

    def needs(self, n_bins: int) -> tuple[str, ...]:
        return ("nr_min_freq", "nr_rows")

    def predicates(self, ctx: SqlContext) -> list[tuple[str, str]]:
        p = ctx.bind(self.max_freq, "dense_max_freq")
        return [
            (
                f"dense: frequency > {self.max_freq:g} on every non-random condition",
                f"NOT (nr_rows >= $n_nonrandom AND nr_min_freq > {p})",
            )
        ]

    def describe(self) -> str:
        return f"drop_dense(max_freq={self.max_freq:g})"


@dataclass(frozen=True)
class DropBosOnly:
    """Drop features that fire (almost) only on BOS: their rate on BOS positions is at least ``ratio``
    times their rate on counted tokens, over every condition of the build."""

    ratio: float = 10.0

    def __post_init__(self) -> None:
        _check("drop_bos_only ratio", self.ratio, 1.0)

    def needs(self, n_bins: int) -> tuple[str, ...]:
        return ("bos_n", "a_n")

    def predicates(self, ctx: SqlContext) -> list[tuple[str, str]]:
        p = ctx.bind(self.ratio, "bos_ratio")
        pred = f"NOT (bos_n > 0 AND bos_n / greatest($bos_all, 1) >= {p} * a_n / greatest($tok_all, 1))"
        return [(f"bos-only: fires {self.ratio:g}x more often on BOS than on other tokens", pred)]

    def describe(self) -> str:
        return f"drop_bos_only(ratio={self.ratio:g})"


@dataclass(frozen=True)
class MinFreq:
    """Keep the features active on at least ``target_freq`` of the target's counted tokens."""

    target_freq: float

    def __post_init__(self) -> None:
        _check("min_freq target_freq", self.target_freq, 0.0, 1.0)

    def needs(self, n_bins: int) -> tuple[str, ...]:
        return ("t_n",)

    def predicates(self, ctx: SqlContext) -> list[tuple[str, str]]:
        p = ctx.bind(self.target_freq, "min_freq")
        return [(f"target frequency < {self.target_freq:g}", f"t_n / $tok_t >= {p}")]

    def describe(self) -> str:
        return f"min_freq({self.target_freq:g})"


@dataclass(frozen=True)
class MinRatio:
    """Keep the features that fire on the target at least ``ratio`` times as often as on *every* contrast
    condition (their largest one): the condition is where they fire, not one of several. A feature that
    never fires on the target is dropped (0 >= ratio x 0 would keep it)."""

    ratio: float

    def __post_init__(self) -> None:
        _check("min_ratio ratio", self.ratio, 1.0)

    def needs(self, n_bins: int) -> tuple[str, ...]:
        return ("t_n", "c_max_freq")

    def predicates(self, ctx: SqlContext) -> list[tuple[str, str]]:
        p = ctx.bind(self.ratio, "min_ratio")
        return [
            (
                f"target frequency < {self.ratio:g} x its largest contrast frequency",
                f"t_n > 0 AND t_n / $tok_t >= {p} * c_max_freq",
            )
        ]

    def describe(self) -> str:
        return f"min_ratio({self.ratio:g})"


Filter = DropRandom | DropDead | DropDense | DropBosOnly | MinFreq | MinRatio
