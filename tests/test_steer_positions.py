"""Position policies with the KV cache and left padding, on both backends.

The prefill sees the whole left-padded prompt, each decode step one new position. The residual is
recorded before and after the intervention in every forward call:

- ``prompt``: the prefill changes at non-pad positions only, every decode step is untouched;
- ``generated``: the prefill is untouched, every decode step changes;
- ``all``: both, and pads are never touched.
"""

from __future__ import annotations

import pytest
import torch

from saesteer.steer.generate import GenerationConfig, HFBackend, TLBackend
from saesteer.steer.hooks import steering
from saesteer.steer.positions import PositionTracker
from saesteer.steer.vector import Component, ModelInfo, SteeringVector
from saesteer.testing.tiny_hf import make_tiny_hf_model

PROMPTS = ["hi", "a much longer prompt"]  # different lengths: the first is left-padded
N_NEW = 5


@pytest.fixture(scope="module")
def hf_backend() -> HFBackend:
    hf, tok = make_tiny_hf_model(seed=1)
    return HFBackend(hf, tok, "tiny-hf-gemma3")


@pytest.fixture
def tl_backend(tiny_model) -> TLBackend:
    return TLBackend(tiny_model)


def _vector(info: ModelInfo, positions: str, hook: str = "blocks.0.hook_resid_post") -> SteeringVector:
    v = torch.randn(info.d_model, generator=torch.Generator().manual_seed(7))
    return SteeringVector(components=(Component(hook, v),), model=info, positions=positions)  # type: ignore[arg-type]


def _run(backend, positions: str):
    vec = _vector(backend.info, positions)
    cfg = GenerationConfig(max_new_tokens=N_NEW, min_new_tokens=N_NEW)
    with (
        steering(backend.model, vec, strength=2.0, record=True, model_id=backend.info.id) as h,
        torch.no_grad(),
    ):
        if isinstance(backend, HFBackend):
            enc = backend.tokenizer(PROMPTS, return_tensors="pt", padding=True)
            backend.model.generate(
                **enc,
                max_new_tokens=N_NEW,
                min_new_tokens=N_NEW,
                do_sample=False,
                pad_token_id=backend.tokenizer.pad_token_id,
            )
            valid = enc["attention_mask"].bool()
        else:
            backend._generate_batch(PROMPTS, cfg)
            lens = [len(backend.prompt_ids(p)) for p in PROMPTS]
            width = max(lens)
            valid = torch.tensor([[i >= width - n for i in range(width)] for n in lens])
    delta = vec.components[0].vector * 2.0
    return h.records, valid, delta


@pytest.mark.parametrize("backend_name", ["hf", "tl"])
def test_prompt_only_steering_leaves_decode_steps_untouched(backend_name, hf_backend, tl_backend):
    backend = hf_backend if backend_name == "hf" else tl_backend
    records, valid, delta = _run(backend, "prompt")
    prefill, *steps = records
    assert prefill.before.shape[:2] == valid.shape  # the whole padded prompt
    assert torch.equal(prefill.after[valid], (prefill.before + delta)[valid])
    assert torch.equal(prefill.after[~valid], prefill.before[~valid])  # pads untouched
    assert bool((~valid).any())  # the test really has padding
    assert len(steps) == N_NEW - 1  # the last token needs no forward pass
    for rec in steps:
        assert rec.before.shape[1] == 1  # one position per decode step
        assert torch.equal(rec.after, rec.before)
        assert not bool(rec.selected.any())


@pytest.mark.parametrize("backend_name", ["hf", "tl"])
def test_generated_only_steering_leaves_the_prompt_untouched(backend_name, hf_backend, tl_backend):
    backend = hf_backend if backend_name == "hf" else tl_backend
    records, _valid, delta = _run(backend, "generated")
    prefill, *steps = records
    assert torch.equal(prefill.after, prefill.before)
    assert not bool(prefill.selected.any())
    assert steps
    for rec in steps:
        assert torch.equal(rec.after, rec.before + delta)


