"""Random-token baselines: uniform over the non-special vocabulary, or matching a corpus' unigram
frequencies. Seeded: the same (kind, count, length, seed, reference) gives the same sequences.

These are the baseline conditions of LangFIR-style filtering (drop features that also fire on random
tokens). Their condition labels are ``random=uniform`` / ``random=unigram``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from saesteer.corpus.sources import Condition
from saesteer.errors import CorpusError

if TYPE_CHECKING:
    import numpy as np

    from saesteer.corpus.sources import TextSource

Encode = Callable[[Sequence[str]], list[list[int]]]
_ENCODE_BATCH = 256


@dataclass(frozen=True)
class RandomTokens:
    """``n_seqs`` sequences of ``seq_len`` random tokens (a BOS is prepended when they are run)."""

    kind: Literal["uniform", "unigram"] = "uniform"
    n_seqs: int = 256
    seq_len: int = 64
    seed: int = 0
    reference: TextSource | None = None
    is_random: ClassVar[bool] = True  # what Condition.is_random reads

    def __post_init__(self) -> None:
        if self.kind not in ("uniform", "unigram"):
            raise CorpusError(f"random-token kind must be 'uniform' or 'unigram', not {self.kind!r}")

    @property
    def label(self) -> str:
        return f"random={self.kind}"

    def condition(self) -> Condition:
        return Condition(self.label, self)

    def validate(self) -> None:
        if self.n_seqs <= 0 or self.seq_len <= 0:
            raise CorpusError(
                f"{self.label}: n_seqs and seq_len must be positive (got {self.n_seqs}, {self.seq_len})"
            )
        if self.kind == "unigram":
            if self.reference is None:
                raise CorpusError(
                    "random=unigram needs a reference corpus whose token frequencies it matches"
                )
            self.reference.validate()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "random",
            "distribution": self.kind,
            "n_seqs": self.n_seqs,
            "seq_len": self.seq_len,
            "seed": self.seed,
            "reference": self.reference.describe() if self.reference is not None else None,
        }

    def content_hash(self) -> str:
        ref = self.reference.content_hash() if self.kind == "unigram" and self.reference is not None else None
        desc = {
            "distribution": self.kind,
            "n": self.n_seqs,
            "len": self.seq_len,
            "seed": self.seed,
            "ref": ref,
        }
        return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()

    def count(self) -> int | None:
        return self.n_seqs

    def documents(self) -> Iterator[Any]:
        raise CorpusError(f"{self.label} has token sequences, not texts")

    def unigram_distribution(self, allowed_ids: np.ndarray, encode: Encode) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, probs)``: the reference corpus' frequencies over ``allowed_ids`` (zero-count ids dropped)."""
        import numpy as np

        if self.reference is None:
            raise CorpusError("random=unigram needs a reference corpus")
        size = int(allowed_ids.max()) + 1 if len(allowed_ids) else 0
        counts = np.zeros(size, dtype=np.int64)
        batch: list[str] = []

        def flush() -> None:
            for ids in encode(batch):
                arr = np.asarray(ids, dtype=np.int64)
                arr = arr[(arr >= 0) & (arr < size)]
                counts[:] += np.bincount(arr, minlength=size)
            batch.clear()

        for doc in self.reference.documents():
            batch.append(doc.text)
            if len(batch) >= _ENCODE_BATCH:
                flush()
        if batch:
            flush()
        allowed = np.zeros(size, dtype=bool)
        allowed[allowed_ids] = True
        counts[~allowed] = 0
        ids = np.flatnonzero(counts)
        if not len(ids):
            raise CorpusError("random=unigram: the reference corpus has no (non-special) tokens")
        return ids, counts[ids] / counts[ids].sum()

    def sequences(
        self, allowed_ids: np.ndarray, encode: Encode | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """``(doc_id, token_ids [seq_len])`` for every sequence, in order, without BOS."""
        import numpy as np

        if not len(allowed_ids):
            raise CorpusError(f"{self.label}: the tokenizer has no non-special tokens to sample")
        rng = np.random.default_rng(self.seed)
        if self.kind == "uniform":
            for i in range(self.n_seqs):
                yield i, allowed_ids[rng.integers(0, len(allowed_ids), self.seq_len)]
            return
        if encode is None:
            raise CorpusError("random=unigram needs the tokenizer to count the reference corpus")
        ids, probs = self.unigram_distribution(allowed_ids, encode)
        cdf = np.cumsum(probs)
        cdf[-1] = 1.0
        for i in range(self.n_seqs):
            yield (
                i,
                ids[np.minimum(np.searchsorted(cdf, rng.random(self.seq_len), side="right"), len(ids) - 1)],
            )
