"""``saesteer auto``: steering vectors from any labelled table, end to end.

1. read and check the table (:func:`saesteer.corpus.labelled.load_labelled`): nothing is loaded or written
   when it is unusable;
2. index the train split, one condition per label, plus uniform random tokens (resumable: a second
   run with the same ``--out`` reuses the index);
3. per target label: contrastive features against the other labels with the random-token (LangFIR),
   dead, dense and BOS-only filters, top ``top_k``, ``mean_diff`` weights on raw decoder rows (the
   recipe measured to steer languages); and the DiffMean baseline from the same train texts;
4. a linear probe on the labels (train split, unsteered residuals at the SAE's hook;
   :mod:`saesteer.eval.probe`), its held-out accuracy reported;
5. per vector, a strength sweep (:func:`saesteer.steer.calibrate.sweep`): the probe's share of
   continuations on the target and the continuations' perplexity under the unsteered model, relative to
   unsteered continuations, and at most a quarter of them repetitive (:mod:`saesteer.steer.fluency`; loops
   have a low perplexity); the chosen strength is the best share within the fluency budget, the window
   runs from the weakest fluent strength reaching ``target_share`` to the strongest fluent one;
6. a report (``report.md``, ``report.json``, ``sweep.csv``), the vectors (native + lm-eval at the
   chosen strength).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from saesteer.models.loading import DEFAULT_MODEL

if TYPE_CHECKING:
    import pandas as pd

    from saesteer.corpus.labelled import LabelledData
    from saesteer.eval.probe import LinearProbe
    from saesteer.index.build import BuildProgress
    from saesteer.steer.vector import SteeringVector

log = logging.getLogger(__name__)
Say = Callable[[str], None]
METHODS = ("sae_features", "diffmean")


@dataclass(frozen=True)
class AutoConfig:
    """Settings of ``saesteer auto`` (the CLI flags mirror these fields)."""

    data: str
    label_column: str
    text_column: str = "text"
    targets: tuple[str, ...] = ()  # default: every label
    model: str = DEFAULT_MODEL
    sae: str = "default"
    out: Path = Path("auto_out")
    db: Path | None = None  # default: <out>/index.duckdb
    min_examples: int = 20  # per label, train split
    max_docs: int | None = None  # per label (train split) in the index
    n_random: int = 256
    random_len: int = 64
    top_k: int = 50
    weighting: str = "mean_diff"
    strengths: tuple[float, ...] = (0.03, 0.05, 0.08, 0.12, 0.2, 0.3)
    n_prompts: int = 8
    max_new_tokens: int = 24
    fluency_budget: float = 3.0  # perplexity <= budget x that of unsteered continuations
    fluency: str = "alone"  # perplexity of the continuation on its own (prompted: given its prompt)
    target_share: float = 0.8  # the window starts at the weakest fluent strength reaching this share
    search: tuple[float, float] | None = None  # (start, cap): coarse-then-bisect strength search instead of the grid
    batch_size: int = 8
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from saesteer.steer.vector import check_strength

        object.__setattr__(self, "strengths", tuple(check_strength(s, what="--strengths value") for s in self.strengths))


class AutoResult(NamedTuple):
    data: LabelledData
    db: Path
    build_id: str
    reused: list[str]  # index conditions a previous run had already built
    probe: LinearProbe
    vectors: dict[tuple[str, str], SteeringVector]  # (target, method) -> vector
    sweep: pd.DataFrame  # one row per (target, method, strength), strength 0 = unsteered
    summary: pd.DataFrame  # one row per (target, method)
    report: Path


def run_auto(cfg: AutoConfig, *, say: Say | None = None,
             on_build: Callable[[BuildProgress], None] | None = None) -> AutoResult:
    """Run the whole job (see the module docstring)."""
    import pandas as pd

    from saesteer.corpus import RandomTokens, bundled_prompts
    from saesteer.corpus.labelled import load_labelled
    from saesteer.eval.probe import train_probe
    from saesteer.index.build import BuildConfig, build_index
    from saesteer.models import load_model
    from saesteer.saes import load_sae
    from saesteer.steer.calibrate import sweep
    from saesteer.steer.generate import GenerationConfig, make_backend
    from saesteer.steer.residuals import typical_residual_norm

    def note(msg: str) -> None:
        log.info(msg)
        if say is not None:
            say(msg)

    data = load_labelled(cfg.data, cfg.label_column, text_column=cfg.text_column, targets=cfg.targets,
                         min_examples=cfg.min_examples)
    targets = list(cfg.targets or data.label_values)
    out = Path(cfg.out)
    db = Path(cfg.db) if cfg.db is not None else out / "index.duckdb"

    note(f"loading {cfg.model} and SAE {cfg.sae}")
    model = load_model(cfg.model)
    sae = load_sae(cfg.sae, model=model)
    hook = str(sae.cfg.metadata.hook_name)

    counts = data.counts()
    note(f"1/5 indexing {len(counts)} labels (train split) + random tokens into {db}")
    conds: list[Any] = list(data.conditions(cfg.max_docs))
    conds.append(RandomTokens("uniform", n_seqs=cfg.n_random, seq_len=cfg.random_len, seed=0))
    built = build_index(db, model, sae, conds, BuildConfig(), progress=on_build)

    note(f"2/5 training the probe on {cfg.label_column!r} at {hook}")
    probe = train_probe(model, hook, data.pairs("train"), data.pairs("heldout"))
    note(f"   held-out accuracy {probe.heldout_accuracy:.3f} ({probe.n_heldout} texts)")

    note("3/5 building vectors (SAE features, DiffMean)")
    norm = typical_residual_norm(model, hook)
    vectors: dict[tuple[str, str], SteeringVector] = {}
    for target in targets:
        vectors[(target, "sae_features")] = sae_vector(data, target, db, built.build_id, sae, model, norm, cfg)
        vectors[(target, "diffmean")] = diffmean_vector(data, target, model, hook, norm)

    note(f"4/5 calibrating strengths ({len(vectors)} vectors x {len(cfg.strengths)} strengths)")
    backend = make_backend(cfg.model)
    prompts = bundled_prompts()[: cfg.n_prompts]
    gcfg = GenerationConfig(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    rows: list[dict[str, Any]] = []
    for (target, method), vec in vectors.items():
        note(f"   {target}: {method}")
        res = sweep(backend, vec, prompts, cfg.strengths, probe.metric(model, target), cfg=gcfg,
                    max_ppl_ratio=cfg.fluency_budget, fluency=cfg.fluency, search=cfg.search,
                    target=cfg.target_share)
        for r in (res.baseline, *res.rows):
            rows.append({"target": target, "method": method, "strength": r.strength, "share": r.metric,
                         "ppl": r.perplexity, "ppl_ratio": r.ppl_ratio,
                         "repetitive": r.repetitive_share, "fluent": r.within_budget,
                         "example": r.examples[0] if r.examples else ""})
    curves = pd.DataFrame(rows)
    summary = summarize(curves, cfg.target_share)

    note("5/5 writing vectors and the report")
    from saesteer.eval.auto_report import write_auto_report
    from saesteer.steer.export import export_vector, save_vector

    for (target, method), vec in vectors.items():
        stem = f"{data.condition_label(target)}.{method}"
        save_vector(vec, out / "vectors" / f"{stem}.safetensors")
        pick = summary[(summary["target"] == target) & (summary["method"] == method)].iloc[0]
        if not math.isnan(pick["strength"]):
            export_vector(vec, out / "vectors" / f"{stem}.pt", "lm-eval", strength=float(pick["strength"]))
    report = write_auto_report(out, cfg=replace(cfg, db=db), data=data, build_id=built.build_id, probe=probe,
                               curves=curves, summary=summary, vectors=vectors)
    return AutoResult(data, db, built.build_id, built.skipped, probe, vectors, curves, summary, report)


def sae_vector(data: LabelledData, target: str, db: Path, build_id: str, sae: Any, model: Any, norm: float,
               cfg: AutoConfig) -> SteeringVector:
    """Top ``cfg.top_k`` contrastive features of ``target`` against the other labels, random-token /
    dead / dense / BOS-only filtered, ``cfg.weighting`` weights on the decoder rows."""
    from saesteer.select.search import Search
    from saesteer.select.weights import weigh
    from saesteer.steer.build import from_feature_set

    res = (Search(db, target=data.condition_label(target), against="rest", build_id=build_id)
           .drop_dead().drop_dense().drop_bos_only().drop_random().top(cfg.top_k).run())
    return from_feature_set(weigh(res.to_featureset(), cfg.weighting, db), sae, model, weighting=cfg.weighting,
                            typical_norm=norm, name=f"{data.condition_label(target)}.sae_features")


def diffmean_vector(data: LabelledData, target: str, model: Any, hook: str, norm: float) -> SteeringVector:
    """Mean residual of the target's train texts minus the mean over the other labels (each weighs the same)."""
    from saesteer.steer.baselines import diffmean

    others = {data.condition_label(lb): data.texts_for(lb, "train") for lb in data.label_values if lb != target}
    return diffmean(model, hook, data.texts_for(target, "train"), others, target=data.condition_label(target),
                    typical_norms={hook: norm}, source={"data": data.source, "split": "train"},
                    name=f"{data.condition_label(target)}.diffmean")


def summarize(curves: pd.DataFrame, target_share: float) -> pd.DataFrame:
    """Per (target, method): the unsteered share; the chosen strength (best share among the fluent
    strengths, the weaker one on a tie) with its share and perplexity ratio; the window."""
    import pandas as pd

    out = []
    for (target, method), grp in curves.groupby(["target", "method"], sort=False):
        base = grp[grp["strength"] == 0.0].iloc[0]
        steered = grp[grp["strength"] != 0.0]
        fluent = steered[steered["fluent"]]
        row: dict[str, Any] = {"target": target, "method": method, "unsteered_share": float(base["share"])}
        if len(fluent):
            pick = fluent.sort_values(["share", "strength"], ascending=[False, True]).iloc[0]
            row |= {"strength": float(pick["strength"]), "share": float(pick["share"]),
                    "ppl_ratio": float(pick["ppl_ratio"])}
        else:
            row |= {"strength": math.nan, "share": math.nan, "ppl_ratio": math.nan}
        on = fluent[fluent["share"] >= target_share]
        row["window_lo"] = float(on["strength"].min()) if len(on) else math.nan
        row["window_hi"] = float(fluent["strength"].max()) if len(on) else math.nan
        out.append(row)
    return pd.DataFrame(out)
