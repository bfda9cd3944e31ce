"""Assemble the quickstart and ``eval language`` reports (Markdown + HTML) from their results."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saesteer.eval.report import Report
from saesteer.paths import portable_path

if TYPE_CHECKING:
    import pandas as pd

    from saesteer.eval.language import LanguageEvalResult
    from saesteer.featureset import FeatureSet
    from saesteer.steer.generate import SideBySide


def add_evaluation(rep: Report, ev: LanguageEvalResult, budget: float) -> None:
    """Matched-fluency accuracy table, the curves, and the fluency/accuracy trade-off."""
    from saesteer.eval.language import accuracy_table
    from saesteer.eval.plots import accuracy_vs_strength, fluency_vs_accuracy

    n = int(ev.matched["n"].max()) if len(ev.matched) else 0
    rep.heading("Target-language accuracy at matched fluency")
    rep.text(
        f"{n} English prompts per cell, greedy decoding. Fluency = perplexity of the continuation on its own "
        "(after BOS, not after the English prompt, which would also charge the language switch itself) under the "
        f"unsteered model; unsteered median {ev.baseline_ppl:.1f}. Each vector method is read at the strength "
        f"with the best accuracy among those whose median perplexity stays within {budget:g}x the unsteered "
        "median. Spread: the standard "
        "error of the accuracy (binomial) and the perplexity IQR, in the tables below."
    )
    rep.table(accuracy_table(ev.matched), caption="accuracy (rows: target language; columns: method)", floatfmt=".2f")
    rep.table(ev.matched, caption="the matched points, with their spread", floatfmt=".3g")
    rep.figure(accuracy_vs_strength(ev.curves), "accuracy vs strength per method (thin: languages, bold: mean)")
    rep.figure(fluency_vs_accuracy(ev.curves, ev.baseline_ppl, budget), "fluency vs accuracy")
    rep.table(ev.curves, caption="every (language, method, strength)", floatfmt=".3g")


def add_ablation(rep: Report, ablation: pd.DataFrame) -> None:
    from saesteer.eval.ablation import diagonal_dominance
    from saesteer.eval.plots import ablation_heatmap

    rep.heading("Ablation matrix (LangFIR ablation)")
    dom = diagonal_dominance(ablation)
    rep.text(
        "Row L: language L's selected SAE features are set to 0 at the hook (encode, zero, decode, add the SAE's "
        "error back; for a vector without features, its direction is projected out); column M: the "
        "increase of the next-token cross-entropy (nats/token) on language M's held-out sentences. "
        f"The diagonal is the largest entry of its row for {dom:.0%} of the languages."
    )
    rep.figure(ablation_heatmap(ablation), "ΔCE when a language's features are ablated")
    rep.table(ablation.reset_index(), caption="ΔCE (nats/token)", floatfmt=".3f")


def write_quickstart_report(
    out: Path,
    *,
    cfg: Any,
    build_id: str,
    featuresets: Mapping[str, FeatureSet],
    dropped_random: Mapping[str, int],
    side_by_side: Mapping[str, Sequence[SideBySide]],
    exports: Sequence[Path],
    evaluation: LanguageEvalResult | None,
    ablation: pd.DataFrame | None,
    timings: Mapping[str, float] | None = None,
    pending: str = "",
) -> tuple[Path, Path]:
    """``timings``: wall seconds per stage so far; ``pending``: a line saying what is still running (the
    report is written once after the side by side and again at the end)."""
    import pandas as pd

    rep = Report("saesteer quickstart: language steering with SAE features")
    rep.text(f"Model {cfg.model}, SAE {cfg.sae}, index {portable_path(cfg.db, out)} (build {build_id}), "
             f"strength {cfg.strength:g}.")
    rep.heading("Selected features")
    rows = [{"language": lang, "n_features": len(fs), "dropped_by_random_filter": dropped_random.get(lang, 0),
             "features": ", ".join(str(f) for f in fs.features[:10]) + (" ..." if len(fs) > 10 else "")}
            for lang, fs in featuresets.items()]
    rep.table(pd.DataFrame(rows), caption="per language: top features after random-token and density filtering")
    rep.heading("Side by side (English prompts)")
    for lang, items in side_by_side.items():
        rep.table(pd.DataFrame([{"prompt": s.prompt, "unsteered": s.unsteered, f"steered → {lang}": s.steered}
                                for s in items]), caption=f"steered into {lang}")
    if pending:
        rep.text(f"*{pending}*")
    if evaluation is not None:
        add_evaluation(rep, evaluation, budget=cfg.fluency_budget)
    if ablation is not None:
        add_ablation(rep, ablation)
    rep.heading("Exported files")
    rep.code("\n".join(portable_path(p, out) for p in exports) or "(none)")
    if timings:
        rep.heading("Stage timings")
        rows = [{"stage": k, "seconds": round(v, 1)} for k, v in timings.items()]
        rows.append({"stage": "total (before writing this report)", "seconds": round(sum(timings.values()), 1)})
        rep.table(pd.DataFrame(rows), caption="wall time per stage (s)", floatfmt=".1f")
    return rep.write(out, "report")
