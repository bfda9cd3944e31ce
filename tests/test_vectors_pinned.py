"""The vectors of ``saesteer quickstart`` and of the README's step-by-step commands, pinned bit for bit on
the tiny model (issue 14: renovations must not change them).

The pinned sha256 values were computed before the renovation of issue 14 (commit 55f4ca6) with these
exact calls; a refactoring that changes any bit of a vector fails here. A deliberate change of the
vectors (a new recipe) updates the pins in the same commit and says why.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

TINY = ["--model", "tiny-random", "--sae", "tiny"]

# sha256 over (name, raw little-endian bytes) of every tensor of the vector, in name order
PINNED_QUICKSTART = {
    # the additive SAE recipe (the quickstart's default until issue 15)
    "sae": {
        "fr": "6bd492b1b1da60942a7f6762b724bd1e4bd7694b92ceaa612628f31df244ab92",
        "de": "bed91edda037f85ab3c6e10f6125a397667899db921b40a879c4ccf86df9b2c4",
    },
    # the swap with 50 features (issue 15's first default)
    "sae:op=swap": {
        "fr": "ee058ada8cdf06720d2f4611f789017f6ea8495932e5e0ea14001c76fa68becf",
        "de": "2af287bf40e29fc8acb2dd83bb4db189b54025c2a77d1c0d80c81c7a276edcad",
    },
    # the default recipe since issue 15 (SAE swap, 10 features: it won `saesteer eval language`); on the
    # tiny model its vectors come out equal to the k=50 swap's (measured)
    "sae:k=10:op=swap": {
        "fr": "ee058ada8cdf06720d2f4611f789017f6ea8495932e5e0ea14001c76fa68becf",
        "de": "2af287bf40e29fc8acb2dd83bb4db189b54025c2a77d1c0d80c81c7a276edcad",
    },
}
PINNED_STEP_BY_STEP = {
    "fr.safetensors": "33437ff80000fe82dff103cfc125d7c937eb466b6872b1f3ffdae7f538d82aba",
    "fr_diffmean.safetensors": "eebfa9c7ad4fb653a11910eb4cf73547169ee8fd22f39b5912e0bc40141b3d9a",
}


def vector_sha256(path: Path) -> str:
    from saesteer.steer.export import load_vector

    h = hashlib.sha256()
    for name, t in sorted(load_vector(path).tensors().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _invoke(args: list[str]) -> None:
    from saesteer.cli.main import app

    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(PINNED_QUICKSTART))
def test_quickstart_vectors_are_pinned(tmp_path, recipe):
    from saesteer.eval.recipes import DEFAULT_RECIPE
    from saesteer.quickstart import QuickstartConfig, run_quickstart

    assert DEFAULT_RECIPE in PINNED_QUICKSTART
    cfg = QuickstartConfig(
        model="tiny-random", sae="tiny", db=tmp_path / "i.duckdb", out=tmp_path / "out",
        languages=("en", "fr", "de"), show=("fr", "de"), max_docs=8, n_random=8, n_prompts=1,
        max_new_tokens=2, eval_prompts=0, ablation_texts=0, export_formats=("native",), recipe=recipe,
    )
    res = run_quickstart(cfg)
    got = {lang: vector_sha256(tmp_path / "out" / "vectors" / f"{lang}.safetensors") for lang in cfg.show}
    assert got == PINNED_QUICKSTART[recipe]
    assert set(res.featuresets) == {"en", "fr", "de"}
    report = (tmp_path / "out" / "report.md").read_text()
    assert str(tmp_path) not in report and "vectors/fr.safetensors" in report  # paths relative to the output


@pytest.mark.slow
def test_readme_step_by_step_vectors_are_pinned(tmp_path):
    db = str(tmp_path / "i.duckdb")
    _invoke(["index", "build", "--bundled", "--random", "uniform", "--max-docs", "8", "--n-random", "8",
             "--db", db, *TINY])
    fs = str(tmp_path / "fr.json")
    _invoke(["features", "search", "--target", "language=fr", "--against", "rest", "--drop-random", "--top", "50",
             "--save", fs, "--db", db])
    _invoke(["steer", "build", "--features", fs, "--out", str(tmp_path / "fr.safetensors"), "--db", db, *TINY])
    _invoke(["steer", "build", "--diffmean", "--target", "fr", "--n-texts", "16",
             "--out", str(tmp_path / "fr_diffmean.safetensors"), *TINY])
    got = {name: vector_sha256(tmp_path / name) for name in PINNED_STEP_BY_STEP}
    assert got == PINNED_STEP_BY_STEP
    from saesteer.steer.export import load_vector

    prov = load_vector(tmp_path / "fr.safetensors").provenance
    assert (prov["weighting"], prov["rows"]) == ("mean_diff", "raw")  # the README's default recipe
