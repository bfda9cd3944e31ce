"""``saesteer steer``: build, generate (side by side), sweep, export, import, info."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from saesteer.cli import steer_files
from saesteer.cli.common import (
    AllowOtherHookOpt,
    CacheOpt,
    DbOpt,
    JsonOpt,
    ModelOpt,
    SaeOpt,
    console,
    emit,
    emit_json,
)
from saesteer.cli.progress import ProgressView
from saesteer.models.loading import DEFAULT_MODEL

app = typer.Typer(
    help="Steering vectors: build from features or DiffMean, generate side by side, sweep, export/import.",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    """Add the ``steer`` group to the root app."""
    root.add_typer(app, name="steer")

VectorArg = Annotated[Path, typer.Option("--vector", "-V", help="A native steering vector (.safetensors).")]
BackendOpt = Annotated[
    str, typer.Option("--backend", help="auto (transformers, or transformer-lens for tiny-random), hf, tl.")
]
SkipCheckOpt = Annotated[
    bool,
    typer.Option(
        "--skip-model-check",
        help="Apply a vector built for another model id (width and layers are still checked).",
    ),
]

PenaltyOpt = Annotated[
    float | None,
    typer.Option("--repetition-penalty", help="Repetition penalty on the generated tokens (CTRL; 1: off; default: "
                 "the decoding the vector's default strength was calibrated with, else 1)."),
]


def _strength_list(text: str) -> list[float]:
    from saesteer.errors import SteeringVectorError

    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise SteeringVectorError(f"--strengths must be comma-separated numbers, got {text!r}") from exc


def _prompts(prompts: list[str] | None, prompts_file: Path | None, n: int | None) -> list[str]:
    from saesteer.corpus import choose_prompts

    return choose_prompts(prompts, prompts_file, n)


def _backend(model: str | None, vector: Any, backend: str, cache: Path | None, skip_check: bool) -> Any:
    from saesteer.steer.generate import make_backend

    name = model or vector.model.id
    b = make_backend(name, backend, cache=cache)
    b.check_model = not skip_check
    return b


def _sae_for_vector(vector: Any, sae: str | None) -> Any:
    if vector.operator != "clamp":
        return None
    from saesteer.saes import load_sae

    return load_sae(sae or vector.clamp.sae_id, hook_name=vector.components[0].hook_name)


@app.command()
def build(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the vector (.safetensors).")],
    features: Annotated[
        Path | None,
        typer.Option("--features", "-f", help="A saved feature set (JSON from `saesteer features`)."),
    ] = None,
    diffmean: Annotated[
        bool, typer.Option("--diffmean", help="Build the DiffMean baseline on the bundled corpus instead.")
    ] = False,
    recipe: Annotated[
        str | None,
        typer.Option(
            "--recipe",
            help="Build a language vector from the index the way `saesteer eval language` does, e.g. "
            "sae:op=swap (the default recipe: 'default'), sae, diffmean; needs --target.",
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Target language for --recipe / --diffmean, e.g. fr or language=fr.")
    ] = None,
    others: Annotated[
        str | None,
        typer.Option(
            "--others", help="DiffMean other languages, comma-separated (default: all other bundled)."
        ),
    ] = None,
    n_texts: Annotated[
        int, typer.Option("--n-texts", help="DiffMean: sentences per language (train split).")
    ] = 200,
    model: ModelOpt = DEFAULT_MODEL,
    sae: SaeOpt = "default",
    hook: Annotated[
        list[str] | None,
        typer.Option("--hook", help="Hook(s) for DiffMean (repeatable); default: the SAE's hook."),
    ] = None,
    weights: Annotated[
        str,
        typer.Option(
            "--weights",
            help="auto | given | uniform | mean_act | mean_diff (target minus contrast mean activation, = ν) | "
            "score:<name>. auto: mean_diff with raw rows for a feature set from an index build, else given.",
        ),
    ] = "auto",
    rows: Annotated[
        str, typer.Option("--rows", help="Decoder rows: auto (raw for mean_diff, else unit), unit or raw.")
    ] = "auto",
    scale: Annotated[
        str, typer.Option("--scale", help="residual_norm (strength 1 = typical residual norm) or raw.")
    ] = "residual_norm",
    operator: Annotated[
        str, typer.Option("--operator", help="add | norm_preserving_add | ablate | clamp.")
    ] = "add",
    positions: Annotated[str, typer.Option("--positions", help="all | prompt | generated.")] = "all",
    name: Annotated[str | None, typer.Option("--name", help="A name for the vector.")] = None,
    db: DbOpt = None,
    model_cache: CacheOpt = None,
    allow_other_hook: AllowOtherHookOpt = False,
) -> None:
    """Build a steering vector from a feature set (SAE decoder rows) or the DiffMean baseline."""
    from saesteer.cli.common import resolve_db
    from saesteer.errors import SaeLoadError, SteeringVectorError
    from saesteer.models import load_model
    from saesteer.paths import check_output_path
    from saesteer.saes import load_sae
    from saesteer.steer.export import save_vector

    check_output_path(out)
    if (features is not None) + diffmean + (recipe is not None) != 1:
        raise SteeringVectorError(
            "give exactly one of --features FILE, --recipe RECIPE --target LANG or --diffmean --target LANG"
        )
    if recipe is not None:
        _build_from_recipe(recipe, target, out, model=model, sae=sae, db=db, model_cache=model_cache, name=name)
        return
    from saesteer.steer.vector import OPERATORS, POSITIONS, SCALE_MODES

    for opt, value, allowed in (
        ("--operator", operator, OPERATORS),
        ("--positions", positions, POSITIONS),
        ("--scale", scale, SCALE_MODES),
        ("--rows", rows, ("auto", "unit", "raw")),
    ):
        if value not in allowed:
            raise SteeringVectorError(f"{opt} must be one of {', '.join(allowed)}, not {value!r}")
    from saesteer.featureset import FeatureSet

    fs = FeatureSet.load(features) if features is not None else None  # a bad file fails before the model loads
    m = load_model(model, cache=model_cache)
    if diffmean:
        from saesteer.steer.baselines import diffmean_bundled

        if not target:
            raise SteeringVectorError("--diffmean needs --target (a bundled language such as fr)")
        hooks = list(hook or [])
        if not hooks:
            try:
                hooks = [str(load_sae(sae, model=m).cfg.metadata.hook_name)]
            except SaeLoadError as exc:
                raise SteeringVectorError(
                    f"--diffmean needs --hook (the SAE {sae!r} to take it from did not load: {exc})"
                ) from exc
        other_langs = [o.strip() for o in others.split(",") if o.strip()] if others else None
        with ProgressView() as view, view.stages().stage("DiffMean residuals") as st:
            vec = diffmean_bundled(
                m,
                hooks,
                target,
                other_langs,
                n_texts=n_texts,
                scale_mode=scale,
                operator=operator,
                positions=positions,
                name=name,
                progress=st.counter(),
            )
    else:
        from saesteer.featureset import INDEX_WEIGHTINGS
        from saesteer.steer.build import from_feature_set

        assert fs is not None
        if weights in ("auto", *INDEX_WEIGHTINGS):  # index-derived weights are read here, by select
            from saesteer.select.weights import weigh

            fs = weigh(fs, weights, resolve_db(db))
        s = load_sae(sae, model=m, hook_name=fs.hook_name, allow_other_hook=allow_other_hook)
        vec = from_feature_set(
            fs,
            s,
            m,
            weighting=weights,
            unit_rows=None if rows == "auto" else rows == "unit",
            scale_mode=cast(Any, scale),
            operator=cast(Any, operator),
            positions=cast(Any, positions),
            name=name,
        )
    path = save_vector(vec, out)
    steer_files.print_summary(vec, f"wrote {path}")


def _build_from_recipe(recipe: str, target: str | None, out: Path, *, model: str, sae: str, db: Path | None,
                       model_cache: Path | None, name: str | None) -> None:
    """``steer build --recipe``: the evaluated recipe's vector for one target language (saesteer.eval.recipes)."""
    from saesteer.cli.common import resolve_db
    from saesteer.errors import SteeringVectorError
    from saesteer.eval.recipes import DEFAULT_RECIPE, RecipeVectors, parse_recipe
    from saesteer.models import load_model
    from saesteer.saes import load_sae
    from saesteer.steer.export import save_vector

    r = parse_recipe(DEFAULT_RECIPE if recipe == "default" else recipe)
    if r.kind == "prompting":
        raise SteeringVectorError("--recipe prompting has no vector; use sae..., or diffmean")
    if not target:
        raise SteeringVectorError("--recipe needs --target (a language of the index, e.g. fr)")
    lang = target.removeprefix("language=")
    path = resolve_db(db)
    m = load_model(model, cache=model_cache)
    s = load_sae(sae, model=m)
    with ProgressView() as view, view.stages().stage(f"{r.name} vector for {lang}"):
        vec = RecipeVectors(m, s, path).vector(r, lang)
    assert vec is not None
    vec = vec.with_(name=name or vec.name)  # it carries the recipe's default strength (calibrated where measured)
    written = save_vector(vec, out)
    steer_files.print_summary(vec, f"wrote {written}")


