"""Apply steering vectors to a model: a context manager that always removes its hooks, and a handle
for manual control. Works on a transformer-lens ``HookedTransformer`` and on a transformers causal LM.

Where the hooks go:

==================================  ================================================================
vector hook                          transformer-lens / transformers
==================================  ================================================================
``blocks.L.hook_resid_pre``         the ``HookPoint`` / a forward pre-hook on ``model.layers[L]``
``blocks.L.hook_resid_post``        the ``HookPoint`` / a forward hook on ``model.layers[L]``
==================================  ================================================================

A :class:`~saesteer.steer.positions.PositionTracker` pre-hook on the model (the decoder stack for
transformers) tells each hook which positions of the call are prompt, generated or padding.

Example::

    with steering(model, vector, strength=4.0):
        out = model.generate(...)

    handle = attach(model, [(fr_vector, 4.0), (formal_vector, 2.0)])
    ...
    handle.remove()
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import torch

from saesteer.errors import HookError, SteeringVectorError
from saesteer.steer import operators
from saesteer.steer.hookpoints import decoder_stack, register_hf, register_tl
from saesteer.steer.positions import PositionTracker
from saesteer.steer.vector import Component, ModelInfo, SteeringVector, check_strength

if TYPE_CHECKING:
    from sae_lens import SAE
    from torch.utils.hooks import RemovableHandle

log = logging.getLogger(__name__)

Steer: TypeAlias = SteeringVector | tuple[SteeringVector, float]
SaeArg: TypeAlias = "SAE | Mapping[str, SAE] | None"


@dataclass
class Record:
    """The residual at one hook in one forward call, before and after the intervention (``record=True``).

    ``before``/``after``: ``[batch, pos, d_model]``; ``selected``: ``[batch, pos]`` bool, the positions
    any entry at this hook selected.
    """

    hook_name: str
    call: int
    before: torch.Tensor
    after: torch.Tensor
    selected: torch.Tensor


class _Entry:
    """One component of one vector at one strength, with its tensors cached per dtype/device."""

    def __init__(
        self, vector: SteeringVector, component: Component, strength: float, sae: SAE | None, group: int = 0
    ) -> None:
        self.vector = vector
        self.component = component
        self.strength = float(strength)
        self.sae = sae
        self.group = group  # which (vector, strength) of the attach call this entry belongs to
        self.rows: torch.Tensor | None = None  # [batch] bool: the rows of the batch it steers (None: all)
        self._cache: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    def set_strength(self, strength: float) -> None:
        self.strength = float(strength)
        self._cache.clear()

    def _tensor(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.dtype, like.device)
        t = self._cache.get(key)
        if t is None:
            v = self.component.vector
            op = self.vector.operator
            if op in ("add", "norm_preserving_add"):
                t = (v * self.strength).to(device=like.device, dtype=like.dtype)
            elif op == "ablate":
                t = v.to(device=like.device, dtype=like.dtype)
            else:  # clamp: the values to clamp to
                assert self.vector.clamp is not None
                t = (self.vector.clamp.values * self.strength).to(like.device)
            self._cache[key] = t
        return t

    def apply(self, resid: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        op = self.vector.operator
        t = self._tensor(resid)
        if op == "add":
            return operators.add(resid, t, mask)
        if op == "norm_preserving_add":
            return operators.norm_preserving_add(resid, t, mask)
        if op == "ablate":
            return operators.ablate(resid, t, self.strength, mask)
        assert self.sae is not None and self.vector.clamp is not None
        feats = self.vector.clamp.features.to(resid.device)
        return operators.sae_clamp(resid, self.sae, feats, t, mask)


class SteeringHandle:
    """The hooks of one :func:`attach` call. :meth:`remove` is idempotent; use it as a context manager."""

    def __init__(self, model: Any, backend: str, entries: dict[str, list[_Entry]], record: bool) -> None:
        self.model = model
        self.backend = backend
        self.entries = entries
        self.tracker = PositionTracker()
        self.record = record
        self.records: list[Record] = []
        self.enabled = True
        self._hooks: list[RemovableHandle] = []

    @property
    def active(self) -> bool:
        return bool(self._hooks)

    def set_strength(self, strength: float, vector: SteeringVector | None = None) -> None:
        """Change the strength of every vector (or of ``vector`` only) without re-registering hooks."""
        for entries in self.entries.values():
            for e in entries:
                if vector is None or e.vector is vector:
                    e.set_strength(strength)

    def set_rows(self, rows: Mapping[int, torch.Tensor | None]) -> None:
        """Per-row steering: ``{i: [batch] bool}`` restricts the ``i``-th vector of the :func:`attach` call
        to those rows of the next forward calls (None: every row). Rows no vector selects stay untouched."""
        for entries in self.entries.values():
            for e in entries:
                if e.group in rows:
                    e.rows = rows[e.group]

    def remove(self) -> None:
        """Remove every hook this handle registered (safe to call twice)."""
        while self._hooks:
            self._hooks.pop().remove()

    def __enter__(self) -> SteeringHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- the intervention ---------------------------------------------------------------------------------
    def _intervene(self, hook_name: str, resid: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return resid
        batch, pos = resid.shape[0], resid.shape[1]
        before = resid
        selected: torch.Tensor | None = None
        applied: list[_Entry] = []
        for entry in self.entries[hook_name]:
            sel = self.tracker.select(entry.vector.positions, batch, pos, resid.device)
            if sel.kind == "none":
                continue
            mask = sel.mask
            if entry.rows is not None:
                if not bool(entry.rows.any()):
                    continue
                rows = entry.rows.to(resid.device)[:, None].expand(batch, pos)
                mask = rows if mask is None else mask & rows
            resid = entry.apply(resid, mask)
            applied.append(entry)
            if self.record:
                m = (
                    mask
                    if mask is not None
                    else torch.ones(batch, pos, dtype=torch.bool, device=resid.device)
                )
                selected = m if selected is None else selected | m
        if applied:
            _check_finite_hidden(resid, hook_name, applied)
        if self.record:
            if selected is None:
                selected = torch.zeros(batch, pos, dtype=torch.bool, device=resid.device)
            self.records.append(
                Record(
                    hook_name,
                    self.tracker.calls,
                    before.detach().clone(),
                    resid.detach().clone(),
                    selected.clone(),
                )
            )
        return resid


def _check_finite_hidden(resid: torch.Tensor, hook_name: str, entries: Sequence[_Entry]) -> None:
    """Raise if the steered residual is non-finite or so large that its squared norm overflows float32
    (every norm layer after it then computes garbage: NaNs, or a constant output)."""
    if bool(torch.isfinite(resid.float().pow(2).sum(-1)).all()):
        return
    what = " and ".join(f"{e.vector.name!r} at strength {e.strength:g}" for e in entries)
    raise SteeringVectorError(
        f"the model's hidden states became non-finite (NaN/inf) at {hook_name} while steering with {what}: "
        "the strength is far too large for this model; use a smaller one (try `saesteer steer sweep`)"
    )


def attach(
    model: Any,
    vectors: Steer | Sequence[Steer],
    *,
    strength: float | None = None,
    sae: SaeArg = None,
    record: bool = False,
    check_model: bool = True,
    model_id: str | None = None,
) -> SteeringHandle:
    """Register steering hooks on ``model`` and return the handle (call ``handle.remove()``).

    ``vectors``: one vector, ``(vector, strength)`` pairs, or a list of either; several vectors compose
    in the given order. ``strength`` overrides the default strength of vectors given without one.
    ``sae``: the SAE (or ``{sae_id: SAE}``) that clamp vectors need. ``record=True`` keeps the residual
    before and after each intervention in ``handle.records`` (for tests and debugging).
    ``model_id`` names a transformers model for the model check (transformer-lens models carry it).
    """
    pairs = _normalise(vectors, strength)
    backend = _backend_of(model)
    if backend == "tl":
        info = ModelInfo.from_tl(model)
        check_id = check_model
    else:
        info = ModelInfo.from_hf(model, model_id)
        check_id = check_model and bool(model_id or getattr(model, "saesteer_model_id", None))
    entries: dict[str, list[_Entry]] = {}
    for group, (vec, s) in enumerate(pairs):
        vec.check_model(info, check_id=check_id)
        clamp_sae = _sae_for(vec, sae, info) if vec.operator == "clamp" else None
        for comp in vec.components:
            entries.setdefault(comp.hook_name, []).append(_Entry(vec, comp, s, clamp_sae, group))
    handle = SteeringHandle(model, backend, entries, record)
    try:
        if backend == "tl":
            register_tl(model, handle)
        else:
            register_hf(model, handle)
    except BaseException:
        handle.remove()
        raise
    return handle


@contextmanager
def steering(model: Any, vectors: Steer | Sequence[Steer], **kwargs: Any) -> Iterator[SteeringHandle]:
    """Context manager around :func:`attach`: the hooks are removed on exit, even if the body raises."""
    handle = attach(model, vectors, **kwargs)
    try:
        yield handle
    finally:
        handle.remove()


def _normalise(
    vectors: Steer | Sequence[Steer], strength: float | None
) -> list[tuple[SteeringVector, float]]:
    items: list[Steer]
    if isinstance(vectors, SteeringVector) or (
        isinstance(vectors, tuple)
        and len(vectors) == 2
        and isinstance(vectors[0], SteeringVector)
        and not isinstance(vectors[1], SteeringVector)
    ):
        items = [vectors]  # type: ignore[list-item]
    else:
        items = list(vectors)  # type: ignore[arg-type]
    out: list[tuple[SteeringVector, float]] = []
    for item in items:
        if isinstance(item, SteeringVector):
            out.append((item, item.default_strength if strength is None else float(strength)))
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], SteeringVector):
            out.append((item[0], float(item[1])))
        else:
            raise SteeringVectorError(
                f"expected a SteeringVector or (SteeringVector, strength), got {type(item).__name__}"
            )
    if not out:
        raise SteeringVectorError("no steering vector given")
    return [(vec, check_strength(s, vec, what=f"strength for {vec.name!r}")) for vec, s in out]


def describe_steer(vectors: Steer | Sequence[Steer], strength: float | None = None) -> str:
    """``'fr' at strength 0.06`` (joined with ``and``): how error messages name what steered."""
    return " and ".join(f"{v.name!r} at strength {s:g}" for v, s in _normalise(vectors, strength))


def check_finite_output(out: torch.Tensor, vectors: Steer | Sequence[Steer] | None) -> None:
    """Raise :class:`SteeringVectorError` naming the strength if ``out`` (logits or hidden states of a
    steered forward pass) holds NaN or +inf: the steering overflowed the model's arithmetic. ``-inf`` is
    allowed (decoding masks tokens with it)."""
    top = out.max() if out.numel() else None  # one pass: a NaN anywhere makes the max NaN
    if top is not None and (bool(torch.isnan(top)) or bool(torch.isposinf(top))):
        what = describe_steer(vectors) if vectors is not None else "no steering"
        raise SteeringVectorError(
            f"the model's hidden states became non-finite (NaN/inf) while steering with {what}: "
            "the strength is far too large for this model; use a smaller one (try `saesteer steer sweep`)"
        )


def _backend_of(model: Any) -> str:
    tl = sys.modules.get(
        "transformer_lens"
    )  # not imported => not a HookedTransformer (and importing it costs seconds)
    if tl is not None and isinstance(model, tl.HookedTransformer):
        return "tl"
    if hasattr(model, "config") and isinstance(model, torch.nn.Module):
        decoder_stack(model)  # raises a clear error if there is no decoder-layer list
        return "hf"
    raise HookError(
        f"cannot steer a {type(model).__name__}: expected a transformer-lens HookedTransformer or a transformers causal LM"
    )


def _sae_for(vec: SteeringVector, sae: SaeArg, info: ModelInfo) -> SAE:
    from saesteer.saes.loading import sae_hook_name, sae_source

    assert vec.clamp is not None
    chosen: Any = sae.get(vec.clamp.sae_id) if isinstance(sae, Mapping) else sae
    if chosen is None:
        raise SteeringVectorError(
            f"vector {vec.name!r} clamps features of SAE {vec.clamp.sae_id!r}: pass that SAE (sae=... / --sae)"
        )
    src = sae_source(chosen)
    if src.id != vec.clamp.sae_id and src.kind != "external":
        raise SteeringVectorError(
            f"vector {vec.name!r} clamps features of SAE {vec.clamp.sae_id!r}, but SAE {src.id!r} was given"
        )
    if int(chosen.cfg.d_in) != info.d_model:
        raise SteeringVectorError(f"SAE d_in={chosen.cfg.d_in} does not match the model width {info.d_model}")
    hook = sae_hook_name(chosen)
    if hook != vec.components[0].hook_name:
        raise SteeringVectorError(
            f"the SAE reads {hook!r} but the clamp vector sits at {vec.components[0].hook_name!r}"
        )
    d_sae = int(chosen.cfg.d_sae)
    if int(vec.clamp.features.max()) >= d_sae:
        raise SteeringVectorError(
            f"clamp feature {int(vec.clamp.features.max())} is out of range for an SAE of width {d_sae}"
        )
    return chosen  # type: ignore[no-any-return]
