"""Labelled tables: texts with a label column (and optionally a split column), checked for what
``saesteer auto`` needs, with a train / held-out split.

Sources: a JSONL / CSV / Parquet file, a shipped set by name (``formality``: formal vs casual English
sentences written for this project, 200 per label, 160 train + 40 held out), or a Hugging Face dataset
by name (from the local cache when offline). The split comes from a ``split`` column when the table has
one (``train``; ``test`` / ``heldout`` / ``validation`` are held out), from the dataset's own splits for
a Hugging Face dataset, else every fifth row of each label is held out (deterministic).

Every check fails with one line naming what is wrong, before anything is computed or written.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from saesteer.corpus.sources import Condition, ListSource
from saesteer.errors import CorpusError

SHIPPED = {"formality": "formality.jsonl"}
HELDOUT_NAMES = frozenset({"test", "heldout", "held_out", "held-out", "validation", "valid", "dev"})
DEFAULT_MIN_EXAMPLES = 20
_UNSAFE = re.compile(r"[^\w.-]+")


def shipped_path(name: str) -> Path:
    """The file of a shipped labelled set (``formality``)."""
    if name not in SHIPPED:
        raise CorpusError(f"no shipped labelled set {name!r}; shipped: {', '.join(SHIPPED)}")
    return Path(str(resources.files("saesteer.corpus") / "data" / SHIPPED[name]))


def condition_part(value: str) -> str:
    """``value`` made safe for a condition label (``key=value``, no spaces)."""
    return _UNSAFE.sub("_", value.strip()) or "_"


@dataclass(frozen=True)
class LabelledData:
    """Texts, their labels and their split (``train`` or ``heldout``), in table order."""

    source: str
    label_column: str
    text_column: str
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    splits: tuple[str, ...]

    @property
    def label_values(self) -> list[str]:
        return sorted(set(self.labels))

    @property
    def key(self) -> str:
        """The condition key: the label column's name, made safe."""
        return condition_part(self.label_column)

    def condition_label(self, value: str) -> str:
        return f"{self.key}={condition_part(value)}"

    def texts_for(self, label: str | None = None, split: str = "train") -> list[str]:
        return [t for t, lb, s in zip(self.texts, self.labels, self.splits, strict=True)
                if s == split and (label is None or lb == label)]

    def pairs(self, split: str) -> tuple[list[str], list[str]]:
        """``(texts, labels)`` of one split."""
        rows = [(t, lb) for t, lb, s in zip(self.texts, self.labels, self.splits, strict=True) if s == split]
        return [t for t, _ in rows], [lb for _, lb in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{label: {"train": n, "heldout": n}}``."""
        out: dict[str, dict[str, int]] = {lb: {"train": 0, "heldout": 0} for lb in self.label_values}
        for lb, s in zip(self.labels, self.splits, strict=True):
            out[lb][s] += 1
        return out

    def conditions(self, max_docs: int | None = None) -> list[Condition]:
        """One index condition per label (``<label column>=<value>``) on the train split only."""
        return [
            Condition(self.condition_label(lb),
                      ListSource(tuple(self.texts_for(lb, "train")), name=f"{self.source}:{lb}",
                                 meta={"label_column": self.label_column, "label": lb, "split": "train"}),
                      max_docs=max_docs)
            for lb in self.label_values
        ]


def _read_table(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True, dtype=False)
        if suffix == ".csv":
            return pd.read_csv(path, dtype=object, keep_default_na=True)
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a bad file
        raise CorpusError(f"{path} is not a readable {suffix[1:]} table: {exc}") from exc
    raise CorpusError(f"{path}: unknown table format {suffix!r}; expected .jsonl, .csv or .parquet")


def _read_hf(name: str) -> tuple[Any, str | None]:
    """A Hugging Face dataset as one DataFrame with a ``__split__`` column (train / heldout)."""
    import pandas as pd

    try:
        from datasets import load_dataset

        ds = load_dataset(name)
    except Exception as exc:  # offline and not cached, unknown name, ...
        raise CorpusError(
            f"{name!r} is neither a file, a shipped set ({', '.join(SHIPPED)}) nor a loadable Hugging Face "
            f"dataset: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc
    if "train" not in ds:
        raise CorpusError(f"Hugging Face dataset {name!r} has no train split (splits: {', '.join(ds)})")
    frames = [ds["train"].to_pandas().assign(__split__="train")]
    held = next((s for s in ds if s in HELDOUT_NAMES), None)
    if held is not None:
        frames.append(ds[held].to_pandas().assign(__split__="heldout"))
    return pd.concat(frames, ignore_index=True), "__split__" if held is not None else None


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def load_labelled(
    source: str | Path,
    label_column: str,
    *,
    text_column: str = "text",
    split_column: str = "split",
    targets: tuple[str, ...] | list[str] = (),
    min_examples: int = DEFAULT_MIN_EXAMPLES,
    heldout_every: int = 5,
) -> LabelledData:
    """Read and check a labelled table (see the module docstring). ``min_examples``: per label, in the
    train split."""
    src = str(source)
    path = Path(src).expanduser()
    split_col: str | None
    if src in SHIPPED and not path.exists():
        path = shipped_path(src)
    if path.is_file():
        df = _read_table(path)
        split_col = split_column if split_column in df.columns else None
        shown = path.name if src in SHIPPED else src
    elif path.suffix.lower() in (".jsonl", ".ndjson", ".csv", ".parquet"):
        raise CorpusError(f"no such file: {src}")
    else:
        df, split_col = _read_hf(src)
        shown = src
    cols = [str(c) for c in df.columns]
    for what, col in (("label", label_column), ("text", text_column)):
        if col not in cols:
            raise CorpusError(f"no {what} column {col!r} in {shown}; columns: {', '.join(cols) or '(none)'}")
    texts = list(df[text_column])
    bad = [i for i, t in enumerate(texts) if not _is_text(t)]
    if bad:
        raise CorpusError(
            f"text column {text_column!r} of {shown} has {len(bad)} non-text or empty value(s) "
            f"(first at row {bad[0]}: {texts[bad[0]]!r})"
        )
    raw_labels = list(df[label_column])
    missing = [i for i, v in enumerate(raw_labels) if v is None or (isinstance(v, float) and v != v)]
    if missing:
        raise CorpusError(f"label column {label_column!r} of {shown} is empty in {len(missing)} row(s) "
                          f"(first at row {missing[0]})")
    labels = [str(v) for v in raw_labels]
    values = sorted(set(labels))
    if len(values) < 2:
        raise CorpusError(
            f"label column {label_column!r} of {shown} has one label only ({values[0]!r}); "
            "contrastive selection needs at least two"
        )
    safe = Counter(condition_part(v) for v in values)
    clash = sorted(v for v in values if safe[condition_part(v)] > 1)
    if clash:
        raise CorpusError(f"labels {', '.join(map(repr, clash))} differ only in spaces/punctuation; rename them")
    unknown = [t for t in targets if t not in values]
    if unknown:
        raise CorpusError(f"target {unknown[0]!r} is not a label in column {label_column!r}; "
                          f"labels: {', '.join(values)}")
    splits = _splits(df, split_col, labels, shown, heldout_every)
    data = LabelledData(shown, label_column, text_column, tuple(str(t) for t in texts), tuple(labels), tuple(splits))
    counts = data.counts()
    few = [f"{lb!r} has {c['train']}" for lb, c in counts.items() if c["train"] < min_examples]
    if few:
        raise CorpusError(f"too few training examples (at least {min_examples} per label): {'; '.join(few)}")
    return data


def _splits(df: Any, split_col: str | None, labels: list[str], shown: str, every: int) -> list[str]:
    if split_col is not None:
        out = []
        for i, v in enumerate(df[split_col]):
            s = str(v).strip().lower()
            if s == "train":
                out.append("train")
            elif s in HELDOUT_NAMES:
                out.append("heldout")
            else:
                raise CorpusError(f"split column {split_col!r} of {shown}: row {i} is {v!r}; "
                                  f"expected train or one of {', '.join(sorted(HELDOUT_NAMES))}")
        return out
    seen: Counter[str] = Counter()
    out = []
    for lb in labels:
        seen[lb] += 1
        out.append("heldout" if every > 1 and seen[lb] % every == 0 else "train")
    return out
