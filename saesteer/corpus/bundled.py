"""The bundled parallel corpus: 250 everyday sentences in 12 languages (line i is the same sentence in
every language; lines 1-200 are the train split, 201-250 the held-out split) and 40 English prompt
openings for steering evaluation. The second shipped corpus (UDHR) lives in :mod:`saesteer.corpus.udhr`."""

from __future__ import annotations

from saesteer.corpus.parallel import BUNDLED, Split, read_lines
from saesteer.corpus.sources import Condition

TRAIN_LINES = BUNDLED.train_lines

__all__ = ["TRAIN_LINES", "Split", "bundled_conditions", "bundled_languages", "bundled_prompts", "bundled_texts"]


def bundled_languages() -> list[str]:
    """The language codes of the bundled corpus, sorted (``['de', 'en', 'es', ...]``)."""
    return BUNDLED.languages()


def bundled_texts(lang: str, split: Split = "train") -> list[str]:
    """The sentences of one language: ``train`` (lines 1-200), ``heldout`` (201-250) or ``all``."""
    return BUNDLED.texts(lang, split)


def bundled_prompts() -> list[str]:
    """The 40 English prompt openings used to evaluate steering."""
    return list(read_lines(BUNDLED.data_dir() / "prompts_en.txt"))


def bundled_conditions(split: Split = "train", languages: list[str] | None = None) -> list[Condition]:
    """One ``language=<code>`` condition per bundled language (all of them unless ``languages`` is given)."""
    return BUNDLED.conditions(split, languages)
