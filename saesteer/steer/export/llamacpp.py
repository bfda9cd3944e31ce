"""llama.cpp control vectors: a GGUF file of ``direction.N`` float32 tensors of ``n_embd`` values.

The layer mapping, read from llama.cpp's source (see docs/steering.md for the citations):

- ``common_control_vector_load_one`` (common/common.cpp) parses ``direction.N``, rejects ``N == 0``
  ("invalid (zero) direction tensor layer index") and stores the tensor at offset ``n_embd * (N - 1)``;
- ``llama_adapter_cvec::apply`` (src/llama-adapter.cpp) fills ``tensors[il]`` from offset
  ``n_embd * (il - 1)`` for ``il = 1 .. n_layer - 1``, so ``direction.N`` becomes ``tensors[N]``;
- the Gemma 3 graph (src/models/gemma3.cpp) calls ``build_cvec(cur, il)`` on the output of decoder
  layer ``il``, after the FFN residual add (``l_out``): ``cur + tensors[il]``.

So ``direction.N`` is added to the output of decoder layer N (0-based), i.e.

- ``blocks.L.hook_resid_post`` <-> ``direction.L`` (``L >= 1``);
- ``blocks.L.hook_resid_pre`` == ``blocks.(L-1).hook_resid_post`` <-> ``direction.(L-1)`` (``L >= 2``).

``blocks.0.hook_resid_post`` / ``blocks.1.hook_resid_pre`` would be ``direction.0``, which llama.cpp
rejects. Metadata follows repeng: ``general.architecture = "controlvector"``,
``controlvector.model_hint``, ``controlvector.layer_count``; saesteer adds ``saesteer.export`` (JSON:
the vector's manifest and the exported strength), which llama.cpp ignores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saesteer.errors import ExportFormatError, SteeringVectorError
from saesteer.models.hooks import parse_hook
from saesteer.steer.export._common import ImportHints, atomic_target, check_exportable
from saesteer.steer.vector import Component, ModelInfo, SteeringVector, check_strength, tensor_sha256

ARCH = "controlvector"
EXPORT_KEY = "saesteer.export"
_DIRECTION = re.compile(r"^direction\.(\d+)$")


def gguf_layer_for_hook(hook_name: str) -> int:
    """The ``N`` of ``direction.N`` that llama.cpp adds where ``hook_name`` sits (see the module doc)."""
    spec = parse_hook(hook_name)
    if spec.kind == "resid_post":
        n = spec.layer
    elif spec.kind == "resid_pre":
        n = spec.layer - 1
    else:
        raise ExportFormatError(
            f"{hook_name}: llama.cpp steers decoder-layer outputs only (resid_pre / resid_post)"
        )
    if n < 1:
        raise ExportFormatError(
            f"{hook_name} would be direction.{n}: llama.cpp rejects direction.0 (it cannot steer before the output "
            "of decoder layer 1); build the vector at blocks.1.hook_resid_post or later"
        )
    return n


def hook_for_gguf_layer(n: int) -> str:
    """The transformer-lens hook where llama.cpp adds ``direction.N``: ``blocks.N.hook_resid_post``."""
    if n < 1:
        raise ExportFormatError(
            f"direction.{n} is invalid: llama.cpp rejects direction.0 and negative indices"
        )
    return f"blocks.{n}.hook_resid_post"


class GgufFormat:
    name = "gguf"
    suffixes: tuple[str, ...] = (".gguf",)

    def detect(self, path: Path) -> bool:
        try:
            with path.open("rb") as fh:
                return fh.read(4) == b"GGUF"
        except OSError:
            return False

    def write(self, vector: SteeringVector, path: Path, *, strength: float | None = None) -> list[Path]:
        import gguf

        check_exportable(vector, "llama.cpp control")
        s = 1.0 if strength is None else check_strength(strength, vector, what="export strength")
        directions: dict[int, torch.Tensor] = {}
        hooks: dict[int, list[str]] = {}
        for c in vector.components:
            n = gguf_layer_for_hook(c.hook_name)
            t = c.vector if s == 1.0 else (c.vector * s)
            directions[n] = directions[n] + t if n in directions else t
            hooks.setdefault(n, []).append(c.hook_name)
        for n, t in directions.items():
            if not bool(torch.isfinite(t).all()):
                raise SteeringVectorError(
                    f"direction.{n} of {vector.name!r} at strength {s:g} is not finite (float32 overflow); "
                    "export with a smaller --strength"
                )
        info = {
            "manifest": vector.manifest(),
            "strength": s,
            "directions": {str(n): h for n, h in hooks.items()},
            "sha256": {f"direction.{n}": tensor_sha256(t) for n, t in directions.items()},
        }
        with atomic_target(path) as tmp:
            writer = gguf.GGUFWriter(str(tmp), ARCH)
            writer.add_string(f"{ARCH}.model_hint", vector.model.model_type or vector.model.id)
            writer.add_uint32(f"{ARCH}.layer_count", len(directions))
            writer.add_string(EXPORT_KEY, json.dumps(info, ensure_ascii=False, allow_nan=False))
            for n in sorted(directions):
                writer.add_tensor(
                    f"direction.{n}", np.ascontiguousarray(directions[n].numpy(), dtype=np.float32)
                )
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
        return [path]

    def read(self, path: Path, hints: ImportHints = ImportHints()) -> SteeringVector:
        directions, fields = read_control_vector(path)
        raw = fields.get(EXPORT_KEY)
        if raw:
            try:
                info = json.loads(raw)
                _verify_checksums(path, info, directions)
                exact = _exact_from_manifest(info, directions)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise SteeringVectorError(f"{path}: the saesteer metadata is corrupt ({exc})") from exc
            if exact is not None:
                return exact
        return _from_directions(path, directions, fields, hints, json.loads(raw) if raw else None)


def read_control_vector(path: Path) -> tuple[dict[int, torch.Tensor], dict[str, Any]]:
    """``({N: direction [n_embd] float32}, {metadata key: value})`` of a llama.cpp control vector,
    validated the way llama.cpp validates it (names, N > 0, F32, 1-D, equal widths)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
    except Exception as exc:  # the reader raises ValueError, struct.error, IndexError... on a bad file
        raise ExportFormatError(f"{path} is not a readable GGUF file: {type(exc).__name__}: {exc}") from exc
    fields: dict[str, Any] = {}
    for key, field in reader.fields.items():
        try:
            fields[key] = field.contents()
        except Exception:  # pragma: no cover - exotic field types we do not need
            continue
    arch = fields.get("general.architecture")
    if arch != ARCH:
        raise ExportFormatError(
            f"{path} is a GGUF file of architecture {arch!r}, not a control vector ({ARCH!r})"
        )
    directions: dict[int, torch.Tensor] = {}
    width = None
    for t in reader.tensors:
        m = _DIRECTION.match(t.name)
        if not m:
            raise ExportFormatError(
                f"{path}: unexpected tensor {t.name!r} (a control vector holds direction.N only)"
            )
        n = int(m.group(1))
        if n == 0:
            raise ExportFormatError(f"{path}: direction.0 is invalid (llama.cpp rejects it)")
        if t.tensor_type != gguf.GGMLQuantizationType.F32:
            raise ExportFormatError(f"{path}: {t.name} is {t.tensor_type.name}, llama.cpp needs F32")
        arr = np.array(t.data, dtype=np.float32, copy=True)
        if arr.ndim != 1:
            raise ExportFormatError(f"{path}: {t.name} is not 1-D (shape {arr.shape})")
        if width is not None and arr.shape[0] != width:
            raise ExportFormatError(f"{path}: {t.name} has {arr.shape[0]} values, the others {width}")
        width = arr.shape[0]
        if n in directions:
            raise ExportFormatError(f"{path}: {t.name} appears twice")
        directions[n] = torch.from_numpy(arr)
    if not directions:
        raise ExportFormatError(f"{path}: the control vector has no direction tensors")
    return directions, fields


