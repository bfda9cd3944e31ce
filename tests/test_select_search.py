"""Search on a synthetic index: planted features, SQL == numpy, filter bookkeeping, errors, hand-off."""

from __future__ import annotations

import numpy as np
import pytest

from saesteer.errors import EmptyResultError, IndexDbError, SaesteerError, UnknownConditionError
from saesteer.featureset import FeatureSet
from saesteer.index.db import IndexDb
from saesteer.select.ranking import SCORES
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

LANG_F, AGNOSTIC_LANG_F, AGNOSTIC_F, BOS_F, DENSE_F, GERMAN_F = 1, 2, 3, 4, 5, 6
N = 256


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    path = tmp_path_factory.mktemp("select") / "index.duckdb"
    planted = [
        language_feature(LANG_F, "fr", 0.3),
        agnostic_language_feature(
            AGNOSTIC_LANG_F, "fr", 0.4
        ),  # as selective among languages, but fires on random tokens
        agnostic_feature(AGNOSTIC_F, 0.2),
        bos_feature(BOS_F, 2e-3),
        Planted(DENSE_F, {"*": 0.5}),
        language_feature(GERMAN_F, "de", 0.5),
    ]
    build_synthetic_index(path, SyntheticSpec(n_features=N, planted=planted, seed=1))
    return path


def dense_stats(path):
    """Every feature_stats row of the index as dense [N, C] arrays, computed with pandas (the reference)."""
    with IndexDb(path, read_only=True) as db:
        fs = db.fetch_df("SELECT * FROM feature_stats")
        conds = db.fetch_df("SELECT * FROM conditions ORDER BY condition")
    names = list(conds["condition"])
    out = {}
    for col in ("n_active", "sum_act", "n_bos_active"):
        piv = fs.pivot(index="feature", columns="condition", values=col).reindex(
            index=range(N), columns=names
        )
        out[col] = piv.fillna(0).to_numpy()
    return names, conds, out


def all_kept(search):
    """The features passing every filter (top k = everything)."""
    return set(search.top(N).run(allow_empty=True).features)


def test_random_filter_drops_planted_agnostic_feature_keeps_language_feature(index):
    plain = Search(index, "language=fr").top(5).run()
    assert {LANG_F, AGNOSTIC_LANG_F} <= set(plain.features)  # both look French against the other languages
    res = Search(index, "language=fr").drop_random().top(5).run()
    assert LANG_F in res.features
    assert AGNOSTIC_LANG_F not in res.features
    key = "random: frequency on random tokens > 0.2 x target frequency"
    assert res.dropped[key] >= 1
    kept_without = all_kept(Search(index, "language=fr"))
    kept_with = all_kept(Search(index, "language=fr").drop_random())
    assert AGNOSTIC_LANG_F in kept_without - kept_with
    assert len(kept_without - kept_with) == res.dropped[key]
    assert res.dropped_random == res.dropped[key]  # counted by filter type, not by description text
    assert plain.dropped_random == 0
    two = Search(index, "language=fr").drop_random(max_freq=0.5, max_mean=10.0).drop_dense().top(5).run()
    assert two.dropped_random == sum(v for k, v in two.dropped.items() if k.startswith("random:"))


def test_random_filter_absolute_thresholds_match_pandas(index):
    names, conds, st = dense_stats(index)
    rnd = [j for j, r in enumerate(conds["is_random"]) if r]
    fr = names.index("language=fr")
    n_tok = conds["n_tokens"].to_numpy(dtype=float)
    f = st["n_active"] / n_tok
    m = st["sum_act"] / n_tok
    active_fr = st["n_active"][:, fr] > 0
    expect = set(np.flatnonzero(active_fr & (f[:, rnd].max(1) <= 0.01) & (m[:, rnd].max(1) <= 0.05)))
    got = all_kept(Search(index, "language=fr").drop_random(max_freq=0.01, max_mean=0.05))
    assert got == expect
    expect_rel = set(np.flatnonzero(active_fr & (f[:, rnd].max(1) <= 0.5 * f[:, fr])))
    assert all_kept(Search(index, "language=fr").drop_random(relative_to_target=0.5)) == expect_rel


