"""``saesteer auto``: steering vectors from any labelled table (see :mod:`saesteer.auto`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from saesteer.auto import AutoConfig
from saesteer.cli.common import ModelOpt, SaeOpt, console, err_console

_D = AutoConfig(data="", label_column="")  # the CLI's defaults are the config's


def register(app: typer.Typer) -> None:
    app.command("auto")(auto)


def _floats(text: str) -> tuple[float, ...]:
    from saesteer.errors import SaesteerError

    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise SaesteerError(f"--strengths must be comma-separated numbers, got {text!r}") from exc


def _search(text: str | None) -> tuple[float, float] | None:
    from saesteer.errors import SaesteerError

    if text is None:
        return None
    vals = _floats(text)
    if len(vals) != 2 or not 0 < vals[0] < vals[1]:
        raise SaesteerError(f"--search must be START,CAP with 0 < START < CAP, got {text!r}")
    return vals[0], vals[1]


def auto(
    data: Annotated[str, typer.Option(help="A JSONL / CSV / Parquet file, a shipped set (formality) or a Hugging Face dataset name.")],
    label_column: Annotated[str, typer.Option(help="The column holding the labels.")],
    text_column: Annotated[str, typer.Option(help="The column holding the texts.")] = _D.text_column,
    target: Annotated[list[str] | None, typer.Option(help="Label(s) to steer towards (repeatable; default: every label).")] = None,
    model: ModelOpt = _D.model,
    sae: SaeOpt = _D.sae,
    out: Annotated[Path, typer.Option(help="Where the index, vectors and report go (a second run reuses the index).")] = _D.out,
    min_examples: Annotated[int, typer.Option(help="Fewest training examples a label may have.")] = _D.min_examples,
    max_docs: Annotated[int | None, typer.Option(help="Training texts per label to index (default: all).")] = None,
    top_k: Annotated[int, typer.Option(help="SAE features per target.")] = _D.top_k,
    strengths: Annotated[str, typer.Option(help="Strengths to calibrate over (x typical residual norm).")] = ",".join(map(str, _D.strengths)),
    n_prompts: Annotated[int, typer.Option(help="Prompts per strength.")] = _D.n_prompts,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens generated per continuation.")] = _D.max_new_tokens,
    fluency_budget: Annotated[float, typer.Option(help="Fluent: perplexity <= this x that of unsteered continuations.")] = _D.fluency_budget,
    n_random: Annotated[int, typer.Option(help="Random-token sequences for the LangFIR filter.")] = _D.n_random,
    search: Annotated[str | None, typer.Option(help="START,CAP: search the strength (geometric from START until fluency breaks or CAP, then bisection) instead of --strengths.")] = None,
) -> None:
    """From a labelled table: index, select, build SAE-feature and DiffMean vectors, calibrate, report."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from saesteer.auto import run_auto
    from saesteer.corpus.labelled import load_labelled
    from saesteer.eval.auto_report import summary_table
    from saesteer.index.build import BuildProgress

    cfg = AutoConfig(data=data, label_column=label_column, text_column=text_column, targets=tuple(target or ()),
                     model=model, sae=sae, out=out, min_examples=min_examples, max_docs=max_docs, top_k=top_k,
                     strengths=_floats(strengths), n_prompts=n_prompts, max_new_tokens=max_new_tokens,
                     fluency_budget=fluency_budget, n_random=n_random, search=_search(search))
    # check the table before anything is loaded or written
    load_labelled(cfg.data, cfg.label_column, text_column=cfg.text_column, targets=cfg.targets,
                  min_examples=cfg.min_examples)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=err_console, transient=False) as bar:
        step = bar.add_task("auto", total=None, info="")
        build = bar.add_task("index", total=None, info="", visible=False)

        def say(msg: str) -> None:
            bar.update(step, info=msg)

        def on_build(ev: BuildProgress) -> None:
            bar.update(build, visible=True, total=ev.n_conditions, completed=ev.index + (ev.status in ("written", "skipped")),
                       info=f"{ev.condition}: {ev.status} {ev.n_tokens:,} tokens")

        res = run_auto(cfg, say=say, on_build=on_build)
        bar.update(step, info="done")
    typer.echo(summary_table(res.summary, res.probe.heldout_accuracy))
    console.print(f"index: {res.db} (build {res.build_id})")
    console.print(f"report: {res.report}")
