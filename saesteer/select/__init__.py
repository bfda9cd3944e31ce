"""Feature selection and search over the index: scores, filters, queries, output (logit-lens) scores."""

from saesteer.select.featureset import FeatureSet

__all__ = ["FeatureSet"]
