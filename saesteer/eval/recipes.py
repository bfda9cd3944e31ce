"""Steering recipes the language evaluation compares, and how each builds its vector.

A recipe is written ``kind[:key=value...]``:

- ``sae:k=50:filter=1:w=mean_diff:op=add:pos=all:src=1`` (the keys and their defaults):
  ``k`` top contrastive SAE features (target language vs the rest); ``filter`` the random-token (LangFIR)
  filter on (1) or off (0); ``w`` the feature weights: ``mean_diff`` (raw decoder rows weighted by the
  mean activation on the target minus on the rest), ``unit`` (unit rows, weight 1 each) or ``output``
  (``mean_diff`` weights on features re-ranked by their output score, Arad et al. 2025: what the
  decoder row writes to the target language's tokens); ``op`` the operator: ``add``,
  ``norm_preserving_add`` or ``swap`` (an SAE clamp: the target's features set to their typical
  activation on target text times the strength, the source language's own top-k features set to 0,
  the SAE error term kept); ``pos``: ``all``, ``generated`` or ``prompt`` positions; ``src`` (swap only): zero the
  source language's features (1) or leave them (0: the target's features are only clamped on);
- ``diffmean[:op=...:pos=...]``: mean residual of the target language minus the mean over the others;
- ``prompting``: an instruction prefix ("Answer in French: "), no vector.

Strengths are x the typical residual norm for ``add``/``norm_preserving_add``, and x the typical
activation for ``swap``; :func:`search_range` gives where the strength search starts and its cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saesteer.errors import SteeringVectorError
from saesteer.models.loading import DEFAULT_MODEL

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

    from saesteer.featureset import FeatureSet
    from saesteer.steer.vector import SteeringVector

KINDS = ("sae", "diffmean", "prompting")
# The recipe `saesteer steer build --recipe`, the quickstart and the notebooks use: the one that won
# `saesteer eval language` (docs/results/language_eval*/report.md, docs/results/README.md).
DEFAULT_RECIPE = "sae:k=10:op=swap"
# The decoding the strengths below were measured with (`saesteer eval language --repetition-penalty`): greedy
# with this repetition penalty on the generated tokens; recipe vectors record it in their provenance, and
# `saesteer steer generate` / `sweep` and the quickstart decode with it unless told otherwise.
DECODING_PENALTY = 1.2
DEFAULT_STRENGTH = 0.5  # the default recipe's strength where no calibrated one is known (x typical activation)
# Strengths measured for the default model + SAE: the chosen points (window centres) of each swap recipe in
# `saesteer eval language` on the bundled corpus with the decoding above (docs/results/language_eval/windows.csv);
# languages whose target was not reached fluently there would be absent (they get the recipe's fallback,
# :data:`FALLBACK`, the median of these; the k=10 one, 0.5, is inside 8 of the 9 windows measured on the UDHR
# corpus, docs/results/language_eval_udhr: id's starts at 0.71).
CALIBRATED: dict[tuple[str, str, str], dict[str, float]] = {
    (DEFAULT_MODEL, "default", "sae:k=10:op=swap"): {
        "de": 0.5, "es": 0.5, "fr": 0.25, "id": 1.0, "it": 0.5, "nl": 0.5, "pl": 1.0, "pt": 0.5, "ru": 0.25,
        "tr": 1.0, "zh": 0.5,
    },
    (DEFAULT_MODEL, "default", "sae:op=swap"): {
        "de": 0.125, "es": 0.125, "fr": 0.125, "id": 0.353553, "it": 0.125, "nl": 0.125, "pl": 0.176777,
        "pt": 0.25, "ru": 0.125, "tr": 0.25, "zh": 0.25,
    },
}
FALLBACK = {"sae:k=10:op=swap": DEFAULT_STRENGTH, "sae:op=swap": 0.125}  # the medians of the measured windows' centres
WEIGHTS = ("mean_diff", "unit", "output")
OPS = ("add", "norm_preserving_add", "swap")
POSITIONS = ("all", "generated", "prompt")


@dataclass(frozen=True)
class Recipe:
    kind: str
    k: int = 50
    filter: bool = True
    w: str = "mean_diff"
    op: str = "add"
    pos: str = "all"
    src: bool = True  # swap: also zero the source language's (English) own top-k features

    @property
    def name(self) -> str:
        if self.kind == "prompting":
            return "prompting"
        d = Recipe(self.kind)
        keys = ("k", "filter", "w") if self.kind == "sae" else ()
        parts = [f"{key}={_fmt(getattr(self, key))}" for key in (*keys, "op", "pos", "src")
                 if getattr(self, key) != getattr(d, key)]
        return ":".join([self.kind, *parts])

    def __str__(self) -> str:
        return self.name


def _fmt(v: Any) -> str:
    return str(int(v)) if isinstance(v, bool) else str(v)


def parse_recipe(spec: str) -> Recipe:
    """``"sae:k=5:filter=0"`` -> :class:`Recipe` (see the module docstring); one-line errors."""
    kind, *parts = [p.strip() for p in spec.strip().split(":")]
    if kind not in KINDS:
        raise SteeringVectorError(f"unknown recipe kind {kind!r} in {spec!r}; use {', '.join(KINDS)}")
    r = Recipe(kind)
    allowed = {"sae": ("k", "filter", "w", "op", "pos", "src"), "diffmean": ("op", "pos"), "prompting": ()}[kind]
    for part in parts:
        key, _, val = part.partition("=")
        if key not in allowed or not val:
            raise SteeringVectorError(f"recipe {spec!r}: {part!r} is not one of {', '.join(allowed) or '(no options)'}=...")
        if key == "k":
            if not val.isdigit() or int(val) < 1:
                raise SteeringVectorError(f"recipe {spec!r}: k must be a positive integer")
            r = replace(r, k=int(val))
        elif key in ("filter", "src"):
            if val not in ("0", "1"):
                raise SteeringVectorError(f"recipe {spec!r}: {key} must be 0 or 1")
            r = replace(r, filter=val == "1") if key == "filter" else replace(r, src=val == "1")
        else:
            choices = {"w": WEIGHTS, "op": OPS, "pos": POSITIONS}[key]
            if val not in choices:
                raise SteeringVectorError(f"recipe {spec!r}: {key} must be one of {', '.join(choices)}")
            r = replace(r, w=val) if key == "w" else replace(r, op=val) if key == "op" else replace(r, pos=val)
    if r.kind == "diffmean" and r.op == "swap":
        raise SteeringVectorError(f"recipe {spec!r}: swap needs SAE features (diffmean has none)")
    return r


def default_strength(recipe: Recipe, lang: str | None = None, *, model_id: str | None = None,
                     sae_id: str | None = None) -> float:
    """The strength a built vector carries as its default: the calibrated one for (model, SAE, recipe, language)
    where `saesteer eval language` measured it (:data:`CALIBRATED`), else a strength inside the windows
    measured for ``recipe``'s kind of operator on Gemma 3 270M + the default SAE (x typical activation for
    ``swap``, x typical residual norm otherwise). Other models want ``saesteer steer sweep --search``."""
    table = CALIBRATED.get((model_id or "", sae_id or "", recipe.name), {})
    if lang is not None and lang.removeprefix("language=") in table:
        return table[lang.removeprefix("language=")]
    if recipe.op != "swap":
        return 0.06
    return FALLBACK.get(recipe.name, 0.25)


def search_range(recipe: Recipe) -> tuple[float, float]:
    """``(start, cap)`` of the strength search: residual-norm units for additive operators, typical
    activations for ``swap``."""
    return (0.25, 16.0) if recipe.op == "swap" else (0.03, 2.0)


class RecipeVectors:
    """Builds each recipe's vector for a target language, sharing the expensive parts: the typical residual
    norm (once) and the per-language mean residuals that DiffMean needs (once per language)."""

    def __init__(self, model: HookedTransformer, sae: SAE, db: str | Path, *, diffmean_texts: int = 200,
                 random_max_freq: float | None = None, corpus: str = "bundled",
                 build_id: str | None = None) -> None:
        from saesteer.steer.residuals import typical_residual_norm

        self.model, self.sae, self.db, self.corpus, self.build_id = model, sae, db, corpus, build_id
        self.diffmean_texts, self.random_max_freq = diffmean_texts, random_max_freq
        self.hook = str(sae.cfg.metadata.hook_name)
        self.norm = typical_residual_norm(model, self.hook)
        self._means: dict[str, Any] = {}
        self._featuresets: dict[tuple[str, int, bool, bool], FeatureSet] = {}

    def _language_means(self) -> dict[str, Any]:
        if not self._means:
            from saesteer.corpus.parallel import corpus_languages
            from saesteer.steer.residuals import corpus_mean_residual

            for lang in corpus_languages(self.corpus):  # cached per model, hook, corpus (saesteer.steer.residual_stats)
                self._means[lang] = corpus_mean_residual(self.model, self.hook, lang, corpus=self.corpus,
                                                         n_texts=self.diffmean_texts)
        return self._means

    def diffmean(self, lang: str) -> SteeringVector:
        """Mean residual of ``lang`` minus the mean over the corpus's other languages (each weighs the same),
        over the train split of the corpus."""
        from saesteer.steer.build import from_direction

        means = self._language_means()
        others = [m for other, m in means.items() if other != lang]
        direction = means[lang] - sum(others) / len(others)
        prov = {"method": "diffmean", "target": f"language={lang}", "others": sorted(o for o in means if o != lang),
                "corpus": self.corpus, "split": "train"}
        return from_direction(direction.float(), self.hook, self.model, typical_norm=self.norm, provenance=prov,
                              name=f"diffmean-{lang}")

    def featureset(self, lang: str, *, k: int = 50, filtered: bool = True, output: bool = False) -> FeatureSet:
        """Top-``k`` contrastive SAE features for ``lang`` vs the rest (dead, dense and BOS-only features
        dropped), with or without the random-token filter, optionally re-ranked by output score (searched
        once per argument set: the swap recipe asks for English's for every language)."""
        from saesteer.select.search import Search

        key = (lang, k, filtered, output)
        if key in self._featuresets:
            return self._featuresets[key]
        s = (Search(self.db, target=f"language={lang}", against="rest", build_id=self.build_id)
             .drop_dead().drop_dense().drop_bos_only())
        if filtered:
            mf = self.random_max_freq
            s = s.drop_random() if mf is None else s.drop_random(max_freq=mf)
        if output:
            s = s.output_score(self.model, self.sae, rerank=True)
        self._featuresets[key] = fs = s.top(k).run().to_featureset()
        return fs

    def vector(self, recipe: Recipe, lang: str) -> SteeringVector | None:
        """The recipe's vector for target ``lang`` (None for prompting), carrying its default strength
        (:func:`default_strength`)."""
        vec = self._vector(recipe, lang)
        if vec is None:
            return None
        sae_id = vec.clamp.sae_id if vec.clamp is not None else None
        return vec.with_(default_strength=default_strength(recipe, lang, model_id=vec.model.id, sae_id=sae_id),
                         provenance={**vec.provenance, "recipe": recipe.name, "repetition_penalty": DECODING_PENALTY})

    def _vector(self, recipe: Recipe, lang: str) -> SteeringVector | None:
        if recipe.kind == "prompting":
            return None
        if recipe.kind == "diffmean":
            return self.diffmean(lang).with_(operator=recipe.op, positions=recipe.pos)
        from saesteer.steer.build import from_feature_set

        fs = self.featureset(lang, k=recipe.k, filtered=recipe.filter, output=recipe.w == "output")
        name = f"{recipe.name}-{lang}"
        if recipe.op == "swap":
            return self._swap(fs, recipe, lang, name)
        if recipe.w == "unit":
            vec = from_feature_set(fs, self.sae, self.model, weighting="uniform", unit_rows=True,
                                   typical_norm=self.norm, name=name)
        else:
            from saesteer.select.weights import weigh

            vec = from_feature_set(weigh(fs, "mean_diff", self.db), self.sae, self.model, weighting="mean_diff",
                                   typical_norm=self.norm, name=name)
        return vec.with_(operator=recipe.op, positions=recipe.pos)

    def _swap(self, fs: FeatureSet, recipe: Recipe, lang: str, name: str) -> SteeringVector:
        """Clamp the target's features to their typical activation on target text (times the strength) and
        the source language's (English) own top features to 0; the SAE error term is kept."""
        from saesteer.steer.build import from_feature_set

        typical = active_means(self.db, fs)
        src: list[int] = []
        if recipe.src:
            source = self.featureset("en", k=recipe.k, filtered=recipe.filter)
            src = [f for f in source.features if f not in set(fs.features)]
        both = replace_features(fs, list(fs.features) + src)
        values = typical + [0.0] * len(src)
        return from_feature_set(both, self.sae, self.model, weighting="uniform", unit_rows=True, operator="clamp",
                                clamp_values=values, typical_norm=self.norm, positions=recipe.pos,  # type: ignore[arg-type]
                                name=name)


def check_index_corpus(db: str | Path, corpus: str, languages: Sequence[str]) -> None:
    """Refuse an index whose (default) build's ``language=<L>`` conditions for ``languages`` were not built
    from the shipped parallel corpus ``corpus`` (``saesteer index build --corpus NAME``): features selected on
    one corpus and scored on another would mix two evaluations. For ``bundled`` (the default) an index built
    from other text is accepted unless it was built from another shipped corpus."""
    import json

    from saesteer.corpus.parallel import CORPORA, get_corpus
    from saesteer.errors import CorpusError
    from saesteer.index.db import IndexDb
    from saesteer.select.catalog import load_catalog

    get_corpus(corpus)
    with IndexDb(Path(db), read_only=True) as con:
        build = load_catalog(con).build.build_id
        rows = con.query("eval_condition_sources", [build]).fetchall()
    names: dict[str, str] = {}
    for cond, src in rows:
        try:
            names[str(cond)] = str(json.loads(src).get("name", ""))
        except (ValueError, AttributeError):
            names[str(cond)] = ""
    for lang in languages:
        name = names.get(f"language={lang}")
        if name is None:
            continue  # a missing condition is reported where the features are searched
        origin = name.split(":", 1)[0] if ":" in name else ""
        if origin == corpus or (corpus == "bundled" and origin not in CORPORA):
            continue
        raise CorpusError(
            f"the index {db} (build {build}) has language={lang} from {name or 'another source'!r}, not the {corpus} "
            f"corpus; build one with `saesteer index build --corpus {corpus} --db ...` and pass it with --db"
        )


def replace_features(fs: FeatureSet, features: list[int]) -> FeatureSet:
    """``fs`` with another feature list (weights and scores dropped: they were per feature)."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(fs)}  # type: ignore[arg-type]
    changes: dict[str, Any] = {"features": features}
    for name, empty in (("weights", None), ("scores", {}), ("weighting", "given")):
        if name in fields:
            changes[name] = empty
    return dataclasses.replace(fs, **changes)  # type: ignore[type-var]


def active_means(db: str | Path, fs: FeatureSet) -> list[float]:
    """Each feature's mean activation on ``fs.target`` over the tokens where it fires (its typical
    activation when on; 0 where it never fired), read from the index build ``fs`` came from."""
    from saesteer.index.db import IndexDb
    from saesteer.select.catalog import load_catalog

    if not fs.build_id:
        raise SteeringVectorError("the swap recipe reads typical activations from the index: the feature set has no build")
    with IndexDb(Path(db), read_only=True) as con:
        cond = load_catalog(con, fs.build_id).resolve(fs.target)
        rows = con.query("eval_active_mean", [fs.build_id, cond, [int(f) for f in fs.features]]).fetchall()
    got = {int(f): float(m) for f, m in rows}
    return [got.get(int(f), 0.0) for f in fs.features]
