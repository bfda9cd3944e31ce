"""Replay of the bad inputs of issue 12 on the tiny model, through the real CLI entry point
(``saesteer.cli.main.main``): each exits with code 2, prints one line ``error: ...`` that names what was
wrong, and creates or changes no file (the workspace's checksums are compared before and after).

The behaviours that already held (interrupts, concurrency, read-only SQL, round trips) are covered by
tests/test_index_build.py, tests/test_index_shards.py, tests/test_cli_features.py and
tests/test_steer_export.py; the positive halves of the cases here (a foreign GGUF still imports, the
documented SQL still runs, ...) are at the end of this file.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from saesteer.featureset import FeatureSet
from saesteer.steer.export import export_vector, save_vector
from saesteer.steer.modelinfo import ModelInfo
from saesteer.steer.vector import Component, SteeringVector
from saesteer.testing.tiny import TINY_HOOK

TINY = ["--model", "tiny-random", "--sae", "tiny"]
_PROGRESS = re.compile(r"^\[\s*\d+(\.\d+)?s\] ")  # the plain progress lines printed when stderr is not a terminal


def _app():
    from saesteer.cli.main import app

    return app


def _ok(args: list[str]) -> str:
    res = CliRunner().invoke(_app(), [str(a) for a in args])
    assert res.exit_code == 0, (res.output, res.exception)
    return res.stdout


def _run_main(args: list[str], capsys) -> tuple[int, str]:
    from saesteer.cli.main import main

    capsys.readouterr()
    old = sys.argv
    sys.argv = ["saesteer", *[str(a) for a in args]]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    return int(exc.value.code or 0), capsys.readouterr().err


def _tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (and the set of paths, so new files count)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny_model, tiny_sae) -> Path:
    """A workspace with a tiny index, a feature set, vectors in every format and the bad inputs."""
    from saesteer.corpus import Condition, RandomTokens, text_source
    from saesteer.index.build import BuildConfig, build_index
    from saesteer.index.db import IndexDb

    d = tmp_path_factory.mktemp("bad_inputs")
    (d / "a.txt").write_text("one note\ntwo notes\nthree notes\n", encoding="utf-8")
    (d / "b.txt").write_text("bonjour\nau revoir\nmerci bien\n", encoding="utf-8")
    res = build_index(
        d / "idx.duckdb",
        tiny_model,
        tiny_sae,
        [
            Condition("topic=a", text_source(d / "a.txt")),
            Condition("topic=b", text_source(d / "b.txt")),
            RandomTokens("uniform", n_seqs=3, seq_len=8, seed=0),
        ],
        BuildConfig(feature_output_k=3),
    )
    fs = dict(
        kind="saesteer.featureset", version=1, target="topic=a", model_id="tiny-random", sae_id="tiny",
        hook_name=TINY_HOOK,
    )
    FeatureSet(features=[3, 7, 11], target="topic=a", model_id="tiny-random", sae_id="tiny",
               hook_name=TINY_HOOK).save(d / "fs.json")
    bad_sets = {
        "fs_float": {**fs, "features": [1.5, 7]},
        "fs_dupes": {**fs, "features": [3, 7, 3]},
        "fs_no_target": {k: v for k, v in {**fs, "features": [3]}.items() if k != "target"},
        "fs_list": [1, 2, 3],
        "fs_strings": {**fs, "features": ["a", 2]},
    }
    for name, data in bad_sets.items():
        (d / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    (d / "fs_broken.json").write_text('{"kind": "saesteer.featureset", "features": [1,', encoding="utf-8")
    _ok(["steer", "build", "--features", d / "fs.json", *TINY, "-o", d / "v.safetensors"])

    post = SteeringVector(
        components=(Component("blocks.1.hook_resid_post", torch.randn(64, generator=torch.Generator().manual_seed(0))),),
        model=ModelInfo("tiny-random", 64, 2),
        name="post",
    )
    save_vector(post, d / "post.safetensors")
    export_vector(post, d / "post.gguf", "gguf")
    raw = bytearray((d / "post.gguf").read_bytes())
    raw[-3] ^= 0x40  # a flipped bit in the last value of direction.1
    (d / "flip.gguf").write_bytes(bytes(raw))

    np_dir = d / "np"
    np_dir.mkdir()
    export_vector(post.with_(components=(Component(TINY_HOOK, post.components[0].vector),)), np_dir / "v.json", "neuronpedia")
    edited = json.loads((np_dir / "v.json").read_text())
    edited["vector"][0] += 1.0
    (np_dir / "edited.json").write_text(json.dumps(edited))
    shutil.copy(np_dir / "v.json.saesteer.json", np_dir / "edited.json.saesteer.json")
    bare = {k: v for k, v in edited.items()}
    (np_dir / "short.json").write_text(json.dumps({**bare, "vector": bare["vector"][:63]}))
    (np_dir / "layer9.json").write_text(json.dumps({**bare, "layerNumber": 9}))

    (d / "empty.txt").write_text("\n \n", encoding="utf-8")
    (d / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    (d / "bad_line2.jsonl").write_text('{"text": "a"}\n{bad\n', encoding="utf-8")
    (d / "no_column.jsonl").write_text('{"text": "a"}\n{"other": "b"}\n', encoding="utf-8")
    (d / "outdir").mkdir()

    _ok(["index", "export", "--db", d / "idx.duckdb", "--out", d / "export"])
    shutil.copytree(d / "export", d / "export_cut")
    cut = d / "export_cut" / "feature_stats.parquet"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    data = (d / "idx.duckdb").read_bytes()
    (d / "cut.duckdb").write_bytes(data[: int(len(data) * 0.6)])
    shutil.copy(d / "idx.duckdb", d / "empty_build.duckdb")
    with IndexDb(d / "empty_build.duckdb") as con:  # a build row without any finished condition
        con.execute(
            "INSERT INTO builds SELECT '00000000deadbeef' AS build_id, * EXCLUDE (build_id) FROM builds WHERE build_id = ?",
            [res.build_id],
        )
    return d


# (case id, argv from the workspace, text the one-line message must contain)
Case = tuple[str, Callable[[Path], list], str]
CASES: list[Case] = [
    # 1. a GGUF whose tensor data no longer matches the checksum saesteer wrote
    ("01-gguf-flipped-import", lambda w: ["steer", "import", w / "flip.gguf", "-o", w / "new.safetensors"], "flip.gguf: direction.1 does not match the checksum"),
    ("01-gguf-flipped-info", lambda w: ["steer", "info", w / "flip.gguf"], "is corrupt"),
    # 2. every strength finite, and the product written too
    ("02-export-strength-1e40", lambda w: ["steer", "export", w / "post.safetensors", "-F", "gguf", "--strength", "1e40", "-o", w / "x.gguf"], "--strength 1e+40 is too large for 'post'"),
    ("02-export-strength-nan", lambda w: ["steer", "export", w / "post.safetensors", "-F", "gguf", "--strength", "nan", "-o", w / "x.gguf"], "--strength must be finite, got nan"),
    ("02-export-npy-strength-inf", lambda w: ["steer", "export", w / "post.safetensors", "-F", "npy", "--strength", "inf", "-o", w / "x.npy"], "--strength must be finite, got inf"),
    ("02-generate-strength-nan", lambda w: ["steer", "generate", "-V", w / "v.safetensors", "-S", "nan", "hi"], "--strength must be finite"),
    ("02-sweep-strengths-nan", lambda w: ["steer", "sweep", "-V", w / "v.safetensors", "--metric", "lang:fr", "--strengths", "1,nan"], "--strengths value must be finite"),
    ("02-quickstart-strength-inf", lambda w: ["quickstart", *TINY, "--strength", "inf", "--out", w / "qs", "--db", w / "qs.duckdb"], "--strength must be finite, got inf"),
    ("02-eval-strengths-nan", lambda w: ["eval", "language", *TINY, "--strengths", "0.1,nan", "--out", w / "ev", "--db", w / "idx.duckdb"], "--strengths value must be finite, got nan"),
    # 3. strengths that overflow the model's arithmetic
    ("03-generate-strength-1e30", lambda w: ["steer", "generate", "-V", w / "v.safetensors", "-S", "1e30", "-n", "3", "hello"], "non-finite (NaN/inf) at blocks.1.hook_resid_pre while steering with 'topic=a-sae3' at strength 1e+30"),
    ("03-generate-strength-3e37", lambda w: ["steer", "generate", "-V", w / "v.safetensors", "-S", "3e37", "-n", "3", "hello"], "strength 3e+37"),
    ("03-generate-strength-1e40", lambda w: ["steer", "generate", "-V", w / "v.safetensors", "-S", "1e40", "-n", "3", "hello"], "--strength 1e+40 is too large"),
    # 4. feature-set ids
    ("04-featureset-float-id", lambda w: ["steer", "build", "--features", w / "fs_float.json", *TINY, "-o", w / "o.safetensors"], "feature ids must be integers: item 0 is 1.5"),
    ("04-featureset-duplicate-id", lambda w: ["steer", "build", "--features", w / "fs_dupes.json", *TINY, "-o", w / "o.safetensors"], "duplicate feature id(s) 3"),
    # 5. no silent fall-back to the bundled prompts
    ("05-empty-prompts-file", lambda w: ["steer", "generate", "-V", w / "v.safetensors", "--prompts-file", w / "empty.txt"], "empty.txt holds no prompts"),
    ("05-n-prompts-0", lambda w: ["steer", "generate", "-V", w / "v.safetensors", "--n-prompts", "0"], "number of prompts must be at least 1, got 0"),
    ("05-sweep-n-prompts-0", lambda w: ["steer", "sweep", "-V", w / "v.safetensors", "--metric", "lang:fr", "--n-prompts", "0"], "at least 1, got 0"),
    # 6. Neuronpedia JSON checked against its sidecar and the model it names
    ("06-neuronpedia-edited", lambda w: ["steer", "import", w / "np" / "edited.json", "-o", w / "o.safetensors"], "does not match its manifest sidecar edited.json.saesteer.json"),
    ("06-neuronpedia-wrong-length", lambda w: ["steer", "import", w / "np" / "short.json", "-o", w / "o.safetensors"], "has 63 values but model 'tiny-random' has d_model=64"),
    ("06-neuronpedia-layer-outside", lambda w: ["steer", "import", w / "np" / "layer9.json", "-o", w / "o.safetensors"], "'blocks.9.hook_resid_pre' is out of range: model 'tiny-random' has 2 layers"),
    # 7. an unknown build
    ("07-index-ls-unknown-build", lambda w: ["index", "ls", "--db", w / "idx.duckdb", "--build", "nope"], "no build 'nope' in"),
    # 8. a build without conditions
    ("08-show-build-without-conditions", lambda w: ["features", "show", "3", "--db", w / "empty_build.duckdb", "--build", "00000000"], "build 00000000deadbeef has no finished condition"),
    # 9. labels that --against could not name
    ("09-label-with-comma", lambda w: ["index", "build", *TINY, "--db", w / "idx.duckdb", "--text", f"topic=a,b={w / 'a.txt'}"], "condition label 'topic=a,b' contains a comma"),
    # 10. an SAE at a hook other than its own
    ("10-other-hook-index-build", lambda w: ["index", "build", *TINY, "--db", w / "idx.duckdb", "--text", f"topic=a={w / 'a.txt'}", "--hook", "blocks.0.hook_resid_pre"], "--allow-other-hook"),
    ("10-other-hook-for-text", lambda w: ["features", "for-text", "hi", *TINY, "--hook", "blocks.0.hook_resid_pre"], "SAE 'tiny' was trained at blocks.1.hook_resid_pre"),
    # 12. malformed feature-set JSON
    ("12-featureset-no-target", lambda w: ["steer", "build", "--features", w / "fs_no_target.json", *TINY, "-o", w / "o.safetensors"], "lacks the required field(s) target"),
    ("12-featureset-top-level-list", lambda w: ["steer", "build", "--features", w / "fs_list.json", *TINY, "-o", w / "o.safetensors"], "not a saesteer feature set: expected a JSON object"),
    ("12-featureset-string-ids", lambda w: ["steer", "build", "--features", w / "fs_strings.json", *TINY, "-o", w / "o.safetensors"], "item 0 is 'a' (str)"),
    ("12-featureset-broken-json", lambda w: ["steer", "build", "--features", w / "fs_broken.json", *TINY, "-o", w / "o.safetensors"], "cannot read feature set"),
    # 13. a directory as the output
    ("13-build-out-directory", lambda w: ["steer", "build", "--features", w / "fs.json", *TINY, "-o", w / "outdir"], "outdir is a directory"),
    ("13-export-out-directory", lambda w: ["steer", "export", w / "post.safetensors", "-F", "npy", "-o", w / "outdir"], "outdir is a directory"),
    ("13-search-save-directory", lambda w: ["features", "search", "-t", "topic=a", "--db", w / "idx.duckdb", "--save", w / "outdir"], "outdir is a directory"),
    # 14. generation settings
    ("14-batch-size-0", lambda w: ["steer", "generate", "-V", w / "v.safetensors", "--batch-size", "0"], "batch-size=0 (must be >= 1)"),
    # 15. a binary prompts file
    ("15-binary-prompts-file", lambda w: ["steer", "generate", "-V", w / "v.safetensors", "--prompts-file", w / "binary.txt"], "binary.txt is not UTF-8 text"),
    # 16. a truncated Parquet file in an export
    ("16-merge-truncated-parquet", lambda w: ["index", "merge", w / "export_cut", "--db", w / "merged.duckdb"], "feature_stats.parquet is damaged"),
    ("16-merge-truncated-into-existing", lambda w: ["index", "merge", w / "export_cut", "--db", w / "idx.duckdb"], "feature_stats.parquet is damaged"),
    # 17. a truncated index
    ("17-search-truncated-duckdb", lambda w: ["features", "search", "-t", "topic=a", "--db", w / "cut.duckdb"], "cut.duckdb is damaged (truncated or corrupt)"),
    # 18. bad sources: validated before anything is created, an existing index left as it was
    ("18-jsonl-bad-line-new-index", lambda w: ["index", "build", *TINY, "--db", w / "new.duckdb", "--text", f"x=y={w / 'bad_line2.jsonl'}"], "bad_line2.jsonl line 2: invalid JSON"),
    ("18-jsonl-bad-line-existing-index", lambda w: ["index", "build", *TINY, "--db", w / "idx.duckdb", "--text", f"x=y={w / 'bad_line2.jsonl'}"], "line 2: invalid JSON"),
    ("18-jsonl-no-column", lambda w: ["index", "build", *TINY, "--db", w / "new.duckdb", "--text", f"x=y={w / 'no_column.jsonl'}"], "no_column.jsonl line 2: no column 'text'"),
    # 19. saesteer sql sees the index and nothing else
    ("19-sql-read-csv", lambda w: ["sql", "SELECT * FROM read_csv('/etc/passwd')", "--db", w / "idx.duckdb"], "refused: `saesteer sql` sees only the index"),
    ("19-sql-read-text", lambda w: ["sql", "SELECT * FROM read_text('/etc/hostname')", "--db", w / "idx.duckdb"], "refused"),
    ("19-sql-glob", lambda w: ["sql", "SELECT * FROM glob('/root/*')", "--db", w / "idx.duckdb"], "refused"),
    ("19-sql-s3", lambda w: ["sql", "SELECT * FROM read_parquet('s3://bucket/x.parquet')", "--db", w / "idx.duckdb"], "refused"),
    ("19-sql-set-external-access", lambda w: ["sql", "SET enable_external_access = true", "--db", w / "idx.duckdb"], "refused: `saesteer sql` is read-only"),
    # also: negative feature ids, index rm of an unknown build
    ("also-show-negative-id", lambda w: ["features", "show", "-1", "--db", w / "idx.duckdb"], "unknown feature -1"),
    ("also-rm-unknown-build", lambda w: ["index", "rm", "nope", "--db", w / "idx.duckdb"], "no build 'nope' in"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line_and_changes_nothing(case, ws, capsys):
    _, argv, expected = case
    before = _tree(ws)
    code, err = _run_main(argv(ws), capsys)
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if not _PROGRESS.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0], lines[0]
    assert "Traceback" not in err
    assert _tree(ws) == before  # nothing created, nothing changed


# -- the positive halves ------------------------------------------------------------------------------------


def test_foreign_gguf_still_imports_and_baked_strength_is_shown(ws, tmp_path):
    """1. A GGUF without saesteer's metadata (another tool's) imports; Also: a baked strength is plain."""
    import gguf

    foreign = tmp_path / "foreign.gguf"
    w = gguf.GGUFWriter(str(foreign), "controlvector")
    w.add_string("controlvector.model_hint", "tiny-random")
    w.add_uint32("controlvector.layer_count", 1)
    w.add_tensor("direction.1", np.arange(64, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    out = tmp_path / "f.safetensors"
    _ok(["steer", "import", foreign, "-o", out, "--model-id", "tiny-random"])
    from saesteer.steer.export import load_vector

    v = load_vector(out)
    assert v.hooks == ["blocks.1.hook_resid_post"] and torch.equal(v.components[0].vector, torch.arange(64.0))
    _ok(["steer", "export", ws / "post.safetensors", "-F", "gguf", "--strength", "2", "-o", tmp_path / "s2.gguf"])
    info = _ok(["steer", "info", tmp_path / "s2.gguf"])
    rows = [ln.split("│") for ln in info.splitlines() if ln.count("│") == 3]
    keys = " ".join(r[1].strip() for r in rows)
    values = " ".join(r[2].strip() for r in rows)
    assert "baked-in strength" in keys and "the original vector x 2, so strength 1 here" in values
    man = json.loads(_ok(["steer", "info", tmp_path / "s2.gguf", "--json"]))
    assert man["scale"]["mode"] == "raw" and man["provenance"]["imported_from"]["baked_strength"] == 2.0


def _doc_sql() -> list[str]:
    """Every `saesteer sql "..."` example of the README and docs/."""
    root = Path(__file__).resolve().parents[1]
    texts = [(root / "README.md").read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in sorted((root / "docs").glob("*.md"))]
    found = [m.group(1) for t in texts for m in re.finditer(r'saesteer sql "([^"]+)"', t)]
    return sorted({q for q in found if q != "SELECT ..."})


def test_sql_examples_of_the_docs_still_run(ws):
    """19. The sandbox keeps every documented query working."""
    queries = _doc_sql()
    assert len(queries) >= 3, queries
    for q in queries:
        out = json.loads(_ok(["sql", q, "--db", ws / "idx.duckdb", "--json"]))
        assert isinstance(out, list), q


def test_sql_sandbox_cannot_be_undone(ws):
    """19. Refused from Python too, and the settings are locked against the user's SQL."""
    from saesteer.errors import IndexDbError
    from saesteer.select.rawsql import run_readonly_sql

    got = run_readonly_sql(ws / "idx.duckdb", "SELECT current_setting('enable_external_access') AS ext, "
                           "current_setting('lock_configuration') AS locked, "
                           "current_setting('autoinstall_known_extensions') AS inst")
    assert got.to_dict("records") == [{"ext": False, "locked": True, "inst": False}]
    with pytest.raises(IndexDbError, match="sees only the index"):
        run_readonly_sql(ws / "idx.duckdb", "SELECT * FROM read_blob('/etc/hostname')")


