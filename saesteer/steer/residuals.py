"""Residuals at a hook over a list of texts (transformer-lens, ``stop_at_layer``), without BOS or pads.

Used for the typical residual norm that fixes the scale of a vector, and for DiffMean baselines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

from saesteer.corpus.bundled import bundled_texts
from saesteer.errors import CorpusError
from saesteer.models.forward import pad_batch, run_to_hooks
from saesteer.models.hooks import validate_hook

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

Progress = Callable[[int, int], None]  # (done, total)


def iter_residuals(
    model: HookedTransformer,
    hook_names: Sequence[str],
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_len: int = 64,
    progress: Progress | None = None,
) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Yield ``({hook: resid [batch, pos, d_model]}, keep [batch, pos])`` per batch.

    ``keep`` is False at padding (right-padded batches) and at BOS tokens.
    """
    if not texts:
        raise CorpusError("no texts to run through the model")
    specs = [validate_hook(model, h) for h in hook_names]
    stop = max(s.stop_at_layer for s in specs)
    stop_arg = stop if stop < model.cfg.n_layers else None
    tok = model.tokenizer
    bos = getattr(tok, "bos_token_id", None) if tok is not None else None
    pad = getattr(tok, "pad_token_id", None) if tok is not None else None
    pad = 0 if pad is None else int(pad)
    seqs = [model.to_tokens(t, prepend_bos=True, truncate=True)[0, :max_len] for t in texts]
    done = 0
    for start in range(0, len(seqs), batch_size):
        tokens, mask = pad_batch(seqs[start : start + batch_size], pad)
        tokens = tokens.to(model.cfg.device)
        mask = mask.to(model.cfg.device)
        cache = run_to_hooks(model, tokens, mask, hook_names, stop_arg)
        keep = mask.bool()
        if bos is not None:
            keep &= tokens != int(bos)
        yield {h: cache[h].float() for h in hook_names}, keep
        done += int(tokens.shape[0])
        if progress is not None:
            progress(done, len(seqs))


def norm_settings(n_texts: int = 48, batch_size: int = 32, max_len: int = 64) -> dict[str, Any]:
    """What the default typical norm depends on besides the model and hook (its residual_stats key)."""
    return {"sample": "bundled:en:train", "n_texts": n_texts, "batch_size": batch_size, "max_len": max_len}


def mean_settings(lang: str, n_texts: int = 200, batch_size: int = 32, max_len: int = 64,
                  corpus: str = "bundled") -> dict[str, Any]:
    """What a language's mean residual over a shipped corpus's train split depends on besides the model and
    hook (the shipped prebuilt statistics are for ``corpus="bundled"``)."""
    return {"lang": lang, "corpus": corpus, "split": "train", "n_texts": n_texts, "batch_size": batch_size,
            "max_len": max_len}


def typical_residual_norm(
    model: HookedTransformer,
    hook_name: str,
    texts: Sequence[str] | None = None,
    *,
    n_texts: int = 48,
    batch_size: int = 32,
    max_len: int = 64,
) -> float:
    """The median residual norm at ``hook_name`` over non-BOS, non-pad tokens.

    ``texts`` default to the first ``n_texts`` lines of the bundled English train split; that default is
    computed once per model and hook (shipped for the default model: :mod:`saesteer.steer.residual_stats`).
    """
    from saesteer.steer import residual_stats

    settings = norm_settings(n_texts, batch_size, max_len)
    if texts is None and (known := residual_stats.lookup(model, hook_name, "norm", settings)) is not None:
        return float(known)
    sample = list(texts) if texts is not None else bundled_texts("en", "train")[:n_texts]
    norms = []
    for resid, keep in iter_residuals(model, [hook_name], sample, batch_size=batch_size, max_len=max_len):
        norms.append(resid[hook_name][keep].norm(dim=-1))
    allnorms = torch.cat(norms)
    if allnorms.numel() == 0:
        raise CorpusError("the norm sample has no tokens besides BOS/padding")
    value = float(allnorms.double().median())
    if texts is None:
        residual_stats.store(model, hook_name, "norm", settings, value)
    return value


def mean_residual(
    model: HookedTransformer,
    hook_names: Sequence[str],
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_len: int = 64,
    progress: Progress | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """``({hook: mean residual [d_model] (float64)}, n_tokens)`` over non-BOS, non-pad tokens."""
    sums: dict[str, torch.Tensor] = {}
    n = 0
    for resid, keep in iter_residuals(
        model, hook_names, texts, batch_size=batch_size, max_len=max_len, progress=progress
    ):
        for h in hook_names:
            s = resid[h][keep].double().sum(dim=0)
            sums[h] = sums[h] + s if h in sums else s
        n += int(keep.sum())
    if n == 0:
        raise CorpusError("the texts have no tokens besides BOS/padding")
    return {h: s / n for h, s in sums.items()}, n


def corpus_mean_residual(
    model: HookedTransformer, hook_name: str, lang: str, *, corpus: str = "bundled", n_texts: int = 200,
    batch_size: int = 32, max_len: int = 64,
) -> torch.Tensor:
    """The mean residual (float64) of the first ``n_texts`` train texts of ``lang`` in the shipped parallel
    corpus ``corpus`` (:mod:`saesteer.corpus.parallel`): computed once per model, hook and corpus (shipped for
    the default model and the bundled corpus: :mod:`saesteer.steer.residual_stats`)."""
    from saesteer.corpus.parallel import corpus_texts
    from saesteer.steer import residual_stats

    settings = mean_settings(lang, n_texts, batch_size, max_len, corpus=corpus)
    texts = corpus_texts(corpus, lang, "train")[:n_texts]
    known = residual_stats.lookup(model, hook_name, "mean", settings)  # computed here before (float64)
    if known is not None:
        return torch.tensor(known, dtype=torch.float64)
    shipped = residual_stats.shipped_mean(residual_stats.model_hash(model), hook_name, settings,
                                          residual_stats.texts_sha256(texts))
    if shipped is not None:
        return shipped
    means, _ = mean_residual(model, [hook_name], texts, batch_size=batch_size, max_len=max_len)
    residual_stats.store(model, hook_name, "mean", settings, [float(x) for x in means[hook_name].tolist()])
    return means[hook_name]


def bundled_mean_residual(
    model: HookedTransformer, hook_name: str, lang: str, *, n_texts: int = 200, batch_size: int = 32, max_len: int = 64
) -> torch.Tensor:
    """:func:`corpus_mean_residual` on the bundled corpus."""
    return corpus_mean_residual(model, hook_name, lang, corpus="bundled", n_texts=n_texts, batch_size=batch_size,
                                max_len=max_len)
