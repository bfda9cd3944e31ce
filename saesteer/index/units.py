"""Units of a distributed index build: (condition x document shard) pieces and their Parquet outputs.

A unit is one shard ``i/n`` of one condition (or the build's logit-lens table). A worker builds it into
a private DuckDB file with the code of a plain build (:func:`~saesteer.index.build.build_condition_into`)
and exports it with :func:`~saesteer.index.shards.export_build`: the unit's output is exactly an
``index export`` directory, so the driver merges the units with :func:`~saesteer.index.shards.merge_shards`.

The driver stores each unit under the run directory with a ``unit.json`` that records the unit's key
(build id, condition, source hash, shard) and the sha256 of every file; a unit counts as done only when
that record matches and every file hashes to it, so a rerun redoes a unit whose files are missing,
truncated or from other data. Nothing here imports Ray: the engine only decides where units run.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from saesteer.cluster import RaySettings
from saesteer.corpus.sources import Condition, Document
from saesteer.errors import CorpusError, SaesteerError

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from saesteer.index.build import BuildConfig, BuildContext

UNIT_FILE = "unit.json"
FEATURE_OUTPUT = "feature_output"


@dataclass(frozen=True)
class RayBuildSettings:
    """The engine side of ``index build --engine ray`` (the build itself is the usual spec/flags)."""

    cluster: RaySettings = field(default_factory=RaySettings)
    unit_docs: int = 1000  # documents per unit (a condition of unknown size is one unit)
    run_dir: Path | None = None  # default: <db>.ray/<build id>/


class UnitError(SaesteerError):
    """A unit failed for a reason in its data; the message names the condition and the document."""


class DiskFullError(SaesteerError):
    """No space left where unit files are written."""


@dataclass(frozen=True)
class Unit:
    """Shard ``index/count`` of ``condition`` (``condition == FEATURE_OUTPUT``: the logit-lens table)."""

    condition: str
    source_hash: str
    index: int = 0
    count: int = 1

    @property
    def name(self) -> str:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", self.condition)
        return f"{safe}-{self.source_hash[:12]}-{self.index:04d}of{self.count:04d}"

    def key(self, build_id: str) -> dict[str, Any]:
        return {"build_id": build_id, "condition": self.condition, "source_hash": self.source_hash,
                "shard": [self.index, self.count]}

    def describe(self) -> str:
        if self.condition == FEATURE_OUTPUT:
            return "the logit lens (feature_output)"
        return f"condition {self.condition} shard {self.index}/{self.count}"


def shard_count(cond: Condition, unit_docs: int) -> int:
    """Document shards for a condition: units of about ``unit_docs`` documents (1 when the size is unknown)."""
    n = cond.count()
    return 1 if n is None else max(1, math.ceil(n / unit_docs))


def plan_units(
    conds: list[Condition], hashes: dict[str, str], unit_docs: int, *, feature_output: bool
) -> list[Unit]:
    """Every unit of the given conditions (in build order), then the logit lens if asked for."""
    if unit_docs < 1:
        raise SaesteerError(f"--unit-docs must be at least 1, got {unit_docs}")
    units = [
        Unit(c.label, hashes[c.label], i, n)
        for c in conds
        for n in [shard_count(c, unit_docs)]
        for i in range(n)
    ]
    if feature_output:
        units.append(Unit(FEATURE_OUTPUT, "-"))
    return units


# -- running a unit (on a worker) -----------------------------------------------------------------------
class UnitOutput(NamedTuple):
    files: dict[str, bytes]  # file name -> content (an export directory)
    n_docs: int
    n_tokens: int


class _Tracked:
    """A text source that remembers the next document id, to name the document a data error hit."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.next_doc = 0

    def documents(self) -> Iterator[Document]:
        for doc in self.source.documents():
            yield doc
            self.next_doc = doc.doc_id + 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


def run_unit(
    model: HookedTransformer,
    sae: SAE,
    ctx: BuildContext,
    config: BuildConfig,
    unit: Unit,
    cond: Condition | None,
    scratch: str | None = None,
) -> UnitOutput:
    """Build one unit in a temporary DuckDB file and return its export files (as bytes)."""
    from dataclasses import replace

    from saesteer.index.build import build_condition_into, build_feature_output_into
    from saesteer.index.shards import export_build

    try:
        with tempfile.TemporaryDirectory(prefix="saesteer-unit-", dir=scratch) as tmp:
            db = Path(tmp) / "unit.duckdb"
            n_docs = n_tokens = 0
            if unit.condition == FEATURE_OUTPUT:
                build_feature_output_into(db, model, sae, ctx, replace(config, feature_output=True))
            else:
                assert cond is not None and cond.label == unit.condition
                tracked = cond if cond.is_random else Condition(cond.label, _Tracked(cond.source), cond.max_docs)
                shard_cfg = replace(config, shard=(unit.index, unit.count))
                try:
                    got = build_condition_into(db, model, sae, ctx, tracked, unit.source_hash, shard_cfg)
                except CorpusError as exc:
                    where = f"document {tracked.source.next_doc}" if isinstance(tracked.source, _Tracked) else "a document"
                    raise UnitError(f"condition {unit.condition}, {where} (shard {unit.index}/{unit.count}): {exc}") from exc
                n_docs, n_tokens = got.n_docs, got.stats.n_tokens
            out = Path(tmp) / "export"
            export_build(db, out, ctx.info.build_id)
            files = {f.name: f.read_bytes() for f in sorted(out.iterdir())}
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(
                f"no space left on the worker's scratch disk ({scratch or tempfile.gettempdir()}) building "
                f"{unit.describe()}; free space there or set TMPDIR"
            ) from exc
        raise
    return UnitOutput(files, n_docs, n_tokens)


# -- storing and checking units (on the driver) ---------------------------------------------------------
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def unit_done(run_dir: Path, unit: Unit, build_id: str) -> bool:
    """True when the unit's directory holds its record and every file matches its sha256."""
    d = run_dir / unit.name
    try:
        record = json.loads((d / UNIT_FILE).read_text())
    except (OSError, ValueError):
        return False
    if record.get("key") != unit.key(build_id):
        return False
    files = record.get("files") or {}
    try:
        return bool(files) and all(_file_sha(d / name) == sha for name, sha in files.items())
    except OSError:
        return False


def store_unit(run_dir: Path, unit: Unit, build_id: str, output: UnitOutput) -> Path:
    """Write a unit's files with their hashes into ``run_dir/<unit>`` (staged, then renamed into place)."""
    final = run_dir / unit.name
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{unit.name}.tmp-", dir=run_dir))
        try:
            for name, data in output.files.items():
                (stage / name).write_bytes(data)
            record = {"key": unit.key(build_id), "files": {n: _sha(d) for n, d in output.files.items()},
                      "n_docs": output.n_docs, "n_tokens": output.n_tokens}
            (stage / UNIT_FILE).write_text(json.dumps(record, indent=1))
            if final.exists():
                shutil.rmtree(final)
            os.replace(stage, final)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(
                f"no space left on device in {run_dir} writing {unit.describe()}; free space or pass --run-dir"
            ) from exc
        raise SaesteerError(f"cannot write {unit.describe()} to {run_dir}: {exc}") from exc
    return final


def unit_tokens(run_dir: Path, unit: Unit) -> int:
    """The token count a stored unit recorded (0 if unknown)."""
    try:
        return int(json.loads((run_dir / unit.name / UNIT_FILE).read_text()).get("n_tokens", 0))
    except (OSError, ValueError):
        return 0
