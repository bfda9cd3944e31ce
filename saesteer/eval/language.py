"""Language-steering evaluation: does a vector turn English-prompt continuations into language L,
at what cost in fluency, and how does it compare with the baselines on the same prompts?

Methods (one vector or prompt transform per target language, all from the same index/corpus):

- ``sae_filtered``: top-k SAE features by contrastive score, random-token (LangFIR) and density filters,
  their raw decoder rows weighted by ``mean_diff`` (mean activation on the target minus on the others):
  the part of the SAE-space DiffMean those features carry;
- ``sae_unfiltered``: the same top-k search and weights without the random-token filter;
- ``diffmean``: mean residual of the target language minus the mean over the others (bundled corpus);
- ``prompting``: an instruction prefix ("Answer in French: "), no vector.

For each (language, method, strength): target-language accuracy (offline language ID on the
continuation), fluency (perplexity of the continuation on its own, after BOS, under the unsteered model:
scoring it after the English prompt would also charge the switch of language, the very effect under test;
that prompted perplexity is kept in the samples as ``ppl_prompted``) and their spread over prompts. :func:`matched_fluency` picks, per language and method, the strongest strength whose
median perplexity stays within ``fluency_budget`` x the unsteered median.
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

if TYPE_CHECKING:
    import pandas as pd
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from saesteer.featureset import FeatureSet
    from saesteer.steer.generate import Backend, Generation
    from saesteer.steer.vector import SteeringVector

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
METHODS = ("sae_filtered", "sae_unfiltered", "diffmean", "prompting")


@dataclass(frozen=True)
class LanguageEvalConfig:
    """What to evaluate. Strengths are in units of the typical residual norm at the hook."""

    languages: tuple[str, ...] = ("fr", "de", "es", "it", "pt", "nl", "pl", "ru", "tr", "id", "zh")
    methods: tuple[str, ...] = METHODS
    strengths: tuple[float, ...] = (0.03, 0.05, 0.08, 0.12, 0.2)
    n_prompts: int = 12
    max_new_tokens: int = 20
    top_k: int = 50
    weighting: str = "mean_diff"  # SAE feature vectors: weights (saesteer.steer.build / select.weights)
    unit_rows: bool | None = None  # None: raw rows for mean_diff (the features' share of the SAE-space DiffMean)
    fluency_budget: float = 3.0
    batch_size: int = 12
    seed: int = 0
    random_max_freq: float | None = None  # LangFIR filter threshold; None = the search default
    diffmean_texts: int = 200  # bundled train sentences per language for the DiffMean means
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from saesteer.steer.vector import check_strength

        object.__setattr__(self, "strengths", tuple(check_strength(s, what="--strengths value") for s in self.strengths))


class LanguageEvalResult(NamedTuple):
    curves: pd.DataFrame  # one row per (language, method, strength)
    matched: pd.DataFrame  # one row per (language, method) at matched fluency
    samples: pd.DataFrame  # every continuation
    baseline_ppl: float  # median perplexity of unsteered continuations


class VectorFactory:
    """Builds every method's vector for a target language, sharing the expensive parts: the typical
    residual norm (once) and the per-language mean residuals that DiffMean needs (once per language,
    not once per target)."""

    def __init__(self, model: HookedTransformer, sae: SAE, db: str | Path, cfg: LanguageEvalConfig) -> None:
        from saesteer.steer.residuals import typical_residual_norm

        self.model, self.sae, self.db, self.cfg = model, sae, db, cfg
        self.hook = str(sae.cfg.metadata.hook_name)
        self.norm = typical_residual_norm(model, self.hook)
        self._means: dict[str, Any] = {}

    def _language_means(self) -> dict[str, Any]:
        if not self._means:
            from saesteer.corpus import bundled_languages, bundled_texts
            from saesteer.steer.residuals import mean_residual

            for lang in bundled_languages():
                texts = bundled_texts(lang, "train")[: self.cfg.diffmean_texts]
                means, _ = mean_residual(self.model, [self.hook], texts)
                self._means[lang] = means[self.hook]
        return self._means

    def diffmean(self, lang: str) -> SteeringVector:
        """mean residual of ``lang`` minus the mean over the other bundled languages (each weighs the same)."""
        from saesteer.steer.build import from_direction

        means = self._language_means()
        others = [m for other, m in means.items() if other != lang]
        direction = means[lang] - sum(others) / len(others)
        prov = {"method": "diffmean", "target": f"language={lang}", "others": sorted(o for o in means if o != lang),
                "corpus": "bundled", "split": "train"}
        return from_direction(direction.float(), self.hook, self.model, typical_norm=self.norm, provenance=prov,
                              name=f"diffmean-{lang}")

    def featureset(self, lang: str, *, filtered: bool) -> FeatureSet:
        """Top-k contrastive SAE features, with (``filtered``) or without the random-token filter."""
        from saesteer.select.search import Search

        s = Search(self.db, target=f"language={lang}", against="rest").drop_dead().drop_dense().drop_bos_only()
        if filtered:
            mf = self.cfg.random_max_freq
            s = s.drop_random() if mf is None else s.drop_random(max_freq=mf)
        return s.top(self.cfg.top_k).run().to_featureset()

    def sae_features(self, lang: str, *, filtered: bool) -> SteeringVector:
        """The steering vector of :meth:`featureset` (``cfg.weighting`` weights on the decoder rows)."""
        from saesteer.select.weights import weigh
        from saesteer.steer.build import from_feature_set

        fs = weigh(self.featureset(lang, filtered=filtered), self.cfg.weighting, self.db)
        name = f"{'sae_filtered' if filtered else 'sae_unfiltered'}-{lang}"
        return from_feature_set(fs, self.sae, self.model, weighting=self.cfg.weighting, unit_rows=self.cfg.unit_rows,
                                typical_norm=self.norm, name=name)

    def vectors(self, lang: str) -> dict[str, SteeringVector]:
        """The vector of every vector method in ``cfg.methods`` (prompting has none)."""
        out: dict[str, SteeringVector] = {}
        for method in self.cfg.methods:
            if method in ("sae_filtered", "sae_unfiltered"):
                out[method] = self.sae_features(lang, filtered=method == "sae_filtered")
            elif method == "diffmean":
                out[method] = self.diffmean(lang)
        return out


def _ppl(backend: Backend, gens: Sequence[Generation], prompts: Sequence[str], batch_size: int) -> list[float]:
    """Perplexity of each continuation under the backend's model (no hooks active here) given ``prompts``;
    an empty prompt scores the continuation on its own (after BOS)."""
    nll = backend.continuation_nll(list(prompts), [g.token_ids for g in gens], batch_size=batch_size)  # type: ignore[call-arg]
    return [math.exp(s / n) if n else float("nan") for s, n in nll]


def _fluency(backend: Backend, gens: Sequence[Generation], prompts: Sequence[str], batch_size: int
             ) -> tuple[list[float], list[float]]:
    """``(ppl, ppl_prompted)``: the continuation's perplexity on its own (the fluency the evaluation
    matches on) and given its English prompt (reported too; it also charges the language switch itself)."""
    return _ppl(backend, gens, [""] * len(gens), batch_size), _ppl(backend, gens, prompts, batch_size)


def evaluate_language_steering(
    model: HookedTransformer,
    backend: Backend,
    sae: SAE,
    db: str | Path,
    prompts: Sequence[str],
    cfg: LanguageEvalConfig = LanguageEvalConfig(),
    *,
    identify: LanguageIdentifier | None = None,
    progress: Progress | None = None,
    factory: VectorFactory | None = None,
) -> LanguageEvalResult:
    """Run the evaluation (see the module docstring). ``model`` builds vectors, ``backend`` generates;
    ``factory`` (for ``model``, ``sae``, ``db`` and ``cfg``) lets several calls share its typical norm and
    DiffMean means (the Ray engine runs one language per call on each worker)."""
    import pandas as pd

    from saesteer.steer.baselines import PromptPrefix
    from saesteer.steer.generate import GenerationConfig

    ident = identify or Py3LangId()
    prompts = list(prompts)[: cfg.n_prompts]
    gcfg = GenerationConfig(max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, batch_size=cfg.batch_size)
    samples: list[dict[str, Any]] = []

    def record(lang: str, method: str, strength: float, gens: Sequence[Generation],
               fluency: tuple[Sequence[float], Sequence[float]]) -> None:
        for g, p, pp in zip(gens, *fluency, strict=True):
            pred, conf = ident(g.text)
            samples.append({"language": lang, "method": method, "strength": strength, "prompt": g.prompt,
                            "text": g.text, "predicted": pred, "confidence": conf,
                            "correct": float(pred == lang), "ppl": p, "ppl_prompted": pp})

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    say("unsteered baseline")
    base = backend.generate(prompts, gcfg)
    base_fluency = _fluency(backend, base, prompts, cfg.batch_size)
    record("none", "unsteered", 0.0, base, base_fluency)
    factory = factory or VectorFactory(model, sae, db, cfg)
    for lang in cfg.languages:
        say(f"{lang}: building vectors")
        vecs = factory.vectors(lang)
        for method, vec in vecs.items():
            for s in cfg.strengths:
                say(f"{lang}: {method} x {s:g}")
                gens = backend.generate(prompts, gcfg, steer=(vec, s))
                record(lang, method, s, gens, _fluency(backend, gens, prompts, cfg.batch_size))
        if "prompting" in cfg.methods:
            say(f"{lang}: prompting")
            prefixed = PromptPrefix.for_target(f"language={lang}")(prompts)
            gens = backend.generate(prefixed, gcfg)
            # ppl_prompted: given the ORIGINAL prompt, like the vector methods
            record(lang, "prompting", 0.0, gens, _fluency(backend, gens, prompts, cfg.batch_size))
    df = pd.DataFrame(samples)
    curves = summarize(df)
    base_med = float(np.nanmedian(base_fluency[0]))
    return LanguageEvalResult(curves, matched_fluency(curves, base_med, cfg.fluency_budget), df, base_med)


def result_from_samples(samples: pd.DataFrame, budget: float) -> LanguageEvalResult:
    """Rebuild a result from an earlier run's ``samples.csv`` (another fluency budget, no generation)."""
    from saesteer.errors import CorpusError

    need = {"language", "method", "strength", "correct", "ppl"}
    if not need <= set(samples.columns) or not (samples["method"] == "unsteered").any():
        raise CorpusError(f"not an `eval language` samples table: it needs columns {sorted(need)} and unsteered rows")
    base = float(np.nanmedian(samples.loc[samples["method"] == "unsteered", "ppl"]))
    curves = summarize(samples)
    return LanguageEvalResult(curves, matched_fluency(curves, base, budget), samples, base)


