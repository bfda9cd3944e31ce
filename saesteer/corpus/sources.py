"""Text sources and labelled conditions.

A :class:`TextSource` yields :class:`Document` s (a stable integer id and the text) in a fixed order, and
has a content hash that changes exactly when the documents would. Blank documents are skipped; a
document's id is its 0-based index among the documents the source yields, so the same file always
gives the same ids (sharding and top examples rely on that).

Variants: :class:`TextFileSource` (a file or a directory of files, one document per line or per file),
:class:`ListSource` (texts in memory) and :class:`ConcatSource` (several conditions in a row) live here;
:class:`~saesteer.corpus.tables.TableSource` (JSONL / CSV / Parquet with a text column) and
:class:`~saesteer.corpus.hf.HFDatasetSource` (a ``datasets`` dataset) in their own modules.
:func:`saesteer.corpus.tables.text_source` picks the variant for a path.

A :class:`Condition` is a label (``key=value``, e.g. ``language=fr``) and a source.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, runtime_checkable

from saesteer.errors import CorpusError

if TYPE_CHECKING:
    from saesteer.corpus.random_tokens import RandomTokens

_READ_BLOCK = 1 << 20


class Document(NamedTuple):
    """One document: its stable id inside the source and its text."""

    doc_id: int
    text: str


@runtime_checkable
class TextSource(Protocol):
    """Anything that yields documents in a stable order."""

    def documents(self) -> Iterator[Document]:
        """The non-blank documents, ids 0, 1, 2, ... in a fixed order."""
        ...

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (recorded as the condition's provenance)."""
        ...

    def content_hash(self) -> str:
        """A hash that changes when the documents would; raises CorpusError on unreadable input."""
        ...

    def validate(self) -> None:
        """Cheap checks (exists, column present, not empty); raises CorpusError."""
        ...

    def count(self) -> int | None:
        """The number of documents if cheaply known (for progress bars), else None."""
        ...


def number_documents(texts: Iterable[str]) -> Iterator[Document]:
    i = 0
    for t in texts:
        if t.strip():
            yield Document(i, t)
            i += 1


def require_documents(source: TextSource, what: str) -> None:
    for _ in source.documents():
        return
    raise CorpusError(f"empty corpus: {what} holds no non-blank documents")


def hash_files(files: Sequence[Path], root: Path, *, check_utf8: bool) -> str:
    """sha256 over names and bytes; with ``check_utf8`` also a strict incremental UTF-8 check."""
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root) if f != root else f.name).encode())
        h.update(b"\0")
        dec = codecs.getincrementaldecoder("utf-8")("strict")
        offset = 0
        try:
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(_READ_BLOCK), b""):
                    h.update(block)
                    if check_utf8:
                        dec.decode(block)
                    offset += len(block)
                if check_utf8:
                    dec.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise CorpusError(
                f"undecodable text: {f} is not valid UTF-8 (byte {offset + exc.start}: {exc.reason}); "
                "re-encode it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
            ) from exc
        except OSError as exc:
            raise CorpusError(f"cannot read {f}: {exc}") from exc
    return h.hexdigest()


def _read_lines(path: Path) -> Iterator[str]:
    lineno = 0
    try:
        with path.open("r", encoding="utf-8", errors="strict", newline=None) as fh:
            for line in fh:
                lineno += 1
                yield line.rstrip("\n")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"undecodable text: {path} is not valid UTF-8 near line {lineno + 1} ({exc.reason})"
        ) from exc
    except OSError as exc:
        raise CorpusError(f"cannot read {path}: {exc}") from exc


@dataclass(frozen=True)
class TextFileSource:
    """Plain text: a file or a directory of files (sorted by path, hidden files skipped).

    ``per="line"``: one document per line; ``per="file"``: one document per file. The default is
    ``"line"`` for a single file and ``"file"`` for a directory. ``pattern`` selects files in a directory.
    """

    path: Path
    per: Literal["line", "file"] | None = None
    pattern: str = "*.txt"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).expanduser())
        if self.per not in (None, "line", "file"):
            raise CorpusError(f"per must be 'line' or 'file', not {self.per!r}")

    @property
    def mode(self) -> str:
        return self.per or ("file" if self.path.is_dir() else "line")

    def files(self) -> list[Path]:
        if self.path.is_dir():
            return sorted(
                p
                for p in self.path.rglob(self.pattern)
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.path).parts)
            )
        return [self.path]

    def validate(self) -> None:
        if not self.path.exists():
            raise CorpusError(f"no such file or directory: {self.path}")
        if self.path.is_dir() and not self.files():
            raise CorpusError(f"empty corpus: no {self.pattern} files in {self.path}")
        require_documents(self, str(self.path))

    def documents(self) -> Iterator[Document]:
        if self.mode == "line":
            return number_documents(line for f in self.files() for line in _read_lines(f))
        return number_documents(self._whole(f) for f in self.files())

    @staticmethod
    def _whole(f: Path) -> str:
        try:
            return f.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(
                f"undecodable text: {f} is not valid UTF-8 (byte {exc.start}: {exc.reason})"
            ) from exc

    def describe(self) -> dict[str, Any]:
        return {"kind": "text", "path": str(self.path.resolve()), "per": self.mode, "pattern": self.pattern}

    def content_hash(self) -> str:
        root = self.path if self.path.is_dir() else self.path.parent
        return hash_files(self.files(), root, check_utf8=True) + f":{self.mode}"

    def count(self) -> int | None:
        if self.mode == "file":
            return len(self.files())
        return None


