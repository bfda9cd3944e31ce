"""``SteeringVector``: one or more residual-stream interventions with their manifest and provenance.

A steering vector is a list of *components*, one per hook (``blocks.L.hook_resid_pre`` or
``blocks.L.hook_resid_post``), each a ``[d_model]`` float32 tensor: the intervention at strength 1.0.
How it is applied is part of the vector: the operator (``add``, ``norm_preserving_add``, ``ablate``,
``clamp``), the position policy (``all``, ``prompt``, ``generated``), and the scale mode:

- ``residual_norm``: each component is ``typical_norm * unit(direction)``, where ``typical_norm`` is the
  median residual norm at its hook (non-BOS tokens of a small English sample), so strength 1.0 adds a
  vector as long as a typical residual there, on every model and layer;
- ``raw``: the unnormalised direction (e.g. the plain sum of decoder rows) is kept as it is.

The manifest (:meth:`SteeringVector.manifest`) is the JSON every export format stores or maps from.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

import torch

from saesteer.errors import DimensionMismatchError, HookError, SteeringVectorError
from saesteer.models.hooks import HookSpec, parse_hook
from saesteer.steer.modelinfo import ModelInfo

if TYPE_CHECKING:
    pass

KIND = "saesteer.steering_vector"
VERSION = 1

Operator = Literal["add", "norm_preserving_add", "ablate", "clamp"]
PositionPolicy = Literal["all", "prompt", "generated"]
ScaleMode = Literal["residual_norm", "raw"]
OPERATORS: tuple[str, ...] = get_args(Operator)
POSITIONS: tuple[str, ...] = get_args(PositionPolicy)
SCALE_MODES: tuple[str, ...] = get_args(ScaleMode)
STEERABLE_KINDS = ("resid_pre", "resid_post")


@dataclass(frozen=True, eq=False)
class Component:
    """One hook's intervention. ``vector``: ``[d_model]`` float32, the vector at strength 1.0."""

    hook_name: str
    vector: torch.Tensor
    typical_norm: float | None = None

    @property
    def spec(self) -> HookSpec:
        return parse_hook(self.hook_name)

    @property
    def layer(self) -> int:
        return self.spec.layer

    @property
    def kind(self) -> str:
        return self.spec.kind


@dataclass(frozen=True, eq=False)
class ClampSpec:
    """SAE-space clamp: set ``features`` (``[k]`` int64) to ``strength * values`` (``[k]`` float32)."""

    features: torch.Tensor
    values: torch.Tensor
    sae_id: str


