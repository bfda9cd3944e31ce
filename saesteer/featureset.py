"""``FeatureSet``: the hand-off from selection (:mod:`saesteer.select`) to steering (:mod:`saesteer.steer`).

A saved search result is a JSON file (``kind: saesteer.featureset``) that records which features were
chosen, with what weights and scores, from which index build, against which conditions, and by which
filters. Every field steering needs is typed: the target, the contrast and random-token conditions, the
build id, and the name of the weighting that produced ``weights`` (index-derived weights such as
``mean_diff`` are computed by :mod:`saesteer.select.weights` and stored here, so steering never reads the
index). ``filters`` is human-readable text only; nothing parses it.

This module sits below both ``select`` and ``steer`` and imports neither.

Versions: 2 (typed ``weighting``, ``contrast``, ``random``, ``domain_warning``); 1 is read too (its contrast conditions were
recorded as an ``against=a,b`` filter line, and it named no weighting).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from saesteer.errors import SaesteerError

KIND = "saesteer.featureset"
VERSION = 2

# weights read from the index build (by saesteer.select.weights), as opposed to given / uniform / scores
INDEX_WEIGHTINGS = ("mean_act", "mean_diff")


@dataclass
class FeatureSet:
    """Chosen SAE features for one target condition.

    ``weights`` default to 1.0 each; ``weighting`` names how they were made (``given`` for hand-made ones,
    ``uniform``, ``mean``, ``score``, or an index weighting of :data:`INDEX_WEIGHTINGS`). ``contrast``: the
    conditions the target was contrasted with (empty: unknown, i.e. every other non-random condition of
    the build); ``random``: the random-token conditions of the search; ``domain_warning``: the line
    :mod:`saesteer.select.domain` wrote when the target's text differs from its contrast's in domain.
    ``scores`` maps a score name to one value per feature.
    """

    features: list[int]
    target: str
    weights: list[float] | None = None
    scores: dict[str, list[float]] = field(default_factory=dict)
    build_id: str | None = None
    model_id: str | None = None
    sae_id: str | None = None
    hook_name: str | None = None
    filters: list[str] = field(default_factory=list)  # human-readable description of each filter applied
    weighting: str = "given"
    contrast: list[str] = field(default_factory=list)
    random: list[str] = field(default_factory=list)
    domain_warning: str | None = None  # target vs contrast domain confound, checked by select (select.domain)

    def __post_init__(self) -> None:
        self.features = feature_ids(self.features)
        if not isinstance(self.target, str) or not self.target:
            raise SaesteerError(f"FeatureSet: target must be a condition name such as language=fr, got {self.target!r}")
        if self.weights is not None:
            self.weights = _numbers(self.weights, "weights")
            if len(self.weights) != len(self.features):
                raise SaesteerError(f"FeatureSet: {len(self.weights)} weights for {len(self.features)} features")
        if not isinstance(self.scores, dict):
            raise SaesteerError(f"FeatureSet: scores must map a score name to a list, got {type(self.scores).__name__}")
        for name, vals in self.scores.items():
            if not isinstance(vals, (list, tuple)) or len(vals) != len(self.features):
                n = len(vals) if isinstance(vals, (list, tuple)) else type(vals).__name__
                raise SaesteerError(
                    f"FeatureSet: score {name!r} has {n} values for {len(self.features)} features"
                )
        for name in ("contrast", "random"):
            vals = getattr(self, name)
            if not isinstance(vals, (list, tuple)) or not all(isinstance(v, str) for v in vals):
                raise SaesteerError(f"FeatureSet: {name} must be a list of condition names, got {vals!r}")
            setattr(self, name, list(vals))
        if not isinstance(self.weighting, str):
            raise SaesteerError(f"FeatureSet: weighting must be a name such as mean_diff, got {self.weighting!r}")
        if self.weighting in INDEX_WEIGHTINGS and self.weights is None:
            raise SaesteerError(f"FeatureSet: weighting {self.weighting!r} without weights")

    def __len__(self) -> int:
        return len(self.features)

    @property
    def resolved_weights(self) -> list[float]:
        return list(self.weights) if self.weights is not None else [1.0] * len(self.features)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "version": VERSION, **asdict(self)}

    def save(self, path: str | Path) -> Path:
        from saesteer.paths import check_output_path

        path = check_output_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: Any) -> FeatureSet:
        if not isinstance(data, dict):
            raise SaesteerError(
                f"not a saesteer feature set: expected a JSON object with kind {KIND!r}, got a {type(data).__name__}"
            )
        if data.get("kind") != KIND:
            raise SaesteerError(f"not a saesteer feature set (kind={data.get('kind')!r})")
        version = data.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise SaesteerError(f"feature set version must be an integer, got {version!r}")
        if version > VERSION:
            raise SaesteerError(f"feature set version {version} is newer than this saesteer reads ({VERSION})")
        fields_ = {k: v for k, v in data.items() if k not in ("kind", "version")}
        if version < 2:
            fields_ = _from_v1(fields_)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(fields_) - known)
        if unknown:
            raise SaesteerError(f"feature set has unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        missing = [k for k in ("features", "target") if k not in fields_]
        if missing:
            raise SaesteerError(f"feature set lacks the required field(s) {', '.join(missing)}")
        return cls(**fields_)

    @classmethod
    def load(cls, path: str | Path) -> FeatureSet:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SaesteerError(f"cannot read feature set {path}: {exc}") from exc
        try:
            return cls.from_dict(data)
        except SaesteerError as exc:
            raise SaesteerError(f"feature set {path}: {exc}") from exc


def _from_v1(fields_: dict[str, Any]) -> dict[str, Any]:
    """Version 1 recorded the contrast conditions only as an ``against=a,b`` line of ``filters`` and named
    no weighting: recover ``contrast`` from that line (the only place the text is parsed)."""
    out = dict(fields_)
    for line in out.get("filters") or []:
        if isinstance(line, str) and line.startswith("against="):
            out["contrast"] = [c for c in line.split("=", 1)[1].split(",") if c]
            break
    return out


def feature_ids(values: Any) -> list[int]:
    """``values`` as a list of distinct non-negative integer feature ids; refuses floats (``1.5`` is not
    truncated to 1), strings, booleans and duplicates with a :class:`SaesteerError` naming the culprit."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise SaesteerError(f"feature ids must be a list of integers, got {type(values).__name__}")
    out: list[int] = []
    for i, f in enumerate(values):
        if isinstance(f, bool) or not isinstance(f, numbers.Integral):
            raise SaesteerError(
                f"feature ids must be integers: item {i} is {f!r} ({type(f).__name__})"
            )
        if int(f) < 0:
            raise SaesteerError(f"feature ids must be non-negative: item {i} is {int(f)}")
        out.append(int(f))
    if len(set(out)) != len(out):
        from collections import Counter

        dupes = sorted(f for f, n in Counter(out).items() if n > 1)
        raise SaesteerError(
            f"duplicate feature id(s) {', '.join(map(str, dupes))}: each feature may appear once "
            "(merge their weights into one entry)"
        )
    return out


def _numbers(values: Any, what: str) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise SaesteerError(f"FeatureSet: {what} must be a list of numbers, got {type(values).__name__}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            raise SaesteerError(f"FeatureSet: {what} must be finite numbers: item {i} is {v!r}")
        out.append(float(v))
    return out
