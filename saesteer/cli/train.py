"""``saesteer train-sae``: train the default SAE (or another one) offline with sae-lens' runner."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from saesteer.cli.common import ModelOpt, console
from saesteer.models.loading import DEFAULT_MODEL


def register(app: typer.Typer) -> None:
    """Add the top-level ``train-sae`` command to ``app``."""
    app.command("train-sae")(train_sae)


def train_sae(
    text_dir: Annotated[
        Path | None,
        typer.Option(
            "--text-dir",
            help="Output of scripts/fetch_training_text.sh (pkgs/, ddtp/). Default: the bundled corpus only.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Where tokenized text, activations and runs are cached (default: $SAESTEER_TRAIN_CACHE, else <user cache>/train).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output directory (sae-lens format + REPORT.md + report.json). Default: the package's default_sae/.",
        ),
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    langs: Annotated[
        str, typer.Option("--langs", help="Comma-separated language codes.")
    ] = "en,fr,de,es,it,pt,nl,pl,ru,tr,id,zh",
    hooks: Annotated[
        str,
        typer.Option(
            "--hooks", help="Comma-separated candidate hooks; the most language-selective one is kept."
        ),
    ] = "blocks.6.hook_resid_post,blocks.9.hook_resid_post",
    train_tokens_per_lang: Annotated[
        int,
        typer.Option(
            "--train-tokens-per-lang", min=128, help="Tokens of training text per language (cached once)."
        ),
    ] = 7_680,
    heldout_tokens_per_lang: Annotated[
        int,
        typer.Option(
            "--heldout-tokens-per-lang", min=128, help="Held-out tokens per language for the report."
        ),
    ] = 512,
    context_size: Annotated[
        int, typer.Option("--context-size", min=8, help="Tokens per sequence (BOS included).")
    ] = 128,
    compare_tokens: Annotated[
        int, typer.Option("--compare-tokens", min=1, help="Activation vectors per hook-comparison run.")
    ] = 40_000,
    final_tokens: Annotated[
        int, typer.Option("--final-tokens", min=1, help="Activation vectors for the final run.")
    ] = 300_000,
    width: Annotated[int, typer.Option("--width", min=1, help="Number of latents (d_sae).")] = 5120,
    k: Annotated[
        int, typer.Option("--k", min=1, help="Active latents per token (BatchTopK, Matryoshka: on average).")
    ] = 64,
    architecture: Annotated[
        str,
        typer.Option(
            "--architecture",
            help="topk, batchtopk or matryoshka (Matryoshka BatchTopK; the last two are saved as JumpReLU).",
        ),
    ] = "topk",
    matryoshka_widths: Annotated[
        str,
        typer.Option(
            "--matryoshka-widths",
            help="Comma-separated inner prefix widths for --architecture matryoshka, e.g. 128,512,2048.",
        ),
    ] = "",
    batch_tokens: Annotated[
        int, typer.Option("--batch-tokens", min=1, help="SAE training batch, in tokens.")
    ] = 512,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 1e-3,
    ce_seqs_per_lang: Annotated[
        int,
        typer.Option(
            "--ce-seqs-per-lang", min=1, help="Held-out sequences per language for the CE-loss figures."
        ),
    ] = 1,
    ce_context: Annotated[
        int,
        typer.Option(
            "--ce-context", min=0, help="CE losses on the first N positions of each sequence (0: all)."
        ),
    ] = 0,
    probe_last_line: Annotated[
        int,
        typer.Option(
            "--probe-last-line",
            min=201,
            max=250,
            help="Selectivity probes: bundled corpus lines 201..N (held out).",
        ),
    ] = 250,
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            help="Storage dtype: auto (half precision if the measured loss is negligible), float32, float16, bfloat16.",
        ),
    ] = "auto",
    forward_batch: Annotated[
        int, typer.Option("--forward-batch", min=1, help="Sequences per forward pass.")
    ] = 8,
    seed: Annotated[int, typer.Option("--seed", help="Seed for text sampling and training.")] = 0,
) -> None:
    """Train an SAE on multilingual Debian text with sae-lens, compare hooks, and write the SAE with its report."""
    import os
    import shlex
    import sys

    from saesteer.errors import SaesteerError
    from saesteer.paths import cache_dir as user_cache
    from saesteer.saes.loading import default_sae_path
    from saesteer.train.pipeline import TrainSaeConfig, run_train_sae

    lang_t = tuple(x.strip() for x in langs.split(",") if x.strip())
    hook_t = tuple(x.strip() for x in hooks.split(",") if x.strip())
    if not lang_t or not hook_t:
        raise SaesteerError("--langs and --hooks must each name at least one entry")
    if text_dir is not None and not text_dir.is_dir():
        raise SaesteerError(
            f"--text-dir {text_dir} does not exist; run scripts/fetch_training_text.sh {text_dir} first"
        )
    try:
        widths = tuple(int(x) for x in matryoshka_widths.split(",") if x.strip())
    except ValueError:
        raise SaesteerError(
            f"--matryoshka-widths must be comma-separated integers, got {matryoshka_widths!r}"
        ) from None
    env_cache = os.environ.get("SAESTEER_TRAIN_CACHE")
    cfg = TrainSaeConfig(
        cache_dir=cache_dir or (Path(env_cache) if env_cache else user_cache() / "train"),
        out_dir=out or default_sae_path(),
        text_dir=text_dir,
        model=model,
        langs=lang_t,
        hooks=hook_t,
        train_tokens_per_lang=train_tokens_per_lang,
        heldout_tokens_per_lang=heldout_tokens_per_lang,
        context_size=context_size,
        compare_tokens=compare_tokens,
        final_tokens=final_tokens,
        d_sae=width,
        k=k,
        architecture=architecture,
        matryoshka_widths=widths,
        batch_tokens=batch_tokens,
        lr=lr,
        ce_seqs_per_lang=ce_seqs_per_lang,
        storage_dtype=dtype,
        probe_last_line=probe_last_line,
        ce_context=ce_context,
        forward_batch=forward_batch,
        seed=seed,
        command="saesteer " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    from saesteer.cli.progress import NamedCounters, ProgressView

    with ProgressView() as view:
        progress = NamedCounters(view.stages())
        try:
            result = run_train_sae(cfg, progress=progress)
        except BaseException:
            progress.close(ok=False)
            raise
        progress.close()
    q = result.report["quality"]
    o = q["overall"][q["shipped"]]
    console.print(
        f"wrote {result.out_dir} (hook {result.hook}, {result.report['sae']['storage_dtype']}): "
        f"EV {o['explained_variance']:.3f}, CE recovered {o['ce_recovered']:.3f}, L0 {o['l0']:.1f}, "
        f"{result.report['selectivity']['n_clear_languages']} languages with a clearly selective latent"
    )
