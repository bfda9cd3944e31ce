"""The ``samples.csv`` of ``saesteer eval language``: one row per continuation (language, method, strength,
prompt, text, token ids, language-ID verdict, perplexity, repetition, chrF, decoding). Written as each cell is
made (a run is resumable), read back by ``--samples`` (a report without generation)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from saesteer.eval.parallel import ParallelPrompt

log = logging.getLogger(__name__)
BASELINE_METHODS = ("unsteered", "native")  # the unsteered cells fluency is calibrated on


def cell_key(s: float) -> float:
    """A strength as cells are keyed by (6 significant digits: how ``samples.csv`` keeps it)."""
    return float(f"{s:.6g}")


def write_samples(df: pd.DataFrame, path: Path, *, append: bool = False) -> None:
    """Write (or append) continuations to a ``samples.csv``: every text field quoted, so a continuation holding
    a carriage return or another line break stays one row for any CSV reader."""
    import csv

    df.to_csv(path, mode="a" if append else "w", header=not (append and path.exists()), index=False,
              quoting=csv.QUOTE_NONNUMERIC)


def read_samples(path: str | Path) -> pd.DataFrame:
    """A ``samples.csv`` as written by :func:`write_samples` (also an older one, whose fields were quoted only
    where they held a newline: records end at a newline, a bare carriage return is text)."""
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"ids": str, "text": str},
                       lineterminator="\n")


def read_cells(path: Path | None, n: int, n_unsteered: int,
               repetition_penalty: float = 1.0) -> dict[tuple[str, str, float], pd.DataFrame]:
    """The cells an earlier run of the same settings already wrote to ``path`` (complete cells only; a
    samples table made with another repetition penalty is refused: its cells would mix two decodings)."""
    if path is None or not path.exists():
        return {}
    df = read_samples(path)
    made_with = decoding_penalty(df)
    if made_with != repetition_penalty:
        from saesteer.errors import CorpusError

        raise CorpusError(f"{path} was made with --repetition-penalty {made_with:g}, not {repetition_penalty:g}: "
                          "use another --out (or the same penalty)")
    df["ids"] = df["ids"].fillna("")
    df["text"] = df["text"].fillna("")
    out = {}
    for (lang, method, s), grp in df.groupby(["language", "method", "strength"], sort=False):
        if len(grp) == (n_unsteered if method in BASELINE_METHODS else n):
            out[(str(lang), str(method), cell_key(float(s)))] = grp.reset_index(drop=True)
    log.info("resuming: %d cells read from %s", len(out), path)
    return out


def decoding_penalty(samples: pd.DataFrame) -> float:
    """The repetition penalty a samples table was generated with (1.0 for tables older than the option);
    one-line error when its cells mix several."""
    if "repetition_penalty" not in samples.columns:
        return 1.0
    vals = {1.0 if v != v else float(v) for v in samples["repetition_penalty"]}  # NaN: rows of an older run
    if len(vals) > 1:
        from saesteer.errors import CorpusError

        raise CorpusError(f"the samples mix repetition penalties {sorted(vals)}: one table per decoding")
    return vals.pop() if vals else 1.0


def check_samples_corpus(samples: pd.DataFrame, prompts: Sequence[ParallelPrompt], corpus: str) -> None:
    """Refuse a samples table whose unsteered prompts are not ``prompts`` (the corpus's held-out prompts):
    re-summarising it under another corpus's name would mislabel the report."""
    from saesteer.errors import CorpusError

    if "prompt" not in samples.columns:
        return
    got = samples.loc[samples["method"] == "unsteered", "prompt"].fillna("").astype(str).tolist()
    want = [p.prompt for p in prompts[: len(got)]]
    if got != want:
        raise CorpusError(f"the samples' prompts are not the held-out prompts of the {corpus} corpus; "
                          "pass the --corpus they were made with")
