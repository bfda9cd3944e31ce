"""saesteer: steer language models with sparse-autoencoder features.

Data flow (one module per step):
corpus -> activations -> feature statistics (DuckDB index) -> filters/search -> steering vector
-> apply/evaluate -> export.

Nothing heavy is imported here: ``import saesteer`` is cheap. Import the submodules you need, e.g.
``from saesteer.models import load_model`` or ``from saesteer.saes import load_sae``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("saesteer")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
