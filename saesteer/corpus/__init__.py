"""Corpora: labelled text sources, random-token baselines and the shipped parallel corpora (bundled, UDHR)."""

from saesteer.corpus.bundled import (
    bundled_conditions,
    bundled_languages,
    bundled_prompts,
    bundled_texts,
    choose_prompts,
    read_prompts,
)
from saesteer.corpus.hf import HFDatasetSource
from saesteer.corpus.parallel import (
    CORPORA,
    ParallelCorpus,
    corpus_conditions,
    corpus_languages,
    corpus_texts,
    get_corpus,
)
from saesteer.corpus.random_tokens import RandomTokens
from saesteer.corpus.sources import (
    ConcatSource,
    Condition,
    Document,
    ListSource,
    TextFileSource,
    TextSource,
    parse_label,
)
from saesteer.corpus.tables import TableSource, text_source
from saesteer.corpus.udhr import udhr_conditions, udhr_languages, udhr_texts

__all__ = [
    "CORPORA",
    "ConcatSource",
    "Condition",
    "Document",
    "HFDatasetSource",
    "ListSource",
    "ParallelCorpus",
    "RandomTokens",
    "TableSource",
    "TextFileSource",
    "TextSource",
    "bundled_conditions",
    "bundled_languages",
    "bundled_prompts",
    "bundled_texts",
    "choose_prompts",
    "corpus_conditions",
    "corpus_languages",
    "corpus_texts",
    "get_corpus",
    "parse_label",
    "read_prompts",
    "text_source",
    "udhr_conditions",
    "udhr_languages",
    "udhr_texts",
]
