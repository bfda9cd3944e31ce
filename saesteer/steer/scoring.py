"""Score continuations: the NLL of each continuation given its prompt (fluency), in length-sorted batches.

- :func:`batched_nll`: any forward that returns logits ``[batch, pos, vocab]`` (transformer-lens, or a
  transformers model's full forward), right-padded batches of similar lengths;
- :class:`HFScorer`: a transformers causal LM: the decoder stack over the batch, then the unembedding (262k
  tokens on Gemma) only at the positions that predict a continuation token, not at prompt or pad positions.
  It is checked once against the model's own logits; a model that post-processes its logits in a way the
  scorer does not reproduce is scored with the full forward instead.

Both return, per continuation, ``(sum of NLL, n tokens)`` in the given order (an empty continuation:
``(0.0, 0)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

from saesteer.models.forward import pad_batch, token_nll

log = logging.getLogger(__name__)
Seqs = Sequence[tuple[list[int], list[int]]]  # (prompt ids, continuation ids)


def length_order(lengths: Sequence[int]) -> list[int]:
    """Indices of ``lengths`` from the shortest to the longest (stable): batches of similar lengths pad less."""
    return sorted(range(len(lengths)), key=lambda i: lengths[i])


def batches(n: int, size: int) -> list[range]:
    """``range``s of at most ``size`` consecutive positions covering ``0 .. n-1``."""
    return [range(i, min(n, i + size)) for i in range(0, n, max(1, size))]


def batched_nll(
    seqs: Seqs,
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    pad: int,
    device: torch.device,
    batch_size: int,
) -> list[tuple[float, int]]:
    """Length-sorted, right-padded batches; the logits at positions ``P-1 .. P+C-2`` score continuation tokens."""
    out: list[tuple[float, int]] = [(0.0, 0)] * len(seqs)
    order = length_order([len(p) + len(c) for p, c in seqs])
    with torch.no_grad():
        for pos in batches(len(order), batch_size):
            rows = [order[j] for j in pos]
            chunk = [seqs[i] for i in rows]
            ids, mask = pad_batch([p + c for p, c in chunk], pad)
            nll = token_nll(forward(ids.to(device), mask.to(device)), ids)  # [batch, width - 1]
            for j, (i, (p, c)) in enumerate(zip(rows, chunk, strict=True)):
                if c:
                    out[i] = (float(nll[j, len(p) - 1 : len(p) + len(c) - 1].double().sum()), len(c))
    return out


class HFScorer:
    """Continuation NLL for a transformers causal LM (see the module docstring); ``fast`` says which path
    it takes (None until its first call)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.fast: bool | None = None

    def _full(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=mask).logits  # type: ignore[no-any-return]

    def __call__(self, seqs: Seqs, *, pad: int, batch_size: int) -> list[tuple[float, int]]:
        if self.fast is None and any(c for _, c in seqs):
            self.fast = self._check(seqs, pad)
        if not self.fast:
            return batched_nll(seqs, self._full, pad=pad, device=self.model.device, batch_size=batch_size)
        out: list[tuple[float, int]] = [(0.0, 0)] * len(seqs)
        order = length_order([len(p) + len(c) for p, c in seqs])
        with torch.no_grad():
            for pos in batches(len(order), batch_size):
                rows = [order[j] for j in pos if seqs[order[j]][1]]
                if rows:
                    for i, v in zip(rows, self._scored([seqs[i] for i in rows], pad), strict=True):
                        out[i] = (float(v.sum()), len(seqs[i][1]))
        return out

    def _scored(self, chunk: Seqs, pad: int) -> list[torch.Tensor]:
        """Per sequence, the float64 NLL of each continuation token: the decoder stack over the padded batch,
        then the unembedding at the scoring positions only (``logits_to_keep`` semantics, per row)."""
        ids, mask = pad_batch([p + c for p, c in chunk], pad)
        dev = self.model.device
        hidden = self.model.base_model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).last_hidden_state
        rows = torch.cat([torch.full((len(c),), i) for i, (_, c) in enumerate(chunk)])
        cols = torch.cat([torch.arange(len(p) - 1, len(p) + len(c) - 1) for p, c in chunk])
        logits = self.model.get_output_embeddings()(hidden[rows.to(dev), cols.to(dev)]).float()
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        targets = torch.cat([torch.as_tensor(c, dtype=torch.long) for _, c in chunk]).to(dev)
        nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none").double().cpu()
        return list(nll.split([len(c) for _, c in chunk]))

    def _check(self, seqs: Seqs, pad: int) -> bool:
        """Whether :meth:`_scored` reproduces the model's own logits (one small batch, once)."""
        chunk = [s for s in seqs if s[1]][:2]
        try:
            with torch.no_grad():
                fast = self._scored(chunk, pad)
                ref = batched_nll(chunk, self._full, pad=pad, device=self.model.device, batch_size=len(chunk))
        except (AttributeError, TypeError, RuntimeError) as exc:
            log.debug("continuation_nll: the unembedding-at-scored-positions path does not apply: %s", exc)
            return False
        ok = all(abs(float(f.sum()) - r) <= 1e-4 * max(1.0, abs(r)) for f, (r, _) in zip(fast, ref, strict=True))
        if not ok:
            log.debug("continuation_nll: %s post-processes its logits; scoring with the full forward",
                      type(self.model).__name__)
        return ok