def test_interrupted_build_is_marked_and_resumes(tmp_path, tiny_model, tiny_sae, monkeypatch):
    """11. `index ls` marks an interrupted build; the CLI says how to resume; the rerun completes it."""
    from saesteer.corpus import Condition, ListSource
    from saesteer.index.build import BuildConfig, build_index

    conds = [Condition(f"topic={t}", ListSource((f"{t} one", f"{t} two", f"{t} three"))) for t in "abc"]
    db = tmp_path / "i.duckdb"

    def stop(ev):
        if ev.condition == "topic=b" and ev.status == "batch":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(db, tiny_model, tiny_sae, conds, BuildConfig(feature_output=False), progress=stop)
    listing = json.loads(_ok(["index", "ls", "--db", db, "--json"]))
    (b,) = listing["builds"]
    assert b["status"] == "interrupted; rerun the same command to resume (2 condition(s) not finished: topic=b, topic=c)"
    table = CliRunner().invoke(_app(), ["index", "ls", "--db", str(db)])
    assert "interrupted; rerun the same command to resume" in table.output
    build_index(db, tiny_model, tiny_sae, conds, BuildConfig(feature_output=False))
    assert json.loads(_ok(["index", "ls", "--db", db, "--json"]))["builds"][0]["status"] == "complete"

    import saesteer.index.build as build_mod

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build_mod, "build_index", interrupted)
    (tmp_path / "t.txt").write_text("x\n", encoding="utf-8")
    res = CliRunner().invoke(_app(), ["index", "build", *TINY, "--db", str(db), "--text", f"t=x={tmp_path / 't.txt'}"])
    assert res.exit_code == 130 and "interrupted; rerun the same command to resume" in res.output


