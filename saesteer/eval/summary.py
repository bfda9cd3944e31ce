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


def add_evaluation(rep: Report, ev: LanguageEvalResult, *, command: str | None = None,
                   main: Sequence[str] | None = None, corpus: str = "bundled") -> None:
    """The evaluation: targets per method (under both fluency references), the unsteered baselines fluency
    is calibrated on, per-language tables at the chosen points, the windows, the edge check, the curves and
    every cell. ``main``: the methods of the per-language tables (default: all); the others (recipe variants
    measured on a subset of the languages, e.g. by an earlier run into the same samples) are compared on the
    languages every method was measured on. ``corpus``: the shipped parallel corpus the prompts came from."""
    from saesteer.eval.language import method_table, native_baselines, targets_table
    from saesteer.eval.plots import accuracy_vs_strength, fluency_vs_accuracy
    from saesteer.eval.samples import decoding_penalty

    crit, every = ev.criteria, ev.windows
    main = [m for m in (main or list(dict.fromkeys(every["method"]))) if m in set(every["method"])]
    w = every[every["method"].isin(main)]
    n = int(w["n"].max()) if len(w) else 0
    primary = "native (per target language)" if ev.reference == "native" else "English"
    penalty = decoding_penalty(ev.samples)
    decoding = ("greedy decoding" if penalty == 1.0 else
                f"greedy decoding with repetition penalty {penalty:g} on the generated tokens (every cell, baselines included)")
    rep.heading("Language steering at fluency")
    rep.text(
        f"{n} prompts per cell, {decoding}: the first half of held-out English sentence i of the {corpus} "
        "parallel corpus (a plain prompt list has no chrF). Fluent = median perplexity within the budget and "
        "few continuations outside the unsteered repetition range; perplexity is that of the continuation on "
        "its own (after BOS) under the unsteered model, repetition is measured on its tokens (distinct-token "
        "share, repeated 3-gram rate). Two references: **English** = "
        f"{crit.describe()}, calibrated on the unsteered continuations of the English prompts; **native** = the "
        "same rule for each target language L, calibrated on the unsteered continuations of the first half of "
        "L's own held-out sentence i (same number of prompts and tokens; table below). The primary reference "
        f"(the strength search, the chosen points and every per-language table) is {primary}. "
        "Each vector's strength is searched "
        "(geometric until two strengths in a row are not fluent, down while the weakest strength tried is already "
        "on target, then bisection between the strongest fluent and the first broken strength, below the "
        "weakest strength on target, and below the chosen point while it is the weakest strength tried); the chosen point is the window's geometric centre (the fluent on-target "
        "strength closest in log-space to sqrt(weakest on target x strongest fluent)) and, where the target is "
        "not reached fluently, the best accuracy among the fluent strengths, the strongest on a tie (the most the "
        "method does while fluent; accuracy 0 when none is fluent). "
        "Window = strongest fluent strength / weakest fluent "
        "strength with accuracy >= the target. chrF (sacrebleu, 0-100): the continuation against the target "
        f"language's sentence i; the unsteered continuation against the English sentence i scores "
        f"{ev.baseline['chrf_vs_english']:.1f}. Spread: binomial standard error of the accuracy, standard "
        "error of the mean chrF, perplexity IQR (tables below)."
    )
    if command:
        rep.code(command)
    refs = [ev.reference, *[r for r in ("native", "english") if r != ev.reference]]
    for ref in refs:
        name = "native" if ref == "native" else "English"
        if ref == "native" and not ev.native:
            rep.text("No native baselines in these samples (an older run): fluency is judged against English only.")
            continue
        by_ref = ev.by_reference.get(ref, every)
        rep.table(targets_table(by_ref[by_ref["method"].isin(main)]),
                  caption=f"per method, fluent by the {name} reference{' (primary)' if ref == ev.reference else ''}: "
                  "languages at accuracy >= 0.8 while fluent, windows >= 2x, mean chrF, chosen points at the edge "
                  "of the strengths tried; all_targets: languages meeting the three per-language targets at once "
                  "(accuracy >= 0.8 while fluent, window >= 2x, chrF not below calibrated DiffMean's)",
                  floatfmt=".3g")
    if ev.native:
        rep.table(native_baselines(ev), caption="the unsteered baselines fluency is calibrated on (en: the English "
                  "prompts; native: each language's own prompts): median perplexity, its limit, the repetition "
                  "range, chrF against the language's sentence i", floatfmt=".3g")
    rep.text(edge_check(w))
    for col, cap, fmt in (("accuracy", "accuracy at the chosen point", ".2f"),
                          ("chrf", "chrF at the chosen point (vs the target sentence)", ".1f"),
                          ("window", "window (strongest fluent / weakest on target; nan: target not reached "
                           "fluently)", ".2f"),
                          ("ppl_median", "median perplexity at the chosen point", ".3g"),
                          ("repetitive_share", "share of repetitive continuations at the chosen point", ".2f")):
        rep.table(method_table(w, col), caption=f"{cap} (rows: target language; columns: method)", floatfmt=fmt)
    rep.table(w, caption="every (language, method): window and chosen point, with spreads", floatfmt=".3g")
    others = [m for m in dict.fromkeys(every["method"]) if m not in main]
    if others:
        per_lang = every.groupby("language")["method"].nunique()
        langs = sorted(per_lang[per_lang == every["method"].nunique()].index)
        sub = every[every["language"].isin(langs)]
        rep.heading("Recipe comparison")
        rep.text(f"Every recipe on the languages all of them were measured on ({', '.join(langs) or 'none'}), "
                 "with the same prompts, search and fluency criteria as above. Recipe syntax: "
                 "saesteer.eval.recipes (k: features; filter: random-token filter; w: weights; op: operator; "
                 "pos: positions).")
        rep.table(targets_table(sub), caption="per recipe, over those languages", floatfmt=".3g")
        rep.table(sub, caption="per (language, recipe): window and chosen point", floatfmt=".3g")
    rep.figure(accuracy_vs_strength(ev.curves), "accuracy vs strength per method (thin: languages, bold: mean)")
    rep.figure(fluency_vs_accuracy(ev.curves, ev.baseline_ppl, crit.budget), "fluency vs accuracy")
    rep.table(ev.curves, caption="every (language, method, strength) tried", floatfmt=".3g")