def summarize(samples: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (mean, standard error) and perplexity (median, IQR) per (language, method, strength)."""
    g = samples[samples["method"] != "unsteered"].groupby(["language", "method", "strength"], sort=False)
    aggs: dict[str, Any] = dict(
        n=("correct", "size"), accuracy=("correct", "mean"),
        ppl_median=("ppl", "median"), ppl_q25=("ppl", lambda x: float(np.nanquantile(x, 0.25))),
        ppl_q75=("ppl", lambda x: float(np.nanquantile(x, 0.75))),
    )
    if "ppl_prompted" in samples.columns:
        aggs["ppl_prompted_median"] = ("ppl_prompted", "median")
    out = g.agg(**aggs).reset_index()
    out["accuracy_se"] = np.sqrt(out["accuracy"] * (1 - out["accuracy"]) / out["n"].clip(lower=1))
    return out


def matched_fluency(curves: pd.DataFrame, baseline_ppl: float, budget: float) -> pd.DataFrame:
    """Per (language, method): among the strengths whose median ppl <= budget x baseline, the one with the
    best accuracy (the weaker one on a tie), and that accuracy; the weakest strength, flagged, when none is
    within budget. (Not simply the strongest within budget: too strong a vector can produce repetitive
    text that is low-perplexity and in no language.)"""
    import pandas as pd

    rows = []
    limit = budget * baseline_ppl
    for (lang, method), grp in curves.groupby(["language", "method"], sort=False):
        ok = grp[grp["ppl_median"] <= limit]
        best = ok.sort_values(["accuracy", "strength"], ascending=[False, True]) if len(ok) else None
        pick = best.iloc[0] if best is not None else grp.sort_values("strength").iloc[0]
        rows.append({"language": lang, "method": method, "strength": float(pick["strength"]),
                     "accuracy": float(pick["accuracy"]), "accuracy_se": float(pick["accuracy_se"]),
                     "ppl_median": float(pick["ppl_median"]), "within_budget": bool(len(ok)), "n": int(pick["n"])})
    return pd.DataFrame(rows)


def accuracy_table(matched: pd.DataFrame) -> pd.DataFrame:
    """Languages x methods accuracy at matched fluency (plus a mean row)."""
    t = matched.pivot(index="language", columns="method", values="accuracy")
    t.loc["mean"] = t.mean(numeric_only=True)
    return t.reset_index()