def _verify_checksums(path: Path, info: dict[str, Any], directions: dict[int, torch.Tensor]) -> None:
    """Check the tensors against the checksums saesteer wrote into the file (npy and safetensors verify
    theirs the same way). Files from older saesteer versions carry only the manifest's per-component
    checksums: those are checked where a direction holds exactly one component at strength 1."""
    written = info.get("sha256")
    if isinstance(written, dict):
        names = {f"direction.{n}" for n in directions}
        if set(written) != names:
            raise SteeringVectorError(
                f"{path}: the file holds {', '.join(sorted(names))} but its saesteer metadata lists "
                f"{', '.join(sorted(written))}: the file was edited or is corrupt"
            )
        for n, t in directions.items():
            if tensor_sha256(t) != written[f"direction.{n}"]:
                raise SteeringVectorError(
                    f"{path}: direction.{n} does not match the checksum saesteer wrote into the file: the file "
                    "is corrupt (re-export it)"
                )
        return
    if float(info.get("strength", 1.0)) != 1.0:
        return
    by_dir: dict[int, list[dict[str, Any]]] = {}
    for entry in info["manifest"]["components"]:
        by_dir.setdefault(gguf_layer_for_hook(entry["hook_name"]), []).append(entry)
    for n, entries in by_dir.items():
        if n in directions and len(entries) == 1 and entries[0].get("sha256"):
            if tensor_sha256(directions[n]) != entries[0]["sha256"]:
                raise SteeringVectorError(
                    f"{path}: direction.{n} does not match the checksum in its saesteer metadata: the file is "
                    "corrupt (re-export it)"
                )


