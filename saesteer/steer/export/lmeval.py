"""lm-evaluation-harness: the ``.pt`` file that its ``steered`` model type loads
(``lm_eval --model steered --model_args pretrained=...,steer_path=v.pt``), plus the manifest in the
``<file>.saesteer.json`` sidecar.

The file is ``torch.save`` of ``{hookpoint: {"steering_vector", "steering_coefficient", "action",
"bias", "head_index"}}``. From ``lm_eval/models/hf_steered.py`` (lm-eval 0.4.13): each hookpoint is the
name of a module in ``model.base_model.named_modules()`` (for a transformers causal LM the decoder
stack, so ``layers.L``), and a forward hook replaces that module's output (the first element of a
tuple):

- ``add``: ``out + coefficient * vector`` at every position;
- ``clamp``: ``out + u * (coefficient - out · u)`` with ``u = vector / ‖vector‖`` (``bias`` is
  subtracted first and added back when given).

Mapping from saesteer (one entry per hook point; a vector built from SAE features is already the
weighted sum of their decoder rows):

==============================  ===========================  =======================================
saesteer                        lm-eval hookpoint            action
==============================  ===========================  =======================================
``blocks.L.hook_resid_post``    ``layers.L``                 operator ``add`` -> ``add``, coefficient = strength
``blocks.L.hook_resid_pre``     ``layers.(L-1)`` (``L>=1``)  operator ``ablate`` at strength 1 -> ``clamp`` to 0
==============================  ===========================  =======================================

Everything else (``norm_preserving_add``, ``ablate`` at another strength, SAE clamps, the ``prompt`` /
``generated`` position policies) has no lm-eval equivalent and is refused. lm-eval's ``add`` also
touches padding positions; saesteer's does not, which changes no logit of a real token.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from saesteer.errors import ExportFormatError, SteeringVectorError
from saesteer.steer.export._common import ImportHints, atomic_target, read_sidecar, sidecar_path, write_json
from saesteer.steer.vector import Component, ModelInfo, SteeringVector, check_strength, tensor_sha256

_LAYER = re.compile(r"^(?:model\.)?layers\.(\d+)$")


def lmeval_hookpoint(hook_name: str) -> str:
    """The lm-eval hookpoint (module name under ``model.base_model``) for a saesteer hook name."""
    from saesteer.models.hooks import parse_hook

    spec = parse_hook(hook_name)
    if spec.kind == "resid_post":
        return f"layers.{spec.layer}"
    if spec.kind == "resid_pre":
        if spec.layer == 0:
            raise ExportFormatError(
                f"{hook_name} is the embedding output; lm-eval hooks module outputs only: "
                "use blocks.0.hook_resid_post or a later hook"
            )
        return f"layers.{spec.layer - 1}"
    raise ExportFormatError(f"{hook_name}: lm-eval steers decoder-layer outputs only (resid_pre / resid_post)")


def _action(vector: SteeringVector, strength: float) -> tuple[str, float]:
    if vector.clamp is not None:
        raise ExportFormatError(
            "an SAE clamp vector has no lm-eval equivalent (its clamp is one direction): export an add vector"
        )
    if vector.positions != "all":
        raise ExportFormatError(
            f"lm-eval steers every position; this vector steers only {vector.positions!r} positions"
        )
    if vector.operator == "add":
        return "add", strength
    if vector.operator == "ablate" and strength == 1.0:
        return "clamp", 0.0
    raise ExportFormatError(
        f"operator {vector.operator!r} at strength {strength:g} has no lm-eval equivalent "
        "(lm-eval has add, and clamp = ablate at strength 1)"
    )


def lmeval_config(vector: SteeringVector, strength: float | None = None) -> dict[str, dict[str, Any]]:
    """The dict that lm-eval's ``steered`` model loads, for ``vector`` at ``strength`` (default: its own)."""
    s = check_strength(vector.default_strength if strength is None else strength, vector, what="export strength")
    action, coef = _action(vector, s)
    config: dict[str, dict[str, Any]] = {}
    for c in vector.components:
        point = lmeval_hookpoint(c.hook_name)
        if point in config:
            raise ExportFormatError(
                f"{c.hook_name} maps to lm-eval hookpoint {point!r}, which another component already uses"
            )
        config[point] = {
            "steering_vector": c.vector.detach().to(torch.float32).contiguous().clone(),
            "steering_coefficient": coef,
            "action": action,
            "bias": None,
            "head_index": None,
        }
    return config