def test_density_filters_match_pandas(index):
    names, conds, st = dense_stats(index)
    fr = names.index("language=fr")
    n_tok = conds["n_tokens"].to_numpy(dtype=float)
    nonrandom = [j for j, r in enumerate(conds["is_random"]) if not r]
    active_fr = st["n_active"][:, fr] > 0
    total = st["n_active"].sum(1)
    assert all_kept(Search(index, "fr").drop_dead(20)) == set(np.flatnonzero(active_fr & (total >= 20)))
    dense = (st["n_active"][:, nonrandom] / n_tok[nonrandom] > 0.1).all(1)
    kept = all_kept(Search(index, "fr").drop_dense(0.1))
    assert kept == set(np.flatnonzero(active_fr & ~dense))
    assert DENSE_F not in kept and LANG_F in kept
    bos_rate = st["n_bos_active"].sum(1) / conds["n_bos"].sum()
    tok_rate = total / n_tok.sum()
    bos_only = (st["n_bos_active"].sum(1) > 0) & (bos_rate >= 10 * tok_rate)
    kept = all_kept(Search(index, "fr").drop_bos_only())
    assert kept == set(np.flatnonzero(active_fr & ~bos_only))
    assert BOS_F not in kept and BOS_F in all_kept(Search(index, "fr"))
    assert all_kept(Search(index, "fr").min_freq(0.25)) == set(
        np.flatnonzero(st["n_active"][:, fr] / n_tok[fr] >= 0.25)
    )


@pytest.mark.parametrize("score", list(SCORES))
def test_sql_ranking_equals_numpy_formula(index, score):
    res = Search(index, "language=fr", against="rest").rank_by(score).top(15).run()
    np.testing.assert_allclose(res.df[score].to_numpy(), res.sql_scores, rtol=1e-9, atol=1e-12)
    vals = res.df[score].to_numpy()
    if SCORES[score].higher_is_better:
        assert np.all(np.diff(vals) <= 1e-12)
    else:
        assert np.all(np.diff(vals) >= -1e-12)


def test_entropy_keeps_features_peaking_on_target(index):
    res = Search(index, "language=fr").rank_by("entropy").top(10).run()
    assert GERMAN_F not in res.features
    assert (res.df["f_target"] >= res.df["f_contrast_max"]).all()
    assert res.df["entropy"].iloc[0] == pytest.approx(0.0)


def test_bookkeeping_counts_add_up_and_start_from_d_sae(index):
    res = Search(index, "fr").drop_random().drop_dead(5).drop_dense().drop_bos_only().top(3).run()
    assert res.n_universe == N
    assert res.n_universe - sum(res.dropped.values()) == res.n_kept
    assert list(res.dropped)[:2] == ["dead: never active in this build", "inactive on the target language=fr"]
    assert res.n_kept == len(
        all_kept(Search(index, "fr").drop_random().drop_dead(5).drop_dense().drop_bos_only())
    )
    assert len(res) == 3


def test_empty_result_names_the_filter(index):
    with pytest.raises(EmptyResultError, match=r"'target frequency < 0\.9'"):
        Search(index, "fr").drop_random().min_freq(0.9).run()
    res = Search(index, "fr").min_freq(0.9).run(allow_empty=True)
    assert len(res) == 0 and res.n_kept == 0


def test_values_are_bound_not_formatted(index):
    c = (
        Search(index, "fr", against=["language=de", "language=en"])
        .drop_random(max_freq=0.0123)
        .min_freq(0.000456)
        .compile()
    )
    for value in ("language=fr", "language=de", "0.0123", "0.000456", "synthetic", "random=uniform"):
        assert value not in c.sql
    assert c.params["target"] == "language=fr"
    assert 0.0123 in c.params.values() and 0.000456 in c.params.values()


def test_against_forms(index):
    rest = Search(index, "fr").run()
    assert rest.contrast == ["language=de", "language=en", "language=es"]
    assert "random=uniform" in rest.random
    two = Search(index, "fr", against="de,language=en").run()
    assert two.contrast == ["language=de", "language=en"]
    assert Search(index, "fr", against=["es"]).run().contrast == ["language=es"]
    with pytest.raises(UnknownConditionError, match="target"):
        Search(index, "fr", against=["fr", "de"]).run()


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("language=xx", "known conditions: language=de"),
        ("lang=fr", "no label 'lang'"),
        ("xx", "unknown condition"),
    ],
)
def test_unknown_conditions(index, target, match):
    with pytest.raises(UnknownConditionError, match=match):
        Search(index, target).run()


def test_unknown_contrast_and_random(index):
    with pytest.raises(UnknownConditionError, match="language=zz"):
        Search(index, "fr", against="language=zz").run()
    with pytest.raises(UnknownConditionError, match="not a random-token condition"):
        Search(index, "fr").drop_random(conditions=["language=de"]).run()


def test_build_selection(tmp_path):
    path = tmp_path / "two.duckdb"
    build_synthetic_index(path, SyntheticSpec(n_features=32, build_id="aaa111", seed=1))
    assert "the only build" in Search(path, "fr").run().build_note
    build_synthetic_index(path, SyntheticSpec(n_features=32, build_id="bbb222", seed=2))
    with IndexDb(path) as db:  # make the order of creation unambiguous
        db.execute("UPDATE builds SET created_at = created_at - INTERVAL 1 HOUR WHERE build_id = 'aaa111'")
    res = Search(path, "fr").run()
    assert res.build.build_id == "bbb222" and "most recent of 2" in res.build_note
    assert Search(path, "fr", build_id="aaa").run().build.build_id == "aaa111"
    with pytest.raises(IndexDbError, match="not in the index"):
        Search(path, "fr", build_id="zzz").run()


