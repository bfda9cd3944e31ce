"""File helpers shared by the export formats: atomic writes and the manifest sidecar."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from saesteer.paths import check_output_path

__all__ = ["SIDECAR_SUFFIX", "atomic_target", "check_output_path", "read_sidecar", "sidecar_path", "write_json"]

SIDECAR_SUFFIX = ".saesteer.json"


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
    from saesteer.errors import ExportFormatError

    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportFormatError(f"the manifest sidecar {side} is unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ExportFormatError(f"the manifest sidecar {side} is not a JSON object")
    return data
