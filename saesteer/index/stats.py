"""Mergeable per-feature sufficient statistics for one condition.

For every feature ``f`` over the *counted* tokens of a condition (BOS, padding and special tokens are
excluded by default), where with a threshold ``t > 0`` an activation ``<= t`` counts as 0 everywhere (so
``n_active = 0`` implies ``sum_act = 0``: mean and frequency never disagree):

- ``n_active[f]``: tokens with activation > threshold;
- ``n_docs_active[f]``: documents with at least one such token;
- ``sum_act[f]``, ``sum_sq[f]``: sums of activations and of their squares (float64);
- ``max_act[f]``: ``max(0, max activation)``;
- ``hist[f, b]``: positive activations per log-spaced bin (values below the first edge go to bin 0,
  above the last edge to the last bin);
- ``n_bos_active[f]``: BOS positions where the feature is active (BOS itself is not counted).

All of them merge across shards by elementwise sum (max for ``max_act``), so shards of a build combine
into exactly the single-machine statistics. Updates are sparse: only the non-zero codes of a chunk are
touched (``index_add_`` / ``scatter_reduce_``), so a chunk costs O(non-zeros), not O(d_sae).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from saesteer.errors import SaesteerError

if TYPE_CHECKING:
    import pyarrow as pa
    import torch

    from saesteer.activations import ActivationChunk

_SEQ_BITS = 40


def default_hist_edges(lo_exp: float = -3.0, hi_exp: float = 4.0, per_decade: int = 5) -> list[float]:
    """Log-spaced bin edges from ``10**lo_exp`` to ``10**hi_exp`` (``per_decade`` bins per decade)."""
    n = round((hi_exp - lo_exp) * per_decade) + 1
    return [float(x) for x in np.logspace(lo_exp, hi_exp, n)]


class Nonzeros(NamedTuple):
    """The non-zero codes of a chunk on counted tokens: ``rows, feats: [m]`` int64, ``vals: [m]`` float32."""

    rows: torch.Tensor
    feats: torch.Tensor
    vals: torch.Tensor


def counted_nonzeros(chunk: ActivationChunk) -> Nonzeros:
    """Indices and values of ``chunk.acts != 0`` restricted to counted tokens."""
    rows, feats = (chunk.acts != 0).nonzero(as_tuple=True)
    if not bool(chunk.counted.all()):
        keep = chunk.counted[rows]
        rows, feats = rows[keep], feats[keep]
    return Nonzeros(rows, feats, chunk.acts[rows, feats])


class ConditionStats(NamedTuple):
    """The finished statistics of one condition (numpy arrays indexed by feature)."""

    n_tokens: int
    n_bos: int
    n_active: np.ndarray
    n_docs_active: np.ndarray
    sum_act: np.ndarray
    sum_sq: np.ndarray
    max_act: np.ndarray
    n_bos_active: np.ndarray
    hist: np.ndarray  # [d_sae, n_bins]
    token_counts: np.ndarray  # [d_vocab]

    def rows(self) -> np.ndarray:
        """Features that get a row: any non-zero code on a counted token, or active on a BOS."""
        return np.flatnonzero((self.sum_sq > 0) | (self.n_bos_active > 0) | (self.n_active > 0))

    def feature_table(self, build_id: str, condition: str) -> pa.Table:
        """The ``feature_stats`` rows (sparse: only :meth:`rows`) as an Arrow table."""
        import pyarrow as pa

        feats = self.rows()
        n_bins = self.hist.shape[1]
        hist = self.hist[feats].astype(np.int64).ravel()
        offsets = np.arange(0, (len(feats) + 1) * n_bins, n_bins, dtype=np.int32)
        return pa.table(
            {
                "build_id": constant_strings(build_id, len(feats)),
                "condition": constant_strings(condition, len(feats)),
                "feature": pa.array(feats.astype(np.int32)),
                "n_active": pa.array(self.n_active[feats]),
                "n_docs_active": pa.array(self.n_docs_active[feats]),
                "sum_act": pa.array(self.sum_act[feats]),
                "sum_sq": pa.array(self.sum_sq[feats]),
                "max_act": pa.array(self.max_act[feats].astype(np.float64)),
                "n_bos_active": pa.array(self.n_bos_active[feats]),
                "hist": pa.ListArray.from_arrays(pa.array(offsets), pa.array(hist)),
            }
        )

    def token_table(self, build_id: str, condition: str) -> pa.Table:
        """The ``token_counts`` rows (tokens that occurred) as an Arrow table."""
        import pyarrow as pa

        ids = np.flatnonzero(self.token_counts)
        return pa.table(
            {
                "build_id": constant_strings(build_id, len(ids)),
                "condition": constant_strings(condition, len(ids)),
                "token_id": pa.array(ids.astype(np.int32)),
                "count": pa.array(self.token_counts[ids].astype(np.int64)),
            }
        )


def constant_strings(value: str, n: int) -> Any:
    """An Arrow string array of ``n`` copies of ``value`` (vectorized)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.take(pa.array([value], type=pa.string()), pa.array(np.zeros(n, dtype=np.int32)))


