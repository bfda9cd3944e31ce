"""The index build on Ray: (condition x document shard) units on actors that hold the model and SAE,
unit exports stored under a run directory, one streaming merge into the index in one transaction.

- Each actor loads the model and SAE once; Ray restarts an actor whose process dies and retries the
  unit it was running (``max_restarts`` / ``max_task_retries``). A unit's output (an ``index export``
  directory, as bytes) comes back through Ray, and the driver stores it under the run directory with
  the sha256 of every file, so workers need no shared disk.
- A rerun skips the conditions the index already has and the units whose stored files still match
  their hashes; the rest are rebuilt.
- The index file is not touched before the final merge, which runs in one transaction: a failure
  anywhere (a data error, a worker that cannot load the model, a full disk) leaves it as it was.
- A lock file beside the index (``<db>.ray.lock``) keeps a second driver off the same index.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from saesteer.cluster import ClusterError, first_line, ray_cluster, worker_error
from saesteer.errors import IndexDbError, SaesteerError
from saesteer.index.build import as_conditions
from saesteer.index.units import (
    FEATURE_OUTPUT,
    RayBuildSettings,
    Unit,
    UnitOutput,
    plan_units,
    store_unit,
    unit_done,
    unit_tokens,
)

if TYPE_CHECKING:
    from saesteer.corpus.random_tokens import RandomTokens
    from saesteer.corpus.sources import Condition
    from saesteer.index.build import BuildConfig

log = logging.getLogger(__name__)
CRASH_ENV = "SAESTEER_RAY_CRASH_FILE"  # tests: a worker that finds this file takes it and dies once


class RayProgress(NamedTuple):
    """``units_done`` of ``units`` (``cached`` of them found complete on disk), ``tokens`` so far."""

    units_done: int
    units: int
    cached: int
    tokens: int
    workers: int
    last: str  # the unit just finished, "start", or "merging"
    cached_tokens: int = 0


class RayBuildResult(NamedTuple):
    build_id: str
    db_path: Path
    run_dir: Path
    written: list[str]
    skipped: list[str]
    units: int
    units_cached: int
    n_tokens: int
    seconds: float
    phases: dict[str, float]  # wall seconds: start (cluster + workers ready), units, merge
    worker_usage: list[dict[str, float]]  # per worker: cpu_s (process CPU time), max_rss_mb


class UnitActor:
    """One worker: loads the model and SAE once, then builds units. Wrapped by ``ray.remote`` at run time."""

    def __init__(
        self, model: str, sae: str, hook: str | None, config: BuildConfig, threads: int, allow_other_hook: bool = False
    ) -> None:
        self.error: str | None = None
        try:
            import torch

            from saesteer.index.build import prepare_build
            from saesteer.models import load_model
            from saesteer.saes import load_sae

            torch.set_num_threads(threads)
            self.model = load_model(model)
            self.sae = load_sae(sae, model=self.model, hook_name=hook, allow_other_hook=allow_other_hook)
            self.config = config
            self.ctx = prepare_build(self.model, self.sae, config, hook)
        except Exception as exc:  # reported by ready(): one line, no restart loop
            self.error = f"a worker cannot load the model or SAE ({model}, {sae}): {first_line(exc)}"

    def ready(self) -> tuple[str | None, str | None, dict[str, Any] | None]:
        """``(error, build_id, builds row)``."""
        if self.error is not None:
            return self.error, None, None
        return None, self.ctx.info.build_id, self.ctx.info.row

    def usage(self) -> dict[str, float]:
        """This worker's CPU time and peak resident memory so far."""
        import resource

        return {"cpu_s": time.process_time(), "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    def run(self, unit: Unit, cond: Condition | None) -> tuple[Unit, UnitOutput]:
        from saesteer.index.units import run_unit

        crash = os.environ.get(CRASH_ENV)
        if crash:
            try:
                os.rename(crash, crash + ".taken")
            except OSError:
                pass
            else:
                os._exit(1)  # a real process death: Ray restarts the actor and retries this unit
        try:
            return unit, run_unit(self.model, self.sae, self.ctx, self.config, unit, cond)
        except SaesteerError:
            raise
        except Exception as exc:  # one line that names the unit (Ray adds the traceback to its logs)
            raise ClusterError(f"{unit.describe()} failed on a worker: {type(exc).__name__}: {first_line(exc)}") from exc


@contextmanager
def driver_lock(db_path: Path) -> Iterator[None]:
    """One driver per index: an exclusive lock on ``<db>.ray.lock``."""
    path = db_path.with_name(db_path.name + ".ray.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = path.open("a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.seek(0)
            who = fh.read().strip() or "another process"
            raise IndexDbError(
                f"another driver is building {db_path} ({who} holds {path.name}); wait for it or use another --db"
            ) from exc
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        yield
    finally:
        fh.close()


def _index_state(db_path: Path, build_id: str) -> tuple[dict[str, str], bool]:
    """``({condition: source_hash}, has feature_output)`` of this build in the index (read-only)."""
    from saesteer.index.db import IndexDb

    if not db_path.exists():
        return {}, False
    with IndexDb(db_path, read_only=True, wait_s=30.0) as db:
        if db.schema_version() is None:
            return {}, False
        done = {str(c): str(h) for c, h in db.query("index_completed_conditions", [build_id]).fetchall()}
        fo = bool(db.query("index_feature_output_count", [build_id]).fetchall()[0][0])
    return done, fo


def build_index_ray(
    db_path: str | Path,
    model: str,
    sae: str,
    conditions: list[Condition | RandomTokens],
    config: BuildConfig,
    *,
    hook_name: str | None = None,
    settings: RayBuildSettings = RayBuildSettings(),
    progress: Callable[[RayProgress], None] | None = None,
    allow_other_hook: bool = False,
) -> RayBuildResult:
    """Build ``conditions`` into ``db_path`` on Ray (see the module docstring); the result equals
    :func:`saesteer.index.build.build_index` with the same inputs."""
    t0 = time.monotonic()
    db_path = Path(db_path)
    if config.shard is not None:
        raise SaesteerError("--shard and --engine ray do not combine: the engine shards the documents itself")
    conds = as_conditions(conditions)
    for c in conds:
        c.validate()
    hashes = {c.label: c.source_hash() for c in conds}
    with driver_lock(db_path), ray_cluster(settings.cluster) as (ray, n_workers):
        remote = ray.remote(num_cpus=settings.cluster.cpus_per_worker, max_restarts=3, max_task_retries=3)

        def start(n: int) -> list[Any]:
            return [remote(UnitActor).remote(model, sae, hook_name, config, settings.cluster.threads,
                                             allow_other_hook)
                    for _ in range(n)]

        actors = start(1)  # the first worker gives the build id; the others start only if there is work
        try:
            build_id = _check_workers(ray, actors)
            return _run(ray, actors, start, n_workers, db_path, build_id, conds, hashes, config, settings,
                        progress, t0)
        finally:
            for a in actors:
                ray.kill(a)


def _check_workers(ray: Any, actors: list[Any]) -> str:
    try:
        answers = ray.get([a.ready.remote() for a in actors])
    except Exception as exc:
        raise worker_error(exc, "a worker failed to start") from exc
    for error, _, _ in answers:
        if error is not None:
            raise ClusterError(error)
    ids = {b for _, b, _ in answers}
    if len(ids) > 1:
        raise ClusterError(
            f"the workers loaded different models or SAEs (build ids {', '.join(sorted(str(i) for i in ids))}); "
            "every node needs the same files"
        )
    return str(ids.pop())


def _run(
    ray: Any,
    actors: list[Any],
    start: Callable[[int], list[Any]],
    n_workers: int,
    db_path: Path,
    build_id: str,
    conds: list[Condition],
    hashes: dict[str, str],
    config: BuildConfig,
    settings: RayBuildSettings,
    progress: Callable[[RayProgress], None] | None,
    t0: float,
) -> RayBuildResult:
    from ray.util import ActorPool

    done, has_fo = _index_state(db_path, build_id)
    changed = [lb for lb in hashes if lb in done and done[lb] != hashes[lb]]
    if changed:
        raise IndexDbError(
            f"build {build_id} in {db_path} already has condition(s) {', '.join(changed)} built from different "
            "data (source hash differs); use another label, another --db, or delete that build"
        )
    todo = [c for c in conds if c.label not in done]
    run_dir = settings.run_dir or db_path.with_name(db_path.name + ".ray") / build_id
    units = plan_units(todo, hashes, settings.unit_docs, feature_output=config.feature_output and not has_fo)
    cached = [u for u in units if unit_done(run_dir, u, build_id)]
    pending = [u for u in units if u not in cached]
    by_label = {c.label: c for c in conds}
    tokens = cached_tokens = sum(unit_tokens(run_dir, u) for u in cached)
    count = len(cached)

    def tell(last: str) -> None:
        if progress is not None:
            progress(RayProgress(count, len(units), len(cached), tokens, len(actors), last, cached_tokens))

    more = min(n_workers, len(pending)) - len(actors)
    if more > 0:
        added = start(more)
        actors.extend(added)  # the caller kills every actor in this list
        if _check_workers(ray, added) != build_id:
            raise ClusterError("the workers loaded different models or SAEs; every node needs the same files")
    tell("start")
    t_units = time.monotonic()
    cpu0 = ray.get([a.usage.remote() for a in actors])
    pool = ActorPool(actors)
    results = pool.map_unordered(
        lambda a, u: a.run.remote(u, None if u.condition == FEATURE_OUTPUT else by_label[u.condition]), pending
    )
    while True:
        try:
            unit, output = next(results)
        except StopIteration:
            break
        except Exception as exc:
            raise worker_error(exc, "a unit failed on a worker") from exc
        store_unit(run_dir, unit, build_id, output)
        count += 1
        tokens += output.n_tokens
        tell(unit.describe())
    t_merge = time.monotonic()
    usage = [{**u, "cpu_s": u["cpu_s"] - c["cpu_s"]} for u, c in zip(ray.get([a.usage.remote() for a in actors]),
                                                                    cpu0, strict=True)]
    written: list[str] = []
    if units:
        tell("merging")
        written = _merge(db_path, run_dir, units, settings)
    end = time.monotonic()
    phases = {"start": t_units - t0, "units": t_merge - t_units, "merge": end - t_merge}
    return RayBuildResult(build_id, db_path, run_dir, written, [c.label for c in conds if c.label in done],
                          len(units), len(cached), tokens, end - t0, phases, usage)


def _merge(db_path: Path, run_dir: Path, units: list[Unit], settings: RayBuildSettings) -> list[str]:
    """Merge every unit into the index in one transaction (a new index file is removed on failure)."""
    from saesteer.index.shards import merge_shards

    existed = db_path.exists()
    prov = {"engine": "ray", "run_dir": str(run_dir), "units": len(units), "unit_docs": settings.unit_docs}
    try:
        res = merge_shards([run_dir / u.name for u in units], db_path, one_transaction=True, provenance=prov,
                           wait_s=120.0)
    except BaseException:
        if not existed:
            for p in (db_path, db_path.with_name(db_path.name + ".wal")):
                p.unlink(missing_ok=True)
        raise
    return [c for _, c in res.written]
