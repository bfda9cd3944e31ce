"""``ModelInfo``: what a steering vector must agree with (model id, width, depth)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from saesteer.models.loading import DEFAULT_MODEL, TINY_MODEL

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer


@dataclass(frozen=True)
class ModelInfo:
    """What a vector must agree with: the model id, its width and its depth."""

    id: str
    d_model: int
    n_layers: int | None = None
    model_type: str | None = None  # the transformers ``config.model_type`` (GGUF ``model_hint``)
    weights_hash: str | None = None

    @classmethod
    def from_tl(cls, model: HookedTransformer) -> ModelInfo:
        from saesteer.models.loading import model_source

        src = model_source(model)
        return cls(
            id=src.id,
            d_model=int(model.cfg.d_model),
            n_layers=int(model.cfg.n_layers),
            model_type=_tl_model_type(model),
            weights_hash=src.weights_hash,
        )

    @classmethod
    def from_hf(cls, hf: Any, model_id: str | None = None) -> ModelInfo:
        cfg = hf.config
        text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
        mid = (
            model_id or getattr(hf, "saesteer_model_id", None) or str(getattr(cfg, "name_or_path", "") or "")
        )
        return cls(
            id=mid,
            d_model=int(text_cfg.hidden_size),
            n_layers=int(text_cfg.num_hidden_layers),
            model_type=str(getattr(cfg, "model_type", "") or "") or None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "d_model": self.d_model,
            "n_layers": self.n_layers,
            "model_type": self.model_type,
            "weights_hash": self.weights_hash,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        n_layers = data.get("n_layers")
        return cls(
            id=str(data["id"]),
            d_model=int(data["d_model"]),
            n_layers=None if n_layers is None else int(n_layers),
            model_type=data.get("model_type"),
            weights_hash=data.get("weights_hash"),
        )


# The geometry (d_model, n_layers) of the models saesteer ships, so that a foreign vector file naming one
# of them is checked at import instead of failing at generate.
KNOWN_GEOMETRY: dict[str, tuple[int, int]] = {
    DEFAULT_MODEL: (640, 18),
    "google/gemma-3-270m": (640, 18),
    TINY_MODEL: (64, 2),
}


def imported_model_info(model_id: str, width: int, n_layers: int | None, *, what: str) -> ModelInfo:
    """The :class:`ModelInfo` of a vector imported from a file that names only ``model_id``: for a model
    of :data:`KNOWN_GEOMETRY` the width must match and the depth is known (so hooks are range-checked)."""
    from saesteer.errors import DimensionMismatchError

    known = KNOWN_GEOMETRY.get(model_id)
    if known is not None:
        d_model, depth = known
        if width != d_model:
            raise DimensionMismatchError(
                f"{what} has {width} values but model {model_id!r} has d_model={d_model}"
            )
        n_layers = depth if n_layers is None else n_layers
    return ModelInfo(model_id, width, n_layers)


def _tl_model_type(model: HookedTransformer) -> str | None:
    name = str(model.cfg.original_architecture or "")
    return {
        "Gemma3ForCausalLM": "gemma3_text",
        "Gemma2ForCausalLM": "gemma2",
        "GPT2LMHeadModel": "gpt2",
        "LlamaForCausalLM": "llama",
        "Qwen2ForCausalLM": "qwen2",
    }.get(name)
