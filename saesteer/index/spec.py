"""The build spec: what ``saesteer index build`` takes as flags or as a small YAML/TOML file.

Example (YAML; the TOML spelling uses the same keys, with ``[[conditions]]`` tables)::

    model: gemma-3-270m
    sae: default
    hook: blocks.6.hook_resid_post      # default: the SAE's own hook
    db: features_db/index.duckdb
    bundled: true                       # or a list of language codes: [fr, de, en]
    corpus: udhr                        # a shipped parallel corpus (bundled | udhr), train split
    conditions:
      - {label: style=formal, path: corpora/formal.jsonl, column: text}
      - {label: language=fr, path: corpora/fr.txt}          # one document per line
      - {label: language=sw, hf: wikimedia/wikipedia, config: 20231101.sw, split: train,
         column: text, n_docs: 500, streaming: true}
    random: [uniform, unigram]
    n_random: 256
    random_len: 64
    seed: 0
    max_docs: 200
    max_seq_len: 128
    top_k: 10
    shard: 0/2

Relative paths in a spec file are resolved against the file's directory. Unknown keys are errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, cast

from saesteer.corpus.bundled import bundled_conditions
from saesteer.corpus.hf import HFDatasetSource
from saesteer.corpus.parallel import corpus_conditions
from saesteer.corpus.random_tokens import RandomTokens
from saesteer.corpus.sources import ConcatSource, Condition, parse_label
from saesteer.corpus.tables import text_source
from saesteer.errors import CorpusError, SaesteerError
from saesteer.index.build import BuildConfig
from saesteer.models.loading import DEFAULT_MODEL


class SpecError(SaesteerError):
    """A malformed build spec (file or flags)."""


@dataclass
class TextSpec:
    """A text condition: a file, a directory, or a .jsonl/.csv/.parquet table."""

    label: str
    path: str
    column: str | None = None
    per: str | None = None

    def condition(self, max_docs: int | None) -> Condition:
        per = cast(Literal["line", "file"] | None, self.per)
        return Condition(self.label, text_source(self.path, column=self.column, per=per), max_docs)


@dataclass
class HFSpec:
    """A Hugging Face dataset condition (hub name, or a local path)."""

    label: str
    dataset: str
    config: str | None = None
    split: str = "train"
    column: str = "text"
    n_docs: int | None = None
    streaming: bool = False

    def condition(self, max_docs: int | None) -> Condition:
        src = HFDatasetSource(self.dataset, self.config, self.split, self.column, self.streaming, self.n_docs)
        return Condition(self.label, src, max_docs)


@dataclass
class IndexSpec:
    """Everything ``index build`` needs: the model, SAE and hook, the conditions (:meth:`conditions` turns them
    into API objects) and the :class:`BuildConfig` (``build``)."""

    model: str = DEFAULT_MODEL
    sae: str = "default"
    hook: str | None = None
    allow_other_hook: bool = False  # use the SAE at `hook` although it was trained at another one
    db: str | None = None
    text: list[TextSpec] = field(default_factory=list)
    hf: list[HFSpec] = field(default_factory=list)
    bundled: bool | list[str] = False
    bundled_split: str = "train"
    corpus: str | None = None  # a shipped parallel corpus by name (``udhr``), all languages
    corpus_languages: list[str] | None = None
    corpus_split: str = "train"
    random: list[str] = field(default_factory=list)
    n_random: int = 256
    random_len: int = 64
    seed: int = 0
    random_reference: list[str] | None = None
    max_docs: int | None = None
    build: BuildConfig = field(default_factory=BuildConfig)
    """The build settings (threshold, top_k, max_seq_len, batch_size, shard, ...): one :class:`BuildConfig`,
    whose fields a spec file may also give at its top level (``top_k: 10``, ``shard: 0/2``)."""

    def conditions(self) -> list[Condition]:
        """Text conditions (``--text``, ``--hf``, bundled, ``--corpus``) then the random-token baselines."""
        conds = [t.condition(self.max_docs) for t in self.text] + [
            h.condition(self.max_docs) for h in self.hf
        ]
        if self.bundled:
            langs = None if self.bundled is True else list(cast(list[str], self.bundled))
            split = cast(Literal["train", "heldout", "all"], self.bundled_split)
            conds += [Condition(c.label, c.source, self.max_docs) for c in bundled_conditions(split, langs)]
        if self.corpus:
            split = cast(Literal["train", "heldout", "all"], self.corpus_split)
            named = corpus_conditions(self.corpus, split, self.corpus_languages)
            conds += [Condition(c.label, c.source, self.max_docs) for c in named]
        for kind in self.random:
            if kind not in ("uniform", "unigram"):
                raise SpecError(f"--random takes 'uniform' or 'unigram', not {kind!r}")
            reference = None
            if kind == "unigram":
                reference = self._reference(conds)
            rt = RandomTokens(
                cast(Literal["uniform", "unigram"], kind),
                self.n_random,
                self.random_len,
                self.seed,
                reference,
            )
            conds.append(rt.condition())
        if not conds:
            raise CorpusError(
                "no conditions: give --text, --hf, --bundled, --corpus and/or --random (or a --spec file)"
            )
        return conds

    def _reference(self, conds: list[Condition]) -> ConcatSource:
        texts = [c for c in conds if not c.is_random]
        if self.random_reference:
            by_label = {c.label: c for c in texts}
            unknown = [lb for lb in self.random_reference if lb not in by_label]
            if unknown:
                raise SpecError(f"random_reference names unknown condition(s) {', '.join(unknown)}")
            texts = [by_label[lb] for lb in self.random_reference]
        if not texts:
            raise SpecError(
                "random=unigram matches the token frequencies of the text conditions, but there are none"
            )
        return ConcatSource(tuple(texts), name="unigram-reference")

    def with_build(self, **changes: Any) -> IndexSpec:
        """This spec with some build settings replaced (``shard`` may be ``"i/n"``, ``exclude`` a list)."""
        return replace(self, build=replace(self.build, **build_changes(changes)))


BUILD_KEYS = frozenset(f.name for f in fields(BuildConfig))


def build_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """BuildConfig field values as a spec file or the CLI gives them: ``shard: "0/2"``, ``exclude: [bos]``."""
    out = dict(changes)
    if isinstance(out.get("shard"), (str, int)):
        out["shard"] = parse_shard(str(out["shard"]))
    if out.get("exclude") is not None:
        out["exclude"] = tuple(out["exclude"])
    return out


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``."""
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError as exc:
        raise SpecError(f"shard must look like i/n (e.g. 0/4), got {text!r}") from exc
    if n < 1 or not 0 <= i < n:
        raise SpecError(f"shard {text!r}: need 0 <= i < n")
    return i, n


