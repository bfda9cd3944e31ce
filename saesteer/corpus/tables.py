"""JSONL / CSV / Parquet files with a text column as a :class:`~saesteer.corpus.sources.TextSource`, and
:func:`text_source`, which picks a table or a plain-text source for a path."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from saesteer.corpus.sources import (
    Document,
    TextFileSource,
    TextSource,
    hash_files,
    number_documents,
    require_documents,
)
from saesteer.errors import CorpusError

TABLE_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet")


@dataclass(frozen=True)
class TableSource:
    """JSONL / CSV / Parquet with a text column (the format comes from the suffix unless ``fmt`` is given)."""

    path: Path
    column: str = "text"
    fmt: Literal["jsonl", "csv", "parquet"] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path).expanduser())
        if self.fmt is None:
            suffix = self.path.suffix.lower()
            fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}.get(suffix)
            if fmt is None:
                raise CorpusError(
                    f"{self.path}: unknown table format {suffix!r}; expected .jsonl, .csv or .parquet"
                )
            object.__setattr__(self, "fmt", fmt)

    def columns(self) -> list[str]:
        """The column names (JSONL: the keys of the first record)."""
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            try:
                return list(pq.ParquetFile(self.path).schema_arrow.names)
            except Exception as exc:  # pyarrow raises several types for a bad file
                raise CorpusError(f"{self.path} is not a readable Parquet file: {exc}") from exc
        if self.fmt == "csv":
            with self._text() as fh:
                header = next(csv.reader(fh), None)
            return list(header or [])
        for lineno, rec in self._json_records():
            del lineno
            return list(rec)
        return []

    def validate(self) -> None:
        if not self.path.is_file():
            raise CorpusError(f"no such file: {self.path}")
        cols = self.columns()
        if self.column not in cols:
            raise CorpusError(
                f"unknown column {self.column!r} in {self.path}; available columns: {', '.join(cols) or '(none)'}; "
                "pass --column NAME"
            )
        # every record is parsed here, not only the first: a bad line 2 fails before anything is written
        if not sum(1 for _ in self.documents()):
            require_documents(self, f"column {self.column!r} of {self.path}")

    def _text(self) -> io.TextIOWrapper:
        return self.path.open("r", encoding="utf-8", errors="strict", newline="")

    def _json_records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        lineno = 0
        try:
            with self._text() as fh:
                for line in fh:
                    lineno += 1
                    if not line.strip():
                        continue
                    rec = json.loads(line)
                    if not isinstance(rec, dict):
                        raise CorpusError(
                            f"{self.path} line {lineno}: expected a JSON object, got {type(rec).__name__}"
                        )
                    yield lineno, rec
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{self.path} line {lineno}: invalid JSON ({exc.msg})") from exc
        except UnicodeDecodeError as exc:
            raise CorpusError(
                f"undecodable text: {self.path} is not valid UTF-8 near line {lineno + 1}"
            ) from exc

    def _cell(self, value: Any, where: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise CorpusError(
                f"{self.path} {where}: column {self.column!r} holds {type(value).__name__}, not text"
            )
        return value

    def _texts(self) -> Iterator[str]:
        if self.fmt == "jsonl":
            for lineno, rec in self._json_records():
                if self.column not in rec:
                    raise CorpusError(
                        f"{self.path} line {lineno}: no column {self.column!r} (has {', '.join(rec)})"
                    )
                yield self._cell(rec[self.column], f"line {lineno}")
        elif self.fmt == "csv":
            try:
                with self._text() as fh:
                    reader = csv.DictReader(fh)
                    if self.column not in (reader.fieldnames or []):
                        raise CorpusError(f"unknown column {self.column!r} in {self.path}")
                    for row in reader:
                        yield self._cell(row[self.column], f"line {reader.line_num}")
            except UnicodeDecodeError as exc:
                raise CorpusError(f"undecodable text: {self.path} is not valid UTF-8 ({exc.reason})") from exc
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(self.path)
            field = pf.schema_arrow.field(self.column)
            if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
                raise CorpusError(f"{self.path}: column {self.column!r} has type {field.type}, not text")
            for batch in pf.iter_batches(columns=[self.column], batch_size=4096):
                for value in batch.column(0).to_pylist():
                    yield value or ""

    def documents(self) -> Iterator[Document]:
        return number_documents(self._texts())

    def describe(self) -> dict[str, Any]:
        return {"kind": self.fmt, "path": str(self.path.resolve()), "column": self.column}

    def content_hash(self) -> str:
        check = self.fmt != "parquet"
        return hash_files([self.path], self.path.parent, check_utf8=check) + f":{self.column}"

    def count(self) -> int | None:
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(self.path).metadata.num_rows)
        return None


def text_source(
    path: str | Path, *, column: str | None = None, per: Literal["line", "file"] | None = None
) -> TextSource:
    """The source for a path: a table for ``.jsonl/.csv/.parquet``, plain text otherwise."""
    p = Path(path).expanduser()
    if p.suffix.lower() in TABLE_SUFFIXES and not p.is_dir():
        return TableSource(p, column or "text")
    if column is not None:
        raise CorpusError(f"--column applies to .jsonl/.csv/.parquet files, not to plain text {p}")
    return TextFileSource(p, per)
