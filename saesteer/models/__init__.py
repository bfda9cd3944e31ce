"""Model loading (transformer-lens for analysis, transformers for fast generation) and hook names."""

from saesteer.models.hooks import HookSpec, parse_hook, validate_hook
from saesteer.models.loading import (
    DEFAULT_MODEL,
    ModelSource,
    load_hf_model,
    load_model,
    model_source,
    resolve_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "HookSpec",
    "ModelSource",
    "load_hf_model",
    "load_model",
    "model_source",
    "parse_hook",
    "resolve_model",
    "validate_hook",
]
