"""``saesteer sql "..."``: raw SQL on the index, read-only."""

from __future__ import annotations

from typing import Annotated

import typer

from saesteer.cli.common import CsvOpt, DbOpt, JsonOpt, emit, resolve_db


def register(app: typer.Typer) -> None:
    app.command("sql")(sql)


def sql(
    query: Annotated[
        str, typer.Argument(help="One SELECT statement (tables: builds, conditions, feature_stats, ...).")
    ],
    limit: Annotated[
        int, typer.Option("--limit", help="Rows shown in the table (JSON and CSV print every row).")
    ] = 50,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Run raw SQL on a read-only connection to the index (statements that write are refused)."""
    from saesteer.cli.common import err_console
    from saesteer.select.rawsql import run_readonly_sql

    df = run_readonly_sql(resolve_db(db), query)
    if as_json or as_csv:
        emit(df, as_json=as_json, as_csv=as_csv)
        return
    emit(df.head(limit))
    if len(df) > limit:
        err_console.print(f"{len(df) - limit} more rows not shown (--limit, or --csv / --json for all)")
