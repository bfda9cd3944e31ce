"""Domain signals of a condition, counted at build time from the tokens it counted.

Contrastive selection finds whatever tells the target's text from the contrast's. When the two come
from different domains (man pages against quotations), that is the domain: digits, paths, markup,
line structure, document length. The index therefore stores, per condition, how many counted tokens
are of each kind in :data:`SIGNALS` (table ``condition_signals``, schema 002), from the unigram token
counts the build already keeps; :mod:`saesteer.select.domain` compares them between a target and its
contrast and warns.

A token's kinds come from its decoded string (a token may have several):

- ``digit``: holds a decimal digit;
- ``punct``: non-blank and made only of punctuation or symbols (Unicode P* / S*; the replacement
  character of a byte-fallback token does not count);
- ``code``: holds a character typical of code, paths, URLs and markup (:data:`CODE_CHARS`);
- ``newline``: holds a line break.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from saesteer.index.db import IndexDb
    from saesteer.index.tokens import TokenStrings

SIGNALS: tuple[str, ...] = ("digit", "punct", "code", "newline")
CODE_CHARS = frozenset("/\\_{}[]<>=|`$#~@*^%&")
_REPLACEMENT = "\ufffd"


def token_kinds(text: str) -> tuple[bool, ...]:
    """For one decoded token, whether it is of each kind of :data:`SIGNALS` (in that order)."""
    stripped = text.strip()
    return (
        any(c.isdecimal() for c in text),
        bool(stripped)
        and _REPLACEMENT not in stripped
        and all(unicodedata.category(c)[0] in "PS" for c in stripped),
        any(c in CODE_CHARS for c in text),
        "\n" in text or "\r" in text,
    )


def signal_counts(token_counts: np.ndarray, strings: TokenStrings) -> dict[str, int]:
    """``{signal: counted tokens of that kind}`` from a condition's ``[d_vocab]`` unigram counts."""
    counts = np.asarray(token_counts)
    ids = np.flatnonzero(counts)
    return sparse_signal_counts(ids, counts[ids], strings)


def sparse_signal_counts(ids: np.ndarray, counts: np.ndarray, strings: TokenStrings) -> dict[str, int]:
    """:func:`signal_counts` from the token ids that occurred and their counts (``token_counts`` rows)."""
    out = dict.fromkeys(SIGNALS, 0)
    if not len(ids):
        return out
    texts = strings(np.asarray(ids, dtype=np.int64)).to_pylist()
    kinds = np.array([token_kinds(t or "") for t in texts], dtype=bool).reshape(len(ids), len(SIGNALS))
    totals = np.asarray(counts, dtype=np.int64) @ kinds.astype(np.int64)
    return {s: int(n) for s, n in zip(SIGNALS, totals, strict=True)}


def backfill_signals(db: IndexDb, build_id: str, strings: TokenStrings) -> list[str]:
    """Add the missing ``condition_signals`` rows of a build's finished conditions (imported from an older
    export, or built before schema 2) from their stored token counts; returns their labels. Needs the
    build's tokenizer (``strings``), so it runs inside a build."""
    added: list[str] = []
    for (cond,) in db.query("index_conditions_without_signals", {"build": build_id}).fetchall():
        rows = db.query("index_condition_token_counts", {"build": build_id, "condition": cond}).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        counts = np.array([r[1] for r in rows], dtype=np.int64)
        with db.transaction():
            db.insert_arrow("condition_signals", signal_table(build_id, str(cond), sparse_signal_counts(ids, counts, strings)))
        added.append(str(cond))
    return added


def signal_table(build_id: str, condition: str, counts: dict[str, int]) -> Any:
    """The ``condition_signals`` rows of one condition as an Arrow table."""
    import pyarrow as pa

    names = list(SIGNALS)
    return pa.table(
        {
            "build_id": pa.array([build_id] * len(names), type=pa.string()),
            "condition": pa.array([condition] * len(names), type=pa.string()),
            "signal": pa.array(names, type=pa.string()),
            "n_tokens": pa.array([int(counts.get(s, 0)) for s in names], type=pa.int64()),
        }
    )