def test_a_failed_first_condition_leaves_no_file(tmp_path, tiny_model, tiny_sae, monkeypatch):
    """18. Nothing is created before the first condition is complete (not even the build row)."""
    from saesteer.corpus import Condition, ListSource
    from saesteer.index.build import BuildConfig, build_index

    db = tmp_path / "i.duckdb"

    def stop(ev):
        if ev.status == "collected":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(db, tiny_model, tiny_sae, [Condition("t=a", ListSource(("hello",)))],
                    BuildConfig(feature_output=False), progress=stop)
    assert not db.exists()


def test_index_rm_deletes_one_build_and_refuses_while_it_is_built(ws, tmp_path):
    """Also: `saesteer index rm BUILD` (one transaction), refused while another process builds it."""
    import socket
    import subprocess

    from saesteer.index.db import IndexDb

    db = tmp_path / "two.duckdb"
    shutil.copy(ws / "empty_build.duckdb", db)
    with IndexDb(db, read_only=True) as con:
        keep = [r[0] for r in con.execute("SELECT build_id FROM builds WHERE build_id <> '00000000deadbeef'").fetchall()]
    with IndexDb(db) as con:  # a build another (live) process is running: planned, nothing finished
        con.execute("INSERT INTO builds SELECT 'feedfacefeedface' AS build_id, * EXCLUDE (build_id) FROM builds "
                    "WHERE build_id = '00000000deadbeef'")
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        con.execute("INSERT INTO planned_conditions VALUES ('feedfacefeedface', 'topic=a', 'h', now(), ?, ?)",
                    [sleeper.pid, socket.gethostname()])
    try:
        before = hashlib.sha256(db.read_bytes()).hexdigest()
        res = CliRunner().invoke(_app(), ["index", "rm", "feedface", "--db", str(db)])
        assert res.exit_code != 0 and "is being built by process" in str(res.exception)
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    finally:
        sleeper.kill()
        sleeper.wait()
    out = _ok(["index", "rm", "feedface", "--db", db])  # its process is gone: an interrupted build, removable
    assert "removed build feedfacefeedface" in out
    out = _ok(["index", "rm", keep[0][:8], "--db", db])
    assert f"removed build {keep[0]}" in out and "feature_stats" in out
    with IndexDb(db, read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'build_id'").fetchall()]
        for t in tables:
            ids = {r[0] for r in con.execute(f'SELECT DISTINCT build_id FROM "{t}"').fetchall()}
            assert ids <= {"00000000deadbeef"}, t
        from saesteer.index.search_table import current_search_table

        assert current_search_table(con, keep[0]) is None  # its search table went too


def test_threshold_zeroes_activations_below_it(tmp_path, tiny_model, tiny_sae):
    """8. With a threshold no feature has mean > 0 while n_active is 0."""
    from saesteer.corpus import Condition, ListSource
    from saesteer.index.build import BuildConfig, build_index
    from saesteer.index.db import IndexDb
    from saesteer.select.inspect import feature_report

    db = tmp_path / "t.duckdb"
    conds = [Condition("t=a", ListSource(("hello there", "general kenobi"))),
             Condition("t=b", ListSource(("bonjour", "salut")))]
    build_index(db, tiny_model, tiny_sae, conds, BuildConfig(threshold=1e6, feature_output=False))
    with IndexDb(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM feature_stats").fetchall() == [(0,)]
        rep = feature_report(con, 3)
    assert (rep.stats["n_active"] == 0).all() and (rep.stats["mean"] == 0).all()


def test_sae_at_another_hook_with_the_flag_warns(ws, caplog):
    """10. --allow-other-hook uses the SAE there, and says so."""
    out = _ok(["info", *TINY, "--hook", "blocks.0.hook_resid_pre", "--allow-other-hook", "--json"])
    assert json.loads(out)["hook"]["name"] == "blocks.0.hook_resid_pre"
    from saesteer.saes import load_sae

    with caplog.at_level("WARNING"):
        load_sae("tiny", hook_name="blocks.0.hook_resid_post", allow_other_hook=True)
    assert "trained at blocks.1.hook_resid_pre" in caplog.text
