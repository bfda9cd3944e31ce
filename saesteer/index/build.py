"""Build the feature-statistics index: conditions -> activations -> per-feature statistics -> DuckDB.

One condition at a time is accumulated in memory (O(d_sae) statistics, O(d_sae x top_k) examples);
then the database is opened and that condition's ``feature_stats``, ``top_examples``, ``token_counts``,
``condition_signals`` (:mod:`saesteer.index.domain`) and ``conditions`` rows are written in ONE
transaction. A ``conditions`` row therefore means
"complete": a crash or Ctrl-C leaves no partial condition, and running the same build again skips the
conditions that finished (same source hash) and errors if a label now points at different data.

The database is held only while committing, so readers can query during a build.

``build_id`` is a stable hash of the model and SAE weights hashes, the hook and the settings that
change what is stored (threshold, histogram edges, top-k, context window, exclusions, max_seq_len);
it does not depend on the shard, so the shards of one build share it (see :mod:`saesteer.index.shards`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from saesteer.activations import (
    DEFAULT_EXCLUDE,
    Vocab,
    batches,
    exclusion_table,
    stream_activations,
    tokenized_documents,
    vocab_info,
)
from saesteer.corpus.random_tokens import RandomTokens
from saesteer.corpus.sources import Condition
from saesteer.errors import CorpusError, IndexDbError, SaesteerError
from saesteer.index.db import IndexDb
from saesteer.index.domain import backfill_signals, signal_counts, signal_table
from saesteer.index.provenance import BuildInfo, build_info, builds_table, condition_row, now
from saesteer.index.search_table import refresh_search_table
from saesteer.index.stats import ConditionStats, FeatureStatsAccumulator, default_hist_edges
from saesteer.index.tokens import TokenStrings
from saesteer.index.topk import POS_BITS, TopExamples, TopKAccumulator, top_table

if TYPE_CHECKING:
    from datetime import datetime

    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from saesteer.models.hooks import HookSpec

log = logging.getLogger(__name__)
_TOP_SLICE = 500_000


@dataclass(frozen=True)
class BuildConfig:
    """Settings of a build. ``threshold``, ``hist_edges``, ``top_k``, ``context_window``, ``exclude`` and
    ``max_seq_len`` change what is stored (they enter the build id); the rest only change speed/memory.

    ``shard=(i, n)`` keeps the documents whose index ``% n == i`` (ids stay global).
    """

    threshold: float = 0.0
    top_k: int = 10
    context_window: int = 8
    max_seq_len: int = 256
    batch_size: int = 16
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    hist_edges: tuple[float, ...] = field(default_factory=lambda: tuple(default_hist_edges()))
    shard: tuple[int, int] | None = None
    pad_multiple: int = 16
    chunk_elements: int = 1 << 24
    feature_output: bool = True
    feature_output_k: int = 10
    lock_wait_s: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "hist_edges", tuple(float(x) for x in self.hist_edges))
        if self.shard is not None:
            i, n = self.shard
            if n < 1 or not 0 <= i < n:
                raise SaesteerError(f"shard must be (i, n) with 0 <= i < n, got {self.shard}")
            object.__setattr__(self, "shard", (int(i), int(n)))
        checks = {
            "top_k": self.top_k >= 0,
            "context_window": self.context_window >= 0,
            "max_seq_len": 2 <= self.max_seq_len < (1 << POS_BITS),
            "batch_size": self.batch_size >= 1,
            "pad_multiple": self.pad_multiple >= 1,
            "chunk_elements": self.chunk_elements >= 1,
            "threshold": self.threshold >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise SaesteerError(
                f"invalid build setting(s): {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}"
            )


@dataclass(frozen=True)
class BuildProgress:
    """A progress event: ``status`` is start | batch | collected | written | skipped | imported | feature_output."""

    condition: str
    index: int  # 0-based position of the condition in the build
    n_conditions: int
    status: str
    n_docs: int
    n_tokens: int
    total_docs: int | None


class BuildResult(NamedTuple):
    build_id: str
    db_path: Path
    written: list[str]
    skipped: list[str]
    n_tokens: dict[str, int]
    seconds: float
    imported: tuple[str, ...] = ()  # of ``skipped``, the ones imported from ``reuse``


class CollectedCondition(NamedTuple):
    stats: ConditionStats
    top: TopExamples
    n_docs: int
    started_at: datetime


ProgressFn = Callable[[BuildProgress], None]


def as_conditions(conditions: Sequence[Condition | RandomTokens]) -> list[Condition]:
    out = [c.condition() if isinstance(c, RandomTokens) else c for c in conditions]
    if not out:
        raise CorpusError("no conditions to index: give text sources (--text/--hf/--bundled) and/or --random")
    labels = [c.label for c in out]
    dupes = sorted({lb for lb in labels if labels.count(lb) > 1})
    if dupes:
        raise CorpusError(f"duplicate condition label(s): {', '.join(dupes)}")
    return out


def build_index(
    db_path: str | Path,
    model: HookedTransformer,
    sae: SAE,
    conditions: Sequence[Condition | RandomTokens],
    config: BuildConfig | None = None,
    hook_name: str | None = None,
    progress: ProgressFn | None = None,
    reuse: Sequence[Path] = (),
) -> BuildResult:
    """Index ``conditions`` into ``db_path`` (created if needed); resumable, one transaction per condition.

    ``reuse``: index exports (e.g. :func:`saesteer.index.prebuilt.shipped_exports`) whose conditions of this
    very build (same build id, same source hash) are imported instead of recomputed (status ``imported``)."""
    from saesteer.saes import check_compatible

    t0 = time.monotonic()
    config = config or BuildConfig()
    db_path = Path(db_path)
    spec = check_compatible(model, sae, hook_name)
    conds = as_conditions(conditions)
    vocab = vocab_info(model)
    exclusion_table(vocab, config.exclude)
    info = build_info(model, sae, spec, config, vocab.prepend_bos)
    for c in conds:
        c.validate()
    hashes = {c.label: c.source_hash() for c in conds}
    done = finished_conditions(db_path, info.build_id, config.lock_wait_s)  # reads only: nothing is created yet
    changed = [lb for lb in hashes if lb in done and done[lb] != hashes[lb]]
    if changed:
        raise IndexDbError(
            f"build {info.build_id} in {db_path} already has condition(s) {', '.join(changed)} built from different "
            f"data (source hash differs); use another label, another --db, or delete that build with "
            f"`saesteer index rm {info.build_id}`"
        )
    imported: list[str] = []
    if reuse:
        from saesteer.index.prebuilt import import_conditions

        imported = import_conditions(db_path, info.build_id, hashes, reuse, skip=done, wait_s=config.lock_wait_s)
        done = {**done, **{lb: hashes[lb] for lb in imported}}
    strings = TokenStrings(model.tokenizer)
    written, skipped, n_tokens = [], [], {}
    for i, cond in enumerate(conds):
        emit = _emitter(progress, cond, i, len(conds))
        if cond.label in done:
            skipped.append(cond.label)
            emit("imported" if cond.label in imported else "skipped", 0, 0)
            continue
        got = collect_condition(model, sae, cond, spec=spec, vocab=vocab, config=config, emit=emit)
        if _write_condition(
            db_path, info.build_id, cond, got, hashes[cond.label], config, model, vocab, strings,
            build_row=info.row, plan=hashes,
        ):
            written.append(cond.label)
        else:
            skipped.append(cond.label)
        n_tokens[cond.label] = got.stats.n_tokens
        emit("written", got.n_docs, got.stats.n_tokens)
    if config.feature_output:
        _ensure_feature_output(db_path, info.build_id, model, sae, vocab, strings, config, progress)
    with IndexDb(db_path, wait_s=max(config.lock_wait_s, 120.0)) as db:
        backfill_signals(db, info.build_id, strings)  # imported / pre-schema-2 conditions: from token counts
        refresh_search_table(db, info.build_id)  # what searches read, in one scan (no-op when current)
    return BuildResult(info.build_id, db_path, written, skipped, n_tokens, time.monotonic() - t0, tuple(imported))


def _emitter(
    progress: ProgressFn | None, cond: Condition, index: int, total: int
) -> Callable[[str, int, int], None]:
    total_docs = cond.count()

    def emit(status: str, n_docs: int, n_tok: int) -> None:
        if progress is not None:
            progress(BuildProgress(cond.label, index, total, status, n_docs, n_tok, total_docs))

    return emit


def finished_conditions(db_path: Path, build_id: str, wait_s: float = 30.0) -> dict[str, str]:
    """The finished conditions ``{label: source_hash}`` of a build, read without creating or changing
    anything (no index file yet: none)."""
    if not db_path.exists():
        return {}
    with IndexDb(db_path, read_only=True, wait_s=wait_s) as db:
        return {str(c): str(h) for c, h in db.query("index_completed_conditions", [build_id]).fetchall()}


def _record_plan(db: IndexDb, build_id: str, plan: dict[str, str]) -> None:
    """Replace the build's plan by this run's conditions (``index ls`` marks a build whose planned
    conditions are not all finished as interrupted; ``index rm`` refuses while the planning process lives)."""
    import os
    import socket

    import pyarrow as pa

    db.execute("DELETE FROM planned_conditions WHERE build_id = ?", [build_id])
    labels = sorted(plan)
    db.insert_arrow(
        "planned_conditions",
        pa.table(
            {
                "build_id": [build_id] * len(labels),
                "condition": labels,
                "source_hash": [plan[lb] for lb in labels],
                "planned_at": pa.array([now()] * len(labels), pa.timestamp("us")),
                "pid": pa.array([os.getpid()] * len(labels), pa.int32()),
                "host": [socket.gethostname()] * len(labels),
            }
        ),
    )


def _open_build(db_path: Path, build_id: str, row: dict[str, Any], wait_s: float) -> dict[str, str]:
    """Create the build row if needed; return the finished conditions ``{label: source_hash}``."""
    with IndexDb(db_path, wait_s=wait_s) as db:
        with db.transaction():
            if not db.query("index_build_exists", [build_id]).fetchall()[0][0]:
                db.insert_arrow("builds", builds_table(row))
        return {str(c): str(h) for c, h in db.query("index_completed_conditions", [build_id]).fetchall()}


def collect_condition(
    model: HookedTransformer,
    sae: SAE,
    cond: Condition,
    *,
    spec: HookSpec,
    vocab: Vocab,
    config: BuildConfig,
    emit: Callable[[str, int, int], None] | None = None,
) -> CollectedCondition:
    """Run one condition through the model and SAE and accumulate its statistics and top examples."""
    import torch

    d_sae = int(sae.cfg.d_sae)
    device = sae.W_enc.device
    started = now()
    acc = FeatureStatsAccumulator(
        d_sae, len(vocab.kinds), threshold=config.threshold, hist_edges=list(config.hist_edges), device=device
    )
    topk = TopKAccumulator(d_sae, config.top_k, threshold=config.threshold, device=device)
    counts = [0, 0]

    def on_batch(n_docs: int, n_tok: int) -> None:
        counts[0] += n_docs
        counts[1] += n_tok
        if emit is not None:
            emit("batch", counts[0], counts[1])

    if emit is not None:
        emit("start", 0, 0)
    docs = tokenized_documents(
        cond, model.tokenizer, vocab, max_seq_len=_seq_len(model, config), shard=config.shard
    )
    stream = stream_activations(
        model,
        sae,
        batches(docs, batch_size=config.batch_size, pad_multiple=config.pad_multiple, pad_id=vocab.pad_id),
        spec=spec,
        vocab=vocab,
        exclude=config.exclude,
        chunk_elements=config.chunk_elements,
        on_batch=on_batch,
    )
    with torch.inference_mode(), closing(stream):
        for chunk in stream:
            nz = acc.update(chunk)
            topk.update(chunk, nz)
    stats = acc.result()
    if config.shard is None and counts[0] == 0:
        raise CorpusError(f"condition {cond.label}: empty corpus (no documents)")
    if config.shard is None and stats.n_tokens == 0:
        raise CorpusError(
            f"condition {cond.label}: no tokens left after excluding {', '.join(config.exclude)}; check the corpus"
        )
    if emit is not None:
        emit("collected", counts[0], stats.n_tokens)
    return CollectedCondition(stats, topk.result(), counts[0], started)


def _seq_len(model: HookedTransformer, config: BuildConfig) -> int:
    """``max_seq_len``, capped at the model's context length."""
    return min(config.max_seq_len, int(model.cfg.n_ctx))


