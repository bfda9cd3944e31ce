"""Model loading and hook validation on the tiny model; cache validation without the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from saesteer.errors import HookError, ModelLoadError
from saesteer.models import load_model, parse_hook, validate_hook
from saesteer.models.loading import _cache_valid, resolve_model


def test_tiny_model_shapes(tiny_model):
    assert tiny_model.cfg.n_layers == 2 and tiny_model.cfg.d_model == 64
    toks = tiny_model.to_tokens("héllo 你好")
    assert toks[0, 0].item() == tiny_model.tokenizer.bos_token_id
    assert tiny_model.to_string(toks[0, 1:]) == "héllo 你好"


def test_tiny_model_is_deterministic():
    a, b = load_model("tiny-random"), load_model("tiny-random")
    toks = a.to_tokens("deterministic")
    assert (a(toks) == b(toks)).all()
    c = load_model("tiny-random:1")
    assert not (a(toks) == c(toks)).all()


def test_parse_hook():
    spec = parse_hook("blocks.6.hook_resid_post")
    assert (spec.layer, spec.kind, spec.stop_at_layer) == (6, "resid_post", 7)
    with pytest.raises(HookError, match="residual-stream"):
        parse_hook("blocks.6.attn.hook_z")


def test_validate_hook_typo_suggests(tiny_model):
    with pytest.raises(HookError, match=r"Did you mean 'blocks.1.hook_resid_post'"):
        validate_hook(tiny_model, "blocks.1.hook_resid_pots")
    with pytest.raises(HookError, match=r"2 layers \(0..1\)"):
        validate_hook(tiny_model, "blocks.7.hook_resid_post")
    assert validate_hook(tiny_model, "blocks.0.hook_resid_pre").layer == 0


def test_local_dir_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        resolve_model(str(tmp_path))


def test_unknown_model_name():
    with pytest.raises(ModelLoadError, match="unknown model 'gpt-99-imaginary'"):
        load_model("gpt-99-imaginary")


def test_hub_model_offline_is_clear(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache"):
        load_model("gpt2")


def _fake_cache(d: Path, sha: str) -> None:
    import torch
    from safetensors.torch import save_file

    d.mkdir()
    save_file({"w": torch.zeros(2)}, str(d / "model.safetensors"))
    (d / "config.json").write_text("{}")
    files = {p.name: p.stat().st_size for p in d.iterdir()}
    (d / "saesteer-cache.json").write_text(json.dumps({"format": 1, "gguf_sha256": sha, "files": files}))


def test_cache_validation_detects_corruption(tmp_path):
    d = tmp_path / "cache"
    _fake_cache(d, "abc")
    assert _cache_valid(d, "abc")
    assert not _cache_valid(d, "other-sha")  # keyed by the GGUF hash
    with open(d / "model.safetensors", "r+b") as fh:  # truncate: a half-written file
        fh.truncate(10)
    assert not _cache_valid(d, "abc")
    (d / "saesteer-cache.json").unlink()
    assert not _cache_valid(d, "abc")
