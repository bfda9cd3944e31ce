"""Strength sweep: for each strength, a target metric and fluency; pick the strongest within a budget.

Fluency is the perplexity of the generated continuation under the *unsteered* model, given its prompt
(``fluency="prompted"``, default) or on its own after BOS (``fluency="alone"``: for steering that changes
the language or topic, where the prompted score would also charge the switch itself). The budget is a
maximum perplexity ratio to the unsteered generations (``max_ppl_ratio``) and/or an absolute maximum
(``max_ppl``), and the continuations must not repeat themselves more than unsteered ones do
(:mod:`saesteer.steer.fluency`: at most ``max_repetitive_share`` of them outside the unsteered repetition
range; low perplexity alone would call "wird wird wird ..." fluent). The chosen strength is the one with the
largest absolute value among those within budget (strength 0 excluded).

:func:`search_strength` replaces a fixed grid: per vector, a geometric search up to where fluency breaks,
refined by bisection, and down from the weakest strength tried while that one is already on target,
reporting the vector's working window (weakest strength on target, strongest fluent) and choosing its
geometric centre.

The metric is any callable ``(prompts, continuations) -> float``, e.g. :func:`language_accuracy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from saesteer.errors import SteeringVectorError
from saesteer.steer.fluency import FluencyCriteria
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
    repetitive_share: float = 0.0  # share of continuations outside the unsteered repetition range


@dataclass(frozen=True)
class SweepResult:
    rows: tuple[SweepRow, ...]
    chosen: SweepRow | None
    baseline: SweepRow
    budget: dict[str, float | str | None] = field(default_factory=dict)
    search: StrengthSearch | None = None  # set when the strengths were searched (``sweep(search=...)``)


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
    max_repetitive_share: float = 0.25,
    search: tuple[float, float] | None = None,
    target: float = 0.8,
) -> SweepResult:
    """Run the sweep (see the module docstring); the unsteered baseline is measured once.

    ``search=(start, cap)``: instead of ``strengths``, search the strength (:func:`search_strength`: geometric
    from ``start`` until fluency breaks or ``cap``, then bisection); the chosen row is then
    :attr:`StrengthSearch.chosen` (the window's geometric centre when the target is reached fluently, else the
    best metric among the fluent strengths), and ``result.search`` holds the window (``target``: the metric
    to reach)."""
    if not prompts:
        raise SteeringVectorError("the sweep needs at least one prompt")
    if not strengths and search is None:
        raise SteeringVectorError("the sweep needs at least one strength")
    strengths = [check_strength(s, vector, what="sweep strength") for s in strengths]
    total = len(strengths) + 1 if search is None else 10

    criteria: FluencyCriteria | None = None

    def row_for(strength: float, gens: Sequence[Generation], base_ppl: float | None) -> SweepRow:
        texts = [g.text for g in gens]
        ppl, n = perplexity(backend, gens, fluency=fluency)
        ratio = ppl / base_ppl if base_ppl else 1.0
        ids = [g.token_ids for g in gens]
        share = sum(map(criteria.is_repetitive, ids)) / len(ids) if criteria is not None and ids else 0.0
        ok = (
            (max_ppl_ratio is None or ratio <= max_ppl_ratio)
            and (max_ppl is None or ppl <= max_ppl)
            and share <= max_repetitive_share
        )
        return SweepRow(
            float(strength), float(metric(prompts, texts)), ppl, ratio, bool(ok), n, tuple(texts[:n_examples]), share
        )

    base_gens = backend.generate(prompts, cfg)
    baseline = row_for(0.0, base_gens, None)
    if any(g.token_ids for g in base_gens):
        criteria = FluencyCriteria.calibrate([baseline.perplexity], [g.token_ids for g in base_gens],
                                             max_repetitive_share=max_repetitive_share)
    if progress is not None:
        progress(1, total)
    rows: list[SweepRow] = []

    def run(s: float) -> SweepRow:
        gens = base_gens if s == 0 else backend.generate(prompts, cfg, steer=(vector, float(s)), sae=sae)
        rows.append(row_for(s, gens, baseline.perplexity))
        if progress is not None:
            progress(len(rows) + 1, max(total, len(rows) + 2))
        return rows[-1]

    found = None
    if search is None:
        for s in strengths:
            run(s)
        ok_rows = [r for r in rows if r.within_budget and r.strength != 0]
        chosen = max(ok_rows, key=lambda r: (abs(r.strength), r.metric)) if ok_rows else None
    else:
        def probe(s: float) -> Probe:
            row = run(s)
            return Probe(s, row.metric, row.within_budget)

        found = search_strength(probe, start=search[0], cap=search[1], target=target)
        rows.sort(key=lambda r: r.strength)
        pick = found.chosen
        chosen = next(r for r in rows if r.strength == pick.strength) if pick is not None else None
    budget: dict[str, float | str | None] = {"max_ppl_ratio": max_ppl_ratio, "max_ppl": max_ppl, "fluency": fluency,
                                             "max_repetitive_share": max_repetitive_share}
    if criteria is not None:
        budget |= {"min_distinct": criteria.min_distinct, "max_repeat": criteria.max_repeat}
    return SweepResult(tuple(rows), chosen, baseline, budget, found)


# -- per-vector strength search ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One strength tried by :func:`search_strength`: the target metric and whether fluency held."""

    strength: float
    accuracy: float
    fluent: bool