def _slices(top: TopExamples, size: int) -> list[TopExamples]:
    n = len(top.feature)
    return [TopExamples(*(a[i : i + size] for a in top)) for i in range(0, max(n, 1), size)]


def _write_condition(
    db_path: Path,
    build_id: str,
    cond: Condition,
    got: CollectedCondition,
    source_hash: str,
    config: BuildConfig,
    model: HookedTransformer,
    vocab: Vocab,
    strings: TokenStrings,
    *,
    build_row: dict[str, Any] | None = None,
    plan: dict[str, str] | None = None,
) -> bool:
    """Write one condition in one transaction; False if another writer finished it first. With
    ``build_row`` the build's row is created in that same transaction if missing (so a build that never
    finished a condition leaves nothing behind), with ``plan`` the run's planned conditions are recorded."""
    needed = got.top.doc_ids()
    doc_tokens = {
        d.doc_id: d.ids
        for d in tokenized_documents(
            cond, model.tokenizer, vocab, max_seq_len=_seq_len(model, config), shard=config.shard, only=needed
        )
    }
    stats_t = got.stats.feature_table(build_id, cond.label)
    tokens_t = got.stats.token_table(build_id, cond.label)
    signals_t = signal_table(build_id, cond.label, signal_counts(got.stats.token_counts, strings))
    row = condition_row(
        build_id,
        cond,
        source_hash=source_hash,
        shard=config.shard,
        n_docs=got.n_docs,
        n_tokens=got.stats.n_tokens,
        n_bos=got.stats.n_bos,
        started_at=got.started_at,
        completed_at=now(),
    )
    with IndexDb(db_path, wait_s=max(config.lock_wait_s, 120.0)) as db, db.transaction():
        finished = dict(db.query("index_completed_conditions", [build_id]).fetchall())
        if build_row is not None and not db.query("index_build_exists", [build_id]).fetchall()[0][0]:
            db.insert_arrow("builds", builds_table(build_row))
        if plan is not None:
            _record_plan(db, build_id, plan)
        if cond.label in finished:
            if finished[cond.label] != source_hash:
                raise IndexDbError(f"condition {cond.label} was written concurrently from different data")
            log.warning("condition %s was finished by another writer; keeping theirs", cond.label)
            return False
        db.insert_arrow("feature_stats", stats_t)
        for part in _slices(got.top, _TOP_SLICE):  # bounded memory for very wide SAEs
            db.insert_arrow(
                "top_examples",
                top_table(part, build_id, cond.label, doc_tokens, config.context_window, strings),
            )
        db.insert_arrow("token_counts", tokens_t)
        db.insert_arrow("condition_signals", signals_t)
        db.insert_arrow("conditions", row)
    return True


