"""The steering maths (saesteer.steer.operators): exact invariants on random residuals."""

from __future__ import annotations

import pytest
import torch

from saesteer.steer import operators


@pytest.fixture
def resid() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 5, 64, generator=g) * 4


@pytest.fixture
def vec() -> torch.Tensor:
    return torch.randn(64, generator=torch.Generator().manual_seed(1))


def _mask() -> torch.Tensor:
    m = torch.ones(3, 5, dtype=torch.bool)
    m[0, :2] = False  # e.g. left padding
    m[2, 4] = False
    return m


def test_add_is_exactly_resid_plus_vector(resid, vec):
    assert torch.equal(operators.add(resid, vec), resid + vec)


def test_add_leaves_unselected_positions_bit_identical(resid, vec):
    m = _mask()
    out = operators.add(resid, vec, m)
    assert torch.equal(out[m], (resid + vec)[m])
    assert torch.equal(out[~m], resid[~m])


def test_norm_preserving_add_keeps_each_norm_and_moves_towards_v(resid, vec):
    out = operators.norm_preserving_add(resid, 3 * vec)
    torch.testing.assert_close(out.norm(dim=-1), resid.norm(dim=-1), rtol=1e-5, atol=1e-5)
    u = vec / vec.norm()
    assert bool(((out @ u) > (resid @ u)).all())
    assert not torch.allclose(out, resid)


def test_ablation_is_orthogonal_to_the_direction(resid, vec):
    out = operators.ablate(resid, vec)
    u = vec / vec.norm()
    assert float((out @ u).abs().max()) < 1e-4
    # the orthogonal part is untouched
    torch.testing.assert_close(
        out - (out @ u)[..., None] * u, resid - (resid @ u)[..., None] * u, rtol=1e-5, atol=1e-5
    )


def test_ablation_strength_two_reflects(resid, vec):
    u = vec / vec.norm()
    out = operators.ablate(resid, vec, strength=2.0)
    torch.testing.assert_close(out @ u, -(resid @ u), rtol=1e-4, atol=1e-4)


def test_clamp_with_own_codes_is_identity(resid, tiny_sae):
    feats = torch.tensor([0, 5, 17, 255])
    codes = tiny_sae.encode(resid)
    out = operators.sae_clamp(resid, tiny_sae, feats, codes[..., feats])
    assert torch.equal(out, resid)


def test_clamp_adds_the_decoder_difference_and_keeps_the_error_term(resid, tiny_sae):
    feats = torch.tensor([3, 9])
    vals = torch.tensor([5.0, 2.0])
    codes = tiny_sae.encode(resid)
    out = operators.sae_clamp(resid, tiny_sae, feats, vals)
    expected_delta = (vals - codes[..., feats]) @ tiny_sae.W_dec[feats]
    torch.testing.assert_close(out - resid, expected_delta, rtol=1e-4, atol=1e-4)
    # encoding the result gives the clamped values (ReLU SAE with tied W_enc = W_dec.T: approx)
    err_before = resid - tiny_sae.decode(codes)
    clamped = codes.clone()
    clamped[..., feats] = vals
    torch.testing.assert_close(out, tiny_sae.decode(clamped) + err_before, rtol=1e-4, atol=1e-4)


def test_clamp_respects_the_mask(resid, tiny_sae):
    m = _mask()
    out = operators.sae_clamp(resid, tiny_sae, torch.tensor([1]), torch.tensor([9.0]), m)
    assert torch.equal(out[~m], resid[~m])
    assert not torch.equal(out[m], resid[m])
