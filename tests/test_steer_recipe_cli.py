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
    assert default_strength(swap, "it", model_id=DEFAULT_MODEL, sae_id="default") == DEFAULT_STRENGTH  # not reached
    assert default_strength(swap, "fr", model_id="tiny-random", sae_id="tiny") == DEFAULT_STRENGTH
    assert default_strength(swap, "fr") == DEFAULT_STRENGTH
    assert default_strength(parse_recipe("sae"), "fr", model_id=DEFAULT_MODEL, sae_id="default") == 0.06
