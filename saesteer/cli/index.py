"""``saesteer index``: build, list, export and merge feature-statistics indexes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from saesteer.cli.common import (
    AllowOtherHookOpt,
    CsvOpt,
    DbOpt,
    JsonOpt,
    console,
    emit,
    emit_json,
    err_console,
    resolve_db,
)
from saesteer.cluster import RaySettings, check_engine
from saesteer.index.units import RayBuildSettings
from saesteer.models.loading import DEFAULT_MODEL

if TYPE_CHECKING:
    from saesteer.index.spec import IndexSpec

_RAY = RayBuildSettings()  # the --engine ray defaults are the settings'

app = typer.Typer(
    help="Build and inspect the feature-statistics index (corpus -> activations -> DuckDB).",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    """Add the ``index`` group to the root app."""
    root.add_typer(app, name="index")


def _merge_flags(spec: IndexSpec, flags: dict[str, Any]) -> IndexSpec:
    """Flags given on the command line win over the spec file (build settings go into ``spec.build``)."""
    from saesteer.index.spec import BUILD_KEYS

    build: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None or (value == [] and key != "exclude") or value is False:
            continue
        if key in BUILD_KEYS:
            build[key] = value
        elif key in ("text", "hf"):
            setattr(spec, key, getattr(spec, key) + value)
        else:
            setattr(spec, key, value)
    return spec.with_build(**build) if build else spec


@app.command()
def build(
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help=f"Model (default {DEFAULT_MODEL}): 'tiny-random', a local HF dir, a TL name."
        ),
    ] = None,
    sae: Annotated[
        str | None,
        typer.Option(
            "--sae", "-s", help="SAE (default 'default'): 'tiny', a directory, or 'release:sae_id'."
        ),
    ] = None,
    hook: Annotated[
        str | None, typer.Option("--hook", help="Hook name (default: the SAE's own hook).")
    ] = None,
    allow_other_hook: AllowOtherHookOpt = False,
    db: DbOpt = None,
    text: Annotated[
        list[str] | None,
        typer.Option(
            "--text",
            help="A text condition LABEL=PATH, e.g. language=fr=fr.txt (file, directory, .jsonl/.csv/.parquet). Repeatable.",
        ),
    ] = None,
    hf: Annotated[
        list[str] | None,
        typer.Option("--hf", help="A HF dataset condition LABEL=DATASET[:CONFIG]. Repeatable."),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split of --hf datasets.")] = "train",
    column: Annotated[
        str | None, typer.Option("--column", help="Text column of tables and --hf datasets (default 'text').")
    ] = None,
    per: Annotated[
        str | None,
        typer.Option(
            "--per",
            help="Plain text: one document per 'line' (file default) or per 'file' (directory default).",
        ),
    ] = None,
    n_docs: Annotated[
        int | None, typer.Option("--n-docs", help="Documents taken from each --hf dataset.")
    ] = None,
    streaming: Annotated[
        bool, typer.Option("--streaming", help="Stream --hf datasets instead of loading them.")
    ] = False,
    bundled: Annotated[
        bool, typer.Option("--bundled", help="Add every bundled language (train split) as language=<code>.")
    ] = False,
    corpus: Annotated[
        str | None,
        typer.Option(
            "--corpus",
            help="Add every language of a shipped parallel corpus (train split) as language=<code>: "
            "bundled | udhr (the UN Declaration of Human Rights, real translations).",
        ),
    ] = None,
    random: Annotated[
        list[str] | None,
        typer.Option("--random", help="Random-token baseline: uniform | unigram. Repeatable."),
    ] = None,
    n_random: Annotated[
        int | None, typer.Option("--n-random", help="Random sequences per baseline (default 256).")
    ] = None,
    random_len: Annotated[
        int | None, typer.Option("--random-len", help="Tokens per random sequence (default 64).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Seed of the random baselines (default 0).")
    ] = None,
    max_docs: Annotated[
        int | None, typer.Option("--max-docs", help="Keep the first N documents of each text condition.")
    ] = None,
    max_seq_len: Annotated[
        int | None,
        typer.Option("--max-seq-len", help="Truncate documents to this many tokens (default 256)."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Documents per forward pass (default 16).")
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Top examples kept per feature and condition (default 10).")
    ] = None,
    shard: Annotated[
        str | None, typer.Option("--shard", help="Build shard i/n of the documents (multi-machine builds).")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="A token is active when activation > this (default 0)."),
    ] = None,
    context_window: Annotated[
        int | None,
        typer.Option("--context-window", help="Tokens kept each side of a top example (default 8)."),
    ] = None,
    exclude: Annotated[
        str | None,
        typer.Option("--exclude", help="Token kinds not counted: bos,pad,special (the default) or 'none'."),
    ] = None,
    no_feature_output: Annotated[
        bool, typer.Option("--no-feature-output", help="Skip the logit-lens table.")
    ] = False,
    spec: Annotated[
        Path | None, typer.Option("--spec", help="A YAML/TOML spec file with the same fields.")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="local (this process) or ray (units on Ray workers; see docs/cluster.md).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray: join the cluster at HOST:PORT (or auto); default: a local cluster."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Ray: workers, each holding the model (default: 1 locally, one per CPU on a cluster).")
    ] = None,
    cpus_per_worker: Annotated[
        float, typer.Option("--cpus-per-worker", help="Ray: CPUs (torch threads) per worker.")
    ] = _RAY.cluster.cpus_per_worker,
    unit_docs: Annotated[
        int, typer.Option("--unit-docs", help="Ray: documents per unit (condition x document shard).")
    ] = _RAY.unit_docs,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Ray: where unit files go (default: <db>.ray/<build id>/).")
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Compute every condition instead of importing the shipped index (imported only where it is "
            "the very build this would compute: same model, SAE, settings and data).",
        ),
    ] = False,
) -> None:
    """Index conditions: run them through the model to the SAE's hook and store per-feature statistics."""
    from saesteer.index.spec import IndexSpec, load_spec_file, parse_hf_flag, parse_text_flag

    base = load_spec_file(spec) if spec is not None else IndexSpec()
    flags = {
        "model": model,
        "sae": sae,
        "hook": hook,
        "allow_other_hook": allow_other_hook,
        "db": str(db) if db else None,
        "text": [parse_text_flag(t, column, per) for t in text or []],
        "hf": [
            parse_hf_flag(h, split=split, column=column, n_docs=n_docs, streaming=streaming) for h in hf or []
        ],
        "bundled": bundled,
        "corpus": corpus,
        "random": random or [],
        "n_random": n_random,
        "random_len": random_len,
        "seed": seed,
        "max_docs": max_docs,
        "max_seq_len": max_seq_len,
        "batch_size": batch_size,
        "top_k": top_k,
        "shard": shard,
        "threshold": threshold,
        "context_window": context_window,
        "exclude": None
        if exclude is None
        else [x.strip() for x in exclude.split(",") if x.strip() not in ("", "none")],
    }
    full = _merge_flags(base, flags)
    if no_feature_output:
        full = full.with_build(feature_output=False)
    if check_engine(engine) == "ray":
        cluster = RaySettings(address=address, workers=workers, cpus_per_worker=cpus_per_worker)
        run_build_ray(full, RayBuildSettings(cluster, unit_docs=unit_docs, run_dir=run_dir))
    else:
        run_build(full, rebuild=rebuild)


