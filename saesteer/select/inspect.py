"""Look at single features: their statistics per condition and top examples (from the index), their
nearest neighbours by decoder cosine, and which features fire on a given text (with the model)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from saesteer.errors import IndexDbError, SaesteerError, UnknownFeatureError
from saesteer.index.db import IndexDb, load_query
from saesteer.index.search_table import current_search_table
from saesteer.select.catalog import BuildInfo, load_catalog
from saesteer.select.detail import fetch_detail

if TYPE_CHECKING:
    import pandas as pd
    from sae_lens import SAE
    from transformer_lens import HookedTransformer


@dataclass
class FeatureReport:
    """Everything the index knows about one feature in one build."""

    feature: int
    build: BuildInfo
    build_note: str
    stats: pd.DataFrame  # one row per condition
    hist_edges: tuple[float, ...]
    examples: pd.DataFrame  # strongest top examples across conditions
    output_tokens: list[tuple[str, float]] = field(default_factory=list)

    @property
    def never_active(self) -> bool:
        return bool((self.stats["n_active"] == 0).all() and (self.stats["n_bos_active"] == 0).all())

    def to_dict(self) -> dict[str, Any]:
        import json

        return {
            "feature": self.feature,
            "build_id": self.build.build_id,
            "build": self.build_note,
            "hist_edges": list(self.hist_edges),
            "stats": json.loads(self.stats.to_json(orient="records")),
            "examples": json.loads(self.examples.to_json(orient="records", force_ascii=False)),
            "output_tokens": [{"token": t, "logit": v} for t, v in self.output_tokens],
        }


def feature_report(
    db: IndexDb, feature: int, *, build_id: str | None = None, n_examples: int = 10
) -> FeatureReport:
    """Per-condition statistics, the ``n_examples`` strongest examples and the stored top output tokens."""
    import pandas as pd

    cat = load_catalog(db, build_id)
    f = cat.check_feature(feature)
    conds = cat.names
    if not conds:
        raise IndexDbError(
            f"build {cat.build.build_id} has no finished condition to show feature {f} in: its build was "
            "interrupted before the first condition finished; rerun the same `saesteer index build` command to resume"
        )
    info = [cat.conditions[c] for c in conds]
    table = current_search_table(db, cat.build.build_id)  # its rows table: the feature's rows in one row group
    d = fetch_detail(
        db,
        cat.build.build_id,
        [f],
        conds,
        [c.n_tokens for c in info],
        [c.n_bos for c in info],
        cat.build.n_bins,
        rows=table if table is not None and set(table.conditions) == set(conds) else None,
    )
    n_tok = np.maximum(d.n_tokens, 1)
    k = d.n_active[0]
    mean_active = np.divide(d.sum_act[0], k, out=np.zeros_like(k), where=k > 0)
    var_active = np.divide(d.sum_sq[0], k, out=np.zeros_like(k), where=k > 0) - mean_active**2
    stats = pd.DataFrame(
        {
            "condition": conds,
            "random": [c.is_random for c in info],
            "n_tokens": [c.n_tokens for c in info],
            "n_active": k.astype(np.int64),
            "freq": k / n_tok,
            "doc_freq": d.n_docs_active[0] / np.maximum([c.n_docs for c in info], 1),
            "mean": d.sum_act[0] / n_tok,
            "mean_active": mean_active,
            "std_active": np.sqrt(np.maximum(var_active, 0.0)),
            "max": d.max_act[0],
            "n_bos_active": d.n_bos_active[0].astype(np.int64),
            "bos_freq": d.n_bos_active[0] / np.maximum(d.n_bos, 1),
            "hist": [row.astype(np.int64).tolist() for row in d.hist[0]],
        }
    )
    params = {"build": cat.build.build_id, "feature": f, "n": int(n_examples)}
    examples = db.fetch_df(load_query("select_top_examples"), params)
    out = db.execute(
        load_query("select_feature_output"), {"build": cat.build.build_id, "features": [f]}
    ).fetchall()
    tokens = list(zip(out[0][1], [float(x) for x in out[0][3]], strict=True)) if out else []
    return FeatureReport(f, cat.build, cat.chosen, stats, cat.build.hist_edges, examples, tokens)


def context_text(context: Sequence[str], pos: int) -> tuple[str, str, str]:
    """``(before, token, after)`` strings of a stored context window. Token strings that carry their own
    spaces (decoded pieces) are joined as they are; bare words are joined with spaces."""
    toks = [str(t).replace("\u2581", " ") for t in context]
    pieces = any(t[:1].isspace() or t[-1:].isspace() for t in toks if t)
    sep = "" if pieces else " "
    pos = min(max(int(pos), 0), len(toks) - 1) if toks else 0
    if not toks:
        return "", "", ""
    before = sep.join(toks[:pos]) + (sep if pos else "")
    after = (sep if pos < len(toks) - 1 else "") + sep.join(toks[pos + 1 :])
    return before, toks[pos], after


def neighbors(sae: SAE, feature: int, k: int = 10) -> pd.DataFrame:
    """The ``k`` features whose decoder rows have the largest cosine with ``feature``'s (itself excluded)."""
    import pandas as pd
    import torch

    d_sae = int(sae.W_dec.shape[0])
    if not 0 <= int(feature) < d_sae:
        raise UnknownFeatureError(f"unknown feature {feature}: the SAE has {d_sae} features (0..{d_sae - 1})")
    if k < 1:
        raise SaesteerError(f"neighbors needs k >= 1, got {k}")
    with torch.inference_mode():
        w = sae.W_dec.detach().float()
        v = w[int(feature)]
        cos = (w @ v) / (w.norm(dim=1) * v.norm()).clamp_min(1e-12)
        cos[int(feature)] = -float("inf")
        top = cos.topk(min(k, d_sae - 1))
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(top.indices) + 1),
            "feature": top.indices.numpy().astype(np.int64),
            "cosine": top.values.numpy().astype(np.float64),
        }
    )