def test_results_as_arrow_and_featureset(index, tmp_path):
    res = Search(index, "fr").drop_random().top(4).run()
    tbl = res.arrow()
    assert tbl.num_rows == 4 and tbl.column("feature").to_pylist() == res.features
    fs = res.to_featureset()
    assert fs.features == res.features and fs.weights is None and fs.build_id == "synthetic"
    assert fs.hook_name == "blocks.1.hook_resid_pre" and any(f.startswith("drop_random") for f in fs.filters)
    assert fs.scores["log_odds"] == pytest.approx(list(res.df["log_odds"]))
    mean = res.to_featureset(weights="mean")
    assert mean.weights == pytest.approx(list(res.df["mean_target"]))
    by_score = res.to_featureset(weights="score")
    assert res.rank_by == "log_odds_z"
    assert by_score.weights == pytest.approx(list(res.df["log_odds_z"].clip(lower=0)))
    assert fs.weighting == "uniform" and (mean.weighting, by_score.weighting) == ("mean", "score")
    assert (fs.target, fs.contrast, fs.random) == (res.target, res.contrast, res.random) and fs.random
    loaded = FeatureSet.load(fs.save(tmp_path / "fs.json"))
    assert loaded == fs
    from saesteer.select.weights import with_index_weights

    md = res.to_featureset(weights="mean_diff")  # read from the index the search ran on
    assert md.weighting == "mean_diff" and md.weights == with_index_weights(fs, index, "mean_diff").weights
    assert md.weights is not None and len(md.weights) == len(fs) and md.weights != fs.resolved_weights
    with pytest.raises(SaesteerError, match="weights"):
        res.to_featureset(weights="bogus")  # type: ignore[arg-type]


def test_search_objects_are_immutable(index):
    base = Search(index, "fr").drop_random()
    a, b = base.top(2), base.rank_by("nu").top(3)
    assert len(a.run()) == 2 and len(b.run()) == 3
    assert base.k == 20 and base.rank.name == "log_odds_z" and len(base.filters) == 1


def test_result_frame_has_frequencies_per_condition(index):
    res = Search(index, "fr").top(3).run()
    row = res.df.set_index("feature").loc[LANG_F] if LANG_F in res.features else None
    assert row is not None
    assert row["freq[language=fr]"] == pytest.approx(0.3)
    assert row["freq[language=de]"] == 0.0 and row["freq[random=uniform]"] == 0.0
    assert row["f_target"] == pytest.approx(0.3) and len(row["top_tokens"]) == 5


def test_bad_parameters():
    with pytest.raises(SaesteerError):
        Search("x.duckdb", "fr").top(0)
    with pytest.raises(SaesteerError, match="unknown score"):
        Search("x.duckdb", "fr").rank_by("bogus")
    with pytest.raises(SaesteerError, match="max_freq"):
        Search("x.duckdb", "fr").drop_random(max_freq=2.0)


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexDbError, match="no index"):
        Search(tmp_path / "none.duckdb", "fr").run()


def test_agnostic_feature_is_not_selective(index):
    res = Search(index, "fr").top(N).run()
    row = res.df.set_index("feature").loc[AGNOSTIC_F]
    assert row["log_odds"] == pytest.approx(0.0, abs=1e-3)
    assert row["auroc"] == pytest.approx(0.5, abs=1e-3)
    assert row["f_random"] == pytest.approx(0.2)


def test_auroc_two_phase_equals_full_ranking(index):
    fast = Search(index, "fr").drop_random().rank_by("auroc").top(12)
    full = fast.rank_by("auroc")
    full.refine = False
    a, b = fast.run(), full.run()
    assert "lower_bound" in a.sql and "lower_bound" not in b.sql
    assert a.features == b.features and a.dropped == b.dropped
    np.testing.assert_allclose(a.sql_scores, b.sql_scores, rtol=1e-12)


def test_auroc_bounds_hold_for_every_feature(index):
    res = Search(index, "fr").rank_by("auroc").top(N).run()
    p_t = res.df["f_target"].to_numpy()
    p_c = res.df["f_contrast"].to_numpy()
    auroc = res.df["auroc"].to_numpy()
    tie = (1 - p_t) * (1 - p_c) / 2
    assert np.all(p_t * (1 - p_c) + tie <= auroc + 1e-12)
    assert np.all(auroc <= p_t + tie + 1e-12)
