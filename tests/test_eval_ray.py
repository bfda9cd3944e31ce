"""``eval language --engine ray`` on a real local Ray cluster gives the rows of a local run."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

pytest.importorskip("ray")

from saesteer.cluster import ClusterError, RaySettings
from saesteer.corpus import RandomTokens, bundled_conditions, bundled_prompts
from saesteer.eval.language import LanguageEvalConfig, evaluate_language_steering
from saesteer.eval.ray_eval import evaluate_language_ray
from saesteer.index.build import BuildConfig, build_index
from saesteer.steer.generate import make_backend

CFG = LanguageEvalConfig(languages=("fr", "de", "en"), recipes=("sae:k=5", "diffmean", "prompting"),
                         strengths=(0.5, 2.0), n_prompts=3, calibration_prompts=3, max_new_tokens=6, batch_size=3,
                         diffmean_texts=10)


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory, tiny_model, tiny_sae):
    db = tmp_path_factory.mktemp("eval_ray") / "index.duckdb"
    conds = [replace(c, max_docs=20) for c in bundled_conditions("train", ["en", "fr", "de"])]
    build_index(db, tiny_model, tiny_sae, [*conds, RandomTokens("uniform", n_seqs=16, seq_len=16, seed=0)],
                BuildConfig(feature_output=False))
    return db


def test_ray_evaluation_equals_the_local_one(local_ray, tiny_index, tiny_model, tiny_sae):
    local = evaluate_language_steering(tiny_model, make_backend("tiny-random"), tiny_sae, tiny_index,
                                       bundled_prompts(), CFG)
    seen = []
    on_ray = evaluate_language_ray("tiny-random", "tiny", tiny_index, bundled_prompts(), CFG,
                                   RaySettings(workers=2), progress=lambda *a: seen.append(a))
    assert sorted(x[0] for x in seen) == ["de", "en", "fr"] and seen[-1][1:] == (3, 3)
    # 3 baseline rows + 3 languages x (2 vector recipes x 2 strengths + prompting) x 3 prompts
    assert len(on_ray.samples) == 3 + 3 * 5 * 3
    assert on_ray.samples["text"].tolist() == local.samples["text"].tolist()  # greedy: the same text
    pd.testing.assert_frame_equal(on_ray.samples, local.samples, rtol=1e-5)
    pd.testing.assert_frame_equal(on_ray.curves, local.curves, rtol=1e-5)
    pd.testing.assert_frame_equal(on_ray.windows, local.windows, rtol=1e-5)


def test_ray_evaluation_worker_cannot_load(local_ray, tiny_index, tmp_path):
    with pytest.raises(ClusterError, match=r"a worker cannot load the model or SAE .*nothing-here"):
        evaluate_language_ray(str(tmp_path / "nothing-here"), "tiny", tiny_index, bundled_prompts(), CFG,
                              RaySettings(workers=1))