def run_build_ray(spec: IndexSpec, settings: RayBuildSettings) -> None:
    """``--engine ray``: the driver checks the corpora, fans units out to Ray workers, merges once."""
    from saesteer.cli.progress import ProgressView
    from saesteer.cluster import require_ray
    from saesteer.index.ray_build import RayProgress, build_index_ray
    from saesteer.progress import Stage

    require_ray()
    conditions = spec.conditions()
    config = spec.build
    db_path = resolve_db(Path(spec.db) if spec.db else None)
    with ProgressView() as view:
        stages = view.stages()
        open_: dict[str, Stage] = {}

        def on_progress(ev: RayProgress) -> None:
            if ev.last == "merging":
                open_.pop("units").end()
                open_["merge"] = stages.start("merge", info=f"{ev.units} units, one transaction")
                return
            if "units" not in open_:
                open_["units"] = stages.start("ray units", ev.units, info=f"{ev.workers} worker(s)")
            st = open_["units"]
            rate = (ev.tokens - ev.cached_tokens) / max(st.elapsed, 1e-9)
            st.update(ev.units_done, ev.units, info=f"{ev.tokens:,} tok, {rate:,.0f} tok/s ({ev.cached} done earlier)")

        try:
            res = build_index_ray(db_path, spec.model, spec.sae, list(conditions), config, hook_name=spec.hook,
                                  allow_other_hook=spec.allow_other_hook,
                                  settings=settings, progress=on_progress)
        finally:
            for st in open_.values():
                st.end()
    console.print(
        f"build [bold]{res.build_id}[/] in {db_path}: {len(res.written)} condition(s) written, "
        f"{len(res.skipped)} skipped, {res.units} unit(s) ({res.units_cached} from {res.run_dir}), "
        f"{res.n_tokens:,} tokens in {res.seconds:.1f} s",
        soft_wrap=True,
    )


