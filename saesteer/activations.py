"""Stream documents through a model up to a hook and encode them with an SAE.

The model runs only the blocks the hook needs (``stop_at_layer = layer + 1``; a hook function captures
the residual and stops the forward there), under ``torch.inference_mode()``. Documents are tokenized
once, a BOS is prepended (when the model expects one) and they are truncated to ``max_seq_len``.

Batching: documents are pooled, sorted by length and right-padded to a multiple of ``pad_multiple``;
a batch only holds documents of the same padded length. With causal attention and right padding a
document's activations then do not depend on which other documents share its batch, so a sharded build
computes bit-for-bit the same activations as a single-machine build (on the same hardware).

The SAE encode is chunked over tokens (``chunk_elements // d_sae`` tokens at a time) so that a
1M-feature SAE needs only ``chunk_elements`` floats for its codes. Every chunk carries, per token, the
document id, position, token id, whether the token is *counted* (not excluded) and whether it is a BOS.
Padding is never emitted; excluded tokens other than BOS are dropped before the encode.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from saesteer.errors import CorpusError, ModelLoadError

if TYPE_CHECKING:
    import torch
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from saesteer.corpus.sources import Condition
    from saesteer.models.hooks import HookSpec

NORMAL, BOS, PAD, SPECIAL = 0, 1, 2, 3
EXCLUDABLE = ("bos", "pad", "special")
DEFAULT_EXCLUDE = ("bos", "pad", "special")
_TOKENIZE_POOL = 256


@dataclass(frozen=True)
class Vocab:
    """What the collector needs to know about a tokenizer.

    ``kinds``: ``[d_vocab]`` int8, one of NORMAL / BOS / PAD / SPECIAL per token id.
    """

    kinds: np.ndarray
    bos_id: int | None
    pad_id: int
    prepend_bos: bool

    @property
    def allowed_ids(self) -> np.ndarray:
        """The non-special token ids (what random-token baselines sample from)."""
        return np.flatnonzero(self.kinds == NORMAL).astype(np.int64)


def vocab_info(model: HookedTransformer) -> Vocab:
    """Classify every token id of the model's tokenizer (BOS, pad, other special tokens, normal)."""
    tok = model.tokenizer
    if tok is None:
        raise ModelLoadError("the model has no tokenizer; saesteer needs one to index text")
    d_vocab = int(model.cfg.d_vocab)
    kinds = np.zeros(d_vocab, dtype=np.int8)
    n_tok = len(tok)
    if n_tok < d_vocab:
        kinds[n_tok:] = SPECIAL  # ids the tokenizer never produces (padding rows of the embedding)
    special = set(tok.all_special_ids)
    special |= {
        i for i, t in getattr(tok, "added_tokens_decoder", {}).items() if getattr(t, "special", False)
    }
    for i in special:
        if 0 <= i < d_vocab:
            kinds[i] = SPECIAL
    pad_id = tok.pad_token_id
    if pad_id is not None and 0 <= pad_id < d_vocab:
        kinds[pad_id] = PAD
    bos_id = tok.bos_token_id
    if bos_id is not None and 0 <= bos_id < d_vocab:
        kinds[bos_id] = BOS
    prepend = bool(model.cfg.default_prepend_bos) and bos_id is not None
    return Vocab(kinds, bos_id, int(pad_id if pad_id is not None else 0), prepend)


