"""Residual statistics computed once per model and hook: stored, found again, and only for the same key."""

from __future__ import annotations

import pytest
import torch

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


def _ship(path, mhash="m" * 64, hook=HOOK, n_texts=10, langs=("fr", "de"), value=7.0):
    from saesteer.corpus.parallel import corpus_texts

    settings = res.mean_settings("fr", n_texts)
    means = {lang: torch.full((64,), value + i) for i, lang in enumerate(langs)}
    shas = {lang: residual_stats.texts_sha256(corpus_texts("bundled", lang, "train")[:n_texts]) for lang in langs}
    residual_stats.write_shipped_means(path, mhash, hook, settings, means, shas)
    return shas


def test_shipped_means_are_used_only_for_identical_inputs(tmp_path, monkeypatch):
    path = tmp_path / "means.safetensors"
    shas = _ship(path)
    m, s10 = "m" * 64, res.mean_settings("fr", 10)
    got = residual_stats.shipped_mean(m, HOOK, s10, shas["fr"], path)
    assert got is not None and got.dtype == torch.float64 and bool((got == 7.0).all())
    assert bool((residual_stats.shipped_mean(m, HOOK, res.mean_settings("de", 10), shas["de"], path) == 8.0).all())
    refused = {
        "other weights": ("x" * 64, HOOK, s10, shas["fr"]),
        "no weights hash": (None, HOOK, s10, shas["fr"]),
        "other hook": (m, "blocks.0.hook_resid_post", s10, shas["fr"]),
        "other n_texts": (m, HOOK, res.mean_settings("fr", 11), shas["fr"]),
        "other max_len": (m, HOOK, res.mean_settings("fr", 10, max_len=32), shas["fr"]),
        "other corpus": (m, HOOK, res.mean_settings("fr", 10, corpus="udhr"), shas["fr"]),
        "other texts": (m, HOOK, s10, residual_stats.texts_sha256(["changed"])),
        "language not shipped": (m, HOOK, res.mean_settings("zh", 10), shas["fr"]),
    }
    for why, args in refused.items():
        assert residual_stats.shipped_mean(*args, path) is None, why
    assert residual_stats.shipped_mean(m, HOOK, s10, shas["fr"], tmp_path / "missing.safetensors") is None
    monkeypatch.setattr(residual_stats, "STATS_VERSION", residual_stats.STATS_VERSION + 1)
    assert residual_stats.shipped_mean(m, HOOK, s10, shas["fr"], path) is None  # another computation


def test_corpus_mean_uses_the_shipped_mean_after_the_user_cache(cacheable, tiny_model, monkeypatch):
    ships = cacheable / "prebuilt"
    mhash = residual_stats.model_hash(tiny_model)
    _ship(ships / "mean_residuals.safetensors", mhash=mhash)
    monkeypatch.setattr(residual_stats, "package_data", lambda *parts: cacheable.joinpath(*parts))
    monkeypatch.setattr(res, "mean_residual", _no_forward)
    assert bool((res.bundled_mean_residual(tiny_model, HOOK, "fr", n_texts=10) == 7.0).all())  # shipped, no forward
    with pytest.raises(AssertionError, match="recomputed"):  # not the shipped inputs: computed
        res.bundled_mean_residual(tiny_model, HOOK, "fr", n_texts=12)
    residual_stats.store(tiny_model, HOOK, "mean", res.mean_settings("fr", 10), [1.5] * 64)
    assert bool((res.bundled_mean_residual(tiny_model, HOOK, "fr", n_texts=10) == 1.5).all())  # computed here first