@dataclass(frozen=True)
class ListSource:
    """Texts held in memory (bundled corpora, tests, notebooks)."""

    texts: tuple[str, ...]
    name: str = "list"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "texts", tuple(self.texts))
        for i, t in enumerate(self.texts):
            if not isinstance(t, str):
                raise CorpusError(f"{self.name}: item {i} is {type(t).__name__}, not text")

    def validate(self) -> None:
        require_documents(self, self.name)

    def documents(self) -> Iterator[Document]:
        return number_documents(self.texts)

    def describe(self) -> dict[str, Any]:
        return {"kind": "list", "name": self.name, **self.meta}

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for t in self.texts:
            h.update(t.encode("utf-8", errors="surrogatepass"))
            h.update(b"\0")
        return h.hexdigest()

    def count(self) -> int | None:
        return sum(1 for t in self.texts if t.strip())


def parse_label(label: str) -> tuple[str, str]:
    """Split ``key=value``; raises CorpusError on a malformed label. A comma is refused: condition lists
    (``--against fr,de``) are comma-separated, so such a label could never be named there."""
    key, sep, value = label.partition("=")
    if not sep or not key.strip() or not value.strip() or any(c.isspace() for c in label):
        raise CorpusError(
            f"condition label {label!r} must look like key=value without spaces, e.g. language=fr"
        )
    if "," in label:
        raise CorpusError(
            f"condition label {label!r} contains a comma, which --against and --random-cond use to separate "
            "conditions; use another character (e.g. topic=a_b)"
        )
    return key, value


@dataclass(frozen=True)
class Condition:
    """A labelled corpus. ``max_docs`` keeps the first documents of the source (before any sharding)."""

    label: str
    source: TextSource | RandomTokens
    max_docs: int | None = None

    def __post_init__(self) -> None:
        parse_label(self.label)
        if self.max_docs is not None and self.max_docs <= 0:
            raise CorpusError(f"{self.label}: max_docs must be positive, got {self.max_docs}")

    @property
    def key(self) -> str:
        return parse_label(self.label)[0]

    @property
    def value(self) -> str:
        return parse_label(self.label)[1]

    @property
    def is_random(self) -> bool:
        """A random-token baseline (:class:`~saesteer.corpus.random_tokens.RandomTokens` says so)."""
        return bool(getattr(self.source, "is_random", False))

    def validate(self) -> None:
        try:
            self.source.validate()
        except CorpusError as exc:
            raise CorpusError(f"condition {self.label}: {exc}") from exc

    def documents(self) -> Iterator[Document]:
        """The text documents (first ``max_docs``); not for random-token conditions."""
        if self.is_random:
            raise CorpusError(f"{self.label} is a random-token condition: it has token sequences, not texts")
        return islice(self.source.documents(), self.max_docs)

    def source_hash(self) -> str:
        try:
            base = self.source.content_hash()
        except CorpusError as exc:
            raise CorpusError(f"condition {self.label}: {exc}") from exc
        return hashlib.sha256(f"{base}|max_docs={self.max_docs}".encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {**self.source.describe(), "max_docs": self.max_docs}

    def count(self) -> int | None:
        n = self.source.count()
        if n is None:
            return self.max_docs
        return min(n, self.max_docs) if self.max_docs is not None else n


@dataclass(frozen=True)
class ConcatSource:
    """The documents of several text conditions one after the other (e.g. the reference corpus of the
    unigram random-token baseline: every text condition of a build)."""

    conditions: tuple[Condition, ...]
    name: str = "concat"

    def __post_init__(self) -> None:
        object.__setattr__(self, "conditions", tuple(self.conditions))
        if not self.conditions:
            raise CorpusError(f"{self.name}: no conditions to concatenate")

    def validate(self) -> None:
        for c in self.conditions:
            c.validate()

    def documents(self) -> Iterator[Document]:
        return number_documents(d.text for c in self.conditions for d in c.documents())

    def describe(self) -> dict[str, Any]:
        return {"kind": "concat", "name": self.name, "parts": [c.label for c in self.conditions]}

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for c in self.conditions:
            h.update(f"{c.label}:{c.source_hash()}\0".encode())
        return h.hexdigest()

    def count(self) -> int | None:
        counts = [c.count() for c in self.conditions]
        return None if any(n is None for n in counts) else sum(n for n in counts if n is not None)