class LmEvalFormat:
    name = "lm-eval"
    suffixes: tuple[str, ...] = (".pt", ".pth")

    def detect(self, path: Path) -> bool:
        if path.suffix not in self.suffixes or not zipfile.is_zipfile(path):
            return False
        try:
            return isinstance(self._load(path), dict)
        except ExportFormatError:
            return False

    def write(self, vector: SteeringVector, path: Path, *, strength: float | None = None) -> list[Path]:
        config = lmeval_config(vector, strength)
        with atomic_target(path) as tmp:
            torch.save(config, tmp)
        if strength is not None:
            vector = vector.with_(default_strength=float(strength))
        side = sidecar_path(path)
        write_json(side, vector.manifest())
        return [path, side]

    @staticmethod
    def _load(path: Path) -> Any:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ExportFormatError(f"{path} is not a readable lm-eval steering file: {exc}") from exc

    def read(self, path: Path, hints: ImportHints = ImportHints()) -> SteeringVector:
        data = self._load(path)
        if not isinstance(data, dict) or not data:
            raise ExportFormatError(f"{path}: expected a dict {{hookpoint: {{steering_vector, ...}}}}")
        rows: list[tuple[str, torch.Tensor, dict[str, Any]]] = []
        for point, info in data.items():
            if not isinstance(info, dict) or not isinstance(info.get("steering_vector"), torch.Tensor):
                raise ExportFormatError(f"{path}: entry {point!r} has no steering_vector tensor")
            m = _LAYER.match(str(point))
            if m is None:
                raise ExportFormatError(
                    f"{path}: hookpoint {point!r} is not a decoder layer (layers.N); saesteer imports those only"
                )
            rows.append((f"blocks.{m.group(1)}.hook_resid_post", info["steering_vector"].float(), info))
        manifest = read_sidecar(path)
        if manifest is not None:
            return self._from_manifest(path, manifest, rows)
        actions = {str(info.get("action", "add")) for _, _, info in rows}
        if actions != {"add"} or any(info.get("head_index") is not None for _, _, info in rows):
            raise ExportFormatError(f"{path}: only add entries without head_index import without a manifest")
        if not hints.model_id:
            raise SteeringVectorError(f"{path} has no manifest sidecar: pass the model id (--model-id)")
        comps = tuple(
            Component(h, (v * float(info.get("steering_coefficient", 1.0))).contiguous())
            for h, v, info in rows
        )
        return SteeringVector(
            components=comps,
            model=ModelInfo(hints.model_id, int(rows[0][1].shape[-1]), hints.n_layers),
            scale_mode="raw",
            provenance={"method": "import", "imported_from": {"format": "lm-eval", "file": path.name}},
            name=hints.name or path.stem,
        )

    @staticmethod
    def _from_manifest(
        path: Path, manifest: dict[str, Any], rows: list[tuple[str, torch.Tensor, dict[str, Any]]]
    ) -> SteeringVector:
        comps = manifest.get("components") or []
        by_point = {lmeval_hookpoint(c["hook_name"]): c for c in comps}
        tensors: dict[str, torch.Tensor] = {}
        for hook, vec, _ in rows:
            c = by_point.get(f"layers.{hook.split('.')[1]}")
            if c is None or c.get("sha256") != tensor_sha256(vec):
                raise SteeringVectorError(
                    f"{path} does not match its manifest sidecar (edited or corrupt); "
                    "remove the sidecar to import the bare file"
                )
            tensors[c["tensor"]] = vec
        if len(tensors) != len(comps):
            raise SteeringVectorError(f"{path}: the file and its manifest list different hooks")
        return SteeringVector.from_manifest(manifest, tensors)
