"""The main job, end to end on the embedded defaults (Gemma 3 270M, the default SAE, the bundled corpus):

1. build the index (bundled train split, 12 languages, + uniform random-token baseline), resumable;
2. select language features per language with random-token (LangFIR) and density filtering;
3. build the steering vectors;
4. generate English-prompt continuations side by side, steered into three languages (one generate call:
   the unsteered rows and every language's rows together, each row with its own vector);
5. export the vectors (native, llama.cpp GGUF, Neuronpedia JSON, numpy);
6. write a report (Markdown + HTML with plots): feature sets, side-by-side samples, a quick evaluation
   against the baselines and the ablation matrix.

The quick evaluation is a smoke view sized to keep the whole job within a few minutes (by default the
first two shown languages, 4 prompts, 16 tokens, a coarse strength search); ``saesteer eval language``
gives the real numbers (docs/results/language_eval), and the ``--eval-*`` flags enlarge the quick one.

The recipe the quickstart steers with and its strength are set in one place, :class:`QuickstartConfig`
(``recipe`` and ``strength``).

``run_quickstart`` is the library entry point; ``saesteer quickstart`` wraps it with progress (bars on a terminal, plain lines elsewhere)
and prints the stage timings at the end (they are also in the report).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from saesteer.eval.recipes import DECODING_PENALTY, DEFAULT_RECIPE
from saesteer.models.loading import DEFAULT_MODEL
from saesteer.progress import Listener, Stage, Stages

if TYPE_CHECKING:
    import pandas as pd
    from transformer_lens import HookedTransformer

    from saesteer.eval.language import LanguageEvalResult
    from saesteer.eval.recipes import Recipe
    from saesteer.featureset import FeatureSet
    from saesteer.index.build import BuildProgress
    from saesteer.steer.generate import Backend, SideBySide
    from saesteer.steer.vector import SteeringVector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuickstartConfig:
    """Settings of the quickstart (the CLI flags mirror these fields)."""

    model: str = DEFAULT_MODEL
    sae: str = "default"
    db: Path | None = None
    out: Path = Path("quickstart_out")
    languages: tuple[str, ...] | None = None  # indexed languages (default: all bundled)
    show: tuple[str, ...] = ("fr", "de", "es")  # languages steered into in the side-by-side view
    n_random: int = 256
    random_len: int = 64  # n_random and random_len match `saesteer index build`, so both share one build
    max_docs: int | None = None  # per language (None: the whole train split)
    top_k: int = 50  # features per language (the selection, and the recipe's k unless it names one)
    # The recipe the side by side, the exports and the evaluation's first row use, and its strength
    # (saesteer.eval.recipes syntax; x typical residual norm for additive operators, x typical activation
    # for swap): the recipe that won `saesteer eval language` (saesteer.eval.recipes.DEFAULT_RECIPE) and a
    # strength inside its measured windows (saesteer.eval.recipes.default_strength).
    recipe: str = DEFAULT_RECIPE
    strength: float | None = None  # None: the recipe's default (saesteer.eval.recipes.default_strength)
    # formats that cannot hold an SAE clamp (gguf, neuronpedia, npy: one additive direction) get this
    # additive recipe's vector instead, named <lang>.add.<suffix>
    additive_recipe: str = "sae"
    n_prompts: int = 3  # English prompts in the side by side
    max_new_tokens: int = 20  # tokens per side-by-side continuation
    # greedy decoding's repetition penalty (side by side and evaluation): the one the recipe's strengths were
    # calibrated with (saesteer.eval.recipes.DECODING_PENALTY; 1: off)
    repetition_penalty: float = DECODING_PENALTY
    # the quick evaluation: a smoke view (`saesteer eval language` for the real numbers)
    eval_languages: int = 2  # the first N shown languages
    eval_prompts: int = 4  # prompts per cell (0: no evaluation)
    eval_calibration: int = 8  # unsteered continuations the fluency ranges are calibrated on
    eval_max_new_tokens: int = 16
    eval_strengths: tuple[float, ...] | None = None  # None: each vector's strength is searched until fluency breaks
    eval_refine: int = 0  # bisections of that search between the strongest fluent and the first broken strength
    ablation_texts: int = 5  # held-out sentences per language; rows = the `show` languages
    fluency_budget: float = 3.0  # matched fluency: median ppl <= budget x unsteered
    export_formats: tuple[str, ...] = ("native", "gguf", "neuronpedia", "npy")
    rebuild: bool = False  # compute the index instead of importing the shipped one (saesteer.index.prebuilt)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from saesteer.steer.vector import check_strength

        if self.strength is not None:
            check_strength(self.strength, what="--strength")
        for s in self.eval_strengths or ():
            check_strength(s, what="evaluation strength")
        self.steer_recipe()  # a bad recipe fails here, before anything runs

    def strength_for(self, lang: str) -> float:
        """:attr:`strength`, or the recipe's default strength for ``lang`` (calibrated for the default model and
        SAE where `saesteer eval language` measured it, saesteer.eval.recipes.default_strength)."""
        from saesteer.eval.recipes import default_strength

        if self.strength is not None:
            return self.strength
        return default_strength(self.steer_recipe(), lang, model_id=self.model, sae_id=self.sae)

    def steer_recipe(self) -> Recipe:
        """:attr:`recipe` parsed; an SAE recipe that names no ``k`` takes :attr:`top_k`."""
        from saesteer.errors import SteeringVectorError
        from saesteer.eval.recipes import parse_recipe

        r = parse_recipe(self.recipe)
        if r.kind == "prompting":
            raise SteeringVectorError("the quickstart needs a recipe with a vector (sae or diffmean), not prompting")
        named_k = any(part.strip().startswith("k=") for part in self.recipe.split(":")[1:])
        return replace(r, k=self.top_k) if r.kind == "sae" and not named_k else r


class QuickstartResult(NamedTuple):
    db: Path
    build_id: str
    featuresets: dict[str, FeatureSet]
    dropped_random: dict[str, int]
    side_by_side: dict[str, list[SideBySide]]
    exports: list[Path]
    evaluation: LanguageEvalResult | None
    ablation: pd.DataFrame | None
    report: tuple[Path, Path]
    timings: dict[str, float]  # wall seconds per stage, in the order they ran


ShowFn = Callable[[dict[str, list["SideBySide"]]], None]


def run_quickstart(
    cfg: QuickstartConfig, *, progress: Listener | None = None, on_side_by_side: ShowFn | None = None
) -> QuickstartResult:
    """Run the whole job (see the module docstring). ``progress`` receives each stage's start / update /
    end events (:mod:`saesteer.progress`); ``on_side_by_side`` receives the steered continuations as soon as
    they exist, before the evaluation starts (the report is also written then, and rewritten at the end)."""
    from saesteer.corpus import (
        RandomTokens,
        bundled_conditions,
        bundled_languages,
        bundled_texts,
    )
    from saesteer.eval.ablation import ablation_matrix, feature_ablation
    from saesteer.eval.language import LanguageEvalConfig, evaluate_language_steering
    from saesteer.eval.parallel import bundled_parallel_prompts
    from saesteer.eval.recipes import RecipeVectors, parse_recipe
    from saesteer.eval.summary import write_quickstart_report
    from saesteer.index.build import BuildConfig, build_index
    from saesteer.index.prebuilt import shipped_exports
    from saesteer.paths import default_db_path
    from saesteer.saes import load_sae
    from saesteer.select.search import Search
    from saesteer.steer.export import export_vector
    from saesteer.steer.generate import GenerationConfig, side_by_side_many

    stages = Stages(progress)
    out = Path(cfg.out)
    db = Path(cfg.db) if cfg.db is not None else default_db_path()
    langs = list(cfg.languages or bundled_languages())
    show = [lang for lang in cfg.show if lang in langs]
    recipe = cfg.steer_recipe()

    with stages.stage("model load", info=f"{cfg.model} + SAE {cfg.sae}"):
        model, backend = _load_models(cfg.model)
        sae = load_sae(cfg.sae, model=model)
        clamp_sae = sae if recipe.op == "swap" else None

    conds: list[Any] = [replace(c, max_docs=cfg.max_docs) for c in bundled_conditions("train", langs)]
    conds.append(RandomTokens("uniform", n_seqs=cfg.n_random, seq_len=cfg.random_len, seed=0))
    with stages.stage("index", total=len(conds), info=f"{len(langs)} languages + random tokens into {db}") as st:
        built = build_index(db, model, sae, conds, BuildConfig(), progress=_build_updates(st),
                            reuse=() if cfg.rebuild else shipped_exports())
        st.done(f"build {built.build_id}: {len(built.written)} computed, {len(built.imported)} imported, "
                f"{len(built.skipped) - len(built.imported)} already there")

    featuresets: dict[str, FeatureSet] = {}
    dropped_random: dict[str, int] = {}
    with stages.stage("selection", total=len(langs)) as st:
        for i, lang in enumerate(langs):
            res = (Search(db, target=f"language={lang}", against="rest", build_id=built.build_id)
                   .drop_dead().drop_dense().drop_bos_only().drop_random().top(cfg.top_k).run())
            featuresets[lang] = fs = res.to_featureset()
            fs.save(out / "featuresets" / f"{lang}.json")
            dropped_random[lang] = res.dropped_random
            st.update(i + 1, info=lang)
        st.done(f"{sum(len(f) for f in featuresets.values())} features for {len(langs)} languages")

    with stages.stage("vectors", total=len(show), info=f"recipe {recipe.name}") as st:
        factory = RecipeVectors(model, sae, db, diffmean_texts=cfg.max_docs or 200, build_id=built.build_id)
        vectors = {}
        for i, lang in enumerate(show):
            vec = factory.vector(recipe, lang)
            assert vec is not None  # steer_recipe refuses prompting
            vectors[lang] = vec.with_(name=f"language-{lang}")
            st.update(i + 1, info=lang)
        st.done(f"{len(vectors)} vectors ({recipe.name}), typical norm {factory.norm:.1f}")

    # the evaluation's own prompts (first halves of held-out English sentences): the strengths were calibrated
    # on them (docs/results/language_eval)
    prompts = [p.prompt for p in bundled_parallel_prompts()[: cfg.n_prompts]]
    n_rows = len(prompts) * (len(show) + 1)
    with stages.stage("side by side", total=n_rows, info=f"{', '.join(show)}: {n_rows} rows in one batch") as st:
        # the unsteered rows and every language's rows in one generate call (per-row steering): one decode loop
        gcfg = GenerationConfig(max_new_tokens=cfg.max_new_tokens, batch_size=max(n_rows, 1),
                                repetition_penalty=cfg.repetition_penalty)
        sbs: dict[str, list[SideBySide]] = side_by_side_many(
            backend, prompts, {lang: (vectors[lang], cfg.strength_for(lang)) for lang in show}, gcfg, sae=clamp_sae,
            progress=lambda done, total: st.update(done, total)) if show and prompts else {}
        st.done(f"{len(show)} languages x {len(prompts)} prompts x {cfg.max_new_tokens} tokens")
    if on_side_by_side is not None:
        on_side_by_side(sbs)

    with stages.stage("exports", total=len(show) * len(cfg.export_formats)) as st:
        exports: list[Path] = []
        additive: dict[str, SteeringVector] = {}
        for lang in show:
            for fmt in cfg.export_formats:
                suffix = {"native": "safetensors", "gguf": "gguf", "neuronpedia": "json", "npy": "npy"}[fmt]
                vec, strength, name = vectors[lang], cfg.strength_for(lang), f"{lang}.{suffix}"
                if vec.clamp is not None and fmt != "native":  # one additive direction: the additive recipe's
                    if lang not in additive:
                        extra = factory.vector(parse_recipe(cfg.additive_recipe), lang)
                        assert extra is not None
                        additive[lang] = extra.with_(name=f"language-{lang}-add")
                    vec, name = additive[lang], f"{lang}.add.{suffix}"
                    strength = vec.default_strength  # carried by the recipe's vector (one source)
                try:
                    exports += export_vector(vec, out / "vectors" / name, fmt, strength=strength)
                except Exception as exc:  # one format that cannot express the vector must not stop the job
                    log.warning("export %s for %s skipped: %s", fmt, lang, exc)
                st.update((st.completed or 0) + 1)
        st.done(f"{len(exports)} files")

    def report(evaluation: LanguageEvalResult | None, ablation: pd.DataFrame | None, pending: str = "") -> tuple[Path, Path]:
        return write_quickstart_report(out, cfg=replace(cfg, db=db), build_id=built.build_id, featuresets=featuresets,
                                       dropped_random=dropped_random, side_by_side=sbs, exports=exports,
                                       evaluation=evaluation, ablation=ablation, timings=dict(stages.timings),
                                       pending=pending)

    # the side by side is readable now: write it before the evaluation, rewrite the report at the end
    report(None, None, pending="evaluation and ablation matrix: running (this report is rewritten when they finish)")

    evaluation = None
    eval_langs = tuple(show[: cfg.eval_languages])
    if cfg.eval_prompts > 0 and eval_langs:
        recipes = tuple(dict.fromkeys((recipe.name, "diffmean", "prompting")))
        info = (f"smoke view: {len(eval_langs)} languages x {len(recipes)} recipes x {cfg.eval_prompts} prompts, "
                f"strength searched; `saesteer eval language` for the real numbers")
        with stages.stage("evaluation", info=info) as st:
            ecfg = LanguageEvalConfig(languages=eval_langs, recipes=recipes, strengths=cfg.eval_strengths,
                                      n_prompts=cfg.eval_prompts, calibration_prompts=cfg.eval_calibration,
                                      refine=cfg.eval_refine, max_new_tokens=cfg.eval_max_new_tokens,
                                      batch_size=max(cfg.eval_prompts, cfg.eval_calibration,
                                                     LanguageEvalConfig.batch_size),
                                      fluency_budget=cfg.fluency_budget, diffmean_texts=cfg.max_docs or 200,
                                      repetition_penalty=cfg.repetition_penalty)
            evaluation = evaluate_language_steering(model, backend, sae, db, bundled_parallel_prompts(), ecfg,
                                                    progress=st.messages(), factory=factory)
            st.done(f"{len(evaluation.samples):,} continuations")
    ablation = None
    if cfg.ablation_texts > 0:
        with stages.stage("ablation", info=f"{len(show)} rows x {len(langs)} languages") as st:
            # rows: the languages shown (each ablation costs a forward pass over every language's texts);
            # `saesteer eval language` computes the full matrix
            texts = {lang: bundled_texts(lang, "heldout")[: cfg.ablation_texts] for lang in langs}
            ablated = {lang: feature_ablation(featuresets[lang], sae, model, typical_norm=factory.norm)
                       for lang in show}
            ablation = ablation_matrix(model, ablated, texts, sae=sae)
            st.done(f"{len(show)} x {len(langs)} matrix")
    with stages.stage("report"):
        paths = report(evaluation, ablation)
    return QuickstartResult(db, built.build_id, featuresets, dropped_random, sbs, exports, evaluation, ablation,
                            paths, dict(stages.timings))


def _load_models(name: str) -> tuple[HookedTransformer, Backend]:
    """The transformer-lens model (index, vectors, ablation) and the generation backend, reading the weights
    once: the transformers model generates and the transformer-lens model is built from it."""
    from saesteer.models.loading import load_hf_model, load_model, resolve_model
    from saesteer.steer.generate import HFBackend, TLBackend

    source = resolve_model(name)
    if source.kind == "tiny":  # no transformers twin: the transformer-lens model generates
        model = load_model(name)
        return model, TLBackend(model)
    hf, tok = load_hf_model(name)
    return load_model(name, hf=(hf, tok)), HFBackend(hf, tok, source.id)


def _build_updates(st: Stage) -> Callable[[BuildProgress], None]:
    """Index-build events as updates of one stage: conditions done, the current one and its tokens."""

    def on_build(ev: BuildProgress) -> None:
        if ev.status == "feature_output":
            st.update(info="logit lens (feature_output)")
            return
        done = ev.index + (ev.status in ("written", "skipped", "imported"))
        st.update(done, ev.n_conditions, info=f"{ev.condition}: {ev.status} {ev.n_tokens:,} tokens")

    return on_build
