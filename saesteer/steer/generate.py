"""Batched generation with and without steering, on two backends, and the side-by-side view.

- :class:`HFBackend`: a transformers causal LM (``load_hf_model``), left padding, the KV cache and
  ``model.generate``: the fast path (about 8 tok/s for Gemma 3 270M on 2 CPU cores).
- :class:`TLBackend`: a transformer-lens model with saesteer's own KV-cache loop (same policy: left
  padding, a prefill then one position per step); used for the tiny model and exact tests.

Both sort the prompts by token length before batching (less padding; the results come back in the
given order) and seed every batch with ``seed + batch_index``, so that steered and unsteered runs sample
alike. Greedy continuations do not depend on the batching (up to float rounding: a pad changes no
attention weight). ``row_steer=`` gives each prompt its own steering (or none) in one call: the
side-by-side view generates unsteered and every shown language together, in as few batches as possible.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

from saesteer.models.forward import pad_batch
from saesteer.steer.hooks import SaeArg, Steer, check_finite_output, steering
from saesteer.steer.scoring import HFScorer, batched_nll, batches, length_order
from saesteer.steer.vector import ModelInfo

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding settings. ``min_new_tokens`` suppresses EOS until reached (used by the benchmark);
    ``repetition_penalty`` (CTRL, Keskar et al. 2019; 1.0: off) divides the positive logits (multiplies the
    negative ones) of every token the continuation already produced (the prompt's tokens are not penalised)."""

    max_new_tokens: int = 40
    min_new_tokens: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        import math

        from saesteer.errors import SaesteerError

        checks = {
            "batch_size": self.batch_size >= 1,
            "max_new_tokens": self.max_new_tokens >= 1,
            "min_new_tokens": 0 <= self.min_new_tokens,
            "temperature": math.isfinite(self.temperature) and self.temperature > 0,
            "top_p": 0 < self.top_p <= 1,
            "repetition_penalty": math.isfinite(self.repetition_penalty) and self.repetition_penalty >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            want = {"batch_size": ">= 1", "max_new_tokens": ">= 1", "min_new_tokens": ">= 0",
                    "temperature": "> 0", "top_p": "in (0, 1]", "repetition_penalty": ">= 1 (1: off)"}
            raise SaesteerError(
                "invalid generation setting(s): "
                + ", ".join(f"{k.replace('_', '-')}={getattr(self, k)!r} (must be {want[k]})" for k in bad)
            )


@dataclass(frozen=True)
class Generation:
    """One continuation: its text (prompt excluded) and its token ids (EOS and pads excluded)."""

    prompt: str
    text: str
    token_ids: tuple[int, ...]


@dataclass(frozen=True)
class SideBySide:
    prompt: str
    unsteered: str
    steered: str


RowSteer = Sequence["Steer | None"]


class Backend(Protocol):
    """What generation, calibration and the CLI need from a model."""

    name: str
    info: ModelInfo
    model: Any  # the module steering hooks attach to
    check_model: bool  # check that a vector was built for this model id (width and depth are always checked)

    def generate(
        self,
        prompts: Sequence[str],
        cfg: GenerationConfig = ...,
        *,
        steer: Steer | Sequence[Steer] | None = None,
        sae: SaeArg = None,
        progress: Progress | None = None,
        row_steer: RowSteer | None = None,
    ) -> list[Generation]: ...

    def continuation_nll(
        self, prompts: Sequence[str], continuations: Sequence[Sequence[int]]
    ) -> list[tuple[float, int]]:
        """``(sum of NLL, n tokens)`` of each continuation given its prompt, under the current hooks."""
        ...


def _steer_ctx(backend: Any, steer: Steer | Sequence[Steer] | None, sae: SaeArg) -> Any:
    if steer is None or (isinstance(steer, (list, tuple)) and len(steer) == 0):
        return contextlib.nullcontext()
    return steering(backend.model, steer, sae=sae, model_id=backend.info.id, check_model=backend.check_model)


class _Rows:
    """Per-row steering: the distinct steers of ``row_steer`` (attached together) and, per prompt, which one
    (-1: none). Before each batch :meth:`select` tells every hook entry which rows of the batch it steers."""

    def __init__(self, steer: Steer | Sequence[Steer] | None, row_steer: RowSteer | None, n: int) -> None:
        self.groups: list[int] | None = None
        self.n_groups = 0
        self.steer = steer
        if row_steer is None:
            return
        if steer is not None:
            from saesteer.errors import SteeringVectorError

            raise SteeringVectorError("give either steer= (every row) or row_steer= (one per row), not both")
        if len(row_steer) != n:
            raise ValueError(f"row_steer has {len(row_steer)} entries for {n} prompts")
        distinct: list[Steer] = []
        groups = []
        for item in row_steer:
            if item is None:
                groups.append(-1)
                continue
            key = next((g for g, d in enumerate(distinct) if _same_steer(d, item)), None)
            if key is None:
                distinct.append(item)
                key = len(distinct) - 1
            groups.append(key)
        self.groups = groups
        self.n_groups = len(distinct)
        self.steer = distinct or None

    def select(self, handle: Any, rows: Sequence[int]) -> None:
        if self.groups is None or handle is None:
            return
        which = torch.tensor([self.groups[i] for i in rows])
        handle.set_rows({g: which == g for g in range(self.n_groups)})


def _same_steer(a: Steer, b: Steer) -> bool:
    va, sa = (a, None) if not isinstance(a, tuple) else a
    vb, sb = (b, None) if not isinstance(b, tuple) else b
    return va is vb and sa == sb


def calibrated_penalty(vec: Any, given: float | None = None) -> float:
    """``given`` if set, else the repetition penalty ``vec``'s default strength was calibrated with (its
    provenance ``repetition_penalty``, written by the recipes of :mod:`saesteer.eval.recipes`); 1.0 (off)
    otherwise."""
    if given is not None:
        return given
    try:
        return float(vec.provenance.get("repetition_penalty", 1.0))
    except (TypeError, ValueError, AttributeError):
        return 1.0


def penalize_repeats(logits: torch.Tensor, generated: torch.Tensor | None, penalty: float) -> torch.Tensor:
    """``logits: [batch, vocab]`` with the CTRL repetition penalty applied to the tokens of ``generated:
    [batch, steps]`` (the continuation so far): positive logits divided by ``penalty``, negative ones
    multiplied, by transformers' ``RepetitionPenaltyLogitsProcessor`` (the one the HF backend uses)."""
    if penalty == 1.0 or generated is None or generated.shape[1] == 0:
        return logits
    from transformers import RepetitionPenaltyLogitsProcessor

    return RepetitionPenaltyLogitsProcessor(float(penalty))(generated, logits)  # type: ignore[no-any-return]


def sample_next(logits: torch.Tensor, cfg: GenerationConfig) -> torch.Tensor:
    """Pick the next token from ``logits: [batch, vocab]`` (greedy, or temperature + top-p sampling)."""
    if not cfg.do_sample:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / max(cfg.temperature, 1e-6), dim=-1)
    if cfg.top_p < 1.0:
        sorted_p, idx = probs.sort(dim=-1, descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < cfg.top_p
        sorted_p = sorted_p * keep
        probs = torch.zeros_like(probs).scatter(-1, idx, sorted_p)
    return torch.multinomial(probs, 1)[:, 0]


def _cut(ids: Sequence[int], eos: int | None, pad: int | None) -> tuple[int, ...]:
    out = []
    for t in ids:
        if eos is not None and t == eos:
            break
        out.append(int(t))
    while out and pad is not None and out[-1] == pad:
        out.pop()
    return tuple(out)


class HFBackend:
    """Generation through a transformers causal LM (see the module docstring)."""

    name = "hf"
    check_model = True

    def __init__(self, hf: Any, tokenizer: Any, model_id: str) -> None:
        self.model = hf
        self.tokenizer = tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        hf.saesteer_model_id = model_id
        self.info = ModelInfo.from_hf(hf, model_id)
        self._scorer = HFScorer(hf)  # continuation_nll

    @classmethod
    def load(cls, name: str, **kwargs: Any) -> HFBackend:
        from saesteer.models.loading import load_hf_model, resolve_model

        hf, tok = load_hf_model(name, **kwargs)
        return cls(hf, tok, resolve_model(name).id)

    def generate(
        self,
        prompts: Sequence[str],
        cfg: GenerationConfig = GenerationConfig(),
        *,
        steer: Steer | Sequence[Steer] | None = None,
        sae: SaeArg = None,
        progress: Progress | None = None,
        row_steer: RowSteer | None = None,
    ) -> list[Generation]:
        tok = self.tokenizer
        rows_plan = _Rows(steer, row_steer, len(prompts))
        steer = rows_plan.steer
        kwargs: dict[str, Any] = dict(
            max_new_tokens=cfg.max_new_tokens,
            min_new_tokens=cfg.min_new_tokens,
            do_sample=cfg.do_sample,
            pad_token_id=tok.pad_token_id,
            use_cache=True,
        )
        if cfg.do_sample:
            kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        ids = [self.prompt_ids(p) for p in prompts]
        order = length_order([len(x) for x in ids])
        out: list[Generation | None] = [None] * len(prompts)
        done = 0
        with _steer_ctx(self, steer, sae) as handle, torch.no_grad():
            for bi, pos in enumerate(batches(len(order), cfg.batch_size)):
                rows = [order[j] for j in pos]
                tokens, mask = pad_batch([ids[i] for i in rows], int(tok.pad_token_id), side="left")
                rows_plan.select(handle, rows)
                torch.manual_seed(cfg.seed + bi)
                kwargs["logits_processor"] = _logits_processors(steer, cfg.repetition_penalty, tokens.shape[1])
                seq = self.model.generate(
                    input_ids=tokens.to(self.model.device), attention_mask=mask.to(self.model.device), **kwargs
                )
                for i, new in zip(rows, seq[:, tokens.shape[1] :].tolist(), strict=True):
                    kept = _cut(new, tok.eos_token_id, tok.pad_token_id)
                    out[i] = Generation(prompts[i], tok.decode(list(kept), skip_special_tokens=True), kept)
                done += len(rows)
                if progress is not None:
                    progress(done, len(prompts))
        return [g for g in out if g is not None]

    def prompt_ids(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt)["input_ids"])

    def continuation_nll(
        self, prompts: Sequence[str], continuations: Sequence[Sequence[int]], *, batch_size: int = 8
    ) -> list[tuple[float, int]]:
        """Scored in length-sorted, right-padded batches, the unembedding only at the positions that predict a
        continuation token (:class:`saesteer.steer.scoring.HFScorer`)."""
        seqs = [(self.prompt_ids(p), list(c)) for p, c in zip(prompts, continuations, strict=True)]
        return self._scorer(seqs, pad=int(self.tokenizer.pad_token_id), batch_size=batch_size)


