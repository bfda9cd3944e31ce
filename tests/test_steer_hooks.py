"""Applying vectors: hooks on transformer-lens and transformers models, removal, composition, errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from saesteer.errors import DimensionMismatchError, SteeringVectorError
from saesteer.steer.compose import combine
from saesteer.steer.hooks import attach, decoder_stack, steering
from saesteer.steer.vector import ClampSpec, Component, ModelInfo, SteeringVector
from saesteer.testing.tiny_hf import make_tiny_hf_model


def make_vec(info: ModelInfo, hooks: list[str], seed: int = 0, **kw: Any) -> SteeringVector:
    g = torch.Generator().manual_seed(seed)
    comps = tuple(Component(h, torch.randn(info.d_model, generator=g)) for h in hooks)
    return SteeringVector(components=comps, model=info, **kw)


@pytest.fixture(scope="module")
def tiny_hf():
    return make_tiny_hf_model(seed=0)


@pytest.fixture
def tl_info(tiny_model) -> ModelInfo:
    return ModelInfo.from_tl(tiny_model)


def _hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


TOKENS = torch.tensor([[2, 40, 41, 42, 43, 44], [2, 50, 51, 52, 53, 54]])


def test_tl_add_matches_a_hand_written_hook(tiny_model, tl_info):
    v = make_vec(tl_info, ["blocks.1.hook_resid_pre"])
    delta = v.components[0].vector * 2.5
    expected = tiny_model.run_with_hooks(
        TOKENS, fwd_hooks=[("blocks.1.hook_resid_pre", lambda r, hook: r + delta)]
    )
    with steering(tiny_model, v, strength=2.5):
        got = tiny_model(TOKENS)
    assert torch.equal(got, expected)
    assert not torch.equal(got, tiny_model(TOKENS))


def test_records_show_patched_equals_original_plus_v(tiny_model, tl_info):
    v = make_vec(tl_info, ["blocks.0.hook_resid_post"])
    with steering(tiny_model, v, strength=1.0, record=True) as h:
        tiny_model(TOKENS)
    (rec,) = h.records
    assert torch.equal(rec.after, rec.before + v.components[0].vector)
    assert bool(rec.selected.all())


def test_context_manager_removes_every_hook_even_when_the_body_raises(tiny_model, tl_info):
    v = make_vec(tl_info, ["blocks.0.hook_resid_post", "blocks.1.hook_resid_pre"])
    before_hooks = _hook_count(tiny_model)
    clean = tiny_model(TOKENS)
    with pytest.raises(RuntimeError, match="boom"), steering(tiny_model, v, strength=3.0) as h:
        assert _hook_count(tiny_model) == before_hooks + 3  # tracker + 2 hook points
        assert h.active
        raise RuntimeError("boom")
    assert _hook_count(tiny_model) == before_hooks
    assert torch.equal(tiny_model(TOKENS), clean)


def test_handle_manual_control(tiny_model, tl_info):
    v = make_vec(tl_info, ["blocks.1.hook_resid_pre"])
    clean = tiny_model(TOKENS)
    h = attach(tiny_model, v, strength=1.0)
    try:
        one = tiny_model(TOKENS)
        h.set_strength(0.0)
        assert torch.equal(tiny_model(TOKENS), clean)  # r + 0 == r
        h.set_strength(1.0)
        assert torch.equal(tiny_model(TOKENS), one)
        h.enabled = False
        assert torch.equal(tiny_model(TOKENS), clean)
    finally:
        h.remove()
        h.remove()  # idempotent
    assert not h.active
    assert torch.equal(tiny_model(TOKENS), clean)


def test_composition_of_two_add_vectors_is_their_sum(tiny_model, tl_info):
    hook = "blocks.1.hook_resid_pre"
    v1, v2 = make_vec(tl_info, [hook], seed=1), make_vec(tl_info, [hook], seed=2)
    with steering(tiny_model, [(v1, 1.0), (v2, 1.0)], record=True) as h:
        both = tiny_model(TOKENS)
    (rec,) = h.records
    assert torch.equal(rec.after, (rec.before + v1.components[0].vector) + v2.components[0].vector)
    with steering(tiny_model, combine([v1, v2])):
        summed = tiny_model(TOKENS)
    torch.testing.assert_close(both, summed, rtol=1e-5, atol=1e-5)


def test_resid_pre_of_next_layer_equals_resid_post(tiny_model, tl_info, tiny_hf):
    a = make_vec(tl_info, ["blocks.0.hook_resid_post"], seed=3)
    b = SteeringVector(
        components=(Component("blocks.1.hook_resid_pre", a.components[0].vector),), model=tl_info
    )
    with steering(tiny_model, a):
        la = tiny_model(TOKENS)
    with steering(tiny_model, b):
        lb = tiny_model(TOKENS)
    assert torch.equal(la, lb)
    hf, _ = tiny_hf
    info = ModelInfo.from_hf(hf)
    a = make_vec(info, ["blocks.0.hook_resid_post"], seed=3)
    b = SteeringVector(components=(Component("blocks.1.hook_resid_pre", a.components[0].vector),), model=info)
    with torch.no_grad():
        with steering(hf, a):
            la = hf(TOKENS).logits
        with steering(hf, b):
            lb = hf(TOKENS).logits
    assert torch.equal(la, lb)


def test_hf_steering_matches_the_maths(tiny_hf):
    hf, _ = tiny_hf
    info = ModelInfo.from_hf(hf)
    v = make_vec(info, ["blocks.0.hook_resid_post"], seed=4)
    delta = v.components[0].vector * 1.5
    with torch.no_grad():
        clean = hf(TOKENS, output_hidden_states=True)
        with steering(hf, v, strength=1.5, record=True) as h:
            got = hf(TOKENS).logits
        handle = decoder_stack(hf)[1][0].register_forward_hook(lambda m, a, out: out + delta)
        try:
            expected = hf(TOKENS).logits
        finally:
            handle.remove()
    (rec,) = h.records
    assert torch.equal(rec.before, clean.hidden_states[1])  # output of layer 0 == hidden_states[1]
    assert torch.equal(rec.after, rec.before + delta)
    assert torch.equal(got, expected)


class _TupleLayer(torch.nn.Module):
    def forward(self, hidden_states: torch.Tensor, scale: float = 1.0) -> tuple[torch.Tensor, None]:
        return hidden_states * scale, None


class _FakeLM(torch.nn.Module):
    """A stand-in transformers model whose layers return tuples and take hidden_states by keyword."""

    def __init__(self) -> None:
        super().__init__()
        self.config = type("Cfg", (), {"hidden_size": 4, "num_hidden_layers": 2, "model_type": "fake"})()
        self.model = torch.nn.Module()
        self.model.layers = torch.nn.ModuleList([_TupleLayer(), _TupleLayer()])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, layer in enumerate(self.model.layers):
            h = layer(hidden_states=h)[0] if i else layer(h)[0]
        return h


def test_hf_hooks_handle_tuple_outputs_and_keyword_inputs():
    lm = _FakeLM()
    info = ModelInfo.from_hf(lm, "fake")
    x = torch.zeros(1, 3, 4)
    post = SteeringVector(components=(Component("blocks.0.hook_resid_post", torch.ones(4)),), model=info)
    pre = SteeringVector(
        components=(Component("blocks.1.hook_resid_pre", torch.full((4,), 2.0)),), model=info
    )
    with steering(lm, [post, pre], model_id="fake"):
        out = lm(x)
    assert torch.equal(out, torch.full((1, 3, 4), 3.0))
    assert torch.equal(lm(x), x)


def test_vector_for_another_model_is_refused(tiny_model):
    other = ModelInfo(id="gemma-3-270m", d_model=64, n_layers=2)
    with pytest.raises(SteeringVectorError, match="built for model 'gemma-3-270m'"):
        attach(tiny_model, make_vec(other, ["blocks.0.hook_resid_post"]))
    # deliberately skipped: width and layers still match, so it applies
    with steering(tiny_model, make_vec(other, ["blocks.0.hook_resid_post"]), check_model=False):
        tiny_model(TOKENS)


def test_vector_of_another_width_is_refused(tiny_model, tiny_hf):
    wide = ModelInfo(id="tiny-random", d_model=128, n_layers=2)
    with pytest.raises(DimensionMismatchError, match="d_model=64"):
        attach(tiny_model, make_vec(wide, ["blocks.0.hook_resid_post"]))
    with pytest.raises(DimensionMismatchError):
        attach(tiny_hf[0], make_vec(ModelInfo(id="tiny-hf-gemma3", d_model=32), ["blocks.0.hook_resid_post"]))


def test_layer_out_of_range_is_refused(tiny_model):
    deep = ModelInfo(id="tiny-random", d_model=64, n_layers=None)
    before = _hook_count(tiny_model)
    with pytest.raises(SteeringVectorError, match=r"out of range: model 'tiny-random' has 2 layers \(0..1\)"):
        attach(
            tiny_model,
            [make_vec(deep, ["blocks.0.hook_resid_post"]), make_vec(deep, ["blocks.5.hook_resid_post"])],
        )
    assert _hook_count(tiny_model) == before
    with pytest.raises(SteeringVectorError, match="out of range"):
        make_vec(ModelInfo(id="x", d_model=64, n_layers=2), ["blocks.2.hook_resid_pre"])


def test_non_finite_and_malformed_vectors_are_refused(tl_info):
    bad = torch.zeros(64)
    bad[3] = float("nan")
    with pytest.raises(SteeringVectorError, match="non-finite"):
        SteeringVector(components=(Component("blocks.0.hook_resid_post", bad),), model=tl_info)
    with pytest.raises(SteeringVectorError, match="float32"):
        SteeringVector(
            components=(Component("blocks.0.hook_resid_post", torch.zeros(64, dtype=torch.float64)),),
            model=tl_info,
        )
    with pytest.raises(SteeringVectorError, match="resid_pre / resid_post"):
        SteeringVector(components=(Component("blocks.0.hook_resid_mid", torch.zeros(64)),), model=tl_info)
    with pytest.raises(SteeringVectorError, match="invalid hook"):
        SteeringVector(components=(Component("blocks.0.attn.hook_z", torch.zeros(64)),), model=tl_info)
    with pytest.raises(SteeringVectorError, match="needs a clamp spec"):
        SteeringVector(
            components=(Component("blocks.0.hook_resid_post", torch.zeros(64)),),
            model=tl_info,
            operator="clamp",
        )


def test_clamp_vector_needs_its_sae(tiny_model, tiny_sae, tl_info):
    clamp = ClampSpec(torch.tensor([1, 2]), torch.tensor([3.0, 4.0]), "tiny")
    v = SteeringVector(
        components=(Component("blocks.1.hook_resid_pre", torch.zeros(64)),),
        model=tl_info,
        operator="clamp",
        clamp=clamp,
    )
    with pytest.raises(SteeringVectorError, match="pass that SAE"):
        attach(tiny_model, v)
    with steering(tiny_model, v, sae=tiny_sae, record=True) as h:
        tiny_model(TOKENS)
    (rec,) = h.records
    codes = tiny_sae.encode(rec.after)
    # the clamped features move towards their values (exact only for an exact SAE)
    assert bool((codes[..., 1] > tiny_sae.encode(rec.before)[..., 1]).any())


@pytest.mark.parametrize(("values", "bad"), [([1.0, float("nan"), 2.0], True), ([1.0, float("inf")], True),
                                             ([float("-inf"), 3.0], False), ([0.5, 2.0], False)])
def test_check_finite_output_refuses_nan_and_plus_inf_only(values, bad):
    from saesteer.steer.hooks import check_finite_output

    logits = torch.zeros(2, 5)
    logits[1, : len(values)] = torch.tensor(values)
    if bad:
        with pytest.raises(SteeringVectorError, match="non-finite"):
            check_finite_output(logits, None)
    else:
        check_finite_output(logits, None)
