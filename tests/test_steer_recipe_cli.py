"""``saesteer steer build --recipe``: the evaluated recipes' vectors from the index, on the tiny model."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from saesteer.eval.recipes import DEFAULT_RECIPE, default_strength, parse_recipe
from saesteer.steer.export import load_vector

runner = CliRunner()


@pytest.fixture
def tiny_db(tiny_language_index):
    return tiny_language_index


def _build(db, out, *extra: str):
    from saesteer.cli.main import app

    res = runner.invoke(app, ["steer", "build", "--model", "tiny-random", "--sae", "tiny", "--db", str(db),
                              "-o", str(out), *extra])
    assert res.exit_code == 0, (res.output, res.exception)
    return load_vector(out)


def test_the_default_recipe_builds_a_swap_clamp_with_its_default_strength(tiny_db, tmp_path):
    vec = _build(tiny_db, tmp_path / "fr.safetensors", "--recipe", "default", "--target", "fr")
    assert parse_recipe(DEFAULT_RECIPE).op == "swap"
    assert vec.operator == "clamp" and vec.clamp is not None
    assert vec.default_strength == default_strength(parse_recipe(DEFAULT_RECIPE))
    values = vec.clamp.values.tolist()
    assert any(v == 0.0 for v in values)  # the source language's features, set to 0
    assert any(v > 0.0 for v in values)  # the target's, set to their typical activation
    # src=0: only the target's features, none zeroed
    only = _build(tiny_db, tmp_path / "fr0.safetensors", "--recipe", f"{DEFAULT_RECIPE}:src=0", "--target",
                  "language=fr")
    assert only.clamp is not None
    assert len(only.clamp.features) < len(vec.clamp.features)
    assert set(only.clamp.features.tolist()) <= set(vec.clamp.features.tolist())
    # an additive recipe: an add vector with the additive default strength
    add = _build(tiny_db, tmp_path / "fr_add.safetensors", "--recipe", "sae:k=4", "--target", "fr")
    assert add.operator == "add" and add.clamp is None and add.default_strength == default_strength(parse_recipe("sae"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--recipe", "default"], "--recipe needs --target"),
        (["--recipe", "prompting", "--target", "fr"], "prompting has no vector"),
        (["--recipe", "sae:op=twist", "--target", "fr"], "op must be one of"),
        (["--recipe", "default", "--diffmean", "--target", "fr"], "exactly one of"),
    ],
)
def test_recipe_errors_are_one_line(tiny_db, tmp_path, capsys, args, message):
    from test_steer_cli import _fail

    err = _fail(["steer", "build", "--model", "tiny-random", "--sae", "tiny", "--db", str(tiny_db),
                 "-o", str(tmp_path / "v.safetensors"), *args], capsys)
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "v.safetensors").exists()


def test_default_strengths_are_calibrated_for_the_default_model_and_sae_only():
    from saesteer.eval.recipes import CALIBRATED, DEFAULT_STRENGTH
    from saesteer.models.loading import DEFAULT_MODEL

    swap = parse_recipe(DEFAULT_RECIPE)
    table = CALIBRATED[(DEFAULT_MODEL, "default", swap.name)]
    assert default_strength(swap, "fr", model_id=DEFAULT_MODEL, sae_id="default") == table["fr"] != DEFAULT_STRENGTH
    assert default_strength(swap, "language=fr", model_id=DEFAULT_MODEL, sae_id="default") == table["fr"]
    assert set(table) == {"fr", "de", "es", "it", "pt", "nl", "pl", "ru", "tr", "id", "zh"}  # all reached
    assert default_strength(swap, "sw", model_id=DEFAULT_MODEL, sae_id="default") == DEFAULT_STRENGTH  # not measured
    assert default_strength(swap, "fr", model_id="tiny-random", sae_id="tiny") == DEFAULT_STRENGTH
    assert default_strength(swap, "fr") == DEFAULT_STRENGTH
    assert default_strength(parse_recipe("sae"), "fr", model_id=DEFAULT_MODEL, sae_id="default") == 0.06


def test_recipe_vectors_carry_the_decoding_their_strengths_were_calibrated_with(tiny_db, tmp_path):
    import json

    from saesteer.cli.main import app
    from saesteer.errors import SaesteerError
    from saesteer.eval.recipes import DECODING_PENALTY

    path = tmp_path / "fr.safetensors"
    vec = _build(tiny_db, path, "--recipe", "default", "--target", "fr")
    assert vec.provenance["repetition_penalty"] == DECODING_PENALTY != 1.0
    assert vec.provenance["recipe"] == DEFAULT_RECIPE

    def generate(*extra: str) -> dict:
        res = runner.invoke(app, ["steer", "generate", "--vector", str(path), "hello", "-n", "3", "--json", *extra])
        assert res.exit_code == 0, (res.output, res.exception)
        return json.loads(res.stdout)

    assert generate()["repetition_penalty"] == DECODING_PENALTY  # the vector's, by default
    assert generate("--repetition-penalty", "1")["repetition_penalty"] == 1.0
    bad = runner.invoke(app, ["steer", "generate", "--vector", str(path), "hello", "--repetition-penalty", "0.5"])
    assert isinstance(bad.exception, SaesteerError)  # main() prints it as one `error:` line, exit 2
    assert "repetition-penalty=0.5" in str(bad.exception) and "\n" not in str(bad.exception)
