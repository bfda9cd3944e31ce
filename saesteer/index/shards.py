"""Export builds as Parquet and merge shard exports into one index.

Multi-machine recipe: every machine runs the same build with ``shard=(i, n)`` (same model, SAE, hook,
conditions and stat settings, hence the same ``build_id``), exports it with :func:`export_build`, and
one machine merges all exports with :func:`merge_shards`. The statistics are sufficient statistics, so
the merge sums counts, sums and histograms, takes the max of maxima and re-ranks the top examples by
the same total order a single build uses: the merged index equals a single-machine build.

Conditions may also be split across machines instead (each machine builds some conditions unsharded);
the merge copies those. A sharded condition is merged only when all its shards are given together.
An export is a directory with one Parquet file per table and a ``manifest.json``; it is written to a
temporary directory and renamed into place, so an interrupted export leaves nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NamedTuple

from saesteer.errors import IndexDbError, SchemaVersionError
from saesteer.index.db import SCHEMA_VERSION, IndexDb
from saesteer.index.search_table import refresh_search_table

TABLES = ("builds", "conditions", "feature_stats", "top_examples", "feature_output", "token_counts")
# Exported when present; an export from before schema 2 lacks them and still merges (without them).
OPTIONAL_TABLES = ("condition_signals",)
EXPORT_KIND = "saesteer.index-export"
EXPORT_VERSION = 1
MANIFEST = "manifest.json"


class ExportResult(NamedTuple):
    out_dir: Path
    build_ids: list[str]
    rows: dict[str, int]


class MergeResult(NamedTuple):
    db_path: Path
    written: list[tuple[str, str]]
    skipped: list[tuple[str, str]]


def resolve_build_ids(db: IndexDb, build_id: str | None) -> list[str]:
    """All builds (``None``) or the one build whose id starts with ``build_id``."""
    ids = [str(r[0]) for r in db.query("index_build_ids", [build_id or ""]).fetchall()]
    if not ids:
        if not build_id:
            raise IndexDbError(f"{db.path} has no builds")
        known = [str(r[0]) for r in db.query("index_build_ids", [""]).fetchall()]
        raise IndexDbError(
            f"no build {build_id!r} in {db.path} (builds: {', '.join(known) or 'none'}; see `saesteer index ls`)"
        )
    if build_id and len(ids) > 1:
        raise IndexDbError(f"build id prefix {build_id!r} is ambiguous: {', '.join(ids)}")
    return ids


def export_build(db_path: str | Path, out_dir: str | Path, build_id: str | None = None) -> ExportResult:
    """Write one Parquet file per table (rows of the chosen build, or of every build) and a manifest."""
    import pyarrow.parquet as pq

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise IndexDbError(f"{out} already exists and is not empty; choose a new --out directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        rows: dict[str, int] = {}
        with IndexDb(db_path, read_only=True) as db:
            ids = resolve_build_ids(db, build_id)
            for table in TABLES + OPTIONAL_TABLES:
                if not db.query("select_has_table", {"name": table}).fetchall()[0][0]:
                    continue
                reader = _stream(db, f"index_export_{table}", {"build_ids": ids})
                with pq.ParquetWriter(tmp / f"{table}.parquet", reader.schema) as writer:
                    rows[table] = 0
                    for batch in reader:
                        writer.write_batch(batch)
                        rows[table] += batch.num_rows
            conds = db.fetch_df(
                "SELECT build_id, condition, source_hash, source::VARCHAR AS source FROM conditions "
                "WHERE list_contains($ids, build_id) ORDER BY build_id, condition",
                {"ids": ids},
            )
        manifest = {
            "kind": EXPORT_KIND,
            "version": EXPORT_VERSION,
            "schema_version": SCHEMA_VERSION,
            "build_ids": ids,
            "rows": rows,
            "conditions": [
                {
                    "build_id": r.build_id,
                    "condition": r.condition,
                    "source_hash": r.source_hash,
                    "shard": _shard_of(r.source),
                }
                for r in conds.itertuples()
            ],
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, ids, rows)


def _stream(db: IndexDb, query: str, params: dict[str, Any]) -> Any:
    """A streaming Arrow reader over a named query (bounded memory for big tables)."""
    import duckdb

    from saesteer.index.db import load_query

    sql = load_query(query)
    try:
        return db.con.sql(sql, params=params).to_arrow_reader(65536)
    except duckdb.Error as exc:
        raise IndexDbError(f"DuckDB error: {exc}", sql) from exc


def _shard_of(source_json: str) -> dict[str, int]:
    shard = json.loads(source_json).get("shard") or {}
    return {"index": int(shard.get("index", 0)), "count": int(shard.get("count", 1))}


def read_manifest(path: Path) -> dict[str, Any]:
    man = path / MANIFEST
    if not man.is_file():
        raise IndexDbError(
            f"{path} is not a saesteer index export (no {MANIFEST}); create one with `saesteer index export`"
        )
    try:
        manifest = json.loads(man.read_text())
    except json.JSONDecodeError as exc:
        raise IndexDbError(f"{man} is corrupt: {exc}") from exc
    if manifest.get("kind") != EXPORT_KIND:
        raise IndexDbError(f"{man} is not a saesteer index export manifest")
    if (
        int(manifest.get("schema_version", 0)) > SCHEMA_VERSION
        or int(manifest.get("version", 0)) > EXPORT_VERSION
    ):
        raise SchemaVersionError(
            f"{path} was exported by a newer saesteer (schema {manifest.get('schema_version')}); upgrade"
        )
    missing = [t for t in TABLES if not (path / f"{t}.parquet").is_file()]
    if missing:
        raise IndexDbError(f"{path} is an incomplete export: missing {', '.join(missing)}.parquet")
    for table in (*TABLES, *OPTIONAL_TABLES):
        _check_parquet(path / f"{table}.parquet", (manifest.get("rows") or {}).get(table))
    return manifest


def _check_parquet(file: Path, rows: Any) -> None:
    """Refuse a Parquet file that is truncated or corrupt, or holds another row count than the export's
    manifest says, before the merge opens (let alone creates) the index."""
    import pyarrow.parquet as pq

    if not file.is_file():
        return
    try:
        meta = pq.ParquetFile(file).metadata
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError... for a damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IndexDbError(
            f"{file} is damaged (truncated or corrupt: {first}); export that build again with `saesteer index export`"
        ) from exc
    if isinstance(rows, int) and meta.num_rows != rows:
        raise IndexDbError(
            f"{file} is damaged: it holds {meta.num_rows} rows but the export's manifest says {rows}; export "
            "that build again with `saesteer index export`"
        )


class _Group(NamedTuple):
    build_id: str
    condition: str
    source_hash: str
    inputs: list[Path]


def _plan(manifests: list[tuple[Path, dict[str, Any]]]) -> list[_Group]:
    """Group conditions across exports and check that every sharded condition is complete."""
    seen: dict[tuple[str, str], list[tuple[Path, dict[str, Any]]]] = defaultdict(list)
    for path, man in manifests:
        for c in man["conditions"]:
            seen[(c["build_id"], c["condition"])].append((path, c))
    groups = []
    for (build, cond), entries in sorted(seen.items()):
        hashes = {c["source_hash"] for _, c in entries}
        if len(hashes) > 1:
            raise IndexDbError(
                f"{cond} of build {build} was built from different data in {', '.join(str(p) for p, _ in entries)}"
            )
        counts = {c["shard"]["count"] for _, c in entries}
        if len(counts) > 1:
            raise IndexDbError(
                f"{cond} of build {build}: exports disagree on the number of shards ({sorted(counts)})"
            )
        n = counts.pop()
        have: dict[int, Path] = {}
        for path, c in entries:
            i = c["shard"]["index"]
            if i in have:
                raise IndexDbError(
                    f"{cond} of build {build}: shard {i}/{n} appears twice ({have[i]} and {path})"
                )
            have[i] = path
        missing = sorted(set(range(n)) - set(have))
        if missing:
            raise IndexDbError(
                f"{cond} of build {build}: shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing; "
                "merge all shards of a build together"
            )
        groups.append(_Group(build, cond, hashes.pop(), [have[i] for i in range(n)]))
    return groups


def merge_shards(
    inputs: Sequence[str | Path],
    into_db: str | Path,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    wait_s: float = 30.0,
    one_transaction: bool = False,
    provenance: dict[str, Any] | None = None,
    only: Collection[tuple[str, str]] | None = None,
) -> MergeResult:
    """Merge shard exports into ``into_db`` (finished conditions are skipped).

    One transaction per condition, or with ``one_transaction`` a single transaction for everything
    (builds, every condition, the logit lens): the index then changes only when the whole merge commits.
    Every table is merged by SQL over the Parquet files (DuckDB streams them), so the merge holds no
    shard in memory. ``provenance`` replaces the ``merged_from`` list in the build's settings.
    ``only``: merge just these ``(build_id, condition)`` pairs (see :mod:`saesteer.index.prebuilt`).
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise IndexDbError("nothing to merge: give one or more export directories")
    manifests = [(p, read_manifest(p)) for p in paths]
    groups = [g for g in _plan(manifests) if only is None or (g.build_id, g.condition) in only]
    written: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    target = Path(into_db)
    existed = target.exists()
    try:
        with IndexDb(into_db, wait_s=wait_s) as db:
            outer = db.transaction() if one_transaction else nullcontext()
            with outer:
                _merge_all(db, paths, manifests, groups, written, skipped, into_db, progress, one_transaction,
                           provenance)
            for build_id in sorted({b for _, m in manifests for b in m["build_ids"]}):
                refresh_search_table(db, build_id)  # what searches read, in one scan (no-op when current)
    except BaseException:
        if not existed and (one_transaction or not written):  # a new index that holds nothing: leave no file
            for p in (target, target.with_name(target.name + ".wal")):
                p.unlink(missing_ok=True)
        raise
    return MergeResult(target, written, skipped)


