"""Building vectors: decoder rows, weights, residual-norm scaling, provenance, DiffMean, prompting."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

from saesteer.errors import SteeringVectorError, UnknownFeatureError
from saesteer.featureset import FeatureSet
from saesteer.steer.baselines import PromptPrefix, diffmean, diffmean_bundled
from saesteer.steer.build import decoder_direction, feature_weights, from_direction, from_feature_set
from saesteer.steer.compose import combine
from saesteer.steer.residuals import bundled_texts, typical_residual_norm
from saesteer.testing.tiny import tiny_feature_set

HOOK = "blocks.1.hook_resid_pre"


def _fs(**kw) -> FeatureSet:
    return tiny_feature_set(**kw)


def test_decoder_direction_is_the_weighted_sum_of_rows(tiny_sae):
    w_dec = tiny_sae.W_dec.detach()
    raw = decoder_direction(tiny_sae, [3, 7], [2.0, -1.0], unit_rows=False)
    torch.testing.assert_close(raw, 2.0 * w_dec[3] - w_dec[7])
    with torch.no_grad():
        tiny_sae.W_dec[7] *= 3.0
    try:
        unit = decoder_direction(tiny_sae, [3, 7], [1.0, 1.0], unit_rows=True)
        torch.testing.assert_close(unit, w_dec[3] / w_dec[3].norm() + w_dec[7] / w_dec[7].norm())
    finally:
        with torch.no_grad():
            tiny_sae.W_dec[7] /= 3.0
    with pytest.raises(UnknownFeatureError, match="out of range"):
        decoder_direction(tiny_sae, [256], [1.0])


def test_typical_norm_is_the_median_over_non_bos_tokens(tiny_model):
    texts = ["hello world", "a b", "bonjour à tous"]
    got = typical_residual_norm(tiny_model, HOOK, texts)
    norms = []
    for t in texts:
        toks = tiny_model.to_tokens(t)
        _, cache = tiny_model.run_with_cache(toks, names_filter=HOOK)
        norms += cache[HOOK][0, 1:].norm(dim=-1).tolist()  # position 0 is BOS
    assert got == pytest.approx(statistics.median(norms), rel=1e-6)


def test_from_feature_set_scales_to_the_typical_norm_and_records_provenance(tiny_model, tiny_sae):
    v = from_feature_set(_fs(), tiny_sae, tiny_model)
    (c,) = v.components
    assert c.hook_name == HOOK and c.typical_norm == pytest.approx(typical_residual_norm(tiny_model, HOOK))
    assert float(c.vector.norm()) == pytest.approx(c.typical_norm, rel=1e-5)
    direction = decoder_direction(tiny_sae, [3, 7, 11], [1.0, 1.0, 1.0])
    assert torch.nn.functional.cosine_similarity(c.vector, direction, dim=0) > 0.99999
    p = v.provenance
    assert p["features"] == [3, 7, 11] and p["scores"] == {"auc": [0.9, 0.5, -0.2]} and p["build_id"] == "b1"
    assert p["model"]["id"] == "tiny-random" and p["sae"]["id"] == "tiny" and p["filters"] == ["density<0.1"]
    assert v.model.id == "tiny-random" and v.model.d_model == 64 and v.model.n_layers == 2
    json.dumps(v.manifest())  # the manifest is JSON


def test_raw_scale_keeps_the_unnormalised_sum(tiny_model, tiny_sae):
    v = from_feature_set(
        _fs(weights=[1.0, 2.0, 3.0]), tiny_sae, tiny_model, scale_mode="raw", unit_rows=False
    )
    assert torch.equal(
        v.components[0].vector, decoder_direction(tiny_sae, [3, 7, 11], [1.0, 2.0, 3.0], unit_rows=False)
    )
    assert v.components[0].typical_norm is None


def test_weightings(tiny_sae):
    fs = _fs(weights=[0.5, 1.0, 2.0])
    assert feature_weights(fs, "given") == [0.5, 1.0, 2.0]
    assert feature_weights(fs, "uniform") == [1.0, 1.0, 1.0]
    assert feature_weights(fs, "score:auc") == [0.9, 0.5, -0.2]
    with pytest.raises(SteeringVectorError, match="no score 'f1'"):
        feature_weights(fs, "score:f1")
    with pytest.raises(SteeringVectorError, match="read from the index when selecting"):
        feature_weights(fs, "mean_act")  # steer never reads the index: select stores these weights
    idx = _fs(weights=[0.25, -0.5, 0.04], weighting="mean_diff")
    assert feature_weights(idx, "mean_diff") == [0.25, -0.5, 0.04]
    assert feature_weights(idx, "auto") == [0.25, -0.5, 0.04]


def test_auto_recipe_follows_the_feature_sets_weighting():
    from saesteer.steer.build import resolve_recipe

    assert resolve_recipe(_fs(weights=[1.0, 2.0, 3.0], weighting="mean_diff"), "auto", None) == ("mean_diff", False)
    assert resolve_recipe(_fs(weights=[1.0, 2.0, 3.0], weighting="mean_act"), "auto", None) == ("mean_act", True)
    assert resolve_recipe(_fs(), "auto", None) == ("given", True)  # no index weights: the set's own, unit rows
    assert resolve_recipe(_fs(weights=[1.0, 2.0, 3.0], weighting="mean_diff"), "auto", True) == ("mean_diff", True)


def test_mismatched_feature_sets_are_refused(tiny_model, tiny_sae):
    with pytest.raises(SteeringVectorError, match="selected with SAE 'other'"):
        from_feature_set(_fs(sae_id="other"), tiny_sae, tiny_model)
    with pytest.raises(SteeringVectorError, match="selected on model"):
        from_feature_set(_fs(model_id="gemma-3-270m"), tiny_sae, tiny_model)
    with pytest.raises(SteeringVectorError, match="is empty"):
        from_feature_set(_fs(features=[], scores={}), tiny_sae, tiny_model)


def test_clamp_vector_from_features(tiny_model, tiny_sae):
    v = from_feature_set(_fs(), tiny_sae, tiny_model, operator="clamp", clamp_values=[4.0, 5.0, 6.0])
    assert (
        v.clamp is not None
        and v.clamp.features.tolist() == [3, 7, 11]
        and v.clamp.values.tolist() == [4.0, 5.0, 6.0]
    )
    assert v.clamp.sae_id == "tiny"


def test_diffmean_is_the_difference_of_mean_residuals(tiny_model):
    target, others = (
        ["bonjour le monde", "merci beaucoup"],
        {"language=en": ["hello world"], "language=de": ["guten tag", "danke"]},
    )
    v = diffmean(tiny_model, HOOK, target, others, scale_mode="raw")

    def mean(texts):
        rows = []
        for t in texts:
            _, cache = tiny_model.run_with_cache(tiny_model.to_tokens(t), names_filter=HOOK)
            rows.append(cache[HOOK][0, 1:].double())
        return torch.cat(rows).mean(0)

    expected = mean(target) - (mean(others["language=en"]) + mean(others["language=de"])) / 2
    torch.testing.assert_close(v.components[0].vector, expected.float(), rtol=1e-5, atol=1e-5)
    assert v.provenance["method"] == "diffmean" and v.provenance["others"] == ["language=de", "language=en"]
    scaled = diffmean(tiny_model, [HOOK, "blocks.0.hook_resid_post"], target, others)
    for c in scaled.components:
        assert float(c.vector.norm()) == pytest.approx(c.typical_norm, rel=1e-5)


def test_diffmean_on_the_bundled_corpus(tiny_model):
    v = diffmean_bundled(tiny_model, HOOK, "fr", ["en"], n_texts=4)
    assert v.provenance["target"] == "language=fr" and v.provenance["n_texts_target"] == 4
    assert len(bundled_texts("fr")) == 200 and len(bundled_texts("fr", split="heldout")) == 50


def test_prompt_prefix():
    p = PromptPrefix.for_target("language=fr")
    assert p.prefix == "Answer in French: "
    assert p(["Tell me", "Hi"]) == ["Answer in French: Tell me", "Answer in French: Hi"]


def test_combine_sums_components_at_default_strengths(tiny_model):
    a = from_direction(torch.ones(64), HOOK, tiny_model, scale_mode="raw").with_(default_strength=2.0)
    b = from_direction(torch.arange(64.0), HOOK, tiny_model, scale_mode="raw")
    c = from_direction(torch.ones(64), "blocks.0.hook_resid_post", tiny_model, scale_mode="raw")
    m = combine([a, b, c])
    assert m.hooks == ["blocks.0.hook_resid_post", HOOK]
    assert torch.equal(m.component(HOOK).vector, torch.ones(64) * 2.0 + torch.arange(64.0))
