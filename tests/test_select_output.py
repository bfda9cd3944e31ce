"""Output scores: the logit lens of decoder rows, target tokens from token_counts, re-ranking a search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saesteer.errors import DimensionMismatchError, EmptyResultError, UnknownFeatureError
from saesteer.index.db import IndexDb
from saesteer.select.output import logit_lens, output_scores, target_tokens, token_strings
from saesteer.select.search import Search
from saesteer.testing.synthetic import SyntheticSpec, build_synthetic_index, language_feature
from saesteer.testing.tiny import make_tiny_model, make_tiny_sae

PLANTED = 7


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    path = tmp_path_factory.mktemp("output") / "index.duckdb"
    res = build_synthetic_index(path, SyntheticSpec(planted=[language_feature(PLANTED, "fr", 0.05)], seed=3))
    return path, res


@pytest.fixture(scope="module")
def planted_sae(tiny_model, index):
    """A tiny SAE whose feature PLANTED writes straight towards the French characteristic tokens."""
    _, res = index
    sae = make_tiny_sae(d_in=tiny_model.cfg.d_model, seed=5)
    w_u = tiny_model.W_U.detach()
    fr = res.char_tokens["language=fr"]
    direction = w_u[:, fr].sum(dim=1)
    with torch.no_grad():
        sae.W_dec[PLANTED] = 20.0 * direction / direction.norm()
    return sae


def test_logit_lens_is_decoder_times_final_gain_times_unembedding(tiny_sae):
    model = make_tiny_model(seed=7)
    with torch.no_grad():  # a gain that is far from 1 and differs per dimension, like Gemma 3's
        model.ln_final.w.copy_(torch.linspace(0.1, 8.0, model.cfg.d_model))
    feats = [0, 5, 255, 5]
    out = logit_lens(model, tiny_sae, feats, chunk=2)
    assert out.shape == (4, model.cfg.d_vocab)
    expect = (tiny_sae.W_dec.detach()[feats] * model.ln_final.w.detach()) @ model.W_U.detach()
    torch.testing.assert_close(out, expect.float())
    torch.testing.assert_close(logit_lens(model, tiny_sae, feats, scale=2.0), 2 * expect.float())
    # without the gain the answer differs (the test above could not pass by ignoring it)
    assert not torch.allclose(out, (tiny_sae.W_dec.detach()[feats] @ model.W_U.detach()).float())


def test_logit_lens_rejects_bad_input(tiny_model, tiny_sae):
    with pytest.raises(UnknownFeatureError, match="256 features"):
        logit_lens(tiny_model, tiny_sae, [256])
    with pytest.raises(DimensionMismatchError):
        logit_lens(tiny_model, make_tiny_sae(d_in=32), [0])


def test_target_tokens_come_from_token_counts(index):
    path, res = index
    with IndexDb(path, read_only=True) as db:
        toks = target_tokens(db, "synthetic", "language=fr", ["language=de", "language=en", "language=es"])
        assert set(res.char_tokens["language=fr"]) <= set(toks.token_ids)
        assert not set(res.char_tokens["language=de"]) & set(toks.token_ids)
        assert all(r >= 5.0 for r in toks.ratios) and toks.ratios == sorted(toks.ratios, reverse=True)
        with pytest.raises(EmptyResultError, match="no characteristic tokens"):
            target_tokens(db, "synthetic", "language=fr", ["language=de"], min_ratio=1e9)


def test_output_scores_mass_on_planted_direction(tiny_model, planted_sae, index):
    _, res = index
    fr = res.char_tokens["language=fr"]
    out = output_scores(tiny_model, planted_sae, [PLANTED, 0, 1, 2], fr, top_n=8, chunk=3)
    assert out.mass.shape == (4,) and out.top_ids.shape == (4, 8)
    assert out.mass[0] > 0.5 and out.mass[0] > 10 * out.mass[1:].max()
    assert out.top_ids[0, 0] in fr and len(set(out.top_ids[0].tolist()) & set(fr)) >= len(fr) // 2
    assert out.lift[0] == pytest.approx(out.mass[0] / (len(fr) / tiny_model.cfg.d_vocab))
    # the mass is the softmax mass of the logit lens on exactly those tokens
    probs = torch.softmax(logit_lens(tiny_model, planted_sae, [1]), -1)[0]
    assert out.mass[2] == pytest.approx(float(probs[fr].sum()), rel=1e-5)
    assert out.top_tokens[0] == token_strings(tiny_model, out.top_ids[0])


def test_search_output_step_reranks_and_filters(tiny_model, planted_sae, index):
    path, _ = index
    base = Search(path, "language=fr").top(5)
    plain = base.run()
    assert PLANTED not in plain.features[:1]
    rer = base.output_score(tiny_model, planted_sae, rerank=True, pool=300).run()
    assert rer.features[0] == PLANTED
    assert np.all(np.diff(rer.df["output_mass"].to_numpy()) <= 0)
    filt = base.output_score(tiny_model, planted_sae, min_mass=0.5, pool=300).run()
    assert filt.features == [PLANTED]
    key = next(k for k in filt.dropped if k.startswith("output:"))
    assert filt.dropped[key] == filt.n_universe - sum(v for k, v in filt.dropped.items() if k != key) - 1
    fs = filt.to_featureset()
    assert "output_mass" in fs.scores
