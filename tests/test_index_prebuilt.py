"""A build imports the conditions an export holds for the very same build (same build id, same data)."""

from __future__ import annotations

import json

from test_index_shards import assert_same_index

from saesteer.corpus import Condition, RandomTokens, bundled_conditions
from saesteer.index.build import BuildConfig, build_index
from saesteer.index.prebuilt import SHIPPED_DIR, reusable, shipped_exports
from saesteer.index.shards import export_build


def _conds(n_fr: int = 12):
    fr, zh = bundled_conditions(languages=["fr", "zh"])
    return [Condition(fr.label, fr.source, n_fr), Condition(zh.label, zh.source, 12),
            RandomTokens("uniform", n_seqs=6, seq_len=16, seed=0)]


def test_build_imports_identical_conditions_and_recomputes_the_rest(tmp_path, tiny_model, tiny_sae):
    cfg = BuildConfig(top_k=4, batch_size=4)
    ref = build_index(tmp_path / "ref.duckdb", tiny_model, tiny_sae, _conds(), cfg)
    export = export_build(tmp_path / "ref.duckdb", tmp_path / "export").out_dir
    labels = ["language=fr", "language=zh", "random=uniform"]

    # the same build: everything imported, nothing computed, and the index equals the computed one
    same = build_index(tmp_path / "same.duckdb", tiny_model, tiny_sae, _conds(), cfg, reuse=[export])
    assert same.build_id == ref.build_id
    assert sorted(same.imported) == labels and same.written == []
    assert_same_index(tmp_path / "ref.duckdb", tmp_path / "same.duckdb")

    # other data under one label (a different source hash): that condition is computed, the others imported
    part = build_index(tmp_path / "part.duckdb", tiny_model, tiny_sae, _conds(n_fr=5), cfg, reuse=[export])
    assert part.written == ["language=fr"] and sorted(part.imported) == ["language=zh", "random=uniform"]

    # another setting (another build id): nothing imported
    other = build_index(tmp_path / "other.duckdb", tiny_model, tiny_sae, _conds(), BuildConfig(top_k=3, batch_size=4),
                        reuse=[export])
    assert other.build_id != ref.build_id and other.imported == () and sorted(other.written) == labels

    # no exports given (--rebuild): computed
    fresh = build_index(tmp_path / "fresh.duckdb", tiny_model, tiny_sae, _conds(), cfg, reuse=())
    assert fresh.imported == () and sorted(fresh.written) == labels

    # resuming an index that has some conditions: those are kept, the rest imported
    build_index(tmp_path / "resume.duckdb", tiny_model, tiny_sae, _conds()[1:2], cfg)
    events = []
    again = build_index(tmp_path / "resume.duckdb", tiny_model, tiny_sae, _conds(), cfg, reuse=[export],
                        progress=events.append)
    assert again.written == [] and sorted(again.imported) == ["language=fr", "random=uniform"]
    assert sorted(again.skipped) == labels
    assert {(e.condition, e.status) for e in events} >= {("language=zh", "skipped"), ("language=fr", "imported")}
    assert_same_index(tmp_path / "ref.duckdb", tmp_path / "resume.duckdb")


def test_reusable_needs_the_same_build_id_and_source_hash(tmp_path, tiny_model, tiny_sae):
    build_index(tmp_path / "a.duckdb", tiny_model, tiny_sae, _conds(), BuildConfig(top_k=2, batch_size=4))
    export = export_build(tmp_path / "a.duckdb", tmp_path / "e").out_dir
    man = json.loads((export / "manifest.json").read_text())
    (c,) = [c for c in man["conditions"] if c["condition"] == "language=zh"]
    assert reusable([export], c["build_id"], {"language=zh": c["source_hash"]}) == {"language=zh": export}
    assert reusable([export], c["build_id"], {"language=zh": "other"}) == {}
    assert reusable([export], "another-build", {"language=zh": c["source_hash"]}) == {}
def test_the_shipped_index_is_a_complete_export_of_the_default_build():
    (export,) = shipped_exports()
    assert export.parts[-2:] == SHIPPED_DIR
    man = json.loads((export / "manifest.json").read_text())
    assert len(man["build_ids"]) == 1
    conds = {c["condition"] for c in man["conditions"]}
    assert conds == {f"language={lang}" for lang in ("en", "fr", "de", "es", "it", "pt", "nl", "pl", "ru", "tr", "id", "zh")} | {"random=uniform"}
    assert all(c["shard"]["count"] == 1 for c in man["conditions"])


def test_the_shipped_index_was_built_with_the_shipped_default_sae():
    """A retrained default SAE changes the build id: the export must be regenerated (scripts/ship_prebuilt.py)."""
    import pyarrow.parquet as pq

    from saesteer.saes import load_sae
    from saesteer.saes.loading import sae_source

    (export,) = shipped_exports()
    (row,) = pq.read_table(export / "builds.parquet").to_pylist()
    assert row["sae_hash"] == sae_source(load_sae("default")).weights_hash
    assert row["hook_name"] == "blocks.9.hook_resid_post" and row["model_id"] == "gemma-3-270m"
