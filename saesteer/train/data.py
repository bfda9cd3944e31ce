"""Build the tokenized training and held-out text: balanced across languages and sources, packed into
fixed-length sequences that start with BOS.

Per language, documents are ordered by a seeded hash of their id. The held-out split is filled first
(documents from the Debian sources, never the bundled corpus, whose own held-out lines are used
elsewhere), then the train split, always drawing from the source with the fewest tokens so far, so the
source kinds of a language (man pages, DDTP, catalogues, bundled; :data:`KIND_WEIGHTS`) are balanced
too. A document contributes one window of at most ``window_tokens`` tokens (a random line-aligned
start), which keeps many documents in a small token budget; a kind that runs out of documents (e.g.
Indonesian) is read again with other windows, up to ``max_passes`` times. Windows of one language are concatenated with a blank-line separator and cut into sequences of
``context_size`` tokens: ``[BOS] + context_size - 1`` text tokens, one language per sequence.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saesteer.errors import CorpusError
from saesteer.train.sources import LANGS, Candidate, SourceInfo

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
# Relative token shares of the source kinds within a language (catalogue messages are terse UI strings).
KIND_WEIGHTS = {"manpages": 1.0, "ddtp": 1.0, "catalogues": 0.5, "bundled": 1.0}


def source_kind(source_key: str) -> str:
    """The kind of a source key: ``manpages-fr`` -> ``manpages``, ``catalogue:tar`` -> ``catalogues``."""
    if source_key.startswith("manpages"):
        return "manpages"
    if source_key.startswith("catalogue:"):
        return "catalogues"
    return source_key


@dataclass(frozen=True)
class TextPlan:
    """How much text to draw, per language, and how to pack it."""

    langs: tuple[str, ...] = LANGS
    train_tokens_per_lang: int = 10_000
    heldout_tokens_per_lang: int = 512
    context_size: int = 128
    window_tokens: int = 127
    max_passes: int = 4  # a scarce source's documents may give up to this many (different) windows
    seed: int = 0

    def key(self) -> str:
        """A short hash identifying this plan (used in cache file names)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class TokenSplit:
    """Packed sequences: ``tokens [n_seq, context_size]`` (BOS first) and the language of each sequence."""

    tokens: np.ndarray
    langs: list[str]

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def select(self, lang: str) -> np.ndarray:
        """``[n, context_size]`` the sequences of one language."""
        idx = [i for i, x in enumerate(self.langs) if x == lang]
        return self.tokens[idx]