class TLBackend:
    """Generation through a transformer-lens model with an explicit KV-cache loop."""

    name = "tl"
    check_model = True

    def __init__(self, model: HookedTransformer) -> None:
        if model.tokenizer is None:
            from saesteer.errors import ModelLoadError

            raise ModelLoadError("the transformer-lens model has no tokenizer; generation needs one")
        self.model = model
        self.tokenizer = model.tokenizer
        self.info = ModelInfo.from_tl(model)
        tok = model.tokenizer
        self.eos = getattr(tok, "eos_token_id", None)
        pad = getattr(tok, "pad_token_id", None)
        self.pad = int(pad if pad is not None else (self.eos or 0))

    @classmethod
    def load(cls, name: str, **kwargs: Any) -> TLBackend:
        from saesteer.models.loading import load_model

        return cls(load_model(name, **kwargs))

    def prompt_ids(self, prompt: str) -> list[int]:
        return [int(t) for t in self.model.to_tokens(prompt, prepend_bos=True, truncate=True)[0].tolist()]

    def generate(
        self,
        prompts: Sequence[str],
        cfg: GenerationConfig = GenerationConfig(),
        *,
        steer: Steer | Sequence[Steer] | None = None,
        sae: SaeArg = None,
        progress: Progress | None = None,
        row_steer: RowSteer | None = None,
    ) -> list[Generation]:
        rows_plan = _Rows(steer, row_steer, len(prompts))
        steer = rows_plan.steer
        order = length_order([len(self.prompt_ids(p)) for p in prompts])
        out: list[Generation | None] = [None] * len(prompts)
        done = 0
        with _steer_ctx(self, steer, sae) as handle, torch.no_grad():
            for bi, pos in enumerate(batches(len(order), cfg.batch_size)):
                rows = [order[j] for j in pos]
                rows_plan.select(handle, rows)
                torch.manual_seed(cfg.seed + bi)
                batch = [prompts[i] for i in rows]
                for i, ids in zip(rows, self._generate_batch(batch, cfg, steer), strict=True):
                    kept = _cut(ids, self.eos, self.pad)
                    out[i] = Generation(
                        prompts[i], str(self.tokenizer.decode(list(kept), skip_special_tokens=True)), kept
                    )
                done += len(rows)
                if progress is not None:
                    progress(done, len(prompts))
        return [g for g in out if g is not None]

    def _generate_batch(
        self, batch: Sequence[str], cfg: GenerationConfig, steer: Steer | Sequence[Steer] | None = None
    ) -> list[list[int]]:
        from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

        model = self.model
        dev = model.cfg.device
        seqs = [self.prompt_ids(p) for p in batch]
        tokens, mask = pad_batch(seqs, self.pad, side="left")  # left padding: every prompt ends at the last column
        cache = TransformerLensKeyValueCache.init_cache(model.cfg, dev, len(seqs))
        logits = model(tokens.to(dev), attention_mask=mask.to(dev), past_kv_cache=cache)
        finished = torch.zeros(len(seqs), dtype=torch.bool, device=dev)
        steps: list[torch.Tensor] = []
        ones = torch.ones((len(seqs), 1), dtype=torch.long, device=dev)
        for step in range(cfg.max_new_tokens):
            nxt_logits = logits[:, -1, :].clone()
            if steer is not None:
                check_finite_output(nxt_logits, steer)
            if self.eos is not None and step < cfg.min_new_tokens:
                nxt_logits[:, self.eos] = float("-inf")
            if cfg.repetition_penalty != 1.0 and steps:
                nxt_logits = penalize_repeats(nxt_logits, torch.stack(steps, dim=1), cfg.repetition_penalty)
            nxt = sample_next(nxt_logits, cfg)
            nxt = torch.where(finished, torch.full_like(nxt, self.pad), nxt)
            steps.append(nxt)
            if self.eos is not None:
                finished |= nxt == self.eos
            if bool(finished.all()) or step == cfg.max_new_tokens - 1:
                break
            logits = model(nxt[:, None], attention_mask=ones, past_kv_cache=cache)
        if not steps:
            return [[] for _ in seqs]
        return torch.stack(steps, dim=1).tolist()

    def continuation_nll(
        self, prompts: Sequence[str], continuations: Sequence[Sequence[int]], *, batch_size: int = 8
    ) -> list[tuple[float, int]]:
        seqs = [(self.prompt_ids(p), list(c)) for p, c in zip(prompts, continuations, strict=True)]
        return batched_nll(
            seqs,
            lambda ids, mask: self.model(ids, attention_mask=mask),
            pad=self.pad,
            device=torch.device(self.model.cfg.device or "cpu"),
            batch_size=batch_size,
        )


