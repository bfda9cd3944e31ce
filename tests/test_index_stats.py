"""The accumulators against a brute-force recomputation on synthetic chunks (ties, BOS, documents that
span chunks, excluded tokens)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saesteer.activations import ActivationChunk
from saesteer.index.stats import FeatureStatsAccumulator, default_hist_edges
from saesteer.index.topk import TopExamples, TopKAccumulator, context_windows

D_SAE, D_VOCAB = 37, 50


def _stream(seed: int, n_docs: int = 9, chunk: int = 7, levels: int = 4):
    """Synthetic chunks: each document starts with a BOS (token 2); activations take few distinct values
    so that ties are common; token 0 is 'special' (not counted, not BOS)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_docs):
        length = int(rng.integers(1, 12))
        for p in range(length):
            tok = 2 if p == 0 else int(rng.integers(0, D_VOCAB))
            tok = 3 if tok == 2 and p > 0 else tok
            acts = rng.integers(0, levels, D_SAE) * (rng.random(D_SAE) < 0.3) * 0.75
            rows.append((100 + 3 * d, d, p, tok, acts))
    chunks = []
    for s in range(0, len(rows), chunk):
        part = rows[s : s + chunk]
        tok = torch.tensor([r[3] for r in part])
        chunks.append(
            ActivationChunk(
                acts=torch.tensor(np.stack([r[4] for r in part]), dtype=torch.float32),
                doc_ids=torch.tensor([r[0] for r in part]),
                doc_seq=torch.tensor([r[1] for r in part]),
                positions=torch.tensor([r[2] for r in part]),
                token_ids=tok,
                counted=(tok != 2) & (tok != 0),
                is_bos=tok == 2,
            )
        )
    return chunks


def _concat(chunks):
    return ActivationChunk(*(torch.cat([getattr(c, f) for c in chunks]) for f in ActivationChunk._fields))


@pytest.mark.parametrize("threshold", [0.0, 0.8])
def test_stats_equal_brute_force(threshold):
    chunks = _stream(0)
    edges = default_hist_edges(-1, 1, 2)
    acc = FeatureStatsAccumulator(D_SAE, D_VOCAB, threshold=threshold, hist_edges=edges)
    for c in chunks:
        acc.update(c)
    got = acc.result()
    allc = _concat(chunks)
    a = allc.acts.numpy().astype(np.float64)
    counted = allc.counted.numpy()
    ac = a[counted]
    if threshold > 0:  # activations at or below the threshold count as 0 in every statistic
        ac = np.where(ac > threshold, ac, 0.0)
    assert got.n_tokens == counted.sum()
    assert got.n_bos == allc.is_bos.sum().item()
    np.testing.assert_array_equal(got.n_active, (ac > threshold).sum(0))
    np.testing.assert_allclose(got.sum_act, ac.sum(0), rtol=1e-12)
    np.testing.assert_allclose(got.sum_sq, (ac**2).sum(0), rtol=1e-12)
    np.testing.assert_array_equal(got.max_act, np.maximum(ac.max(0), 0))
    docs = allc.doc_ids.numpy()[counted]
    want_docs = [len(set(docs[ac[:, f] > threshold])) for f in range(D_SAE)]
    np.testing.assert_array_equal(got.n_docs_active, want_docs)
    np.testing.assert_array_equal(got.n_bos_active, (a[allc.is_bos.numpy()] > threshold).sum(0))
    bins = np.clip(np.searchsorted(edges, ac, side="right") - 1, 0, len(edges) - 2)
    for f in range(D_SAE):
        pos = ac[:, f] > 0
        np.testing.assert_array_equal(got.hist[f], np.bincount(bins[pos, f], minlength=len(edges) - 1))
    np.testing.assert_array_equal(
        got.token_counts, np.bincount(allc.token_ids.numpy()[counted], minlength=D_VOCAB)
    )
    assert got.hist.sum() == (ac > 0).sum()
    assert set(got.rows()) == {f for f in range(D_SAE) if (ac[:, f] != 0).any() or got.n_bos_active[f] > 0}


@pytest.mark.parametrize(("k", "chunk"), [(3, 5), (5, 1), (40, 9)])
def test_topk_equals_sorted_brute_force_with_ties(k, chunk):
    chunks = _stream(1, n_docs=12, chunk=chunk, levels=3)
    top = TopKAccumulator(D_SAE, k)
    from saesteer.index.stats import counted_nonzeros

    for c in chunks:
        top.update(c, counted_nonzeros(c))
    got = top.result()
    allc = _concat(chunks)
    a, counted = allc.acts.numpy(), allc.counted.numpy()
    n_ties = 0
    for f in range(D_SAE):
        cand = sorted(
            (-float(a[i, f]), int(allc.doc_ids[i]), int(allc.positions[i]))
            for i in range(len(a))
            if counted[i] and a[i, f] > 0
        )
        n_ties += len(cand) - len({c[0] for c in cand})
        sel = got.feature == f
        mine = list(zip(-got.activation[sel].astype(float), got.doc_id[sel], got.position[sel], strict=True))
        assert mine == cand[:k], f
        assert list(got.rank[sel]) == list(range(len(mine)))
    assert n_ties > 0  # the fixture really exercises tie-breaking


def test_context_windows_clip_to_document():
    top = TopExamples(
        feature=np.array([0, 0, 1]),
        rank=np.array([0, 1, 0]),
        activation=np.ones(3, np.float32),
        doc_id=np.array([5, 9, 9]),
        position=np.array([0, 4, 2]),
    )
    docs = {5: np.arange(10, 13), 9: np.arange(20, 25)}
    offsets, ids, ctx_pos = context_windows(top, docs, window=2)
    windows = [list(ids[offsets[i] : offsets[i + 1]]) for i in range(3)]
    assert windows == [[10, 11, 12], [22, 23, 24], [20, 21, 22, 23, 24]]
    assert list(ctx_pos) == [0, 2, 2]
    assert [w[p] for w, p in zip(windows, ctx_pos, strict=True)] == [10, 24, 22]


def test_bad_accumulator_settings():
    from saesteer.errors import SaesteerError

    with pytest.raises(SaesteerError, match="threshold"):
        FeatureStatsAccumulator(4, 4, threshold=-1, hist_edges=[1.0, 2.0])
    with pytest.raises(SaesteerError, match="increasing"):
        FeatureStatsAccumulator(4, 4, hist_edges=[2.0, 1.0])
