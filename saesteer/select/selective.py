"""Which conditions of a label (every ``language=*``, say) have features selective for them in an index.

A feature is *selective* for condition L under a :class:`SelectivityBar` when it fires on at least
``min_freq`` of L's tokens, at least ``ratio`` times as often as on any other condition with L's label,
and passes LangFIR's random-token filter as ``features search --drop-random`` applies it by default (its
frequency on random tokens at most ``random_rel`` x its frequency on L; ``random_max_freq`` adds an
absolute cap). Each condition is one :class:`~saesteer.select.search.Search` (the filters compile to SQL,
nothing is re-implemented here), so ``saesteer features search --target L --drop-random --min-freq M
--min-ratio R`` lists the same features one condition at a time.

    table = selective_features("features_db/index.duckdb", key="language")
    table.n_selective_conditions, [r.condition for r in table.rows if r.n_selective == 0]
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from saesteer.errors import SaesteerError, UnknownConditionError
from saesteer.index.db import IndexDb
from saesteer.select.catalog import load_catalog
from saesteer.select.filters import DEFAULT_RANDOM_RELATIVE, _check
from saesteer.select.search import Search
from saesteer.settings import cli


@dataclass(frozen=True)
class SelectivityBar:
    """The thresholds a feature must pass to count as selective for a condition (also the options of
    ``saesteer features selective``: field names are the flag names, the docstrings their help)."""

    min_freq: float = 0.05
    """A selective feature fires on at least this share of the condition's tokens."""
    ratio: float = 3.0
    """... at least this many times as often as on any other condition of the label."""
    random_rel: float | None = DEFAULT_RANDOM_RELATIVE
    """... and on random tokens at most this times as often as on the condition (as --drop-random)."""
    random_max_freq: float | None = None
    """... and on at most this share of random tokens (absolute cap)."""
    use_random: bool = field(default=True, metadata=cli(off="--no-random"))
    """Apply the random-token filter; --no-random: none (for an index without a baseline)."""

    def __post_init__(self) -> None:
        _check("min_freq", self.min_freq, 0.0, 1.0)
        _check("ratio", self.ratio, 1.0)
        if self.random_rel is not None:
            _check("random_rel", self.random_rel)
        if self.random_max_freq is not None:
            _check("random_max_freq", self.random_max_freq, 0.0, 1.0)
        if self.use_random and self.random_rel is None and self.random_max_freq is None:
            raise SaesteerError("give random_rel and/or random_max_freq, or use_random=False")

    def describe(self) -> str:
        rnd = []
        if self.use_random and self.random_rel is not None:
            rnd.append(f"on random tokens <= {self.random_rel:g}x as often")
        if self.use_random and self.random_max_freq is not None:
            rnd.append(f"on <= {self.random_max_freq:g} of random tokens")
        tail = f", {' and '.join(rnd)}" if rnd else ", no random-token filter"
        return f"fires on >= {self.min_freq:g} of the condition's tokens, >= {self.ratio:g}x any other{tail}"


class ConditionSelectivity(NamedTuple):
    """One condition: how many features are selective for it, and the one with the largest margin."""

    condition: str
    n_tokens: int
    n_selective: int
    feature: int | None  # the selective feature with the largest frequency margin (None: no feature)
    f_target: float
    f_other_max: float
    other: str | None  # the other condition where that feature fires most
    f_random: float


class SelectivityTable(NamedTuple):
    build_id: str
    key: str
    bar: SelectivityBar
    random: list[str]
    rows: list[ConditionSelectivity]

    @property
    def n_selective_conditions(self) -> int:
        return sum(r.n_selective > 0 for r in self.rows)


def selective_features(
    db: IndexDb | str | Path,
    key: str = "language",
    bar: SelectivityBar | None = None,
    build_id: str | None = None,
) -> SelectivityTable:
    """Count, for every non-random condition labelled ``key``, the features selective for it (see the module)."""
    bar = bar or SelectivityBar()
    opened = nullcontext(db) if isinstance(db, IndexDb) else IndexDb(db, read_only=True)
    with opened as handle:
        cat = load_catalog(handle, build_id)
        conds = [c for c in cat.conditions.values() if c.label_key == key and not c.is_random]
        if len(conds) < 2:
            keys = sorted({c.label_key for c in cat.conditions.values() if not c.is_random})
            raise UnknownConditionError(
                f"build {cat.build.build_id} has {len(conds)} condition(s) labelled {key!r}; selectivity needs "
                f"two or more (labels: {', '.join(keys) or 'none'})"
            )
        random = cat.random_set() if bar.use_random else []
        rows = []
        for c in conds:
            s = Search(handle, target=c.name, against="rest", build_id=cat.build.build_id)
            if bar.use_random:
                s = s.drop_random(max_freq=bar.random_max_freq, relative_to_target=bar.random_rel)
            s = s.min_freq(bar.min_freq).min_ratio(bar.ratio).rank_by("freq_diff").top(1)
            res = s.run(allow_empty=True)
            if len(res.df):
                r = res.df.iloc[0]
                f_random = float(r["f_random"]) if random else 0.0
                row = ConditionSelectivity(
                    c.name,
                    c.n_tokens,
                    res.n_kept,
                    int(r["feature"]),
                    float(r["f_target"]),
                    float(r["f_contrast_max"]),
                    str(r["max_contrast"]),
                    f_random,
                )
            else:
                row = ConditionSelectivity(c.name, c.n_tokens, 0, None, 0.0, 0.0, None, 0.0)
            rows.append(row)
        return SelectivityTable(cat.build.build_id, key, bar, random, rows)
