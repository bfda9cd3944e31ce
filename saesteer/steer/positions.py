"""Which positions of a forward call a position policy selects, with the KV cache and left padding.

A :class:`PositionTracker` watches every forward call of the model (a forward pre-hook on the
transformer-lens model, or on the transformers decoder stack) and records:

- ``past_len``: positions already in the KV cache (0 for a prefill or a call without cache);
- ``cur_len``: positions in this call (the whole left-padded prompt in the prefill, 1 per decode step);
- ``valid``: ``[batch, cur_len]`` bool, False at padding (from the attention mask);
- ``prompt_len``: the padded prompt length, set by the call that starts a sequence (``past_len == 0``)
  unless :attr:`PositionTracker.prompt_len_override` is set.

A position at absolute index ``past_len + i`` is *generated* if that index is ``>= prompt_len``,
else *prompt*. Policies: ``all`` = every non-pad position; ``prompt`` = non-pad prompt positions
(the prefill only); ``generated`` = decode-step positions only. The first generated token is
predicted from the last prompt position, so ``generated`` steering starts influencing the text from
the second generated token on. Pads are never touched.

Without a KV cache every call starts at ``past_len == 0``; set ``prompt_len_override`` to the prompt
length to use ``prompt``/``generated`` there. A call whose shape does not match what the tracker saw
(e.g. a direct ``model.forward`` that bypasses hooks) is treated as a fresh, unpadded prompt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch

from saesteer.steer.vector import PositionPolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """A policy's selection for one call: ``all`` positions, ``none``, or ``some`` (``mask: [batch, pos]``)."""

    kind: Literal["all", "none", "some"]
    mask: torch.Tensor | None = None


ALL = Selection("all")
NONE = Selection("none")


class PositionTracker:
    """Follows one model's forward calls; see the module docstring."""

    def __init__(self) -> None:
        self.past_len = 0
        self.cur_len: int | None = None
        self.batch: int | None = None
        self.valid: torch.Tensor | None = None
        self.prompt_len: int | None = None
        self.prompt_len_override: int | None = None
        self.calls = 0
        self._mask: torch.Tensor | None = None
        self._cache: dict[tuple[str, int, int], Selection] = {}

    def begin_call(
        self, *, batch: int | None, cur_len: int | None, past_len: int, attention_mask: torch.Tensor | None
    ) -> None:
        """Record a forward call. ``attention_mask``: ``[batch, past_len + cur_len]`` or ``[batch, cur_len]``."""
        self.calls += 1
        self._cache.clear()
        self.batch, self.cur_len, self.past_len = batch, cur_len, int(past_len)
        if self.past_len == 0:
            self.prompt_len = cur_len
        self.valid = None
        self._mask = None
        if attention_mask is None or cur_len is None or not isinstance(attention_mask, torch.Tensor):
            return
        if attention_mask.ndim != 2:
            log.debug(
                "attention mask of shape %s is not 2-D; treating every position as non-pad",
                tuple(attention_mask.shape),
            )
            return
        width = attention_mask.shape[1]
        if width == self.past_len + cur_len:
            self._mask = attention_mask[:, self.past_len :] if self.past_len else attention_mask
        elif width == cur_len:
            self._mask = attention_mask
        else:
            log.debug(
                "attention mask width %d fits neither %d nor %d", width, cur_len, self.past_len + cur_len
            )

    def _valid(self) -> torch.Tensor | None:
        """``[batch, cur_len]`` bool non-pad positions of the current call (None: all), computed once."""
        if self._mask is not None:
            mask, self._mask = self._mask, None
            self.valid = None if bool(mask.all()) else mask.bool()
        return self.valid

    def select(self, policy: PositionPolicy, batch: int, pos: int, device: torch.device) -> Selection:
        """The positions ``policy`` selects in a residual of shape ``[batch, pos, d]`` of the current call."""
        key = (policy, batch, pos)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        sel = self._compute(policy, batch, pos, device)
        self._cache[key] = sel
        return sel

    def _compute(self, policy: PositionPolicy, batch: int, pos: int, device: torch.device) -> Selection:
        if self.cur_len == pos and self.batch in (None, batch):
            past, valid, prompt_len = self.past_len, self._valid(), self.prompt_len
        else:  # a call the tracker did not see: a fresh, unpadded prompt
            past, valid, prompt_len = 0, None, pos
        if self.prompt_len_override is not None:
            prompt_len = self.prompt_len_override
        if prompt_len is None:  # attached mid-sequence: what is cached is the prompt
            prompt_len = past if past > 0 else pos
        n_prompt = max(0, min(pos, prompt_len - past))  # positions of this call that belong to the prompt
        if policy == "all":
            return ALL if valid is None else Selection("some", valid.to(device))
        if policy == "prompt":
            if n_prompt == 0:
                return NONE
            if n_prompt == pos:
                return ALL if valid is None else Selection("some", valid.to(device))
        elif policy == "generated":
            if n_prompt == pos:
                return NONE
            if n_prompt == 0:
                return ALL if valid is None else Selection("some", valid.to(device))
        else:  # pragma: no cover - validated upstream
            raise ValueError(policy)
        is_prompt = torch.arange(pos, device=device) < n_prompt
        part = is_prompt if policy == "prompt" else ~is_prompt
        mask = part.unsqueeze(0).expand(batch, pos)
        if valid is not None:
            mask = mask & valid.to(device)
        return Selection("some", mask)
