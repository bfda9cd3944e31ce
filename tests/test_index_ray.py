"""The index build on a real local Ray cluster (no mocks) equals a plain build; resume, retry, errors.

One Ray cluster (2 CPUs, the session fixture ``local_ray``) serves every Ray test. Tolerance: integer columns (counts, active counts,
histograms, token counts) and the top examples are identical; the float sums ``sum_act``/``sum_sq``
agree to rtol 1e-9 (a sharded condition adds its shards' sums in another order).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from test_index_shards import _conds, assert_same_index  # noqa: E402

from saesteer.cluster import ClusterError, RaySettings  # noqa: E402
from saesteer.corpus import Condition, TableSource  # noqa: E402
from saesteer.errors import CorpusError, IndexDbError  # noqa: E402
from saesteer.index.build import BuildConfig, build_index  # noqa: E402
from saesteer.index.db import IndexDb  # noqa: E402
from saesteer.index.ray_build import build_index_ray, driver_lock  # noqa: E402
from saesteer.index.units import RayBuildSettings, UnitError  # noqa: E402

CFG = BuildConfig(top_k=4, batch_size=5)


@pytest.fixture
def cluster(local_ray):
    return local_ray


@pytest.fixture(scope="module")
def plain(tmp_path_factory, tiny_model, tiny_sae):
    db = tmp_path_factory.mktemp("plain") / "plain.duckdb"
    build_index(db, tiny_model, tiny_sae, _conds(), CFG)
    return db


def _ray(db, workers, *, run_dir=None, conds=None, unit_docs=6, model="tiny-random", progress=None):
    settings = RayBuildSettings(RaySettings(workers=workers, cpus_per_worker=2 / workers if workers > 2 else 1),
                                unit_docs=unit_docs, run_dir=run_dir)
    return build_index_ray(db, model, "tiny", conds or _conds(), CFG, settings=settings, progress=progress)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_ray_build_equals_plain_build(cluster, plain, tmp_path, workers):
    seen = []
    res = _ray(tmp_path / "ray.duckdb", workers, progress=seen.append)
    # fr and zh: 15 documents -> 3 units of <= 6; random: 9 sequences -> 2 units; + the logit lens
    assert res.units == 9 and res.units_cached == 0 and sorted(res.written) == sorted(c.label for c in _conds())
    assert seen[-1].units_done == 9 and seen[-1].tokens == res.n_tokens > 0
    assert_same_index(tmp_path / "ray.duckdb", plain)
    with IndexDb(tmp_path / "ray.duckdb", read_only=True) as con:
        settings = json.loads(con.execute("SELECT settings FROM builds").fetchall()[0][0])
        source = json.loads(con.execute("SELECT source FROM conditions WHERE condition = 'language=fr'").fetchall()[0][0])
    assert settings["engine"] == "ray" and settings["units"] == 9 and settings["shard"] is None
    assert source["shard"]["merged_shards"] == 3


def test_rerun_skips_finished_work_and_redoes_a_corrupt_unit(cluster, plain, tmp_path):
    db, run = tmp_path / "a.duckdb", tmp_path / "run"
    _ray(db, 2, run_dir=run)
    again = _ray(db, 2, run_dir=run)  # the index has everything: nothing to run or merge
    assert again.units == 0 and not again.written and len(again.skipped) == 3
    # a new index from the same run directory: every unit is taken from disk (hash-checked)
    fresh = _ray(tmp_path / "b.duckdb", 2, run_dir=run)
    assert fresh.units == fresh.units_cached == 9
    assert_same_index(tmp_path / "b.duckdb", plain)
    # a unit whose file changed is rebuilt, the others are kept
    victim = next(run.glob("language_zh-*0001of0003")) / "feature_stats.parquet"
    victim.write_bytes(victim.read_bytes()[:-10])
    redo = _ray(tmp_path / "c.duckdb", 2, run_dir=run)
    assert redo.units == 9 and redo.units_cached == 8
    assert_same_index(tmp_path / "c.duckdb", plain)


def test_a_killed_worker_s_unit_is_retried(cluster, plain, tmp_path):
    cluster.write_text("")
    res = _ray(tmp_path / "k.duckdb", 2)
    assert not cluster.exists() and Path(f"{cluster}.taken").exists()  # a worker process did die
    assert res.units == 9
    assert_same_index(tmp_path / "k.duckdb", plain)


def test_data_error_names_condition_and_document(cluster, tmp_path, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps({"text": f"sentence {i}"}) + "\n" for i in range(5)) + '{"text": 7}\n')
    conds = [Condition("style=bad", TableSource(bad))]
    db = tmp_path / "e.duckdb"
    with pytest.raises(CorpusError, match=r"line 6.*int, not text"):  # the driver reads every record first
        _ray(db, 1, conds=conds)
    monkeypatch.setattr(TableSource, "validate", lambda self: None)  # a data error only a worker meets
    with pytest.raises(UnitError, match=r"^condition style=bad, document 5 \(shard 0/1\): .*line 6.*int, not text"):
        _ray(db, 1, conds=conds)
    assert not db.exists()  # the index is untouched


def test_worker_that_cannot_load_the_model(cluster, tmp_path):
    with pytest.raises(ClusterError, match=r"a worker cannot load the model or SAE .*no-such-model"):
        _ray(tmp_path / "m.duckdb", 1, model=str(tmp_path / "no-such-model"))
    assert not (tmp_path / "m.duckdb").exists()


def test_two_drivers_on_one_index(cluster, tmp_path):
    db = tmp_path / "l.duckdb"
    with driver_lock(db), pytest.raises(IndexDbError, match="another driver is building"):
        _ray(db, 1)
    assert not db.exists()


def test_too_many_workers_for_the_cluster(cluster, tmp_path):
    settings = RayBuildSettings(RaySettings(workers=3, cpus_per_worker=1))
    with pytest.raises(ClusterError, match=r"3 worker\(s\) x 1 CPU\(s\) need more than the cluster's 2 CPUs"):
        build_index_ray(tmp_path / "w.duckdb", "tiny-random", "tiny", _conds(), CFG, settings=settings)


def _cli(*args, env=None):
    code = "import sys; from saesteer.cli.main import main; sys.argv = ['saesteer', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_cli_wrong_address_is_one_line(tmp_path):
    r = _cli("index", "build", "--model", "tiny-random", "--sae", "tiny", "--random", "uniform",
             "--engine", "ray", "--address", "127.0.0.1:9", "--db", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2 and r.stderr.strip().startswith("error: no Ray cluster at 127.0.0.1:9")
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.duckdb").exists()


def test_cli_without_ray_says_how_to_install(tmp_path):
    blocker = tmp_path / "noray"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('ray is not installed here')\n")
    pypath = os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])
    r = _cli("index", "build", "--model", "tiny-random", "--sae", "tiny", "--random", "uniform",
             "--engine", "ray", "--db", str(tmp_path / "x.duckdb"), env={"PYTHONPATH": pypath})
    assert r.returncode == 2
    assert r.stderr.strip() == "error: --engine ray needs Ray, which is not installed: pip install 'saesteer[ray]'"


def test_disk_full_while_storing_a_unit_is_one_line(tmp_path, monkeypatch):
    import errno

    from saesteer.index.units import DiskFullError, Unit, UnitOutput, store_unit, unit_done

    unit = Unit("language=fr", "ab" * 32, 1, 2)
    out = UnitOutput({"feature_stats.parquet": b"x" * 10}, 3, 30)
    store_unit(tmp_path / "run", unit, "b1", out)
    assert unit_done(tmp_path / "run", unit, "b1") and not unit_done(tmp_path / "run", unit, "other-build")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(DiskFullError, match=r"^no space left on device in .*run writing condition language=de shard 0/1"):
        store_unit(tmp_path / "run", Unit("language=de", "cd" * 32), "b1", out)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [unit.name]  # no half-written unit
