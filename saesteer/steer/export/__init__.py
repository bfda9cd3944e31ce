"""Export and import steering vectors. One module per format, each a :class:`VectorFormat`.

==============  =====================================================  ==================================
format          file                                                   manifest
==============  =====================================================  ==================================
``native``      ``v.safetensors``: one float32 tensor per hook          inside (safetensors metadata)
``gguf``        llama.cpp control vector, ``direction.N`` tensors        inside (GGUF metadata string)
``neuronpedia`` Neuronpedia's vector JSON (``vector/new`` payload)       ``<file>.saesteer.json`` sidecar
``npy``         ``[d_model]`` or ``[n_hooks, d_model]`` float32 array   ``<file>.saesteer.json`` sidecar
``lm-eval``     lm-evaluation-harness ``steered`` model file (``.pt``)  ``<file>.saesteer.json`` sidecar
==============  =====================================================  ==================================

With its manifest, every round trip is bit-exact. Without it (a foreign file), import needs hints
(:class:`ImportHints`: model id, hook) where the format does not say. repeng and steering-vectors
objects live in :mod:`saesteer.steer.export.interop` (they are Python objects, not files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from saesteer.errors import ExportFormatError
from saesteer.steer.export._common import ImportHints
from saesteer.steer.vector import SteeringVector


@runtime_checkable
class VectorFormat(Protocol):
    """One file format. ``write`` returns the files it wrote; both sides raise clear errors."""

    name: str
    suffixes: tuple[str, ...]

    def detect(self, path: Path) -> bool:
        """True if ``path`` looks like this format (by content, not only by name)."""
        ...

    def write(self, vector: SteeringVector, path: Path, *, strength: float | None = None) -> list[Path]:
        """Write ``vector``; ``strength`` is the default strength the target tool should use."""
        ...

    def read(self, path: Path, hints: ImportHints = ImportHints()) -> SteeringVector:
        """Read a file of this format (with its manifest if there is one)."""
        ...


def formats() -> dict[str, VectorFormat]:
    """The registered formats by name."""
    from saesteer.steer.export.llamacpp import GgufFormat
    from saesteer.steer.export.lmeval import LmEvalFormat
    from saesteer.steer.export.native import NativeFormat
    from saesteer.steer.export.neuronpedia import NeuronpediaFormat
    from saesteer.steer.export.npy import NpyFormat

    fmts: list[VectorFormat] = [NativeFormat(), GgufFormat(), NeuronpediaFormat(), NpyFormat(), LmEvalFormat()]
    return {f.name: f for f in fmts}


def get_format(name: str) -> VectorFormat:
    fmts = formats()
    if name not in fmts:
        raise ExportFormatError(f"unknown format {name!r}; use one of {', '.join(fmts)}")
    return fmts[name]


def export_vector(
    vector: SteeringVector, path: str | Path, fmt: str = "native", *, strength: float | None = None
) -> list[Path]:
    """Write ``vector`` to ``path`` in format ``fmt``; returns the files written."""
    from saesteer.steer.export._common import check_output_path
    from saesteer.steer.vector import check_strength

    f = get_format(fmt)
    if strength is not None:
        strength = check_strength(strength, vector, what="--strength")
    check_output_path(Path(path))
    return f.write(vector, Path(path), strength=strength)


def detect_format(path: str | Path) -> str:
    """The name of the format ``path`` is in (by content), or a clear error."""
    p = Path(path)
    if not p.is_file():
        raise ExportFormatError(f"no such file: {p}")
    for name, f in formats().items():
        if f.detect(p):
            return name
    raise ExportFormatError(
        f"{p} is not a steering vector saesteer can read (not native safetensors, llama.cpp GGUF, "
        "Neuronpedia JSON, .npy or an lm-eval .pt)"
    )


def import_vector(
    path: str | Path, fmt: str | None = None, hints: ImportHints = ImportHints()
) -> SteeringVector:
    """Read a steering vector from ``path`` (format detected from the content unless ``fmt`` is given)."""
    p = Path(path)
    if not p.is_file():
        raise ExportFormatError(f"no such file: {p}")
    return get_format(fmt or detect_format(p)).read(p, hints)


def load_vector(path: str | Path) -> SteeringVector:
    """Read a native ``.safetensors`` steering vector."""
    return import_vector(path, "native")


def save_vector(vector: SteeringVector, path: str | Path) -> Path:
    """Write a native ``.safetensors`` steering vector (atomically)."""
    return export_vector(vector, path, "native")[0]


__all__ = [
    "ImportHints",
    "VectorFormat",
    "detect_format",
    "export_vector",
    "formats",
    "get_format",
    "import_vector",
    "load_vector",
    "save_vector",
]
