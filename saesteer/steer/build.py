"""Build steering vectors from SAE features: the weighted sum of decoder rows, scaled to the residual.

``direction = sum_i w_i * row_i`` where ``row_i = W_dec[f_i]`` (``rows="raw"``) or its unit-norm
version (``rows="unit"``), and the weights ``w_i`` are

- ``auto`` (default): the feature set's own weights; with raw rows when they are ``mean_diff``, else unit
  rows (:func:`resolve_recipe`; rows default to raw for ``mean_diff`` and unit otherwise);
- ``given``: the feature set's own weights (1.0 each when it has none);
- ``uniform``: 1.0 each;
- ``mean_act`` / ``mean_diff``: the index-derived weights the feature set carries
  (``fs.weighting`` must say so). They are read from the index when selecting
  (:mod:`saesteer.select.weights`, ``SearchResult.to_featureset(weights="mean_diff")``): this module
  builds a vector from a feature set, an SAE and a model, and never opens the index;
- ``score:<name>``: one of the feature set's scores.

With ``scale_mode="residual_norm"`` (default) the stored vector is ``typical_norm * unit(direction)``
where ``typical_norm`` is the median residual norm at the hook (see
:func:`~saesteer.steer.residuals.typical_residual_norm`), so strength 1.0 means "one typical residual
norm" on every model and layer. ``scale_mode="raw"`` keeps ``direction`` unnormalised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch

from saesteer.errors import SteeringVectorError, UnknownFeatureError
from saesteer.featureset import INDEX_WEIGHTINGS, FeatureSet
from saesteer.steer.residuals import typical_residual_norm
from saesteer.steer.vector import (
    ClampSpec,
    Component,
    ModelInfo,
    Operator,
    PositionPolicy,
    ScaleMode,
    SteeringVector,
)

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer


log = logging.getLogger(__name__)
NORM_SAMPLE = "first 48 lines of the bundled English train split (saesteer/corpus/data/en.txt)"


def decoder_direction(
    sae: SAE, features: Sequence[int], weights: Sequence[float], *, unit_rows: bool = True
) -> torch.Tensor:
    """``sum_i weights[i] * W_dec[features[i]]`` (rows unit-normalised if ``unit_rows``): ``[d_in]`` float32."""
    w_dec = sae.W_dec.detach().float().cpu()  # [d_sae, d_in]
    d_sae = int(w_dec.shape[0])
    bad = [f for f in features if not 0 <= int(f) < d_sae]
    if bad:
        raise UnknownFeatureError(f"feature ids {bad[:5]} are out of range for an SAE of width d_sae={d_sae}")
    if len(features) != len(weights):
        raise SteeringVectorError(f"{len(weights)} weights for {len(features)} features")
    idx = torch.tensor([int(f) for f in features], dtype=torch.long)
    rows = w_dec[idx].double()
    if unit_rows:
        rows = rows / rows.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w = torch.tensor([float(x) for x in weights], dtype=torch.float64)
    return (w @ rows).to(torch.float32)


def resolve_recipe(fs: FeatureSet, weighting: str, unit_rows: bool | None) -> tuple[str, bool]:
    """``weighting="auto"``: the feature set's own weights, named by ``fs.weighting`` when they were read
    from the index (``mean_diff``: the recipe measured to steer, ``docs/steering.md``), else ``given``.
    ``unit_rows=None``: raw rows for ``mean_diff``, unit rows otherwise."""
    if weighting == "auto":
        weighting = fs.weighting if fs.weighting in INDEX_WEIGHTINGS else "given"
    return weighting, (weighting != "mean_diff") if unit_rows is None else unit_rows


def feature_weights(fs: FeatureSet, weighting: str) -> list[float]:
    """The weight of each feature of ``fs`` under ``weighting`` (see the module docstring)."""
    weighting, _ = resolve_recipe(fs, weighting, None)
    if weighting == "given":
        return [float(w) for w in fs.resolved_weights]
    if weighting == "uniform":
        return [1.0] * len(fs.features)
    if weighting in INDEX_WEIGHTINGS:
        if fs.weighting != weighting:
            raise SteeringVectorError(
                f"weighting {weighting!r} is read from the index when selecting, and this feature set carries "
                f"{fs.weighting!r} weights: use SearchResult.to_featureset(weights={weighting!r}) or "
                f"saesteer.select.weights.with_index_weights (the CLI does it with --db)"
            )
        return [float(w) for w in fs.resolved_weights]
    if weighting.startswith("score:"):
        name = weighting.split(":", 1)[1]
        if name not in fs.scores:
            raise SteeringVectorError(
                f"the feature set has no score {name!r}; it has: {', '.join(fs.scores) or '(none)'}"
            )
        return [float(x) for x in fs.scores[name]]
    raise SteeringVectorError(
        f"unknown weighting {weighting!r}; use auto, given, uniform, mean_act, mean_diff or score:<name>"
    )


def scaled_component(
    direction: torch.Tensor, hook_name: str, *, scale_mode: ScaleMode, typical_norm: float | None
) -> Component:
    """A component from a raw ``direction: [d_model]``: ``typical_norm * unit(direction)`` or raw."""
    d = direction.detach().to(torch.float32).cpu()
    norm = float(d.double().norm())
    if not torch.isfinite(d).all():
        raise SteeringVectorError(f"the direction at {hook_name} has non-finite values")
    if scale_mode == "residual_norm":
        if typical_norm is None:
            raise SteeringVectorError(
                "scale_mode 'residual_norm' needs the typical residual norm at the hook"
            )
        if norm == 0.0:
            raise SteeringVectorError(
                f"the direction at {hook_name} is zero (weights cancel?); cannot normalise it"
            )
        d = (d.double() * (typical_norm / norm)).to(torch.float32)
    return Component(hook_name, d.contiguous(), typical_norm)


def from_feature_set(
    fs: FeatureSet,
    sae: SAE,
    model: HookedTransformer,
    *,
    weighting: str = "auto",
    unit_rows: bool | None = None,
    scale_mode: ScaleMode = "residual_norm",
    operator: Operator = "add",
    positions: PositionPolicy = "all",
    typical_norm: float | None = None,
    clamp_values: Sequence[float] | None = None,
    name: str | None = None,
    check_ids: bool = True,
) -> SteeringVector:
    """A steering vector from a feature set (ids with weights, or a saved search result).

    For ``operator="clamp"`` the features are clamped to ``clamp_values`` (default: their weights)
    times the strength; the stored component is still the decoder direction (for export and display).
    """
    from saesteer.models.loading import model_source
    from saesteer.saes.loading import check_compatible, sae_hook_name, sae_source

    if not fs.features:
        raise SteeringVectorError(f"feature set for {fs.target!r} is empty")
    hook = sae_hook_name(sae, fs.hook_name)
    check_compatible(model, sae, hook)
    msrc, ssrc = model_source(model), sae_source(sae)
    if check_ids:
        if fs.model_id and fs.model_id != msrc.id:
            raise SteeringVectorError(
                f"the feature set was selected on model {fs.model_id!r}, not {msrc.id!r}"
            )
        if fs.sae_id and fs.sae_id != ssrc.id:
            raise SteeringVectorError(f"the feature set was selected with SAE {fs.sae_id!r}, not {ssrc.id!r}")
        sae_hook = getattr(sae.cfg.metadata, "hook_name", None)
        if fs.hook_name and sae_hook and fs.hook_name != sae_hook:
            raise SteeringVectorError(
                f"the feature set is for hook {fs.hook_name!r} but the SAE reads {sae_hook!r}"
            )
    weighting, unit_rows = resolve_recipe(fs, weighting, unit_rows)
    weights = feature_weights(fs, weighting)
    confound = fs.domain_warning  # checked against the index when selecting (saesteer.select.domain)
    if confound:
        log.warning(confound)
    direction = decoder_direction(sae, fs.features, weights, unit_rows=unit_rows)
    if scale_mode == "residual_norm" and typical_norm is None:
        typical_norm = typical_residual_norm(model, hook)
    comp = scaled_component(direction, hook, scale_mode=scale_mode, typical_norm=typical_norm)
    clamp = None
    if operator == "clamp":
        vals = list(clamp_values) if clamp_values is not None else weights
        if len(vals) != len(fs.features):
            raise SteeringVectorError(f"{len(vals)} clamp values for {len(fs.features)} features")
        clamp = ClampSpec(
            torch.tensor(fs.features, dtype=torch.int64), torch.tensor(vals, dtype=torch.float32), ssrc.id
        )
    prov: dict[str, Any] = {
        "method": "sae_features",
        "target": fs.target,
        "features": list(fs.features),
        "weights": weights,
        "weighting": weighting,
        "rows": "unit" if unit_rows else "raw",
        "scores": fs.scores,
        "build_id": fs.build_id,
        "filters": list(fs.filters),
        "hook_name": hook,
        "model": asdict(msrc),
        "sae": asdict(ssrc),
        "direction_norm": float(direction.double().norm()),
        "norm_sample": NORM_SAMPLE if scale_mode == "residual_norm" else None,
    }
    if confound:
        prov["domain_warning"] = confound
    return SteeringVector(
        components=(comp,),
        model=ModelInfo.from_tl(model),
        operator=operator,
        positions=positions,
        scale_mode=scale_mode,
        clamp=clamp,
        provenance=prov,
        name=name or f"{fs.target}-sae{len(fs.features)}",
    )


def from_direction(
    direction: torch.Tensor,
    hook_name: str,
    model: HookedTransformer,
    *,
    scale_mode: ScaleMode = "residual_norm",
    typical_norm: float | None = None,
    operator: Operator = "add",
    positions: PositionPolicy = "all",
    provenance: dict[str, Any] | None = None,
    name: str = "direction",
) -> SteeringVector:
    """A one-hook vector from any ``direction: [d_model]`` (a probe, a DiffMean, a hand-made vector)."""
    from saesteer.models.hooks import validate_hook

    validate_hook(model, hook_name)
    if scale_mode == "residual_norm" and typical_norm is None:
        typical_norm = typical_residual_norm(model, hook_name)
    comp = scaled_component(direction, hook_name, scale_mode=scale_mode, typical_norm=typical_norm)
    return SteeringVector(
        components=(comp,),
        model=ModelInfo.from_tl(model),
        operator=operator,
        positions=positions,
        scale_mode=scale_mode,
        provenance=provenance or {},
        name=name,
    )
