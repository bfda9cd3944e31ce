"""Composition: merge several additive vectors into one multi-hook vector."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from saesteer.errors import SteeringVectorError
from saesteer.models.hooks import parse_hook
from saesteer.steer.vector import STEERABLE_KINDS, Component, ScaleMode, SteeringVector


def combine(vectors: Sequence[SteeringVector], *, name: str | None = None) -> SteeringVector:
    """Merge add-type vectors for the same model into one multi-hook vector.

    Components at the same hook are summed, each at its vector's default strength; the result has
    default strength 1.0 and ``residual_norm`` scale only if every input has it.
    """
    if not vectors:
        raise SteeringVectorError("nothing to combine")
    first = vectors[0]
    for v in vectors:
        if v.operator != "add" or v.positions != first.positions:
            raise SteeringVectorError(
                "only 'add' vectors with the same position policy can be combined into one"
            )
        if v.model.id != first.model.id or v.model.d_model != first.model.d_model:
            raise SteeringVectorError(
                f"cannot combine vectors for different models ({first.model.id!r} vs {v.model.id!r})"
            )
    summed: dict[str, torch.Tensor] = {}
    norms: dict[str, float | None] = {}
    for v in vectors:
        for c in v.components:
            add = c.vector * float(v.default_strength)
            summed[c.hook_name] = summed[c.hook_name] + add if c.hook_name in summed else add.clone()
            norms.setdefault(c.hook_name, c.typical_norm)
    comps = tuple(Component(h, t.to(torch.float32), norms[h]) for h, t in _layer_order(summed.items()))
    mode: ScaleMode = "residual_norm" if all(v.scale_mode == "residual_norm" for v in vectors) else "raw"
    prov = {
        "method": "combine",
        "parts": [
            {"name": v.name, "default_strength": v.default_strength, "provenance": v.provenance}
            for v in vectors
        ],
    }
    return SteeringVector(
        components=comps,
        model=first.model,
        operator="add",
        positions=first.positions,
        scale_mode=mode,
        provenance=prov,
        name=name or "+".join(v.name for v in vectors),
    )


def _layer_order(items: Iterable[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    def key(item: tuple[str, torch.Tensor]) -> tuple[int, int]:
        spec = parse_hook(item[0])
        return spec.layer, STEERABLE_KINDS.index(spec.kind) if spec.kind in STEERABLE_KINDS else 9

    return sorted(items, key=key)
