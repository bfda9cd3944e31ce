"""Provenance of a build: the ``builds`` row (model, SAE, hook, dtype, tokenizer, settings, package
versions) and the stable ``build_id``, plus the ``conditions`` row of a finished condition."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pyarrow as pa
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from saesteer.corpus.sources import Condition
    from saesteer.index.build import BuildConfig
    from saesteer.models.hooks import HookSpec

PACKAGES = (
    "saesteer",
    "torch",
    "transformer-lens",
    "sae-lens",
    "transformers",
    "datasets",
    "duckdb",
    "numpy",
    "pyarrow",
)


def now() -> datetime:
    """The current UTC time without tzinfo (DuckDB ``TIMESTAMP``)."""
    return datetime.now(UTC).replace(tzinfo=None)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def stat_settings(config: BuildConfig, prepend_bos: bool) -> dict[str, Any]:
    """The settings that change what is stored: they enter the build id (the shard does not)."""
    return {
        "threshold": float(config.threshold),
        "hist_edges": [float(x) for x in config.hist_edges],
        "top_k": int(config.top_k),
        "context_window": int(config.context_window),
        "exclude": sorted(config.exclude),
        "max_seq_len": int(config.max_seq_len),
        "prepend_bos": bool(prepend_bos),
        # threshold builds count activations <= threshold as 0 in every statistic since issue 12: a new id,
        # so a resumed older threshold build never mixes both meanings (threshold-0 ids are unchanged)
        **({"threshold_zeroes_below": True} if config.threshold > 0 else {}),
    }


class BuildInfo(NamedTuple):
    build_id: str
    row: dict[str, Any]


def build_info(
    model: HookedTransformer, sae: SAE, spec: HookSpec, config: BuildConfig, prepend_bos: bool
) -> BuildInfo:
    """The build id and ``builds`` row for this model, SAE, hook and config."""
    from saesteer.models import model_source
    from saesteer.saes import sae_source

    msrc, ssrc = model_source(model), sae_source(sae)
    stats = stat_settings(config, prepend_bos)
    ident = {"model": msrc.weights_hash, "sae": ssrc.weights_hash, "hook": spec.name, **stats}
    build_id = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    tok = model.tokenizer
    tokenizer = (
        f"{type(tok).__name__}:{getattr(tok, 'name_or_path', '')}:{len(tok) if tok is not None else 0}"
    )
    settings = {
        "batch_size": config.batch_size,
        "pad_multiple": config.pad_multiple,
        "chunk_elements": config.chunk_elements,
        "shard": list(config.shard) if config.shard else None,
        "prepend_bos": prepend_bos,
        "model_kind": msrc.kind,
        "sae_kind": ssrc.kind,
        "sae_format": ssrc.format,
        "device": str(model.cfg.device),
    }
    row = builds_row(
        build_id=build_id,
        model_id=msrc.id,
        model_hash=msrc.weights_hash,
        sae_id=ssrc.id,
        sae_hash=ssrc.weights_hash,
        hook_name=spec.name,
        d_model=int(model.cfg.d_model),
        d_sae=int(sae.cfg.d_sae),
        dtype=str(model.cfg.dtype).replace("torch.", ""),
        tokenizer=tokenizer,
        stats=stats,
        versions=package_versions(),
        settings=settings,
    )
    return BuildInfo(build_id, row)


def builds_row(
    *,
    build_id: str,
    model_id: str,
    model_hash: str,
    sae_id: str,
    sae_hash: str,
    hook_name: str,
    d_model: int,
    d_sae: int,
    dtype: str,
    tokenizer: str,
    stats: dict[str, Any],
    versions: dict[str, str],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The ``builds`` row; ``stats`` is :func:`stat_settings` (the settings that change what is stored)."""
    return {
        "build_id": build_id,
        "model_id": model_id,
        "model_hash": model_hash,
        "sae_id": sae_id,
        "sae_hash": sae_hash,
        "hook_name": hook_name,
        "d_model": int(d_model),
        "d_sae": int(d_sae),
        "dtype": dtype,
        "tokenizer": tokenizer,
        "threshold": stats["threshold"],
        "hist_edges": stats["hist_edges"],
        "top_k": stats["top_k"],
        "context_window": stats["context_window"],
        "exclude": stats["exclude"],
        "max_seq_len": stats["max_seq_len"],
        "versions": json.dumps(versions),
        "settings": json.dumps(settings),
    }


def builds_table(row: dict[str, Any]) -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {
            **{k: [row[k]] for k in row if k not in ("hist_edges", "exclude")},
            "hist_edges": pa.array([row["hist_edges"]], type=pa.list_(pa.float64())),
            "exclude": pa.array([row["exclude"]], type=pa.list_(pa.string())),
        }
    )


def condition_row(
    build_id: str,
    condition: Condition,
    *,
    source_hash: str,
    shard: tuple[int, int] | None,
    n_docs: int,
    n_tokens: int,
    n_bos: int,
    started_at: datetime,
    completed_at: datetime,
) -> pa.Table:
    """The ``conditions`` row of a finished condition (the shard goes into the ``source`` JSON)."""
    index, count = shard if shard is not None else (0, 1)
    source = {**condition.describe(), "shard": {"index": index, "count": count}}
    return conditions_table(
        build_id, condition.label, condition.key, condition.value, condition.is_random,
        source=source, source_hash=source_hash, n_docs=n_docs, n_tokens=n_tokens, n_bos=n_bos,
        started_at=started_at, completed_at=completed_at,
    )


def conditions_table(
    build_id: str,
    label: str,
    key: str,
    value: str,
    is_random: bool,
    *,
    source: dict[str, Any],
    source_hash: str,
    n_docs: int,
    n_tokens: int,
    n_bos: int,
    started_at: datetime,
    completed_at: datetime,
) -> pa.Table:
    """One ``conditions`` row as an Arrow table (``source`` is stored as sorted JSON)."""
    import pyarrow as pa

    return pa.table(
        {
            "build_id": [build_id],
            "condition": [label],
            "label_key": [key],
            "label_value": [value],
            "is_random": [is_random],
            "source": [json.dumps(source, sort_keys=True, default=str)],
            "source_hash": [source_hash],
            "n_docs": pa.array([n_docs], pa.int64()),
            "n_tokens": pa.array([n_tokens], pa.int64()),
            "n_bos": pa.array([n_bos], pa.int64()),
            "started_at": [started_at],
            "completed_at": [completed_at],
        }
    )
