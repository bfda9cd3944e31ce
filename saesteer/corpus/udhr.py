"""The second shipped corpus: the Universal Declaration of Human Rights in the 12 languages.

Real translations that nobody on the team wrote and that are in none of the default SAE's training
sources (Debian man pages, DDTP descriptions, gettext catalogues, the bundled corpus). Parallel: line i
is the same paragraph in every language (line 1 the preamble, lines 2-51 the paragraphs of articles
1-30). Train split: lines 1-30 (preamble, articles 1-20); held out: lines 31-51 (articles 21-30), so no
article is split between them. Source, version and licence: ``saesteer/corpus/data/udhr/SOURCE.md``;
regenerate with ``scripts/fetch_udhr.sh``.
"""

from __future__ import annotations

from saesteer.corpus.parallel import UDHR, Split
from saesteer.corpus.sources import Condition

TRAIN_LINES = UDHR.train_lines


def udhr_languages() -> list[str]:
    """The language codes of the UDHR corpus, sorted."""
    return UDHR.languages()


def udhr_texts(lang: str, split: Split = "train") -> list[str]:
    """One language's paragraphs: ``train`` (lines 1-30), ``heldout`` (31-51) or ``all``."""
    return UDHR.texts(lang, split)


def udhr_conditions(split: Split = "train", languages: list[str] | None = None) -> list[Condition]:
    """One ``language=<code>`` condition per UDHR language (all of them unless ``languages`` is given)."""
    return UDHR.conditions(split, languages)
