"""Synthetic feature-statistics indexes, written through the index's own table writers.

The ``builds`` row comes from :func:`~saesteer.index.provenance.builds_row` with the settings of a real
:class:`~saesteer.index.build.BuildConfig`, the ``conditions`` rows from
:func:`~saesteer.index.provenance.conditions_table`, and ``feature_stats`` / ``token_counts`` from
:class:`~saesteer.index.stats.ConditionStats` (the builder's own tables), so a schema change reaches the
synthetic index too; ``top_examples`` and ``feature_output`` (whose real writers need a model and the
documents) are plausible Arrow rows of the same tables.

Used by the selection tests, the search benchmark and the notebooks, so that search can be exercised
without running a model. Every table is filled consistently with the real builder's conventions:

- ``feature_stats`` is sparse (a row only where a feature fired on a counted token or on BOS);
- ``hist`` counts the positive activations per bin of ``builds.hist_edges`` (threshold 0, so
  ``n_active == sum(hist)``), and ``sum_act`` / ``sum_sq`` / ``max_act`` are derived from the same bins;
- ``random=*`` conditions have ``is_random = true``;
- ``top_examples``, ``feature_output`` and ``token_counts`` hold plausible rows for the UI.

Besides the random background, features can be *planted* with exact per-condition frequencies
(:class:`Planted`), e.g. a French feature that never fires on random tokens and a language-agnostic
feature that fires everywhere, random tokens included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from saesteer.index.build import BuildConfig
from saesteer.index.db import IndexDb
from saesteer.index.provenance import builds_row, builds_table, conditions_table, now, stat_settings
from saesteer.index.search_table import refresh_search_table
from saesteer.index.stats import ConditionStats

log = logging.getLogger(__name__)

DEFAULT_LANGUAGES = ("en", "fr", "de", "es")


@dataclass(frozen=True)
class Planted:
    """A feature with exact expected frequencies.

    ``freqs`` maps a condition (``"language=fr"``, ``"random=uniform"``, or ``"*"`` for every condition
    not named) to the fraction of counted tokens it fires on; ``level`` is its typical activation when
    active; ``bos`` is the fraction of BOS positions it fires on (same in every condition).
    """

    feature: int
    freqs: Mapping[str, float]
    level: float = 2.0
    bos: float = 0.0

    def freq(self, condition: str) -> float:
        return float(self.freqs.get(condition, self.freqs.get("*", 0.0)))


def language_feature(feature: int, language: str, freq: float = 0.3, *, key: str = "language") -> Planted:
    """A feature that fires on ``freq`` of the tokens of one language and nowhere else."""
    return Planted(feature, {f"{key}={language}": freq, "*": 0.0}, level=3.0)


def agnostic_feature(feature: int, freq: float = 0.2) -> Planted:
    """A feature that fires on every condition alike, random tokens included (LangFIR's target)."""
    return Planted(feature, {"*": freq}, level=2.0)


def agnostic_language_feature(
    feature: int, language: str, freq: float = 0.4, *, key: str = "language"
) -> Planted:
    """Selective for one language among the languages, but just as active on random tokens."""
    return Planted(
        feature, {f"{key}={language}": freq, "random=uniform": freq, "random=unigram": freq, "*": 0.0}
    )


def bos_feature(feature: int, freq: float = 1e-4) -> Planted:
    """A feature that fires on every BOS position and almost never on counted tokens."""
    return Planted(feature, {"*": freq}, level=50.0, bos=1.0)


@dataclass
class SyntheticSpec:
    """What :func:`build_synthetic_index` writes. Defaults give a small index for tests (seconds)."""

    n_features: int = 256
    languages: tuple[str, ...] = DEFAULT_LANGUAGES
    label_key: str = "language"
    random_kinds: tuple[str, ...] = ("uniform",)
    n_tokens: int = 5000  # counted tokens per condition
    n_docs: int = 200
    n_bins: int = 16
    freq_range: tuple[float, float] = (1e-4, 3e-2)  # log-uniform background frequency
    selective_fraction: float = 0.05  # background features that prefer one language
    random_active_fraction: float = 0.05  # background features that fire on random tokens as elsewhere
    planted: list[Planted] = field(default_factory=list)
    top_k: int = 3  # top examples per feature and condition (0: none)
    examples_max_features: int = 4096  # write top examples only for feature ids below this
    context_window: int = 4
    n_output_tokens: int = 5  # feature_output rows per feature (0: none)
    d_vocab: int = 260
    d_model: int = 64
    n_char_tokens: int = 8  # characteristic tokens per language in token_counts
    build_id: str = "synthetic"
    model_id: str = "tiny-random"
    sae_id: str = "tiny"
    hook_name: str = "blocks.1.hook_resid_pre"
    seed: int = 0

    @property
    def conditions(self) -> list[str]:
        return [f"{self.label_key}={lang}" for lang in self.languages] + [
            f"random={k}" for k in self.random_kinds
        ]


@dataclass(frozen=True)
class SyntheticIndex:
    """What was written: the build id, the conditions, the planted features, characteristic tokens."""

    path: Path | None
    build_id: str
    conditions: list[str]
    planted: list[Planted]
    char_tokens: dict[str, list[int]]  # condition -> token ids much more frequent there
    n_rows: int  # feature_stats rows


def hist_edges(n_bins: int) -> np.ndarray:
    """``n_bins + 1`` log-spaced edges from 1e-2 to 1e2 (the synthetic builds' convention). ``[n_bins + 1]``"""
    return np.logspace(-2.0, 2.0, n_bins + 1)


def build_synthetic_index(
    db: IndexDb | str | Path,
    spec: SyntheticSpec | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> SyntheticIndex:
    """Write one synthetic build (all six tables) into ``db`` (an open :class:`IndexDb` or a path).

    Each condition is written in its own transaction, like the real builder. Deterministic in ``spec.seed``.
    """
    spec = spec or SyntheticSpec()
    if isinstance(db, IndexDb):
        return _build(db, spec, None, progress)
    path = Path(db)
    with IndexDb(path) as con:
        return _build(con, spec, path, progress)


def _build(
    con: IndexDb, spec: SyntheticSpec, path: Path | None, progress: Callable[[str], None] | None
) -> SyntheticIndex:

    rng = np.random.default_rng(spec.seed)
    nf, nb = spec.n_features, spec.n_bins
    edges = hist_edges(nb)
    mids = np.sqrt(edges[:-1] * edges[1:])
    conds = spec.conditions
    langs = [c for c in conds if not c.startswith("random=")]

    # Per-feature background: frequency, preferred language, random-token behaviour, activation level.
    lo, hi = np.log(spec.freq_range[0]), np.log(spec.freq_range[1])
    base = np.exp(rng.uniform(lo, hi, nf))
    prefers = np.where(rng.random(nf) < spec.selective_fraction, rng.integers(0, len(langs), nf), -1)
    on_random = rng.random(nf) < spec.random_active_fraction
    level = np.exp(rng.normal(np.log(1.5), 0.5, nf))
    planted = {p.feature: p for p in spec.planted}
    for p in spec.planted:
        if not 0 <= p.feature < nf:
            raise ValueError(f"planted feature {p.feature} outside 0..{nf - 1}")
        level[p.feature] = p.level

    con.execute("DELETE FROM builds WHERE build_id = ?", [spec.build_id])
    for table in ("conditions", "feature_stats", "top_examples", "feature_output", "token_counts"):
        con.execute(f"DELETE FROM {table} WHERE build_id = ?", [spec.build_id])
    stats_settings = stat_settings(
        BuildConfig(threshold=0.0, top_k=spec.top_k, context_window=spec.context_window, max_seq_len=128,
                    exclude=("bos", "pad", "special"), hist_edges=tuple(edges.tolist())),
        prepend_bos=True,
    )
    row = builds_row(
        build_id=spec.build_id, model_id=spec.model_id, model_hash="synthetic", sae_id=spec.sae_id,
        sae_hash="synthetic", hook_name=spec.hook_name, d_model=spec.d_model, d_sae=nf, dtype="float32",
        tokenizer="synthetic", stats=stats_settings, versions={"saesteer": "synthetic"},
        settings={"seed": spec.seed, "synthetic": True},
    )
    con.insert_arrow("builds", builds_table(row))
    vocab_words = _vocab(spec.d_vocab)
    char_tokens = _char_tokens(rng, spec, langs)
    n_rows = 0
    for ci, cond in enumerate(conds):
        is_random = cond.startswith("random=")
        li = -1 if is_random else langs.index(cond)
        freq = base * np.exp(rng.normal(0.0, 0.3, nf))
        if is_random:
            freq = np.where(on_random, freq, freq * 0.02)
        else:
            freq = np.where(
                prefers == li, np.minimum(freq * 30.0, 0.6), np.where(prefers >= 0, freq * 0.05, freq)
            )
        bos_rate = np.zeros(nf)
        for f, p in planted.items():
            freq[f] = p.freq(cond)
            bos_rate[f] = p.bos
        freq = np.clip(freq, 0.0, 1.0)
        n_active = rng.binomial(spec.n_tokens, freq)
        for f, p in planted.items():  # planted features are exact, not sampled
            n_active[f] = round(p.freq(cond) * spec.n_tokens)
        n_bos = spec.n_docs
        n_bos_active = np.round(bos_rate * n_bos).astype(np.int64)
        rows = np.flatnonzero((n_active > 0) | (n_bos_active > 0))
        hist = _hist(rng, n_active[rows], level[rows], edges)
        sum_act = hist @ mids
        sum_sq = hist @ (mids**2)
        top_bin = np.where(hist.sum(1) > 0, nb - 1 - np.argmax(hist[:, ::-1] > 0, axis=1), 0)
        max_act = np.where(n_active[rows] > 0, mids[top_bin] * 1.05, 0.0)
        docs = np.minimum(
            n_active[rows], np.ceil(spec.n_docs * (1 - (1 - 1 / spec.n_docs) ** n_active[rows]))
        )
        stats = _dense_stats(spec, rows, n_active, docs, hist, sum_act, sum_sq, max_act, n_bos_active, n_bos)
        source = {"generator": "saesteer.testing.synthetic", "seed": spec.seed, "condition": cond}
        key, _, value = cond.partition("=")
        top = _examples(rng, spec, cond, rows, max_act, vocab_words) if spec.top_k else None  # rng order kept
        stats = stats._replace(token_counts=_token_counts(rng, spec, cond, char_tokens))
        t = now()
        with con.transaction():
            con.insert_arrow("feature_stats", stats.feature_table(spec.build_id, cond))
            if top is not None:
                con.insert_arrow("top_examples", top)
            con.insert_arrow("token_counts", stats.token_table(spec.build_id, cond))
            con.insert_arrow("conditions", conditions_table(
                spec.build_id, cond, key, value, is_random, source=source, source_hash=f"synthetic-{spec.seed}-{ci}",
                n_docs=spec.n_docs, n_tokens=spec.n_tokens, n_bos=n_bos, started_at=t, completed_at=t,
            ))
        n_rows += len(rows)
        if progress:
            progress(cond)
        log.info("synthetic %s: %d feature rows", cond, len(rows))
    if spec.n_output_tokens:
        with con.transaction():
            con.insert_arrow("feature_output", _outputs(rng, spec, vocab_words))
    refresh_search_table(con, spec.build_id)
    return SyntheticIndex(path, spec.build_id, conds, list(spec.planted), char_tokens, n_rows)


def _hist(rng: np.random.Generator, n: np.ndarray, level: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin, ``sum == n`` exactly: a discretised Gaussian in log space around ``level``. ``[rows, n_bins]``"""
    nb = len(edges) - 1
    centre = np.clip(np.searchsorted(edges, level) - 1, 0, nb - 1).astype(np.int64)
    centre = np.clip(centre + rng.integers(-1, 2, len(n)), 0, nb - 1)
    b = np.arange(nb)[None, :]
    prof = np.exp(-0.5 * ((b - centre[:, None]) / 1.5) ** 2)
    prof /= prof.sum(1, keepdims=True)
    counts = np.floor(prof * n[:, None]).astype(np.int64)
    counts[np.arange(len(n)), centre] += n - counts.sum(1)
    return counts


def _vocab(d_vocab: int) -> list[str]:
    """Token strings for ids: the tiny model's byte tokenizer layout (4 specials, then bytes) when it fits."""
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    out = []
    for i in range(d_vocab):
        if i < 4:
            out.append(specials[i])
        elif i - 4 < 256 and 32 < i - 4 < 127:
            out.append(chr(i - 4))
        else:
            out.append(f"tok{i}")
    return out


def _char_tokens(rng: np.random.Generator, spec: SyntheticSpec, langs: list[str]) -> dict[str, list[int]]:
    ids = rng.permutation(np.arange(4, spec.d_vocab))
    k = spec.n_char_tokens
    return {c: sorted(int(t) for t in ids[i * k : (i + 1) * k]) for i, c in enumerate(langs)}


def _token_counts(
    rng: np.random.Generator, spec: SyntheticSpec, cond: str, char: dict[str, list[int]]
) -> np.ndarray:
    """Token counts of one condition, ``[d_vocab]`` (ids 0-3 are the specials, never counted)."""
    ranks = np.arange(1, spec.d_vocab - 3)
    p = 1.0 / ranks
    p = p[rng.permutation(len(p))]
    for lang, toks in char.items():
        for t in toks:
            p[t - 4] *= 40.0 if lang == cond else 0.02
    p /= p.sum()
    counts = rng.multinomial(spec.n_tokens, p)
    dense = np.zeros(spec.d_vocab, dtype=np.int64)
    dense[4 : 4 + len(counts)] = counts
    return dense


def _dense_stats(
    spec: SyntheticSpec,
    rows: np.ndarray,
    n_active: np.ndarray,
    docs: np.ndarray,
    hist: np.ndarray,
    sum_act: np.ndarray,
    sum_sq: np.ndarray,
    max_act: np.ndarray,
    n_bos_active: np.ndarray,
    n_bos: int,
) -> ConditionStats:
    """The sparse rows as the dense :class:`ConditionStats` the real builder writes (zeros elsewhere)."""
    nf = spec.n_features

    def dense(values: np.ndarray, dtype: Any) -> np.ndarray:
        out = np.zeros(nf, dtype=dtype)
        out[rows] = values
        return out

    full_hist = np.zeros((nf, hist.shape[1]), dtype=np.int64)
    full_hist[rows] = hist
    return ConditionStats(
        n_tokens=spec.n_tokens, n_bos=n_bos,
        n_active=dense(n_active[rows], np.int64), n_docs_active=dense(docs, np.int64),
        sum_act=dense(sum_act, np.float64), sum_sq=dense(sum_sq, np.float64), max_act=dense(max_act, np.float64),
        n_bos_active=dense(n_bos_active[rows], np.int64), hist=full_hist,
        token_counts=np.zeros(spec.d_vocab, dtype=np.int64),
    )


def _corpus_words(cond: str) -> list[str]:
    from saesteer.paths import package_data

    lang = cond.partition("=")[2]
    f = package_data("corpus", "data", f"{lang}.txt")
    if not f.is_file():
        return []
    return f.read_text(encoding="utf-8").split()[:2000]


def _examples(
    rng: np.random.Generator,
    spec: SyntheticSpec,
    cond: str,
    rows: np.ndarray,
    max_act: np.ndarray,
    vocab: list[str],
) -> Any:
    import pyarrow as pa

    sel = np.flatnonzero(rows < spec.examples_max_features)
    words = _corpus_words(cond) or vocab[4:]
    w = spec.context_window
    n = len(sel) * spec.top_k
    feats = np.repeat(rows[sel], spec.top_k).astype(np.int32)
    rank = np.tile(np.arange(spec.top_k, dtype=np.int16), len(sel))
    act = (np.repeat(max_act[sel], spec.top_k) * (0.9**rank)).astype(np.float32)
    start = rng.integers(0, max(1, len(words) - 2 * w - 1), n)
    ctx = [words[s : s + 2 * w + 1] for s in start]
    return pa.table(
        {
            "build_id": _const(spec.build_id, n),
            "condition": _const(cond, n),
            "feature": pa.array(feats),
            "rank": pa.array(rank),
            "activation": pa.array(act),
            "doc_id": pa.array(rng.integers(0, spec.n_docs, n).astype(np.int64)),
            "position": pa.array(rng.integers(w, 40, n).astype(np.int32)),
            "context": pa.array(ctx, pa.list_(pa.string())),
            "context_pos": pa.array(np.array([min(w, len(c) - 1) for c in ctx], dtype=np.int16)),
        }
    )


def _outputs(rng: np.random.Generator, spec: SyntheticSpec, vocab: list[str]) -> Any:
    import pyarrow as pa

    k = spec.n_output_tokens
    nf = spec.n_features
    tok = rng.integers(4, spec.d_vocab, (nf, k)).astype(np.int32)
    logit = np.sort(rng.normal(3.0, 1.0, (nf, k)), axis=1)[:, ::-1].astype(np.float32)
    vocab_arr = np.array(vocab, dtype=object)
    return pa.table(
        {
            "build_id": _const(spec.build_id, (nf * k)),
            "feature": pa.array(np.repeat(np.arange(nf, dtype=np.int32), k)),
            "rank": pa.array(np.tile(np.arange(k, dtype=np.int16), nf)),
            "token_id": pa.array(tok.reshape(-1)),
            "token": pa.array(vocab_arr[tok.reshape(-1)].tolist(), pa.string()),
            "logit": pa.array(logit.reshape(-1).copy()),
        }
    )


def _const(value: str, n: int) -> Any:
    import pyarrow as pa

    return pa.repeat(pa.scalar(value, pa.string()), n)
