"""Feature selection and search over the index: scores, filters, queries, output (logit-lens) scores."""

from typing import Any

from saesteer.featureset import FeatureSet

__all__ = ["FeatureSet", "Search", "SearchResult", "SelectivityBar", "selective_features"]


def __getattr__(name: str) -> Any:
    # Search pulls in duckdb and numpy: import it on first use, not with the package.
    if name in ("Search", "SearchResult"):
        from saesteer.select import search

        return getattr(search, name)
    if name in ("SelectivityBar", "selective_features"):
        from saesteer.select import selective

        return getattr(selective, name)
    raise AttributeError(f"module 'saesteer.select' has no attribute {name!r}")
