"""Language-steering evaluation: does a vector turn English-prompt continuations into language L,
at what cost in fluency, and how does it compare with the baselines on the same prompts?

Methods (one vector or prompt transform per target language, all from the same index/corpus):

- ``sae_filtered``: top-k SAE features by contrastive score, random-token (LangFIR) and density filters;
- ``sae_unfiltered``: the same top-k search without the random-token filter;
- ``diffmean``: mean residual of the target language minus the mean over the others (bundled corpus);
- ``prompting``: an instruction prefix ("Answer in French: "), no vector.

For each (language, method, strength): target-language accuracy (offline language ID on the
continuation), fluency (perplexity of the continuation under the unsteered model) and their spread
over prompts. :func:`matched_fluency` picks, per language and method, the strongest strength whose
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
    strengths: tuple[float, ...] = (0.25, 0.5, 1.0)
    n_prompts: int = 12
    max_new_tokens: int = 20
    top_k: int = 20
    fluency_budget: float = 3.0
    batch_size: int = 12
    seed: int = 0
    random_max_freq: float | None = None  # LangFIR filter threshold; None = the search default
    extra: dict[str, Any] = field(default_factory=dict)


class LanguageEvalResult(NamedTuple):
    curves: pd.DataFrame  # one row per (language, method, strength)
    matched: pd.DataFrame  # one row per (language, method) at matched fluency
    samples: pd.DataFrame  # every continuation
    baseline_ppl: float  # median perplexity of unsteered continuations


def method_vectors(
    model: HookedTransformer, sae: SAE, db: str | Path, lang: str, cfg: LanguageEvalConfig
) -> dict[str, SteeringVector]:
    """The steering vectors of every vector method for ``language=<lang>`` (prompting has none)."""
    from saesteer.select.search import Search
    from saesteer.steer.baselines import diffmean_bundled
    from saesteer.steer.build import from_feature_set
    from saesteer.steer.residuals import typical_residual_norm

    hook = str(sae.cfg.metadata.hook_name)
    norm = typical_residual_norm(model, hook)
    target = f"language={lang}"
    out: dict[str, SteeringVector] = {}
    for method in cfg.methods:
        if method in ("sae_filtered", "sae_unfiltered"):
            s = Search(db, target=target, against="rest").drop_dead().drop_dense().drop_bos_only()
            if method == "sae_filtered":
                s = s.drop_random() if cfg.random_max_freq is None else s.drop_random(max_freq=cfg.random_max_freq)
            fs = s.top(cfg.top_k).run().to_featureset()
            out[method] = from_feature_set(fs, sae, model, typical_norm=norm, name=f"{method}-{lang}")
        elif method == "diffmean":
            out[method] = diffmean_bundled(model, hook, lang, typical_norms={hook: norm}, name=f"diffmean-{lang}")
    return out


def _ppl(backend: Backend, gens: Sequence[Generation], prompts: Sequence[str], batch_size: int) -> list[float]:
    nll = backend.continuation_nll(list(prompts), [g.token_ids for g in gens], batch_size=batch_size)  # type: ignore[call-arg]
    return [math.exp(s / n) if n else float("nan") for s, n in nll]


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
) -> LanguageEvalResult:
    """Run the evaluation (see the module docstring). ``model`` builds vectors, ``backend`` generates."""
    import pandas as pd

    from saesteer.steer.baselines import PromptPrefix
    from saesteer.steer.generate import GenerationConfig

    ident = identify or Py3LangId()
    prompts = list(prompts)[: cfg.n_prompts]
    gcfg = GenerationConfig(max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, batch_size=cfg.batch_size)
    samples: list[dict[str, Any]] = []

    def record(lang: str, method: str, strength: float, gens: Sequence[Generation], ppl: Sequence[float]) -> None:
        for g, p in zip(gens, ppl, strict=True):
            pred, conf = ident(g.text)
            samples.append({"language": lang, "method": method, "strength": strength, "prompt": g.prompt,
                            "text": g.text, "predicted": pred, "confidence": conf,
                            "correct": float(pred == lang), "ppl": p})

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    say("unsteered baseline")
    base = backend.generate(prompts, gcfg)
    base_ppl = _ppl(backend, base, prompts, cfg.batch_size)
    record("none", "unsteered", 0.0, base, base_ppl)
    for lang in cfg.languages:
        say(f"{lang}: building vectors")
        vecs = method_vectors(model, sae, db, lang, cfg)
        for method, vec in vecs.items():
            for s in cfg.strengths:
                say(f"{lang}: {method} x {s:g}")
                gens = backend.generate(prompts, gcfg, steer=(vec, s))
                record(lang, method, s, gens, _ppl(backend, gens, prompts, cfg.batch_size))
        if "prompting" in cfg.methods:
            say(f"{lang}: prompting")
            prefixed = PromptPrefix.for_target(f"language={lang}")(prompts)
            gens = backend.generate(prefixed, gcfg)
            # fluency of the continuation given the ORIGINAL prompt, like the vector methods
            record(lang, "prompting", 0.0, gens, _ppl(backend, gens, prompts, cfg.batch_size))
    df = pd.DataFrame(samples)
    curves = summarize(df)
    base_med = float(np.nanmedian(base_ppl))
    return LanguageEvalResult(curves, matched_fluency(curves, base_med, cfg.fluency_budget), df, base_med)


def summarize(samples: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (mean, standard error) and perplexity (median, IQR) per (language, method, strength)."""
    g = samples[samples["method"] != "unsteered"].groupby(["language", "method", "strength"], sort=False)
    out = g.agg(
        n=("correct", "size"), accuracy=("correct", "mean"),
        ppl_median=("ppl", "median"), ppl_q25=("ppl", lambda x: float(np.nanquantile(x, 0.25))),
        ppl_q75=("ppl", lambda x: float(np.nanquantile(x, 0.75))),
    ).reset_index()
    out["accuracy_se"] = np.sqrt(out["accuracy"] * (1 - out["accuracy"]) / out["n"].clip(lower=1))
    return out


def matched_fluency(curves: pd.DataFrame, baseline_ppl: float, budget: float) -> pd.DataFrame:
    """Per (language, method): the strongest strength with median ppl <= budget x baseline, and its
    accuracy (the weakest strength, flagged, when none is within budget)."""
    import pandas as pd

    rows = []
    limit = budget * baseline_ppl
    for (lang, method), grp in curves.groupby(["language", "method"], sort=False):
        ok = grp[grp["ppl_median"] <= limit]
        pick = ok.sort_values("strength").iloc[-1] if len(ok) else grp.sort_values("strength").iloc[0]
        rows.append({"language": lang, "method": method, "strength": float(pick["strength"]),
                     "accuracy": float(pick["accuracy"]), "accuracy_se": float(pick["accuracy_se"]),
                     "ppl_median": float(pick["ppl_median"]), "within_budget": bool(len(ok)), "n": int(pick["n"])})
    return pd.DataFrame(rows)


def accuracy_table(matched: pd.DataFrame) -> pd.DataFrame:
    """Languages x methods accuracy at matched fluency (plus a mean row)."""
    t = matched.pivot(index="language", columns="method", values="accuracy")
    t.loc["mean"] = t.mean(numeric_only=True)
    return t.reset_index()
