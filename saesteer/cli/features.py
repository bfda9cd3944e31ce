"""``saesteer features ...``: search the index, show a feature, features on a text, decoder neighbours."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from saesteer.cli.common import (
    AllowOtherHookOpt,
    BuildOpt,
    CsvOpt,
    DbOpt,
    HookOpt,
    JsonOpt,
    ModelOpt,
    SaeOpt,
    console,
    emit,
    emit_json,
    resolve_db,
)
from saesteer.cli.features_selective import selective
from saesteer.models.loading import DEFAULT_MODEL

app = typer.Typer(help="Find the features that matter for a condition, and see why.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the ``features`` group to the root app."""
    root.add_typer(app, name="features")

SPARK = "▁▂▃▄▅▆▇█"
SCORE_LABELS = {
    "log_odds_z": "z",
    "log_odds": "log-odds",
    "nu": "ν",
    "smd": "d",
    "auroc": "AUROC",
    "entropy": "H",
    "freq_diff": "Δf",
    "freq_ratio": "f ratio",
}


def sparkline(values: Any, vmax: float | None = None) -> str:
    """One block character per value, scaled to ``vmax`` (default: the maximum); blank for 0."""
    vals = [float(v) for v in values]
    top = vmax if vmax is not None else max(vals, default=0.0)
    if top <= 0:
        return " " * len(vals)
    return "".join(
        " " if v <= 0 else SPARK[min(int(v / top * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)] for v in vals
    )


def compact_hists(
    hists: list[Any], edges: list[float], width: int = 16
) -> tuple[list[list[int]], float, float]:
    """Cut histograms (one per condition, same bins) to the bins any of them uses, then merge neighbouring
    bins until at most ``width`` remain. Returns the histograms and the range of edges they cover."""
    rows = [[int(x) for x in h] for h in hists]
    n = max((len(r) for r in rows), default=0)
    used = [i for i in range(n) if any(i < len(r) and r[i] for r in rows)]
    if not used or len(edges) < n + 1:
        return [r or [0] for r in rows], (edges[0] if edges else 0.0), (edges[-1] if edges else 0.0)
    a, b = used[0], used[-1] + 1
    step = -(-(b - a) // width)
    out = [[sum(r[i : min(i + step, b)]) for i in range(a, b, step)] for r in rows]
    return out, edges[a], edges[b]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.1e}"
    return str(v)


def _short(cond: str) -> str:
    return cond.partition("=")[2] or cond


@app.command()
def search(
    target: Annotated[str, typer.Option("--target", "-t", help="Target condition, e.g. language=fr.")],
    against: Annotated[
        str, typer.Option("--against", help="'rest', 'all', or comma-separated conditions.")
    ] = "rest",
    drop_random: Annotated[
        bool, typer.Option("--drop-random", help="Drop features active on random tokens (LangFIR).")
    ] = False,
    random_max_freq: Annotated[
        float | None, typer.Option(help="Random filter: absolute max frequency on random tokens.")
    ] = None,
    random_max_mean: Annotated[
        float | None, typer.Option(help="Random filter: absolute max mean activation on random tokens.")
    ] = None,
    random_rel: Annotated[
        float | None,
        typer.Option(help="Random filter: max random frequency as a fraction of the target's (default 0.2)."),
    ] = None,
    random_cond: Annotated[
        list[str] | None, typer.Option("--random-cond", help="Random conditions to use (default: all).")
    ] = None,
    drop_dead: Annotated[
        int | None,
        typer.Option("--drop-dead", help="Drop features active on fewer than N tokens in the build."),
    ] = None,
    drop_dense: Annotated[
        float | None,
        typer.Option("--drop-dense", help="Drop features above this frequency on every condition."),
    ] = None,
    drop_bos: Annotated[
        bool, typer.Option("--drop-bos", help="Drop features that fire (almost) only on BOS.")
    ] = False,
    min_freq: Annotated[
        float | None, typer.Option("--min-freq", help="Minimum activation frequency on the target.")
    ] = None,
    min_ratio: Annotated[
        float | None,
        typer.Option(
            "--min-ratio", help="Keep features at least this many times as frequent on the target as on any contrast."
        ),
    ] = None,
    rank_by: Annotated[
        str,
        typer.Option(
            "--rank-by", help="log_odds_z, log_odds, freq_diff, freq_ratio, nu, entropy, smd, auroc."
        ),
    ] = "log_odds_z",
    top: Annotated[int, typer.Option("--top", "-k", help="How many features.")] = 20,
    output_score: Annotated[
        bool,
        typer.Option(
            "--output-score", help="Load the model and score the logit lens on the target's tokens."
        ),
    ] = False,
    min_output_mass: Annotated[
        float | None, typer.Option(help="With --output-score: drop features under this target-token mass.")
    ] = None,
    rerank_output: Annotated[
        bool, typer.Option(help="With --output-score: rank by the target-token mass.")
    ] = False,
    save: Annotated[
        Path | None, typer.Option("--save", help="Write the result as a FeatureSet JSON (for `steer build`).")
    ] = None,
    weights: Annotated[
        str, typer.Option(help="FeatureSet weights: uniform, mean, score, mean_act or mean_diff (read from the index).")
    ] = "uniform",
    show_sql: Annotated[
        bool, typer.Option("--show-sql", help="Print the compiled SQL and its parameters to stderr.")
    ] = False,
    build: BuildOpt = None,
    db: DbOpt = None,
    model: ModelOpt = DEFAULT_MODEL,
    sae: SaeOpt = "default",
    hook: HookOpt = None,
    allow_other_hook: AllowOtherHookOpt = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Rank the features of TARGET against other conditions, after filters; say what each filter removed."""
    from saesteer.select.search import Search

    s = Search(resolve_db(db), target=target, against=against, build_id=build)
    if (
        drop_random
        or any(v is not None for v in (random_max_freq, random_max_mean, random_rel))
        or random_cond
    ):
        s = s.drop_random(random_max_freq, random_max_mean, random_rel, conditions=random_cond or None)
    if drop_dead is not None:
        s = s.drop_dead(drop_dead)
    if drop_dense is not None:
        s = s.drop_dense(drop_dense)
    if drop_bos:
        s = s.drop_bos_only()
    if min_freq is not None:
        s = s.min_freq(min_freq)
    if min_ratio is not None:
        s = s.min_ratio(min_ratio)
    s = s.rank_by(rank_by).top(top)
    if output_score or min_output_mass is not None or rerank_output:
        from saesteer.models import load_model
        from saesteer.saes import load_sae

        with console.status("loading the model for output scores ..."):
            m = load_model(model)
            sm = load_sae(sae, model=m, hook_name=hook, allow_other_hook=allow_other_hook)
        s = s.output_score(m, sm, min_mass=min_output_mass, rerank=rerank_output)
    if show_sql:
        from saesteer.cli.common import err_console

        compiled = s.compile()
        err_console.print(compiled.sql, markup=False, highlight=False)
        err_console.print(f"parameters: {compiled.params}", markup=False, highlight=False)
    res = s.run()
    if save is not None:
        res.to_featureset(weights=weights).save(save)  # type: ignore[arg-type]
    if as_json:
        emit_json(
            {
                "target": res.target,
                "contrast": res.contrast,
                "random": res.random,
                "build_id": res.build.build_id,
                "build": res.build_note,
                "rank_by": res.rank_by,
                "dropped": res.dropped,
                "n_universe": res.n_universe,
                "n_kept": res.n_kept,
                "features": res.df.to_dict(orient="records"),
            }
        )
        return
    if as_csv:
        emit(res.df, as_csv=True)
        return
    _render_search(res)
    if save is not None:
        console.print(f"saved the feature set to {save}")


def _render_search(res: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    df = res.df
    conds = [c for c in res.detail.conditions] if res.detail is not None else []
    t_idx = conds.index(res.target) if res.target in conds else -1
    order = " ".join(_short(c) for c in conds)
    table = Table(
        title=f"features for {res.target} vs {_against(res)}, by {res.rank_by}",
        caption=f"freq by condition: {order}",
        caption_justify="left",
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("feature", justify="right", style="bold cyan", no_wrap=True)
    w = console.width
    extra = (
        [] if w < 110 else (["nu", "auroc"] if w < 140 else ["log_odds_z", "nu", "smd", "auroc", "entropy"])
    )
    score_cols = [res.rank_by] + [c for c in extra if c != res.rank_by and c in df.columns]
    for c in score_cols:
        table.add_column(
            SCORE_LABELS.get(c, c), justify="right", style="bold" if c == res.rank_by else None, no_wrap=True
        )
    for c in ("f tgt", "f other", "f rnd"):
        table.add_column(c, justify="right", no_wrap=True)
    table.add_column("by cond", no_wrap=True, min_width=len(conds))
    if "output_mass" in df.columns:
        table.add_column("out mass", justify="right", no_wrap=True)
    table.add_column("top tokens", overflow="fold", ratio=1)
    freq_cols = [f"freq[{c}]" for c in conds]
    for rec in df.to_dict(orient="records"):
        freqs = [rec[c] for c in freq_cols]
        spark = Text()
        for j, ch in enumerate(sparkline(freqs)):
            spark.append(ch, style="bold red" if j == t_idx else ("dim" if conds[j] in res.random else ""))
        other = f"{_fmt(rec['f_contrast_max'])} {_short(rec['max_contrast'] or '')}"
        row: list[Any] = [
            str(rec["rank"]),
            str(rec["feature"]),
            *[_fmt(rec[c]) for c in score_cols],
            _fmt(rec["f_target"]),
            other,
            _fmt(rec["f_random"]),
            spark,
        ]
        if "output_mass" in df.columns:
            row.append(_fmt(rec["output_mass"]))
        toks = rec["output_tokens"] if "output_tokens" in df.columns else rec["top_tokens"]
        row.append(" ".join(repr(str(t))[1:-1] for t in list(toks)[:5]) if toks is not None else "")
        table.add_row(*row)
    console.print(table)
    console.print(
        f"build {res.build.build_id} ({res.build_note}); {res.n_kept} of {res.n_universe} features passed the filters"
    )
    for desc, n in res.dropped.items():
        console.print(f"  - {n:>9,}  {desc}", highlight=False)


def _against(res: Any) -> str:
    if len(res.contrast) <= 2:
        return ", ".join(res.contrast)
    return f"{len(res.contrast)} conditions"


@app.command(context_settings={"ignore_unknown_options": True})  # `show -1`: an id, refused clearly
def show(
    feature: Annotated[int, typer.Argument(help="Feature id.")],
    examples: Annotated[int, typer.Option("--examples", "-n", help="How many top examples.")] = 10,
    build: BuildOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Statistics per condition, a histogram sparkline, the top examples in context and the top output tokens."""
    from saesteer.index.db import IndexDb
    from saesteer.select.inspect import feature_report

    with IndexDb(resolve_db(db), read_only=True) as con:
        rep = feature_report(con, feature, build_id=build, n_examples=examples)
    if as_json:
        emit_json(rep.to_dict())
        return
    if as_csv:
        emit(rep.stats, as_csv=True)
        return
    _render_show(rep)


def _render_show(rep: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    from saesteer.select.inspect import context_text

    console.print(
        f"[bold]feature {rep.feature}[/] - build {rep.build.build_id} ({rep.build_note}), "
        f"{rep.build.sae_id} @ {rep.build.hook_name}"
    )
    if rep.never_active:
        console.print("[yellow]never active in any condition of this build (dead)[/]")
    hists, lo, hi = compact_hists(list(rep.stats["hist"]), list(rep.hist_edges))
    t = Table(
        title="per condition",
        caption=f"histogram of positive activations, log bins {lo:.3g}..{hi:.3g}",
        caption_justify="left",
    )
    wide = console.width >= 110
    cols = [
        ("condition", "condition"),
        ("n_active", "n_active"),
        ("freq", "freq"),
        ("doc_freq", "doc freq"),
        ("mean", "mean"),
        ("mean_active", "mean|active"),
        ("max", "max"),
        ("bos_freq", "BOS freq"),
    ]
    if not wide:
        cols = [c for c in cols if c[0] not in ("doc_freq", "mean", "bos_freq")]
    for key, label in cols:
        t.add_column(label, justify="left" if key == "condition" else "right", no_wrap=True)
    t.add_column("histogram", no_wrap=True, min_width=len(hists[0]) if hists else 1)
    for r, hist in zip(rep.stats.to_dict(orient="records"), hists, strict=True):
        cells: list[Any] = [Text(r["condition"], style="dim" if r["random"] else "")]
        cells += [f"{r[k]:,}" if k == "n_active" else _fmt(r[k]) for k, _ in cols[1:]]
        t.add_row(*cells, sparkline(hist))
    console.print(t)
    if len(rep.examples):
        e = Table(title="top examples")
        e.add_column("condition")
        e.add_column("act", justify="right")
        e.add_column("doc:pos", justify="right")
        e.add_column("context")
        for r in rep.examples.to_dict(orient="records"):
            before, tok, after = context_text(list(r["context"]), int(r["context_pos"]))
            ctx = Text(before)
            ctx.append(tok, style="bold reverse")
            ctx.append(after)
            e.add_row(r["condition"], _fmt(float(r["activation"])), f"{r['doc_id']}:{r['position']}", ctx)
        console.print(e)
    else:
        console.print("[dim]no top examples stored for this feature[/]")
    if rep.output_tokens:
        toks = "  ".join(f"{t!r} ({v:.3g})" for t, v in rep.output_tokens)
        console.print(f"[bold]top output tokens[/] (logit lens): {toks}", highlight=False)


@app.command("for-text")
def for_text(
    text: Annotated[str, typer.Argument(help="The text to run through the model.")],
    top: Annotated[int, typer.Option("--top", "-k", help="Strongest features per token.")] = 5,
    features: Annotated[
        str | None,
        typer.Option("--features", help="Only these features (comma-separated ids), one column each."),
    ] = None,
    include_bos: Annotated[bool, typer.Option(help="Also show the BOS position.")] = False,
    model: ModelOpt = DEFAULT_MODEL,
    sae: SaeOpt = "default",
    hook: HookOpt = None,
    allow_other_hook: AllowOtherHookOpt = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Which features fire on TEXT, token by token."""
    from saesteer.errors import SaesteerError
    from saesteer.models import load_model
    from saesteer.saes import load_sae
    from saesteer.select.inspect import features_for_text

    try:
        ids = [int(x) for x in features.split(",") if x.strip()] if features else None
    except ValueError as exc:
        raise SaesteerError(f"--features takes comma-separated integer ids, got {features!r}") from exc
    with console.status("loading the model and the SAE ..."):
        m = load_model(model)
        s = load_sae(sae, model=m, hook_name=hook, allow_other_hook=allow_other_hook)
    res = features_for_text(m, s, text, hook_name=hook, features=ids)
    if ids is not None:
        import pandas as pd

        start = 0 if include_bos else 1
        wide = pd.DataFrame({"position": range(start, len(res.tokens)), "token": res.tokens[start:]})
        for j, f in enumerate(res.features):
            wide[str(int(f))] = res.acts[start:, j]
        emit(wide, title=f"activations at {res.hook_name}", as_json=as_json, as_csv=as_csv)
        return
    long = res.top(top, include_bos=include_bos)
    if as_json or as_csv:
        emit(long, as_json=as_json, as_csv=as_csv)
        return
    from rich.table import Table

    t = Table(title=f"top {top} features per token at {res.hook_name}")
    t.add_column("pos", justify="right")
    t.add_column("token")
    t.add_column("features (id: activation)")
    start = 0 if include_bos else 1
    for pos in range(start, len(res.tokens)):
        sub = long[long["position"] == pos]
        feats = "  ".join(
            f"[cyan]{int(f)}[/]: {a:.3g}" for f, a in zip(sub["feature"], sub["activation"], strict=True)
        )
        t.add_row(str(pos), repr(res.tokens[pos])[1:-1], feats or "[dim]none[/]")
    console.print(t)


@app.command(context_settings={"ignore_unknown_options": True})
def neighbors(
    feature: Annotated[int, typer.Argument(help="Feature id.")],
    k: Annotated[int, typer.Option("--k", "-k", help="How many neighbours.")] = 10,
    model: ModelOpt = DEFAULT_MODEL,
    sae: SaeOpt = "default",
    hook: HookOpt = None,
    allow_other_hook: AllowOtherHookOpt = False,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """The nearest features by decoder cosine, with their top logit-lens tokens."""
    from saesteer.models import load_model
    from saesteer.saes import load_sae
    from saesteer.select.inspect import neighbors as find
    from saesteer.select.output import logit_lens, token_strings

    with console.status("loading the model and the SAE ..."):
        m = load_model(model)
        s = load_sae(sae, model=m, hook_name=hook, allow_other_hook=allow_other_hook)
    df = find(s, feature, k)
    logits = logit_lens(m, s, df["feature"].tolist())
    top = logits.topk(min(8, logits.shape[1]), dim=-1).indices.numpy()
    df["top_tokens"] = [token_strings(m, row) for row in top]
    if not (as_json or as_csv):  # show control and byte tokens escaped in the table
        df["top_tokens"] = [" ".join(repr(t)[1:-1] for t in toks) for toks in df["top_tokens"]]
    emit(df, title=f"nearest features to {feature} by decoder cosine", as_json=as_json, as_csv=as_csv)


app.command("selective")(selective)
