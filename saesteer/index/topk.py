"""The top-k activating examples per feature for one condition, and their token contexts.

Examples are ranked by activation (descending), ties broken by document id then position (ascending),
so the ranking is a total order: the top-k of a union of shards equals the top-k of a single build.
Only counted tokens whose activation exceeds the threshold qualify.

Memory is O(d_sae x k): the running best ``(activation, doc_id, position)`` per feature. Contexts are
filled in afterwards from a second (tokenize-only) pass over the documents the winners come from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from saesteer.index.stats import constant_strings

if TYPE_CHECKING:
    import pyarrow as pa
    import torch

    from saesteer.activations import ActivationChunk
    from saesteer.index.stats import Nonzeros


class TopExamples(NamedTuple):
    """Flat arrays, one entry per kept example, sorted by (feature, rank)."""

    feature: np.ndarray
    rank: np.ndarray
    activation: np.ndarray
    doc_id: np.ndarray
    position: np.ndarray

    def doc_ids(self) -> set[int]:
        return {int(d) for d in np.unique(self.doc_id)}


POS_BITS = 20  # positions < 2**20 and doc ids < 2**43 pack into one int64 tie-break key


def sort_order(f: torch.Tensor, v: torch.Tensor, d: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Indices ordering entries by feature (asc), activation (desc), doc id (asc), position (asc).

    ``v`` must be positive (active codes): a positive float32's bit pattern increases with its value,
    so ``(feature, -activation)`` packs exactly into one int64 key. The (doc, position) tie-break costs a
    second stable sort only when two entries of a feature have exactly the same activation.
    """
    import torch

    bits = v.contiguous().view(torch.int32).to(torch.int64)
    main = (f.to(torch.int64) << 31) | (0x7FFFFFFF - bits)
    order = torch.sort(main, stable=True).indices
    sm = main[order]
    if sm.numel() > 1 and bool((sm[1:] == sm[:-1]).any()):
        tie = (d << POS_BITS) | p
        order = torch.sort(tie, stable=True).indices
        order = order[torch.sort(main[order], stable=True).indices]
    return order


class TopKAccumulator:
    """Keeps the ``k`` strongest ``(activation, doc_id, position)`` per feature."""

    def __init__(self, d_sae: int, k: int, *, threshold: float = 0.0, device: Any = "cpu") -> None:
        import torch

        self.d_sae, self.k, self.threshold = d_sae, int(k), float(threshold)
        self.vals = torch.full((d_sae, max(1, self.k)), float("-inf"), dtype=torch.float32, device=device)
        self.docs = torch.full((d_sae, max(1, self.k)), -1, dtype=torch.int64, device=device)
        self.pos = torch.full((d_sae, max(1, self.k)), -1, dtype=torch.int64, device=device)

    def update(self, chunk: ActivationChunk, nz: Nonzeros) -> None:
        """Merge the chunk's active codes (``nz``: counted non-zeros of ``chunk``) into the running top-k."""
        import torch

        if self.k <= 0:
            return
        active = nz.vals > self.threshold
        f, v, r = nz.feats[active], nz.vals[active], nz.rows[active]
        cand = v >= self.vals[f, self.k - 1]  # ">=": a tie may still win on (doc_id, position)
        if not bool(cand.any()):
            return
        f, v, r = f[cand], v[cand], r[cand]
        d, p = chunk.doc_ids[r], chunk.positions[r]
        touched = torch.zeros(self.d_sae, dtype=torch.bool, device=f.device)
        touched[f] = True
        uf = touched.nonzero().squeeze(1)
        old_v, old_d, old_p = self.vals[uf].reshape(-1), self.docs[uf].reshape(-1), self.pos[uf].reshape(-1)
        old_f = uf.repeat_interleave(self.k)
        valid = old_d >= 0
        all_f = torch.cat([old_f[valid], f])
        all_v = torch.cat([old_v[valid], v])
        all_d = torch.cat([old_d[valid], d])
        all_p = torch.cat([old_p[valid], p])
        order = sort_order(all_f, all_v, all_d, all_p)
        sf, sv, sd, sp = all_f[order], all_v[order], all_d[order], all_p[order]
        _, counts = torch.unique_consecutive(sf, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(sf.numel(), device=sf.device) - starts.repeat_interleave(counts)
        keep = rank < self.k
        self.vals[uf] = float("-inf")
        self.docs[uf] = -1
        self.pos[uf] = -1
        kf, kr = sf[keep], rank[keep]
        self.vals[kf, kr] = sv[keep]
        self.docs[kf, kr] = sd[keep]
        self.pos[kf, kr] = sp[keep]

    def result(self) -> TopExamples:
        docs = self.docs.cpu().numpy()
        feat, rank = np.nonzero(docs >= 0)
        return TopExamples(
            feature=feat.astype(np.int32),
            rank=rank.astype(np.int16),
            activation=self.vals.cpu().numpy()[feat, rank].astype(np.float32),
            doc_id=docs[feat, rank].astype(np.int64),
            position=self.pos.cpu().numpy()[feat, rank].astype(np.int64),
        )


def context_windows(
    top: TopExamples,
    doc_tokens: dict[int, np.ndarray],
    window: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token windows around each example, clipped to its document: ``(offsets [n+1] int32,
    token_ids [total] int64, context_pos [n] int16)``; window ``i`` is ``token_ids[offsets[i]:offsets[i+1]]``."""
    ids = np.array(sorted(doc_tokens), dtype=np.int64)
    missing = np.setdiff1d(top.doc_id, ids)
    if len(missing):
        raise KeyError(f"context_windows: no tokens for document(s) {missing[:5].tolist()}")
    lens = np.array([len(doc_tokens[int(i)]) for i in ids], dtype=np.int64)
    starts = np.cumsum(lens) - lens
    flat = np.concatenate([doc_tokens[int(i)] for i in ids]) if len(ids) else np.zeros(0, dtype=np.int64)
    slot = np.searchsorted(ids, top.doc_id)
    lo = np.maximum(top.position - window, 0)
    hi = np.minimum(top.position + window + 1, lens[slot])
    n = hi - lo
    offsets = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
    gather = np.repeat(starts[slot] + lo - offsets[:-1], n) + np.arange(offsets[-1])
    return offsets.astype(np.int32), flat[gather].astype(np.int64), (top.position - lo).astype(np.int16)


def top_table(
    top: TopExamples,
    build_id: str,
    condition: str,
    doc_tokens: dict[int, np.ndarray],
    window: int,
    token_strings: Callable[[np.ndarray], pa.Array],
) -> pa.Table:
    """The ``top_examples`` rows as an Arrow table; ``token_strings(ids)`` maps token ids to strings."""
    import pyarrow as pa

    offsets, ctx_ids, ctx_pos = context_windows(top, doc_tokens, window)
    strings = token_strings(ctx_ids)
    return pa.table(
        {
            "build_id": constant_strings(build_id, len(top.feature)),
            "condition": constant_strings(condition, len(top.feature)),
            "feature": pa.array(top.feature),
            "rank": pa.array(top.rank),
            "activation": pa.array(top.activation),
            "doc_id": pa.array(top.doc_id),
            "position": pa.array(top.position.astype(np.int32)),
            "context": pa.ListArray.from_arrays(pa.array(offsets), strings),
            "context_pos": pa.array(ctx_pos),
        }
    )