def _ensure_feature_output(
    db_path: Path,
    build_id: str,
    model: HookedTransformer,
    sae: SAE,
    vocab: Vocab,
    strings: TokenStrings,
    config: BuildConfig,
    progress: ProgressFn | None,
) -> None:
    from saesteer.index.logit_lens import feature_output_table

    with IndexDb(db_path, wait_s=config.lock_wait_s) as db:
        if db.query("index_feature_output_count", [build_id]).fetchall()[0][0]:
            return
    if progress is not None:
        progress(BuildProgress("feature_output", 0, 1, "feature_output", 0, 0, None))
    table = feature_output_table(
        model,
        sae,
        build_id,
        k=config.feature_output_k,
        vocab=vocab,
        token_strings=strings,
        chunk_elements=config.chunk_elements,
    )
    with IndexDb(db_path, wait_s=max(config.lock_wait_s, 120.0)) as db, db.transaction():
        if not db.query("index_feature_output_count", [build_id]).fetchall()[0][0]:
            db.insert_arrow("feature_output", table)


class BuildContext(NamedTuple):
    """What every condition of a build shares: the hook, the vocabulary, the build row, token strings."""

    spec: HookSpec
    vocab: Vocab
    info: BuildInfo
    strings: TokenStrings


def prepare_build(
    model: HookedTransformer, sae: SAE, config: BuildConfig, hook_name: str | None = None
) -> BuildContext:
    """Check the model and SAE and compute the build id once (e.g. per worker of a distributed build)."""
    from saesteer.saes import check_compatible

    spec = check_compatible(model, sae, hook_name)
    vocab = vocab_info(model)
    exclusion_table(vocab, config.exclude)
    info = build_info(model, sae, spec, config, vocab.prepend_bos)
    return BuildContext(spec, vocab, info, TokenStrings(model.tokenizer))


def build_condition_into(
    db_path: Path,
    model: HookedTransformer,
    sae: SAE,
    ctx: BuildContext,
    cond: Condition,
    source_hash: str,
    config: BuildConfig,
    emit: Callable[[str, int, int], None] | None = None,
) -> CollectedCondition:
    """Collect one condition (or its ``config.shard``) and write it to ``db_path`` exactly as
    :func:`build_index` does (the same rows, one transaction)."""
    _open_build(db_path, ctx.info.build_id, ctx.info.row, config.lock_wait_s)
    got = collect_condition(model, sae, cond, spec=ctx.spec, vocab=ctx.vocab, config=config, emit=emit)
    _write_condition(db_path, ctx.info.build_id, cond, got, source_hash, config, model, ctx.vocab, ctx.strings)
    return got


def build_feature_output_into(
    db_path: Path, model: HookedTransformer, sae: SAE, ctx: BuildContext, config: BuildConfig
) -> None:
    """Write the build row and the logit-lens table (``feature_output``) to ``db_path``."""
    _open_build(db_path, ctx.info.build_id, ctx.info.row, config.lock_wait_s)
    _ensure_feature_output(db_path, ctx.info.build_id, model, sae, ctx.vocab, ctx.strings, config, None)