@app.command()
def generate(
    vector: VectorArg,
    prompts: Annotated[
        list[str] | None, typer.Argument(help="Prompts (default: the bundled English prompts).")
    ] = None,
    strength: Annotated[
        float | None, typer.Option("--strength", "-S", help="Strength (default: the vector's).")
    ] = None,
    prompts_file: Annotated[Path | None, typer.Option("--prompts-file", help="One prompt per line.")] = None,
    n_prompts: Annotated[int | None, typer.Option("--n-prompts", help="Use the first N prompts.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n")] = 40,
    sample: Annotated[bool, typer.Option("--sample", help="Sample instead of greedy decoding.")] = False,
    temperature: Annotated[float, typer.Option("--temperature")] = 1.0,
    top_p: Annotated[float, typer.Option("--top-p")] = 1.0,
    repetition_penalty: PenaltyOpt = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model (default: the one the vector was built for).")
    ] = None,
    sae: Annotated[
        str | None, typer.Option("--sae", "-s", help="SAE for clamp vectors (default: the vector's).")
    ] = None,
    backend: BackendOpt = "auto",
    skip_model_check: SkipCheckOpt = False,
    model_cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show steered and unsteered continuations side by side (same prompts, same seeds)."""
    from saesteer.steer.export import load_vector
    from saesteer.steer.generate import GenerationConfig, calibrated_penalty, side_by_side
    from saesteer.steer.vector import check_strength

    vec = load_vector(vector)
    s = check_strength(vec.default_strength if strength is None else strength, vec, what="--strength")
    texts = _prompts(prompts, prompts_file, n_prompts)
    cfg = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=sample,
        temperature=temperature,
        top_p=top_p,
        repetition_penalty=calibrated_penalty(vec, repetition_penalty),
        seed=seed,
        batch_size=batch_size,
    )
    b = _backend(model, vec, backend, model_cache, skip_model_check)
    with ProgressView() as view, view.stages().stage(f"generating ({b.name})", total=2 * len(texts)) as st:
        seen = {"phase": 0, "last": 0}

        def tick(done: int, total: int) -> None:  # side_by_side runs two generations, each counting up
            if done <= seen["last"]:
                seen["phase"] += 1
            seen["last"] = done
            st.update(seen["phase"] * total + done)

        rows = side_by_side(b, texts, (vec, s), cfg, sae=_sae_for_vector(vec, sae), progress=tick)
    if as_json:
        emit_json(
            {
                "vector": vec.name,
                "strength": s,
                "model": b.info.id,
                "backend": b.name,
                "repetition_penalty": cfg.repetition_penalty,
                "rows": [r.__dict__ for r in rows],
            }
        )
        return
    table = Table(
        title=f"{vec.name} at strength {s:g} on {b.info.id} ({b.name}, seed {seed}"
              + (f", repetition penalty {cfg.repetition_penalty:g})" if cfg.repetition_penalty != 1 else ")"),
        show_lines=True
    )
    table.add_column("prompt", style="bold", overflow="fold")
    table.add_column("unsteered", overflow="fold")
    table.add_column(f"steered (x{s:g})", overflow="fold", style="green")
    for r in rows:
        table.add_row(r.prompt, r.unsteered, r.steered)
    console.print(table)


@app.command()
def sweep(
    vector: VectorArg,
    strengths: Annotated[str, typer.Option("--strengths", help="Comma-separated strengths.")] = "0.5,1,2,4,8",
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric", help="lang:<code> (language-ID accuracy); default: the vector's target language."
        ),
    ] = None,
    max_ppl_ratio: Annotated[
        float | None,
        typer.Option("--max-ppl-ratio", help="Fluency budget: max perplexity / unsteered perplexity."),
    ] = 2.0,
    max_ppl: Annotated[
        float | None, typer.Option("--max-ppl", help="Fluency budget: max absolute perplexity.")
    ] = None,
    fluency: Annotated[
        str,
        typer.Option(
            "--fluency", help="Perplexity of the continuation given its prompt (prompted) or on its own (alone)."
        ),
    ] = "prompted",
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            help="START,CAP: search the strength instead of --strengths (geometric from START until fluency breaks "
            "or CAP, then bisection) and report the window: weakest strength with metric >= 0.8, strongest fluent.",
        ),
    ] = None,
    prompts_file: Annotated[Path | None, typer.Option("--prompts-file", help="One prompt per line.")] = None,
    n_prompts: Annotated[int, typer.Option("--n-prompts")] = 8,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n")] = 30,
    repetition_penalty: PenaltyOpt = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model (default: the vector's).")] = None,
    sae: Annotated[str | None, typer.Option("--sae", "-s", help="SAE for clamp vectors.")] = None,
    backend: BackendOpt = "auto",
    skip_model_check: SkipCheckOpt = False,
    model_cache: CacheOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sweep strengths: target metric and fluency (perplexity under the unsteered model) per strength."""
    from saesteer.errors import SteeringVectorError
    from saesteer.steer.calibrate import language_accuracy
    from saesteer.steer.calibrate import sweep as run_sweep
    from saesteer.steer.export import load_vector
    from saesteer.steer.generate import GenerationConfig, calibrated_penalty

    vec = load_vector(vector)
    spec = metric or (
        "lang:" + str(vec.provenance.get("target", "")).removeprefix("language=")
        if str(vec.provenance.get("target", "")).startswith("language=")
        else None
    )
    if not spec or not spec.startswith("lang:") or len(spec) <= 5:
        raise SteeringVectorError(
            "pass --metric lang:<code> (the vector does not name a language=<code> target)"
        )
    from saesteer.steer.vector import check_strength

    texts = _prompts(None, prompts_file, n_prompts)
    cfg = GenerationConfig(max_new_tokens=max_new_tokens, seed=seed,
                           repetition_penalty=calibrated_penalty(vec, repetition_penalty))
    bounds = None
    if search is not None:
        parts = [check_strength(x, vec, what="--search value") for x in _strength_list(search)]
        if len(parts) != 2 or not 0 < parts[0] <= parts[1]:
            raise SteeringVectorError(f"--search wants START,CAP with 0 < START <= CAP, not {search!r}")
        bounds = (parts[0], parts[1])
        levels: list[float] = []
    else:
        levels = [check_strength(x, vec, what="--strengths value") for x in _strength_list(strengths)]
        if not levels:
            raise SteeringVectorError(f"--strengths holds no strength: {strengths!r}")
    b = _backend(model, vec, backend, model_cache, skip_model_check)
    with ProgressView() as view, view.stages().stage(f"sweeping ({b.name})", total=len(levels) + 1) as st:
        res = run_sweep(
            b,
            vec,
            texts,
            levels,
            language_accuracy(spec[5:]),
            cfg=cfg,
            max_ppl_ratio=max_ppl_ratio,
            max_ppl=max_ppl,
            fluency=fluency,
            sae=_sae_for_vector(vec, sae),
            progress=st.counter(),
            search=bounds,
        )
        st.done(f"{len(levels)} strengths x {len(texts)} prompts")
    rows = [
        {
            "strength": r.strength,
            "metric": r.metric,
            "perplexity": r.perplexity,
            "ppl_ratio": r.ppl_ratio,
            "repetitive": r.repetitive_share,
            "within_budget": r.within_budget,
            "example": r.examples[0] if r.examples else "",
        }
        for r in (res.baseline, *res.rows)
    ]
    if as_json:
        emit_json(
            {
                "metric": spec,
                "budget": res.budget,
                "chosen": res.chosen.strength if res.chosen else None,
                "rows": rows,
                **_window_json(res),
            }
        )
        return
    emit(rows, title=f"{vec.name}: {spec} and fluency by strength (first row: unsteered)")
    chosen = f"{res.chosen.strength:g}" if res.chosen else "none within budget"
    console.print(
        f"chosen strength: [bold]{chosen}[/] (budget: perplexity ratio <= {max_ppl_ratio}, perplexity <= {max_ppl}, "
        f"at most {res.budget['max_repetitive_share']:.0%} of the continuations outside the unsteered repetition range)"
    )
    if res.search is not None:
        w = _window_json(res)
        console.print(f"window: on target from {w['on_target_from']}, fluent up to {w['fluent_up_to']}, "
                      f"ratio {w['window']:.3g}" + (" (the chosen point is at the edge of the strengths tried)"
                                                    if w["chosen_at_edge"] else ""))


def _window_json(res: Any) -> dict[str, Any]:
    if res.search is None:
        return {}
    s = res.search
    lo, hi = s.weakest_on_target, s.strongest_fluent
    return {"on_target_from": lo.strength if lo else None, "fluent_up_to": hi.strength if hi else None,
            "window": s.window, "chosen_at_edge": s.chosen_at_edge, "capped": s.capped}


app.command("export")(steer_files.export_cmd)
app.command("import")(steer_files.import_cmd)
app.command("info")(steer_files.info)
