"""The SAE clamp's sparse path (only the clamped decoder rows) against the full encode/decode/error path.

With the error term kept, clamping features F to v is ``x + sum_{i in F} (v_i - f_i(x)) * s_i * W_dec[i]``
(``s_i = 1 / ||W_dec[i]||`` for a TopK SAE with ``rescale_acts_by_decoder_norm``, else 1; ``b_dec``, the
other features and the error cancel). Both paths run in float32 on residuals of magnitude ~1-10: the full
path subtracts two whole reconstructions (sums over every feature plus ``b_dec``), the sparse one sums the
``k`` clamped rows only, so they differ by summation order and that cancellation: up to ~1e-5 measured
here (float32 ulp at 16 is ~2e-6), hence atol 5e-5 and rtol 1e-5. (The sparse path is the more exact one:
on the default SAE, against a float64 reference, 2e-5 against 1.7e-3 for the full path.)
"""

from __future__ import annotations

import pytest
import torch

from saesteer.steer import operators
from saesteer.steer.generate import GenerationConfig, TLBackend
from saesteer.steer.hooks import steering
from saesteer.steer.vector import ClampSpec, Component, ModelInfo, SteeringVector
from saesteer.testing.tiny import TINY_HOOK

TOL = {"rtol": 1e-5, "atol": 5e-5}
PROMPTS = ["hi", "a much longer prompt", "le chat"]  # different lengths: left padding
N_NEW = 6


def _weights(seed: int, d_in: int = 64, d_sae: int = 256) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    w_dec = torch.randn(d_sae, d_in, generator=g)
    w_dec = w_dec / w_dec.norm(dim=-1, keepdim=True) * (0.5 + 1.5 * torch.rand(d_sae, 1, generator=g))
    return {"W_dec": w_dec, "W_enc": w_dec.T.clone(), "b_enc": torch.full((d_sae,), -0.5),
            "b_dec": 0.3 * torch.randn(d_in, generator=g)}


def _topk_sae(rescale: bool = True):
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    cfg = TopKSAEConfig(d_in=64, d_sae=256, k=16, rescale_acts_by_decoder_norm=rescale, dtype="float32",
                        device="cpu", metadata=SAEMetadata(hook_name=TINY_HOOK, model_name="tiny-random"))
    sae = TopKSAE(cfg)
    sae.load_state_dict(_weights(1), strict=False)
    return sae.eval()


def _standard_sae():
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    cfg = StandardSAEConfig(d_in=64, d_sae=256, dtype="float32", device="cpu",
                            metadata=SAEMetadata(hook_name=TINY_HOOK, model_name="tiny-random"))
    sae = StandardSAE(cfg)
    sae.load_state_dict(_weights(2), strict=False)
    return sae.eval()


SAES = {"topk-rescaled": lambda: _topk_sae(True), "topk": lambda: _topk_sae(False), "relu": _standard_sae}


def _full_path(resid, sae, features, values, mask=None):
    """The general path, spelled out: encode, set the codes, decode, add back the error."""
    codes = sae.encode(resid)
    clamped = codes.clone()
    clamped[..., features] = values
    new = sae.decode(clamped) + (resid - sae.decode(codes))
    return new if mask is None else torch.where(mask.unsqueeze(-1), new, resid)


def _active_features(sae, resid: torch.Tensor, k: int = 6) -> torch.Tensor:
    """The features most often active on ``resid`` (so the ``- f_i(x)`` term is exercised), plus one
    that never is."""
    with torch.no_grad():
        counts = (sae.encode(resid) != 0).flatten(0, 1).sum(0)
    order = counts.argsort(descending=True)
    return torch.cat([order[:k], order[-1:]])