@pytest.mark.parametrize("backend_name", ["hf", "tl"])
def test_all_positions_steers_both_but_never_pads(backend_name, hf_backend, tl_backend):
    backend = hf_backend if backend_name == "hf" else tl_backend
    records, valid, delta = _run(backend, "all")
    prefill, *steps = records
    assert torch.equal(prefill.selected, valid)
    assert torch.equal(prefill.after[~valid], prefill.before[~valid])
    assert torch.equal(prefill.after[valid], (prefill.before + delta)[valid])
    for rec in steps:
        assert torch.equal(rec.after, rec.before + delta)


def test_generated_policy_first_influences_the_second_token(hf_backend):
    """The first new token comes from the last prompt position, so 'generated' cannot change it."""
    cfg = GenerationConfig(max_new_tokens=6, min_new_tokens=6)
    big = _vector(hf_backend.info, "generated")
    base = hf_backend.generate(PROMPTS, cfg)
    steered = hf_backend.generate(PROMPTS, cfg, steer=(big, 50.0))
    for b, s in zip(base, steered, strict=True):
        assert b.token_ids[0] == s.token_ids[0]
    assert any(b.token_ids[1:] != s.token_ids[1:] for b, s in zip(base, steered, strict=True))


def test_kv_cache_and_full_recompute_agree_under_steering(hf_backend):
    """With the cache or recomputing every step (prompt length told explicitly), steering is the same."""
    hf, tok = hf_backend.model, hf_backend.tokenizer
    for positions in ("all", "prompt", "generated"):
        vec = _vector(hf_backend.info, positions)
        enc = tok(["hello world"], return_tensors="pt")
        outs = []
        for use_cache in (True, False):
            with steering(hf, vec, strength=3.0, model_id=hf_backend.info.id) as h, torch.no_grad():
                if not use_cache:
                    h.tracker.prompt_len_override = enc["input_ids"].shape[1]
                outs.append(
                    hf.generate(
                        **enc,
                        max_new_tokens=6,
                        min_new_tokens=6,
                        do_sample=False,
                        use_cache=use_cache,
                        pad_token_id=tok.pad_token_id,
                    )
                )
        assert torch.equal(outs[0], outs[1]), positions


def test_tracker_treats_unseen_calls_as_fresh_prompts():
    t = PositionTracker()
    t.begin_call(batch=2, cur_len=1, past_len=9, attention_mask=torch.ones(2, 10))
    assert t.select("generated", 2, 1, torch.device("cpu")).kind == "all"
    assert t.select("prompt", 2, 1, torch.device("cpu")).kind == "none"
    # a call of another shape (e.g. a direct forward that bypassed the tracker): a fresh, unpadded prompt
    assert t.select("prompt", 2, 7, torch.device("cpu")).kind == "all"
    assert t.select("generated", 2, 7, torch.device("cpu")).kind == "none"


def test_tracker_splits_a_call_that_spans_prompt_and_generation():
    t = PositionTracker()
    t.prompt_len_override = 3
    mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    t.begin_call(batch=2, cur_len=5, past_len=0, attention_mask=mask)
    prompt = t.select("prompt", 2, 5, torch.device("cpu"))
    gen = t.select("generated", 2, 5, torch.device("cpu"))
    assert prompt.mask is not None and gen.mask is not None
    assert prompt.mask.tolist() == [[False, True, True, False, False], [True, True, True, False, False]]
    assert gen.mask.tolist() == [[False, False, False, True, True], [False, False, False, True, True]]


class _Cache:
    """Stands in for a transformers cache object (DynamicCache and friends expose get_seq_length)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def get_seq_length(self) -> int:
        return self.n


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # transformers 4.x: past_key_values + cache_position
        ({"past_key_values": _Cache(9), "cache_position": torch.tensor([9])}, 9),
        ({"past_key_values": _Cache(0), "cache_position": torch.arange(5)}, 0),
        # transformers 5.x: the cache is passed as ``cache`` and there is no cache_position
        ({"cache": _Cache(12)}, 12),
        ({"cache": _Cache(0)}, 0),
        # nothing but the mask: it covers cached + new positions
        ({"attention_mask": torch.ones(2, 8)}, 7),
        ({}, 0),
    ],
)
def test_past_length_is_read_from_what_the_call_carries(kwargs, expected):
    from saesteer.steer.hookpoints import hf_past_length

    assert hf_past_length(kwargs, 1 if expected else 5, kwargs.get("attention_mask")) == expected
