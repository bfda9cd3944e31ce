"""``saesteer eval ...``: evaluations with tables and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from saesteer.cli.common import DbOpt, ModelOpt, SaeOpt, console, emit, resolve_db
from saesteer.cli.progress import ProgressView
from saesteer.cluster import RaySettings, check_engine, require_ray
from saesteer.eval.language import LanguageEvalConfig
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
    recipes: Annotated[
        str,
        typer.Option(help="Comma-separated recipes, e.g. sae,sae:k=5:filter=0,diffmean:op=norm_preserving_add,"
                     "prompting (see saesteer.eval.recipes)."),
    ] = ",".join(_D.recipes),
    strengths: Annotated[
        str | None, typer.Option(help="A fixed comma-separated strength grid instead of the per-vector search.")
    ] = None,
    corpus: Annotated[
        str,
        typer.Option(help="The shipped parallel corpus: prompts and references from its held-out split, DiffMean "
                     "means from its train split; --db must be an index built from it (saesteer index build "
                     "--corpus NAME): bundled | udhr."),
    ] = _D.corpus,
    n_prompts: Annotated[int, typer.Option(help="Prompts per cell (held-out parallel sentences).")] = _D.n_prompts,
    calibration_prompts: Annotated[
        int, typer.Option(help="Unsteered continuations the fluency ranges are calibrated on (at least --n-prompts).")
    ] = _D.calibration_prompts,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per continuation.")] = _D.max_new_tokens,
    repetition_penalty: Annotated[
        float, typer.Option(help="Greedy decoding's repetition penalty for every cell, baselines included "
                            "(CTRL; on the generated tokens; 1: off).")
    ] = _D.repetition_penalty,
    fluency_budget: Annotated[float, typer.Option(help="Max median perplexity, as a multiple of the unsteered one.")] = _D.fluency_budget,
    fluency_reference: Annotated[
        str,
        typer.Option(help="The primary fluency criterion (the search uses it): native (calibrated per target language "
                     "on its own unsteered continuations) or english (on the English ones). The report shows both."),
    ] = _D.fluency_reference,
    max_repetitive: Annotated[
        float, typer.Option(help="Max share of continuations outside the unsteered repetition range.")
    ] = _D.max_repetitive_share,
    refine: Annotated[int, typer.Option(help="Bisections between the strongest fluent and the first broken strength.")] = _D.refine,
    recipe_major: Annotated[
        bool, typer.Option(help="Loop recipes outside languages (a run cut short has every language of the first recipes).")
    ] = False,
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
    """Accuracy, fluency (perplexity + repetition), chrF and strength windows of steering recipes (SAE features,
    DiffMean, prompting). Resumable: continuations are appended to OUT/samples.csv as they are made."""
    import shlex
    import sys

    from saesteer.corpus.parallel import corpus_languages, corpus_texts, get_corpus
    from saesteer.errors import CorpusError, SteeringVectorError
    from saesteer.eval.ablation import ablation_matrix, feature_ablation
    from saesteer.eval.language import accuracy_table, evaluate_language_steering, result_from_samples
    from saesteer.eval.parallel import corpus_parallel_prompts
    from saesteer.eval.recipes import RecipeVectors, check_index_corpus, parse_recipe
    from saesteer.eval.report import Report
    from saesteer.eval.samples import check_samples_corpus, decoding_penalty, read_samples, write_samples
    from saesteer.eval.summary import add_ablation, add_evaluation
    from saesteer.models import load_model
    from saesteer.saes import load_sae
    from saesteer.steer.generate import make_backend

    db_path = resolve_db(db)
    specs = tuple(x.strip() for x in recipes.split(",") if x.strip())
    for spec in specs:
        parse_recipe(spec)  # refuse a bad recipe before loading anything
    if n_prompts < 1:
        raise SteeringVectorError("--n-prompts must be at least 1")
    heldout = len(get_corpus(corpus).texts("en", "heldout"))
    if n_prompts > heldout:
        raise CorpusError(f"--n-prompts {n_prompts} exceeds the {heldout} held-out sentences of the {corpus} corpus")
    cfg = LanguageEvalConfig(
        languages=tuple(x.strip() for x in languages.split(",") if x.strip()), recipes=specs,
        strengths=_floats(strengths) if strengths else None, n_prompts=n_prompts, max_new_tokens=max_new_tokens,
        repetition_penalty=repetition_penalty,
        fluency_budget=fluency_budget, max_repetitive_share=max_repetitive, refine=refine,
        batch_size=max(n_prompts, LanguageEvalConfig.batch_size),  # a cell per batch at least; lockstep cells share
        recipe_major=recipe_major, calibration_prompts=calibration_prompts, corpus=corpus,
        fluency_reference=fluency_reference,
    )
    prompts = corpus_parallel_prompts(corpus)
    if (samples is None and any(parse_recipe(r).kind != "prompting" for r in specs)) or ablation_texts > 0:
        # before anything is loaded or written: features from one corpus, prompts from another would mix them
        check_index_corpus(db_path, corpus, sorted({*cfg.languages, "en", *corpus_languages(corpus)}))
    old = None
    if samples is not None:
        old = read_samples(samples)
        check_samples_corpus(old, prompts, corpus)
        decoding_penalty(old)  # a table mixing two decodings is refused before anything is written
    on_ray = check_engine(engine) == "ray" and samples is None
    if on_ray:
        require_ray()
    out.mkdir(parents=True, exist_ok=True)
    m = s = None
    with ProgressView() as view:
        stages = view.stages()
        if (samples is None and not on_ray) or ablation_texts > 0:  # on Ray the workers load it
            with stages.stage("model load", info=f"{model} + SAE {sae}"):
                m = load_model(model)
                s = load_sae(sae, model=m)
        with stages.stage("evaluation", info=f"{len(cfg.languages)} languages x {len(cfg.recipes)} recipes") as st:
            if samples is not None:
                assert old is not None
                res = result_from_samples(old, cfg)
            elif on_ray:
                from saesteer.eval.ray_eval import evaluate_language_ray

                ray = RaySettings(address=address, workers=workers, cpus_per_worker=cpus_per_worker)
                res = evaluate_language_ray(model, sae, db_path, prompts, cfg, ray,
                                            progress=lambda lang, k, n: st.update(k, n, info=f"{lang} done"))
            else:
                assert m is not None and s is not None
                res = evaluate_language_steering(m, make_backend(model), s, db_path, prompts, cfg,
                                                 progress=st.messages(), samples_path=out / "samples.csv")
            st.done(f"{len(res.samples):,} continuations")
        ablation = None
        if ablation_texts > 0:
            assert m is not None and s is not None
            langs = corpus_languages(corpus)
            with stages.stage("ablation", total=len(langs)) as st:
                factory = RecipeVectors(m, s, db_path, corpus=corpus)
                # LangFIR: each language's random-token-filtered features set to 0 (see saesteer.eval.ablation)
                vecs = {}
                for i, lang in enumerate(langs):
                    vecs[lang] = feature_ablation(factory.featureset(lang, filtered=True), s, m,
                                                  typical_norm=factory.norm)
                    st.update(i + 1, info=f"feature sets: {lang}")
                st.update(info="matrix")
                ablation = ablation_matrix(m, vecs,
                                           {lang: corpus_texts(corpus, lang, "heldout")[:ablation_texts]
                                            for lang in langs},
                                           sae=s)
                st.done(f"{len(langs)} x {len(langs)} matrix")
    if samples is None:
        write_samples(res.samples, out / "samples.csv")
    res.curves.to_csv(out / "curves.csv", index=False)
    res.windows.to_csv(out / "windows.csv", index=False)
    rep = Report("saesteer: language steering evaluation")
    rep.text(f"Model {model}, SAE {sae}, corpus {corpus} ({get_corpus(corpus).description}), "
             f"index {portable_path(db_path, out)}."
             + (f" Generations reused from {portable_path(samples, out)} (no new generation)."
                if samples is not None else ""))
    argv = [portable_path(a) if a.startswith("/") else a for a in sys.argv[1:]]
    add_evaluation(rep, res, command="saesteer " + shlex.join(argv),
                   main=[parse_recipe(r).name for r in cfg.recipes], corpus=corpus)
    if ablation is not None:
        ablation.to_csv(out / "ablation.csv")
        add_ablation(rep, ablation)
    md, html = rep.write(out)
    emit(accuracy_table(res.windows), title="target-language accuracy at the chosen fluent point")
    if ablation is not None:
        emit(ablation.reset_index(), title="ablation matrix: ΔCE (nats/token)")
    console.print(f"report: {md} and {html}")
