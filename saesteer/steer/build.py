"""Build steering vectors from SAE features: the weighted sum of decoder rows, scaled to the residual.

``direction = sum_i w_i * row_i`` where ``row_i = W_dec[f_i]`` (``rows="raw"``) or its unit-norm
version (``rows="unit"``), and the weights ``w_i`` are

- ``given``: the feature set's own weights (1.0 each when it has none);
- ``auto``: ``mean_diff`` with raw rows when the feature set comes from an index build and the index is
  given, else ``given`` with unit rows (:func:`resolve_recipe`; rows default to raw for ``mean_diff`` and
  unit otherwise);
- ``uniform``: 1.0 each;
- ``mean_act``: the mean activation on the target condition, ``sum_act / conditions.n_tokens`` read
  from the index build the feature set came from;
- ``mean_diff``: the mean activation on the target minus its mean over the contrast conditions (each
  weighing the same). With raw rows this is the DiffMean of the SAE reconstructions restricted to the
  chosen features: the part of the target-vs-rest difference those features carry (equal to the ν score
  of :mod:`saesteer.select.scores`, but read from the index, so hand-picked feature sets get it too);
- ``score:<name>``: one of the feature set's scores.

With ``scale_mode="residual_norm"`` (default) the stored vector is ``typical_norm * unit(direction)``
where ``typical_norm`` is the median residual norm at the hook (see
:func:`~saesteer.steer.residuals.typical_residual_norm`), so strength 1.0 means "one typical residual
norm" on every model and layer. ``scale_mode="raw"`` keeps ``direction`` unnormalised.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from saesteer.errors import (
    SteeringVectorError,
    UnknownConditionError,
    UnknownFeatureError,
)
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

    from saesteer.index.db import IndexDb
    from saesteer.select.catalog import Catalog
    from saesteer.select.featureset import FeatureSet

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


def _means(con: IndexDb, cat: Catalog, conditions: Sequence[str], features: Sequence[int]) -> dict[str, list[float]]:
    """``{condition: [mean activation of each feature]}`` on one open index (named query
    ``steer_mean_activation``); unknown or empty conditions are refused with the build's known names."""
    names = {c: cat.resolve(c) for c in dict.fromkeys(conditions)}
    empty = [n for n in names.values() if cat.conditions[n].n_tokens <= 0]
    if empty:
        raise UnknownConditionError(f"condition {empty[0]!r} of build {cat.build.build_id!r} counted no tokens")
    rows = con.query(
        "steer_mean_activation", [cat.build.build_id, list(names.values()), [int(f) for f in features]]
    ).fetchall()
    got = {(str(c), int(f)): float(m) for c, f, m in rows}
    return {c: [got[(n, int(f))] for f in features] for c, n in names.items()}


def mean_activations(
    db: str | os.PathLike[str], build_id: str, conditions: Sequence[str], features: Sequence[int]
) -> dict[str, list[float]]:
    """``{condition: [mean activation of each feature]}``: ``sum_act / n_tokens`` (0 where it never fired)."""
    from saesteer.index.db import IndexDb
    from saesteer.select.catalog import load_catalog

    with IndexDb(Path(db), read_only=True) as con:
        return _means(con, load_catalog(con, build_id), conditions, features)


def mean_activation_on_target(
    db: str | os.PathLike[str], build_id: str, condition: str, features: Sequence[int]
) -> list[float]:
    """Mean activation of each feature on ``condition``: ``sum_act / n_tokens`` (0 where it never fired)."""
    return mean_activations(db, build_id, [condition], features)[condition]


def contrast_conditions(fs: FeatureSet, cat: Catalog) -> list[str]:
    """The conditions ``fs`` was contrasted with (its ``against=`` filter), else every other non-random
    condition of its build."""
    for f in fs.filters:
        if f.startswith("against="):
            named = [c for c in f.split("=", 1)[1].split(",") if c]
            if named:
                return named
    others = [c.name for c in cat.conditions.values() if not c.is_random and c.name != fs.target]
    if not others:
        raise SteeringVectorError(f"build {fs.build_id!r} has no condition to contrast {fs.target!r} with")
    return others


