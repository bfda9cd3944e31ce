"""What an index holds for one build: the build row and its conditions; resolves user-given names.

Condition names are ``key=value`` (``language=fr``); a bare value (``fr``) is accepted when exactly one
condition of the build has it. Unknown names raise :class:`~saesteer.errors.UnknownConditionError`
listing the known ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from saesteer.errors import IndexDbError, UnknownConditionError, UnknownFeatureError
from saesteer.index.db import IndexDb, load_query


@dataclass(frozen=True)
class ConditionInfo:
    """One row of ``conditions``."""

    name: str
    label_key: str
    label_value: str
    is_random: bool
    n_docs: int
    n_tokens: int
    n_bos: int


@dataclass(frozen=True)
class BuildInfo:
    """The fields of a ``builds`` row that selection uses."""

    build_id: str
    created_at: str
    model_id: str
    sae_id: str
    hook_name: str
    d_model: int
    d_sae: int
    threshold: float
    hist_edges: tuple[float, ...]

    @property
    def n_bins(self) -> int:
        return max(len(self.hist_edges) - 1, 0)


@dataclass(frozen=True)
class Catalog:
    """One build and its conditions (in the order of ``select_conditions.sql``)."""

    build: BuildInfo
    conditions: dict[str, ConditionInfo]
    chosen: str  # how the build was chosen, for the result ("the only build", ...)

    @property
    def names(self) -> list[str]:
        return list(self.conditions)

    @property
    def random(self) -> list[str]:
        return [c.name for c in self.conditions.values() if c.is_random]

    def resolve(self, name: str) -> str:
        """The full condition name for ``name`` (``key=value`` or an unambiguous bare value)."""
        name = name.strip()
        if name in self.conditions:
            return name
        if "=" not in name:
            hits = [c.name for c in self.conditions.values() if c.label_value == name]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise UnknownConditionError(
                    f"condition {name!r} is ambiguous in build {self.build.build_id}: {', '.join(hits)}"
                )
        raise UnknownConditionError(self._unknown_message(name))

    def _unknown_message(self, name: str) -> str:
        key = name.partition("=")[0] if "=" in name else None
        keys = sorted({c.label_key for c in self.conditions.values()})
        known = ", ".join(self.conditions) or "none"
        if key is not None and key not in keys:
            return (
                f"unknown condition {name!r}: build {self.build.build_id} has no label {key!r} "
                f"(labels: {', '.join(keys) or 'none'}; conditions: {known})"
            )
        return f"unknown condition {name!r} in build {self.build.build_id}; known conditions: {known}"

    def contrast(self, target: str, against: str | Sequence[str]) -> list[str]:
        """The contrast conditions: ``"rest"`` (the other non-random conditions with the target's label),
        ``"all"`` (every other non-random condition), or names (a list, or one comma-separated string)."""
        if isinstance(against, str) and against.strip().lower() in ("rest", "all"):
            tgt = self.conditions[target]
            out = [
                c.name
                for c in self.conditions.values()
                if c.name != target
                and not c.is_random
                and (against.strip().lower() == "all" or c.label_key == tgt.label_key)
            ]
            if not out:
                raise UnknownConditionError(
                    f"nothing to contrast {target} with: build {self.build.build_id} has no other "
                    f"{'non-random' if against.strip().lower() == 'all' else tgt.label_key + '=*'} condition "
                    f"(conditions: {', '.join(self.conditions)})"
                )
            return out
        items = [s for s in (against.split(",") if isinstance(against, str) else against) if str(s).strip()]
        out = list(dict.fromkeys(self.resolve(str(s)) for s in items))
        if not out:
            raise UnknownConditionError(
                "no contrast conditions given; use against='rest', 'all' or a list of conditions"
            )
        if target in out:
            raise UnknownConditionError(f"the target {target} cannot also be a contrast condition")
        return out

    def random_set(self, names: Sequence[str] | None = None) -> list[str]:
        """The random-token conditions to filter with (all of the build's by default)."""
        if names:
            out = [self.resolve(n) for n in names]
            bad = [n for n in out if not self.conditions[n].is_random]
            if bad:
                raise UnknownConditionError(
                    f"{', '.join(bad)} is not a random-token condition (random: {', '.join(self.random) or 'none'})"
                )
            return out
        if not self.random:
            raise UnknownConditionError(
                f"build {self.build.build_id} has no random-token condition to filter with; add one with "
                "`saesteer index build ... --random uniform`"
            )
        return self.random

    def check_feature(self, feature: int) -> int:
        """``feature`` if it is a valid id for this build's SAE, else :class:`UnknownFeatureError`."""
        f = int(feature)
        if not 0 <= f < self.build.d_sae:
            raise UnknownFeatureError(
                f"unknown feature {feature}: build {self.build.build_id} has {self.build.d_sae} features (0..{self.build.d_sae - 1})"
            )
        return f


def list_builds(db: IndexDb) -> list[BuildInfo]:
    """Every build of the index, most recent first."""
    rows = db.execute(load_query("select_builds")).fetchall()
    return [
        BuildInfo(
            str(r[0]),
            str(r[1]),
            str(r[2]),
            str(r[3]),
            str(r[4]),
            int(r[5]),
            int(r[6]),
            float(r[7]),
            tuple(float(x) for x in (r[8] or [])),
        )
        for r in rows
    ]


def load_catalog(db: IndexDb, build_id: str | None = None) -> Catalog:
    """The build ``build_id`` (or a unique prefix of it), or by default the only / the most recent build."""
    builds = list_builds(db)
    if not builds:
        raise IndexDbError(f"the index {db.path} has no builds; build one with `saesteer index build`")
    if build_id is not None:
        hits = [b for b in builds if b.build_id == build_id] or [
            b for b in builds if b.build_id.startswith(build_id)
        ]
        if len(hits) != 1:
            known = ", ".join(b.build_id for b in builds)
            what = "is ambiguous" if hits else "is not in the index"
            raise IndexDbError(f"build {build_id!r} {what} (builds: {known})")
        build, chosen = hits[0], "as requested"
    elif len(builds) == 1:
        build, chosen = builds[0], "the only build"
    else:
        build, chosen = (
            builds[0],
            f"the most recent of {len(builds)} builds (choose another with build_id / --build)",
        )
    rows = db.execute(load_query("select_conditions"), {"build": build.build_id}).fetchall()
    conds = {
        str(r[0]): ConditionInfo(str(r[0]), str(r[1]), str(r[2]), bool(r[3]), int(r[4]), int(r[5]), int(r[6]))
        for r in rows
    }
    return Catalog(build, conds, chosen)
