"""Strength sweep: for each strength, a target metric and fluency; pick the strongest within a budget.

Fluency is the perplexity of the generated continuation under the *unsteered* model, given its prompt
(``fluency="prompted"``, default) or on its own after BOS (``fluency="alone"``: for steering that changes
the language or topic, where the prompted score would also charge the switch itself). The budget is a
maximum perplexity ratio to the unsteered generations (``max_ppl_ratio``) and/or an absolute maximum
(``max_ppl``). The chosen strength is the one with the largest absolute value among those within budget
(strength 0 excluded).

The metric is any callable ``(prompts, continuations) -> float``, e.g. :func:`language_accuracy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from saesteer.errors import SteeringVectorError
from saesteer.steer.generate import Backend, Generation, GenerationConfig
from saesteer.steer.hooks import SaeArg
from saesteer.steer.vector import SteeringVector, check_strength

Metric = Callable[[Sequence[str], Sequence[str]], float]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SweepRow:
    strength: float
    metric: float
    perplexity: float
    ppl_ratio: float
    within_budget: bool
    n_tokens: int
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepResult:
    rows: tuple[SweepRow, ...]
    chosen: SweepRow | None
    baseline: SweepRow
    budget: dict[str, float | str | None] = field(default_factory=dict)


def language_accuracy(lang: str) -> Metric:
    """Fraction of continuations that py3langid classifies as ``lang`` (e.g. ``"fr"``)."""
    lang = lang.removeprefix("language=")

    def metric(_prompts: Sequence[str], texts: Sequence[str]) -> float:
        import py3langid

        if not texts:
            return 0.0
        hits = sum(1 for t in texts if t.strip() and py3langid.classify(t)[0] == lang)
        return hits / len(texts)

    metric.__name__ = f"language_accuracy[{lang}]"
    return metric


def perplexity(backend: Backend, gens: Sequence[Generation], *, fluency: str = "prompted") -> tuple[float, int]:
    """Token-weighted perplexity of the continuations under the backend's unsteered model, given their
    prompts (``"prompted"``) or on their own after BOS (``"alone"``)."""
    if fluency not in ("prompted", "alone"):
        raise SteeringVectorError(f"fluency must be 'prompted' or 'alone', not {fluency!r}")
    prompts = [g.prompt if fluency == "prompted" else "" for g in gens]
    scored = backend.continuation_nll(prompts, [list(g.token_ids) for g in gens])
    nll = sum(s for s, _ in scored)
    n = sum(k for _, k in scored)
    return (math.exp(nll / n) if n else float("nan")), n


def sweep(
    backend: Backend,
    vector: SteeringVector,
    prompts: Sequence[str],
    strengths: Sequence[float],
    metric: Metric,
    *,
    cfg: GenerationConfig = GenerationConfig(),
    max_ppl_ratio: float | None = 2.0,
    max_ppl: float | None = None,
    fluency: str = "prompted",
    sae: SaeArg = None,
    n_examples: int = 2,
    progress: Progress | None = None,
) -> SweepResult:
    """Run the sweep (see the module docstring); the unsteered baseline is measured once."""
    if not prompts:
        raise SteeringVectorError("the sweep needs at least one prompt")
    if not strengths:
        raise SteeringVectorError("the sweep needs at least one strength")
    strengths = [check_strength(s, vector, what="sweep strength") for s in strengths]
    total = len(strengths) + 1

    def row_for(strength: float, gens: Sequence[Generation], base_ppl: float | None) -> SweepRow:
        texts = [g.text for g in gens]
        ppl, n = perplexity(backend, gens, fluency=fluency)
        ratio = ppl / base_ppl if base_ppl else 1.0
        ok = (max_ppl_ratio is None or ratio <= max_ppl_ratio) and (max_ppl is None or ppl <= max_ppl)
        return SweepRow(
            float(strength), float(metric(prompts, texts)), ppl, ratio, bool(ok), n, tuple(texts[:n_examples])
        )

    base_gens = backend.generate(prompts, cfg)
    baseline = row_for(0.0, base_gens, None)
    if progress is not None:
        progress(1, total)
    rows = []
    for i, s in enumerate(strengths):
        gens = base_gens if s == 0 else backend.generate(prompts, cfg, steer=(vector, float(s)), sae=sae)
        rows.append(row_for(s, gens, baseline.perplexity))
        if progress is not None:
            progress(i + 2, total)
    ok_rows = [r for r in rows if r.within_budget and r.strength != 0]
    chosen = max(ok_rows, key=lambda r: (abs(r.strength), r.metric)) if ok_rows else None
    return SweepResult(tuple(rows), chosen, baseline, {"max_ppl_ratio": max_ppl_ratio, "max_ppl": max_ppl, "fluency": fluency})
