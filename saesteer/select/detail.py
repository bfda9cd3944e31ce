"""Per-condition statistics of a few features, as dense numpy arrays (the input of the numpy scores).

A search ranks the whole index in SQL, then reads the full statistics of the returned features with one
small query (``select_detail.sql``) to show the frequency per condition and every score.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from saesteer.index.db import IndexDb, load_query
from saesteer.index.search_table import SearchTable


@dataclass
class DetailStats:
    """Dense statistics of ``F`` features over ``C`` conditions (zeros where a feature has no row).

    ``n_active, n_docs_active, sum_act, sum_sq, max_act, n_bos_active: [F, C]``; ``hist: [F, C, B]``;
    ``n_tokens, n_bos: [C]``. ``target`` / ``contrast`` / ``random`` index the conditions of a search.
    """

    features: np.ndarray
    conditions: list[str]
    n_tokens: np.ndarray
    n_bos: np.ndarray
    n_active: np.ndarray
    n_docs_active: np.ndarray
    sum_act: np.ndarray
    sum_sq: np.ndarray
    max_act: np.ndarray
    n_bos_active: np.ndarray
    hist: np.ndarray
    target: int = 0
    contrast: tuple[int, ...] = ()
    random: tuple[int, ...] = ()

    @property
    def freq(self) -> np.ndarray:
        """Activation frequency per condition. ``[F, C]``"""
        return self.n_active / np.maximum(self.n_tokens, 1)[None, :]

    @property
    def mean(self) -> np.ndarray:
        """Mean activation per counted token (inactive tokens count as 0). ``[F, C]``"""
        return self.sum_act / np.maximum(self.n_tokens, 1)[None, :]

    def t(self, field: str) -> np.ndarray:
        """The target's column of a ``[F, C]`` statistic. ``[F]`` (``[F, B]`` for ``hist``)"""
        return np.asarray(getattr(self, field)[:, self.target], dtype=np.float64)

    def pooled(self, field: str, which: Sequence[int] | None = None) -> np.ndarray:
        """A statistic summed over the contrast conditions (or ``which``). ``[F]`` (``[F, B]`` for ``hist``)"""
        idx = list(self.contrast if which is None else which)
        return np.asarray(getattr(self, field)[:, idx], dtype=np.float64).sum(axis=1)

    @property
    def t_tokens(self) -> float:
        return float(self.n_tokens[self.target])

    def tokens(self, which: Sequence[int] | None = None) -> float:
        idx = list(self.contrast if which is None else which)
        return float(self.n_tokens[idx].sum())


def fetch_detail(
    db: IndexDb,
    build_id: str,
    features: Sequence[int],
    conditions: Sequence[str],
    n_tokens: Sequence[int],
    n_bos: Sequence[int],
    n_bins: int,
    rows: SearchTable | None = None,
) -> DetailStats:
    """Read every ``feature_stats`` row of ``features`` in ``build_id`` into a :class:`DetailStats`: from the
    build's rows table (clustered by feature: a few row groups) when ``rows`` is its current search table,
    else from ``feature_stats``. The same values either way."""
    feats = np.asarray(list(features), dtype=np.int64)
    f_idx = {int(f): i for i, f in enumerate(feats)}
    c_idx = {c: i for i, c in enumerate(conditions)}
    shape = (len(feats), len(conditions))
    arrays = {
        k: np.zeros(shape)
        for k in ("n_active", "n_docs_active", "sum_act", "sum_sq", "max_act", "n_bos_active")
    }
    hist = np.zeros((*shape, n_bins))
    if len(feats):
        params = {"features": [int(f) for f in feats]}
        if rows is not None:
            if not re.fullmatch(r"search_[0-9a-f]{16}_[0-9a-f]{12}_rows", rows.rows):
                raise ValueError(f"not a rows table name: {rows.rows!r}")
            tbl = db.fetch_arrow(load_query("select_detail_rows").replace("{{table}}", rows.rows), params)
            to_here = np.array([c_idx.get(c, -1) for c in rows.conditions], dtype=np.int64)
            j = to_here[tbl.column("ci").to_numpy(zero_copy_only=False).astype(np.int64)]
        else:
            tbl = db.fetch_arrow(load_query("select_detail"), {"build": build_id, **params})
            j = np.array([c_idx.get(c, -1) for c in tbl.column("condition").to_pylist()], dtype=np.int64)
        i = np.array([f_idx[int(f)] for f in tbl.column("feature").to_pylist()], dtype=np.int64)
        ok = j >= 0
        for k, arr in arrays.items():
            arr[i[ok], j[ok]] = tbl.column(k).to_numpy(zero_copy_only=False).astype(np.float64)[ok]
        if tbl.num_rows:
            h = tbl.column("hist").combine_chunks()
            lens = np.diff(h.offsets.to_numpy())
            if np.all(lens == n_bins):
                vals = h.flatten().to_numpy(zero_copy_only=False).reshape(-1, n_bins)
            else:  # ragged (foreign data): pad or cut to n_bins
                vals = np.zeros((tbl.num_rows, n_bins))
                for r, row in enumerate(h.to_pylist()):
                    row = row or []
                    vals[r, : min(len(row), n_bins)] = row[:n_bins]
            hist[i[ok], j[ok]] = vals[ok]
    return DetailStats(
        features=feats,
        conditions=list(conditions),
        n_tokens=np.asarray(n_tokens, dtype=np.float64),
        n_bos=np.asarray(n_bos, dtype=np.float64),
        n_active=arrays["n_active"],
        n_docs_active=arrays["n_docs_active"],
        sum_act=arrays["sum_act"],
        sum_sq=arrays["sum_sq"],
        max_act=arrays["max_act"],
        n_bos_active=arrays["n_bos_active"],
        hist=hist,
    )


def stored_tokens(
    db: IndexDb, build_id: str, feats: list[int], table: SearchTable | None = None
) -> dict[int, list[str]]:
    """The stored logit-lens tokens of ``feats``: from the search table when current (a few row groups),
    from ``feature_output`` for the features it has none for."""
    out: dict[int, list[str]] = {}
    if table is not None and feats:
        if not re.fullmatch(r"search_[0-9a-f]{16}_[0-9a-f]{12}", table.name):
            raise ValueError(f"not a search table name: {table.name!r}")
        sql = load_query("select_search_tokens").replace("{{table}}", table.name)
        out = {int(f): list(t) for f, t in db.execute(sql, {"features": feats}).fetchall() if t is not None}
    rest = [f for f in feats if f not in out]
    if rest:
        rows = db.execute(load_query("select_feature_output"), {"build": build_id, "features": rest}).fetchall()
        out.update({int(r[0]): list(r[1]) for r in rows})
    return out
