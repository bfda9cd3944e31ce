"""``saesteer quickstart``: the main job on the embedded defaults, with progress bars."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from saesteer.cli.common import DbOpt, ModelOpt, SaeOpt, console, err_console
from saesteer.quickstart import QuickstartConfig

_D = QuickstartConfig()  # the CLI's defaults are the config's


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)


def quickstart(
    model: ModelOpt = _D.model,
    sae: SaeOpt = _D.sae,
    db: DbOpt = None,
    out: Annotated[Path, typer.Option(help="Where feature sets, vectors, exports and the report go.")] = _D.out,
    languages: Annotated[str | None, typer.Option(help="Comma-separated bundled languages to index (default: all 12).")] = None,
    show: Annotated[str, typer.Option(help="Comma-separated languages to steer into side by side.")] = ",".join(_D.show),
    strength: Annotated[float, typer.Option(help="Steering strength (x typical residual norm) for the side-by-side view.")] = _D.strength,
    top_k: Annotated[int, typer.Option(help="Features per language.")] = _D.top_k,
    max_docs: Annotated[int | None, typer.Option(help="Documents per language (default: the whole train split).")] = None,
    n_prompts: Annotated[int, typer.Option(help="English prompts in the side-by-side view.")] = _D.n_prompts,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens generated per continuation.")] = _D.max_new_tokens,
    eval_prompts: Annotated[int, typer.Option(help="Prompts per cell in the small evaluation (0: skip).")] = _D.eval_prompts,
    ablation_texts: Annotated[int, typer.Option(help="Held-out sentences per language for the ablation matrix (0: skip).")] = _D.ablation_texts,
    n_random: Annotated[int, typer.Option(help="Random-token sequences for the LangFIR baseline.")] = _D.n_random,
) -> None:
    """Index -> select -> steer -> side by side -> export -> report, on the embedded defaults."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from saesteer.index.build import BuildProgress
    from saesteer.quickstart import run_quickstart

    cfg = QuickstartConfig(
        model=model, sae=sae, db=db, out=out,
        languages=tuple(x.strip() for x in languages.split(",")) if languages else None,
        show=tuple(x.strip() for x in show.split(",") if x.strip()), strength=strength, top_k=top_k,
        max_docs=max_docs, n_prompts=n_prompts, max_new_tokens=max_new_tokens, eval_prompts=eval_prompts,
        ablation_texts=ablation_texts, n_random=n_random,
    )
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=err_console, transient=False) as bar:
        step = bar.add_task("quickstart", total=None, info="")
        build = bar.add_task("index", total=None, info="", visible=False)

        def say(msg: str) -> None:
            bar.update(step, info=msg)

        def on_build(ev: BuildProgress) -> None:
            bar.update(build, visible=True, total=ev.n_conditions, completed=ev.index + (ev.status in ("written", "skipped")),
                       info=f"{ev.condition}: {ev.status} {ev.n_tokens:,} tokens")

        res = run_quickstart(cfg, say=say, on_build=on_build)
        bar.update(step, info="done")
    for lang, items in res.side_by_side.items():
        t = Table(title=f"English prompts steered into {lang} (strength {strength:g})", show_lines=True)
        t.add_column("prompt", style="bold")
        t.add_column("unsteered")
        t.add_column(f"steered → {lang}", style="green")
        for s in items:
            t.add_row(s.prompt, s.unsteered, s.steered)
        console.print(t)
    if res.evaluation is not None:
        from saesteer.cli.common import emit
        from saesteer.eval.language import accuracy_table

        emit(accuracy_table(res.evaluation.matched), title="target-language accuracy at matched fluency")
    console.print(f"index: {res.db} (build {res.build_id})")
    console.print(f"exports: {len(res.exports)} files under {out / 'vectors'}")
    console.print(f"report: {res.report[0]} and {res.report[1]}")
