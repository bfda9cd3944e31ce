"""Calibration: the sweep's choice under a fluency budget, perplexity scoring, the language metric."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch

from saesteer.steer.calibrate import language_accuracy, perplexity, sweep
from saesteer.steer.generate import Generation, GenerationConfig, HFBackend, TLBackend
from saesteer.steer.vector import Component, ModelInfo, SteeringVector
from saesteer.testing.tiny_hf import make_tiny_hf_model

INFO = ModelInfo(id="stub", d_model=4, n_layers=2)
VEC = SteeringVector(components=(Component("blocks.0.hook_resid_post", torch.ones(4)),), model=INFO)


class StubBackend:
    """Generation whose 'text' is the strength and whose NLL per token grows with it."""

    name = "stub"
    info = INFO
    model = None
    check_model = True

    def generate(self, prompts, cfg=GenerationConfig(), *, steer=None, sae=None, progress=None):
        s = 0.0 if steer is None else steer[1]
        return [Generation(p, f"{s}", (int(s * 10), 1)) for p in prompts]

    def continuation_nll(self, prompts: Sequence[str], continuations):
        # per-token NLL = log(10 + 10 * strength): perplexity 10 unsteered, 10 * (1 + s) steered
        return [(2 * math.log(10 + c[0]), 2) for c in continuations]


def test_sweep_picks_the_strongest_strength_within_budget():
    metric = lambda _p, texts: float(texts[0])  # noqa: E731 - the metric grows with the strength
    res = sweep(StubBackend(), VEC, ["a", "b"], [0.5, 1.0, 2.0, 4.0], metric, max_ppl_ratio=3.0)
    assert res.baseline.perplexity == pytest.approx(10.0)
    ratios = {r.strength: r.ppl_ratio for r in res.rows}
    assert ratios == pytest.approx({0.5: 1.5, 1.0: 2.0, 2.0: 3.0, 4.0: 5.0})
    assert [r.within_budget for r in res.rows] == [True, True, True, False]
    assert res.chosen is not None and res.chosen.strength == 2.0 and res.chosen.metric == 2.0
    tight = sweep(StubBackend(), VEC, ["a"], [1.0, 2.0], metric, max_ppl_ratio=1.2)
    assert tight.chosen is None
    absolute = sweep(StubBackend(), VEC, ["a"], [1.0, 2.0, 4.0], metric, max_ppl_ratio=None, max_ppl=25.0)
    assert absolute.chosen is not None and absolute.chosen.strength == 1.0


def test_language_accuracy():
    m = language_accuracy("language=fr")
    texts = [
        "Je voudrais un café et un croissant, s'il vous plaît.",
        "I would like a coffee and a croissant, please.",
        "",
    ]
    assert m([], texts) == pytest.approx(1 / 3)


def _manual_nll(logits: torch.Tensor, prompt_len: int, cont: list[int]) -> float:
    logp = torch.log_softmax(logits[0].double(), dim=-1)
    return float(-sum(logp[prompt_len - 1 + i, t] for i, t in enumerate(cont)))


def test_continuation_nll_matches_an_unpadded_forward(tiny_model):
    b = TLBackend(tiny_model)
    prompts, conts = ["hi", "a longer prompt"], [[70, 71, 72], [80]]
    got = b.continuation_nll(prompts, conts)
    for p, c, (nll, n) in zip(prompts, conts, got, strict=True):
        ids = b.prompt_ids(p)
        with torch.no_grad():
            logits = tiny_model(torch.tensor([ids + c]))
        assert n == len(c) and nll == pytest.approx(_manual_nll(logits, len(ids), c), rel=1e-4)
    hf, tok = make_tiny_hf_model(seed=2)
    hb = HFBackend(hf, tok, "tiny-hf-gemma3")
    got = hb.continuation_nll(prompts, conts)
    for p, c, (nll, _n) in zip(prompts, conts, got, strict=True):
        ids = hb.prompt_ids(p)
        with torch.no_grad():
            logits = hf(torch.tensor([ids + c])).logits
        assert nll == pytest.approx(_manual_nll(logits, len(ids), c), rel=1e-4)


def test_sweep_on_a_real_backend_reports_every_strength(tiny_model):
    b = TLBackend(tiny_model)
    v = SteeringVector(components=(Component("blocks.1.hook_resid_pre", torch.randn(64) * 3),), model=b.info)
    res = sweep(
        b,
        v,
        ["hello", "one two"],
        [0.0, 1.0, 8.0],
        lambda _p, t: float(len(t)),
        cfg=GenerationConfig(max_new_tokens=4),
        max_ppl_ratio=1e9,
        max_repetitive_share=1.0,  # no fluency limit at all: every strength is within budget
    )
    assert [r.strength for r in res.rows] == [0.0, 1.0, 8.0]
    assert res.rows[0].perplexity == res.baseline.perplexity  # strength 0 is the unsteered run
    assert res.chosen is not None and res.chosen.strength == 8.0
    ppl, n = perplexity(b, b.generate(["hello"], GenerationConfig(max_new_tokens=3)))
    assert n <= 3 and ppl > 1.0


def test_fluency_alone_scores_the_continuation_without_its_prompt():
    from saesteer.errors import SteeringVectorError
    from saesteer.steer.generate import Generation

    seen = []

    class Recorder:
        def continuation_nll(self, prompts, continuations):
            seen.append(list(prompts))
            return [(1.0, 1) for _ in prompts]

    gens = [Generation(prompt="Hello", text="x", token_ids=(5,))]
    perplexity(Recorder(), gens)
    perplexity(Recorder(), gens, fluency="alone")
    assert seen == [["Hello"], [""]]
    with pytest.raises(SteeringVectorError, match="fluency"):
        perplexity(Recorder(), gens, fluency="sometimes")


def test_sweep_searches_the_strength_until_fluency_breaks():
    metric = lambda _p, texts: float(texts[0])  # noqa: E731 - the metric grows with the strength
    res = sweep(StubBackend(), VEC, ["a", "b"], [], metric, max_ppl_ratio=3.0, search=(0.25, 16.0))
    tried = [r.strength for r in res.rows]
    assert tried == sorted(tried) and tried[:5] == pytest.approx([0.25, 0.5, math.sqrt(0.5), 1.0, 2.0], rel=1e-5)
    assert 4.0 in tried and all(not r.within_budget for r in res.rows if r.strength > 2.0)
    assert res.search is not None and res.chosen is not None and res.chosen.strength == 2.0
    assert res.search.window == pytest.approx(2.0) and not res.search.chosen_at_edge


def test_sweep_counts_repetition_against_the_unsteered_range():
    class Repeating(StubBackend):
        def generate(self, prompts, cfg=GenerationConfig(), *, steer=None, sae=None, progress=None):
            s = 0.0 if steer is None else steer[1]
            ids = (7,) * 6 if s >= 2 else (1, 2, 3, 4, 5, 6)  # strong steering: one token over and over
            return [Generation(p, f"{s}", ids) for p in prompts]

        def continuation_nll(self, prompts, continuations):
            return [(6 * math.log(10.0), 6) for _ in continuations]  # the same perplexity everywhere

    metric = lambda _p, texts: float(texts[0])  # noqa: E731
    res = sweep(Repeating(), VEC, ["a", "b"], [1.0, 2.0], metric, max_ppl_ratio=3.0)
    assert [r.ppl_ratio for r in res.rows] == pytest.approx([1.0, 1.0])
    assert [r.repetitive_share for r in res.rows] == [0.0, 1.0]
    assert [r.within_budget for r in res.rows] == [True, False]
    assert res.chosen is not None and res.chosen.strength == 1.0


def test_without_a_window_the_chosen_point_is_the_strongest_fluent_on_a_tie():
    """A method that never reaches the target is read at the most it does while fluent (the strongest fluent
    strength among equal accuracies), bracketed by a broken stronger strength: not at the edge of what was
    tried. A better accuracy still wins over strength."""
    from saesteer.steer.calibrate import Probe, StrengthSearch

    flat = StrengthSearch(tuple(Probe(s, 0.0, s <= 0.12) for s in (0.03, 0.06, 0.12, 0.24, 0.48)), 0.8, False)
    assert flat.chosen == Probe(0.12, 0.0, True) and not flat.chosen_at_edge
    better = StrengthSearch((Probe(0.03, 0.0, True), Probe(0.06, 0.5, True), Probe(0.12, 0.25, True),
                             Probe(0.24, 0.9, False)), 0.8, False)
    assert better.chosen == Probe(0.06, 0.5, True)
