"""``saesteer index build | ls | export | merge`` on the tiny model, flags and spec files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from saesteer.cli.main import app
from saesteer.errors import CorpusError
from saesteer.index.db import IndexDb
from saesteer.index.spec import SpecError, load_spec_file, parse_hf_flag, parse_text_flag

runner = CliRunner()
TINY = ["--model", "tiny-random", "--sae", "tiny"]


def _ok(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 0, (res.output, res.exception)
    return res


def test_build_ls_export_merge(tmp_path):
    corpus = tmp_path / "notes.txt"
    corpus.write_text("first note\nsecond note\nthird note\n", encoding="utf-8")
    db = tmp_path / "i.duckdb"
    res = _ok(
        [
            "index",
            "build",
            *TINY,
            "--db",
            str(db),
            "--text",
            f"topic=notes={corpus}",
            "--bundled",
            "--max-docs",
            "4",
            "--random",
            "uniform",
            "--random",
            "unigram",
            "--n-random",
            "3",
            "--random-len",
            "8",
            "--no-feature-output",
        ]
    )
    assert "15 condition(s) written" in res.output
    listing = json.loads(_ok(["index", "ls", "--db", str(db), "--json"]).stdout)
    conds = {c["condition"]: c for c in listing["conditions"]}
    assert len(listing["builds"]) == 1 and listing["builds"][0]["n_conditions"] == 15
    assert conds["topic=notes"]["n_docs"] == 3 and conds["language=fr"]["n_docs"] == 4
    assert conds["random=unigram"]["n_tokens"] == 24 and conds["random=uniform"]["is_random"]
    csv_out = _ok(["index", "ls", "--db", str(db), "--csv"]).stdout
    assert csv_out.splitlines()[0].startswith("build_id,condition,is_random,n_docs,n_tokens")
    table = _ok(["index", "ls", "--db", str(db)]).stdout
    assert "builds" in table and "conditions" in table and "random=" in table
    rerun = _ok(
        [
            "index",
            "build",
            *TINY,
            "--db",
            str(db),
            "--text",
            f"topic=notes={corpus}",
            "--max-docs",
            "4",
            "--no-feature-output",
        ]
    )
    assert "0 condition(s) written, 1 skipped" in rerun.output
    out = tmp_path / "export"
    _ok(["index", "export", "--db", str(db), "--out", str(out)])
    merged = tmp_path / "merged.duckdb"
    res = _ok(["index", "merge", str(out), "--db", str(merged)])
    assert "15 condition(s) written" in res.output
    with IndexDb(merged, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM conditions").fetchall() == [(15,)]


def test_shards_from_the_cli(tmp_path):
    exports = []
    for i in range(2):
        db = tmp_path / f"s{i}.duckdb"
        _ok(
            [
                "index",
                "build",
                *TINY,
                "--db",
                str(db),
                "--bundled",
                "--max-docs",
                "3",
                "--shard",
                f"{i}/2",
                "--no-feature-output",
            ]
        )
        exports.append(str(tmp_path / f"e{i}"))
        _ok(["index", "export", "--db", str(db), "--out", exports[-1]])
    _ok(["index", "merge", *exports, "--db", str(tmp_path / "m.duckdb")])
    with IndexDb(tmp_path / "m.duckdb", read_only=True) as con:
        assert con.execute("SELECT DISTINCT n_docs FROM conditions").fetchall() == [(3,)]


@pytest.mark.parametrize("fmt", ["yaml", "toml"])
def test_spec_file(tmp_path, fmt):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.jsonl").write_text('{"body": "alpha beta"}\n{"body": "gamma"}\n', encoding="utf-8")
    if fmt == "yaml":
        text = (
            "model: tiny-random\nsae: tiny\ndb: out.duckdb\nbundled: [fr, de]\nmax_docs: 2\nrandom: uniform\n"
            "n_random: 2\nrandom_len: 5\nfeature_output: false\n"
            "conditions:\n  - {label: style=a, path: c/a.jsonl, column: body}\n"
        )
    else:
        text = (
            'model = "tiny-random"\nsae = "tiny"\ndb = "out.duckdb"\nbundled = ["fr", "de"]\nmax_docs = 2\n'
            'random = ["uniform"]\nn_random = 2\nrandom_len = 5\nfeature_output = false\n'
            '[[conditions]]\nlabel = "style=a"\npath = "c/a.jsonl"\ncolumn = "body"\n'
        )
    spec_file = tmp_path / f"spec.{fmt}"
    spec_file.write_text(text, encoding="utf-8")
    spec = load_spec_file(spec_file)
    assert [c.label for c in spec.conditions()] == ["style=a", "language=fr", "language=de", "random=uniform"]
    _ok(["index", "build", "--spec", str(spec_file), "--top-k", "2"])
    with IndexDb(tmp_path / "out.duckdb", read_only=True) as con:
        assert con.execute("SELECT count(*), max(top_k) FROM builds").fetchall() == [(1, 2)]
        assert con.execute("SELECT n_docs FROM conditions WHERE condition = 'style=a'").fetchall() == [(2,)]


def test_flag_and_spec_errors(tmp_path):
    with pytest.raises(SpecError, match="LABEL=PATH"):
        parse_text_flag("fr.txt")
    with pytest.raises(CorpusError, match="key=value"):
        parse_text_flag("language fr=x=y")
    assert parse_hf_flag("language=sw=wikimedia/wikipedia:20231101.sw").config == "20231101.sw"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: tiny-random\nlanguages: [fr]\n", encoding="utf-8")
    with pytest.raises(SpecError, match="unknown spec key"):
        load_spec_file(bad)
    res = runner.invoke(app, ["index", "build", *TINY, "--db", str(tmp_path / "x.duckdb")])
    assert isinstance(res.exception, CorpusError) and "no conditions" in str(res.exception)


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path):
    missing = tmp_path / "nope.txt"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "saesteer.cli.main",
            "index",
            "build",
            *TINY,
            "--db",
            str(tmp_path / "x.duckdb"),
            "--text",
            f"language=xx={missing}",
        ],
        capture_output=True,
        text=True,
    )
    if (
        proc.returncode == 0 or "error:" not in proc.stderr
    ):  # python -m does not call main(); use the entry point
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from saesteer.cli.main import main; sys.argv[0] = 'saesteer'; main()",
                "index",
                "build",
                *TINY,
                "--db",
                str(tmp_path / "x.duckdb"),
                "--text",
                f"language=xx={missing}",
            ],
            capture_output=True,
            text=True,
        )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_exclude_and_threshold_flags(tmp_path):
    corpus = tmp_path / "a.txt"
    corpus.write_text("abc\nde\n", encoding="utf-8")
    for name, extra, want in [("default", [], 5), ("none", ["--exclude", "none"], 7)]:
        db = tmp_path / f"{name}.duckdb"
        _ok(
            [
                "index",
                "build",
                *TINY,
                "--db",
                str(db),
                "--text",
                f"topic=a={corpus}",
                "--threshold",
                "0.5",
                "--no-feature-output",
                *extra,
            ]
        )
        with IndexDb(db, read_only=True) as con:
            assert con.execute("SELECT n_tokens FROM conditions").fetchall() == [(want,)]
            assert con.execute("SELECT threshold FROM builds").fetchall() == [(0.5,)]
