"""The steering maths: pure functions on a residual ``resid: [batch, pos, d_model]`` and a position
selection ``mask: [batch, pos]`` (bool; ``None`` = every position). Both backends (transformer-lens and
transformers) call exactly these functions, so one implementation is tested once.

Every operator leaves unselected positions bit-identical (``torch.where``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import torch

if TYPE_CHECKING:
    from sae_lens import SAE

_EPS = 1e-12


def _select(mask: torch.Tensor | None, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    if mask is None:
        return new
    return torch.where(mask.unsqueeze(-1), new, old)


def add(resid: torch.Tensor, delta: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``resid + delta`` at the selected positions.

    ``resid: [batch, pos, d_model]``, ``delta: [d_model]`` (already multiplied by the strength),
    ``mask: [batch, pos]``.
    """
    return _select(mask, resid + delta, resid)


def norm_preserving_add(
    resid: torch.Tensor, delta: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Add ``delta``, then rescale each position back to its original norm (as in Selective Steering).

    ``resid: [batch, pos, d_model]``, ``delta: [d_model]``; returns ``[batch, pos, d_model]`` with
    ``||out[b, p]|| == ||resid[b, p]||`` (up to rounding) at the selected positions.
    """
    new = resid + delta
    scale = resid.norm(dim=-1, keepdim=True) / new.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    return _select(mask, new * scale, resid)


def ablate(
    resid: torch.Tensor, direction: torch.Tensor, strength: float = 1.0, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Directional ablation: remove ``strength`` times the component of ``resid`` along ``direction``.

    ``resid: [batch, pos, d_model]``, ``direction: [d_model]`` (any norm; it is normalised here).
    With ``strength = 1`` the result is orthogonal to ``direction``; ``strength = 2`` reflects it.
    """
    u = direction / direction.norm().clamp_min(_EPS)
    proj = (resid @ u).unsqueeze(-1) * u
    return _select(mask, resid - strength * proj, resid)


def sae_clamp(
    resid: torch.Tensor,
    sae: SAE,
    features: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """SAE-space clamp that keeps the SAE's error term.

    Encode ``resid: [batch, pos, d_model]`` into codes ``f: [batch, pos, d_sae]``, set
    ``f[..., features] = values`` (``features: [k]`` int64, ``values: [k]`` or ``[batch, pos, k]``),
    decode, and add back the error ``resid - decode(f)``. Written as
    ``resid + (decode(f') - decode(f))``, so clamping a feature to its own code is exactly the identity.
    """
    codes = sae.encode(resid)
    clamped = codes.clone()
    clamped[..., features] = values.to(codes.dtype)
    new = resid + (sae.decode(clamped) - sae.decode(codes)).to(resid.dtype)
    return _select(mask, new, resid)


class ResidOp(Protocol):
    """A prepared intervention: maps ``resid [batch, pos, d_model]`` and a mask to the new residual."""

    def __call__(self, resid: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor: ...
