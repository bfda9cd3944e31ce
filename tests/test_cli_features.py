"""``saesteer features ...`` and ``saesteer sql`` on a synthetic index and the tiny model."""

from __future__ import annotations

import io
import json
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from saesteer.cli.main import app, main
from saesteer.errors import EmptyResultError, IndexDbError, UnknownConditionError, UnknownFeatureError
from saesteer.featureset import FeatureSet
from saesteer.testing.synthetic import (
    SyntheticSpec,
    agnostic_language_feature,
    build_synthetic_index,
    language_feature,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "index.duckdb"
    build_synthetic_index(
        path, SyntheticSpec(planted=[language_feature(1, "fr"), agnostic_language_feature(2, "fr")], seed=5)
    )
    return str(path)


def invoke(*args):
    return runner.invoke(app, list(args))


def test_search_table(db):
    r = invoke("features", "search", "--db", db, "--target", "language=fr", "--drop-random", "--top", "5")
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "features for language=fr vs 3 conditions, by log_odds_z" in text
    assert "random: frequency on random tokens > 0.2 x target frequency" in r.output
    assert "build synthetic (the only build)" in r.output


def test_search_json_csv_and_save(db, tmp_path):
    r = invoke("features", "search", "--db", db, "-t", "fr", "--drop-random", "--top", "3", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    feats = [f["feature"] for f in out["features"]]
    assert len(feats) == 3 and 1 in feats and 2 not in feats
    assert out["target"] == "language=fr" and out["dropped"]["dead: never active in this build"] >= 0
    r = invoke("features", "search", "--db", db, "-t", "fr", "--top", "4", "--rank-by", "auroc", "--csv")
    df = pd.read_csv(io.StringIO(r.output))
    assert len(df) == 4 and {"feature", "auroc", "freq[language=fr]"} <= set(df.columns)
    save = tmp_path / "fr.json"
    r = invoke(
        "features",
        "search",
        "--db",
        db,
        "-t",
        "fr",
        "--drop-random",
        "--top",
        "2",
        "--save",
        str(save),
        "--weights",
        "mean",
    )
    assert r.exit_code == 0, r.output
    fs = FeatureSet.load(save)
    assert len(fs) == 2 and fs.target == "language=fr" and fs.weights is not None


def test_search_errors(db):
    r = invoke("features", "search", "--db", db, "-t", "language=xx")
    assert isinstance(r.exception, UnknownConditionError)
    r = invoke("features", "search", "--db", db, "-t", "fr", "--min-freq", "0.99")
    assert isinstance(r.exception, EmptyResultError) and "target frequency < 0.99" in str(r.exception)


def test_search_with_output_score_and_sql(db):
    r = invoke(
        "features",
        "search",
        "--db",
        db,
        "-t",
        "fr",
        "--top",
        "3",
        "--output-score",
        "--rerank-output",
        "--model",
        "tiny-random",
        "--sae",
        "tiny",
        "--json",
        "--show-sql",
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    masses = [f["output_mass"] for f in out["features"]]
    assert masses == sorted(masses, reverse=True)


def test_show(db):
    r = invoke("features", "show", "1", "--db", db, "-n", "2")
    assert r.exit_code == 0, r.output
    assert "feature 1" in r.output and "language=fr" in r.output and "top examples" in r.output
    assert "top output tokens" in r.output
    r = invoke("features", "show", "1", "--db", db, "--json")
    out = json.loads(r.output)
    assert out["feature"] == 1 and len(out["stats"]) == 5 and len(out["examples"]) <= 10
    r = invoke("features", "show", "1", "--db", db, "--csv")
    df = pd.read_csv(io.StringIO(r.output))
    assert df.set_index("condition").loc["language=fr", "n_active"] == 1500
    r = invoke("features", "show", "4096", "--db", db)
    assert isinstance(r.exception, UnknownFeatureError)


def test_for_text_and_neighbors():
    r = invoke("features", "for-text", "Bonjour", "--model", "tiny-random", "--sae", "tiny", "--top", "2")
    assert r.exit_code == 0, r.output
    assert "top 2 features per token" in r.output
    r = invoke("features", "for-text", "Salut", "--model", "tiny-random", "--sae", "tiny", "--json")
    rows = json.loads(r.output)
    assert {row["token"] for row in rows} <= set("Salut") and rows[0]["position"] >= 1
    r = invoke(
        "features",
        "for-text",
        "Salut",
        "--model",
        "tiny-random",
        "--sae",
        "tiny",
        "--features",
        "3,5",
        "--csv",
    )
    df = pd.read_csv(io.StringIO(r.output))
    assert list(df.columns) == ["position", "token", "3", "5"] and len(df) == 5
    r = invoke("features", "neighbors", "5", "--model", "tiny-random", "--sae", "tiny", "--k", "3", "--csv")
    assert r.exit_code == 0, r.output
    df = pd.read_csv(io.StringIO(r.output))
    assert len(df) == 3 and 5 not in set(df["feature"]) and df["cosine"].is_monotonic_decreasing
    r = invoke("features", "neighbors", "999", "--model", "tiny-random", "--sae", "tiny")
    assert isinstance(r.exception, UnknownFeatureError)


def test_sql(db):
    r = invoke("sql", "SELECT condition, n_tokens FROM conditions ORDER BY condition", "--db", db, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0] == {"condition": "language=de", "n_tokens": 5000}
    r = invoke("sql", "SELECT feature FROM feature_stats", "--db", db, "--limit", "3")
    assert r.exit_code == 0 and "more rows not shown" in r.output
    r = invoke("sql", "DELETE FROM builds", "--db", db)
    assert isinstance(r.exception, IndexDbError) and "read-only" in str(r.exception)


def test_main_turns_errors_into_one_line(db, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["saesteer", "sql", "UPDATE builds SET top_k = 0", "--db", db])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: refused: `saesteer sql` is read-only") and "UPDATE" in err


def test_sparkline_and_compact_hists():
    from saesteer.cli.features import compact_hists, sparkline

    assert sparkline([0, 1, 2, 4]) == " ▃▅█"  # blank for 0, else round(v / max * 7) of ▁..█
    assert sparkline([0, 0]) == "  "
    edges = [float(10**i) for i in range(-3, 38)]  # 40 bins
    hists = [[0] * 40, [0] * 40]
    hists[0][5], hists[1][9] = 3, 7
    out, lo, hi = compact_hists(hists, edges, width=16)
    assert (lo, hi) == (edges[5], edges[10]) and out == [[3, 0, 0, 0, 0], [0, 0, 0, 0, 7]]
    wide = [[1] * 40]
    out, lo, hi = compact_hists(wide, edges, width=16)
    assert len(out[0]) <= 16 and sum(out[0]) == 40 and (lo, hi) == (edges[0], edges[40])