@dataclass(frozen=True)
class StrengthSearch:
    """Every strength tried for one vector (sorted), and what they say about its working window."""

    probes: tuple[Probe, ...]
    target: float
    capped: bool  # the search stopped at the cap with fluency intact (fluency was never broken)

    @property
    def strengths(self) -> list[float]:
        return [p.strength for p in self.probes]

    @property
    def weakest_on_target(self) -> Probe | None:
        """The weakest fluent strength whose accuracy reaches ``target``."""
        ok = [p for p in self.probes if p.fluent and p.accuracy >= self.target]
        return min(ok, key=lambda p: p.strength) if ok else None

    @property
    def strongest_fluent(self) -> Probe | None:
        ok = [p for p in self.probes if p.fluent]
        return max(ok, key=lambda p: p.strength) if ok else None

    @property
    def window(self) -> float:
        """strongest fluent / weakest on target (>= 1; ``nan`` when the target is never reached fluently):
        how far the strength can be off and the vector still work."""
        lo, hi = self.weakest_on_target, self.strongest_fluent
        return hi.strength / lo.strength if lo is not None and hi is not None else float("nan")

    @property
    def chosen(self) -> Probe | None:
        """The point to use. With a window (the target reached fluently): its geometric centre, i.e. the
        fluent on-target strength closest in log-space to ``sqrt(weakest_on_target * strongest_fluent)``
        (on a tie the better accuracy, then the weaker strength), so a strength a little off either way
        still works. Without one: the best accuracy among the fluent strengths, the STRONGER one on a tie
        (where nothing reaches the target, the method is read at the most it does while still fluent, not at
        the weakest strength tried). None if none is fluent."""
        lo, hi = self.weakest_on_target, self.strongest_fluent
        if lo is not None and hi is not None:
            centre = (math.log(lo.strength) + math.log(hi.strength)) / 2
            on = [p for p in self.probes if p.fluent and p.accuracy >= self.target]
            return min(on, key=lambda p: (round(abs(math.log(p.strength) - centre), 9), -p.accuracy, p.strength))
        ok = [p for p in self.probes if p.fluent]
        return min(ok, key=lambda p: (-p.accuracy, -p.strength)) if ok else None

    @property
    def chosen_at_edge(self) -> bool:
        """True when the chosen point is the weakest or the strongest strength tried, or none is fluent:
        the search did not bracket it (a stronger broken and a weaker strength were both tried)."""
        c = self.chosen
        if c is None or len(self.probes) < 2:
            return True
        return c.strength in (self.probes[0].strength, self.probes[-1].strength)


