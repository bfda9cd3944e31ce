"""Shards built separately, exported as Parquet and merged equal one single-machine build."""

from __future__ import annotations

import json

import numpy as np
import pytest

from saesteer.corpus import Condition, RandomTokens, bundled_conditions
from saesteer.errors import IndexDbError
from saesteer.index.build import BuildConfig, build_index
from saesteer.index.db import IndexDb
from saesteer.index.shards import export_build, merge_shards

KEYS = {
    "conditions": "condition",
    "feature_stats": "condition, feature",
    "top_examples": "condition, feature, rank",
    "token_counts": "condition, token_id",
    "feature_output": "feature, rank",
    "condition_signals": "condition, signal",
}
FLOATS = {"sum_act", "sum_sq"}


def _conds():
    langs = [Condition(c.label, c.source, 15) for c in bundled_conditions(languages=["fr", "zh"])]
    return [*langs, RandomTokens("uniform", n_seqs=9, seq_len=24, seed=2)]


def _table(db, table):
    drop = {"conditions": ["source", "started_at", "completed_at"]}.get(table, [])
    with IndexDb(db, read_only=True) as con:
        return con.fetch_df(f"SELECT * FROM {table} ORDER BY {KEYS[table]}").drop(columns=drop)


def assert_same_index(a, b):
    for table in KEYS:
        x, y = _table(a, table), _table(b, table)
        assert list(x.columns) == list(y.columns)
        assert len(x) == len(y) > 0, table
        for col in x.columns:
            if col in FLOATS:
                np.testing.assert_allclose(x[col], y[col], rtol=1e-9, err_msg=f"{table}.{col}")
            else:
                assert [_plain(v) for v in x[col]] == [_plain(v) for v in y[col]], f"{table}.{col}"


def _plain(v):
    return v.tolist() if isinstance(v, np.ndarray) else v


@pytest.fixture(scope="module")
def single_and_shards(tmp_path_factory, tiny_model, tiny_sae):
    root = tmp_path_factory.mktemp("shards")
    single = root / "single.duckdb"
    ref = build_index(single, tiny_model, tiny_sae, _conds(), BuildConfig(top_k=4, batch_size=5))
    exports = []
    for i in range(2):
        db = root / f"shard{i}.duckdb"
        res = build_index(
            db, tiny_model, tiny_sae, _conds(), BuildConfig(top_k=4, batch_size=3, shard=(i, 2))
        )
        assert res.build_id == ref.build_id  # the shard is not part of the build id
        exports.append(export_build(db, root / f"export{i}").out_dir)
    return root, single, exports


def test_two_merged_shards_equal_one_build(single_and_shards):
    root, single, exports = single_and_shards
    merged = root / "merged.duckdb"
    res = merge_shards(exports, merged)
    assert len(res.written) == 3 and not res.skipped
    with IndexDb(root / "shard0.duckdb", read_only=True) as con:
        shard_docs = con.execute("SELECT n_docs FROM conditions ORDER BY condition").fetchall()
    assert shard_docs == [(8,), (8,), (5,)]  # documents 0, 2, 4, ... of 15, 15 and 9
    assert_same_index(merged, single)
    again = merge_shards(exports, merged)
    assert not again.written and len(again.skipped) == 3  # idempotent: a rerun skips finished conditions
    with IndexDb(merged, read_only=True) as con:
        settings = json.loads(con.execute("SELECT settings FROM builds").fetchall()[0][0])
        source = json.loads(con.execute("SELECT source FROM conditions LIMIT 1").fetchall()[0][0])
    assert settings["shard"] is None and source["shard"] == {"index": 0, "count": 1, "merged_shards": 2}


def test_export_of_a_full_build_roundtrips(single_and_shards, tmp_path):
    _, single, _ = single_and_shards
    out = export_build(single, tmp_path / "exp")
    manifest = json.loads((out.out_dir / "manifest.json").read_text())
    assert manifest["rows"]["conditions"] == 3 and len(manifest["conditions"]) == 3
    merge_shards([out.out_dir], tmp_path / "copy.duckdb")
    assert_same_index(tmp_path / "copy.duckdb", single)
    with pytest.raises(IndexDbError, match="already exists"):
        export_build(single, tmp_path / "exp")
    with pytest.raises(IndexDbError, match="no build 'ffff'"):
        export_build(single, tmp_path / "exp2", build_id="ffff")


def test_merge_refuses_incomplete_or_duplicate_shards(single_and_shards, tmp_path):
    _, _, exports = single_and_shards
    with pytest.raises(IndexDbError, match=r"shard\(s\) 1/2 missing"):
        merge_shards([exports[0]], tmp_path / "m.duckdb")
    with pytest.raises(IndexDbError, match="shard 0/2 appears twice"):
        merge_shards([exports[0], exports[0], exports[1]], tmp_path / "m.duckdb")
    with pytest.raises(IndexDbError, match="not a saesteer index export"):
        merge_shards([tmp_path], tmp_path / "m.duckdb")
    assert not (tmp_path / "m.duckdb").exists()
