"""Generation batching does not change greedy continuations: prompts sorted by length (results in the
given order), per-row steering in one call, and the side by side of several vectors in one call give the
same tokens per prompt as plain transformers ``generate`` in the given order / one call per vector."""

from __future__ import annotations

import pytest
import torch

from saesteer.errors import SteeringVectorError
from saesteer.steer.generate import (
    GenerationConfig,
    HFBackend,
    TLBackend,
    length_order,
    side_by_side,
    side_by_side_many,
)
from saesteer.steer.hooks import steering
from saesteer.steer.vector import Component, SteeringVector
from saesteer.testing.tiny_hf import TINY_HF_ID, make_tiny_hf_model

# lengths deliberately out of order, so that sorting changes the batches
PROMPTS = ["a much longer prompt than the others", "hi", "medium prompt", "x", "another long-ish prompt here"]
N_NEW = 8
CFG = GenerationConfig(max_new_tokens=N_NEW, min_new_tokens=N_NEW, batch_size=2)


@pytest.fixture(scope="module")
def hf_backend() -> HFBackend:
    hf, tok = make_tiny_hf_model(seed=3)
    return HFBackend(hf, tok, TINY_HF_ID)


@pytest.fixture
def tl_backend(tiny_model) -> TLBackend:
    return TLBackend(tiny_model)


def _vector(backend, seed: int, hook: str | None = None) -> SteeringVector:
    info = backend.info
    v = torch.randn(info.d_model, generator=torch.Generator().manual_seed(seed))
    hook = hook or f"blocks.{info.n_layers - 1}.hook_resid_pre"
    return SteeringVector(components=(Component(hook, v / v.norm() * 4.0),), model=info)


def _plain_hf(backend: HFBackend, prompts: list[str], batch_size: int) -> list[tuple[int, ...]]:
    """Plain transformers generate, the prompts batched in the given order (no sorting)."""
    tok, out = backend.tokenizer, []
    for i in range(0, len(prompts), batch_size):
        enc = tok(prompts[i : i + batch_size], return_tensors="pt", padding=True)
        with torch.no_grad():
            seq = backend.model.generate(**enc, max_new_tokens=N_NEW, min_new_tokens=N_NEW, do_sample=False,
                                         pad_token_id=tok.pad_token_id, temperature=None, top_p=None, top_k=None)
        out += [tuple(r) for r in seq[:, enc["input_ids"].shape[1]:].tolist()]
    return out


def test_the_prompts_really_get_reordered(hf_backend):
    lengths = [len(hf_backend.prompt_ids(p)) for p in PROMPTS]
    assert length_order(lengths) != list(range(len(PROMPTS)))
    assert [lengths[i] for i in length_order(lengths)] == sorted(lengths)


def test_sorted_batches_give_plain_generate_continuations_in_the_given_order(hf_backend):
    got = hf_backend.generate(PROMPTS, CFG)
    assert [g.prompt for g in got] == PROMPTS
    assert [g.token_ids for g in got] == _plain_hf(hf_backend, PROMPTS, CFG.batch_size)
    assert [g.token_ids for g in got] == [g.token_ids for g in hf_backend.generate(PROMPTS, GenerationConfig(
        max_new_tokens=N_NEW, min_new_tokens=N_NEW, batch_size=1))]  # one prompt per batch: no padding at all


def test_sorted_batches_give_the_same_steered_continuations(hf_backend):
    vec = _vector(hf_backend, 1)
    got = hf_backend.generate(PROMPTS, CFG, steer=(vec, 1.0))
    with steering(hf_backend.model, vec, strength=1.0, model_id=hf_backend.info.id):
        want = _plain_hf(hf_backend, PROMPTS, CFG.batch_size)
    assert [g.token_ids for g in got] == want
    assert want != _plain_hf(hf_backend, PROMPTS, CFG.batch_size)  # the steering changes the text