def _merge_all(
    db: IndexDb,
    paths: list[Path],
    manifests: list[tuple[Path, dict[str, Any]]],
    groups: list[_Group],
    written: list[tuple[str, str]],
    skipped: list[tuple[str, str]],
    into_db: str | Path,
    progress: Callable[[str, int, int], None] | None,
    one_transaction: bool,
    provenance: dict[str, Any] | None,
) -> None:
    def tx() -> Any:
        return nullcontext() if one_transaction else db.transaction()

    _merge_builds(db, paths, tx, provenance)
    for k, g in enumerate(groups):
        if progress is not None:
            progress(f"{g.build_id[:8]} {g.condition}", k, len(groups))
        done = dict(db.query("index_completed_conditions", [g.build_id]).fetchall())
        if g.condition in done:
            if done[g.condition] != g.source_hash:
                raise IndexDbError(
                    f"{into_db} already has {g.condition} of build {g.build_id} from different data (source hash differs)"
                )
            skipped.append((g.build_id, g.condition))
            continue
        with tx():
            _merge_condition(db, g)
        written.append((g.build_id, g.condition))
    for build_id in sorted({b for _, m in manifests for b in m["build_ids"]}):
        if db.query("index_feature_output_count", [build_id]).fetchall()[0][0]:
            continue
        source = next((p for p in paths if _has_rows(p / "feature_output.parquet", build_id)), None)
        if source is not None:
            with tx():
                db.query(
                    "index_merge_feature_output",
                    {"file": str(source / "feature_output.parquet"), "build_id": build_id},
                )