def encode_texts(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens (batched through a fast tokenizer)."""
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


class TokenizedDoc(NamedTuple):
    """A document's id and its token ids (BOS included, truncated)."""

    doc_id: int
    ids: np.ndarray


def _keep(doc_id: int, shard: tuple[int, int] | None, only: set[int] | None) -> bool:
    if shard is not None and doc_id % shard[1] != shard[0]:
        return False
    return only is None or doc_id in only


def tokenized_documents(
    condition: Condition,
    tokenizer: Any,
    vocab: Vocab,
    *,
    max_seq_len: int,
    shard: tuple[int, int] | None = None,
    only: set[int] | None = None,
) -> Iterator[TokenizedDoc]:
    """The condition's documents as token ids (``shard=(i, n)`` keeps ids with ``id % n == i``;
    ``only`` keeps the given ids)."""
    from saesteer.corpus.random_tokens import RandomTokens

    head = [vocab.bos_id] if vocab.prepend_bos and vocab.bos_id is not None else []
    room = max_seq_len - len(head)
    if room <= 0:
        raise CorpusError(f"max_seq_len={max_seq_len} leaves no room for tokens")

    def finish(doc_id: int, ids: Sequence[int] | np.ndarray) -> TokenizedDoc:
        arr = np.asarray(ids, dtype=np.int64)[:room]
        return TokenizedDoc(doc_id, np.concatenate([np.asarray(head, dtype=np.int64), arr]))

    source = condition.source
    if isinstance(source, RandomTokens):
        for doc_id, ids in source.sequences(vocab.allowed_ids, lambda t: encode_texts(tokenizer, t)):
            if _keep(doc_id, shard, only):
                yield finish(doc_id, ids)
        return
    pool: list[tuple[int, str]] = []
    for doc in condition.documents():
        if _keep(doc.doc_id, shard, only):
            pool.append((doc.doc_id, doc.text))
        if len(pool) >= _TOKENIZE_POOL:
            yield from (
                finish(i, ids)
                for (i, _), ids in zip(pool, encode_texts(tokenizer, [t for _, t in pool]), strict=True)
            )
            pool = []
    if pool:
        yield from (
            finish(i, ids)
            for (i, _), ids in zip(pool, encode_texts(tokenizer, [t for _, t in pool]), strict=True)
        )


class Batch(NamedTuple):
    """Right-padded token ids ``tokens: [batch, pos]``, ``lengths: [batch]``, ``doc_ids: [batch]``."""

    tokens: np.ndarray
    lengths: np.ndarray
    doc_ids: np.ndarray


def padded_length(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def batches(
    docs: Iterable[TokenizedDoc],
    *,
    batch_size: int,
    pad_multiple: int = 16,
    pad_id: int = 0,
    pool_batches: int = 16,
) -> Iterator[Batch]:
    """Group documents into batches of equal padded length (pools of ``pool_batches * batch_size`` docs,
    sorted by length), keeping memory bounded."""
    pool: list[TokenizedDoc] = []

    def flush() -> Iterator[Batch]:
        pool.sort(key=lambda d: len(d.ids))
        group: list[TokenizedDoc] = []
        width = 0
        for d in pool:
            w = padded_length(len(d.ids), pad_multiple)
            if group and (w != width or len(group) >= batch_size):
                yield _pad(group, width, pad_id)
                group = []
            group.append(d)
            width = w
        if group:
            yield _pad(group, width, pad_id)
        pool.clear()

    for d in docs:
        if len(d.ids):
            pool.append(d)
        if len(pool) >= pool_batches * batch_size:
            yield from flush()
    yield from flush()


def _pad(group: list[TokenizedDoc], width: int, pad_id: int) -> Batch:
    from saesteer.models.forward import pad_batch

    tokens, _ = pad_batch([d.ids for d in group], pad_id, width=width)
    lengths = np.array([len(d.ids) for d in group], dtype=np.int64)
    return Batch(tokens.numpy(), lengths, np.array([d.doc_id for d in group], dtype=np.int64))


class ActivationChunk(NamedTuple):
    """SAE codes of ``n`` tokens plus per-token metadata (all tensors on the SAE's device).

    ``acts: [n, d_sae]``; ``doc_ids, doc_seq, positions, token_ids: [n]`` int64 (``doc_seq`` counts
    documents in stream order, so a document's tokens are contiguous and its ``doc_seq`` is increasing);
    ``counted, is_bos: [n]`` bool.
    """

    acts: torch.Tensor
    doc_ids: torch.Tensor
    doc_seq: torch.Tensor
    positions: torch.Tensor
    token_ids: torch.Tensor
    counted: torch.Tensor
    is_bos: torch.Tensor


def exclusion_table(vocab: Vocab, exclude: Sequence[str]) -> np.ndarray:
    """``[d_vocab]`` bool: token ids that are not counted."""
    unknown = set(exclude) - set(EXCLUDABLE)
    if unknown:
        raise CorpusError(
            f"unknown token exclusion(s) {sorted(unknown)}; choose from {', '.join(EXCLUDABLE)}"
        )
    excluded = np.zeros(len(vocab.kinds), dtype=bool)
    for name, kind in (("bos", BOS), ("pad", PAD), ("special", SPECIAL)):
        if name in exclude:
            excluded |= vocab.kinds == kind
    return excluded


def chunk_tokens_for(d_sae: int, chunk_elements: int) -> int:
    """How many tokens one SAE-encode chunk holds."""
    return max(1, chunk_elements // max(1, d_sae))


def stream_activations(
    model: HookedTransformer,
    sae: SAE,
    batch_iter: Iterable[Batch],
    *,
    spec: HookSpec,
    vocab: Vocab,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    chunk_elements: int = 1 << 24,
    on_batch: Callable[[int, int], None] | None = None,
) -> Generator[ActivationChunk, None, None]:
    """Run every batch to the hook, SAE-encode the kept tokens in chunks, yield :class:`ActivationChunk` s.

    ``on_batch(n_docs, n_tokens)`` is called after each batch (for progress); ``n_tokens`` counts the
    real (unpadded) tokens of the batch.
    """
    import torch

    from saesteer.models.forward import capture_residual

    model_device = torch.device(str(model.cfg.device))
    sae_param = sae.W_enc
    excluded_t = torch.from_numpy(exclusion_table(vocab, exclude)).to(sae_param.device)
    kinds_t = torch.from_numpy(vocab.kinds).to(sae_param.device)
    chunk = chunk_tokens_for(int(sae.cfg.d_sae), chunk_elements)
    seq_base = 0
    with torch.inference_mode():
        for batch in batch_iter:
            tokens = torch.from_numpy(batch.tokens).to(model_device)
            resid = capture_residual(model, tokens, spec)
            b, width = batch.tokens.shape
            real = torch.arange(width)[None, :] < torch.from_numpy(batch.lengths)[:, None]
            x = resid[real.to(resid.device)].to(device=sae_param.device, dtype=sae_param.dtype)
            dev = sae_param.device
            tok = torch.from_numpy(batch.tokens)[real].to(dev)
            pos = torch.arange(width).expand(b, width)[real].to(dev)
            docs = torch.from_numpy(batch.doc_ids)[:, None].expand(b, width)[real].to(dev)
            seq = (torch.arange(b)[:, None].expand(b, width)[real] + seq_base).to(dev)
            seq_base += b
            is_bos = kinds_t[tok] == BOS
            counted = ~excluded_t[tok]
            keep = counted | is_bos
            if not bool(keep.all()):
                x, tok, pos, docs, seq, is_bos, counted = (
                    t[keep] for t in (x, tok, pos, docs, seq, is_bos, counted)
                )
            for start in range(0, x.shape[0], chunk):
                sl = slice(start, start + chunk)
                acts = sae.encode(x[sl])
                if acts.is_sparse:  # sae-lens TopK SAEs may return sparse codes
                    acts = acts.to_dense()
                yield ActivationChunk(
                    acts.float(), docs[sl], seq[sl], pos[sl], tok[sl], counted[sl], is_bos[sl]
                )
            if on_batch is not None:
                on_batch(b, int(batch.lengths.sum()))


def forward_only(model: HookedTransformer, batch_iter: Iterable[Batch], spec: HookSpec) -> int:
    """The bare forward pass that yields the hook's activation, over the same batches (the benchmark
    baseline): up to the block's input for ``resid_pre``, through the block otherwise. Returns the
    number of real tokens."""
    import torch

    stop = spec.layer if spec.kind == "resid_pre" else spec.stop_at_layer
    n = 0
    with torch.inference_mode():
        for batch in batch_iter:
            model(torch.from_numpy(batch.tokens).to(str(model.cfg.device)), stop_at_layer=stop)
            n += int(batch.lengths.sum())
    return n
