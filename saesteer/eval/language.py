"""Language-steering evaluation: does a recipe turn English-prompt continuations into language L, how far can
its strength move before the text breaks, and is the meaning kept?

Per target language and recipe (:mod:`saesteer.eval.recipes`: SAE features, DiffMean, prompting):

- **prompts**: the first half of held-out English sentence i of a shipped parallel corpus (``cfg.corpus``:
  ``bundled`` or ``udhr``; :func:`saesteer.eval.parallel.corpus_parallel_prompts`), whose train split also
  gives DiffMean's means and whose index build ``db`` must be; plain prompt strings work too (then there is
  no chrF and no native fluency);
- **strength search** per vector (:func:`saesteer.steer.calibrate.search_strength`): geometric from the
  recipe's start until fluency breaks (or the cap), down from the weakest strength tried while it already
  reaches the target accuracy (so the window's lower edge is measured), refined by bisection between the
  strongest fluent and the first broken strength, and below the weakest strength that reaches the target
  accuracy. A fixed grid (``strengths=``) replaces the search when given;
- per cell (language, recipe, strength): **accuracy** (offline language ID of the continuation),
  **fluency** (:mod:`saesteer.steer.fluency`: perplexity of the continuation on its own under the unsteered
  model AND repetition within the unsteered range) against two references: ``fluent_en``, calibrated on the
  unsteered continuations of the English prompts (cell ``none/unsteered``), and ``fluent_native``,
  calibrated per target language L on the unsteered continuations of the first half of L's own sentence i
  (cell ``L/native``); ``cfg.fluency_reference`` makes one of them ``fluent`` (the search uses it);
  **chrF** against the target language's sentence i;
- per (language, recipe): the **window** (weakest fluent strength reaching the target accuracy, strongest
  fluent strength, their ratio) and the **chosen point** (the window's geometric centre: the fluent
  on-target strength closest in log-space to the centre; without a window, the best accuracy among the
  fluent strengths, the weaker on a tie), with a check that it is not at the edge of the strengths tried.

Every continuation is appended to ``samples_path`` as soon as its cell is done; a rerun with the same
settings reads those back instead of generating again (resumable).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from saesteer.eval.langid import LanguageIdentifier, Py3LangId
from saesteer.eval.recipes import DECODING_PENALTY, DEFAULT_RECIPE
from saesteer.eval.samples import BASELINE_METHODS, read_cells, write_samples
from saesteer.eval.samples import cell_key as _key

if TYPE_CHECKING:
    import pandas as pd
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from saesteer.eval.parallel import ParallelPrompt
    from saesteer.eval.recipes import RecipeVectors
    from saesteer.steer.fluency import FluencyCriteria
    from saesteer.steer.generate import Backend, Generation

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
RECIPES = (DEFAULT_RECIPE, "diffmean", "prompting")
REFERENCES = ("native", "english")  # what a steered cell's fluency is judged against


@dataclass(frozen=True)
class LanguageEvalConfig:
    """What to evaluate. Strengths are in units of the typical residual norm at the hook (``swap``: of the
    features' typical activation)."""

    languages: tuple[str, ...] = ("fr", "de", "es", "it", "pt", "nl", "pl", "ru", "tr", "id", "zh")
    recipes: tuple[str, ...] = RECIPES
    strengths: tuple[float, ...] | None = None  # a fixed grid instead of the per-vector search
    n_prompts: int = 12
    calibration_prompts: int = 24  # unsteered continuations the fluency ranges are calibrated on (>= n_prompts used)
    max_new_tokens: int = 20
    # greedy decoding's repetition penalty for every cell, baselines included (1.0: plain greedy); the default
    # is the decoding the recipes' calibrated strengths were measured with
    repetition_penalty: float = DECODING_PENALTY
    fluency_budget: float = 3.0  # median perplexity <= budget x the unsteered median
    max_repetitive_share: float = 0.25  # share of continuations allowed outside the unsteered repetition range
    repetition_quantile: float = 0.0  # the unsteered range: [q, 1-q] quantiles (0: min/max)
    target_accuracy: float = 0.8
    search_factor: float = 2.0
    refine: int = 2  # bisections between the strongest fluent and the first broken strength
    refine_target: int = 1  # bisections below the weakest strength on target
    patience: int = 1  # broken strengths in a row the coarse search steps past before it stops
    max_down_target: int = 4  # steps down while the weakest strength tried is already on target
    batch_size: int = 24  # rows per generate call (the searches run in lockstep: their cells batch together)
    lockstep: bool = True  # run the (language, recipe) searches in lockstep (saesteer.steer.lockstep)
    seed: int = 0
    random_max_freq: float | None = None  # LangFIR filter threshold; None = the search default
    diffmean_texts: int = 200  # train texts per language of the corpus for the DiffMean means
    corpus: str = "bundled"  # the shipped parallel corpus: prompts/references (held out), DiffMean means (train)
    fluency_reference: str = "native"  # the primary `fluent`: "native" (per target language) or "english"
    recipe_major: bool = False  # loop recipes outside languages (a cut-short run then has every language of the first recipes)
    prompted_ppl: bool = False  # also score each continuation after its prompt (one more forward pass per cell)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from saesteer.steer.vector import check_strength

        if self.strengths is not None:
            object.__setattr__(self, "strengths",
                               tuple(check_strength(s, what="--strengths value") for s in self.strengths))
        if self.fluency_reference not in REFERENCES:
            from saesteer.errors import SteeringVectorError

            raise SteeringVectorError(
                f"fluency reference must be one of {', '.join(REFERENCES)}, not {self.fluency_reference!r}")


class LanguageEvalResult(NamedTuple):
    curves: pd.DataFrame  # one row per (language, recipe, strength)
    windows: pd.DataFrame  # one row per (language, recipe): window and chosen point (primary reference)
    samples: pd.DataFrame  # every continuation
    criteria: FluencyCriteria  # English fluency (calibrated on the unsteered continuations of the English prompts)
    baseline: dict[str, float]  # unsteered: median perplexity, chrF vs the English sentence
    native: dict[str, FluencyCriteria]  # per target language: calibrated on its own unsteered continuations
    reference: str  # the primary `fluent` ("native" falls back to English where `native` lacks L)
    by_reference: dict[str, pd.DataFrame]  # windows under each reference ("native", "english")

    @property
    def baseline_ppl(self) -> float:
        return self.criteria.baseline_ppl


def _ppl(backend: Backend, gens: Sequence[Generation], prompts: Sequence[str], batch_size: int) -> list[float]:
    """Perplexity of each continuation under the backend's model (no hooks active here) given ``prompts``;
    an empty prompt scores the continuation on its own (after BOS)."""
    nll = backend.continuation_nll(list(prompts), [g.token_ids for g in gens], batch_size=batch_size)  # type: ignore[call-arg]
    return [math.exp(s / n) if n else float("nan") for s, n in nll]


def _fluency(backend: Backend, gens: Sequence[Generation], prompts: Sequence[str], batch_size: int,
             prompted: bool = True) -> tuple[list[float], list[float]]:
    """``(ppl, ppl_prompted)``: the continuation's perplexity on its own (the fluency the evaluation
    judges) and given its English prompt (``nan`` unless ``prompted``; it also charges the language switch)."""
    alone = _ppl(backend, gens, [""] * len(gens), batch_size)
    return alone, _ppl(backend, gens, prompts, batch_size) if prompted else [float("nan")] * len(gens)


def _as_parallel(prompts: Sequence[str | ParallelPrompt]) -> list[ParallelPrompt]:
    from saesteer.eval.parallel import ParallelPrompt

    return [p if isinstance(p, ParallelPrompt) else ParallelPrompt(i, p, {}) for i, p in enumerate(prompts)]


def evaluate_language_steering(
    model: HookedTransformer,
    backend: Backend,
    sae: SAE,
    db: str | Path,
    prompts: Sequence[str | ParallelPrompt],
    cfg: LanguageEvalConfig = LanguageEvalConfig(),
    *,
    identify: LanguageIdentifier | None = None,
    progress: Progress | None = None,
    samples_path: Path | None = None,
    factory: RecipeVectors | None = None,
) -> LanguageEvalResult:
    """Run the evaluation (see the module docstring). ``model`` builds vectors, ``backend`` generates;
    ``factory`` (for ``model``, ``sae`` and ``db``) lets several calls share its typical norm and DiffMean
    means (the Ray engine runs one language per call on each worker)."""
    import pandas as pd

    from saesteer.eval.parallel import ParallelPrompt, chrf, cut_prompt
    from saesteer.eval.recipes import RecipeVectors, check_index_corpus, parse_recipe, search_range
    from saesteer.steer.baselines import PromptPrefix
    from saesteer.steer.calibrate import Probe, search_strength
    from saesteer.steer.fluency import repetition
    from saesteer.steer.generate import GenerationConfig

    ident = identify or Py3LangId()
    every = _as_parallel(prompts)
    items = every[: cfg.n_prompts]
    texts = [p.prompt for p in items]
    calib = every[: max(cfg.calibration_prompts, cfg.n_prompts)]
    recipes = [parse_recipe(r) for r in cfg.recipes]
    gcfg = GenerationConfig(max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, batch_size=cfg.batch_size,
                            repetition_penalty=cfg.repetition_penalty)
    done = read_cells(samples_path, len(items), len(calib), cfg.repetition_penalty)

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    def cell(lang: str, method: str, strength: float, run: Callable[[], list[Generation]],
             ref_lang: str, cell_items: Sequence[ParallelPrompt] = items) -> pd.DataFrame:
        key = (lang, method, _key(strength))
        if key in done:
            return done[key]
        gens = run()
        ppl, ppl_p = _fluency(backend, gens, [p.prompt for p in cell_items], cfg.batch_size, cfg.prompted_ppl)
        rows = []
        for i, (g, item, p, pp) in enumerate(zip(gens, cell_items, ppl, ppl_p, strict=True)):
            pred, conf = ident(g.text)
            rep = repetition(g.token_ids)
            ref = item.references.get(ref_lang)
            rows.append({"language": lang, "method": method, "strength": _key(strength), "prompt_index": i,
                         "prompt": item.prompt, "text": g.text, "predicted": pred, "confidence": conf,
                         "correct": float(pred == lang), "ppl": p, "ppl_prompted": pp, "n_tokens": len(g.token_ids),
                         "distinct": rep.distinct, "repeat": rep.repeat,
                         "chrf": chrf(g.text, ref) if ref is not None else float("nan"),
                         "ids": " ".join(map(str, g.token_ids)), "repetition_penalty": cfg.repetition_penalty})
        df = pd.DataFrame(rows)
        if samples_path is not None:
            samples_path.parent.mkdir(parents=True, exist_ok=True)
            write_samples(df, samples_path, append=True)
        done[key] = df
        return df

    if any(r.kind != "prompting" for r in recipes):
        check_index_corpus(db, cfg.corpus, [*cfg.languages, "en"])
    say(f"unsteered baseline ({len(calib)} prompts: the fluency ranges)")
    base = cell("none", "unsteered", 0.0, lambda: backend.generate([p.prompt for p in calib], gcfg), "en", calib)
    english = _calibrate(base, cfg)
    say(f"fluent (English reference) = {english.describe()}")
    natives: dict[str, FluencyCriteria | None] = {}

    def criteria_for(lang: str, gen: Backend = backend) -> FluencyCriteria:
        """The primary criteria for target ``lang``: its native baseline (its cell is made on first use, under
        either reference: the report shows both) or English."""
        if lang not in natives:
            native_items = [ParallelPrompt(p.index, cut_prompt(p.references[lang]), p.references)
                            for p in calib if lang in p.references]
            if len(native_items) < len(calib):
                log.warning("no %s sentences in the prompts: %s is judged against English fluency", lang, lang)
                natives[lang] = None
            else:
                say(f"{lang}: unsteered native baseline ({len(native_items)} prompts)")
                df = cell(lang, "native", 0.0, lambda: gen.generate([p.prompt for p in native_items], gcfg),
                          lang, native_items)
                natives[lang] = _calibrate(df, cfg)
        return (natives[lang] if cfg.fluency_reference == "native" else None) or english

    factory = factory or RecipeVectors(model, sae, db, diffmean_texts=cfg.diffmean_texts,
                                       random_max_freq=cfg.random_max_freq, corpus=cfg.corpus)
    order = ([(lang, r) for r in recipes for lang in cfg.languages] if cfg.recipe_major
             else [(lang, r) for lang in cfg.languages for r in recipes])

    def run_pair(lang: str, recipe: Any, gen: Backend) -> None:
        """One (language, recipe): its strength search (or the prompting cell), generating with ``gen``."""
        criteria = criteria_for(lang, gen)
        if recipe.kind == "prompting":
            say(f"{lang}: prompting")
            prefixed = PromptPrefix.for_target(f"language={lang}")(texts)
            cell(lang, recipe.name, 0.0, lambda: gen.generate(prefixed, gcfg), lang)
            return
        say(f"{lang}: building {recipe.name}")
        vec = factory.vector(recipe, lang)
        assert vec is not None  # only prompting has none
        clamp_sae = sae if recipe.op == "swap" else None

        def evaluate(s: float) -> Probe:
            say(f"{lang}: {recipe.name} x {s:g}")
            df = cell(lang, recipe.name, s, lambda: gen.generate(texts, gcfg, steer=(vec, s), sae=clamp_sae), lang)
            judged = criteria.judge(df["ppl"].tolist(), [_ids(x) for x in df["ids"]])
            return Probe(s, float(df["correct"].mean()), judged.fluent)

        if cfg.strengths is not None:
            for s in cfg.strengths:
                evaluate(s)
        else:
            start, cap = search_range(recipe)
            search_strength(evaluate, start=start, cap=cap, factor=cfg.search_factor, refine=cfg.refine,
                            refine_target=cfg.refine_target, target=cfg.target_accuracy, patience=cfg.patience,
                            max_down_target=cfg.max_down_target)

    if cfg.lockstep:
        # the native baselines, then every (language, recipe) search, in lockstep: their generations batched
        from functools import partial

        from saesteer.steer.lockstep import run_lockstep

        langs = list(dict.fromkeys(lang for lang, _ in order))
        run_lockstep(backend, [partial(criteria_for, lang) for lang in langs], batch_size=cfg.batch_size)
        run_lockstep(backend, [partial(run_pair, lang, r) for lang, r in order], batch_size=cfg.batch_size)
    else:
        for lang, recipe in order:
            run_pair(lang, recipe, backend)
    samples = pd.concat(list(done.values()), ignore_index=True)
    return result_from_samples(samples, cfg)


def _calibrate(base: pd.DataFrame, cfg: LanguageEvalConfig) -> FluencyCriteria:
    """Fluency criteria from one unsteered cell's continuations (the config's budget and repetition rule)."""
    from saesteer.steer.fluency import FluencyCriteria

    return FluencyCriteria.calibrate(base["ppl"].tolist(), [_ids(x) for x in base["ids"]],
                                     budget=cfg.fluency_budget, quantile=cfg.repetition_quantile,
                                     max_repetitive_share=cfg.max_repetitive_share)


def _ids(x: Any) -> list[int]:
    """Token ids from their ``samples.csv`` form (space-separated; empty or missing: none)."""
    return [int(t) for t in x.split()] if isinstance(x, str) else []


def result_from_samples(samples: pd.DataFrame, cfg: LanguageEvalConfig = LanguageEvalConfig()) -> LanguageEvalResult:
    """Summarise the continuations of a run (also an earlier run's ``samples.csv``: other fluency settings,
    no generation). English fluency is calibrated on the ``unsteered`` cell, each target language's native
    fluency on its ``native`` cell; an older table without native cells is judged against English (logged)."""
    from saesteer.errors import CorpusError

    need = {"language", "method", "strength", "correct", "ppl", "ids"}
    if not need <= set(samples.columns) or not (samples["method"] == "unsteered").any():
        raise CorpusError(f"not an `eval language` samples table: it needs columns {sorted(need)} and unsteered rows")
    samples = _canonical_order(samples.copy(), cfg)
    samples["ids"] = samples["ids"].fillna("").astype(str)
    base = samples[samples["method"] == "unsteered"]
    criteria = _calibrate(base, cfg)
    natives = {str(lang): _calibrate(g, cfg)
               for lang, g in samples[samples["method"] == "native"].groupby("language", sort=False)}
    steered = samples[~samples["method"].isin(BASELINE_METHODS)]
    missing = sorted(set(map(str, steered["language"])) - set(natives))
    reference = cfg.fluency_reference
    if missing and reference == "native":
        log.warning("no native baseline for %s (samples from an older run?): judged against English fluency",
                    ", ".join(missing))
        if not natives:
            reference = "english"
    samples["repetitive"] = [criteria.is_repetitive(_ids(x)) for x in samples["ids"]]
    samples["repetitive_native"] = [natives.get(str(lang), criteria).is_repetitive(_ids(x))
                                    for lang, x in zip(samples["language"], samples["ids"], strict=True)]
    curves = summarize(samples, criteria, natives, reference)
    baseline = {"ppl_median": criteria.baseline_ppl, "chrf_vs_english": float(base["chrf"].mean()),
                "distinct_min": criteria.min_distinct, "repeat_max": criteria.max_repeat}
    target = cfg.target_accuracy
    by_reference = {"native": windows(curves, target, fluent="fluent_native"),
                    "english": windows(curves, target, fluent="fluent_en")}
    return LanguageEvalResult(curves, windows(curves, target), samples, criteria, baseline, natives, reference,
                              by_reference)


def native_baselines(res: LanguageEvalResult) -> pd.DataFrame:
    """Per language, the unsteered baseline each fluency reference is calibrated on: English (its own
    prompts) and every target language's native cell (the first half of its own sentence i): continuations,
    median perplexity, the perplexity limit, the repetition range, chrF against the language's sentence i."""
    import pandas as pd

    rows = []
    for lang, method, crit in [("en", "unsteered", res.criteria),
                               *[(lang, "native", c) for lang, c in res.native.items()]]:
        s = res.samples
        g = s[s["method"] == method]
        if method == "native":
            g = g[g["language"] == lang]
        rows.append({"language": lang, "baseline": "English prompts" if method == "unsteered" else "native prompts",
                     "n": len(g), "ppl_median": crit.baseline_ppl, "max_ppl": crit.max_ppl,
                     "distinct_min": crit.min_distinct, "repeat_max": crit.max_repeat,
                     "chrf": float(g["chrf"].mean()) if "chrf" in g and len(g) else float("nan")})
    return pd.DataFrame(rows)


def _canonical_order(samples: pd.DataFrame, cfg: LanguageEvalConfig) -> pd.DataFrame:
    """The rows in the order of a sequential run (unsteered; then per language its native baseline and its
    recipes, or recipe-major), whatever order the lockstep searches finished in. Languages and methods the
    config does not list keep the order they first appear in; the cells of one (language, method) keep
    their order (the order the strengths were tried)."""
    from saesteer.eval.recipes import parse_recipe

    def positions(known: Sequence[str], column: str) -> dict[str, int]:
        pos = {x: i for i, x in enumerate(known)}
        for x in samples[column].drop_duplicates():
            pos.setdefault(x, 1000 + len(pos))
        return pos

    lang_pos = positions(list(cfg.languages), "language")
    method_pos = positions(list(dict.fromkeys(parse_recipe(r).name for r in cfg.recipes)), "method")
    keys = []
    for i, (lang, method) in enumerate(zip(samples["language"], samples["method"], strict=True)):
        lp = lang_pos[lang]
        if method == "unsteered":
            keys.append((-1, -1, -1, i))
        elif cfg.recipe_major:  # a native baseline comes with its language's first recipe
            keys.append((0, lp, -1, i) if method == "native" else (method_pos[method], lp, 0, i))
        else:
            keys.append((lp, -1, 0, i) if method == "native" else (lp, method_pos[method], 0, i))
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return samples.iloc[order].reset_index(drop=True)


def _se(x: Any) -> float:
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    return float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else float("nan")


def summarize(samples: pd.DataFrame, criteria: FluencyCriteria, native: dict[str, FluencyCriteria] | None = None,
              reference: str = "english") -> pd.DataFrame:
    """Per (language, method, strength): accuracy (mean, binomial standard error), perplexity (median, IQR),
    repetition (medians, share outside the unsteered range), fluent or not, chrF (mean, standard error).

    ``fluent_en`` / ``repetitive_share_en``: judged by ``criteria`` (English); ``fluent_native`` /
    ``repetitive_share_native``: by ``native[language]`` (English where it has none); ``fluent`` and the
    other fluency columns: by the ``reference`` one."""
    import pandas as pd

    native = native or {}
    rows = []
    for (lang, method, s), g in samples[~samples["method"].isin(BASELINE_METHODS)].groupby(
            ["language", "method", "strength"], sort=False):
        ids = [_ids(x) for x in g["ids"]]
        en = criteria.judge(g["ppl"].tolist(), ids)
        nat = native[lang].judge(g["ppl"].tolist(), ids) if lang in native else en
        judged = nat if reference == "native" else en
        acc, n = float(g["correct"].mean()), len(g)
        p = g["ppl"].to_numpy(dtype=float)
        rows.append({"language": lang, "method": method, "strength": float(s), "n": n, "accuracy": acc,
                     "accuracy_se": math.sqrt(acc * (1 - acc) / max(n, 1)),
                     "ppl_median": judged.ppl_median,
                     "ppl_q25": float(np.nanquantile(p, 0.25)) if np.isfinite(p).any() else float("nan"),
                     "ppl_q75": float(np.nanquantile(p, 0.75)) if np.isfinite(p).any() else float("nan"),
                     "distinct_median": judged.distinct_median, "repeat_median": judged.repeat_median,
                     "repetitive_share": judged.repetitive_share, "ppl_ok": judged.ppl_ok,
                     "repetition_ok": judged.repetition_ok, "fluent": judged.fluent,
                     "fluent_en": en.fluent, "fluent_native": nat.fluent,
                     "repetitive_share_en": en.repetitive_share, "repetitive_share_native": nat.repetitive_share,
                     "chrf": float(g["chrf"].mean()) if "chrf" in g else float("nan"),
                     "chrf_se": _se(g["chrf"]) if "chrf" in g else float("nan")})
    return pd.DataFrame(rows)


def windows(curves: pd.DataFrame, target: float = 0.8, *, fluent: str = "fluent") -> pd.DataFrame:
    """Per (language, method): the strengths tried, the window (weakest fluent strength reaching ``target``,
    strongest fluent strength, ratio) and the chosen point (:attr:`~saesteer.steer.calibrate.StrengthSearch.chosen`:
    the window's geometric centre; without a window the best accuracy among the fluent strengths, the stronger
    on a tie), with ``at_edge``: the chosen point is the weakest or strongest strength tried, or none
    is fluent (prompting has a single point and no edge), and ``edge``: why (a key of :data:`EDGE_REASONS`).
    ``fluent``: the column of ``curves`` that says which strengths are fluent (``fluent_en``, ``fluent_native``:
    the window under that reference, with that reference's ``repetitive_share``)."""
    import pandas as pd

    from saesteer.steer.calibrate import Probe, StrengthSearch

    suffix = fluent.removeprefix("fluent")
    share = f"repetitive_share{suffix}" if f"repetitive_share{suffix}" in curves else "repetitive_share"
    rows = []
    for (lang, method), grp in curves.groupby(["language", "method"], sort=False):
        grp = grp.sort_values("strength")
        probes = tuple(Probe(float(st), float(acc), bool(ok))
                       for st, acc, ok in zip(grp["strength"], grp["accuracy"], grp[fluent], strict=True))
        res = StrengthSearch(probes, target, capped=False)
        c = res.chosen
        pick = grp[grp["strength"] == c.strength].iloc[0] if c is not None else grp.iloc[0]
        lo, hi = res.weakest_on_target, res.strongest_fluent
        single = len(grp) == 1
        rows.append({"language": lang, "method": method, "n_tried": len(grp),
                     "tried": f"{grp['strength'].min():.3g}-{grp['strength'].max():.3g}",
                     "on_target_from": lo.strength if lo else float("nan"),
                     "fluent_up_to": hi.strength if hi else float("nan"),
                     "window": res.window, "strength": float(pick["strength"]), "fluent": c is not None,
                     "accuracy": float(pick["accuracy"]), "accuracy_se": float(pick["accuracy_se"]),
                     "ppl_median": float(pick["ppl_median"]), "repetitive_share": float(pick[share]),
                     "chrf": float(pick["chrf"]), "chrf_se": float(pick["chrf_se"]),
                     "at_edge": False if single else res.chosen_at_edge,
                     "edge": "" if single else edge_reason(res), "n": int(pick["n"])})
    out = pd.DataFrame(rows)
    if len(out):
        # an unfluent point reports accuracy 0: it does not count as steering at fluency
        out.loc[~out["fluent"], "accuracy"] = 0.0
    return out


EDGE_REASONS = {
    "none fluent": "not fluent at any strength tried",
    "no window": "the target is never reached fluently, and the only fluent strengths with the best accuracy are "
                 "at the weakest strength tried: every stronger strength tried broke fluency (see the curves)",
    "weakest": "on target already at the weakest strength tried (the search stepped down its maximum number of "
               "times), so the window's lower edge is not bracketed",
    "strongest": "fluent at the strongest strength tried (the search's cap), so the window's upper edge is not "
                 "bracketed",
}


def edge_reason(res: Any) -> str:
    """Why a search's chosen point is at the edge of the strengths tried (a key of :data:`EDGE_REASONS`),
    or ``""`` when it is not."""
    if not res.chosen_at_edge:
        return ""
    c = res.chosen
    if c is None:
        return "none fluent"
    if res.weakest_on_target is None and c.strength == res.probes[0].strength:
        return "no window"
    return "weakest" if c.strength == res.probes[0].strength else "strongest"


def method_table(win: pd.DataFrame, column: str) -> pd.DataFrame:
    """Languages x methods: ``column`` at the chosen point (plus a mean row)."""
    t = win.pivot(index="language", columns="method", values=column)
    t.loc["mean"] = t.mean(numeric_only=True)
    return t.reset_index()


def accuracy_table(win: pd.DataFrame) -> pd.DataFrame:
    """Languages x methods accuracy at the chosen (fluent) point (plus a mean row)."""
    return method_table(win, "accuracy")


def targets_table(win: pd.DataFrame, target: float = 0.8) -> pd.DataFrame:
    """Per method: languages reaching ``target`` accuracy at fluency, windows of at least 2x, mean chrF,
    chosen points at the edge of the strengths tried, and (where DiffMean was measured) ``all_targets``: the
    languages meeting all three per-language targets at once (accuracy >= ``target`` while fluent, a window
    of at least 2x, chrF at the chosen point not below calibrated DiffMean's)."""
    import pandas as pd

    dm = win[win["method"] == "diffmean"].set_index("language")["chrf"] if (win["method"] == "diffmean").any() else None
    rows = []
    for method, g in win.groupby("method", sort=False):
        on = (g["accuracy"] >= target) & g["fluent"]
        wide = g["window"] >= 2 * (1 - 1e-4)  # strengths keep 6 significant digits (_key): 2x can read 1.99999
        extra = ({} if dm is None else
                 {"all_targets": int((on & wide & (g["chrf"] >= g["language"].map(dm))).sum())})
        rows.append({"method": method, "languages": len(g),
                     "accuracy>=target_fluent": int(on.sum()),
                     "mean_accuracy": float(g["accuracy"].mean()),
                     "window>=2x": int(wide.sum()),
                     "median_window": float(g["window"].median()) if g["window"].notna().any() else float("nan"),
                     "mean_chrf": float(g["chrf"].mean()), "chosen_at_edge": int(g["at_edge"].sum()), **extra})
    return pd.DataFrame(rows)
