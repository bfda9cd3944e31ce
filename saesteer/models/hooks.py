"""Hook names: parse ``blocks.{L}.hook_resid_post``-style names and check them against a model.

The residual-stream hooks map onto a Hugging Face decoder stack as follows (checked by the
integration tests on Gemma 3 270M):

==============================  =========================================================
transformer-lens hook            transformers equivalent
==============================  =========================================================
``blocks.L.hook_resid_pre``     input of ``model.model.layers[L]`` (``hidden_states[L]``)
``blocks.L.hook_resid_post``    output of ``model.model.layers[L]`` (``hidden_states[L+1]``
                                for ``L < n_layers - 1``; the last one is before the final norm)
==============================  =========================================================
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from saesteer.errors import HookError

if TYPE_CHECKING:
    from transformer_lens import HookedTransformer

ResidKind = Literal["resid_pre", "resid_mid", "resid_post"]
_RESID = re.compile(r"^blocks\.(\d+)\.hook_(resid_pre|resid_mid|resid_post)$")
_ANY_BLOCK = re.compile(r"^blocks\.(\d+)\.")


@dataclass(frozen=True)
class HookSpec:
    """A parsed residual-stream hook name."""

    name: str
    layer: int
    kind: ResidKind

    @property
    def stop_at_layer(self) -> int:
        """The ``stop_at_layer`` that runs exactly the blocks this hook needs."""
        return self.layer + 1


def parse_hook(name: str) -> HookSpec:
    """Parse a residual-stream hook name such as ``blocks.6.hook_resid_post``."""
    m = _RESID.match(name.strip())
    if not m:
        raise HookError(
            f"unsupported hook {name!r}: saesteer works on residual-stream hooks named "
            "'blocks.<layer>.hook_resid_pre', 'blocks.<layer>.hook_resid_mid' or 'blocks.<layer>.hook_resid_post'"
        )
    return HookSpec(name=name.strip(), layer=int(m.group(1)), kind=m.group(2))  # type: ignore[arg-type]


def residual_hooks(model: HookedTransformer) -> list[str]:
    """All residual-stream hook names of a model, in forward order."""
    names: list[str] = []
    for layer in range(model.cfg.n_layers):
        names += [f"blocks.{layer}.hook_resid_{k}" for k in ("pre", "mid", "post")]
    return [n for n in names if n in model.hook_dict]


def validate_hook(model: HookedTransformer, name: str) -> HookSpec:
    """Check that ``name`` exists on ``model``; the error lists the valid hooks and the closest match."""
    valid = residual_hooks(model)
    if name not in model.hook_dict or name not in valid:
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        m = _ANY_BLOCK.match(name)
        if m and int(m.group(1)) >= model.cfg.n_layers:
            hint = f" The model has {model.cfg.n_layers} layers (0..{model.cfg.n_layers - 1})." + hint
        raise HookError(
            f"unknown hook {name!r} for model {model.cfg.model_name!r}.{hint} "
            f"Valid residual hooks: blocks.0..{model.cfg.n_layers - 1}.hook_resid_pre|mid|post"
        )
    return parse_hook(name)
