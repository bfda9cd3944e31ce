"""``saesteer features selective``: which conditions of a label have features selective for them."""

from __future__ import annotations

from typing import Annotated

import typer

from saesteer.cli.common import BuildOpt, DbOpt, JsonOpt, console, emit_json, resolve_db


def selective(
    key: Annotated[str, typer.Option("--key", help="The label whose conditions to check.")] = "language",
    min_freq: Annotated[
        float,
        typer.Option(
            "--min-freq", help="A selective feature fires on at least this share of the condition's tokens."
        ),
    ] = 0.05,
    ratio: Annotated[
        float,
        typer.Option(
            "--ratio", help="... at least this many times as often as on any other condition of the label."
        ),
    ] = 3.0,
    random_rel: Annotated[
        float,
        typer.Option(
            "--random-rel",
            help="... and on random tokens at most this times as often as on the condition (as --drop-random).",
        ),
    ] = 0.2,
    random_max_freq: Annotated[
        float | None,
        typer.Option(
            "--random-max-freq", help="... and on at most this share of random tokens (absolute cap)."
        ),
    ] = None,
    no_random: Annotated[
        bool, typer.Option("--no-random", help="No random-token filter (for an index without a baseline).")
    ] = False,
    build: BuildOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """For every condition of KEY (every language, say), count the features selective for it and show the best."""
    from saesteer.select.selective import SelectivityBar, selective_features

    bar = SelectivityBar(min_freq, ratio, random_rel, random_max_freq, use_random=not no_random)
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
