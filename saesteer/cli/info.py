"""``saesteer info``: what would be used, with shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from saesteer.cli.common import (
    AllowOtherHookOpt,
    CacheOpt,
    DbOpt,
    HookOpt,
    JsonOpt,
    ModelOpt,
    SaeOpt,
    console,
    emit_json,
    resolve_db,
)
from saesteer.models.loading import DEFAULT_MODEL


def register(app: typer.Typer) -> None:
    """Add the top-level ``info`` command to ``app``."""
    app.command("info")(info)


def info(
    model: ModelOpt = DEFAULT_MODEL,
    sae: SaeOpt = "default",
    hook: HookOpt = None,
    allow_other_hook: AllowOtherHookOpt = False,
    db: DbOpt = None,
    model_cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the model, the SAE, the cache and the index saesteer would use, with their shapes."""
    run_info(model=model, sae=sae, hook=hook, db=db, model_cache=model_cache, as_json=as_json,
             allow_other_hook=allow_other_hook)


def run_info(
    *, model: str, sae: str, hook: str | None, db: Path | None, model_cache: Path | None, as_json: bool,
    allow_other_hook: bool = False,
) -> None:
    from saesteer.models import load_model, model_source
    from saesteer.paths import cache_dir
    from saesteer.saes import check_compatible, load_sae
    from saesteer.saes.loading import describe

    m = load_model(model, cache=model_cache)
    src = model_source(m)
    s = load_sae(sae, model=m, hook_name=hook, allow_other_hook=allow_other_hook)
    spec = check_compatible(m, s, hook)
    db_path = resolve_db(db)
    index: dict[str, Any] = {"path": str(db_path), "exists": db_path.exists()}
    if db_path.exists():
        from saesteer.index.db import IndexDb

        with IndexDb(db_path, read_only=True) as con:
            index["schema_version"] = con.schema_version()
            index["builds"] = int(con.execute("SELECT count(*) FROM builds").fetchall()[0][0])
            index["conditions"] = int(con.execute("SELECT count(*) FROM conditions").fetchall()[0][0])
    out = {
        "model": {
            "id": src.id, "kind": src.kind, "path": src.path, "weights_hash": src.weights_hash[:16],
            "n_layers": m.cfg.n_layers, "d_model": m.cfg.d_model, "d_vocab": m.cfg.d_vocab, "n_ctx": m.cfg.n_ctx,
        },
        "sae": {k: v for k, v in describe(s).items() if k != "cfg"},
        "hook": {"name": spec.name, "layer": spec.layer, "kind": spec.kind},
        "cache": str(cache_dir(model_cache)),
        "index": index,
    }
    if as_json:
        emit_json(out)
        return
    for section, values in out.items():
        if not isinstance(values, dict):
            values = {"path": values}
        t = Table(title=section, show_header=False, title_justify="left")
        t.add_column("key", style="bold")
        t.add_column("value")
        for k, v in values.items():
            t.add_row(str(k), str(v))
        console.print(t)
