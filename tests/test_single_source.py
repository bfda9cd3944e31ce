"""One source for each setting: a default is written once (the literal model name only as DEFAULT_MODEL,
each settings dataclass the definition of its CLI flags)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _string_constants(value: str) -> list[str]:
    hits = []
    for p in sorted((ROOT / "saesteer").rglob("*.py")):
        tree = ast.parse(p.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        hits += [f"{p.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree)
                 if isinstance(n, ast.Constant) and n.value == value and id(n) not in docstrings]
    return hits


def test_the_default_model_name_is_written_once():
    hits = _string_constants("gemma-3-270m")
    assert [h.split(":")[0] for h in hits] == ["saesteer/models/loading.py"], hits  # DEFAULT_MODEL = ...


def _invoke(args: list[str]):
    from typer.testing import CliRunner

    from saesteer.cli.main import app

    return CliRunner().invoke(app, args)


def test_train_sae_options_are_the_config_fields(monkeypatch, tmp_path):
    """``train-sae`` takes TrainSaeConfig's defaults; the former flag names (--width, --dtype, --out) still work."""
    import dataclasses

    import saesteer.train.pipeline as pipeline
    from saesteer.train.pipeline import TrainSaeConfig

    seen = []

    def fake_run(cfg, **kw):
        seen.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(pipeline, "run_train_sae", fake_run)
    monkeypatch.setenv("SAESTEER_TRAIN_CACHE", str(tmp_path / "cache"))
    _invoke(["train-sae", "--out", str(tmp_path / "o")])
    expect = TrainSaeConfig(cache_dir=tmp_path / "cache", out_dir=tmp_path / "o")
    got = seen[0]
    assert dataclasses.replace(got, command="") == expect  # every default is the config's own
    _invoke(["train-sae", "--out-dir", str(tmp_path / "o"), "--width", "256", "--dtype", "float16",
             "--langs", "en,fr", "--architecture", "matryoshka", "--matryoshka-widths", "64,128", "--k", "8"])
    got = seen[1]
    assert (got.d_sae, got.storage_dtype, got.langs, got.matryoshka_widths) == (256, "float16", ("en", "fr"), (64, 128))
    res = _invoke(["train-sae", "--matryoshka-widths", "1,x", "--architecture", "matryoshka"])
    assert res.exit_code != 0 and "--matryoshka-widths must be comma-separated int" in str(res.exception)
    assert len(seen) == 2


def test_features_selective_options_are_the_bar_fields(monkeypatch, tmp_path):
    import saesteer.select.selective as selective
    from saesteer.select.selective import SelectivityBar

    seen = []

    def fake(db, *, key, bar, build_id):
        seen.append((key, bar, build_id))
        raise SystemExit(0)

    monkeypatch.setattr(selective, "selective_features", fake)
    _invoke(["features", "selective", "--db", str(tmp_path / "i.duckdb")])
    _invoke(["features", "selective", "--key", "topic", "--min-freq", "0.1", "--no-random", "--build", "b",
             "--db", str(tmp_path / "i.duckdb")])
    assert seen[0] == ("language", SelectivityBar(), None)
    assert seen[1] == ("topic", SelectivityBar(min_freq=0.1, use_random=False), "b")


def test_index_spec_contains_a_build_config(tmp_path):
    from dataclasses import fields

    from saesteer.index.build import BuildConfig
    from saesteer.index.spec import IndexSpec, load_spec_file

    assert not {f.name for f in fields(IndexSpec)} & {f.name for f in fields(BuildConfig)}
    assert IndexSpec().build == BuildConfig()
    spec = tmp_path / "s.yaml"
    spec.write_text("bundled: [fr]\ntop_k: 3\nshard: 1/2\nexclude: [bos]\nfeature_output: false\n")
    got = load_spec_file(spec).build  # a spec file gives the build settings at its top level, as before
    assert got == BuildConfig(top_k=3, shard=(1, 2), exclude=("bos",), feature_output=False)
    assert IndexSpec().with_build(shard="0/4", exclude=[]).build == BuildConfig(shard=(0, 4), exclude=())
