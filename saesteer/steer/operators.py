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
    decode, and add back the error ``resid - decode(f)``: ``resid + (decode(f') - decode(f))``, so
    clamping a feature to its own code is exactly the identity.

    Where the SAE's decode is affine in the codes (:func:`decoder_scale`), ``b_dec`` and the other
    features cancel in that difference, which is then
    ``sum_{i in features} (values_i - f_i) * scale_i * W_dec[i]``: only the ``k`` clamped decoder rows
    are read (no full decode, two fewer ``[.., d_sae] @ [d_sae, d_model]`` products per call). The
    encode stays the SAE's own (a TopK SAE needs every pre-activation to know ``f_i``).
    """
    codes = sae.encode(resid)
    scale = decoder_scale(sae, features)
    if scale is not None and not codes.is_sparse:
        rows = sae.W_dec[features]  # [k, d_model]
        diff = values.to(codes.dtype) - codes[..., features]  # [batch, pos, k]
        if not isinstance(scale, bool):
            diff = diff * scale
        delta = diff @ rows
    else:
        clamped = codes.clone()
        clamped[..., features] = values.to(codes.dtype)
        delta = sae.decode(clamped) - sae.decode(codes)
    new = resid + delta.to(resid.dtype)
    return _select(mask, new, resid)


def decoder_scale(sae: SAE, features: torch.Tensor) -> torch.Tensor | bool | None:
    """How ``sae.decode`` weighs the codes of ``features`` if it is ``(f * scale) @ W_dec + b_dec``
    exactly: ``True`` (scale 1), a ``[k]`` tensor (TopK with ``rescale_acts_by_decoder_norm``:
    ``1 / ||W_dec[i]||``, as sae-lens computes it), or ``None`` where that is not known to hold: another
    decode (gated, matching pursuit, unknown classes), run-time normalisation of the activations,
    hook_z reshaping, hooks on the reconstruction, or repeated feature ids (whose clamp the general path
    defines by index assignment)."""
    from sae_lens import JumpReLUSAE, StandardSAE, TopKSAE

    decode = type(sae).decode
    if decode not in (StandardSAE.decode, JumpReLUSAE.decode, TopKSAE.decode):
        return None
    if getattr(sae.cfg, "normalize_activations", None) != "none" or getattr(sae, "hook_z_reshaping_mode", False):
        return None
    if sae.hook_sae_recons._forward_hooks:
        return None
    if features.numel() > 1 and torch.unique(features).numel() != features.numel():
        return None
    if decode is TopKSAE.decode and getattr(sae.cfg, "rescale_acts_by_decoder_norm", False):
        return 1 / sae.W_dec[features].norm(dim=-1)
    return True


class ResidOp(Protocol):
    """A prepared intervention: maps ``resid [batch, pos, d_model]`` and a mask to the new residual."""

    def __call__(self, resid: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor: ...