def _exact_from_manifest(info: dict[str, Any], directions: dict[int, torch.Tensor]) -> SteeringVector | None:
    """The original vector if the file holds exactly its components (no baked strength, no sums)."""
    manifest = info["manifest"]
    if float(info.get("strength", 1.0)) != 1.0:
        return None
    tensors: dict[str, torch.Tensor] = {}
    used: set[int] = set()
    for entry in manifest["components"]:
        n = gguf_layer_for_hook(entry["hook_name"])
        t = directions.get(n)
        if t is None or n in used or tensor_sha256(t) != entry.get("sha256"):
            return None
        used.add(n)
        tensors[entry["tensor"]] = t
    if used != set(directions):
        return None
    return SteeringVector.from_manifest(manifest, tensors)


def _from_directions(
    path: Path,
    directions: dict[int, torch.Tensor],
    fields: dict[str, Any],
    hints: ImportHints,
    info: dict[str, Any] | None,
) -> SteeringVector:
    hint = fields.get(f"{ARCH}.model_hint")
    width = int(next(iter(directions.values())).shape[0])
    manifest = info["manifest"] if info else None
    if manifest is not None:
        model = ModelInfo.from_dict(manifest["model"])
        norms = {gguf_layer_for_hook(c["hook_name"]): c.get("typical_norm") for c in manifest["components"]}
        prov = {
            **manifest.get("provenance", {}),
            "imported_from": {
                "format": "gguf",
                "file": path.name,
                "baked_strength": info.get("strength") if info else None,
            },
        }
        name = hints.name or manifest.get("name", path.stem)
    else:
        model_id = hints.model_id or (str(hint) if hint else "")
        if not model_id:
            raise SteeringVectorError(
                f"{path} does not say which model it is for; pass the model id (--model-id)"
            )
        model = ModelInfo(
            id=model_id, d_model=width, n_layers=hints.n_layers, model_type=str(hint) if hint else None
        )
        norms = {}
        prov = {
            "method": "import",
            "imported_from": {"format": "gguf", "file": path.name, "model_hint": hint},
        }
        name = hints.name or path.stem
    comps = tuple(Component(hook_for_gguf_layer(n), directions[n], norms.get(n)) for n in sorted(directions))
    return SteeringVector(
        components=comps,
        model=model,
        operator="add",
        positions="all",
        scale_mode="raw",
        provenance=prov,
        name=name,
    )
