"""``saesteer quickstart``: the main job on the embedded defaults, with progress and stage timings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from saesteer.cli.common import DbOpt, ModelOpt, SaeOpt, console, emit
from saesteer.quickstart import QuickstartConfig

if TYPE_CHECKING:
    from saesteer.steer.generate import SideBySide

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
    recipe: Annotated[str, typer.Option(help="The steering recipe (as in `saesteer eval language --recipes`) of the "
                                        "side by side, the exports and the evaluation.")] = _D.recipe,
    strength: Annotated[float | None, typer.Option(help="Steering strength (x typical residual norm; swap: x typical "
                                                   "activation) for the side-by-side view; default: the recipe's, "
                                                   "inside its measured windows.")] = _D.strength,
    top_k: Annotated[int, typer.Option(help="Features per language.")] = _D.top_k,
    max_docs: Annotated[int | None, typer.Option(help="Documents per language (default: the whole train split).")] = None,
    n_prompts: Annotated[int, typer.Option(help="English prompts in the side-by-side view.")] = _D.n_prompts,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens generated per continuation.")] = _D.max_new_tokens,
    repetition_penalty: Annotated[float, typer.Option(help="Greedy decoding's repetition penalty on the generated tokens "
                                                      "(1: off; default: the one the recipe's strengths were calibrated with).")] = _D.repetition_penalty,
    eval_prompts: Annotated[int, typer.Option(help="Prompts per cell in the quick evaluation (0: skip).")] = _D.eval_prompts,
    eval_languages: Annotated[int, typer.Option(help="Shown languages the quick evaluation covers (the first N).")] = _D.eval_languages,
    eval_calibration: Annotated[int, typer.Option(help="Unsteered continuations the quick evaluation calibrates fluency on.")] = _D.eval_calibration,
    eval_max_new_tokens: Annotated[int, typer.Option(help="Tokens per continuation in the quick evaluation.")] = _D.eval_max_new_tokens,
    eval_refine: Annotated[int, typer.Option(help="Bisections of the quick evaluation's strength search.")] = _D.eval_refine,
    ablation_texts: Annotated[int, typer.Option(help="Held-out sentences per language for the ablation matrix (0: skip).")] = _D.ablation_texts,
    n_random: Annotated[int, typer.Option(help="Random-token sequences for the LangFIR baseline.")] = _D.n_random,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Compute the index instead of importing the shipped one "
                                          "(it is imported only where it is the very build this would compute).")] = False,
) -> None:
    """Index -> select -> steer -> side by side -> export -> report, on the embedded defaults.

    The quick evaluation is a smoke view (by default 2 languages x 4 prompts x 16 tokens, a coarse strength
    search); `saesteer eval language` gives the real numbers, and the --eval-* flags enlarge this one.

    Progress: bars on a terminal, one plain line per stage start/end (and every few seconds in long
    stages) when stderr is a file or a pipe. The steered text is printed as soon as it exists, before the
    evaluation; the stage timings are printed at the end and written in the report."""
    from saesteer.cli.progress import ProgressView
    from saesteer.quickstart import run_quickstart

    cfg = QuickstartConfig(
        model=model, sae=sae, db=db, out=out,
        languages=tuple(x.strip() for x in languages.split(",")) if languages else None,
        show=tuple(x.strip() for x in show.split(",") if x.strip()), recipe=recipe, strength=strength, top_k=top_k,
        max_docs=max_docs, n_prompts=n_prompts, max_new_tokens=max_new_tokens, eval_prompts=eval_prompts,
        repetition_penalty=repetition_penalty,
        eval_languages=eval_languages, eval_calibration=eval_calibration, eval_max_new_tokens=eval_max_new_tokens,
        eval_refine=eval_refine, ablation_texts=ablation_texts, n_random=n_random, rebuild=rebuild,
    )
    with ProgressView() as view:

        def show_side_by_side(sbs: dict[str, list[SideBySide]]) -> None:
            for t in _side_by_side_tables(sbs, cfg):
                view.print(t)

        res = run_quickstart(cfg, progress=view, on_side_by_side=show_side_by_side)
    if res.evaluation is not None:
        from saesteer.eval.language import accuracy_table

        emit(accuracy_table(res.evaluation.windows),
             title="quick evaluation (a smoke view; `saesteer eval language` for the real numbers): "
                   "target-language accuracy at the chosen fluent point")
    emit([{"stage": k, "seconds": round(v, 1)} for k, v in res.timings.items()]
         + [{"stage": "total", "seconds": round(sum(res.timings.values()), 1)}], title="stage timings (s)")
    console.print(f"index: {res.db} (build {res.build_id})")
    console.print(f"exports: {len(res.exports)} files under {out / 'vectors'}")
    console.print(f"report: {res.report[0]} and {res.report[1]}")


def _side_by_side_tables(sbs: dict[str, list[SideBySide]], cfg: QuickstartConfig) -> list[Table]:
    tables = []
    for lang, items in sbs.items():
        t = Table(title=f"English prompts steered into {lang} ({cfg.steer_recipe().name}, strength "
                        f"{cfg.strength_for(lang):g})", show_lines=True)
        t.add_column("prompt", style="bold")
        t.add_column("unsteered")
        t.add_column(f"steered → {lang}", style="green")
        for s in items:
            t.add_row(s.prompt, s.unsteered, s.steered)
        tables.append(t)
    return tables
