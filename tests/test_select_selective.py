"""Selective features per condition (``MinRatio`` filter, ``selective_features``, ``features selective``)
on a synthetic index with planted features whose frequencies are exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from saesteer.cli.main import app
from saesteer.errors import SaesteerError, UnknownConditionError
from saesteer.index.db import IndexDb
from saesteer.select.search import Search
from saesteer.select.selective import SelectivityBar, selective_features
from saesteer.testing.synthetic import (
    Planted,
    SyntheticSpec,
    agnostic_language_feature,
    build_synthetic_index,
    language_feature,
)

FR_F, DE_F, ES_SHARED_F, EN_RANDOM_F = 1, 2, 3, 4
N = 256


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    path = tmp_path_factory.mktemp("selective") / "index.duckdb"
    planted = [
        language_feature(FR_F, "fr", 0.3),
        language_feature(DE_F, "de", 0.5),
        # fires on Spanish twice as often as on French: not 3x any other language
        Planted(ES_SHARED_F, {"language=es": 0.2, "language=fr": 0.1, "*": 0.0}),
        # English-only among the languages, but just as active on random tokens
        agnostic_language_feature(EN_RANDOM_F, "en", 0.4),
    ]
    # background frequencies stay below the 0.05 bar, so only planted features can pass it
    build_synthetic_index(
        path,
        SyntheticSpec(n_features=N, planted=planted, freq_range=(1e-4, 3e-2), selective_fraction=0.0, seed=3),
    )
    return path


def test_min_ratio_keeps_exactly_the_features_numpy_keeps(index):
    with IndexDb(index, read_only=True) as db:
        fs = db.fetch_df("SELECT feature, condition, n_active FROM feature_stats")
        conds = db.fetch_df("SELECT condition, n_tokens FROM conditions")
    n_tok = dict(zip(conds["condition"], conds["n_tokens"], strict=True))
    freq = {c: np.zeros(N) for c in n_tok}
    for f, c, n in fs.itertuples(index=False):
        freq[c][f] = n / n_tok[c]
    others = np.stack([freq[f"language={x}"] for x in ("en", "de", "es")]).max(0)
    fr = freq["language=fr"]
    expected = set(np.flatnonzero((fr > 0) & (fr >= 2.5 * others)).tolist())
    res = Search(index, "language=fr").min_ratio(2.5).top(N).run()
    assert set(res.features) == expected and FR_F in expected and ES_SHARED_F not in expected
    assert sum(res.dropped.values()) == N - len(expected) == N - res.n_kept
    assert res.dropped["target frequency < 2.5 x its largest contrast frequency"] > 0


def test_selective_features_per_language(index):
    t = selective_features(index)
    rows = {r.condition: r for r in t.rows}
    assert [r.condition for r in t.rows] == ["language=de", "language=en", "language=es", "language=fr"]
    assert (rows["language=fr"].n_selective, rows["language=fr"].feature) == (1, FR_F)
    assert (rows["language=de"].n_selective, rows["language=de"].feature) == (1, DE_F)
    assert rows["language=fr"].f_target == pytest.approx(0.3, abs=0.02)
    assert rows["language=es"].n_selective == 0 and rows["language=es"].feature is None  # ratio 2 < 3
    assert rows["language=en"].n_selective == 0  # removed by the random-token filter
    assert t.n_selective_conditions == 2 and t.random == ["random=uniform"]
    # without the random filter the English feature counts; a lower ratio admits the Spanish one
    loose = selective_features(index, bar=SelectivityBar(ratio=1.5, use_random=False))
    got = {r.condition: r.feature for r in loose.rows}
    assert got == {
        "language=de": DE_F,
        "language=en": EN_RANDOM_F,
        "language=es": ES_SHARED_F,
        "language=fr": FR_F,
    }


def test_bad_bars_and_labels_are_refused(index):
    with pytest.raises(SaesteerError, match="ratio must be"):
        SelectivityBar(ratio=0.5)
    with pytest.raises(SaesteerError, match="min_freq must be"):
        SelectivityBar(min_freq=1.5)
    with pytest.raises(SaesteerError, match="use_random=False"):
        SelectivityBar(random_rel=None)
    with pytest.raises(UnknownConditionError, match=r"labelled 'style'.*labels: language"):
        selective_features(index, key="style")


def test_cli_selective_table_and_json(index):
    runner = CliRunner()
    r = runner.invoke(app, ["features", "selective", "--db", str(index)])
    assert r.exit_code == 0, r.output
    assert "2 of 4 conditions have a selective feature (none for en, es)" in " ".join(r.output.split())
    r = runner.invoke(
        app,
        ["features", "selective", "--db", str(index), "--ratio", "1.5", "--no-random", "--json"],
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["n_selective_conditions"] == 4 and out["random"] == []
    r = runner.invoke(
        app,
        [
            "features",
            "search",
            "--db",
            str(index),
            "-t",
            "es",
            "--min-ratio",
            "3",
            "--min-freq",
            "0.05",
            "--json",
        ],
    )
    assert r.exit_code != 0 or json.loads(r.output)["n_kept"] == 0


def test_training_report_counts_latents_with_the_same_bar():
    """``saesteer train-sae`` measures selectivity on probe sentences with the index's bar (no random tokens)."""
    from saesteer.train.quality import language_selectivity

    freq = np.array([[0.5, 0.07, 0.0], [0.1, 0.01, 0.2], [0.0, 0.02, 0.05]])
    a, b, c = language_selectivity(freq, ["a", "b", "c"])
    assert (a.latent, a.other_lang, a.n_selective, a.clear) == (0, "b", 2, True)
    assert a.score == pytest.approx(0.4)
    assert (b.latent, b.n_selective, b.clear) == (2, 1, False)  # 0.2 >= 3 x 0.05, margin only 0.15
    assert (c.latent, c.n_selective) == (1, 0)
