"""The LangFIR directional-ablation test: project language L's direction out of the residual stream
and measure the cross-entropy increase on every language's held-out text.

``matrix[L, M] = CE(text_M | direction_L ablated) - CE(text_M)``, in nats per token. A language
direction that is really about language L hurts L's own text most: the diagonal should dominate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import torch

from saesteer.errors import CorpusError

if TYPE_CHECKING:
    import pandas as pd
    from transformer_lens import HookedTransformer

    from saesteer.steer.vector import SteeringVector

Progress = Callable[[int, int], None]


def mean_token_ce(model: HookedTransformer, texts: Sequence[str], *, batch_size: int = 16, max_len: int = 64) -> float:
    """Mean next-token cross-entropy (nats) over ``texts``, BOS predicted from nothing is not counted.

    Texts are right-padded, so causal attention never lets a real token see a pad; pad targets are masked.
    """
    if not texts:
        raise CorpusError("no texts to measure the cross-entropy on")
    pad = model.tokenizer.pad_token_id if model.tokenizer is not None else 0
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            chunk = [model.to_tokens(t, truncate=True)[0, :max_len] for t in texts[i : i + batch_size]]
            width = max(len(c) for c in chunk)
            ids = torch.full((len(chunk), width), int(pad), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.bool)
            for r, c in enumerate(chunk):
                ids[r, : len(c)] = c
                mask[r, : len(c)] = True
            logits = model(ids.to(model.cfg.device))
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            tgt = ids[:, 1:].to(logp.device)
            nll = -logp.gather(-1, tgt[..., None])[..., 0]
            m = mask[:, 1:].to(logp.device)
            total += float(nll[m].double().sum())
            count += int(m.sum())
    return total / max(count, 1)


def ablation_matrix(
    model: HookedTransformer,
    vectors: Mapping[str, SteeringVector],
    texts: Mapping[str, Sequence[str]],
    *,
    batch_size: int = 16,
    max_len: int = 64,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """CE increase (nats/token) on each language's ``texts`` when each vector's direction is ablated.

    ``vectors``: ``{language: vector}`` (any operator: its direction is used with the ablate operator).
    Returns a DataFrame indexed by the ablated language, one column per evaluated language.
    """
    import pandas as pd

    from saesteer.steer.hooks import steering

    langs = list(texts)
    total = len(langs) * (len(vectors) + 1)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    clean = {}
    for lang in langs:
        clean[lang] = mean_token_ce(model, texts[lang], batch_size=batch_size, max_len=max_len)
        tick()
    rows = {}
    for src, vec in vectors.items():
        abl = vec.with_(operator="ablate", positions="all", clamp=None)
        row = {}
        with steering(model, (abl, 1.0)):
            for lang in langs:
                row[lang] = mean_token_ce(model, texts[lang], batch_size=batch_size, max_len=max_len) - clean[lang]
                tick()
        rows[src] = row
    df = pd.DataFrame.from_dict(rows, orient="index")[langs]
    df.index.name = "ablated"
    return df


def diagonal_dominance(matrix: pd.DataFrame) -> float:
    """Share of ablated languages whose own column has the largest CE increase in their row."""
    hits = [matrix.loc[lang].idxmax() == lang for lang in matrix.index if lang in matrix.columns]
    return sum(hits) / max(len(hits), 1)
