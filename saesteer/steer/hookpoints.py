"""Where steering hooks go: transformer-lens ``HookPoint``s, or the decoder layers of a transformers
model (``resid_post`` = forward hook on ``layers[L]``, ``resid_pre`` = forward pre-hook on ``layers[L]``),
plus the position-tracker pre-hook that sees every forward call's attention mask and cache length."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from saesteer.errors import HookError

if TYPE_CHECKING:
    from saesteer.steer.hooks import SteeringHandle


# -- transformer-lens ----------------------------------------------------------------------------------------


def register_tl(model: Any, handle: SteeringHandle) -> None:
    from transformer_lens import utils as tl_utils

    tracker = handle.tracker

    def track(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        inp = args[0] if args else kwargs.get("input", kwargs.get("tokens"))
        batch = cur = None
        tokens = None
        if isinstance(inp, torch.Tensor):
            if inp.ndim == 1:
                inp = inp[None]
            batch, cur = int(inp.shape[0]), int(inp.shape[1])
            tokens = inp if inp.ndim == 2 else None
        elif isinstance(inp, str):
            batch = 1
        cache = kwargs.get("past_kv_cache")
        past = int(cache.previous_attention_mask.shape[1]) if cache is not None else 0
        mask = kwargs.get("attention_mask")
        tok = getattr(model, "tokenizer", None)
        if (
            mask is None
            and tokens is not None
            and tok is not None
            and getattr(tok, "padding_side", "right") == "left"
        ):
            mask = tl_utils.get_attention_mask(tok, tokens, model.cfg.default_prepend_bos)
        tracker.begin_call(batch=batch, cur_len=cur, past_len=past, attention_mask=mask)

    handle._hooks.append(model.register_forward_pre_hook(track, with_kwargs=True))
    for hook_name in handle.entries:
        if hook_name not in model.hook_dict:
            raise HookError(f"hook {hook_name!r} does not exist on {model.cfg.model_name!r}")

        def fn(_module: Any, _inp: Any, out: torch.Tensor, _name: str = hook_name) -> torch.Tensor:
            return handle._intervene(_name, out)

        handle._hooks.append(model.hook_dict[hook_name].register_forward_hook(fn))


# -- transformers ---------------------------------------------------------------------------------------------


def decoder_stack(hf: Any) -> tuple[torch.nn.Module, torch.nn.ModuleList]:
    """``(owner, layers)``: the module holding the decoder layers of a transformers causal LM, and the list."""
    for path in ("model", "model.language_model", "model.decoder", "transformer", ""):
        mod: Any = hf
        for part in filter(None, path.split(".")):
            mod = getattr(mod, part, None)
            if mod is None:
                break
        if mod is None:
            continue
        for attr in ("layers", "h"):
            layers = getattr(mod, attr, None)
            if isinstance(layers, torch.nn.ModuleList):
                return mod, layers
    raise HookError(
        f"cannot find the decoder layers of {type(hf).__name__} (looked for model.layers, transformer.h)"
    )


def hf_past_length(kwargs: dict[str, Any], cur_len: int | None, attention_mask: Any) -> int:
    """Positions already in the KV cache for a call of a transformers decoder stack.

    Read from what the call carries, in this order, so that it does not depend on how a transformers
    version names its arguments: ``cache_position[0]`` (4.x), then any cache object among the keyword
    arguments (``past_key_values`` in 4.x, ``cache`` in 5.x: ``get_seq_length()`` before this call
    appends to it), then a 2-D attention mask wider than the call (it covers cached + new positions).
    """
    pos = kwargs.get("cache_position")
    if isinstance(pos, torch.Tensor) and pos.numel() > 0:
        return int(pos.reshape(-1)[0])
    for value in kwargs.values():
        if value is not None and not isinstance(value, torch.Tensor) and hasattr(value, "get_seq_length"):
            return int(value.get_seq_length())
    if isinstance(attention_mask, torch.Tensor) and attention_mask.ndim == 2 and cur_len is not None:
        return max(0, int(attention_mask.shape[1]) - cur_len)
    return 0


def register_hf(hf: Any, handle: SteeringHandle) -> None:
    owner, layers = decoder_stack(hf)
    tracker = handle.tracker

    def track(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        ref = kwargs.get("input_ids", args[0] if args else None)
        if ref is None:
            ref = kwargs.get("inputs_embeds")
        batch = cur = None
        if isinstance(ref, torch.Tensor):
            batch, cur = int(ref.shape[0]), int(ref.shape[1])
        mask = kwargs.get("attention_mask")
        tracker.begin_call(
            batch=batch, cur_len=cur, past_len=hf_past_length(kwargs, cur, mask), attention_mask=mask
        )

    handle._hooks.append(owner.register_forward_pre_hook(track, with_kwargs=True))
    for hook_name in handle.entries:
        spec = handle.entries[hook_name][0].component.spec
        if spec.layer >= len(layers):
            raise HookError(f"hook {hook_name!r}: the model has {len(layers)} decoder layers")
        layer = layers[spec.layer]
        if spec.kind == "resid_post":

            def post(_module: Any, _args: Any, out: Any, _name: str = hook_name) -> Any:
                if isinstance(out, torch.Tensor):
                    return handle._intervene(_name, out)
                return (handle._intervene(_name, out[0]), *out[1:])

            handle._hooks.append(layer.register_forward_hook(post))
        elif spec.kind == "resid_pre":

            def pre(
                _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], _name: str = hook_name
            ) -> Any:
                if args:
                    return (handle._intervene(_name, args[0]), *args[1:]), kwargs
                kwargs = dict(kwargs)
                kwargs["hidden_states"] = handle._intervene(_name, kwargs["hidden_states"])
                return args, kwargs

            handle._hooks.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        else:
            raise HookError(
                f"{hook_name!r}: transformers models expose only resid_pre / resid_post at layer boundaries"
            )
