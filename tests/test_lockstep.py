"""Jobs run in lockstep generate together: one combined call per round, the same greedy continuations as
separate calls, and the first error stops the run."""

from __future__ import annotations

import pytest
import torch

from saesteer.errors import SteeringVectorError
from saesteer.steer.generate import GenerationConfig, HFBackend
from saesteer.steer.lockstep import run_lockstep
from saesteer.steer.vector import Component, SteeringVector
from saesteer.testing.tiny_hf import TINY_HF_ID, make_tiny_hf_model

PROMPTS = ["a much longer prompt than the others", "hi", "medium prompt"]
CFG = GenerationConfig(max_new_tokens=6, min_new_tokens=6, batch_size=3)


@pytest.fixture(scope="module")
def backend() -> HFBackend:
    hf, tok = make_tiny_hf_model(seed=4)
    return HFBackend(hf, tok, TINY_HF_ID)


class CountingBackend:
    def __init__(self, backend):
        self.backend, self.calls = backend, []

    def generate(self, prompts, cfg=CFG, **kw):
        self.calls.append(len(prompts))
        return self.backend.generate(prompts, cfg, **kw)

    def __getattr__(self, name):
        return getattr(self.backend, name)


def _vec(backend, seed):
    v = torch.randn(backend.info.d_model, generator=torch.Generator().manual_seed(seed))
    return SteeringVector(components=(Component("blocks.1.hook_resid_pre", v / v.norm() * 4),), model=backend.info)


def test_lockstep_jobs_generate_together_and_get_their_own_continuations(backend):
    vecs = {name: _vec(backend, i) for i, name in enumerate("abc")}
    plan = {"a": [1.0, 2.0, 0.5], "b": [1.0], "c": [3.0, 1.0]}  # strengths each job tries in turn
    got: dict[str, list] = {}

    def job_for(name):
        def job(b):
            got[name] = [b.generate(PROMPTS, CFG, steer=(vecs[name], s)) for s in plan[name]]
        return job

    counting = CountingBackend(backend)
    run_lockstep(counting, [job_for(n) for n in plan], batch_size=9)
    assert counting.calls == [9, 6, 3]  # round 1: all three jobs, round 2: a and c, round 3: a alone
    for name, strengths in plan.items():
        for s, gens in zip(strengths, got[name], strict=True):
            alone = backend.generate(PROMPTS, CFG, steer=(vecs[name], s))
            assert [g.token_ids for g in gens] == [g.token_ids for g in alone], (name, s)
            assert [g.prompt for g in gens] == PROMPTS


def test_unsteered_requests_and_jobs_without_generation_join_in(backend):
    out = {}

    def unsteered(b):
        out["u"] = b.generate(PROMPTS[:2], CFG)

    def nothing(b):
        out["n"] = "done"

    def unsteered_too(b):
        out["u2"] = b.generate(PROMPTS[:2], CFG)

    counting = CountingBackend(backend)
    run_lockstep(counting, [unsteered, nothing, unsteered_too])
    assert out["n"] == "done" and counting.calls == [4]
    want = [g.token_ids for g in backend.generate(PROMPTS[:2], CFG)]
    assert [g.token_ids for g in out["u"]] == want == [g.token_ids for g in out["u2"]]


def test_the_first_error_stops_the_run(backend):
    seen = []

    def fails(b):
        raise SteeringVectorError("boom")

    def waits(b):
        b.generate(PROMPTS, CFG)
        seen.append("first")
        b.generate(PROMPTS, CFG)
        seen.append("second")

    with pytest.raises(SteeringVectorError, match="boom"):
        run_lockstep(CountingBackend(backend), [waits, fails])
    assert seen in ([], ["first"], ["first", "second"])  # it stops; nothing hangs