class FeatureStatsAccumulator:
    """Accumulates :class:`ConditionStats` over the chunks of one condition (memory O(d_sae x n_bins))."""

    def __init__(
        self,
        d_sae: int,
        d_vocab: int,
        *,
        threshold: float = 0.0,
        hist_edges: list[float],
        device: Any = "cpu",
    ) -> None:
        import torch

        if threshold < 0:
            raise SaesteerError(f"threshold must be >= 0, got {threshold}")
        if len(hist_edges) < 2 or any(b <= a for a, b in itertools.pairwise(hist_edges)):
            raise SaesteerError("hist_edges must be at least two strictly increasing values")
        self.d_sae, self.threshold = d_sae, float(threshold)
        self.n_bins = len(hist_edges) - 1
        kw: dict[str, Any] = {"device": device}
        self.inner_edges = torch.tensor(hist_edges[1:-1], dtype=torch.float32, **kw)
        self.n_active = torch.zeros(d_sae, dtype=torch.int64, **kw)
        self.n_docs_active = torch.zeros(d_sae, dtype=torch.int64, **kw)
        self.sum_act = torch.zeros(d_sae, dtype=torch.float64, **kw)
        self.sum_sq = torch.zeros(d_sae, dtype=torch.float64, **kw)
        self.max_act = torch.zeros(d_sae, dtype=torch.float32, **kw)
        self.n_bos_active = torch.zeros(d_sae, dtype=torch.int64, **kw)
        self.hist = torch.zeros(d_sae * self.n_bins, dtype=torch.int64, **kw)
        self.last_seq = torch.full((d_sae,), -1, dtype=torch.int64, **kw)
        self.token_counts = torch.zeros(d_vocab, dtype=torch.int64, **kw)
        self.n_tokens = 0
        self.n_bos = 0

    def update(self, chunk: ActivationChunk, nz: Nonzeros | None = None) -> Nonzeros:
        """Add one chunk; returns its counted non-zeros (reused by the top-k collector)."""
        import torch

        nz = counted_nonzeros(chunk) if nz is None else nz
        if self.threshold > 0:  # activations at or below the threshold count as 0 in every statistic
            keep = nz.vals > self.threshold
            nz = Nonzeros(nz.rows[keep], nz.feats[keep], nz.vals[keep])
        counted_tok = chunk.token_ids[chunk.counted]
        self.n_tokens += int(counted_tok.numel())
        self.token_counts.index_add_(0, counted_tok, torch.ones_like(counted_tok))
        feats, vals = nz.feats, nz.vals
        v64 = vals.double()
        self.sum_act.index_add_(0, feats, v64)
        self.sum_sq.index_add_(0, feats, v64 * v64)
        self.max_act.scatter_reduce_(0, feats, vals, reduce="amax")
        pos = vals > 0
        if bool(pos.any()):
            bins = torch.bucketize(vals[pos], self.inner_edges, right=True)
            flat = feats[pos] * self.n_bins + bins
            self.hist.index_add_(0, flat, torch.ones_like(flat))
        active = vals > self.threshold
        if bool(active.any()):
            af = feats[active]
            self.n_active.index_add_(0, af, torch.ones_like(af))
            self._count_docs(af, chunk.doc_seq[nz.rows[active]])
        bos = chunk.is_bos
        if bool(bos.any()):
            self.n_bos += int(bos.sum())
            bos_active = (chunk.acts[bos] > self.threshold).sum(0)
            self.n_bos_active += bos_active.to(torch.int64)
        return nz

    def _count_docs(self, feats: torch.Tensor, seq: torch.Tensor) -> None:
        """Count distinct (feature, document) pairs; a document may continue from the previous chunk."""
        import torch

        keys = torch.unique((feats << _SEQ_BITS) | seq)
        uf, us = keys >> _SEQ_BITS, keys & ((1 << _SEQ_BITS) - 1)
        fresh = us != self.last_seq[uf]
        self.n_docs_active.index_add_(0, uf[fresh], torch.ones_like(uf[fresh]))
        self.last_seq.scatter_reduce_(0, uf, us, reduce="amax")

    def result(self) -> ConditionStats:
        return ConditionStats(
            n_tokens=self.n_tokens,
            n_bos=self.n_bos,
            n_active=self.n_active.cpu().numpy(),
            n_docs_active=self.n_docs_active.cpu().numpy(),
            sum_act=self.sum_act.cpu().numpy(),
            sum_sq=self.sum_sq.cpu().numpy(),
            max_act=self.max_act.cpu().numpy(),
            n_bos_active=self.n_bos_active.cpu().numpy(),
            hist=self.hist.view(self.d_sae, self.n_bins).cpu().numpy(),
            token_counts=self.token_counts.cpu().numpy(),
        )
