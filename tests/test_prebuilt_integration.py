"""On the real Gemma 3 270M + default SAE: what the package ships equals what a fresh run computes."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration


def test_shipped_index_gives_the_search_results_of_a_fresh_build(gemma, tmp_path):
    from saesteer.corpus import bundled_conditions
    from saesteer.index.build import BuildConfig, build_index
    from saesteer.index.db import IndexDb
    from saesteer.index.prebuilt import shipped_exports
    from saesteer.saes import load_sae
    from saesteer.select.search import Search

    sae = load_sae("default", model=gemma)
    conds = bundled_conditions("train", ["fr", "de", "zh"])  # a small part of the shipped build, computed afresh
    fresh = build_index(tmp_path / "fresh.duckdb", gemma, sae, conds, BuildConfig(feature_output=False))
    shipped = build_index(tmp_path / "shipped.duckdb", gemma, sae, conds, BuildConfig(), reuse=shipped_exports())
    assert shipped.build_id == fresh.build_id
    assert sorted(shipped.imported) == sorted(c.label for c in conds) and shipped.written == []
    for target in ("fr", "de", "zh"):
        a = Search(tmp_path / "fresh.duckdb", target).drop_dead().drop_dense().drop_bos_only().top(50).run()
        b = Search(tmp_path / "shipped.duckdb", target).drop_dead().drop_dense().drop_bos_only().top(50).run()
        assert a.features == b.features, target
        np.testing.assert_allclose(a.sql_scores, b.sql_scores, rtol=1e-6)
    q = "SELECT condition, feature, n_active, n_bos_active FROM feature_stats ORDER BY condition, feature"
    with IndexDb(tmp_path / "fresh.duckdb", read_only=True) as x, IndexDb(tmp_path / "shipped.duckdb", read_only=True) as y:
        fx, fy = x.fetch_df(q), y.fetch_df(q)
    assert len(fx) == len(fy) > 0
    assert (fx.to_numpy() == fy.to_numpy()).all()  # the same features fire on the same tokens


def test_shipped_residual_stats_equal_a_fresh_computation(gemma):
    from saesteer.saes import load_sae
    from saesteer.steer import residual_stats
    from saesteer.steer.residuals import (
        bundled_texts,
        norm_settings,
        typical_residual_norm,
    )

    hook = str(load_sae("default", model=gemma).cfg.metadata.hook_name)
    shipped_norm = residual_stats.lookup(gemma, hook, "norm", norm_settings())
    assert shipped_norm is not None
    fresh = typical_residual_norm(gemma, hook, texts=bundled_texts("en", "train")[:48])
    assert shipped_norm == pytest.approx(fresh, rel=1e-5)


@pytest.mark.parametrize("lang", ["en", "fr", "zh"])
def test_shipped_mean_residuals_equal_a_fresh_computation(gemma, lang):
    """The shipped DiffMean means (float32) match a fresh float64 computation on the same texts, and they are
    the ones the default settings find."""
    from saesteer.corpus.parallel import corpus_texts
    from saesteer.saes import load_sae
    from saesteer.steer import residual_stats
    from saesteer.steer.residuals import mean_residual, mean_settings

    hook = str(load_sae("default", model=gemma).cfg.metadata.hook_name)
    texts = corpus_texts("bundled", lang, "train")[:200]
    shipped = residual_stats.shipped_mean(residual_stats.model_hash(gemma), hook, mean_settings(lang, 200),
                                          residual_stats.texts_sha256(texts))
    assert shipped is not None, "no shipped mean for the default inputs: run scripts/ship_prebuilt.py --stats-only"
    fresh, _ = mean_residual(gemma, [hook], texts)
    np.testing.assert_allclose(shipped.numpy(), fresh[hook].numpy(), rtol=1e-4, atol=1e-3 * float(fresh[hook].abs().mean()))
