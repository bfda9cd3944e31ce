"""One feature at a time: the report from the index, decoder neighbours, features on a text; raw SQL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saesteer.errors import IndexDbError, SaesteerError, UnknownFeatureError
from saesteer.index.db import IndexDb
from saesteer.select.inspect import context_text, feature_report, features_for_text, neighbors
from saesteer.select.rawsql import check_readonly_sql, run_readonly_sql
from saesteer.testing.synthetic import SyntheticSpec, bos_feature, build_synthetic_index, language_feature
from saesteer.testing.tiny import make_tiny_sae


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    path = tmp_path_factory.mktemp("inspect") / "index.duckdb"
    build_synthetic_index(
        path, SyntheticSpec(planted=[language_feature(1, "fr", 0.3), bos_feature(2, 2e-3)], seed=4)
    )
    return path


def test_feature_report_matches_the_rows(index):
    with IndexDb(index, read_only=True) as db:
        rep = feature_report(db, 1, n_examples=4)
        rows = db.fetch_df("SELECT condition, n_active, sum_act, hist FROM feature_stats WHERE feature = 1")
    stats = rep.stats.set_index("condition")
    assert list(stats.index) == ["language=de", "language=en", "language=es", "language=fr", "random=uniform"]
    fr = rows.set_index("condition").loc["language=fr"]
    assert stats.loc["language=fr", "n_active"] == fr["n_active"] == 1500
    assert stats.loc["language=fr", "freq"] == pytest.approx(0.3)
    assert stats.loc["language=fr", "mean"] == pytest.approx(fr["sum_act"] / 5000)
    assert stats.loc["language=fr", "mean_active"] == pytest.approx(fr["sum_act"] / 1500)
    assert stats.loc["language=fr", "hist"] == list(fr["hist"])
    assert stats.loc["language=de", "n_active"] == 0 and sum(stats.loc["language=de", "hist"]) == 0
    assert len(rep.examples) == 3  # the planted feature fires only on French: 3 stored examples
    assert list(rep.examples["activation"]) == sorted(rep.examples["activation"], reverse=True)
    assert len(rep.output_tokens) == 5 and not rep.never_active
    d = rep.to_dict()
    assert d["feature"] == 1 and len(d["stats"]) == 5 and len(d["examples"]) == 3


def test_feature_report_bos_and_errors(index):
    with IndexDb(index, read_only=True) as db:
        rep = feature_report(db, 2)
        assert (rep.stats["bos_freq"] == 1.0).all()
        with pytest.raises(UnknownFeatureError, match=r"256 features \(0..255\)"):
            feature_report(db, 256)
        with pytest.raises(UnknownFeatureError):
            feature_report(db, -1)


def test_context_text():
    assert context_text(["le", "chat", "noir"], 1) == ("le ", "chat", " noir")
    assert context_text([" le", " chat", " noir"], 1) == (" le", " chat", " noir")
    assert context_text(["\u2581le", "\u2581chat"], 0) == ("", " le", " chat")
    assert context_text(["a"], 5) == ("", "a", "")
    assert context_text([], 0) == ("", "", "")


def test_neighbors_finds_a_copied_decoder_row():
    sae = make_tiny_sae(seed=2)
    with torch.no_grad():
        sae.W_dec[9] = 3.0 * sae.W_dec[4]
        sae.W_dec[17] = -sae.W_dec[4]
    df = neighbors(sae, 4, k=5)
    assert df["feature"].iloc[0] == 9 and df["cosine"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert 4 not in set(df["feature"]) and 17 not in set(df["feature"])
    assert np.all(np.diff(df["cosine"].to_numpy()) <= 0) and len(df) == 5
    with pytest.raises(UnknownFeatureError):
        neighbors(sae, 256)
    with pytest.raises(SaesteerError):
        neighbors(sae, 3, k=0)


def test_features_for_text_equals_manual_encode(tiny_model, tiny_sae):
    res = features_for_text(tiny_model, tiny_sae, "Bonjour le monde")
    tokens = tiny_model.to_tokens("Bonjour le monde")
    _, cache = tiny_model.run_with_cache(tokens, names_filter=[tiny_sae.cfg.metadata.hook_name])
    expect = tiny_sae.encode(cache[tiny_sae.cfg.metadata.hook_name][0]).detach().numpy()
    np.testing.assert_allclose(res.acts, expect, rtol=1e-5, atol=1e-6)
    assert res.tokens[0] == "<bos>" and "".join(res.tokens[1:]) == "Bonjour le monde"
    top = res.top(3)
    assert 0 not in set(top["position"]) and (top.groupby("position").size() <= 3).all()
    best = top[top["position"] == 1].iloc[0]
    assert best["activation"] == pytest.approx(float(expect[1].max()), rel=1e-5)
    sub = features_for_text(tiny_model, tiny_sae, "Bonjour", features=[5, 3])
    np.testing.assert_allclose(
        sub.acts, features_for_text(tiny_model, tiny_sae, "Bonjour").acts[:, [5, 3]], rtol=1e-6
    )
    with pytest.raises(UnknownFeatureError):
        features_for_text(tiny_model, tiny_sae, "x", features=[999])
    with pytest.raises(SaesteerError, match="non-empty"):
        features_for_text(tiny_model, tiny_sae, "")


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("DELETE FROM builds", "DELETE"),
        ("INSERT INTO builds SELECT * FROM builds", "INSERT"),
        ("COPY builds TO 'x.csv'", "COPY"),
        ("CREATE TABLE t AS SELECT 1", "CREATE"),
        ("SET threads = 1", "SET"),
        ("ATTACH 'x.duckdb' AS x", "ATTACH"),
        ("DROP TABLE builds", "DROP"),
    ],
)
def test_raw_sql_refuses_writes(sql, kind):
    with pytest.raises(IndexDbError, match=f"read-only.*{kind}"):
        check_readonly_sql(sql)


def test_raw_sql_reads(index):
    df = run_readonly_sql(index, "SELECT condition, n_tokens FROM conditions ORDER BY condition")
    assert list(df["condition"])[:2] == ["language=de", "language=en"]
    assert check_readonly_sql("  WITH a AS (SELECT 1) SELECT * FROM a ").startswith("WITH")
    for bad in ("SELECT 1; SELECT 2", "", "SELEC nonsense"):
        with pytest.raises(IndexDbError):
            check_readonly_sql(bad)
    with pytest.raises(IndexDbError, match="the SQL failed: Catalog Error"):
        run_readonly_sql(index, "SELECT * FROM no_such_table")
    with IndexDb(index, read_only=True) as db:
        assert db.execute("SELECT count(*) FROM builds").fetchall()[0][0] == 1
