"""Options and output helpers shared by every CLI command group."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from saesteer.models.loading import DEFAULT_MODEL

console = Console()
err_console = Console(stderr=True)

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help=f"Model: '{DEFAULT_MODEL}' (embedded default), 'tiny-random', a local HF dir, or a transformer-lens name.")
]
SaeOpt = Annotated[
    str, typer.Option("--sae", "-s", help="SAE: 'default', 'tiny', a local directory, or 'release:sae_id' from the sae-lens registry.")
]
HookOpt = Annotated[
    str | None, typer.Option("--hook", help="Hook name, e.g. blocks.6.hook_resid_post (default: the SAE's own hook).")
]
AllowOtherHookOpt = Annotated[
    bool,
    typer.Option(
        "--allow-other-hook",
        help="Use the SAE at --hook although it was trained at another hook (its features may mean nothing there; warns).",
    ),
]
DbOpt = Annotated[
    Path | None, typer.Option("--db", help="Index file (default: features_db/index.duckdb, or $SAESTEER_DB).")
]
CacheOpt = Annotated[
    Path | None, typer.Option("--model-cache", help="Cache for dequantized models (default: user cache, or $SAESTEER_CACHE_DIR).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]
BuildOpt = Annotated[
    str | None,
    typer.Option("--build", help="Build id or unique prefix (default: the only / most recent build)."),
]


def resolve_db(db: Path | None) -> Path:
    from saesteer.paths import default_db_path

    return db if db is not None else default_db_path()


def emit(rows: Any, *, title: str | None = None, as_json: bool = False, as_csv: bool = False) -> None:
    """Print a pandas DataFrame (or a list of dicts) as a rich table, JSON lines array, or CSV."""
    import pandas as pd

    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if as_json:
        sys.stdout.write(df.to_json(orient="records", force_ascii=False, default_handler=str) + "\n")
        return
    if as_csv:
        sys.stdout.write(df.to_csv(index=False))
        return
    table = Table(title=title, show_lines=False)
    for col in df.columns:
        table.add_column(str(col), overflow="fold")
    for rec in df.itertuples(index=False):
        table.add_row(*[_fmt(v) for v in rec])
    console.print(table)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return "" if v is None else str(v)
