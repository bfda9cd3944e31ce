"""The bundled parallel corpus: 250 everyday sentences in 12 languages (line i is the same sentence in
every language; lines 1-200 are the train split, 201-250 the held-out split) and 40 English prompt
openings for steering evaluation. The second shipped corpus (UDHR) lives in :mod:`saesteer.corpus.udhr`."""

from __future__ import annotations

from pathlib import Path

from saesteer.corpus.parallel import BUNDLED, Split, read_lines
from saesteer.corpus.sources import Condition
from saesteer.errors import CorpusError

TRAIN_LINES = BUNDLED.train_lines

__all__ = [
    "TRAIN_LINES",
    "Split",
    "bundled_conditions",
    "bundled_languages",
    "bundled_prompts",
    "bundled_texts",
    "choose_prompts",
    "read_prompts",
]


def bundled_languages() -> list[str]:
    """The language codes of the bundled corpus, sorted (``['de', 'en', 'es', ...]``)."""
    return BUNDLED.languages()


def bundled_texts(lang: str, split: Split = "train") -> list[str]:
    """The sentences of one language: ``train`` (lines 1-200), ``heldout`` (201-250) or ``all``."""
    return BUNDLED.texts(lang, split)


def bundled_prompts() -> list[str]:
    """The 40 English prompt openings used to evaluate steering."""
    return list(read_lines(BUNDLED.data_dir() / "prompts_en.txt"))


def read_prompts(path: str | Path) -> list[str]:
    """The non-blank lines of a UTF-8 text file, one prompt each; an unreadable, binary (not UTF-8) or
    empty file is a :class:`CorpusError` (never a silent fall-back to the bundled prompts)."""
    p = Path(path)
    if p.is_dir():
        raise CorpusError(f"prompts file {p} is a directory, not a text file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CorpusError(f"cannot read prompts file {p}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"prompts file {p} is not UTF-8 text (byte {exc.start}: {exc.reason}); give one prompt per line"
        ) from exc
    if "\x00" in text:
        raise CorpusError(f"prompts file {p} is binary (it holds NUL bytes); give one prompt per line")
    out = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not out:
        raise CorpusError(f"prompts file {p} holds no prompts (it is empty or blank)")
    return out


def choose_prompts(
    prompts: list[str] | None = None, path: str | Path | None = None, n: int | None = None
) -> list[str]:
    """The prompts of a steering run: ``prompts`` plus the lines of ``path``, or the bundled prompts when
    neither is given; then the first ``n`` (``n`` must be >= 1 when given)."""
    if n is not None and n < 1:
        raise CorpusError(f"the number of prompts must be at least 1, got {n}")
    out = [p for p in (prompts or []) if p.strip()]
    if prompts and not out:
        raise CorpusError("the prompts given are all blank")
    if path is not None:
        out += read_prompts(path)
    if not out:
        out = bundled_prompts()
    return out[:n] if n is not None else out


def bundled_conditions(split: Split = "train", languages: list[str] | None = None) -> list[Condition]:
    """One ``language=<code>`` condition per bundled language (all of them unless ``languages`` is given)."""
    return BUNDLED.conditions(split, languages)
