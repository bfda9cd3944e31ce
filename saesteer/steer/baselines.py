"""Baselines built from the same conditions as the SAE vectors, for users and the evaluation to compare.

- :func:`diffmean`: the mean residual over the target condition's texts minus the mean over the other
  conditions' texts (each other condition weighs the same), at one or more hooks; BOS and pads excluded.
- :class:`PromptPrefix`: prompting, an instruction prefix such as ``"Answer in French: "``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from saesteer.corpus.bundled import bundled_languages, bundled_texts
from saesteer.errors import CorpusError
from saesteer.steer.build import NORM_SAMPLE, scaled_component
from saesteer.steer.residuals import Progress, mean_residual, typical_residual_norm
from saesteer.steer.vector import ModelInfo, Operator, PositionPolicy, ScaleMode, SteeringVector

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

LANGUAGE_NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "ru": "Russian",
    "tr": "Turkish",
    "id": "Indonesian",
    "zh": "Chinese",
}


def diffmean(
    model: HookedTransformer,
    hook_names: str | Sequence[str],
    target_texts: Sequence[str],
    others: Mapping[str, Sequence[str]] | Sequence[str],
    *,
    target: str = "target",
    scale_mode: ScaleMode = "residual_norm",
    operator: Operator = "add",
    positions: PositionPolicy = "all",
    batch_size: int = 32,
    max_len: int = 64,
    typical_norms: Mapping[str, float] | None = None,
    progress: Progress | None = None,
    source: dict[str, Any] | None = None,
    name: str | None = None,
) -> SteeringVector:
    """DiffMean: ``mean(resid | target) - mean_c(mean(resid | other condition c))`` at each hook.

    ``others``: ``{condition: texts}`` (each condition weighs the same) or one list of texts.
    """
    from saesteer.models.loading import model_source

    hooks = [hook_names] if isinstance(hook_names, str) else list(hook_names)
    other_map = dict(others) if isinstance(others, Mapping) else {"others": list(others)}
    if not target_texts:
        raise CorpusError(f"no texts for the target condition {target!r}")
    if not other_map or any(not t for t in other_map.values()):
        raise CorpusError("DiffMean needs texts for at least one other condition (none may be empty)")
    total = len(target_texts) + sum(len(t) for t in other_map.values())
    offset = 0

    def step(done: int, _n: int) -> None:
        if progress is not None:
            progress(offset + done, total)

    tmean, n_target = mean_residual(
        model, hooks, target_texts, batch_size=batch_size, max_len=max_len, progress=step
    )
    offset += len(target_texts)
    other_means: dict[str, torch.Tensor] = {h: torch.zeros_like(tmean[h]) for h in hooks}
    n_others: dict[str, int] = {}
    for cond, texts in other_map.items():
        m, n = mean_residual(model, hooks, texts, batch_size=batch_size, max_len=max_len, progress=step)
        offset += len(texts)
        n_others[cond] = n
        for h in hooks:
            other_means[h] += m[h] / len(other_map)
    comps = []
    for h in hooks:
        direction = (tmean[h] - other_means[h]).to(torch.float32)
        tn = None
        if scale_mode == "residual_norm":
            tn = typical_norms[h] if typical_norms and h in typical_norms else typical_residual_norm(model, h)
        comps.append(scaled_component(direction, h, scale_mode=scale_mode, typical_norm=tn))
    prov = {
        "method": "diffmean",
        "target": target,
        "others": sorted(other_map),
        "n_tokens_target": n_target,
        "n_tokens_others": n_others,
        "n_texts_target": len(target_texts),
        "n_texts_others": {c: len(t) for c, t in other_map.items()},
        "max_len": max_len,
        "direction_norms": {h: float((tmean[h] - other_means[h]).norm()) for h in hooks},
        "model": asdict(model_source(model)),
        "source": source or {},
        "norm_sample": NORM_SAMPLE if scale_mode == "residual_norm" else None,
    }
    return SteeringVector(
        components=tuple(comps),
        model=ModelInfo.from_tl(model),
        operator=operator,
        positions=positions,
        scale_mode=scale_mode,
        provenance=prov,
        name=name or f"diffmean-{target}",
    )


def diffmean_bundled(
    model: HookedTransformer,
    hook_names: str | Sequence[str],
    target_lang: str,
    other_langs: Sequence[str] | None = None,
    *,
    n_texts: int = 200,
    **kwargs: Any,
) -> SteeringVector:
    """DiffMean on the bundled parallel corpus (train split, lines 1-200): ``language=<target>`` minus
    the other languages (default: all other bundled languages)."""
    target_lang = target_lang.removeprefix("language=")
    others = (
        [o.removeprefix("language=") for o in other_langs]
        if other_langs
        else [lang for lang in bundled_languages() if lang != target_lang]
    )
    if target_lang in others:
        raise CorpusError(f"the target language {target_lang!r} is also among the others")
    other_map = {f"language={o}": bundled_texts(o, "train")[:n_texts] for o in others}
    source = {"corpus": "bundled", "split": "train", "n_texts": n_texts}
    return diffmean(
        model,
        hook_names,
        bundled_texts(target_lang, "train")[:n_texts],
        other_map,
        target=f"language={target_lang}",
        source=source,
        **kwargs,
    )


@dataclass(frozen=True)
class PromptPrefix:
    """The prompting baseline: prepend an instruction to every prompt."""

    prefix: str

    def __call__(self, prompts: Sequence[str]) -> list[str]:
        return [self.prefix + p for p in prompts]

    @classmethod
    def for_target(cls, target: str, template: str = "Answer in {name}: ") -> PromptPrefix:
        """The prefix for a condition such as ``language=fr`` (``"Answer in French: "``)."""
        value = target.split("=", 1)[1] if "=" in target else target
        return cls(template.format(name=LANGUAGE_NAMES.get(value, value)))
