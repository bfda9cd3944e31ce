"""Meaning kept: prompts cut from parallel sentences, and chrF of a continuation against a reference.

The shipped corpora (:mod:`saesteer.corpus.parallel`: ``bundled``, ``udhr``) are parallel (line i is the
same sentence in every language). For held-out sentence i, the prompt is the first part of the English
sentence; a continuation steered into language L is scored
with chrF (sacrebleu) against L's sentence i, and the unsteered continuation against the English
sentence i. The reference is the whole sentence (where the continuation should pick up in L's word order
is unknown), so absolute chrF values are low; what matters is the comparison between methods on the same
prompts, and with the unsteered continuation against its own language.

LangFIR scores steering by accuracy together with BLEU; chrF (character n-grams) is kinder to short
continuations and to languages without spaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from saesteer.corpus.parallel import Split


@dataclass(frozen=True)
class ParallelPrompt:
    """An English prompt cut from sentence i of a parallel corpus, with sentence i in every language."""

    index: int
    prompt: str
    references: Mapping[str, str] = field(default_factory=dict)  # {language: sentence i}


def cut_prompt(sentence: str, share: float = 0.5, min_words: int = 3) -> str:
    """The first ``share`` of the words of ``sentence`` (at least ``min_words``, never all of them). Text
    written without spaces (Chinese: words averaging over 12 characters) is cut by characters instead."""
    words = sentence.split()
    if words and len("".join(words)) / len(words) > 12:
        text = sentence.strip()
        return text[: max(1, min(round(len(text) * share), len(text) - 1))]
    k = max(min_words, round(len(words) * share))
    return " ".join(words[: max(1, min(k, len(words) - 1))])


def parallel_prompts(
    texts: Mapping[str, Sequence[str]], *, source: str = "en", n: int | None = None, share: float = 0.5
) -> list[ParallelPrompt]:
    """Prompts from aligned ``texts`` (``{language: sentences}``, line i the same sentence everywhere):
    the first ``share`` of ``source``'s sentence i; the first ``n`` sentences (all when ``None``)."""
    from saesteer.errors import CorpusError

    if source not in texts:
        raise CorpusError(f"the parallel corpus has no {source!r} side")
    lengths = {lang: len(s) for lang, s in texts.items()}
    if len(set(lengths.values())) != 1:
        raise CorpusError(f"the parallel corpus is not aligned: sentences per language {lengths}")
    count = lengths[source] if n is None else min(n, lengths[source])
    return [
        ParallelPrompt(i, cut_prompt(texts[source][i], share), {lang: s[i] for lang, s in texts.items()})
        for i in range(count)
    ]


def corpus_parallel_prompts(corpus: str = "bundled", n: int | None = None, split: Split = "heldout"
                            ) -> list[ParallelPrompt]:
    """:func:`parallel_prompts` on a shipped parallel corpus (:mod:`saesteer.corpus.parallel`; default: its
    held-out split: 50 bundled sentences, 21 UDHR paragraphs)."""
    from saesteer.corpus.parallel import corpus_languages, corpus_texts

    return parallel_prompts({lang: corpus_texts(corpus, lang, split) for lang in corpus_languages(corpus)}, n=n)


def bundled_parallel_prompts(n: int | None = None, split: Split = "heldout") -> list[ParallelPrompt]:
    """:func:`parallel_prompts` on the bundled corpus (default: the held-out split, 50 sentences)."""
    return corpus_parallel_prompts("bundled", n, split)


def chrf(hypothesis: str, reference: str) -> float:
    """Sentence-level chrF (sacrebleu defaults: character 6-grams, beta 2), 0-100."""
    from sacrebleu.metrics import CHRF

    return float(CHRF().sentence_score(hypothesis, [reference]).score)