def _logits_processors(steer: Steer | Sequence[Steer] | None, penalty: float, prompt_width: int) -> Any:
    """A transformers ``LogitsProcessorList``: one that stops generation with a clear error when steering
    turned the logits non-finite (instead of decoding NaNs into empty continuations), and the repetition
    penalty on the generated tokens only (the left-padded prompts all end at ``prompt_width``)."""
    from transformers import LogitsProcessor, LogitsProcessorList, RepetitionPenaltyLogitsProcessor

    class FiniteLogits(LogitsProcessor):  # type: ignore[misc]
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            check_finite_output(scores, steer)
            return scores

    procs: list[Any] = [FiniteLogits()] if steer is not None else []
    if penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(float(penalty), prompt_ignore_length=prompt_width))
    return LogitsProcessorList(procs)


def side_by_side(
    backend: Backend,
    prompts: Sequence[str],
    steer: Steer | Sequence[Steer],
    cfg: GenerationConfig = GenerationConfig(),
    *,
    sae: SaeArg = None,
    progress: Progress | None = None,
) -> list[SideBySide]:
    """Unsteered and steered continuations of the same prompts with the same seeds."""
    base = backend.generate(prompts, cfg, progress=progress)
    steered = backend.generate(prompts, cfg, steer=steer, sae=sae, progress=progress)
    return [SideBySide(b.prompt, b.text, s.text) for b, s in zip(base, steered, strict=True)]


