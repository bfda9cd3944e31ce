"""Run a model on token batches: pad them, capture the residual at a hook, score tokens (cross-entropy).

One home for what the index build, the residual statistics of steering, generation scoring, the ablation
matrix and SAE training all do:

- :func:`pad_batch`: sequences of token ids -> ``ids, mask: [batch, width]`` (right padding by default: with
  causal attention no real token ever sees a pad; left padding for generation prompts);
- :func:`capture_residual`: the activation at one hook, running at most the blocks it needs and stopping
  as soon as the hook fires; :func:`run_to_hooks`: the activations at several hooks of a padded batch;
- :func:`token_nll`: the next-token negative log-likelihood of every position (``logits`` of position ``t``
  score token ``t + 1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch

from saesteer.errors import ModelLoadError

if TYPE_CHECKING:
    import numpy as np
    from transformer_lens import HookedTransformer

    from saesteer.models.hooks import HookSpec


def pad_batch(
    seqs: Sequence[Sequence[int] | torch.Tensor | np.ndarray],
    pad_id: int,
    *,
    width: int | None = None,
    side: Literal["right", "left"] = "right",
    mask_dtype: torch.dtype = torch.long,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, mask)``: the sequences in one ``[batch, width]`` long tensor filled with ``pad_id``, and a mask
    that is 1 on real tokens. ``width`` defaults to the longest sequence."""
    lens = [len(s) for s in seqs]
    w = max(lens, default=0) if width is None else int(width)
    ids = torch.full((len(seqs), w), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(seqs), w), dtype=mask_dtype)
    for i, (s, n) in enumerate(zip(seqs, lens, strict=True)):
        cols = slice(0, n) if side == "right" else slice(w - n, w)
        ids[i, cols] = torch.as_tensor(s, dtype=torch.long) if n else ids[i, cols]
        mask[i, cols] = 1
    return ids, mask


class _Captured(Exception):
    """Raised by the capture hook to stop the forward pass as soon as the hook has fired."""


def capture_residual(model: HookedTransformer, tokens: torch.Tensor, spec: HookSpec) -> torch.Tensor:
    """The activation at ``spec.name`` for ``tokens: [batch, pos]`` -> ``[batch, pos, d_model]``.

    Runs at most ``spec.stop_at_layer`` blocks and stops right after the hook fires.
    """
    store: dict[str, torch.Tensor] = {}

    def hook(act: torch.Tensor, hook: Any) -> None:
        store["x"] = act
        raise _Captured

    try:
        model.run_with_hooks(
            tokens, return_type=None, stop_at_layer=spec.stop_at_layer, fwd_hooks=[(spec.name, hook)]
        )
    except _Captured:
        pass
    if "x" not in store:  # pragma: no cover - validate_hook guarantees the hook exists
        raise ModelLoadError(f"hook {spec.name} did not fire")
    return store["x"]


def run_to_hooks(
    model: HookedTransformer,
    tokens: torch.Tensor,
    mask: torch.Tensor | None,
    hook_names: Sequence[str],
    stop_at_layer: int | None,
) -> dict[str, torch.Tensor]:
    """``{hook: activation [batch, pos, d_model]}`` of a batch (``mask``: 1 on real tokens of a padded batch,
    None: no padding), running the blocks before ``stop_at_layer`` (None: all)."""
    names = set(hook_names)
    with torch.no_grad():
        _, cache = model.run_with_cache(
            tokens, attention_mask=mask, names_filter=lambda n: n in names, stop_at_layer=stop_at_layer
        )
    return {h: cache[h] for h in hook_names}


def token_nll(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Next-token negative log-likelihood, float32: ``[batch, pos - 1]``, entry ``t`` scores ``ids[:, t + 1]``
    under ``logits[:, t]`` (``logits: [batch, pos, vocab]``)."""
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return -logp.gather(-1, ids[:, 1:].to(logp.device)[..., None])[..., 0]
