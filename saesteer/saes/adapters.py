"""Adapters that read SAEs saved by other libraries into sae-lens ``SAE`` objects.

Each adapter satisfies :class:`SaeFormatAdapter`: ``detect`` looks at a directory, ``load`` returns an
sae-lens SAE whose ``W_dec`` is ``[d_sae, d_in]`` (the convention every saesteer module uses).

- ``saelens``: ``cfg.json`` + ``sae_weights.safetensors`` (sae-lens' own disk format).
- ``sparsify``: ``cfg.json`` + ``sae.safetensors`` with ``encoder.weight [d_sae, d_in]``,
  ``encoder.bias``, ``W_dec [d_sae, d_in]``, ``b_dec`` and ``k`` in the config (TopK).
- ``dictionary_learning``: ``ae.pt`` (+ ``config.json``) with ``encoder.weight [d_sae, d_in]``,
  ``encoder.bias``, ``decoder.weight [d_in, d_sae]`` (transposed!) and ``bias [d_in]``; a ``k``
  buffer marks the TopK variant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from saesteer.errors import SaeLoadError

if TYPE_CHECKING:
    import torch
    from sae_lens import SAE


@runtime_checkable
class SaeFormatAdapter(Protocol):
    """Reads one on-disk SAE layout."""

    name: str

    def detect(self, path: Path) -> bool:
        """True if ``path`` holds an SAE in this layout."""
        ...

    def load(self, path: Path, *, device: str = "cpu", hook_name: str | None = None) -> SAE:
        """Load it as an sae-lens SAE (``W_dec``: ``[d_sae, d_in]``)."""
        ...


def _build(
    kind: str, w_enc: torch.Tensor, b_enc: torch.Tensor, w_dec: torch.Tensor, b_dec: torch.Tensor,
    *, hook_name: str | None, k: int | None, apply_b_dec_to_input: bool, device: str, extra: dict[str, str],
) -> SAE:
    """An sae-lens SAE from plain tensors: ``w_enc [d_in, d_sae]``, ``w_dec [d_sae, d_in]``."""
    import torch
    from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    d_in, d_sae = int(w_enc.shape[0]), int(w_enc.shape[1])
    if tuple(w_dec.shape) != (d_sae, d_in) or tuple(b_enc.shape) != (d_sae,) or tuple(b_dec.shape) != (d_in,):
        raise SaeLoadError(
            f"{kind}: inconsistent shapes W_enc {tuple(w_enc.shape)}, W_dec {tuple(w_dec.shape)}, "
            f"b_enc {tuple(b_enc.shape)}, b_dec {tuple(b_dec.shape)}"
        )
    meta = SAEMetadata(hook_name=hook_name or "", **extra)
    sae: SAE
    if k is not None:
        sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=int(k), device=device, metadata=meta,
                                    apply_b_dec_to_input=apply_b_dec_to_input))
    else:
        sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, device=device, metadata=meta,
                                            apply_b_dec_to_input=apply_b_dec_to_input))
    with torch.no_grad():
        sae.W_enc.copy_(w_enc)
        sae.b_enc.copy_(b_enc)
        sae.W_dec.copy_(w_dec)
        sae.b_dec.copy_(b_dec)
    return sae.eval()


class SaeLensAdapter:
    name = "saelens"

    def detect(self, path: Path) -> bool:
        return (path / "cfg.json").is_file() and (path / "sae_weights.safetensors").is_file()

    def load(self, path: Path, *, device: str = "cpu", hook_name: str | None = None) -> SAE:
        from sae_lens import SAE

        try:
            sae = SAE.load_from_disk(str(path), device=device)
        except Exception as exc:  # sae-lens raises many types for a bad directory
            raise SaeLoadError(f"cannot read the sae-lens SAE in {path}: {exc}") from exc
        if hook_name:
            sae.cfg.metadata.hook_name = hook_name
        return sae.eval()


class SparsifyAdapter:
    name = "sparsify"

    def detect(self, path: Path) -> bool:
        return (path / "cfg.json").is_file() and (path / "sae.safetensors").is_file()

    def load(self, path: Path, *, device: str = "cpu", hook_name: str | None = None) -> SAE:
        from safetensors.torch import load_file

        cfg = json.loads((path / "cfg.json").read_text())
        sd = load_file(str(path / "sae.safetensors"), device=device)
        try:
            w_enc, b_enc, w_dec, b_dec = sd["encoder.weight"].T, sd["encoder.bias"], sd["W_dec"], sd["b_dec"]
        except KeyError as exc:
            raise SaeLoadError(f"{path}/sae.safetensors is not a sparsify SAE: missing tensor {exc}") from exc
        return _build("sparsify", w_enc, b_enc, w_dec, b_dec, hook_name=hook_name or path.name,
                      k=int(cfg.get("k", 32)), apply_b_dec_to_input=False, device=device,
                      extra={"model_name": str(cfg.get("model", ""))})


class DictionaryLearningAdapter:
    name = "dictionary_learning"

    def detect(self, path: Path) -> bool:
        return (path / "ae.pt").is_file()

    def load(self, path: Path, *, device: str = "cpu", hook_name: str | None = None) -> SAE:
        import torch

        sd = torch.load(str(path / "ae.pt"), map_location=device, weights_only=True)
        cfg = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
        try:
            w_enc, b_enc = sd["encoder.weight"].T, sd["encoder.bias"]
            w_dec = sd["decoder.weight"].T  # dictionary_learning stores the decoder as [d_in, d_sae]
            b_dec = sd["bias"] if "bias" in sd else sd["b_dec"]
        except KeyError as exc:
            raise SaeLoadError(f"{path}/ae.pt is not a dictionary_learning SAE: missing tensor {exc}") from exc
        k = int(sd["k"]) if "k" in sd else None
        trainer = cfg.get("trainer", {})
        hook = hook_name
        if hook is None and "layer" in trainer:
            hook = f"blocks.{int(trainer['layer'])}.hook_resid_post"
        return _build("dictionary_learning", w_enc, b_enc, w_dec, b_dec, hook_name=hook, k=k,
                      apply_b_dec_to_input=True, device=device,
                      extra={"model_name": str(trainer.get("lm_name", ""))})


ADAPTERS: tuple[SaeFormatAdapter, ...] = (SaeLensAdapter(), SparsifyAdapter(), DictionaryLearningAdapter())


def adapter_for(path: Path, fmt: str | None = None) -> SaeFormatAdapter:
    """The adapter named ``fmt``, or the first that recognises ``path``."""
    if fmt is not None:
        for a in ADAPTERS:
            if a.name == fmt:
                return a
        raise SaeLoadError(f"unknown SAE format {fmt!r}; known: {', '.join(a.name for a in ADAPTERS)}")
    for a in ADAPTERS:
        if a.detect(path):
            return a
    raise SaeLoadError(
        f"{path} holds no SAE saesteer can read: expected cfg.json + sae_weights.safetensors (sae-lens), "
        "cfg.json + sae.safetensors (sparsify) or ae.pt (dictionary_learning)"
    )
