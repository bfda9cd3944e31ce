"""Residual statistics of the bundled corpus, computed once per model and hook.

The typical residual norm (the unit of every steering strength) and the per-language mean residuals
(DiffMean) depend only on the model's weights, the hook, the bundled corpus and the sample settings.
The package ships, for the default model at the default SAE's hook, the norm
(``saesteer/prebuilt/residual_stats.json``) and the per-language means of the bundled corpus
(``saesteer/prebuilt/mean_residuals.safetensors``: float32, one ``[d_model]`` tensor per language, 31 kB);
``scripts/ship_prebuilt.py`` writes both. The rest is kept in the user cache after its first computation.
A value is used only when the model's weights hash (the shipped GGUF's sha256), the hook, the statistic,
its settings and :data:`STATS_VERSION` all match, and a shipped mean also only when the sha256 of the
very texts it averages matches (:func:`texts_sha256`: a changed corpus computes afresh); other models
always compute.

Entries: ``{"model_hash", "hook", "what", "settings", "value"}``; ``what`` is ``norm`` (a float) or
``mean`` (a list of float64, ``settings["lang"]`` says which language).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saesteer.paths import cache_dir, package_data

if TYPE_CHECKING:
    import torch
    from transformer_lens import HookedTransformer

log = logging.getLogger(__name__)
STATS_VERSION = 1  # bump when the computation of a statistic changes
SHIPPED = ("prebuilt", "residual_stats.json")
SHIPPED_MEANS = ("prebuilt", "mean_residuals.safetensors")
CACHEABLE_KINDS = ("embedded-gguf",)  # weights identified by a file hash


def model_hash(model: HookedTransformer) -> str | None:
    """The weights hash statistics are keyed by, or None for a model whose weights have no reliable hash."""
    from saesteer.models.loading import model_source

    src = model_source(model)
    return src.weights_hash if src.kind in CACHEABLE_KINDS else None


def _matches(entry: Mapping[str, Any], mhash: str, hook: str, what: str, settings: Mapping[str, Any]) -> bool:
    return (entry.get("model_hash") == mhash and entry.get("hook") == hook and entry.get("what") == what
            and entry.get("settings") == {**settings, "stats_version": STATS_VERSION})


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return []
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, list) else []


def _user_file(mhash: str, hook: str) -> Path:
    name = hashlib.sha256(f"{mhash}\0{hook}".encode()).hexdigest()[:24]
    return cache_dir() / "residual_stats" / f"{name}.json"


def lookup(model: HookedTransformer, hook: str, what: str, settings: Mapping[str, Any]) -> Any | None:
    """The stored value, or None (then compute it and :func:`store` it)."""
    mhash = model_hash(model)
    if mhash is None:
        return None
    for path in (package_data(*SHIPPED), _user_file(mhash, hook)):
        for entry in _read(path):
            if _matches(entry, mhash, hook, what, settings):
                log.debug("residual %s %s at %s from %s", what, dict(settings), hook, path)
                return entry["value"]
    return None


def entry(mhash: str, hook: str, what: str, settings: Mapping[str, Any], value: Any) -> dict[str, Any]:
    return {"model_hash": mhash, "hook": hook, "what": what,
            "settings": {**settings, "stats_version": STATS_VERSION}, "value": value}


def store(model: HookedTransformer, hook: str, what: str, settings: Mapping[str, Any], value: Any) -> None:
    """Keep a computed value in the user cache (atomic; a failure to write is only logged)."""
    mhash = model_hash(model)
    if mhash is None:
        return
    path = _user_file(mhash, hook)
    entries = [e for e in _read(path) if not _matches(e, mhash, hook, what, settings)]
    entries.append(entry(mhash, hook, what, settings, value))
    try:
        write_entries(path, entries)
    except OSError as exc:
        log.warning("could not cache the residual %s at %s: %s", what, hook, exc)


def write_entries(path: Path, entries: list[dict[str, Any]]) -> None:
    """Write ``{"entries": [...]}`` atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"entries": entries}, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- the shipped per-language means (safetensors: tensors "mean.<lang>", the identity in the metadata) ------------


def texts_sha256(texts: Sequence[str]) -> str:
    """The identity of the texts a mean averages (their order and content)."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    return h.hexdigest()


def _common(settings: Mapping[str, Any]) -> str:
    """The settings every shipped mean shares (all but the language), as the metadata stores them."""
    return json.dumps({**{k: v for k, v in settings.items() if k != "lang"}, "stats_version": STATS_VERSION},
                      sort_keys=True)


def shipped_mean(
    mhash: str | None, hook: str, settings: Mapping[str, Any], texts_sha: str, path: Path | None = None
) -> torch.Tensor | None:
    """The shipped mean (float64 of the stored float32) for exactly these inputs, else None: the model's
    weights hash, the hook, the settings (language, corpus, split, n_texts, batch size, max length, stats
    version) and the sha256 of the averaged texts must all be the ones it was computed from."""
    import torch
    from safetensors import safe_open

    path = path or package_data(*SHIPPED_MEANS)
    if mhash is None or not path.is_file():
        return None
    lang = settings.get("lang")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            name = f"mean.{lang}"
            if (meta.get("model_hash") != mhash or meta.get("hook") != hook or meta.get("settings") != _common(settings)
                    or meta.get(f"texts_sha256.{lang}") != texts_sha or name not in fh.keys()):
                return None
            return fh.get_tensor(name).to(torch.float64)
    except (OSError, ValueError, RuntimeError) as exc:
        log.warning("cannot read the shipped means %s: %s", path, exc)
        return None


def write_shipped_means(
    path: Path, mhash: str, hook: str, settings: Mapping[str, Any], means: Mapping[str, torch.Tensor],
    texts_sha: Mapping[str, str],
) -> None:
    """Write the shipped means (float32) with their identity (``settings``: those of any one language)."""
    import torch
    from safetensors.torch import save_file

    meta = {"model_hash": mhash, "hook": hook, "settings": _common(settings),
            **{f"texts_sha256.{lang}": sha for lang, sha in texts_sha.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({f"mean.{lang}": m.detach().to("cpu", dtype=torch.float32).contiguous()
               for lang, m in means.items()}, str(path), metadata=meta)
