"""Feature selection and search over the index: scores, filters, queries, output (logit-lens) scores."""

from typing import Any

from saesteer.select.featureset import FeatureSet

__all__ = ["FeatureSet", "Search", "SearchResult"]


def __getattr__(name: str) -> Any:
    # Search pulls in duckdb and numpy: import it on first use, not with the package.
    if name in ("Search", "SearchResult"):
        from saesteer.select import search

        return getattr(search, name)
    raise AttributeError(f"module 'saesteer.select' has no attribute {name!r}")