def parse_text_flag(value: str, column: str | None = None, per: str | None = None) -> TextSpec:
    """``key=value=PATH`` (e.g. ``language=fr=corpora/fr.txt``)."""
    parts = value.split("=", 2)
    if len(parts) != 3 or not all(parts):
        raise SpecError(
            f"--text takes LABEL=PATH with LABEL like language=fr, e.g. language=fr=fr.txt; got {value!r}"
        )
    label = f"{parts[0]}={parts[1]}"
    parse_label(label)
    return TextSpec(label, parts[2], column, per)


def parse_hf_flag(
    value: str,
    *,
    split: str = "train",
    column: str | None = None,
    n_docs: int | None = None,
    streaming: bool = False,
) -> HFSpec:
    """``key=value=DATASET[:CONFIG]`` (e.g. ``language=sw=wikimedia/wikipedia:20231101.sw``)."""
    parts = value.split("=", 2)
    if len(parts) != 3 or not all(parts):
        raise SpecError(f"--hf takes LABEL=DATASET[:CONFIG] with LABEL like language=fr; got {value!r}")
    label = f"{parts[0]}={parts[1]}"
    parse_label(label)
    dataset, _, config = parts[2].partition(":")
    return HFSpec(label, dataset, config or None, split, column or "text", n_docs, streaming)


def load_spec_file(path: str | Path) -> IndexSpec:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) spec; relative paths are resolved against it."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise SpecError(f"no spec file {p}")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        elif p.suffix.lower() in (".yaml", ".yml", ".json"):
            import yaml

            data = yaml.safe_load(text) if p.suffix.lower() != ".json" else json.loads(text)
        else:
            raise SpecError(f"{p}: a spec file must be .yaml, .yml, .toml or .json")
    except SpecError:
        raise
    except Exception as exc:  # yaml/toml/json raise their own error types
        raise SpecError(f"cannot parse {p}: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{p}: the spec must be a mapping of keys to values")
    return spec_from_mapping(data, base=p.parent)


def spec_from_mapping(data: dict[str, Any], base: Path | None = None) -> IndexSpec:
    """Build an :class:`IndexSpec` from a parsed mapping (``conditions`` list entries have ``path`` or ``hf``)."""
    data = dict(data)
    known = ({f.name for f in fields(IndexSpec)} | BUILD_KEYS | {"conditions"}) - {"build"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"unknown spec key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    text: list[TextSpec] = []
    hf: list[HFSpec] = []
    for i, entry in enumerate(data.pop("conditions", None) or []):
        if not isinstance(entry, dict) or "label" not in entry:
            raise SpecError(f"conditions[{i}] must be a mapping with a label")
        entry = dict(entry)
        try:
            if "hf" in entry:
                entry["dataset"] = entry.pop("hf")
                if base is not None and (base / entry["dataset"]).exists():
                    entry["dataset"] = str(base / entry["dataset"])
                hf.append(HFSpec(**entry))
            elif "path" in entry:
                if base is not None:
                    entry["path"] = str(base / Path(entry["path"]).expanduser())
                text.append(TextSpec(**entry))
            else:
                raise SpecError(
                    f"conditions[{i}] ({entry['label']}) needs 'path' (a file) or 'hf' (a dataset)"
                )
        except TypeError as exc:
            raise SpecError(f"conditions[{i}] ({entry.get('label')}): {exc}") from exc
    if isinstance(data.get("random"), str):
        data["random"] = [data["random"]]
    build = {k: data.pop(k) for k in list(data) if k in BUILD_KEYS}
    if base is not None and data.get("db"):
        data["db"] = str(base / Path(data["db"]).expanduser())
    try:
        spec = IndexSpec(**data, build=BuildConfig(**build_changes(build)))
    except TypeError as exc:
        raise SpecError(f"bad spec: {exc}") from exc
    spec.text = text + spec.text
    spec.hf = hf + spec.hf
    return spec
