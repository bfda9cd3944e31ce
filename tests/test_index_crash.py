"""What already held in issue 12's replay and must keep holding, through real `saesteer` processes on the
tiny model: a build killed with SIGKILL (repeatedly) never corrupts the index, is marked interrupted,
and resumes to exactly the statistics of a clean build; two writers on one index both finish with every
condition written once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from saesteer.index.db import IndexDb

N_CONDITIONS = 8  # 7 text conditions + random=uniform
CODE = "import sys; from saesteer.cli.main import main; sys.argv = ['saesteer', *sys.argv[1:]]; main()"


def _args(root: Path) -> list[str]:
    """7 small text conditions (written once under ``root``) and a random-token baseline."""
    from saesteer.corpus import bundled_texts

    out = ["index", "build", "--model", "tiny-random", "--sae", "tiny", "--random", "uniform", "--n-random", "4",
           "--random-len", "8", "--no-feature-output"]
    for lang in ("de", "en", "es", "fr", "it", "nl", "pt"):
        f = root / f"{lang}.txt"
        if not f.exists():
            f.write_text("\n".join(bundled_texts(lang)[:200]) + "\n", encoding="utf-8")
        out += ["--text", f"language={lang}={f}"]
    return out


def _start(db: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-c", CODE, *_args(db.parent), "--db", str(db)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _run(db: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", CODE, *_args(db.parent), "--db", str(db)], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr


def _n_finished(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with IndexDb(db, read_only=True, wait_s=0.5) as con:
            return int(con.execute("SELECT count(*) FROM conditions").fetchall()[0][0])
    except Exception:  # the writer holds the file for a moment, or has not created the schema yet
        return 0


def _stats(db: Path) -> dict[str, list]:
    with IndexDb(db, read_only=True) as con:
        df = con.fetch_df("SELECT * EXCLUDE (build_id) FROM feature_stats ORDER BY condition, feature")
    return df.map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v).to_dict("list")


def _ls(db: Path) -> dict:
    from typer.testing import CliRunner

    from saesteer.cli.main import app

    res = CliRunner().invoke(app, ["index", "ls", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_sigkill_twice_then_resume_equals_a_clean_build(tmp_path):
    db = tmp_path / "killed.duckdb"
    for at_least in (1, 3):  # kill -9 after 1, then after 3 finished conditions (200 texts each: time to kill)
        proc = _start(db)
        deadline = time.monotonic() + 600
        while _n_finished(db) < at_least and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, "the build finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        listing = _ls(db)
        (build,) = listing["builds"]
        assert build["status"].startswith("interrupted; rerun the same command to resume"), build
        assert build["n_conditions"] < N_CONDITIONS
    _run(db)
    assert _ls(db)["builds"][0]["status"] == "complete"
    clean = tmp_path / "clean.duckdb"
    _run(clean)
    assert _stats(db) == _stats(clean)


def test_two_writers_on_one_index(tmp_path):
    db = tmp_path / "shared.duckdb"
    procs = [_start(db), _start(db)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    listing = _ls(db)
    (build,) = listing["builds"]
    assert build["status"] == "complete" and build["n_conditions"] == N_CONDITIONS
    names = [c["condition"] for c in listing["conditions"]]
    assert len(names) == len(set(names)) == N_CONDITIONS