@dataclass(frozen=True, eq=False)
class SteeringVector:
    """A steering vector: components, how to apply them, and where they came from (see module doc)."""

    components: tuple[Component, ...]
    model: ModelInfo
    operator: Operator = "add"
    positions: PositionPolicy = "all"
    scale_mode: ScaleMode = "residual_norm"
    default_strength: float = 1.0
    clamp: ClampSpec | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    name: str = "steering-vector"

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", tuple(self.components))
        try:
            prov = json.loads(json.dumps(self.provenance, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise SteeringVectorError(
                f"provenance must be JSON-serialisable with finite numbers: {exc}"
            ) from exc
        object.__setattr__(self, "provenance", prov)
        self.validate()

    # -- validation -------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check shapes, dtypes, finiteness, hook names and layer range; raise a clear error."""
        if not self.components:
            raise SteeringVectorError(f"steering vector {self.name!r} has no components")
        if self.operator not in OPERATORS:
            raise SteeringVectorError(
                f"unknown operator {self.operator!r}; expected one of {', '.join(OPERATORS)}"
            )
        if self.positions not in POSITIONS:
            raise SteeringVectorError(
                f"unknown position policy {self.positions!r}; expected one of {', '.join(POSITIONS)}"
            )
        if self.scale_mode not in SCALE_MODES:
            raise SteeringVectorError(
                f"unknown scale mode {self.scale_mode!r}; expected one of {', '.join(SCALE_MODES)}"
            )
        seen: set[str] = set()
        for comp in self.components:
            try:
                spec = comp.spec
            except HookError as exc:
                raise SteeringVectorError(f"invalid hook in steering vector {self.name!r}: {exc}") from exc
            if spec.kind not in STEERABLE_KINDS:
                raise SteeringVectorError(
                    f"hook {comp.hook_name!r}: only resid_pre / resid_post hooks can be steered (both backends "
                    "hook decoder-layer boundaries)"
                )
            if comp.hook_name in seen:
                raise SteeringVectorError(
                    f"hook {comp.hook_name!r} appears twice; combine its vectors into one component"
                )
            seen.add(comp.hook_name)
            v = comp.vector
            if not isinstance(v, torch.Tensor) or v.dtype != torch.float32 or v.ndim != 1:
                raise SteeringVectorError(
                    f"component {comp.hook_name!r} must be a 1-D float32 tensor, got "
                    f"{getattr(v, 'dtype', type(v).__name__)} of shape {tuple(getattr(v, 'shape', ()))}"
                )
            if v.shape[0] != self.model.d_model:
                raise DimensionMismatchError(
                    f"component {comp.hook_name!r} has width {v.shape[0]} but the vector's model "
                    f"{self.model.id!r} has d_model={self.model.d_model}"
                )
            bad = int((~torch.isfinite(v)).sum())
            if bad:
                raise SteeringVectorError(
                    f"component {comp.hook_name!r} of {self.name!r} has {bad} non-finite values (NaN/inf); "
                    "rebuild the vector (a zero-norm direction or an overflow upstream)"
                )
            if comp.typical_norm is not None and not (
                math.isfinite(comp.typical_norm) and comp.typical_norm > 0
            ):
                raise SteeringVectorError(
                    f"component {comp.hook_name!r}: typical_norm must be finite and > 0"
                )
            _check_layer(comp.hook_name, spec, self.model)
        if self.operator == "clamp":
            self._validate_clamp()
        elif self.clamp is not None:
            raise SteeringVectorError(
                f"a clamp spec is only meaningful with operator 'clamp', not {self.operator!r}"
            )
        check_strength(self.default_strength, self, what="default strength")

    def _validate_clamp(self) -> None:
        c = self.clamp
        if c is None:
            raise SteeringVectorError("operator 'clamp' needs a clamp spec (features and values)")
        if len(self.components) != 1:
            raise SteeringVectorError(
                "a clamp vector works on one SAE, so it must have exactly one component"
            )
        if c.features.dtype != torch.int64 or c.values.dtype != torch.float32:
            raise SteeringVectorError("clamp features must be int64 and clamp values float32")
        if c.features.ndim != 1 or c.values.shape != c.features.shape or c.features.numel() == 0:
            raise SteeringVectorError(
                f"clamp features {tuple(c.features.shape)} and values {tuple(c.values.shape)} must be 1-D, non-empty "
                "and of the same length"
            )
        if not bool(torch.isfinite(c.values).all()):
            raise SteeringVectorError("clamp values contain NaN/inf")
        if bool((c.features < 0).any()):
            raise SteeringVectorError("clamp features must be non-negative SAE feature ids")

    def check_model(self, info: ModelInfo, *, check_id: bool = True) -> None:
        """Raise if this vector cannot be applied to the model ``info`` describes (id, width, depth)."""
        if check_id and self.model.id and info.id and self.model.id != info.id:
            raise SteeringVectorError(
                f"steering vector {self.name!r} was built for model {self.model.id!r}, not {info.id!r}; "
                f"build or import one for {info.id!r} (or skip this check deliberately: check_model=False / --skip-model-check)"
            )
        if self.model.d_model != info.d_model:
            raise DimensionMismatchError(
                f"steering vector {self.name!r} has width {self.model.d_model} but model {info.id!r} has "
                f"d_model={info.d_model}"
            )
        for comp in self.components:
            _check_layer(comp.hook_name, comp.spec, info)

    # -- accessors --------------------------------------------------------------------------------------
    @property
    def hooks(self) -> list[str]:
        return [c.hook_name for c in self.components]

    def component(self, hook_name: str) -> Component:
        for c in self.components:
            if c.hook_name == hook_name:
                return c
        raise SteeringVectorError(
            f"vector {self.name!r} has no component at {hook_name!r} (it has {', '.join(self.hooks)})"
        )

    def with_(self, **changes: Any) -> SteeringVector:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)

    # -- manifest ---------------------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        """The named tensors every lossless format stores: one per hook, plus the clamp spec."""
        out = {c.hook_name: c.vector.detach().contiguous() for c in self.components}
        if self.clamp is not None:
            out["clamp.features"] = self.clamp.features.detach().contiguous()
            out["clamp.values"] = self.clamp.values.detach().contiguous()
        return out

    def manifest(self) -> dict[str, Any]:
        """The JSON manifest: hooks, layers, semantics, operator, positions, scale and provenance."""
        comps = []
        for c in self.components:
            spec = c.spec
            comps.append(
                {
                    "hook_name": c.hook_name,
                    "layer": spec.layer,
                    "hook_semantics": spec.kind,
                    "tensor": c.hook_name,
                    "typical_norm": c.typical_norm,
                    "norm": float(c.vector.double().norm()),
                    "sha256": tensor_sha256(c.vector),
                }
            )
        clamp = None
        if self.clamp is not None:
            clamp = {
                "sae_id": self.clamp.sae_id,
                "features_tensor": "clamp.features",
                "values_tensor": "clamp.values",
                "features": [int(f) for f in self.clamp.features.tolist()],
                "sha256": tensor_sha256(self.clamp.values),
            }
        return {
            "kind": KIND,
            "version": VERSION,
            "name": self.name,
            "model": self.model.to_dict(),
            "operator": self.operator,
            "positions": self.positions,
            "scale": {
                "mode": self.scale_mode,
                "default_strength": self.default_strength,
                "meaning": (
                    "strength 1.0 adds typical_norm * unit(direction) (median residual norm at the hook)"
                    if self.scale_mode == "residual_norm"
                    else "strength 1.0 adds the stored vector as built"
                ),
            },
            "components": comps,
            "clamp": clamp,
            "provenance": self.provenance,
        }

    @classmethod
    def from_manifest(
        cls, manifest: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], *, verify: bool = True
    ) -> SteeringVector:
        """Rebuild a vector from its manifest and tensors; ``verify`` checks each tensor's sha256."""
        if manifest.get("kind") != KIND:
            raise SteeringVectorError(
                f"not a saesteer steering vector manifest (kind={manifest.get('kind')!r})"
            )
        if int(manifest.get("version", 0)) > VERSION:
            raise SteeringVectorError(
                f"steering vector format version {manifest.get('version')} is newer than this saesteer reads ({VERSION}); upgrade"
            )
        try:
            comps = []
            for entry in manifest["components"]:
                key = entry["tensor"]
                if key not in tensors:
                    raise SteeringVectorError(f"the file has no tensor {key!r} that its manifest lists")
                t = tensors[key]
                if verify and entry.get("sha256") and tensor_sha256(t) != entry["sha256"]:
                    raise SteeringVectorError(
                        f"tensor {key!r} does not match its manifest checksum: the file is corrupt"
                    )
                tn = entry.get("typical_norm")
                comps.append(Component(entry["hook_name"], t, None if tn is None else float(tn)))
            clamp = None
            cm = manifest.get("clamp")
            if cm:
                feats, vals = tensors[cm["features_tensor"]], tensors[cm["values_tensor"]]
                if verify and cm.get("sha256") and tensor_sha256(vals) != cm["sha256"]:
                    raise SteeringVectorError(
                        "clamp values do not match their manifest checksum: the file is corrupt"
                    )
                clamp = ClampSpec(feats, vals, str(cm["sae_id"]))
            scale = manifest["scale"]
            return cls(
                components=tuple(comps),
                model=ModelInfo.from_dict(manifest["model"]),
                operator=manifest["operator"],
                positions=manifest["positions"],
                scale_mode=scale["mode"],
                default_strength=float(scale["default_strength"]),
                clamp=clamp,
                provenance=dict(manifest.get("provenance") or {}),
                name=str(manifest.get("name", "steering-vector")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SteeringVectorError(
                f"malformed steering vector manifest: {type(exc).__name__}: {exc}"
            ) from exc

    def bit_equal(self, other: SteeringVector) -> bool:
        """True if both vectors have identical manifests and bit-identical tensors."""
        if self.manifest() != other.manifest():
            return False
        a, b = self.tensors(), other.tensors()
        return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def check_strength(strength: Any, vector: SteeringVector | None = None, *, what: str = "strength") -> float:
    """The one check every strength passes (export, generate, sweep, build, the library's hooks).

    Returns ``strength`` as a float if it is a finite number and, given ``vector``, if the vector times
    it is finite in float32 too (``1e40`` overflows float32 even though it is a finite float64); raises
    :class:`SteeringVectorError` naming the strength otherwise.
    """
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        try:
            strength = float(strength)
        except (TypeError, ValueError) as exc:
            raise SteeringVectorError(f"{what} must be a number, got {strength!r}") from exc
    s = float(strength)
    if not math.isfinite(s):
        raise SteeringVectorError(f"{what} must be finite, got {s}")
    if vector is not None:
        parts = [c.vector for c in vector.components]
        if vector.operator == "clamp" and vector.clamp is not None:
            parts = [vector.clamp.values]
        with torch.no_grad():
            if vector.operator != "ablate" and not all(bool(torch.isfinite(t * s).all()) for t in parts):
                big = max(float(t.abs().max()) for t in parts)
                raise SteeringVectorError(
                    f"{what} {s:g} is too large for {vector.name!r}: the vector times it overflows float32 "
                    f"(largest entry {big:.3g}; the product must stay below {torch.finfo(torch.float32).max:.3g})"
                )
    return s


def _check_layer(hook_name: str, spec: HookSpec, info: ModelInfo) -> None:
    if info.n_layers is not None and not 0 <= spec.layer < info.n_layers:
        raise SteeringVectorError(
            f"hook {hook_name!r} is out of range: model {info.id!r} has {info.n_layers} layers (0..{info.n_layers - 1})"
        )


def tensor_sha256(t: torch.Tensor) -> str:
    """sha256 of a tensor's raw bytes (little-endian, contiguous), for corruption checks."""
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
