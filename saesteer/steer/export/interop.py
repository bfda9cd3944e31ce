"""Objects for repeng and steering-vectors (Python objects, not files).

- repeng: ``ControlVector(model_type: str, directions: dict[int, np.ndarray])``; repeng wraps
  ``model.model.layers[i]`` and adds ``directions[i]`` to that decoder layer's output
  (``repeng/control.py``: ``ControlModule.forward``), so key ``i`` == ``blocks.i.hook_resid_post``.
- steering-vectors: ``SteeringVector(layer_activations: dict[int, Tensor], layer_type="decoder_block")``;
  it registers a forward hook on decoder block ``i`` and adds to its output
  (``steering_vectors/steering_vector.py``: ``patch_activations``), so again ``i`` == resid_post ``i``.

``blocks.L.hook_resid_pre`` maps to key ``L - 1`` (``L >= 1``). The real classes are returned when the
packages are importable (both need scikit-learn, and steering-vectors ``transformers < 5``), else
look-alike dataclasses with the same fields; ``from_*`` accept either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from saesteer.errors import ExportFormatError, SteeringVectorError
from saesteer.models.hooks import parse_hook
from saesteer.steer.export._common import check_exportable
from saesteer.steer.vector import Component, ModelInfo, SteeringVector, check_strength


@dataclass
class RepengControlVector:
    """Field-for-field stand-in for ``repeng.ControlVector`` when repeng is not installed."""

    model_type: str
    directions: dict[int, np.ndarray]


@dataclass
class SteeringVectorsVector:
    """Field-for-field stand-in for ``steering_vectors.SteeringVector`` when it is not installed."""

    layer_activations: dict[int, torch.Tensor]
    layer_type: str = "decoder_block"


def block_index(hook_name: str) -> int:
    """The decoder-block index (output) that repeng / steering-vectors use for a saesteer hook."""
    spec = parse_hook(hook_name)
    if spec.kind == "resid_post":
        return spec.layer
    if spec.kind == "resid_pre" and spec.layer >= 1:
        return spec.layer - 1
    raise ExportFormatError(
        f"{hook_name} is not the output of a decoder block (blocks.0.hook_resid_pre is the embedding)"
    )


def _by_block(vector: SteeringVector, fmt: str, strength: float | None) -> dict[int, torch.Tensor]:
    check_exportable(vector, fmt)
    s = check_strength(vector.default_strength if strength is None else strength, vector, what="strength")
    out: dict[int, torch.Tensor] = {}
    for c in vector.components:
        i = block_index(c.hook_name)
        t = c.vector if s == 1.0 else c.vector * s
        out[i] = out[i] + t if i in out else t.clone()
    return dict(sorted(out.items()))


def to_repeng(vector: SteeringVector, *, strength: float | None = None) -> Any:
    """A repeng ``ControlVector`` (or :class:`RepengControlVector`); ``strength`` (default: the
    vector's default strength) is baked into the directions, as repeng's ``coeff`` multiplies them."""
    dirs = {
        i: t.numpy().astype(np.float32, copy=True) for i, t in _by_block(vector, "repeng", strength).items()
    }
    model_type = vector.model.model_type or vector.model.id
    try:
        from repeng import ControlVector
    except Exception:  # not installed, or its own imports (scikit-learn) fail
        return RepengControlVector(model_type=model_type, directions=dirs)
    return ControlVector(model_type=model_type, directions=dirs)


def from_repeng(
    obj: Any, *, model_id: str | None = None, n_layers: int | None = None, name: str = "repeng"
) -> SteeringVector:
    """A saesteer vector from a repeng ``ControlVector`` (or look-alike): resid_post hooks, raw scale."""
    dirs = getattr(obj, "directions", None)
    if not isinstance(dirs, dict) or not dirs:
        raise SteeringVectorError("not a repeng ControlVector: expected a non-empty 'directions' dict")
    comps = []
    for i in sorted(dirs):
        arr = np.asarray(dirs[i])
        comps.append(
            Component(
                f"blocks.{int(i)}.hook_resid_post",
                torch.from_numpy(np.array(arr, dtype=np.float32, copy=True)),
            )
        )
    d_model = int(comps[0].vector.shape[0])
    mt = str(getattr(obj, "model_type", "") or "")
    return SteeringVector(
        components=tuple(comps),
        model=ModelInfo(model_id or mt, d_model, n_layers, model_type=mt or None),
        scale_mode="raw",
        provenance={"method": "import", "imported_from": {"format": "repeng", "model_type": mt}},
        name=name,
    )


def to_steering_vectors(vector: SteeringVector, *, strength: float | None = None) -> Any:
    """A steering-vectors ``SteeringVector`` (or :class:`SteeringVectorsVector`), layer type decoder_block."""
    acts = {i: t.clone() for i, t in _by_block(vector, "steering-vectors", strength).items()}
    try:
        from steering_vectors import SteeringVector as SV
    except Exception:  # not installed (it needs transformers < 5 and scikit-learn)
        return SteeringVectorsVector(layer_activations=acts, layer_type="decoder_block")
    return SV(layer_activations=acts, layer_type="decoder_block")


def from_steering_vectors(
    obj: Any, *, model_id: str, n_layers: int | None = None, name: str = "steering-vectors"
) -> SteeringVector:
    """A saesteer vector from a steering-vectors ``SteeringVector`` (decoder_block layers only)."""
    acts = getattr(obj, "layer_activations", None)
    if not isinstance(acts, dict) or not acts:
        raise SteeringVectorError(
            "not a steering-vectors SteeringVector: expected a non-empty 'layer_activations' dict"
        )
    layer_type = getattr(obj, "layer_type", "decoder_block")
    if layer_type != "decoder_block":
        raise ExportFormatError(
            f"only decoder_block steering vectors map to residual hooks, not {layer_type!r}"
        )
    comps = tuple(
        Component(
            f"blocks.{int(i)}.hook_resid_post",
            torch.as_tensor(acts[i]).detach().to(torch.float32).reshape(-1).clone(),
        )
        for i in sorted(acts)
    )
    return SteeringVector(
        components=comps,
        model=ModelInfo(model_id, int(comps[0].vector.shape[0]), n_layers),
        scale_mode="raw",
        provenance={"method": "import", "imported_from": {"format": "steering-vectors"}},
        name=name,
    )
