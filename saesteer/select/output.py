"""Output scores: what a feature's decoder direction writes to the vocabulary (the logit lens).

``logit_lens`` projects decoder rows through the final norm's gain and the unembedding:
``(W_dec[f] * g) @ W_U`` (:mod:`saesteer.models.unembed`, the same convention as the index's
``feature_output`` table). ``output_scores`` turns that into a number per
feature: the probability mass that ``softmax(lens(W_dec[f]))`` puts on the target condition's
characteristic tokens (from ``token_counts``: tokens much more frequent in the target than in the
contrast conditions), and its lift over a uniform distribution. Arad et al. (2025) report that keeping the
features with a strong output effect improves steering 2-3x.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from saesteer.errors import DimensionMismatchError, EmptyResultError, UnknownFeatureError
from saesteer.index.db import IndexDb, load_query

if TYPE_CHECKING:
    import torch
    from sae_lens import SAE
    from transformer_lens import HookedTransformer


@dataclass(frozen=True)
class TargetTokens:
    """A condition's characteristic tokens, most characteristic first."""

    condition: str
    token_ids: list[int]
    ratios: list[float]  # smoothed ratio of relative frequencies, target / contrast
    counts: list[int]  # occurrences in the target


@dataclass(frozen=True)
class OutputScores:
    """Per feature: ``mass``, ``lift`` ``[n]``; ``top_ids``, ``top_logits`` ``[n, top_n]``; ``top_tokens``."""

    features: list[int]
    mass: np.ndarray
    lift: np.ndarray
    top_ids: np.ndarray
    top_logits: np.ndarray
    top_tokens: list[list[str]]


def target_tokens(
    db: IndexDb,
    build_id: str,
    target: str,
    contrast: Sequence[str],
    *,
    min_ratio: float = 5.0,
    min_count: int = 3,
    max_tokens: int = 200,
    alpha: float = 1.0,
) -> TargetTokens:
    """Tokens at least ``min_ratio`` times more frequent in ``target`` than in ``contrast`` (relative
    frequencies, add-``alpha`` smoothed) and seen ``min_count`` times in the target; see
    ``select_target_tokens.sql``."""
    params = {
        "build": build_id,
        "target": target,
        "contrast": list(contrast),
        "alpha": float(alpha),
        "min_count": int(min_count),
        "min_ratio": float(min_ratio),
        "max_tokens": int(max_tokens),
    }
    rows = db.execute(load_query("select_target_tokens"), params).fetchall()
    if not rows:
        raise EmptyResultError(
            f"no characteristic tokens for {target} in build {build_id} (token_counts has none at least "
            f"{min_ratio:g}x more frequent than in the contrast and seen {min_count}+ times); lower min_ratio/min_count"
        )
    return TargetTokens(
        target, [int(r[0]) for r in rows], [float(r[3]) for r in rows], [int(r[1]) for r in rows]
    )


def _check(model: HookedTransformer, sae: SAE, features: Sequence[int]) -> list[int]:
    d_sae, d_in = int(sae.W_dec.shape[0]), int(sae.W_dec.shape[1])
    if d_in != int(model.cfg.d_model):
        raise DimensionMismatchError(
            f"the SAE writes width {d_in} but the model's d_model is {model.cfg.d_model}"
        )
    feats = [int(f) for f in features]
    bad = [f for f in feats if not 0 <= f < d_sae]
    if bad:
        raise UnknownFeatureError(f"unknown feature {bad[0]}: the SAE has {d_sae} features (0..{d_sae - 1})")
    return feats


def logit_lens(
    model: HookedTransformer,
    sae: SAE,
    features: Sequence[int],
    *,
    chunk: int = 256,
    scale: float = 1.0,
) -> torch.Tensor:
    """``scale * (W_dec[features] * g) @ W_U``: ``[n, d_vocab]`` float32 logits, ``chunk`` rows at a time."""
    import torch

    from saesteer.models.unembed import logit_lens_chunks

    feats = _check(model, sae, features)
    rows = sae.W_dec.detach()[torch.tensor(feats, dtype=torch.long)]
    out = torch.empty(len(feats), int(model.W_U.shape[1]), dtype=torch.float32)
    for start, logits in logit_lens_chunks(model, rows, chunk=chunk, scale=scale):
        out[start : start + logits.shape[0]] = logits.float().cpu()
    return out


def output_scores(
    model: HookedTransformer,
    sae: SAE,
    features: Sequence[int],
    target_token_ids: Sequence[int],
    *,
    top_n: int = 10,
    chunk: int = 256,
    scale: float = 1.0,
) -> OutputScores:
    """Mass of ``softmax(scale * lens(W_dec[f]))`` on ``target_token_ids`` and the top ``top_n`` tokens.

    ``lift = mass / (len(target_token_ids) / d_vocab)``: 1 means no preference for the target's tokens.
    """
    import torch

    feats = _check(model, sae, features)
    d_vocab = int(model.W_U.shape[1])
    tgt = torch.tensor(sorted({int(t) for t in target_token_ids if 0 <= int(t) < d_vocab}), dtype=torch.long)
    masses, ids, vals = [], [], []
    k = min(top_n, d_vocab)
    for start in range(0, len(feats), max(1, chunk)):
        logits = logit_lens(model, sae, feats[start : start + chunk], chunk=chunk, scale=scale)
        probs = torch.softmax(logits, dim=-1)
        masses.append(probs[:, tgt].sum(-1).numpy() if len(tgt) else np.zeros(len(logits)))
        top = logits.topk(k, dim=-1)
        ids.append(top.indices.numpy())
        vals.append(top.values.numpy())
    mass = np.concatenate(masses) if masses else np.zeros(0)
    top_ids = np.concatenate(ids) if ids else np.zeros((0, k), dtype=np.int64)
    baseline = max(len(tgt), 1) / d_vocab
    return OutputScores(
        features=feats,
        mass=mass,
        lift=mass / baseline,
        top_ids=top_ids,
        top_logits=np.concatenate(vals) if vals else np.zeros((0, k)),
        top_tokens=[token_strings(model, row) for row in top_ids],
    )


def token_strings(model: HookedTransformer, ids: Sequence[int] | np.ndarray) -> list[str]:
    """Each token id decoded on its own (how the index stores token strings)."""
    tok = model.tokenizer
    if tok is None:
        return [str(int(i)) for i in ids]
    return list(tok.batch_decode([[int(i)] for i in ids], skip_special_tokens=False))
