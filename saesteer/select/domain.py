"""Domain confounds: does the target's text differ from its contrast's in ways that are not the label?

Contrastive selection (and DiffMean) picks whatever separates the target's text from the contrast's.
If French comes from man pages and the other languages from quotations, the features found for
``language=fr`` track paths, digits and line breaks as much as French. This module compares the
domain signals the index stores per condition (:mod:`saesteer.index.domain`: shares of digit,
punctuation, code and newline tokens; tokens per document from ``conditions``) between a target and
its contrast (each contrast condition weighing the same, as in ``mean_diff``) and returns one line
when they differ sharply. ``features search`` and ``steer build`` log it as a warning; it is never an
error. Indexes built before schema 2 have no signals for their conditions: the token-share checks are
then skipped (logged at debug level) and only the document length is compared.

Thresholds (:data:`THRESHOLDS`): a token-share signal differs sharply when the target's and the
contrast's shares are at least ``min_abs`` apart AND one is at least ``min_ratio`` times the other;
tokens per document when one is at least ``DOC_LEN_RATIO`` times the other. They were set on the
Gemma 3 tokenizer so that the 12 languages of each shipped corpus never warn against each other while
man pages, licence files or source code against sentences do (docs/search.md, "Domain confounds").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from saesteer.index.db import IndexDb
from saesteer.index.domain import SIGNALS
from saesteer.select.catalog import Catalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Threshold:
    min_abs: float  # the shares differ by at least this much (absolute) ...
    min_ratio: float  # ... and one is at least this many times the other


THRESHOLDS: dict[str, Threshold] = {
    "digit": Threshold(0.02, 3.0),
    "punct": Threshold(0.05, 2.0),
    "code": Threshold(0.02, 3.0),
    "newline": Threshold(0.02, 3.0),
}
DOC_LEN_RATIO = 3.0
_LABELS = {
    "digit": "digit-token share",
    "punct": "punctuation-token share",
    "code": "code/path-token share",
    "newline": "newline-token share",
}


@dataclass(frozen=True)
class Difference:
    """One signal on which the target and its contrast differ sharply."""

    signal: str  # a SIGNALS name or "doc_len"
    target: float
    contrast: float  # the mean over the contrast conditions
    worst: str  # the contrast condition farthest from the target on this signal
    worst_value: float
    n_contrast: int

    def describe(self) -> str:
        fmt = "{:.0f}" if self.signal == "doc_len" else "{:.3f}"
        what = "tokens per document" if self.signal == "doc_len" else _LABELS[self.signal]
        # name the odd one out when the contrast itself is mixed (one condition far from the others)
        mixed = self.n_contrast > 1 and abs(self.worst_value - self.contrast) > abs(self.target - self.contrast)
        far = f"; {self.worst}: {fmt.format(self.worst_value)}" if mixed else ""
        return f"{what} ({fmt.format(self.target)} vs {fmt.format(self.contrast)}{far})"


def _sharp(signal: str, a: float, b: float) -> bool:
    lo, hi = sorted((a, b))
    if signal == "doc_len":
        return lo > 0 and hi >= DOC_LEN_RATIO * lo
    t = THRESHOLDS[signal]
    return hi - lo >= t.min_abs and hi >= t.min_ratio * lo


def condition_signals(db: IndexDb, cat: Catalog, conditions: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{condition: {signal: value}}``: the token shares of :data:`SIGNALS` where the index has them,
    and ``doc_len`` (counted tokens per document) always."""
    names = list(dict.fromkeys(conditions))
    out: dict[str, dict[str, float]] = {}
    for c in names:
        info = cat.conditions[c]
        out[c] = {"doc_len": info.n_tokens / info.n_docs} if info.n_docs > 0 else {}
    if not db.query("select_has_table", {"name": "condition_signals"}).fetchall()[0][0]:
        log.debug("domain check: %s predates schema 2 (no condition_signals); token shares not compared", db.path)
        return out
    rows = db.query("select_condition_signals", {"build": cat.build.build_id, "conditions": names}).fetchall()
    for cond, signal, n in rows:
        n_tok = cat.conditions[str(cond)].n_tokens
        if n_tok > 0:
            out[str(cond)][str(signal)] = int(n) / n_tok
    return out


def compare(
    values: dict[str, dict[str, float]], target: str, contrast: Sequence[str]
) -> list[Difference]:
    """The signals on which ``target`` and the mean of ``contrast`` differ sharply. A signal is compared
    only when the target and every contrast condition have it."""
    out: list[Difference] = []
    for signal in ("doc_len", *SIGNALS):
        if signal not in values.get(target, {}) or any(signal not in values.get(c, {}) for c in contrast):
            if signal != "doc_len":
                log.debug("domain check: no %s signal for %s or its contrast; not compared", signal, target)
            continue
        t = values[target][signal]
        mean = sum(values[c][signal] for c in contrast) / len(contrast)
        if _sharp(signal, t, mean):
            worst = max(contrast, key=lambda c: abs(values[c][signal] - t))
            out.append(Difference(signal, t, mean, worst, values[worst][signal], len(contrast)))
    return out


def domain_warning(db: IndexDb, cat: Catalog, target: str, contrast: Sequence[str]) -> str | None:
    """One line naming the sharp domain differences between ``target`` and ``contrast`` (random-token
    conditions ignored), or None when there are none or nothing can be compared."""
    contrast = [c for c in contrast if not cat.conditions[c].is_random and c != target]
    if not contrast or cat.conditions[target].is_random:
        return None
    diffs = compare(condition_signals(db, cat, [target, *contrast]), target, contrast)
    if not diffs:
        return None
    return (
        f"possible domain confound: {target} differs from its contrast in "
        f"{'; '.join(d.describe() for d in diffs)}: the features may track the texts' domain, not the "
        "label; use the same genre in every condition (docs/search.md#domain-confounds)"
    )
