"""``saesteer features selective``: which conditions of a label have features selective for them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from saesteer.cli.common import BuildOpt, DbOpt, JsonOpt, console, emit_json, resolve_db
from saesteer.cli.settings import param, settings_command


def _selective(
    values: dict[str, Any], *, key: str, build: str | None, db: Path | None, as_json: bool
) -> None:
    from saesteer.select.selective import SelectivityBar, selective_features
    from saesteer.settings import settings_from

    bar: SelectivityBar = settings_from(SelectivityBar, values)
    table = selective_features(resolve_db(db), key=key, bar=bar, build_id=build)
    if as_json:
        emit_json(
            {
                "build_id": table.build_id,
                "key": table.key,
                "bar": bar.describe(),
                "random": table.random,
                "n_selective_conditions": table.n_selective_conditions,
                "conditions": [r._asdict() for r in table.rows],
            }
        )
        return
    from rich.table import Table

    out = Table(title=f"features selective for each {key}=* (build {table.build_id})", caption=bar.describe())
    for col in ("condition", "tokens", "selective", "best", "f there", "f other (max)", "f random"):
        out.add_column(col, justify="left" if col == "condition" else "right", no_wrap=True)
    for r in table.rows:
        none = r.feature is None
        out.add_row(
            r.condition,
            f"{r.n_tokens:,}",
            "[red]0[/red]" if none else str(r.n_selective),
            "-" if none else str(r.feature),
            "-" if none else f"{r.f_target:.3f}",
            "-" if none else f"{r.f_other_max:.3f} {(r.other or '').partition('=')[2]}",
            "-" if none else f"{r.f_random:.4f}",
        )
    console.print(out)
    missing = [r.condition.partition("=")[2] for r in table.rows if r.feature is None]
    console.print(
        f"{table.n_selective_conditions} of {len(table.rows)} conditions have a selective feature"
        + (f" (none for {', '.join(missing)})" if missing else "")
    )


def _make() -> Any:
    from saesteer.select.selective import SelectivityBar

    return settings_command(
        SelectivityBar,
        _selective,
        doc="For every condition of KEY (every language, say), count the features selective for it and show the best.",
        before=[param("key", Annotated[str, typer.Option("--key", help="The label whose conditions to check.")],
                      "language")],
        after=[param("build", BuildOpt, None), param("db", DbOpt, None), param("as_json", JsonOpt, False)],
    )


# the options are SelectivityBar's fields (saesteer.cli.settings): its defaults and docstrings
selective = _make()
