"""Shared fixtures: tiny random models and SAEs built in code (no downloads), and the real model for
tests marked ``integration`` (loaded once per session)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def tiny_model():
    from saesteer.models import load_model

    return load_model("tiny-random")


@pytest.fixture(scope="session")
def tiny_sae(tiny_model):
    from saesteer.saes import load_sae

    return load_sae("tiny", model=tiny_model)


@pytest.fixture(scope="session")
def gemma():
    """The real Gemma 3 270M as a HookedTransformer (dequantized into the user cache on first use)."""
    from saesteer.models import load_model

    return load_model("gemma-3-270m")


@pytest.fixture(scope="session")
def gemma_hf():
    """The real Gemma 3 270M as a transformers model + tokenizer (for generation)."""
    from saesteer.models import load_hf_model

    return load_hf_model("gemma-3-270m")


@pytest.fixture(scope="session")
def gemma_index(gemma, tmp_path_factory):
    """A small index of the real model + default SAE (4 languages x 40 sentences + random tokens)."""
    from dataclasses import replace

    from saesteer.corpus import RandomTokens, bundled_conditions
    from saesteer.index.build import BuildConfig, build_index
    from saesteer.saes import load_sae

    sae = load_sae("default", model=gemma)
    db = tmp_path_factory.mktemp("gemma_index") / "index.duckdb"
    conds = [replace(c, max_docs=40) for c in bundled_conditions("train", ["en", "fr", "de", "zh"])]
    res = build_index(db, gemma, sae, [*conds, RandomTokens("uniform", n_seqs=64, seq_len=32, seed=0)],
                      BuildConfig(feature_output=False))
    return db, res.build_id


@pytest.fixture(scope="session")
def tiny_language_index(tiny_model, tiny_sae, tmp_path_factory):
    """A tiny-model index of three bundled languages (8 sentences each) + random tokens, for the language
    evaluation and the recipe builds."""
    from dataclasses import replace

    from saesteer.corpus import RandomTokens, bundled_conditions
    from saesteer.index.build import BuildConfig, build_index

    db = tmp_path_factory.mktemp("tiny_language_index") / "index.duckdb"
    conds = [replace(c, max_docs=8) for c in bundled_conditions("train", ["en", "fr", "de"])]
    build_index(db, tiny_model, tiny_sae, [*conds, RandomTokens("uniform", n_seqs=8, seq_len=16, seed=0)], BuildConfig())
    return db


@pytest.fixture(scope="session")
def gemma_default_index(tmp_path_factory):
    """The default build of the bundled corpus for the real model + default SAE (12 languages + random
    tokens), merged from the export that ships in the package: what `saesteer quickstart` and
    `saesteer index build --bundled --random uniform` give, without computing it. ``(db, build_id)``."""
    from saesteer.index.db import IndexDb
    from saesteer.index.prebuilt import shipped_exports
    from saesteer.index.shards import merge_shards

    exports = shipped_exports()
    if not exports:
        pytest.skip("no shipped index in this installation")
    db = tmp_path_factory.mktemp("gemma_default_index") / "index.duckdb"
    merge_shards(exports, db)
    with IndexDb(db, read_only=True) as con:
        (build_id,) = con.execute("SELECT build_id FROM builds").fetchone()
    return db, str(build_id)


@pytest.fixture(scope="session")
def local_ray(tmp_path_factory):
    """One real local Ray cluster (2 CPUs) for every Ray test of the session; yields the path of a file
    that makes one worker process die when it exists (tests of Ray's retry)."""
    ray = pytest.importorskip("ray")
    from saesteer.index.ray_build import CRASH_ENV

    crash = tmp_path_factory.mktemp("crash") / "die-once"
    os.environ[CRASH_ENV] = str(crash)  # workers inherit it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 << 20)
    yield crash
    ray.shutdown()
    os.environ.pop(CRASH_ENV, None)
