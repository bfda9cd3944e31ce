"""``FeatureSet``: the hand-off from selection (issue 4) to steering (issue 5).

A saved search result is a JSON file (``kind: saesteer.featureset``) that records which features were
chosen, with what weights and scores, from which index build, and by which filters.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from saesteer.errors import SaesteerError

KIND = "saesteer.featureset"
VERSION = 1


@dataclass
class FeatureSet:
    """Chosen SAE features for one target condition.

    ``weights`` default to 1.0 each; ``scores`` maps a score name to one value per feature.
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

    def __post_init__(self) -> None:
        self.features = [int(f) for f in self.features]
        if self.weights is not None and len(self.weights) != len(self.features):
            raise SaesteerError(f"FeatureSet: {len(self.weights)} weights for {len(self.features)} features")
        for name, vals in self.scores.items():
            if len(vals) != len(self.features):
                raise SaesteerError(
                    f"FeatureSet: score {name!r} has {len(vals)} values for {len(self.features)} features"
                )

    def __len__(self) -> int:
        return len(self.features)

    @property
    def resolved_weights(self) -> list[float]:
        return list(self.weights) if self.weights is not None else [1.0] * len(self.features)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, "version": VERSION, **asdict(self)}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSet:
        if data.get("kind") != KIND:
            raise SaesteerError(f"not a saesteer feature set (kind={data.get('kind')!r})")
        if int(data.get("version", 0)) > VERSION:
            raise SaesteerError(
                f"feature set version {data.get('version')} is newer than this saesteer reads ({VERSION})"
            )
        fields_ = {k: v for k, v in data.items() if k not in ("kind", "version")}
        return cls(**fields_)

    @classmethod
    def load(cls, path: str | Path) -> FeatureSet:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SaesteerError(f"cannot read feature set {path}: {exc}") from exc
        return cls.from_dict(data)
