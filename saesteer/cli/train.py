"""``saesteer train-sae``: train the default SAE (or another one) offline with sae-lens' runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from saesteer.cli.common import ModelOpt, console
from saesteer.cli.settings import settings_command


def register(app: typer.Typer) -> None:
    """Add the top-level ``train-sae`` command to ``app``."""
    app.command("train-sae")(train_sae)


def _train_sae(values: dict[str, Any]) -> None:
    import os
    import shlex
    import sys

    from saesteer.errors import SaesteerError
    from saesteer.paths import cache_dir as user_cache
    from saesteer.saes.loading import default_sae_path
    from saesteer.settings import settings_from
    from saesteer.train.pipeline import TrainSaeConfig, run_train_sae

    text_dir = values["text_dir"]
    if not values["langs"].strip(",") or not values["hooks"].strip(","):
        raise SaesteerError("--langs and --hooks must each name at least one entry")
    if text_dir is not None and not text_dir.is_dir():
        raise SaesteerError(
            f"--text-dir {text_dir} does not exist; run scripts/fetch_training_text.sh {text_dir} first"
        )
    env_cache = os.environ.get("SAESTEER_TRAIN_CACHE")
    cfg = settings_from(
        TrainSaeConfig,
        {**values, "cache_dir": values["cache_dir"] or (Path(env_cache) if env_cache else user_cache() / "train"),
         "out_dir": values["out_dir"] or default_sae_path()},
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


def _make() -> Any:
    from saesteer.train.pipeline import TrainSaeConfig

    return settings_command(
        TrainSaeConfig,
        _train_sae,
        doc="Train an SAE on multilingual Debian text with sae-lens, compare hooks, and write the SAE with its report.",
        exclude=("command", "extra"),
        override={"model": ModelOpt},
    )


# the options are TrainSaeConfig's fields (saesteer.cli.settings): its defaults and docstrings
train_sae = _make()