def _has_rows(file: Path, build_id: str) -> bool:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    col = pq.read_table(file, columns=["build_id"]).column("build_id")
    return bool(pc.any(pc.equal(col, build_id)).as_py())


def _merge_builds(
    db: IndexDb, paths: list[Path], tx: Callable[[], Any], provenance: dict[str, Any] | None
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: dict[str, dict[str, Any]] = {}
    for p in paths:
        for row in pq.read_table(p / "builds.parquet").to_pylist():
            rows.setdefault(row["build_id"], row)
    with tx():
        for build_id, row in rows.items():
            if db.query("index_build_exists", [build_id]).fetchall()[0][0]:
                continue
            settings = json.loads(row["settings"])
            settings["shard"] = None
            if provenance is None:
                settings["merged_from"] = [str(p) for p in paths]
            else:
                settings.update(provenance)
            row = {**row, "settings": json.dumps(settings)}
            table = pa.Table.from_pylist([row], schema=pq.read_schema(paths[0] / "builds.parquet"))
            db.insert_arrow("builds", table)


def _merge_condition(db: IndexDb, g: _Group) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def files(table: str) -> list[str]:
        return [str(p / f"{table}.parquet") for p in g.inputs]

    params = {"build_id": g.build_id, "condition": g.condition}
    db.query("index_merge_feature_stats", {**params, "files": files("feature_stats")})
    top_k = int(db.execute("SELECT top_k FROM builds WHERE build_id = ?", [g.build_id]).fetchall()[0][0])
    db.query("index_merge_top_examples", {**params, "files": files("top_examples"), "top_k": top_k})
    db.query("index_merge_token_counts", {**params, "files": files("token_counts")})
    for table in OPTIONAL_TABLES:
        if all(Path(f).is_file() for f in files(table)):
            db.query(f"index_merge_{table}", {**params, "files": files(table)})
    parts = [
        r
        for f in files("conditions")
        for r in pq.read_table(f).to_pylist()
        if r["build_id"] == g.build_id and r["condition"] == g.condition
    ]
    first = parts[0]
    source = json.loads(first["source"])
    source["shard"] = {"index": 0, "count": 1, "merged_shards": len(parts)}
    row = {
        **first,
        "source": json.dumps(source, sort_keys=True),
        "n_docs": sum(int(r["n_docs"]) for r in parts),
        "n_tokens": sum(int(r["n_tokens"]) for r in parts),
        "n_bos": sum(int(r["n_bos"]) for r in parts),
        "started_at": min((r["started_at"] for r in parts if r["started_at"] is not None), default=None),
        "completed_at": max(r["completed_at"] for r in parts),
    }
    schema = pq.read_schema(files("conditions")[0])
    db.insert_arrow("conditions", pa.Table.from_pylist([row], schema=schema))
