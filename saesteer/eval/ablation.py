"""The LangFIR ablation test: ablate language L's features (or direction) and measure the cross-entropy
increase on every language's held-out text.

``matrix[L, M] = CE(text_M | L ablated) - CE(text_M)``, in nats per token. Features that are really about
language L hurt L's own text most: the diagonal should dominate.

Two ablations, chosen by the vector's operator:

- a **clamp** vector (SAE features, :func:`feature_ablation`): the SAE encodes the residual, L's features
  are set to 0, the SAE decodes and its error term is added back: only tokens where L's features fire
  change. This is "ablate language L's features".
- any other vector: **directional ablation**, its direction projected out of the residual at every token.
  On Gemma 3 270M a summed language direction has a large component shared by all languages, so
  projecting it out hurts every language (the diagonal need not dominate); the feature ablation does not
  have that problem.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from saesteer.errors import CorpusError
from saesteer.models.forward import pad_batch, token_nll

if TYPE_CHECKING:
    import pandas as pd
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from saesteer.featureset import FeatureSet
    from saesteer.steer.vector import SteeringVector

Progress = Callable[[int, int], None]


def mean_token_ce(model: HookedTransformer, texts: Sequence[str], *, batch_size: int = 16, max_len: int = 64) -> float:
    """Mean next-token cross-entropy (nats) over ``texts``, BOS predicted from nothing is not counted.

    Texts are right-padded, so causal attention never lets a real token see a pad; pad targets are masked.
    """
    if not texts:
        raise CorpusError("no texts to measure the cross-entropy on")
    return mean_token_ce_by_group(model, {"": texts}, batch_size=batch_size, max_len=max_len)[""]


def mean_token_ce_by_group(
    model: HookedTransformer, texts: Mapping[str, Sequence[str]], *, batch_size: int = 16, max_len: int = 64
) -> dict[str, float]:
    """:func:`mean_token_ce` of every group of texts (e.g. per language), computed together: all texts in
    length-sorted batches (fewer forward calls, less padding), the sums kept per group."""
    pad = model.tokenizer.pad_token_id if model.tokenizer is not None else 0
    items = [(g, model.to_tokens(t, truncate=True)[0, :max_len]) for g, ts in texts.items() for t in ts]
    order = sorted(range(len(items)), key=lambda i: len(items[i][1]))
    total = dict.fromkeys(texts, 0.0)
    count = dict.fromkeys(texts, 0)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            ids, mask = pad_batch([items[i][1] for i in rows], int(pad), mask_dtype=torch.bool)
            nll = token_nll(model(ids.to(model.cfg.device)), ids)
            m = mask[:, 1:].to(nll.device)
            for j, i in enumerate(rows):
                group = items[i][0]
                total[group] += float(nll[j][m[j]].double().sum())
                count[group] += int(m[j].sum())
    return {g: total[g] / max(count[g], 1) for g in texts}


def ablation_matrix(
    model: HookedTransformer,
    vectors: Mapping[str, SteeringVector],
    texts: Mapping[str, Sequence[str]],
    *,
    batch_size: int = 16,
    max_len: int = 64,
    progress: Progress | None = None,
    sae: Any = None,
) -> pd.DataFrame:
    """CE increase (nats/token) on each language's ``texts`` when each language's vector is ablated.

    ``vectors``: ``{language: vector}``. Clamp vectors (see :func:`feature_ablation`) are applied as they
    are, at strength 1, with ``sae``; any other vector's direction is projected out (the ablate operator).
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

    # every language's texts in one set of length-sorted batches per pass (clean, then each ablation)
    clean = mean_token_ce_by_group(model, texts, batch_size=batch_size, max_len=max_len)
    for _ in langs:
        tick()
    rows = {}
    for src, vec in vectors.items():
        if vec.operator == "clamp":
            abl, kwargs = vec, {"sae": sae}
        else:
            abl, kwargs = vec.with_(operator="ablate", positions="all", clamp=None), {}
        with steering(model, (abl, 1.0), **kwargs):
            ce = mean_token_ce_by_group(model, texts, batch_size=batch_size, max_len=max_len)
        rows[src] = {lang: ce[lang] - clean[lang] for lang in langs}
        for _ in langs:
            tick()
    df = pd.DataFrame.from_dict(rows, orient="index")[langs]
    df.index.name = "ablated"
    return df


def feature_ablation(fs: FeatureSet, sae: SAE, model: HookedTransformer, **kwargs: Any) -> SteeringVector:
    """A clamp-to-zero vector of ``fs``'s features: applied at strength 1 it removes their contribution
    (``W_dec[f] * a_f``) wherever they fire and leaves every other token as it was."""
    from saesteer.steer.build import from_feature_set

    return from_feature_set(fs, sae, model, operator="clamp", clamp_values=[0.0] * len(fs),
                            name=f"ablate-{fs.target}", **kwargs)


def diagonal_dominance(matrix: pd.DataFrame) -> float:
    """Share of ablated languages whose own column has the largest CE increase in their row."""
    hits = [matrix.loc[lang].idxmax() == lang for lang in matrix.index if lang in matrix.columns]
    return sum(hits) / max(len(hits), 1)
