"""The bundled parallel corpus: 250 everyday sentences in 12 languages (line i is the same sentence in
every language; lines 1-200 are the train split, 201-250 the held-out split) and 40 English prompt
openings for steering evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from saesteer.corpus.sources import Condition, ListSource
from saesteer.errors import CorpusError
from saesteer.paths import package_data

Split = Literal["train", "heldout", "all"]
TRAIN_LINES = 200
_SPLITS: dict[str, slice] = {
    "train": slice(0, TRAIN_LINES),
    "heldout": slice(TRAIN_LINES, None),
    "all": slice(None),
}


def _data_dir() -> Path:
    return package_data("corpus", "data")


def bundled_languages() -> list[str]:
    """The language codes of the bundled corpus, sorted (``['de', 'en', 'es', ...]``)."""
    return sorted(p.stem for p in _data_dir().glob("*.txt") if not p.stem.startswith("prompts"))


def _lines(name: str) -> tuple[str, ...]:
    path = _data_dir() / f"{name}.txt"
    return tuple(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def bundled_texts(lang: str, split: Split = "train") -> list[str]:
    """The sentences of one language: ``train`` (lines 1-200), ``heldout`` (201-250) or ``all``."""
    if split not in _SPLITS:
        raise CorpusError(f"unknown split {split!r}; use train, heldout or all")
    langs = bundled_languages()
    if lang not in langs:
        raise CorpusError(f"no bundled corpus for language {lang!r}; bundled: {', '.join(langs)}")
    return list(_lines(lang)[_SPLITS[split]])


def bundled_prompts() -> list[str]:
    """The 40 English prompt openings used to evaluate steering."""
    return list(_lines("prompts_en"))


def bundled_conditions(split: Split = "train", languages: list[str] | None = None) -> list[Condition]:
    """One ``language=<code>`` condition per bundled language (all of them unless ``languages`` is given)."""
    langs = languages if languages is not None else bundled_languages()
    return [
        Condition(
            f"language={lang}",
            ListSource(
                tuple(bundled_texts(lang, split)),
                name=f"bundled:{lang}:{split}",
                meta={"bundled": lang, "split": split},
            ),
        )
        for lang in langs
    ]