def edge_check(w: pd.DataFrame) -> str:
    """The report's edge check: how many chosen points sit at the edge of the strengths tried, and why."""
    from saesteer.eval.language import EDGE_REASONS

    edge = w[w["at_edge"]]
    if not len(edge):
        return "Edge check: no chosen point sits at the edge of the strengths tried."
    reasons = edge["edge"] if "edge" in edge else ["" for _ in range(len(edge))]
    groups: dict[str, list[str]] = {}
    for r, why in zip(edge.itertuples(), reasons, strict=True):
        groups.setdefault(str(why), []).append(f"{r.language}/{r.method}")
    parts = [f"{', '.join(items)} ({EDGE_REASONS.get(why, 'at the edge')})" for why, items in groups.items()]
    return (f"Edge check: {len(edge)} chosen point(s) at the edge of the strengths tried (or not fluent anywhere): "
            + "; ".join(parts) + ".")


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
             f"recipe {cfg.steer_recipe().name}, strength "
             + ", ".join(f"{lang} {cfg.strength_for(lang):g}" for lang in cfg.show) + ".")
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
        n_langs = len(set(evaluation.samples["language"]) - {"none"})
        rep.text(f"The evaluation below is a quick smoke view ({n_langs} language(s), "
                 f"{getattr(cfg, 'eval_prompts', '?')} prompts x {getattr(cfg, 'eval_max_new_tokens', '?')} tokens per "
                 "cell, a coarse strength search): `saesteer eval language` gives the real numbers "
                 "(docs/results/language_eval).")
        add_evaluation(rep, evaluation)
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
