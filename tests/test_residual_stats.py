"""Residual statistics computed once per model and hook: stored, found again, and only for the same key."""

from __future__ import annotations

import pytest

from saesteer.steer import residual_stats
from saesteer.steer import residuals as res

HOOK = "blocks.1.hook_resid_pre"


@pytest.fixture
def cacheable(monkeypatch, tmp_path):
    """Treat the tiny model as one with a reliable weights hash, with a private user cache."""
    monkeypatch.setenv("SAESTEER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(residual_stats, "CACHEABLE_KINDS", ("tiny",))
    return tmp_path


def _no_forward(*args, **kwargs):
    raise AssertionError("recomputed although stored")


def test_norm_and_means_are_computed_once(cacheable, tiny_model, monkeypatch):
    norm = res.typical_residual_norm(tiny_model, HOOK)
    mean = res.bundled_mean_residual(tiny_model, HOOK, "fr", n_texts=10)
    assert list((cacheable / "residual_stats").glob("*.json"))
    fresh_norm = res.typical_residual_norm(tiny_model, HOOK, texts=res.bundled_texts("en", "train")[:48])
    fresh_mean, _ = res.mean_residual(tiny_model, [HOOK], res.bundled_texts("fr", "train")[:10])
    assert norm == fresh_norm and bool((mean == fresh_mean[HOOK]).all())
    monkeypatch.setattr(res, "iter_residuals", _no_forward)
    monkeypatch.setattr(res, "mean_residual", _no_forward)
    assert res.typical_residual_norm(tiny_model, HOOK) == norm  # float64 values survive the JSON exactly
    assert bool((res.bundled_mean_residual(tiny_model, HOOK, "fr", n_texts=10) == mean).all())
    with pytest.raises(AssertionError, match="recomputed"):  # other settings: another key
        res.bundled_mean_residual(tiny_model, HOOK, "fr", n_texts=11)
    with pytest.raises(AssertionError, match="recomputed"):
        res.typical_residual_norm(tiny_model, "blocks.0.hook_resid_post")
    with pytest.raises(AssertionError, match="recomputed"):  # explicit texts are never looked up
        res.typical_residual_norm(tiny_model, HOOK, texts=["some text"])


def test_models_without_a_weights_hash_are_not_stored(monkeypatch, tmp_path, tiny_model):
    monkeypatch.setenv("SAESTEER_CACHE_DIR", str(tmp_path))
    assert residual_stats.model_hash(tiny_model) is None  # tiny-random: not a cacheable kind
    res.typical_residual_norm(tiny_model, HOOK)
    assert not (tmp_path / "residual_stats").exists()


def test_a_stats_version_change_invalidates(cacheable, tiny_model, monkeypatch):
    res.typical_residual_norm(tiny_model, HOOK)
    monkeypatch.setattr(residual_stats, "STATS_VERSION", residual_stats.STATS_VERSION + 1)
    assert residual_stats.lookup(tiny_model, HOOK, "norm", res.norm_settings()) is None
