"""SAE loading: sae-lens directories, the sparsify and dictionary_learning adapters, compatibility checks."""

from __future__ import annotations

import json

import pytest
import torch

from saesteer.errors import DimensionMismatchError, HookError, SaeLoadError
from saesteer.saes import check_compatible, load_sae
from saesteer.saes.adapters import ADAPTERS, SaeFormatAdapter, adapter_for
from saesteer.testing.tiny import make_tiny_sae


def test_adapters_satisfy_protocol():
    assert all(isinstance(a, SaeFormatAdapter) for a in ADAPTERS)


def test_saelens_dir_round_trip(tmp_path, tiny_model):
    sae = make_tiny_sae(seed=3)
    sae.save_model(tmp_path / "s")
    loaded = load_sae(tmp_path / "s", model=tiny_model)
    assert torch.equal(loaded.W_dec, sae.W_dec) and torch.equal(loaded.W_enc, sae.W_enc)
    assert loaded.saesteer_source.format == "saelens"
    x = torch.randn(5, 64)
    assert torch.equal(loaded.encode(x), sae.encode(x))


def test_sparsify_adapter(tmp_path):
    from safetensors.torch import save_file

    d_in, d_sae, k = 64, 128, 8
    g = torch.Generator().manual_seed(0)
    enc_w, enc_b = torch.randn(d_sae, d_in, generator=g), torch.randn(d_sae, generator=g)
    w_dec, b_dec = torch.randn(d_sae, d_in, generator=g), torch.randn(d_in, generator=g)
    (tmp_path / "cfg.json").write_text(json.dumps({"k": k, "num_latents": d_sae}))
    save_file({"encoder.weight": enc_w, "encoder.bias": enc_b, "W_dec": w_dec, "b_dec": b_dec}, str(tmp_path / "sae.safetensors"))
    sae = load_sae(tmp_path, hook_name="blocks.1.hook_resid_post")
    assert sae.saesteer_source.format == "sparsify"
    assert torch.equal(sae.W_dec, w_dec)
    x = torch.randn(4, d_in, generator=g)
    pre = torch.relu(x @ enc_w.T + enc_b)
    top = pre.topk(k, dim=-1)
    ref = torch.zeros_like(pre).scatter(-1, top.indices, top.values)
    torch.testing.assert_close(sae.encode(x), ref)


def test_dictionary_learning_adapter_transposes_decoder(tmp_path):
    d_in, d_sae = 64, 96
    g = torch.Generator().manual_seed(1)
    sd = {
        "encoder.weight": torch.randn(d_sae, d_in, generator=g),
        "encoder.bias": torch.randn(d_sae, generator=g),
        "decoder.weight": torch.randn(d_in, d_sae, generator=g),  # [d_in, d_sae]
        "bias": torch.randn(d_in, generator=g),
    }
    torch.save(sd, tmp_path / "ae.pt")
    (tmp_path / "config.json").write_text(json.dumps({"trainer": {"layer": 1, "lm_name": "tiny"}}))
    sae = load_sae(tmp_path)
    assert sae.saesteer_source.format == "dictionary_learning"
    assert sae.cfg.metadata.hook_name == "blocks.1.hook_resid_post"
    assert torch.equal(sae.W_dec, sd["decoder.weight"].T)
    x = torch.randn(3, d_in, generator=g)
    f = torch.relu((x - sd["bias"]) @ sd["encoder.weight"].T + sd["encoder.bias"])
    torch.testing.assert_close(sae.encode(x), f)
    torch.testing.assert_close(sae.decode(f), f @ sd["decoder.weight"].T + sd["bias"], rtol=1e-5, atol=1e-4)


def test_unknown_directory_layout(tmp_path):
    with pytest.raises(SaeLoadError, match="holds no SAE"):
        adapter_for(tmp_path)
    with pytest.raises(SaeLoadError, match="not found"):
        load_sae(tmp_path / "missing")


def test_dimension_mismatch(tiny_model):
    sae = make_tiny_sae(d_in=32)
    with pytest.raises(DimensionMismatchError, match=r"d_in=32 .* d_model=64"):
        check_compatible(tiny_model, sae)


def test_hook_typo(tiny_model, tiny_sae):
    with pytest.raises(HookError, match="Did you mean"):
        check_compatible(tiny_model, tiny_sae, "blocks.1.hook_resid_psot")


def test_registry_errors():
    with pytest.raises(SaeLoadError, match="unknown sae-lens release"):
        load_sae("gemma-scope-2-270m-pt-rez:layer_6")
    with pytest.raises(SaeLoadError, match="has no SAE"):
        load_sae("gemma-scope-2-270m-pt-res:not_an_id")