@dataclass
class TextActivations:
    """Feature activations of every token of a text. ``acts: [n_tokens, n_features]`` (a subset of
    features when ``features`` is set, else all of the SAE's)."""

    tokens: list[str]
    token_ids: list[int]
    acts: np.ndarray
    features: np.ndarray  # the feature id of each column of acts
    hook_name: str
    has_bos: bool = True  # position 0 is the BOS token

    def top(self, k: int = 5, *, include_bos: bool = False) -> pd.DataFrame:
        """Long format: the ``k`` strongest active features per token (position, token, feature, activation)."""
        import pandas as pd

        rows = []
        for pos, tok in enumerate(self.tokens):
            if pos == 0 and not include_bos and self.has_bos:
                continue
            a = self.acts[pos]
            order = np.argsort(-a, kind="stable")[:k]
            for j in order:
                if a[j] > 0:
                    rows.append(
                        {
                            "position": pos,
                            "token": tok,
                            "feature": int(self.features[j]),
                            "activation": float(a[j]),
                        }
                    )
        return pd.DataFrame(rows, columns=["position", "token", "feature", "activation"])


def features_for_text(
    model: HookedTransformer,
    sae: SAE,
    text: str,
    *,
    hook_name: str | None = None,
    features: Sequence[int] | None = None,
    prepend_bos: bool = True,
) -> TextActivations:
    """Run ``text`` up to the SAE's hook (never the whole model), encode it, and return the activations."""
    import torch

    from saesteer.models.forward import capture_residual
    from saesteer.saes import check_compatible

    if not text:
        raise SaesteerError("features for-text needs a non-empty text")
    spec = check_compatible(model, sae, hook_name)
    d_sae = int(sae.W_dec.shape[0])
    cols = np.arange(d_sae) if features is None else np.asarray([int(f) for f in features], dtype=np.int64)
    bad = [int(f) for f in cols if not 0 <= f < d_sae]
    if bad:
        raise UnknownFeatureError(f"unknown feature {bad[0]}: the SAE has {d_sae} features (0..{d_sae - 1})")
    tokens = model.to_tokens(text, prepend_bos=prepend_bos)
    with torch.inference_mode():
        x = capture_residual(model, tokens, spec)[0].to(dtype=sae.W_dec.dtype, device=sae.W_dec.device)
        acts = sae.encode(x)[:, torch.as_tensor(cols)].float().cpu().numpy()
    ids = [int(t) for t in tokens[0]]
    from saesteer.select.output import token_strings

    return TextActivations(token_strings(model, ids), ids, acts, cols, spec.name, prepend_bos)
