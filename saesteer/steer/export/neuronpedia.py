"""Neuronpedia's steering-vector JSON: the payload of its ``vector/new`` API (the neuronpedia Python
client's ``VectorRequest.new``)::

    {"modelId": ..., "layerNumber": L, "hookType": "hook_resid_pre", "vector": [d_model floats],
     "vectorDefaultSteerStrength": S, "vectorLabel": ...}

Neuronpedia accepts ``hook_resid_pre`` vectors only, so ``blocks.L.hook_resid_post`` is written as
``blocks.(L+1).hook_resid_pre`` (the same point of the residual stream; impossible for the last
layer). Import also reads the client's ``NPVector`` shape (``hookName``, ``values``,
``defaultSteerStrength``). saesteer's manifest goes to the ``<file>.saesteer.json`` sidecar.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from saesteer.errors import ExportFormatError, HookError, SteeringVectorError
from saesteer.models.hooks import parse_hook
from saesteer.steer.export._common import (
    ImportHints,
    check_exportable,
    read_sidecar,
    sidecar_path,
    write_json,
)
from saesteer.steer.modelinfo import imported_model_info
from saesteer.steer.vector import Component, SteeringVector, check_strength, tensor_sha256

HOOK_TYPE = "hook_resid_pre"
_HOOK_TYPES = {"hook_resid_pre", "resid-pre", "resid_pre"}


def neuronpedia_layer(hook_name: str, n_layers: int | None) -> int:
    """The ``layerNumber`` (of a ``hook_resid_pre`` vector) for a saesteer hook."""
    spec = parse_hook(hook_name)
    if spec.kind == "resid_pre":
        return spec.layer
    if spec.kind == "resid_post":
        if n_layers is not None and spec.layer + 1 >= n_layers:
            raise ExportFormatError(
                f"{hook_name} is the last layer's output; Neuronpedia takes hook_resid_pre vectors only and there is "
                "no next layer to express it at"
            )
        return spec.layer + 1
    raise ExportFormatError(f"{hook_name}: Neuronpedia vectors live at hook_resid_pre")


class NeuronpediaFormat:
    name = "neuronpedia"
    suffixes: tuple[str, ...] = (".json",)

    def detect(self, path: Path) -> bool:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        return isinstance(data, dict) and isinstance(data.get("vector", data.get("values")), list)

    def write(self, vector: SteeringVector, path: Path, *, strength: float | None = None) -> list[Path]:
        check_exportable(vector, "Neuronpedia")
        if len(vector.components) != 1:
            raise ExportFormatError(
                f"a Neuronpedia vector sits at one layer; this vector has {len(vector.components)} hooks "
                f"({', '.join(vector.hooks)}): export each hook separately"
            )
        comp = vector.components[0]
        s = check_strength(vector.default_strength if strength is None else strength, vector, what="export strength")
        payload = {
            "modelId": vector.model.id,
            "layerNumber": neuronpedia_layer(comp.hook_name, vector.model.n_layers),
            "hookType": HOOK_TYPE,
            "vector": [float(x) for x in comp.vector.tolist()],
            "vectorDefaultSteerStrength": s,
            "vectorLabel": vector.name,
        }
        write_json(path, payload)
        side = sidecar_path(path)
        write_json(side, vector.with_(default_strength=s).manifest())
        return [path, side]

    def read(self, path: Path, hints: ImportHints = ImportHints()) -> SteeringVector:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ExportFormatError(f"{path} is not a JSON file: {exc}") from exc
        if not isinstance(data, dict):
            raise ExportFormatError(f"{path} is JSON but not a Neuronpedia vector object")
        values = data.get("vector", data.get("values"))
        if not isinstance(values, list) or not values or not all(isinstance(x, (int, float)) for x in values):
            raise ExportFormatError(f"{path} has no numeric 'vector' list: not a Neuronpedia vector")
        vec = torch.tensor([float(x) for x in values], dtype=torch.float32)
        hook = _hook_of(data, hints, path)
        manifest = read_sidecar(path)
        if manifest is not None:
            comps = manifest.get("components") or []
            try:
                same_layer = len(comps) == 1 and neuronpedia_layer(
                    comps[0]["hook_name"], manifest["model"].get("n_layers")
                ) == parse_hook(hook).layer
            except (KeyError, TypeError, AttributeError, ExportFormatError, HookError) as exc:
                raise ExportFormatError(f"the manifest sidecar of {path} is malformed ({exc})") from exc
            if not (same_layer and comps[0].get("sha256") == tensor_sha256(vec)):
                raise SteeringVectorError(
                    f"{path} does not match its manifest sidecar {sidecar_path(path).name} (edited or corrupt: "
                    "the vector or its layer changed); remove the sidecar to import the JSON alone"
                )
            return SteeringVector.from_manifest(manifest, {comps[0]["tensor"]: vec})
        model_id = hints.model_id or data.get("modelId")
        if not model_id:
            raise SteeringVectorError(
                f"{path} does not say which model it is for; pass the model id (--model-id)"
            )
        strength = data.get("vectorDefaultSteerStrength", data.get("defaultSteerStrength"))
        prov: dict[str, Any] = {
            "method": "import",
            "imported_from": {
                "format": "neuronpedia",
                "file": path.name,
                "source": data.get("source", data.get("layer")),
                "index": data.get("index"),
            },
        }
        return SteeringVector(
            components=(Component(hook, vec),),
            model=imported_model_info(str(model_id), int(vec.shape[0]), hints.n_layers, what=f"the vector of {path}"),
            operator="add",
            positions="all",
            scale_mode="raw",
            default_strength=float(strength) if isinstance(strength, (int, float)) else 1.0,
            provenance=prov,
            name=hints.name or str(data.get("vectorLabel", data.get("label", path.stem))),
        )


def _hook_of(data: dict[str, Any], hints: ImportHints, path: Path) -> str:
    if "layerNumber" in data:
        hook_type = str(data.get("hookType", HOOK_TYPE))
        if hook_type not in _HOOK_TYPES:
            raise ExportFormatError(f"{path}: hookType {hook_type!r} is not a resid_pre hook")
        layer = data["layerNumber"]
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
            raise ExportFormatError(f"{path}: layerNumber must be a non-negative integer, got {layer!r}")
        return f"blocks.{layer}.hook_resid_pre"
    name = data.get("hookName") or hints.hook_name
    if not name:
        raise SteeringVectorError(f"{path} does not say where the vector goes; pass the hook (--hook)")
    return str(name)
