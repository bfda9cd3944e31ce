"""``feature_output``: the logit lens of every SAE decoder row (``(W_dec[f] * g) @ W_U``, ``g`` the final
norm's gain, see :mod:`saesteer.models.unembed`), top tokens per feature, computed once per build in chunks
of features (memory ``chunk_elements`` floats)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from saesteer.activations import NORMAL, Vocab
from saesteer.index.stats import constant_strings

if TYPE_CHECKING:
    import pyarrow as pa
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from saesteer.index.tokens import TokenStrings


def feature_output_table(
    model: HookedTransformer,
    sae: SAE,
    build_id: str,
    *,
    k: int,
    vocab: Vocab,
    token_strings: TokenStrings,
    chunk_elements: int = 1 << 24,
) -> pa.Table:
    """Top-``k`` output tokens of each feature's decoder row (special tokens left out).

    ``(W_dec * g): [d_sae, d_model] @ W_U: [d_model, d_vocab] -> [d_sae, d_vocab]``, ``chunk_elements //
    d_vocab`` features at a time.
    """
    import pyarrow as pa
    import torch

    from saesteer.models.unembed import logit_lens_chunks

    d_sae, d_vocab = int(sae.W_dec.shape[0]), int(model.W_U.shape[1])
    k = min(k, int((vocab.kinds[:d_vocab] == NORMAL).sum()))
    masked = torch.from_numpy(vocab.kinds[:d_vocab] != NORMAL).to(model.W_U.device)
    vals, ids = [], []
    for _, logits in logit_lens_chunks(model, sae.W_dec, chunk=max(1, chunk_elements // d_vocab)):
        logits[:, masked] = float("-inf")
        top = logits.topk(k, dim=1)
        vals.append(top.values.float().cpu().numpy())
        ids.append(top.indices.cpu().numpy())
    v = np.concatenate(vals).reshape(-1) if vals else np.zeros(0, np.float32)
    t = np.concatenate(ids).reshape(-1) if ids else np.zeros(0, np.int64)
    n = len(t)
    return pa.table(
        {
            "build_id": constant_strings(build_id, n),
            "feature": pa.array(np.repeat(np.arange(d_sae, dtype=np.int32), k)),
            "rank": pa.array(np.tile(np.arange(k, dtype=np.int16), d_sae)),
            "token_id": pa.array(t.astype(np.int32)),
            "token": token_strings(t),
            "logit": pa.array(v.astype(np.float32)),
        }
    )
