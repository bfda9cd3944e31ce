"""The shipped default SAE: it loads offline with no extra step, has the promised shape and hook, carries its
report, and (integration) reconstructs Gemma 3 270M's activations on held-out text as the report says."""

from __future__ import annotations

import json

import pytest
import torch

from saesteer.models.hooks import parse_hook
from saesteer.saes.loading import default_sae_path, load_sae


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads((default_sae_path() / "report.json").read_text())


def test_default_sae_loads_offline_with_the_promised_shape(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sae = load_sae("default")
    assert sae.saesteer_source.kind == "default" and sae.saesteer_source.format == "saelens"
    assert sae.cfg.d_in == 640 and sae.cfg.d_sae >= 8 * 640
    assert sae.cfg.architecture() in ("topk", "batchtopk", "jumprelu")
    assert sae.cfg.metadata.model_name == "gemma-3-270m"
    spec = parse_hook(sae.cfg.metadata.hook_name)
    assert spec.kind == "resid_post" and 4 <= spec.layer <= 13  # a layer in the middle of the 18
    assert sae.W_dec.dtype == torch.float32 and tuple(sae.W_dec.shape) == (sae.cfg.d_sae, 640)
    x = torch.randn(2, 5, 640) * 100
    f = sae.encode(x)
    assert f.shape == (2, 5, sae.cfg.d_sae) and sae.decode(f).shape == (2, 5, 640)
    assert int((f != 0).sum(-1).max()) <= int(sae.cfg.k)


def test_report_is_shipped_next_to_the_sae(report):
    sae_dir = default_sae_path()
    cfg = json.loads((sae_dir / "cfg.json").read_text())
    assert report["sae"]["hook_name"] == cfg["metadata"]["hook_name"]
    assert report["sae"]["d_sae"] == cfg["d_sae"] and report["sae"]["d_in"] == cfg["d_in"] == 640
    assert (sae_dir / "REPORT.md").is_file()
    assert (sae_dir / "sae_weights.safetensors").stat().st_size < 30e6
    from safetensors import safe_open

    with safe_open(str(sae_dir / "sae_weights.safetensors"), framework="pt") as fh:
        dtypes = {str(fh.get_tensor(k).dtype) for k in fh.keys()}
    assert dtypes == {f"torch.{report['sae']['storage_dtype']}"}
    assert [c["hook"] for c in report["hook_comparison"] if c["chosen"]] == [report["sae"]["hook_name"]]
    assert len(report["hook_comparison"]) >= 2
    assert len(report["text"]["tokens_by_language"]["heldout"]) >= 10
    for s in report["text"]["sources"].values():
        assert s["package"] and s["version"] and s["licence"]


@pytest.mark.integration
def test_default_sae_reconstructs_heldout_gemma_activations(gemma, report):
    """Recompute the report's figures on the bundled corpus' held-out sentences (they ship with saesteer)."""
    import numpy as np
    from sae_lens.util import get_special_token_ids

    from saesteer.train.activation_cache import token_mask
    from saesteer.train.data import bundled_heldout_tokens
    from saesteer.train.quality import reconstruction_metrics

    sae = load_sae("default", model=gemma)
    hook = sae.cfg.metadata.hook_name
    expected = report["quality"]["bundled_heldout"]
    last_line = int(expected["lines"].split("-")[1])
    langs = tuple(report["config"]["langs"])
    tokens, _ = bundled_heldout_tokens(
        gemma.tokenizer, langs, report["text"]["context_size"], last_line=last_line
    )
    acts = []
    with torch.no_grad():
        for i in range(0, len(tokens), 8):
            _, cache = gemma.run_with_cache(
                torch.as_tensor(tokens[i : i + 8]),
                names_filter=[hook],
                stop_at_layer=parse_hook(hook).stop_at_layer,
            )
            acts.append(cache[hook].numpy())
    mask = token_mask(tokens, get_special_token_ids(gemma.tokenizer))
    m = reconstruction_metrics(sae, np.concatenate(acts), mask)
    assert m.n_tokens == expected["n_tokens"]
    assert m.explained_variance == pytest.approx(expected["explained_variance"], abs=0.01)
    assert m.l0 == pytest.approx(expected["l0"], abs=0.5)
