"""Hugging Face ``datasets`` (hub name or local path) as a :class:`~saesteer.corpus.sources.TextSource`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from saesteer.corpus.sources import Document, number_documents, require_documents
from saesteer.errors import CorpusError


@dataclass(frozen=True)
class HFDatasetSource:
    """A Hugging Face ``datasets`` dataset: a hub name (needs the local cache offline) or a local path
    (a ``save_to_disk`` directory, or a directory/file ``load_dataset`` understands).

    ``n`` keeps the first ``n`` non-blank documents; ``streaming`` avoids materialising the dataset.
    """

    name: str
    config: str | None = None
    split: str = "train"
    column: str = "text"
    streaming: bool = False
    n: int | None = None

    def _load(self) -> Any:
        import datasets

        path = Path(self.name).expanduser()
        try:
            if path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists()):
                ds = datasets.load_from_disk(str(path))
                if isinstance(ds, datasets.DatasetDict):
                    if self.split not in ds:
                        raise CorpusError(f"{path} has no split {self.split!r}; splits: {', '.join(ds)}")
                    ds = ds[self.split]
                if self.streaming:
                    ds = ds.to_iterable_dataset()
                return ds
            return datasets.load_dataset(self.name, self.config, split=self.split, streaming=self.streaming)
        except CorpusError:
            raise
        except (FileNotFoundError, ValueError, ConnectionError, OSError) as exc:
            raise CorpusError(
                f"cannot load dataset {self.name!r} (config {self.config!r}, split {self.split!r}): {exc}. "
                "Offline, a hub dataset must already be in the local Hugging Face cache; or pass a local path."
            ) from exc

    def _column_names(self, ds: Any) -> list[str]:
        names = getattr(ds, "column_names", None)
        if names:
            return list(names)
        first = next(iter(ds), None)
        return list(first) if first else []

    def validate(self) -> None:
        if self.n is not None and self.n <= 0:
            raise CorpusError(f"n must be positive, got {self.n}")
        ds = self._load()
        cols = self._column_names(ds)
        if self.column not in cols:
            raise CorpusError(
                f"unknown column {self.column!r} in dataset {self.name!r}; available columns: {', '.join(cols)}"
            )
        require_documents(self, f"dataset {self.name!r} split {self.split!r}")

    def documents(self) -> Iterator[Document]:
        ds = self._load()
        names = getattr(ds, "column_names", None)
        if names is not None and self.column not in names:
            raise CorpusError(
                f"unknown column {self.column!r} in dataset {self.name!r}; available: {', '.join(names)}"
            )
        texts = (self._cell(row) for row in ds.select_columns([self.column]))
        return islice(number_documents(texts), self.n)

    def _cell(self, row: dict[str, Any]) -> str:
        value = row.get(self.column)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise CorpusError(
                f"dataset {self.name!r}: column {self.column!r} holds {type(value).__name__}, not text"
            )
        return value

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "hf",
            "name": self.name,
            "config": self.config,
            "split": self.split,
            "column": self.column,
            "streaming": self.streaming,
            "n": self.n,
        }

    def content_hash(self) -> str:
        desc = json.dumps(self.describe(), sort_keys=True)
        fingerprint = ""
        if not self.streaming:
            fingerprint = str(getattr(self._load(), "_fingerprint", "") or "")
        return hashlib.sha256((desc + fingerprint).encode()).hexdigest()

    def count(self) -> int | None:
        if self.streaming:
            return self.n
        try:
            total = len(self._load())
        except TypeError:
            return self.n
        return min(total, self.n) if self.n is not None else total
