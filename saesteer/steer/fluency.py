"""Fluency that repetition cannot fool: perplexity AND repetition, both judged against unsteered text.

Perplexity under the unsteered model rewards repetitive text ("wird wird wird ..." scores lower than a
normal sentence), so it cannot be the only fluency measure. Alongside it, two repetition measures per
continuation, on its token ids (language-neutral: no word splitting, so Chinese counts like German):

- ``distinct``: the share of distinct tokens, ``len(set(ids)) / len(ids)`` (1.0: no token repeats);
- ``repeat``: the repeated n-gram rate, the share of the continuation's n-grams (``n=3``) that already
  occurred earlier in it (0.0: none).

:class:`FluencyCriteria` is calibrated on *unsteered* continuations (:meth:`FluencyCriteria.calibrate`):
the perplexity limit is ``budget x`` their median, and the repetition range is theirs (the lowest
``distinct`` and the highest ``repeat`` among them, optionally trimmed by a quantile). A continuation is
*repetitive* when its repetition falls outside that range; a set of continuations (one evaluation
cell) is *fluent* when its median perplexity is within the limit AND at most ``max_repetitive_share`` of
them are repetitive (an empty continuation counts as repetitive: it cannot be judged fluent).

Used by ``saesteer eval language``, ``saesteer steer sweep`` (and the strength search of
:mod:`saesteer.steer.calibrate`) and the quickstart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

NGRAM = 3


def distinct_share(ids: Sequence[int]) -> float:
    """Share of distinct tokens in ``ids`` (``nan`` for an empty continuation)."""
    return len(set(ids)) / len(ids) if len(ids) else float("nan")


def repeated_ngram_rate(ids: Sequence[int], n: int = NGRAM) -> float:
    """Share of the ``n``-grams of ``ids`` that already occurred earlier in ``ids`` (0.0 when it has
    fewer than ``n`` tokens; ``nan`` when empty)."""
    if not len(ids):
        return float("nan")
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    if not grams:
        return 0.0
    seen: set[tuple[int, ...]] = set()
    repeats = 0
    for g in grams:
        repeats += g in seen
        seen.add(g)
    return repeats / len(grams)


@dataclass(frozen=True)
class Repetition:
    distinct: float
    repeat: float


def repetition(ids: Sequence[int], n: int = NGRAM) -> Repetition:
    """Both repetition measures of one continuation's token ids."""
    return Repetition(distinct_share(ids), repeated_ngram_rate(ids, n))


@dataclass(frozen=True)
class CellFluency:
    """The fluency of one set of continuations (one language x method x strength)."""

    ppl_median: float
    distinct_median: float
    repeat_median: float
    repetitive_share: float
    ppl_ok: bool
    repetition_ok: bool

    @property
    def fluent(self) -> bool:
        return self.ppl_ok and self.repetition_ok

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fluent": self.fluent}


@dataclass(frozen=True)
class FluencyCriteria:
    """What "fluent" means, in numbers calibrated on unsteered continuations (see the module docstring)."""

    max_ppl: float
    min_distinct: float
    max_repeat: float
    max_repetitive_share: float = 0.25
    baseline_ppl: float = float("nan")
    budget: float = float("nan")

    @classmethod
    def calibrate(
        cls,
        ppl: Sequence[float],
        token_ids: Sequence[Sequence[int]],
        *,
        budget: float = 3.0,
        quantile: float = 0.0,
        max_repetitive_share: float = 0.25,
        n: int = NGRAM,
    ) -> FluencyCriteria:
        """From unsteered continuations (their perplexities and token ids): perplexity limit
        ``budget x median``, repetition range ``[quantile, 1 - quantile]`` of theirs (0: min/max)."""
        reps = [repetition(t, n) for t in token_ids if len(t)]
        if not reps:
            raise ValueError("no non-empty unsteered continuation to calibrate fluency on")
        base = float(np.nanmedian(np.asarray(ppl, dtype=float)))
        distinct = np.array([r.distinct for r in reps])
        repeat = np.array([r.repeat for r in reps])
        return cls(
            max_ppl=budget * base,
            min_distinct=float(np.quantile(distinct, quantile)),
            max_repeat=float(np.quantile(repeat, 1.0 - quantile)),
            max_repetitive_share=max_repetitive_share,
            baseline_ppl=base,
            budget=budget,
        )

    def is_repetitive(self, ids: Sequence[int], n: int = NGRAM) -> bool:
        """Outside the unsteered repetition range (or empty)."""
        if not len(ids):
            return True
        r = repetition(ids, n)
        return r.distinct < self.min_distinct or r.repeat > self.max_repeat

    def judge(self, ppl: Sequence[float], token_ids: Sequence[Sequence[int]]) -> CellFluency:
        """The fluency of one cell: median perplexity within the limit and few enough repetitive continuations."""
        if len(ppl) != len(token_ids):
            raise ValueError(f"{len(ppl)} perplexities for {len(token_ids)} continuations")
        p = np.asarray(ppl, dtype=float)
        ppl_med = float(np.nanmedian(p)) if np.isfinite(p).any() else float("nan")
        reps = [repetition(t) for t in token_ids]
        flags = [self.is_repetitive(t) for t in token_ids]
        share = sum(flags) / len(flags) if flags else 1.0
        return CellFluency(
            ppl_median=ppl_med,
            distinct_median=_nanmedian([r.distinct for r in reps]),
            repeat_median=_nanmedian([r.repeat for r in reps]),
            repetitive_share=share,
            ppl_ok=bool(math.isfinite(ppl_med) and ppl_med <= self.max_ppl),
            repetition_ok=share <= self.max_repetitive_share,
        )

    def describe(self) -> str:
        return (
            f"median perplexity <= {self.max_ppl:.3g} ({self.budget:g}x the unsteered median {self.baseline_ppl:.3g}) "
            f"and at most {self.max_repetitive_share:.0%} of the continuations outside the unsteered repetition "
            f"range (distinct-token share >= {self.min_distinct:.2f}, repeated {NGRAM}-gram rate <= {self.max_repeat:.2f})"
        )


def _nanmedian(xs: Sequence[float]) -> float:
    a = np.asarray(xs, dtype=float)
    return float(np.nanmedian(a)) if np.isfinite(a).any() else float("nan")
