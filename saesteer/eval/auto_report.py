"""The report of ``saesteer auto``: ``report.md`` (tables), ``report.json`` (the same numbers), ``sweep.csv``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from saesteer.auto import AutoConfig
    from saesteer.corpus.labelled import LabelledData
    from saesteer.eval.probe import LinearProbe
    from saesteer.steer.vector import SteeringVector


def _f(x: Any, fmt: str = ".2f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _window(lo: float, hi: float) -> str:
    return "—" if math.isnan(lo) else f"{lo:g}–{hi:g}"


def summary_table(summary: pd.DataFrame, probe_accuracy: float) -> str:
    """The headline Markdown table: one row per (target, method)."""
    lines = ["| target | method | probe held-out acc | unsteered share | strength | target share | ppl ratio | window |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary.to_dict("records"):
        lines.append(f"| {r['target']} | {r['method']} | {_f(probe_accuracy)} | {_f(r['unsteered_share'])} | "
                     f"{_f(r['strength'], 'g')} | {_f(r['share'])} | {_f(r['ppl_ratio'])} | "
                     f"{_window(r['window_lo'], r['window_hi'])} |")
    return "\n".join(lines)


def interaction_table(table: pd.DataFrame) -> str:
    """Markdown for :func:`saesteer.eval.interaction.interaction`'s table."""
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table.to_dict("records"):
        lines.append("| " + " | ".join(_f(v) if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(lines)


def write_auto_report(
    out: Path,
    *,
    cfg: AutoConfig,
    data: LabelledData,
    build_id: str,
    probe: LinearProbe,
    curves: pd.DataFrame,
    summary: pd.DataFrame,
    vectors: Mapping[tuple[str, str], SteeringVector],
    interaction: pd.DataFrame | None = None,
) -> Path:
    """Write the report files under ``out``; returns the Markdown path."""
    from saesteer.steer.export._common import atomic_target, write_json

    out.mkdir(parents=True, exist_ok=True)
    curves.to_csv(out / "sweep.csv", index=False)
    counts = data.counts()
    md = [
        f"# saesteer auto: {data.source}, label column `{data.label_column}`",
        "",
        f"Model `{cfg.model}`, SAE `{cfg.sae}` (hook `{probe.hook}`), index build `{build_id}` "
        f"(`{Path(cfg.db or 'index.duckdb').name}`, train split only). Strengths are in units of the typical "
        "residual norm at the hook.",
        "",
        "| label | train | held out |",
        "|---|---|---|",
        *[f"| {lb} | {c['train']} | {c['heldout']} |" for lb, c in counts.items()],
        "",
        "## Summary",
        "",
        f"Target share: the share of {cfg.n_prompts} continuations ({cfg.max_new_tokens} greedy tokens after "
        f"the bundled English prompts) that the linear probe (train split, mean-pooled unsteered residuals at "
        f"the hook; held-out accuracy {_f(probe.heldout_accuracy, '.3f')} on {probe.n_heldout} texts, train "
        f"{_f(probe.train_accuracy, '.3f')}) assigns to the target label. Fluency: perplexity of the "
        f"continuation ({cfg.fluency}) under the unsteered model, as a ratio to the unsteered continuations; "
        f"fluent = ratio <= {cfg.fluency_budget:g} and at most a quarter of the continuations repetitive (outside the "
        f"unsteered continuations' repetition range, saesteer.steer.fluency). Strength: the best share among the fluent strengths. "
        f"Window: weakest fluent strength with share >= {cfg.target_share:g} – strongest fluent strength.",
        "",
        summary_table(summary, probe.heldout_accuracy),
        "",
        "## Sweep",
        "",
        "| target | method | strength | share | ppl | ppl ratio | repetitive | fluent | example |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in curves.to_dict("records"):
        ex = str(r["example"]).replace("|", "\\|").replace("\n", " ")[:90]
        md.append(f"| {r['target']} | {r['method']} | {r['strength']:g} | {_f(r['share'])} | {_f(r['ppl'], '.1f')} "
                  f"| {_f(r['ppl_ratio'])} | {_f(r.get('repetitive', math.nan))} | {'yes' if r['fluent'] else 'no'} "
                  f"| {ex} |")
    if interaction is not None:
        md += ["", "## Two vectors at once", "", interaction_table(interaction)]
    md += ["", "## Vectors", "",
           "Native vectors and lm-evaluation-harness files (at the chosen strength) under `vectors/`:", ""]
    for (target, method), vec in vectors.items():
        n = len(vec.provenance.get("features", []))
        md.append(f"- `vectors/{data.condition_label(target)}.{method}.safetensors`" + (f" ({n} features)" if n else ""))
    md += ["", "```bash", f"lm_eval --model steered --model_args pretrained=MODEL,steer_path=vectors/"
           f"{data.condition_label(next(iter(vectors))[0])}.sae_features.pt --tasks TASK", "```", "",
           "## Settings", "", "```json", config_json(cfg), "```", ""]
    path = out / "report.md"
    with atomic_target(path) as tmp:
        tmp.write_text("\n".join(md), encoding="utf-8")
    write_json(out / "report.json", {
        "source": data.source, "label_column": data.label_column, "counts": counts, "build_id": build_id,
        "probe": {"hook": probe.hook, "classes": list(probe.classes), "heldout_accuracy": probe.heldout_accuracy,
                  "train_accuracy": probe.train_accuracy, "n_train": probe.n_train, "n_heldout": probe.n_heldout},
        "summary": json.loads(summary.to_json(orient="records")),
        "interaction": json.loads(interaction.to_json(orient="records")) if interaction is not None else None,
        "settings": json.loads(config_json(cfg)),
    })
    return path


def config_json(cfg: AutoConfig) -> str:
    """The settings as JSON, with the output folder as ``.`` and other paths by file name only (a report
    names files relative to itself, never by absolute path)."""
    out = Path(cfg.out).resolve()

    def rel(p: Path) -> str:
        p = Path(p).resolve()
        return "." if p == out else (str(p.relative_to(out)) if p.is_relative_to(out) else p.name)

    d = asdict(cfg)
    return json.dumps({k: rel(v) if isinstance(v, Path) else v for k, v in d.items()}, indent=2)
