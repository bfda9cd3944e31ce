"""Index-derived feature weights (mean_act, mean_diff): read by select and stored in the FeatureSet, so that
steering never opens the index; the FeatureSet's typed hand-off and its reader for version 1."""

from __future__ import annotations

import json

import pytest

from saesteer.errors import SteeringVectorError, UnknownConditionError
from saesteer.featureset import FeatureSet
from saesteer.select.weights import mean_diff_weights, weigh, with_index_weights
from saesteer.steer.build import from_feature_set
from saesteer.testing.tiny import tiny_feature_set

HOOK = "blocks.1.hook_resid_pre"


def _fs(**kw) -> FeatureSet:
    return tiny_feature_set(**kw)


_STATS = (
    "INSERT INTO feature_stats (build_id, condition, feature, n_active, n_docs_active, sum_act, sum_sq, max_act, "
    "n_bos_active, hist) VALUES ('b1', '{cond}', ?, 5, 2, ?, 1.0, 3.0, 0, [1])"
)


def _index(tmp_path):
    from saesteer.index.db import IndexDb

    path = tmp_path / "index.duckdb"
    with IndexDb(path) as db:
        db.execute(
            "INSERT INTO builds (build_id, model_id, model_hash, sae_id, sae_hash, hook_name, d_model, d_sae, dtype, "
            "tokenizer, threshold, hist_edges, top_k, context_window, exclude, max_seq_len, versions, settings) "
            "VALUES ('b1', 'tiny-random', 'h', 'tiny', 'h', ?, 64, 256, 'float32', 'byte', 0.0, [0.1, 1.0], 5, 3, "
            "['bos'], 64, '{}', '{}')",
            [HOOK],
        )
        for cond, n in (("language=fr", 1000), ("language=en", 500)):
            db.execute(
                "INSERT INTO conditions (build_id, condition, label_key, label_value, is_random, source, source_hash, "
                "n_docs, n_tokens, n_bos, completed_at) VALUES ('b1', ?, 'language', ?, false, '{}', 'x', 10, ?, 10, now())",
                [cond, cond.split("=")[1], n],
            )
        for feat, s in ((3, 250.0), (11, 40.0)):  # feature 7 never fired on fr: no row
            db.execute(_STATS.format(cond="language=fr"), [feat, s])
        db.execute(_STATS.format(cond="language=en"), [7, 99.0])
    return path


def test_mean_activation_weights_come_from_the_index(tmp_path, tiny_model, tiny_sae):
    db = _index(tmp_path)
    fs = with_index_weights(_fs(), db, "mean_act")
    assert (fs.weights, fs.weighting) == ([0.25, 0.0, 0.04], "mean_act")
    v = from_feature_set(fs, tiny_sae, tiny_model, weighting="mean_act", scale_mode="raw")
    assert v.provenance["weights"] == [0.25, 0.0, 0.04]
    assert v.provenance["weighting"] == "mean_act"
    with pytest.raises(UnknownConditionError, match="language=de"):
        with_index_weights(_fs(target="language=de"), db, "mean_act")


def test_mean_diff_weights_are_target_minus_contrast_mean(tmp_path):
    db = _index(tmp_path)
    # no contrast recorded: every other non-random condition of the build (en)
    fs = with_index_weights(_fs(), db, "mean_diff")
    assert fs.weights == pytest.approx([0.25, -99.0 / 500, 0.04], abs=1e-12)
    assert (fs.weighting, fs.contrast) == ("mean_diff", ["language=en"])
    assert mean_diff_weights(db, _fs()) == fs.weights
    # an explicit contrast list is honoured; a condition that is not in the build is named
    with pytest.raises(UnknownConditionError, match="language=xx"):
        with_index_weights(_fs(contrast=["language=en", "language=xx"]), db, "mean_diff")
    with pytest.raises(SteeringVectorError, match="build_id"):
        with_index_weights(_fs(build_id=None), db, "mean_diff")
    with pytest.raises(SteeringVectorError, match="pass db="):
        weigh(_fs(), "mean_diff", None)


def test_weigh_applies_the_auto_recipe_only_with_an_index(tmp_path):
    db = _index(tmp_path)
    assert weigh(_fs(), "auto", db).weighting == "mean_diff"
    assert weigh(_fs(), "auto", None) == _fs()  # no index to read
    assert weigh(_fs(build_id=None), "auto", db) == _fs(build_id=None)  # not from a build
    assert weigh(_fs(), "given", db) == _fs()
    assert weigh(_fs(), "auto", db) == weigh(_fs(), "mean_diff", db)


def test_featureset_round_trips_its_typed_fields(tmp_path):
    fs = _fs(weights=[1.0, 2.0, 3.0], weighting="mean_diff", contrast=["language=en"], random=["random=uniform"])
    data = json.loads(fs.save(tmp_path / "fs.json").read_text())
    assert data["version"] == 2 and data["contrast"] == ["language=en"] and data["random"] == ["random=uniform"]
    assert FeatureSet.load(tmp_path / "fs.json") == fs
    with pytest.raises(Exception, match="without weights"):
        _fs(weighting="mean_diff")


def test_featureset_version_1_is_read(tmp_path):
    """A version-1 file (saesteer <= issue 14) named its contrast only in an ``against=`` filter line."""
    v1 = {"kind": "saesteer.featureset", "version": 1, "features": [3, 7], "target": "language=fr",
          "weights": None, "scores": {}, "build_id": "b1", "model_id": "tiny-random", "sae_id": "tiny",
          "hook_name": HOOK, "filters": ["target=language=fr", "against=language=en,language=de", "top=2"]}
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    fs = FeatureSet.load(tmp_path / "v1.json")
    assert fs.contrast == ["language=en", "language=de"]
    assert (fs.weighting, fs.random, fs.filters) == ("given", [], v1["filters"])
    no_against = FeatureSet.from_dict({**v1, "filters": ["top=2"]})
    assert no_against.contrast == []
