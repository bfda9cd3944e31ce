"""Steering vectors: build (SAE features, DiffMean), apply during generation, calibrate, export/import.

- :mod:`~saesteer.steer.vector`: :class:`SteeringVector` (components per hook, operator, positions,
  scale, provenance) and its manifest;
- :mod:`~saesteer.steer.build`: from a :class:`~saesteer.featureset.FeatureSet` (decoder rows);
- :mod:`~saesteer.steer.baselines`: DiffMean and the prompting prefix;
- :mod:`~saesteer.steer.operators`: the maths (add, norm-preserving add, ablation, SAE clamp);
- :mod:`~saesteer.steer.hooks`: :func:`steering` / :func:`attach` on transformer-lens and transformers;
- :mod:`~saesteer.steer.generate`: batched generation backends and the side-by-side view;
- :mod:`~saesteer.steer.calibrate`: the strength sweep;
- :mod:`~saesteer.steer.export`: native, llama.cpp GGUF, Neuronpedia, numpy, repeng, steering-vectors.
"""

from saesteer.steer.baselines import PromptPrefix, diffmean, diffmean_bundled
from saesteer.steer.build import decoder_direction, from_direction, from_feature_set
from saesteer.steer.calibrate import SweepResult, SweepRow, language_accuracy, sweep
from saesteer.steer.compose import combine
from saesteer.steer.export import export_vector, import_vector, load_vector, save_vector
from saesteer.steer.generate import (
    GenerationConfig,
    HFBackend,
    TLBackend,
    make_backend,
    side_by_side,
    side_by_side_many,
)
from saesteer.steer.hooks import SteeringHandle, attach, steering
from saesteer.steer.residuals import typical_residual_norm
from saesteer.steer.vector import ClampSpec, Component, ModelInfo, SteeringVector

__all__ = [
    "ClampSpec",
    "Component",
    "GenerationConfig",
    "HFBackend",
    "ModelInfo",
    "PromptPrefix",
    "SteeringHandle",
    "SteeringVector",
    "SweepResult",
    "SweepRow",
    "TLBackend",
    "attach",
    "combine",
    "decoder_direction",
    "diffmean",
    "diffmean_bundled",
    "export_vector",
    "from_direction",
    "from_feature_set",
    "import_vector",
    "language_accuracy",
    "load_vector",
    "make_backend",
    "save_vector",
    "side_by_side",
    "side_by_side_many",
    "steering",
    "sweep",
    "typical_residual_norm",
]
