"""Steering on the real Gemma 3 270M (``-m integration``): backends agree, French demos (DiffMean and SAE
features from the index), GGUF."""

from __future__ import annotations

import pytest
import torch

from saesteer.steer.hooks import steering
from saesteer.steer.vector import Component, ModelInfo, SteeringVector

pytestmark = pytest.mark.integration

HOOK = "blocks.6.hook_resid_post"
PROMPTS = ["Yesterday I went to the market and", "The best meal I have ever eaten was"]


@pytest.mark.parametrize("hook", [HOOK, "blocks.9.hook_resid_pre"])
def test_tl_and_hf_backends_give_the_same_steered_logits(gemma, gemma_hf, hook):
    hf, tok = gemma_hf
    hf.saesteer_model_id = "gemma-3-270m"
    g = torch.Generator().manual_seed(0)
    v = torch.randn(640, generator=g)
    vec = SteeringVector(components=(Component(hook, v / v.norm() * 2000.0),), model=ModelInfo.from_tl(gemma))
    ids = torch.tensor([tok("The capital of France is")["input_ids"]])
    with torch.no_grad():
        base_tl = gemma(ids)[0, -1]
        with steering(gemma, vec):
            tl = gemma(ids)[0, -1]
        with steering(hf, vec):
            hfl = hf(ids).logits[0, -1]
    shift = (tl - base_tl).abs().max()
    assert shift > 1.0  # the vector really moves the logits
    # the two implementations agree to far better than the steering effect
    assert float((tl - hfl).abs().max()) < 0.05 * float(shift)
    assert int(tl.argmax()) == int(hfl.argmax())


def test_diffmean_french_vector_turns_english_continuations_french(gemma, gemma_hf):
    import py3langid

    from saesteer.steer.baselines import diffmean_bundled
    from saesteer.steer.generate import GenerationConfig, HFBackend, side_by_side

    vec = diffmean_bundled(gemma, HOOK, "fr", ["en"], n_texts=60)
    hf, tok = gemma_hf
    rows = side_by_side(
        HFBackend(hf, tok, "gemma-3-270m"), PROMPTS, (vec, 0.2), GenerationConfig(max_new_tokens=16)
    )
    for r in rows:
        assert py3langid.classify(r.unsteered)[0] == "en", r
        assert py3langid.classify(r.steered)[0] == "fr", r


def test_sae_feature_french_vector_turns_english_continuations_french(gemma, gemma_hf, gemma_index):
    """Issue 5's demo: features selected from the index (random-token filter on), decoder rows weighted by
    mean_diff, at the additive recipe's default strength."""
    import py3langid

    from saesteer.eval.recipes import default_strength, parse_recipe
    from saesteer.saes import load_sae
    from saesteer.select.search import Search
    from saesteer.steer.build import from_feature_set
    from saesteer.steer.generate import GenerationConfig, HFBackend, side_by_side

    db, build_id = gemma_index
    res = (Search(db, target="language=fr", against="rest", build_id=build_id)
           .drop_dead().drop_dense().drop_bos_only().drop_random().top(50).run())
    assert res.dropped_random > 0  # the filter did remove some
    fs = res.to_featureset(weights="mean_diff")
    vec = from_feature_set(fs, load_sae("default", model=gemma), gemma, weighting="mean_diff", unit_rows=False)
    hf, tok = gemma_hf
    prompts = ["Yesterday I went to the market and", "The best meal I have ever eaten was",
               "My favourite animal is the cat because", "The doctor told me that I should"]
    rows = side_by_side(HFBackend(hf, tok, "gemma-3-270m"), prompts, (vec, default_strength(parse_recipe("sae"))),
                        GenerationConfig(max_new_tokens=16))
    assert [py3langid.classify(r.unsteered)[0] for r in rows] == ["en"] * 4, rows
    steered = [py3langid.classify(r.steered)[0] for r in rows]
    assert steered.count("fr") >= 3, rows


@pytest.mark.parametrize("lang", ["fr", "de"])
def test_the_default_recipe_turns_english_continuations_into_the_target_language(gemma, gemma_hf,
                                                                                 gemma_default_index, lang):
    """The default recipe (SAE swap: the target's features clamped to their typical activation x the strength,
    English's own top features zeroed), built from the default index as `steer build --recipe default` builds
    it, at its calibrated default strength and decoding (greedy, repetition penalty): on the evaluation's 12
    held-out prompts x 20 tokens the
    continuations are in the target language (accuracy >= 0.8) and fluent (perplexity within 3x and
    repetition within the range of the model's own unsteered text in that language), as
    docs/results/language_eval reports."""
    from saesteer.eval.language import LanguageEvalConfig, evaluate_language_steering
    from saesteer.eval.parallel import bundled_parallel_prompts
    from saesteer.eval.recipes import (
        CALIBRATED,
        DECODING_PENALTY,
        DEFAULT_RECIPE,
        RecipeVectors,
        parse_recipe,
    )
    from saesteer.saes import load_sae
    from saesteer.steer.generate import HFBackend

    db, build_id = gemma_default_index
    sae = load_sae("default", model=gemma)
    recipe = parse_recipe(DEFAULT_RECIPE)
    factory = RecipeVectors(gemma, sae, db, build_id=build_id)
    vec = factory.vector(recipe, lang)
    assert vec is not None and vec.operator == "clamp"
    strength = CALIBRATED[("gemma-3-270m", "default", recipe.name)][lang]
    assert vec.default_strength == strength
    hf, tok = gemma_hf
    assert vec.provenance["repetition_penalty"] == DECODING_PENALTY  # the decoding it was calibrated with
    cfg = LanguageEvalConfig(languages=(lang,), recipes=(recipe.name,), strengths=(strength,), n_prompts=12,
                             calibration_prompts=20, max_new_tokens=20, repetition_penalty=DECODING_PENALTY)
    res = evaluate_language_steering(gemma, HFBackend(hf, tok, "gemma-3-270m"), sae, db, bundled_parallel_prompts(),
                                     cfg, factory=factory)
    (row,) = res.curves.to_dict("records")
    assert row["accuracy"] >= 0.8 and row["fluent"], row


def test_gguf_export_of_a_gemma_vector(gemma, tmp_path):
    from saesteer.steer.build import from_direction
    from saesteer.steer.export import export_vector, import_vector
    from saesteer.steer.export.llamacpp import read_control_vector

    vec = from_direction(torch.randn(640), HOOK, gemma, typical_norm=100.0)
    (path,) = export_vector(vec, tmp_path / "v.gguf", "gguf")
    directions, fields = read_control_vector(path)
    assert list(directions) == [6] and torch.equal(directions[6], vec.components[0].vector)
    assert fields["controlvector.model_hint"] == "gemma3_text"
    assert import_vector(path).bit_equal(vec)