def search_strength(
    evaluate: Callable[[float], Probe],
    *,
    start: float,
    cap: float,
    factor: float = 2.0,
    refine: int = 2,
    refine_target: int = 1,
    target: float = 0.8,
    max_down: int = 3,
    patience: int = 1,
    max_down_target: int = 4,
) -> StrengthSearch:
    """Search one vector's strength until fluency breaks, bracketing both edges of its window (see
    :class:`StrengthSearch`).

    1. coarse, geometric: ``start, start*factor, ...`` until ``patience + 1`` strengths in a row are not
       fluent (one noisy cell does not end the search) or the cap is reached (if ``start`` itself is not
       fluent, first down by ``factor`` up to ``max_down`` times);
    2. the lower edge: while the weakest strength tried is fluent and already reaches ``target``, down by
       ``factor`` (up to ``max_down_target`` times) until a strength misses the target or is not fluent, so
       the weakest strength on target is measured, not assumed to be where the search happened to start;
    3. ``refine`` bisections (geometric midpoints) between the strongest fluent and the first broken strength;
    4. ``refine_target`` bisections between the weakest fluent strength reaching ``target`` and the strongest
       strength below it;
    5. while the chosen point (:attr:`StrengthSearch.chosen`) is the weakest strength tried (a method that
       never reaches the target and breaks above its start), down by ``factor`` (up to ``max_down`` times), so
       it is bracketed on both sides.

    ``evaluate(strength)`` runs the vector at that strength; each strength is evaluated once.
    """
    if not (0 < start <= cap) or factor <= 1:
        raise SteeringVectorError(f"the search needs 0 < start <= cap and factor > 1 (got {start}, {cap}, {factor})")
    seen: dict[float, Probe] = {}

    def probe(s: float) -> Probe:
        key = float(f"{s:.6g}")
        if key not in seen:
            seen[key] = evaluate(key)
        return seen[key]

    s = start
    p = probe(s)
    for _ in range(max_down):
        if p.fluent:
            break
        s /= factor
        p = probe(s)
    capped = False
    broken_run = 0
    while True:
        broken_run = 0 if p.fluent else broken_run + 1
        if broken_run > patience:
            break
        if s * factor > cap * (1 + 1e-9):
            capped = p.fluent
            break
        s *= factor
        p = probe(s)

    def ordered() -> list[Probe]:
        return sorted(seen.values(), key=lambda q: q.strength)

    for _ in range(max_down_target):
        weakest = ordered()[0]
        if not (weakest.fluent and weakest.accuracy >= target):
            break
        probe(weakest.strength / factor)
    for _ in range(refine):
        pts = ordered()
        fluent = [q.strength for q in pts if q.fluent]
        if not fluent:
            break
        lo = max(fluent)
        broken = [q.strength for q in pts if not q.fluent and q.strength > lo]
        if not broken:
            break
        mid = math.sqrt(lo * min(broken))
        if float(f"{mid:.6g}") in seen:
            break
        probe(mid)
    for _ in range(refine_target):
        res = StrengthSearch(tuple(ordered()), target, capped)
        w = res.weakest_on_target
        below = [q.strength for q in res.probes if w is not None and q.strength < w.strength]
        if w is None or not below:
            break
        mid = math.sqrt(max(below) * w.strength)
        if float(f"{mid:.6g}") in seen:
            break
        probe(mid)
    for _ in range(max_down):
        res = StrengthSearch(tuple(ordered()), target, capped)
        if res.chosen is None or res.chosen.strength != res.probes[0].strength:
            break
        probe(res.chosen.strength / factor)  # the chosen point is the weakest tried: bracket it from below too
    return StrengthSearch(tuple(ordered()), target, capped)