@pytest.mark.parametrize("name", list(SAES))
@pytest.mark.parametrize("per_position", [False, True])
def test_sparse_path_equals_the_full_path(name, per_position):
    sae = SAES[name]()
    g = torch.Generator().manual_seed(3)
    resid = torch.randn(3, 7, 64, generator=g) * 4
    feats = _active_features(sae, resid)
    values = torch.linspace(0.0, 6.0, feats.numel())
    if per_position:
        values = values * (1 + torch.rand(3, 7, feats.numel(), generator=g))
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[0, :3] = False
    with torch.no_grad():
        assert operators.decoder_scale(sae, feats) is not None  # the sparse path is the one tested
        assert bool((sae.encode(resid)[..., feats[:-1]] != 0).any())
        for m in (None, mask):
            out = operators.sae_clamp(resid, sae, feats, values, m)
            ref = _full_path(resid, sae, feats, values, m)
            torch.testing.assert_close(out, ref, **TOL)
            assert not torch.allclose(out, resid)
        assert torch.equal(operators.sae_clamp(resid, sae, feats, values, mask)[~mask], resid[~mask])


def test_rescaled_topk_scale_is_the_inverse_decoder_norm():
    sae = _topk_sae(True)
    feats = torch.tensor([4, 9])
    scale = operators.decoder_scale(sae, feats)
    assert isinstance(scale, torch.Tensor)
    torch.testing.assert_close(scale, 1 / sae.W_dec[feats].norm(dim=-1))
    assert operators.decoder_scale(_topk_sae(False), feats) is True


def test_cases_the_identity_does_not_cover_take_the_full_path():
    sae = _standard_sae()
    assert operators.decoder_scale(sae, torch.tensor([3, 5, 3])) is None  # repeated ids
    handle = sae.hook_sae_recons.register_forward_hook(lambda mod, inp, out: out)
    try:
        assert operators.decoder_scale(sae, torch.tensor([3, 5])) is None  # a hook on the reconstruction
    finally:
        handle.remove()
    sae.cfg.normalize_activations = "layer_norm"
    assert operators.decoder_scale(sae, torch.tensor([3, 5])) is None


def _generate(tiny_model, sae, positions: str, full: bool, monkeypatch):
    with monkeypatch.context() as mp:
        if full:
            mp.setattr(operators, "decoder_scale", lambda sae, features: None)
        backend = TLBackend(tiny_model)
        g = torch.Generator().manual_seed(5)
        probe = torch.randn(4, 8, 64, generator=g) * float(tiny_model.W_E.detach().norm(dim=-1).mean())
        feats = _active_features(sae, probe)
        vec = SteeringVector(
            components=(Component(TINY_HOOK, sae.W_dec.detach()[feats].sum(0)),),
            model=ModelInfo.from_tl(tiny_model), operator="clamp", positions=positions,  # type: ignore[arg-type]
            clamp=ClampSpec(feats, torch.linspace(2.0, 8.0, feats.numel()), "external"),
        )
        cfg = GenerationConfig(max_new_tokens=N_NEW, min_new_tokens=N_NEW, batch_size=len(PROMPTS))
        with steering(tiny_model, vec, strength=1.5, sae=sae, record=True) as h, torch.no_grad():
            tokens = backend._generate_batch(PROMPTS, cfg, vec)
        return tokens, h.records


@pytest.mark.parametrize("positions", ["all", "prompt", "generated"])
@pytest.mark.parametrize("name", ["topk-rescaled", "relu"])
def test_steered_generation_is_the_same_on_both_paths(tiny_model, positions, name, monkeypatch):
    sae = SAES[name]()
    fast_tokens, fast = _generate(tiny_model, sae, positions, False, monkeypatch)
    full_tokens, full = _generate(tiny_model, sae, positions, True, monkeypatch)
    assert fast_tokens == full_tokens  # greedy decoding: identical tokens
    assert len(fast) == len(full) == N_NEW  # the prefill and N_NEW - 1 decode steps
    steered = 0
    for a, b in zip(fast, full, strict=True):
        assert torch.equal(a.selected, b.selected)
        torch.testing.assert_close(a.before, b.before, **TOL)
        torch.testing.assert_close(a.after, b.after, **TOL)
        assert torch.equal(a.after[~a.selected], a.before[~a.selected])
        steered += int(not torch.allclose(a.after, a.before))
    assert steered == {"all": N_NEW, "prompt": 1, "generated": N_NEW - 1}[positions]
