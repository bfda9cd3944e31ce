"""The native format: one ``.safetensors`` file, a float32 tensor per hook (named by the hook), the
clamp spec if any, and the JSON manifest in the safetensors metadata under ``saesteer.manifest``.

The manifest lists every tensor with its sha256, so a corrupted file is detected on load.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from saesteer.errors import ExportFormatError, SteeringVectorError
from saesteer.steer.export._common import ImportHints, atomic_target
from saesteer.steer.vector import SteeringVector, check_strength

MANIFEST_KEY = "saesteer.manifest"


class NativeFormat:
    name = "native"
    suffixes: tuple[str, ...] = (".safetensors",)

    def detect(self, path: Path) -> bool:
        try:
            with path.open("rb") as fh:
                head = fh.read(9)
        except OSError:
            return False
        if len(head) < 9:
            return False
        (n,) = struct.unpack("<Q", head[:8])
        return 0 < n < 100_000_000 and head[8:9] == b"{"

    def write(self, vector: SteeringVector, path: Path, *, strength: float | None = None) -> list[Path]:
        from safetensors.torch import save_file

        if strength is not None:
            vector = vector.with_(default_strength=check_strength(strength, vector, what="export strength"))
        meta = {MANIFEST_KEY: json.dumps(vector.manifest(), ensure_ascii=False, allow_nan=False)}
        with atomic_target(path) as tmp:
            save_file(vector.tensors(), str(tmp), metadata=meta)
        return [path]

    def read(self, path: Path, hints: ImportHints = ImportHints()) -> SteeringVector:
        from safetensors import SafetensorError, safe_open

        if not self.detect(path):
            raise ExportFormatError(f"{path} is not a safetensors file (bad header)")
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise SteeringVectorError(f"{path} is a corrupt safetensors file: {exc}") from exc
        raw = meta.get(MANIFEST_KEY)
        if raw is None:
            raise ExportFormatError(
                f"{path} is a safetensors file without a saesteer manifest (SAE or model weights?); "
                "it is not a saesteer steering vector"
            )
        try:
            manifest = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SteeringVectorError(
                f"{path}: the manifest is not valid JSON ({exc}); the file is corrupt"
            ) from exc
        return SteeringVector.from_manifest(manifest, tensors)
