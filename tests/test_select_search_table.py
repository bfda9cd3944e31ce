"""The search table (one row per feature, columns per condition) gives the results of the GROUP BY over
feature_stats, in one scan; it follows the build's conditions."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from saesteer.index.db import IndexDb
from saesteer.index.search_table import current_search_table, refresh_search_table
from saesteer.select.search import Search
from saesteer.testing.synthetic import (
    Planted,
    SyntheticSpec,
    agnostic_feature,
    agnostic_language_feature,
    bos_feature,
    build_synthetic_index,
    language_feature,
)

N = 600


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    path = tmp_path_factory.mktemp("wide") / "index.duckdb"
    planted = [language_feature(1, "fr", 0.3), agnostic_language_feature(2, "fr", 0.4), agnostic_feature(3, 0.2),
               bos_feature(4, 2e-3), Planted(5, {"*": 0.5}), language_feature(6, "de", 0.5)]
    # sparse background: many features miss rows in some conditions (the missing-row cases)
    build_synthetic_index(path, SyntheticSpec(n_features=N, planted=planted, freq_range=(1e-5, 3e-3), seed=3))
    return path


SEARCHES = {
    "default": lambda s: s.drop_random(),
    "quickstart": lambda s: s.drop_dead().drop_dense().drop_bos_only().drop_random(),
    "relative random": lambda s: s.drop_random(relative_to_target=0.5, max_mean=1.0).min_freq(1e-4),
    "min_ratio": lambda s: s.min_ratio(2.0).drop_dense(max_freq=0.01),
    **{f"rank {name}": (lambda s, n=name: s.drop_random().rank_by(n))
       for name in ("log_odds", "freq_diff", "freq_ratio", "nu", "entropy", "smd", "auroc")},
}


@pytest.mark.parametrize("name", list(SEARCHES))
@pytest.mark.parametrize("target,against", [("fr", "rest"), ("de", ["language=fr", "language=en"]), ("es", "all")])
def test_search_table_gives_the_group_by_results(index, name, target, against):
    make = SEARCHES[name]
    wide = make(Search(index, target, against=against)).top(40)
    rows = make(Search(index, target, against=against)).top(40)
    rows.search_table = False
    assert "FROM search_" in wide.compile().sql and "GROUP BY s.feature" not in wide.compile().sql.split("scored AS")[0]
    assert "FROM search_" not in rows.compile().sql
    a, b = wide.run(allow_empty=True), rows.run(allow_empty=True)
    assert a.features == b.features
    np.testing.assert_allclose(a.sql_scores, b.sql_scores, rtol=1e-9, atol=1e-12)
    if a.rank_by in ("log_odds_z", "log_odds", "freq_diff", "freq_ratio"):  # counts only: the same bits
        np.testing.assert_array_equal(a.sql_scores, b.sql_scores)
    assert a.dropped == b.dropped and a.n_universe == b.n_universe == N and a.n_kept == b.n_kept
    # the detail (read from the rows table vs feature_stats) and so every displayed column: identical
    for field in ("features", "n_active", "n_docs_active", "sum_act", "sum_sq", "max_act", "n_bos_active", "hist"):
        np.testing.assert_array_equal(getattr(a.detail, field), getattr(b.detail, field), err_msg=field)
    pd.testing.assert_frame_equal(a.df, b.df)


@pytest.mark.parametrize("target", ["fr", "de", "en"])
def test_default_search_reads_the_stored_score(index, target):
    """The default search (log_odds_z against the rest) reads the score stored at build time (z{i}) and no
    per-condition count columns: the same features and the same bits as computing it over feature_stats."""
    wide = Search(index, target).drop_random().top(30)
    sql = wide.compile().sql
    scan = sql.split("empty AS")[0]
    assert "AS stored_score" in scan and " + n" not in scan  # the stored score, no per-condition sums
    assert re.search(r"\bk\d+ AS k\d+", scan) and "r_max_freq" not in scan  # the stored random-filter verdict
    assert "$n_rows" in sql and "count(*) FILTER" not in sql  # and its step counts, taken at build time
    rows = Search(index, target).drop_random().top(30)
    rows.search_table = False
    a, b = wide.run(), rows.run()
    assert a.features == b.features and a.dropped == b.dropped
    np.testing.assert_array_equal(a.sql_scores, b.sql_scores)
    np.testing.assert_allclose(a.sql_scores, a.df["log_odds_z"].to_numpy(), rtol=1e-12)  # the numpy formula
    # another smoothing, or another contrast, is computed per search (not the stored column); so is a
    # random-token filter with other settings
    assert "stored_score" not in Search(index, target).rank_by("log_odds_z", alpha=1.0).compile().sql
    assert "stored_score" not in Search(index, target, against=["language=es"]).compile().sql
    other = Search(index, target).drop_random(relative_to_target=0.3).compile().sql.split("empty AS")[0]
    assert "r_max_freq" in other and not re.search(r"\bk\d+ AS k\d+", other)


def test_tables_of_an_older_layout_are_stale(index, monkeypatch):
    """Tables written by another layout version are not read (feature_stats is, until a build rewrites them)."""
    import saesteer.index.search_table as st

    with IndexDb(index, read_only=True) as con:
        build = con.execute("SELECT build_id FROM builds").fetchall()[0][0]
        assert current_search_table(con, build) is not None
        monkeypatch.setattr(st, "LAYOUT", st.LAYOUT + 1)
        assert current_search_table(con, build) is None
    assert "FROM search_" not in Search(index, "fr").drop_random().compile().sql


def test_auroc_without_refinement_reads_feature_stats(index):
    """The histograms are not in the search table: such a search falls back to the GROUP BY."""
    s = Search(index, "fr").drop_random().rank_by("auroc")
    s.refine = False
    assert "FROM search_" not in s.compile().sql


def test_search_table_follows_the_conditions(tmp_path, tiny_model, tiny_sae):
    from saesteer.corpus import Condition, bundled_conditions
    from saesteer.index.build import BuildConfig, build_index

    fr, de, zh = (Condition(c.label, c.source, 6) for c in bundled_conditions(languages=["fr", "de", "zh"]))
    db = tmp_path / "i.duckdb"
    cfg = BuildConfig(top_k=2, batch_size=4, feature_output=False)
    res = build_index(db, tiny_model, tiny_sae, [fr, de], cfg)
    with IndexDb(db, read_only=True) as con:
        first = current_search_table(con, res.build_id)
    assert first is not None and first.conditions == ("language=de", "language=fr")
    build_index(db, tiny_model, tiny_sae, [fr, de, zh], cfg)
    with IndexDb(db) as con:
        second = current_search_table(con, res.build_id)
        assert second is not None and second.name != first.name and len(second.conditions) == 3
        tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, 'search_')").fetchall()
        assert sorted(t for (t,) in tables) == sorted([second.name, second.rows, second.conds_table])  # stale: dropped
        assert refresh_search_table(con, res.build_id) == second.name  # current: nothing rewritten
    a = Search(db, "fr").top(10).run(allow_empty=True)
    plain = Search(db, "fr").top(10)
    plain.search_table = False
    b = plain.run(allow_empty=True)
    assert a.features == b.features and "FROM search_" in a.sql


def test_top_tokens_written_after_the_table_are_read_from_feature_output(index, tmp_path):
    """A search reads the top tokens from the search table, and from feature_output for the features the
    table has none for (feature_output written after it, e.g. a later `index build` with the logit lens)."""
    import shutil

    path = tmp_path / "copy.duckdb"
    shutil.copy(index, path)
    with IndexDb(path) as con:
        build = con.execute("SELECT build_id FROM builds").fetchall()[0][0]
        con.execute("CREATE TABLE saved AS SELECT * FROM feature_output")
        con.execute("DELETE FROM feature_output")
        from saesteer.index.search_table import drop_search_tables

        drop_search_tables(con, build)
        name = refresh_search_table(con, build)
        assert con.execute(f"SELECT count(top_tokens) FROM {name}").fetchall()[0][0] == 0
        con.execute("INSERT INTO feature_output SELECT * FROM saved")
        assert refresh_search_table(con, build) == name  # current: not rewritten, its tokens stay NULL
    a = Search(path, "fr").drop_random().top(10).run()
    plain = Search(path, "fr").drop_random().top(10)
    plain.search_table = False
    b = plain.run()
    assert "FROM search_" in a.sql and a.features == b.features
    assert list(a.df["top_tokens"]) == list(b.df["top_tokens"]) and all(len(t) == 5 for t in a.df["top_tokens"])
    fresh = Search(index, "fr").drop_random().top(10).run()  # the table's own tokens: the same lists
    assert list(fresh.df["top_tokens"]) == list(b.df["top_tokens"])


@pytest.fixture(scope="module")
def cut_index(index, tmp_path_factory):
    """The test index with cuts at rank 25 (1000 when shipped), so that they apply to these 600 features."""
    import shutil

    import saesteer.index.search_table as st

    path = tmp_path_factory.mktemp("cut") / "index.duckdb"
    shutil.copy(index, path)
    old, st.CUT_RANK = st.CUT_RANK, 25
    try:
        with IndexDb(path) as con:
            build = con.execute("SELECT build_id FROM builds").fetchall()[0][0]
            st.drop_search_tables(con, build)
            refresh_search_table(con, build)
    finally:
        st.CUT_RANK = old
    return path


@pytest.mark.parametrize("target", ["fr", "de", "es"])
def test_the_cut_gives_the_exact_top_k(cut_index, target):
    """A top k (k <= the cut's rank) over the stored score reads only the features at or above the target's
    cut; with at least k of them left it is the exact top k, else the search runs again without the cut.
    Either way: the GROUP BY path's features, scores and counts."""
    cases = {
        "default top 20": (lambda s: s.drop_random().top(20), True),
        "top 25 = the cut's rank": (lambda s: s.drop_random().top(25), True),
        "top 26 > the cut's rank": (lambda s: s.drop_random().top(26), False),
        "strict filters: fewer than k above the cut": (lambda s: s.drop_random().min_freq(2e-3).top(20), False),
    }
    with IndexDb(cut_index, read_only=True) as con:
        table = current_search_table(con, con.execute("SELECT build_id FROM builds").fetchall()[0][0])
        assert table is not None and table.conds and all(f.rank == 25 for f in table.conds.values())
    for name, (make, cut) in cases.items():
        a = make(Search(cut_index, target)).run(allow_empty=True)
        plain = make(Search(cut_index, target))
        plain.search_table = False
        b = plain.run(allow_empty=True)
        first = make(Search(cut_index, target)).compile().sql  # the first try: with the cut unless k > its rank
        assert ("$zcut" in first) == ("top 26" not in name), name
        assert ("$zcut" in a.sql) == cut, name  # what ran in the end (strict filters: again, without it)
        assert a.features == b.features and a.dropped == b.dropped and a.n_kept == b.n_kept, name
        np.testing.assert_array_equal(a.sql_scores, b.sql_scores)


@pytest.mark.parametrize(
    "layout",
    [
        {"random_kinds": ()},  # no random condition: the sum over every condition is the label's
        {"random_kinds": ("uniform", "unigram")},  # two: the random maximum is a greatest() of two
    ],
    ids=["no random", "two random"],
)
def test_other_condition_layouts_give_the_group_by_results(tmp_path, layout):
    """Builds whose stored sums coincide (every condition = the label's), or with several random conditions."""
    path = tmp_path / "index.duckdb"
    build_synthetic_index(path, SyntheticSpec(n_features=300, planted=[language_feature(1, "fr", 0.3)],
                                              freq_range=(1e-5, 3e-3), seed=5, **layout))
    searches = {
        "dead, dense, bos": lambda s: s.drop_dead().drop_dense().drop_bos_only(),
        "all": lambda s: s.drop_dead().min_ratio(1.5),
        **({"default": lambda s: s.drop_random(), "quickstart": SEARCHES["quickstart"]} if layout["random_kinds"] else {}),
    }
    for name, make in searches.items():
        for against in ("rest", "all"):
            wide = make(Search(path, "fr", against=against)).top(30)
            rows = make(Search(path, "fr", against=against)).top(30)
            rows.search_table = False
            a, b = wide.run(allow_empty=True), rows.run(allow_empty=True)
            assert "FROM search_" in a.sql, name
            assert a.features == b.features and a.dropped == b.dropped and a.n_kept == b.n_kept, name
            np.testing.assert_array_equal(a.sql_scores, b.sql_scores)
