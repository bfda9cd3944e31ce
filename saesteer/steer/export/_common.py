"""What the export formats share: import hints, the additive-format check, atomic writes and the manifest
sidecar. Format modules import from here (never from the package ``__init__``, which imports them)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saesteer.errors import ExportFormatError
from saesteer.paths import check_output_path

if TYPE_CHECKING:
    from saesteer.steer.vector import SteeringVector

__all__ = [
    "SIDECAR_SUFFIX",
    "ImportHints",
    "atomic_target",
    "check_exportable",
    "check_output_path",
    "read_sidecar",
    "sidecar_path",
    "write_json",
]

SIDECAR_SUFFIX = ".saesteer.json"


@dataclass(frozen=True)
class ImportHints:
    """What a foreign file may not say: filled in by the user (CLI options) when needed."""

    model_id: str | None = None
    n_layers: int | None = None
    hook_name: str | None = None
    name: str | None = None


def check_exportable(vector: SteeringVector, fmt: str) -> None:
    """Additive foreign formats carry neither an operator nor a position policy."""
    if vector.operator != "add" or vector.positions != "all":
        raise ExportFormatError(
            f"{fmt} vectors are added to every position: only operator 'add' with positions 'all' can be exported "
            f"(this vector has operator={vector.operator!r}, positions={vector.positions!r})"
        )


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the body succeeds."""
    check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")  # created by the writer (umask applies)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (UTF-8, indented)."""
    with atomic_target(path) as tmp:
        tmp.write_text(
            json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
        )


def sidecar_path(path: Path) -> Path:
    """``v.npy`` -> ``v.npy.saesteer.json``: the manifest kept next to a format that cannot hold it."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> dict[str, Any] | None:
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportFormatError(f"the manifest sidecar {side} is unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ExportFormatError(f"the manifest sidecar {side} is not a JSON object")
    return data