def side_by_side_many(
    backend: Backend,
    prompts: Sequence[str],
    steers: Mapping[str, Steer],
    cfg: GenerationConfig = GenerationConfig(),
    *,
    sae: SaeArg = None,
    progress: Progress | None = None,
) -> dict[str, list[SideBySide]]:
    """The side by side for several vectors at once (``{name: vector or (vector, strength)}``): the unsteered
    continuations once, and every vector's, in one ``generate`` call with per-row steering (with
    ``cfg.batch_size >= len(prompts) * (len(steers) + 1)``: one batch, one decode loop)."""
    names = list(steers)
    rows: list[Steer | None] = [None] * len(prompts)
    for name in names:
        rows += [steers[name]] * len(prompts)
    gens = backend.generate(list(prompts) * (len(names) + 1), cfg, sae=sae, progress=progress, row_steer=rows)
    n = len(prompts)
    base = gens[:n]
    return {name: [SideBySide(b.prompt, b.text, s.text) for b, s in zip(base, gens[(k + 1) * n : (k + 2) * n],
                                                                         strict=True)]
            for k, name in enumerate(names)}


def make_backend(model: str, kind: str = "auto", **kwargs: Any) -> Backend:
    """A backend for a model name: ``hf`` (transformers, fast), ``tl`` (transformer-lens), or ``auto``
    (transformers unless the model has no transformers twin, like ``tiny-random``)."""
    from saesteer.errors import ModelLoadError

    if kind not in ("auto", "hf", "tl"):
        raise ModelLoadError(f"unknown backend {kind!r}; use auto, hf or tl")
    if kind == "tl" or (kind == "auto" and model.startswith("tiny-random")):
        return TLBackend.load(model, **kwargs)
    return HFBackend.load(model, **kwargs)
