"""Feature weights read from the index: computed when selecting and stored in the :class:`FeatureSet`, so
that steering (:mod:`saesteer.steer.build`) never opens the index.

- ``mean_act``: the mean activation on the target condition, ``sum_act / conditions.n_tokens`` of the
  build the feature set came from;
- ``mean_diff``: the mean activation on the target minus its mean over the contrast conditions (each
  weighing the same). With raw decoder rows this is the DiffMean of the SAE reconstructions restricted to
  the chosen features: the part of the target-vs-rest difference those features carry (equal to the ν
  score of :mod:`saesteer.select.scores`, but read from the index, so hand-picked feature sets get it too).

    fs = with_index_weights(FeatureSet.load("fr.json"), "features_db/index.duckdb", "mean_diff")
    # the same as Search(...).run().to_featureset(weights="mean_diff")
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from saesteer.errors import SteeringVectorError, UnknownConditionError
from saesteer.featureset import INDEX_WEIGHTINGS, FeatureSet
from saesteer.index.db import IndexDb
from saesteer.select.catalog import Catalog, load_catalog
from saesteer.select.domain import domain_warning

IndexRef = IndexDb | str | os.PathLike[str]


def _means(con: IndexDb, cat: Catalog, conditions: Sequence[str], features: Sequence[int]) -> dict[str, list[float]]:
    """``{condition: [mean activation of each feature]}`` on one open index (named query
    ``steer_mean_activation``); unknown or empty conditions are refused with the build's known names."""
    names = {c: cat.resolve(c) for c in dict.fromkeys(conditions)}
    empty = [n for n in names.values() if cat.conditions[n].n_tokens <= 0]
    if empty:
        raise UnknownConditionError(f"condition {empty[0]!r} of build {cat.build.build_id!r} counted no tokens")
    rows = con.query(
        "steer_mean_activation", [cat.build.build_id, list(names.values()), [int(f) for f in features]]
    ).fetchall()
    got = {(str(c), int(f)): float(m) for c, f, m in rows}
    return {c: [got[(n, int(f))] for f in features] for c, n in names.items()}


@contextmanager
def _opened(db: IndexRef) -> Iterator[IndexDb]:
    """``db`` itself when it is an open index, else the index at that path, opened read-only for the block."""
    if isinstance(db, IndexDb):
        yield db
        return
    with IndexDb(Path(db), read_only=True) as con:
        yield con


def mean_activations(
    db: IndexRef, build_id: str, conditions: Sequence[str], features: Sequence[int]
) -> dict[str, list[float]]:
    """``{condition: [mean activation of each feature]}``: ``sum_act / n_tokens`` (0 where it never fired)."""
    with _opened(db) as con:
        return _means(con, load_catalog(con, build_id), conditions, features)


def contrast_conditions(fs: FeatureSet, cat: Catalog) -> list[str]:
    """The conditions ``fs`` was contrasted with (``fs.contrast``), else every other non-random condition
    of its build."""
    if fs.contrast:
        return list(fs.contrast)
    others = [c.name for c in cat.conditions.values() if not c.is_random and c.name != fs.target]
    if not others:
        raise SteeringVectorError(f"build {fs.build_id!r} has no condition to contrast {fs.target!r} with")
    return others


def _mean_diff(con: IndexDb, cat: Catalog, fs: FeatureSet) -> tuple[list[float], list[str]]:
    others = contrast_conditions(fs, cat)
    means = _means(con, cat, [fs.target, *others], fs.features)
    rest = [sum(col) / len(others) for col in zip(*(means[c] for c in others), strict=True)]
    return [float(t - r) for t, r in zip(means[fs.target], rest, strict=True)], others


def mean_diff_weights(db: IndexRef, fs: FeatureSet) -> list[float]:
    """Mean activation on ``fs.target`` minus the mean over its contrast conditions (each weighing the same)."""
    return with_index_weights(fs, db, "mean_diff").resolved_weights


def with_index_weights(fs: FeatureSet, db: IndexRef, weighting: str) -> FeatureSet:
    """A copy of ``fs`` whose ``weights`` are ``weighting`` (``mean_act`` or ``mean_diff``) read from the
    build ``fs`` came from in the index ``db``; its ``contrast`` is filled in with the conditions used, and its
    ``domain_warning`` (:mod:`saesteer.select.domain`) when it has none yet."""
    if weighting not in INDEX_WEIGHTINGS:
        raise SteeringVectorError(f"index weighting must be one of {', '.join(INDEX_WEIGHTINGS)}, not {weighting!r}")
    if not fs.build_id:
        raise SteeringVectorError(f"weighting {weighting!r} needs the feature set's build_id (it has none)")
    with _opened(db) as con:
        cat = load_catalog(con, fs.build_id)
        if weighting == "mean_act":
            weights = _means(con, cat, [fs.target], fs.features)[fs.target]
            contrast = list(fs.contrast)
        else:
            weights, contrast = _mean_diff(con, cat, fs)
        confound = fs.domain_warning or domain_warning(
            con, cat, cat.resolve(fs.target), [cat.resolve(c) for c in contrast_conditions(fs, cat)]
        )
    return replace(fs, weights=weights, weighting=weighting, contrast=contrast, domain_warning=confound)


def weigh(fs: FeatureSet, weighting: str, db: IndexRef | None) -> FeatureSet:
    """``fs`` with the index weights a steering ``weighting`` asks for: ``mean_act`` / ``mean_diff`` are
    read from ``db``; ``auto`` is ``mean_diff`` when ``fs`` comes from an index build and ``db`` is given
    (the recipe measured to steer, ``docs/steering.md``). Any other weighting returns ``fs`` unchanged."""
    want = ("mean_diff" if fs.build_id and db is not None else None) if weighting == "auto" else weighting
    if want not in INDEX_WEIGHTINGS or fs.weighting == want:
        return fs
    if db is None:
        raise SteeringVectorError(f"weighting {want!r} reads the index: pass db= / --db")
    return with_index_weights(fs, db, want)
