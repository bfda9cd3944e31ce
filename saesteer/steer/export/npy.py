"""numpy: a ``.npy`` float32 array, ``[d_model]`` for one hook or ``[n_hooks, d_model]`` (rows in the
manifest's component order), plus the manifest in the ``<file>.saesteer.json`` sidecar.

Operator, positions and the clamp spec live only in the manifest; a bare ``.npy`` imports as an
additive vector at the hook given in the hints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from saesteer.errors import ExportFormatError, SteeringVectorError
from saesteer.steer.export._common import ImportHints, atomic_target, read_sidecar, sidecar_path, write_json
from saesteer.steer.vector import Component, ModelInfo, SteeringVector, check_strength, tensor_sha256

MAGIC = b"\x93NUMPY"


class NpyFormat:
    name = "npy"
    suffixes: tuple[str, ...] = (".npy",)

    def detect(self, path: Path) -> bool:
        try:
            with path.open("rb") as fh:
                return fh.read(6) == MAGIC
        except OSError:
            return False

    def write(self, vector: SteeringVector, path: Path, *, strength: float | None = None) -> list[Path]:
        if vector.clamp is not None:
            raise ExportFormatError(
                "a clamp vector needs its SAE feature ids and values: export it in the native format"
            )
        if strength is not None:
            strength = check_strength(strength, vector, what="export strength")
        rows = [c.vector.numpy() for c in vector.components]
        arr = rows[0] if len(rows) == 1 else np.stack(rows)
        with atomic_target(path) as tmp:
            with tmp.open("wb") as fh:
                np.save(fh, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
        if strength is not None:
            vector = vector.with_(default_strength=float(strength))
        side = sidecar_path(path)
        write_json(side, vector.manifest())
        return [path, side]

    def read(self, path: Path, hints: ImportHints = ImportHints()) -> SteeringVector:
        try:
            arr = np.load(str(path), allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ExportFormatError(f"{path} is not a readable .npy file: {exc}") from exc
        if arr.dtype.kind != "f" or arr.ndim not in (1, 2):
            raise ExportFormatError(
                f"{path}: expected a float array of shape [d_model] or [n_hooks, d_model], got {arr.dtype} {arr.shape}"
            )
        mat = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).reshape(-1, arr.shape[-1])
        rows = [mat[i].clone() for i in range(mat.shape[0])]
        manifest = read_sidecar(path)
        if manifest is not None:
            comps = manifest.get("components") or []
            if len(comps) != len(rows):
                raise SteeringVectorError(
                    f"{path}: the array has {len(rows)} rows but its manifest lists {len(comps)} hooks"
                )
            if all(c.get("sha256") == tensor_sha256(r) for c, r in zip(comps, rows, strict=True)):
                return SteeringVector.from_manifest(
                    manifest, {c["tensor"]: r for c, r in zip(comps, rows, strict=True)}
                )
            raise SteeringVectorError(
                f"{path} does not match its manifest sidecar (edited or corrupt); remove the sidecar to import the bare array"
            )
        hooks = [h.strip() for h in (hints.hook_name or "").split(",") if h.strip()]
        if len(hooks) != len(rows):
            raise SteeringVectorError(
                f"{path} has {len(rows)} row(s) and no manifest sidecar: pass {len(rows)} hook name(s) (--hook)"
            )
        if not hints.model_id:
            raise SteeringVectorError(f"{path} has no manifest sidecar: pass the model id (--model-id)")
        return SteeringVector(
            components=tuple(Component(h, r) for h, r in zip(hooks, rows, strict=True)),
            model=ModelInfo(hints.model_id, int(mat.shape[1]), hints.n_layers),
            scale_mode="raw",
            provenance={"method": "import", "imported_from": {"format": "npy", "file": path.name}},
            name=hints.name or path.stem,
        )