def mean_diff_weights(db: str | os.PathLike[str], fs: FeatureSet) -> list[float]:
    """Mean activation on ``fs.target`` minus the mean over its contrast conditions (each weighing the same)."""
    from saesteer.index.db import IndexDb
    from saesteer.select.catalog import load_catalog

    assert fs.build_id is not None
    with IndexDb(Path(db), read_only=True) as con:
        cat = load_catalog(con, fs.build_id)
        others = contrast_conditions(fs, cat)
        means = _means(con, cat, [fs.target, *others], fs.features)
    rest = [sum(col) / len(others) for col in zip(*(means[c] for c in others), strict=True)]
    return [float(t - r) for t, r in zip(means[fs.target], rest, strict=True)]


def featureset_domain_warning(db: str | os.PathLike[str], fs: FeatureSet) -> str | None:
    """The domain-confound line for ``fs``'s target against its contrast conditions
    (:func:`saesteer.select.domain.domain_warning`), or None."""
    from saesteer.index.db import IndexDb
    from saesteer.select.catalog import load_catalog
    from saesteer.select.domain import domain_warning

    assert fs.build_id is not None
    with IndexDb(Path(db), read_only=True) as con:
        cat = load_catalog(con, fs.build_id)
        target = cat.resolve(fs.target)
        return domain_warning(con, cat, target, [cat.resolve(c) for c in contrast_conditions(fs, cat)])


def resolve_recipe(
    fs: FeatureSet, weighting: str, unit_rows: bool | None, db: str | os.PathLike[str] | None
) -> tuple[str, bool]:
    """``weighting="auto"``: ``mean_diff`` when the set comes from an index build and ``db`` is given (the recipe
    measured to steer, ``docs/steering.md``), else ``given``. ``unit_rows=None``: raw rows for ``mean_diff``,
    unit rows otherwise."""
    if weighting == "auto":
        weighting = "mean_diff" if fs.build_id and db is not None else "given"
    return weighting, (weighting != "mean_diff") if unit_rows is None else unit_rows


def feature_weights(
    fs: FeatureSet, weighting: str, *, db: str | os.PathLike[str] | None = None
) -> list[float]:
    """The weight of each feature of ``fs`` under ``weighting`` (see the module docstring)."""
    weighting, _ = resolve_recipe(fs, weighting, None, db)
    if weighting == "given":
        return [float(w) for w in fs.resolved_weights]
    if weighting == "uniform":
        return [1.0] * len(fs.features)
    if weighting == "mean_act":
        if db is None:
            raise SteeringVectorError("weighting 'mean_act' reads the index: pass db= / --db")
        if not fs.build_id:
            raise SteeringVectorError("weighting 'mean_act' needs the feature set's build_id (it has none)")
        return mean_activation_on_target(db, fs.build_id, fs.target, fs.features)
    if weighting == "mean_diff":
        if db is None:
            raise SteeringVectorError("weighting 'mean_diff' reads the index: pass db= / --db")
        if not fs.build_id:
            raise SteeringVectorError("weighting 'mean_diff' needs the feature set's build_id (it has none)")
        return mean_diff_weights(db, fs)
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
    weighting: str = "given",
    unit_rows: bool | None = None,
    scale_mode: ScaleMode = "residual_norm",
    operator: Operator = "add",
    positions: PositionPolicy = "all",
    db: str | os.PathLike[str] | None = None,
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
    weighting, unit_rows = resolve_recipe(fs, weighting, unit_rows, db)
    weights = feature_weights(fs, weighting, db=db)
    confound = featureset_domain_warning(db, fs) if db is not None and fs.build_id else None
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