@dataclass
class TrainingText:
    """The train and held-out splits plus what went into them."""

    plan: TextPlan
    train: TokenSplit
    heldout: TokenSplit
    sources: dict[str, SourceInfo]
    # per (split, lang, source): {"docs": n, "tokens": n}
    counts: dict[str, dict[str, dict[str, dict[str, int]]]] = field(default_factory=dict)
    heldout_doc_ids: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Write ``<path>.npz`` (token arrays) and ``<path>.json`` (the rest), atomically."""
        import numpy as np

        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "plan": asdict(self.plan),
            "train_langs": self.train.langs,
            "heldout_langs": self.heldout.langs,
            "sources": {k: asdict(v) for k, v in self.sources.items()},
            "counts": self.counts,
            "heldout_doc_ids": self.heldout_doc_ids,
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        os.close(fd)
        with open(tmp, "wb") as fh:
            np.savez(fh, train=self.train.tokens, heldout=self.heldout.tokens)
        os.replace(tmp, path.with_suffix(".npz"))
        _atomic_write(path.with_suffix(".json"), json.dumps(meta, indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> TrainingText:
        import numpy as np

        meta = json.loads(path.with_suffix(".json").read_text())
        arrays = np.load(path.with_suffix(".npz"))
        plan = TextPlan(**{**meta["plan"], "langs": tuple(meta["plan"]["langs"])})
        return cls(
            plan=plan,
            train=TokenSplit(arrays["train"], list(meta["train_langs"])),
            heldout=TokenSplit(arrays["heldout"], list(meta["heldout_langs"])),
            sources={k: SourceInfo(**v) for k, v in meta["sources"].items()},
            counts=meta["counts"],
            heldout_doc_ids=list(meta["heldout_doc_ids"]),
        )


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _order(doc_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{doc_id}".encode()).hexdigest()


class _Windower:
    """Tokenizes one line-aligned window of a document (only the characters it needs)."""

    def __init__(self, tokenizer: Any, window_tokens: int, seed: int) -> None:
        self.tok = tokenizer
        self.window = window_tokens
        self.seed = seed

    def __call__(self, doc_id: str, text: str) -> list[int]:
        lines = text.split("\n")
        rng = random.Random(_order(doc_id, self.seed))
        # Characters per token vary (about 1.5 for Chinese, 4-6 for Latin scripts); 8 per token is enough.
        budget = self.window * 8
        total = len(text)
        start_line = 0
        if total > budget:
            starts, pos = [], 0
            for i, ln in enumerate(lines):
                if total - pos > budget // 2:
                    starts.append(i)
                pos += len(ln) + 1
            start_line = rng.choice(starts) if starts else 0
        chunk = "\n".join(lines[start_line:])[:budget]
        ids = self.tok(chunk, add_special_tokens=False)["input_ids"]
        return list(ids[: self.window])


def build_training_text(
    candidates: list[Candidate],
    sources: dict[str, SourceInfo],
    tokenizer: Any,
    plan: TextPlan,
    *,
    progress: Progress | None = None,
) -> TrainingText:
    """Draw, tokenize and pack the train and held-out splits described by ``plan``."""
    import numpy as np

    bos = tokenizer.bos_token_id
    if bos is None:
        raise CorpusError(
            "the tokenizer has no BOS token; saesteer's training text starts every sequence with BOS"
        )
    sep = list(tokenizer("\n\n", add_special_tokens=False)["input_ids"])
    windower = _Windower(tokenizer, plan.window_tokens, plan.seed)
    by_lang: dict[str, dict[str, list[Candidate]]] = {lang: {} for lang in plan.langs}
    for c in candidates:
        if c.lang in by_lang:
            by_lang[c.lang].setdefault(source_kind(c.source), []).append(c)
    for groups in by_lang.values():
        for lst in groups.values():
            lst.sort(key=lambda c: _order(c.doc_id, plan.seed))

    counts: dict[str, dict[str, dict[str, dict[str, int]]]] = {"train": {}, "heldout": {}}
    out: dict[str, tuple[list[list[int]], list[str]]] = {"train": ([], []), "heldout": ([], [])}
    heldout_ids: list[str] = []
    n_text = plan.context_size - 1
    for li, lang in enumerate(plan.langs):
        groups = by_lang[lang]
        if not groups:
            raise CorpusError(
                f"no training text for language {lang!r}: fetch its sources or drop it from --langs"
            )
        held_cut = {k: 0 for k in groups}  # documents before this index are held out
        for split in ("heldout", "train"):
            want = plan.heldout_tokens_per_lang if split == "heldout" else plan.train_tokens_per_lang
            n_want = want // plan.context_size  # whole sequences only
            pool = [k for k in groups if not (split == "heldout" and k == "bundled")]
            if split == "heldout" and not pool:
                pool = list(groups)  # bundled corpus only: hold out some of its train-split documents
            got = {k: 0.0 for k in pool}
            cursor = {k: held_cut[k] for k in pool}
            split_counts = counts[split].setdefault(lang, {})
            stream: list[int] = []
            # one sequence more than needed is drawn (its documents stay out of the train split either way)
            while len(stream) < (n_want + 1) * n_text and pool:
                kind = min(pool, key=lambda k: (got[k] / KIND_WEIGHTS.get(k, 1.0), k))
                docs = groups[kind]
                n_avail = len(docs) - held_cut[kind]
                n_pass = 1 if split == "heldout" or kind == "bundled" else plan.max_passes
                if n_avail <= 0 or cursor[kind] - held_cut[kind] >= n_avail * n_pass:
                    pool.remove(kind)
                    continue
                i = cursor[kind] - held_cut[kind]
                cand, n_seen = docs[held_cut[kind] + i % n_avail], i // n_avail
                cursor[kind] += 1
                if split == "heldout":
                    held_cut[kind] = cursor[kind]
                text = cand.load()
                ids = windower(f"{cand.doc_id}#{n_seen}" if n_seen else cand.doc_id, text) if text else []
                if not ids:
                    continue
                stream += ids + sep
                got[kind] += len(ids)
                cnt = split_counts.setdefault(cand.source, {"docs": 0, "tokens": 0})
                cnt["docs"] += 1 if n_seen == 0 else 0
                cnt["tokens"] += len(ids)
                if split == "heldout":
                    heldout_ids.append(cand.doc_id)
            n_seq = min(len(stream) // n_text, n_want)
            if n_seq < n_want:
                log.warning("%s: only %d of %d %s sequences available", lang, n_seq, n_want, split)
            seqs, langs = out[split]
            seqs.extend([bos, *stream[i * n_text : (i + 1) * n_text]] for i in range(n_seq))
            langs.extend([lang] * n_seq)
        if progress is not None:
            progress("text", li + 1, len(plan.langs))

    def arr(seqs: list[list[int]]) -> np.ndarray:
        return np.asarray(seqs, dtype=np.int64).reshape(len(seqs), plan.context_size)

    used = {s for split in counts.values() for per in split.values() for s in per}
    return TrainingText(
        plan=plan,
        train=TokenSplit(arr(out["train"][0]), out["train"][1]),
        heldout=TokenSplit(arr(out["heldout"][0]), out["heldout"][1]),
        sources={k: v for k, v in sources.items() if k in used},
        counts=counts,
        heldout_doc_ids=heldout_ids,
    )


def shuffled_order(n: int, seed: int) -> list[int]:
    """A seeded permutation of ``range(n)`` (sequences are cached in this order so that sae-lens' mixing
    buffer, which reads them front to back, sees every language throughout training)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def bundled_heldout_tokens(
    tokenizer: Any, langs: tuple[str, ...], context_size: int, *, first_line: int = 201, last_line: int = 250
) -> tuple[np.ndarray, list[str]]:
    """The bundled corpus' held-out sentences (lines 201-250, never trained on), packed per language like
    the training text (``[BOS] + sentences`` separated by newlines, the last sequence of a language
    right-padded with the pad token): ``(tokens [n, context_size], languages)``."""
    import numpy as np

    from saesteer.paths import package_data

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    nl = list(tokenizer("\n", add_special_tokens=False)["input_ids"])
    seqs: list[list[int]] = []
    seq_langs: list[str] = []
    n_text = context_size - 1
    for lang in langs:
        path = package_data("corpus", "data", f"{lang}.txt")
        if not path.is_file():
            raise CorpusError(f"the bundled corpus file {path} is missing")
        stream: list[int] = []
        for line in path.read_text(encoding="utf-8").splitlines()[first_line - 1 : last_line]:
            stream += list(tokenizer(line, add_special_tokens=False)["input_ids"]) + nl
        for i in range(0, len(stream), n_text):
            chunk = stream[i : i + n_text]
            seqs.append([tokenizer.bos_token_id, *chunk] + [pad] * (n_text - len(chunk)))
            seq_langs.append(lang)
    return np.asarray(seqs, dtype=np.int64).reshape(len(seqs), context_size), seq_langs
