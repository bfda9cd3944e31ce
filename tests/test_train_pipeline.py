"""The training pipeline end to end on the tiny model: text -> cached activations -> sae-lens runs -> hook
choice -> report -> an SAE saesteer loads; and the activation scaling folded into the saved weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_sources import make_text_tree

from saesteer.train.pipeline import TrainSaeConfig, run_train_sae

HOOKS = ("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")


def _cfg(tmp: Path, **kw) -> TrainSaeConfig:
    base = dict(
        cache_dir=tmp / "cache",
        out_dir=tmp / "out",
        text_dir=tmp / "text",
        model="tiny-random",
        langs=("en", "fr"),
        hooks=HOOKS,
        train_tokens_per_lang=512,
        heldout_tokens_per_lang=64,
        context_size=32,
        compare_tokens=512,
        final_tokens=1024,
        d_sae=128,
        k=8,
        batch_tokens=128,
        ce_seqs_per_lang=1,
        command="test",
    )
    base.update(kw)
    return TrainSaeConfig(**base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("train")
    make_text_tree(tmp / "text")
    cfg = _cfg(tmp)
    return cfg, run_train_sae(cfg, model=tiny_model)


def test_writes_a_loadable_sae_in_saelens_format(trained, tiny_model):
    from saesteer.saes import load_sae

    cfg, result = trained
    files = {p.name for p in cfg.out_dir.iterdir()}
    assert files == {"cfg.json", "sae_weights.safetensors", "REPORT.md", "report.json"}
    sae = load_sae(str(cfg.out_dir), model=tiny_model)
    assert (sae.cfg.d_in, sae.cfg.d_sae) == (64, 128)
    assert sae.cfg.metadata.hook_name == result.hook and result.hook in HOOKS
    assert sae.cfg.metadata.model_name == "tiny-random"
    assert sae.W_dec.dtype == torch.float32  # stored in half precision or not, it loads as float32
    x = torch.randn(5, 64)
    assert sae.encode(x).shape == (5, 128) and sae.decode(sae.encode(x)).shape == (5, 64)
    assert int((sae.encode(x) != 0).sum(-1).max()) <= 8


def test_report_has_every_figure(trained):
    cfg, result = trained
    r = json.loads((cfg.out_dir / "report.json").read_text())
    assert r == json.loads(json.dumps(result.report, default=str)) | {"timings_s": r["timings_s"]}
    assert r["sae"]["hook_name"] == result.hook and r["sae"]["k"] == 8
    assert [c["hook"] for c in r["hook_comparison"]] == list(HOOKS)
    assert sum(c["chosen"] for c in r["hook_comparison"]) == 1
    best = max(
        r["hook_comparison"],
        key=lambda c: (c["n_clear_languages"], round(c["mean_selectivity"], 3), c["explained_variance"]),
    )
    assert best["chosen"] and best["hook"] == result.hook
    for lang in ("en", "fr"):
        row = r["quality"]["per_language"][lang][r["quality"]["shipped"]]
        assert {
            "explained_variance",
            "nmse",
            "l0",
            "ce_clean",
            "ce_spliced",
            "ce_zero",
            "ce_recovered",
        } <= set(row)
        assert row["l0"] == pytest.approx(8.0)
    o = r["quality"]["overall"][r["quality"]["shipped"]]
    assert 0.0 <= o["dead_share"] <= 1.0 and 0.0 <= o["dense_share"] <= 1.0
    assert o["ce_recovered"] == pytest.approx(
        (o["ce_zero"] - o["ce_spliced"]) / (o["ce_zero"] - o["ce_clean"])
    )
    assert r["sae"]["storage_dtype"] in ("float16", "float32")
    assert r["text"]["sources"]["manpages-fr"]["licence"] == "GPL-3+"
    assert set(r["targets"]) == {
        "ce_recovered",
        "explained_variance",
        "selective_languages",
        "dominant_latent_languages",
    }
    assert r["targets"]["selective_languages"]["measured"] == sum(
        s["n_selective"] > 0 for s in r["selectivity"]["per_language"]
    )
    md = (cfg.out_dir / "REPORT.md").read_text()
    assert "## Hook choice" in md and result.hook in md and "manpages-fr" in md


def test_rerun_repeats_no_forward_pass_and_no_finished_run(trained, tiny_model, monkeypatch):
    from sae_lens import LanguageModelSAETrainingRunner

    cfg, first = trained
    calls = {"forward": 0, "train": 0}
    orig_cache, orig_run = tiny_model.run_with_cache, LanguageModelSAETrainingRunner.run

    def counting_cache(*a, **kw):
        calls["forward"] += 1
        return orig_cache(*a, **kw)

    def counting_run(self):
        calls["train"] += 1
        return orig_run(self)

    monkeypatch.setattr(tiny_model, "run_with_cache", counting_cache)
    monkeypatch.setattr(LanguageModelSAETrainingRunner, "run", counting_run)
    again = run_train_sae(cfg, model=tiny_model)
    assert calls == {"forward": 0, "train": 0}
    assert json.dumps(again.report["quality"]) == json.dumps(first.report["quality"])  # NaN-safe equality
    # another final token count: a new training run, still no forward pass
    run_train_sae(
        _cfg(cfg.cache_dir.parent, final_tokens=768, out_dir=cfg.cache_dir.parent / "out2"), model=tiny_model
    )
    assert calls == {"forward": 0, "train": 1}


@pytest.mark.parametrize(
    ("architecture", "widths", "saved_as"),
    [("topk", (), "topk"), ("batchtopk", (), "jumprelu"), ("matryoshka", (16, 48), "jumprelu")],
)
def test_saved_sae_works_on_raw_activations_with_scaling_folded_in(
    tmp_path, tiny_model, architecture, widths, saved_as
):
    """sae-lens trains on activations rescaled to norm sqrt(d_in); the saved SAE must take raw ones.
    Train on activations 100x the model's: the folded decoder bias lands at the raw (100x) mean.
    The BatchTopK variants are saved as JumpReLU, whose threshold must survive the folding too."""
    from saesteer.train.activation_cache import ActivationCache, token_mask
    from saesteer.train.quality import explained_variance
    from saesteer.train.runner import TrainSettings, activation_stats, run_training

    rng = np.random.default_rng(0)
    tokens = rng.integers(4, 260, size=(64, 32))
    tokens[:, 0] = 2
    hook = "blocks.1.hook_resid_post"
    cache = ActivationCache(tmp_path)
    acts = np.asarray(cache.ensure(tiny_model, "train", tokens, [hook])[hook]) * 100.0
    mask = token_mask(tokens, [0, 1, 2])
    ds = cache.saelens_dataset("train", hook, acts, tokens)
    mean, mean_norm = activation_stats(acts, mask)
    settings = TrainSettings(
        hook=hook,
        training_tokens=8192,
        d_sae=128,
        k=16,
        batch_tokens=128,
        lr=1e-3,
        seed=0,
        architecture=architecture,
        matryoshka_widths=widths,
    )
    sae = run_training(
        tiny_model,
        settings,
        cached_activations=ds,
        tokens=tokens,
        context_size=32,
        out_dir=tmp_path / "run",
        model_name="tiny-random",
        dataset_name="test",
        b_dec_init=mean * np.sqrt(64) / mean_norm,
    )
    b_dec = sae.b_dec.detach().double().numpy()
    cos = float(b_dec @ mean / (np.linalg.norm(b_dec) * np.linalg.norm(mean)))
    assert cos > 0.9 and 0.5 < np.linalg.norm(b_dec) / np.linalg.norm(mean) < 2.0
    x = torch.as_tensor(acts.reshape(-1, 64)[mask.reshape(-1)], dtype=torch.float32)
    assert explained_variance(sae, x) > 0.3
    assert explained_variance(sae, x / 100.0) < 0.0  # the wrong scale is useless: the scale is in the weights
    assert sae.cfg.architecture() == saved_as
    l0 = float((sae.encode(x) > 0).float().sum(-1).mean())
    if saved_as == "topk":
        assert l0 == 16
    else:  # the learnt BatchTopK threshold is kept (in raw units) and cuts latents a plain ReLU would keep
        pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
        assert float(sae.threshold.min()) > 0
        assert 1 <= l0 < float((pre > 0).float().sum(-1).mean())


@pytest.mark.parametrize(
    ("architecture", "widths", "message"),
    [
        ("relu", (), "unknown SAE architecture"),
        ("matryoshka", (), "strictly increasing"),
        ("matryoshka", (64, 32), "strictly increasing"),
        ("matryoshka", (32, 128), "below the width"),
        ("topk", (32,), "only apply to the matryoshka"),
    ],
)
def test_bad_architecture_settings_are_refused(tmp_path, architecture, widths, message):
    """Refused where the settings are made (the CLI's config too), before any model is loaded."""
    from saesteer.errors import SaesteerError
    from saesteer.train.pipeline import TrainSaeConfig
    from saesteer.train.runner import TrainSettings

    with pytest.raises(SaesteerError, match=message):
        TrainSettings(
            hook="h", training_tokens=1, d_sae=128, k=8, batch_tokens=64, lr=1e-3, seed=0,
            architecture=architecture, matryoshka_widths=widths,
        )
    with pytest.raises(SaesteerError, match=message):
        TrainSaeConfig(
            cache_dir=tmp_path,
            out_dir=tmp_path,
            d_sae=128,
            architecture=architecture,
            matryoshka_widths=widths,
        )
