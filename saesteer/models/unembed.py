"""The logit lens of residual-stream directions: what a direction written at some layer says about the
next token, read through the model's final norm gain and unembedding.

``lens(v) = (v * g) @ W_U`` where ``g`` is the final norm's elementwise gain (``ln_final.w``; models
loaded with ``fold_ln=True`` have it folded into ``W_U`` already and no ``w``). The norm's division by
the residual's scale is left out: it rescales all logits of one direction alike, so the ranking of
tokens does not depend on it. Without ``g`` a model whose gain varies a lot across dimensions (Gemma 3's
goes from ~5 to ~280) shows the unembedding's large-norm junk tokens instead of the direction's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformer_lens import HookedTransformer


def final_norm_gain(model: HookedTransformer) -> torch.Tensor | None:
    """``ln_final.w: [d_model]`` when the model applies an unfolded final-norm gain, else ``None``."""
    import torch

    w = getattr(getattr(model, "ln_final", None), "w", None)
    return w.detach() if isinstance(w, torch.Tensor) else None


def logit_lens_chunks(
    model: HookedTransformer, rows: torch.Tensor, *, chunk: int, scale: float = 1.0
) -> Iterator[tuple[int, torch.Tensor]]:
    """``(start, scale * (rows[start:start+chunk] * g) @ W_U)`` for ``rows: [n, d_model]``; each logits block is
    ``[<=chunk, d_vocab]`` on the model's device and dtype, so memory stays at ``chunk * d_vocab``."""
    import torch

    w_u = model.W_U.detach()
    gain = final_norm_gain(model)
    step = max(1, int(chunk))
    with torch.inference_mode():
        for start in range(0, int(rows.shape[0]), step):
            r = rows[start : start + step].detach().to(device=w_u.device, dtype=w_u.dtype)
            if gain is not None:
                r = r * gain.to(device=w_u.device, dtype=w_u.dtype)
            yield start, (scale * r) @ w_u if scale != 1.0 else r @ w_u