def run_build(spec: IndexSpec, *, rebuild: bool = False) -> None:
    """Validate the conditions, load the model and SAE, build with progress (bars or plain lines), print a summary."""
    from saesteer.cli.progress import BuildStages, ProgressView
    from saesteer.index.build import build_index
    from saesteer.index.manage import INTERRUPTED
    from saesteer.index.prebuilt import shipped_exports
    from saesteer.models import load_model
    from saesteer.saes import load_sae

    conditions = spec.conditions()
    config = spec.build
    db_path = resolve_db(Path(spec.db) if spec.db else None)
    with ProgressView() as view:
        stages = view.stages()
        with stages.stage("check corpora", total=len(conditions)) as st:
            for i, c in enumerate(conditions):
                c.validate()
                c.source_hash()
                st.update(i + 1)
            st.done(f"{len(conditions)} conditions")
        with stages.stage("load model", info=f"{spec.model} + SAE {spec.sae}"):
            m = load_model(spec.model)
            s = load_sae(spec.sae, model=m, hook_name=spec.hook, allow_other_hook=spec.allow_other_hook)
        on_build = BuildStages(stages)
        try:
            result = build_index(db_path, m, s, conditions, config, hook_name=spec.hook, progress=on_build,
                                 reuse=() if rebuild else shipped_exports())
        except KeyboardInterrupt:
            on_build.close(ok=False)
            err_console.print(
                f"[yellow]{INTERRUPTED}[/] (finished conditions are kept in {db_path} and will be skipped)",
                soft_wrap=True,
            )
            raise typer.Exit(130) from None
        except BaseException:
            on_build.close(ok=False)
            raise
        on_build.close()
    total = sum(result.n_tokens.values())
    console.print(
        f"build [bold]{result.build_id}[/] in {db_path}: {len(result.written)} condition(s) written, "
        + (f"{len(result.imported)} imported from the shipped index, " if result.imported else "")
        + f"{len(result.skipped) - len(result.imported)} skipped, {total:,} tokens in {result.seconds:.1f} s",
        soft_wrap=True,
    )


@app.command("ls")
def ls(
    db: DbOpt = None,
    build_id: Annotated[str | None, typer.Option("--build", help="Only this build (id or prefix).")] = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """List the builds of an index and their conditions with token counts."""
    from saesteer.index.db import IndexDb
    from saesteer.index.manage import build_status, pending_conditions
    from saesteer.index.shards import resolve_build_ids

    with IndexDb(resolve_db(db), read_only=True) as con:
        if build_id is not None:
            build_id = resolve_build_ids(con, build_id)[0]
        builds = con.query("index_ls_builds", [build_id or ""]).df()
        conds = con.query("index_ls_conditions", [build_id or ""]).df()
        pending = pending_conditions(con, build_id or "")
        builds["status"] = [
            build_status(con, b, int(n), [c for c, _, _ in pending.get(b, [])])
            for b, n in zip(builds["build_id"], builds["n_conditions"], strict=True)
        ]
    if as_json:
        emit_json({"builds": builds.to_dict(orient="records"), "conditions": conds.to_dict(orient="records")})
        return
    if as_csv:
        emit(conds, as_csv=True)
        return
    emit(builds.drop(columns=["status"]), title="builds")
    for b, status in zip(builds["build_id"], builds["status"], strict=True):
        if status != "complete":
            err_console.print(f"[yellow]build {b}: {status}[/]", soft_wrap=True, highlight=False)
    if builds["build_id"].nunique() <= 1:
        conds = conds.drop(columns=["build_id"])
    else:
        conds["build_id"] = conds["build_id"].str[:8]
    emit(conds, title="conditions")


@app.command("rm")
def rm(
    build_id: Annotated[str, typer.Argument(help="The build to delete (id or unique prefix, see `saesteer index ls`).")],
    db: DbOpt = None,
) -> None:
    """Delete one build (all its conditions, statistics and examples) in one transaction; refused while
    another process writes the index or is still building that build."""
    from saesteer.index.manage import remove_build

    res = remove_build(resolve_db(db), build_id)
    rows = ", ".join(f"{t} {n:,}" for t, n in res.rows.items() if n)
    console.print(f"removed build {res.build_id} from {resolve_db(db)}: {rows or 'no rows'}", soft_wrap=True)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", help="New directory for the Parquet export.")],
    db: DbOpt = None,
    build_id: Annotated[
        str | None, typer.Option("--build", help="Export only this build (id or prefix).")
    ] = None,
) -> None:
    """Export builds as Parquet (one file per table + manifest.json), e.g. to merge shards elsewhere."""
    from saesteer.index.shards import export_build

    res = export_build(resolve_db(db), out, build_id)
    rows = ", ".join(f"{t} {n:,}" for t, n in res.rows.items())
    console.print(f"exported build(s) {', '.join(res.build_ids)} to {res.out_dir}: {rows}", soft_wrap=True)


@app.command()
def merge(
    shard_dirs: Annotated[
        list[Path], typer.Argument(help="Export directories (from `saesteer index export`).")
    ],
    db: DbOpt = None,
) -> None:
    """Merge shard exports into one index (statistics summed, top examples re-ranked)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from saesteer.index.shards import merge_shards

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True
    ) as bar:
        task = bar.add_task("merging", total=None)

        def on_progress(what: str, k: int, n: int) -> None:
            bar.update(task, description=f"merging {what}", completed=k, total=n)

        res = merge_shards(shard_dirs, resolve_db(db), progress=on_progress)
        bar.update(task, completed=bar.tasks[task].total or 0)
    console.print(
        f"merged into {res.db_path}: {len(res.written)} condition(s) written, {len(res.skipped)} already there",
        soft_wrap=True,
    )
