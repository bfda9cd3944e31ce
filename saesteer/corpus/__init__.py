"""Corpora: labelled text sources, random-token baselines and the bundled parallel corpus."""

from saesteer.corpus.bundled import bundled_conditions, bundled_languages, bundled_prompts, bundled_texts
from saesteer.corpus.hf import HFDatasetSource
from saesteer.corpus.random_tokens import RandomTokens
from saesteer.corpus.sources import (
    ConcatSource,
    Condition,
    Document,
    ListSource,
    TextFileSource,
    TextSource,
    parse_label,
    text_source,
)
from saesteer.corpus.tables import TableSource

__all__ = [
    "ConcatSource",
    "Condition",
    "Document",
    "HFDatasetSource",
    "ListSource",
    "RandomTokens",
    "TableSource",
    "TextFileSource",
    "TextSource",
    "bundled_conditions",
    "bundled_languages",
    "bundled_prompts",
    "bundled_texts",
    "parse_label",
    "text_source",
]
