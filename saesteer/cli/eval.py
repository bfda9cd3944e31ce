"""``saesteer eval ...``: evaluations with tables and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from saesteer.cli.common import DbOpt, ModelOpt, SaeOpt, console, emit, resolve_db
from saesteer.cli.progress import ProgressView
from saesteer.cluster import RaySettings, check_engine, require_ray
from saesteer.eval.language import METHODS, LanguageEvalConfig
from saesteer.models.loading import DEFAULT_MODEL
from saesteer.paths import portable_path

_D = LanguageEvalConfig()  # the CLI's defaults are the config's
_RAY = RaySettings()

app = typer.Typer(help="Evaluate steering: language accuracy, fluency, baselines, the ablation matrix.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the ``eval`` group to the root app."""
    root.add_typer(app, name="eval")


def _floats(s: str) -> tuple[float, ...]:
    return tuple(float(x) for x in s.split(",") if x.strip())


@app.command("language")
def language(
    model: ModelOpt = DEFAULT_MODEL,
    sae: SaeOpt = "default",
    db: DbOpt = None,
    out: Annotated[Path, typer.Option(help="Directory for report.md / report.html and CSVs.")] = Path("eval_out"),
    languages: Annotated[str, typer.Option(help="Comma-separated target languages.")] = ",".join(_D.languages),
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")] = ",".join(METHODS),
    strengths: Annotated[str, typer.Option(help="Comma-separated strengths (x typical residual norm).")] = ",".join(f"{x:g}" for x in _D.strengths),
    n_prompts: Annotated[int, typer.Option(help="English prompts per cell.")] = _D.n_prompts,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per continuation.")] = _D.max_new_tokens,
    top_k: Annotated[int, typer.Option(help="SAE features per language.")] = _D.top_k,
    weighting: Annotated[str, typer.Option(help="SAE feature weights (see `steer build --weights`).")] = _D.weighting,
    rows: Annotated[str, typer.Option(help="SAE decoder rows: auto (raw for mean_diff, else unit), raw or unit.")] = "auto",
    fluency_budget: Annotated[float, typer.Option(help="Max median perplexity, as a multiple of the unsteered one.")] = _D.fluency_budget,
    samples: Annotated[
        Path | None,
        typer.Option(help="Reuse the generations of an earlier run (its samples.csv): no generation, only the summary."),
    ] = None,
    ablation_texts: Annotated[int, typer.Option(help="Held-out sentences per language for the ablation matrix (0: skip).")] = 20,
    engine: Annotated[str, typer.Option(help="local, or ray: one job per language on Ray workers (docs/cluster.md).")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray: join the cluster at HOST:PORT (or auto); default: a local cluster.")] = None,
    workers: Annotated[int | None, typer.Option(help="Ray: workers, each holding the model (default: 1 locally, one per CPU on a cluster).")] = None,
    cpus_per_worker: Annotated[float, typer.Option(help="Ray: CPUs (torch threads) per worker.")] = _RAY.cpus_per_worker,
) -> None:
    """Target-language accuracy and fluency of SAE vectors vs DiffMean, unfiltered features and prompting."""
    import pandas as pd

    from saesteer.corpus import bundled_languages, bundled_prompts, bundled_texts
    from saesteer.eval.ablation import ablation_matrix, feature_ablation
    from saesteer.eval.language import (
        VectorFactory,
        accuracy_table,
        evaluate_language_steering,
        result_from_samples,
    )
    from saesteer.eval.report import Report
    from saesteer.eval.summary import add_ablation, add_evaluation
    from saesteer.models import load_model
    from saesteer.saes import load_sae
    from saesteer.steer.generate import make_backend

    db_path = resolve_db(db)
    cfg = LanguageEvalConfig(
        languages=tuple(x.strip() for x in languages.split(",") if x.strip()),
        methods=tuple(x.strip() for x in methods.split(",") if x.strip()), strengths=_floats(strengths),
        n_prompts=n_prompts, max_new_tokens=max_new_tokens, top_k=top_k, fluency_budget=fluency_budget,
        batch_size=n_prompts, weighting=weighting, unit_rows=_rows(rows),
    )
    on_ray = check_engine(engine) == "ray" and samples is None
    if on_ray:
        require_ray()
    with ProgressView() as view:
        stages = view.stages()
        if not on_ray or ablation_texts > 0:  # on Ray the workers load it; the driver only for the ablation
            with stages.stage("model load", info=f"{model} + SAE {sae}"):
                m = load_model(model)
                s = load_sae(sae, model=m)
        with stages.stage("evaluation", info=f"{len(cfg.languages)} languages x {len(cfg.methods)} methods") as st:
            if samples is not None:
                res = result_from_samples(pd.read_csv(samples), cfg.fluency_budget)
            elif on_ray:
                from saesteer.eval.ray_eval import evaluate_language_ray

                ray = RaySettings(address=address, workers=workers, cpus_per_worker=cpus_per_worker)
                res = evaluate_language_ray(model, sae, db_path, bundled_prompts(), cfg, ray,
                                            progress=lambda lang, k, n: st.update(k, n, info=f"{lang} done"))
            else:
                res = evaluate_language_steering(m, make_backend(model), s, db_path, bundled_prompts(), cfg,
                                                 progress=st.messages())
            st.done(f"{len(res.samples):,} continuations")
        ablation = None
        if ablation_texts > 0:
            langs = bundled_languages()
            with stages.stage("ablation", total=len(langs)) as st:
                factory = VectorFactory(m, s, db_path, cfg)
                # LangFIR: each language's random-token-filtered features set to 0 (see saesteer.eval.ablation)
                vecs = {}
                for i, lang in enumerate(langs):
                    vecs[lang] = feature_ablation(factory.featureset(lang, filtered=True), s, m,
                                                  typical_norm=factory.norm)
                    st.update(i + 1, info=f"feature sets: {lang}")
                st.update(info="matrix")
                ablation = ablation_matrix(m, vecs,
                                           {lang: bundled_texts(lang, "heldout")[:ablation_texts] for lang in langs},
                                           sae=s)
                st.done(f"{len(langs)} x {len(langs)} matrix")
    out.mkdir(parents=True, exist_ok=True)
    res.samples.to_csv(out / "samples.csv", index=False)
    res.curves.to_csv(out / "curves.csv", index=False)
    res.matched.to_csv(out / "matched.csv", index=False)
    rep = Report("saesteer: language steering evaluation")
    rep.text(f"Model {model}, SAE {sae}, index {portable_path(db_path, out)}."
             + (f" Generations reused from {portable_path(samples, out)} (no new generation)." if samples is not None else ""))
    add_evaluation(rep, res, cfg.fluency_budget)
    if ablation is not None:
        ablation.to_csv(out / "ablation.csv")
        add_ablation(rep, ablation)
    md, html = rep.write(out)
    emit(accuracy_table(res.matched), title="target-language accuracy at matched fluency")
    if ablation is not None:
        emit(ablation.reset_index(), title="ablation matrix: ΔCE (nats/token)")
    console.print(f"report: {md} and {html}")


def _rows(rows: str) -> bool | None:
    from saesteer.errors import SteeringVectorError

    if rows not in ("auto", "unit", "raw"):
        raise SteeringVectorError(f"--rows must be auto, unit or raw, not {rows!r}")
    return None if rows == "auto" else rows == "unit"