@pytest.mark.parametrize("backend_name", ["hf", "tl"])
def test_per_row_steering_equals_one_call_per_vector(backend_name, hf_backend, tl_backend):
    backend = hf_backend if backend_name == "hf" else tl_backend
    hook = "blocks.1.hook_resid_pre" if backend_name == "tl" else None
    a, b = _vector(backend, 1, hook), _vector(backend, 2, hook)
    rows = [(a, 1.0), None, (b, 2.0), (a, 1.0), None]
    got = backend.generate(PROMPTS, CFG, row_steer=rows)
    for i, item in enumerate(rows):
        alone = backend.generate([PROMPTS[i]], CFG, steer=item)
        assert got[i].token_ids == alone[0].token_ids, i
    assert got[0].token_ids != backend.generate([PROMPTS[0]], CFG)[0].token_ids  # steered rows did change


def test_side_by_side_of_several_vectors_in_one_call(hf_backend):
    steers = {"a": (_vector(hf_backend, 1), 1.0), "b": (_vector(hf_backend, 2), 2.0)}
    cfg = GenerationConfig(max_new_tokens=N_NEW, min_new_tokens=N_NEW, batch_size=len(PROMPTS) * 3)
    calls = []
    many = side_by_side_many(hf_backend, PROMPTS, steers, cfg, progress=lambda d, n: calls.append((d, n)))
    assert calls == [(15, 15)]  # one batch for the unsteered rows and both vectors
    for name, steer in steers.items():
        assert many[name] == side_by_side(hf_backend, PROMPTS, steer, cfg)


def test_row_steer_is_checked(hf_backend):
    vec = _vector(hf_backend, 1)
    with pytest.raises(SteeringVectorError, match="either"):
        hf_backend.generate(PROMPTS[:2], CFG, steer=vec, row_steer=[vec, None])
    with pytest.raises(ValueError, match="2 entries for 3"):
        hf_backend.generate(PROMPTS[:3], CFG, row_steer=[vec, None])


def _nll_one_by_one(backend, prompts, conts):
    return [backend.continuation_nll([p], [c], batch_size=1)[0] for p, c in zip(prompts, conts, strict=True)]


@pytest.mark.parametrize("backend_name", ["hf", "tl"])
def test_continuation_nll_in_sorted_batches_equals_one_by_one(backend_name, hf_backend, tl_backend):
    """Fluency scoring sorts by length and (transformers) unembeds only the scored positions: the same NLL per
    continuation as scoring each alone with the full forward, in the given order."""
    backend = hf_backend if backend_name == "hf" else tl_backend
    prompts = ["", *PROMPTS[:3], ""]
    conts = [[5, 6, 7], [8, 9, 10, 11, 12, 13], [], [14], [15, 16, 17, 18, 19, 20, 21, 22]]
    got = backend.continuation_nll(prompts, conts, batch_size=2)
    want = _nll_one_by_one(backend, prompts, conts)
    assert [n for _, n in got] == [len(c) for c in conts]
    assert [s for s, _ in got] == pytest.approx([s for s, _ in want], rel=1e-5)
    assert got[2] == (0.0, 0)
    if backend_name == "hf":
        assert hf_backend._scorer.fast is True  # the tiny Gemma 3 takes the unembedding-at-scored-positions path
        from saesteer.models.forward import pad_batch, token_nll

        seqs = [hf_backend.prompt_ids(p) + c for p, c in zip(prompts, conts, strict=True)]
        ids, mask = pad_batch(seqs, int(hf_backend.tokenizer.pad_token_id))
        with torch.no_grad():
            nll = token_nll(hf_backend.model(input_ids=ids, attention_mask=mask).logits, ids)
        for i, (p, c) in enumerate(zip(prompts, conts, strict=True)):
            k = len(hf_backend.prompt_ids(p))
            assert got[i][0] == pytest.approx(float(nll[i, k - 1 : k + len(c) - 1].double().sum()), rel=1e-5)
