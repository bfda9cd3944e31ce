"""Integration: the embedded Gemma 3 270M loads offline, matches transformers, and speaks French."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.integration


def test_logits_match_transformers(gemma, gemma_hf):
    hf, tok = gemma_hf
    text = "The weather in Lisbon is lovely today, and"
    ids = tok(text, return_tensors="pt").input_ids
    assert torch.equal(ids, gemma.to_tokens(text))
    with torch.no_grad():
        diff = (hf(ids).logits - gemma(ids)).abs().max().item()
    assert diff < 1e-4, diff


def test_residual_hooks_match_hidden_states(gemma, gemma_hf):
    hf, tok = gemma_hf
    ids = tok("Ein kurzer deutscher Satz.", return_tensors="pt").input_ids
    with torch.no_grad():
        hs = hf(ids, output_hidden_states=True).hidden_states
        _, cache = gemma.run_with_cache(ids, names_filter=lambda n: "resid" in n)
    for layer in (0, 6, 9):
        post = cache[f"blocks.{layer}.hook_resid_post"]
        rel = (hs[layer + 1] - post).norm() / post.norm()
        assert rel < 1e-5, (layer, rel)


def test_french_prompt_french_continuation(gemma_hf):
    import py3langid

    hf, tok = gemma_hf
    ids = tok("Bonjour, je m'appelle Marie et j'habite à Paris. Aujourd'hui", return_tensors="pt").input_ids
    with torch.no_grad():
        out = hf.generate(ids, max_new_tokens=20, do_sample=False)
    text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    lang, _ = py3langid.classify(text)
    assert lang == "fr", text


def test_cli_info_default_model():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "saesteer", "info", "--model", "gemma-3-270m", "--sae", "tiny", "--hook",
         "blocks.6.hook_resid_post", "--allow-other-hook", "--json"], capture_output=True, text=True, env=env, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"]["d_model"] == 640 and out["model"]["n_layers"] == 18
    assert out["model"]["kind"] == "embedded-gguf"
