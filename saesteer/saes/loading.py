"""Load an SAE and check it against a model.

``load_sae(spec)`` accepts:

- ``"default"``: the SAE trained by this project for Gemma 3 270M and shipped in the package;
- ``"tiny"``: a random SAE for the tiny test model (``--model tiny-random``);
- a local directory in any layout :mod:`saesteer.saes.adapters` knows;
- ``"<release>:<sae_id>"`` (or ``release=``/``sae_id=``): an entry of the sae-lens registry, e.g.
  ``gemma-scope-2-270m-pt-res:<sae_id>`` (needs the hub or the local HF cache).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from saesteer.errors import DimensionMismatchError, SaeLoadError
from saesteer.models.hooks import HookSpec, parse_hook, validate_hook
from saesteer.paths import package_data
from saesteer.saes.adapters import adapter_for

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

DEFAULT_SAE_DIR = "default_sae"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SaeSource:
    """Where an SAE comes from; recorded as provenance in every index build and steering vector."""

    id: str  # "default", "tiny", a path, or "release:sae_id"
    kind: str  # "default" | "tiny" | "local" | "registry"
    format: str  # adapter name, or "registry"
    weights_hash: str


def default_sae_path() -> Path:
    """The directory of the shipped default SAE (``saesteer/default_sae``)."""
    return package_data(DEFAULT_SAE_DIR)


def load_sae(
    spec: str | os.PathLike[str] = "default",
    *,
    sae_id: str | None = None,
    model: HookedTransformer | None = None,
    hook_name: str | None = None,
    device: str = "cpu",
    fmt: str | None = None,
    allow_other_hook: bool = False,
) -> SAE:
    """Load an SAE (see the module docstring for ``spec``). If ``model`` is given, check compatibility.

    ``hook_name`` different from the hook the SAE was trained at (its config says) is refused unless
    ``allow_other_hook`` (then it is used there, with a warning): its features mean nothing elsewhere.
    The returned SAE carries ``sae.saesteer_source`` (a :class:`SaeSource`).
    """
    spec_s = str(spec)
    sae: SAE
    if spec_s == "tiny" or spec_s.startswith("tiny:"):
        from saesteer.testing.tiny import TINY_D_SAE, TINY_HOOK, make_tiny_sae

        seed = int(spec_s.split(":", 1)[1]) if ":" in spec_s else 0
        d_in = model.cfg.d_model if model is not None else 64
        _check_own_hook(spec_s, TINY_HOOK, hook_name, allow_other_hook, model)
        sae = make_tiny_sae(d_in=d_in, d_sae=TINY_D_SAE, hook_name=hook_name or TINY_HOOK, seed=seed)
        source = SaeSource(spec_s, "tiny", "generated", f"random-init:{spec_s}:{d_in}")
    elif sae_id is not None or (":" in spec_s and not Path(spec_s).exists()):
        release, _, sid = spec_s.partition(":")
        sid = sae_id or sid
        sae = _load_registry(release, sid, device=device)
        if hook_name:
            _check_own_hook(f"{release}:{sid}", getattr(sae.cfg.metadata, "hook_name", None), hook_name, allow_other_hook, model)
            sae.cfg.metadata.hook_name = hook_name
        source = SaeSource(f"{release}:{sid}", "registry", "registry", f"registry:{release}:{sid}")
    else:
        path = default_sae_path() if spec_s == "default" else Path(spec_s).expanduser()
        if spec_s == "default" and not path.is_dir():
            raise SaeLoadError(
                f"the default SAE is not shipped in this install ({path} is missing); train it with "
                "`saesteer train-sae` or pass --sae <directory | release:sae_id>"
            )
        if not path.is_dir():
            raise SaeLoadError(
                f"SAE {spec_s!r} not found: not 'default', 'tiny', an existing directory, or 'release:sae_id'"
            )
        adapter = adapter_for(path, fmt)
        sae = adapter.load(path, device=device)
        if hook_name:
            _check_own_hook(spec_s, getattr(sae.cfg.metadata, "hook_name", None), hook_name, allow_other_hook, model)
            sae.cfg.metadata.hook_name = hook_name
        kind = "default" if spec_s == "default" else "local"
        source = SaeSource("default" if kind == "default" else str(path.resolve()), kind, adapter.name, _hash_dir(path))
    sae.saesteer_source = source  # type: ignore[assignment]
    if model is not None:
        check_compatible(model, sae, hook_name)
    return sae


def _check_own_hook(
    sae_id: str, own: str | None, hook_name: str | None, allow: bool, model: HookedTransformer | None = None
) -> None:
    """Refuse ``hook_name`` if it is not the SAE's own hook (unless ``allow``: then warn). An SAE whose
    config names no usable hook (e.g. sparsify's ``layers.6`` directories) can be placed anywhere.
    With ``model``, a hook the model does not have is reported first (with its "did you mean")."""
    from saesteer.errors import HookError

    if not hook_name or not own or own == hook_name:
        return
    if model is not None:
        validate_hook(model, hook_name)
    try:
        parse_hook(own)
    except HookError:
        return  # the SAE does not name a transformer-lens hook: the user's --hook is the only information
    if not allow:
        raise HookError(
            f"SAE {sae_id!r} was trained at {own}, not {hook_name}: its features mean nothing at another hook. "
            f"Drop --hook to use {own}, or pass --allow-other-hook (allow_other_hook=True) to use it at {hook_name} anyway"
        )
    log.warning("using SAE %r at %s although it was trained at %s (--allow-other-hook)", sae_id, hook_name, own)


def _load_registry(release: str, sae_id: str, *, device: str) -> SAE:
    from sae_lens import SAE
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    if release not in directory:
        import difflib

        close = difflib.get_close_matches(release, list(directory), n=3, cutoff=0.5)
        hint = f" Closest releases: {', '.join(close)}." if close else ""
        raise SaeLoadError(f"unknown sae-lens release {release!r}.{hint}")
    ids = directory[release].saes_map
    if sae_id not in ids:
        sample = ", ".join(list(ids)[:5])
        raise SaeLoadError(f"release {release!r} has no SAE {sae_id!r} ({len(ids)} available, e.g. {sample})")
    try:
        return SAE.from_pretrained(release, sae_id, device=device).eval()
    except OSError as exc:
        raise SaeLoadError(
            f"SAE {release}:{sae_id} is not in the local Hugging Face cache and the hub is unreachable "
            f"({type(exc).__name__}). Download it on a machine with network access (it lives in "
            f"{directory[release].repo_id}) and copy ~/.cache/huggingface here, or pass a local directory."
        ) from exc


def sae_source(sae: SAE) -> SaeSource:
    """The :class:`SaeSource` an SAE was loaded from (a best guess for SAEs built elsewhere)."""
    src = getattr(sae, "saesteer_source", None)
    if isinstance(src, SaeSource):
        return src
    return SaeSource("external", "external", "object", _hash_tensors(sae))


def sae_hook_name(sae: SAE, override: str | None = None) -> str:
    """The hook an SAE reads (``override`` wins); errors if neither is known."""
    hook = override or getattr(sae.cfg.metadata, "hook_name", None)
    if not hook:
        raise SaeLoadError("the SAE does not say which hook it reads; pass hook_name= / --hook")
    return str(hook)


def check_compatible(
    model: HookedTransformer, sae: SAE, hook_name: str | None = None, *, allow_other_hook: bool = False
) -> HookSpec:
    """Check that the SAE's hook exists on the model and its ``d_in`` equals the model's width there.
    ``hook_name`` other than the SAE's own hook needs ``allow_other_hook`` (see :func:`load_sae`)."""
    _check_own_hook(
        sae_source(sae).id, getattr(sae.cfg.metadata, "hook_name", None), hook_name, allow_other_hook, model
    )
    hook = sae_hook_name(sae, hook_name)
    spec = validate_hook(model, hook)
    if int(sae.cfg.d_in) != int(model.cfg.d_model):
        raise DimensionMismatchError(
            f"SAE d_in={sae.cfg.d_in} but model {model.cfg.model_name!r} has width d_model={model.cfg.d_model} at {hook}"
        )
    return spec


def _hash_dir(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.iterdir() if p.is_file()):
        h.update(f.name.encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _hash_tensors(sae: SAE) -> str:
    h = hashlib.sha256()
    for name, t in sorted(sae.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def describe(sae: SAE) -> dict[str, object]:
    """A JSON-able summary used by ``saesteer info``."""
    src = sae_source(sae)
    return {
        "id": src.id, "kind": src.kind, "format": src.format, "architecture": sae.cfg.architecture(),
        "d_in": int(sae.cfg.d_in), "d_sae": int(sae.cfg.d_sae), "hook": sae.cfg.metadata.hook_name,
        "hash": src.weights_hash[:16], "cfg": json.loads(json.dumps(sae.cfg.to_dict(), default=str)),
    }
