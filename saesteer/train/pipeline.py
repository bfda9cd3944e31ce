"""``saesteer train-sae``: text -> cached activations -> hook comparison -> final run -> report -> shipped SAE.

Every expensive stage is cached under ``cache_dir`` (tokenized text, activations, finished runs), keyed by
what it depends on, so a rerun with the same settings only rewrites the output, and a retrain with other
SAE settings repeats no forward pass. The output directory is replaced atomically.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saesteer.errors import SaesteerError
from saesteer.models.loading import DEFAULT_MODEL
from saesteer.settings import cli
from saesteer.train.activation_cache import ActivationCache, token_mask
from saesteer.train.data import TextPlan, TrainingText, build_training_text, bundled_heldout_tokens
from saesteer.train.quality import (
    ce_losses,
    language_selectivity,
    latent_frequencies,
    reconstruction_metrics,
    rounded_copy,
)
from saesteer.train.runner import TrainSettings, activation_stats, check_architecture, run_training
from saesteer.train.select_hook import HookCandidate, choose_hook, evaluate_candidate
from saesteer.train.sources import LANGS, collect_candidates

if TYPE_CHECKING:
    from sae_lens import SAE
    from transformer_lens import HookedTransformer

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
DEFAULT_HOOKS = ("blocks.6.hook_resid_post", "blocks.9.hook_resid_post")
# Store the SAE in half precision when that changes the report's figures by no more than this.
# (the CE losses, a full forward pass each, are measured for the shipped precision only).
HALF_PRECISION_TOLERANCE = {"explained_variance": 0.002, "nmse": 0.002}


@dataclass(frozen=True)
class TrainSaeConfig:
    """Everything ``saesteer train-sae`` needs; the defaults are those of the shipped default SAE.

    The fields are the command's options (:mod:`saesteer.cli.settings`): a field's name is its flag, its
    default the flag's default and its docstring the flag's help."""

    cache_dir: Path
    """Where tokenized text, activations and runs are cached (default: $SAESTEER_TRAIN_CACHE, else <user cache>/train)."""
    out_dir: Path = field(metadata=cli("--out"))
    """Output directory (sae-lens format + REPORT.md + report.json). Default: the package's default_sae/."""
    text_dir: Path | None = None
    """Output of scripts/fetch_training_text.sh (pkgs/, ddtp/). Default: the bundled corpus only."""
    model: str = DEFAULT_MODEL
    """The model whose residual stream the SAE reads."""
    langs: tuple[str, ...] = LANGS
    """Comma-separated language codes."""
    train_tokens_per_lang: int = field(default=7_680, metadata=cli(min=128))
    """Tokens of training text per language (cached once)."""
    heldout_tokens_per_lang: int = field(default=512, metadata=cli(min=128))
    """Held-out tokens per language for the report."""
    context_size: int = field(default=128, metadata=cli(min=8))
    """Tokens per sequence (BOS included)."""
    hooks: tuple[str, ...] = DEFAULT_HOOKS
    """Comma-separated candidate hooks; the most language-selective one is kept."""
    compare_tokens: int = field(default=40_000, metadata=cli(min=1))
    """Activation vectors per hook-comparison run."""
    final_tokens: int = field(default=300_000, metadata=cli(min=1))
    """Activation vectors for the final run."""
    d_sae: int = field(default=5120, metadata=cli("--width", min=1))
    """Number of latents (the SAE's width)."""
    k: int = field(default=64, metadata=cli(min=1))
    """Active latents per token (BatchTopK, Matryoshka: on average)."""
    architecture: str = "topk"
    """topk, batchtopk or matryoshka (Matryoshka BatchTopK; the last two are saved as JumpReLU)."""
    matryoshka_widths: tuple[int, ...] = ()
    """Comma-separated inner prefix widths for --architecture matryoshka, e.g. 128,512,2048."""
    batch_tokens: int = field(default=512, metadata=cli(min=1))
    """SAE training batch, in tokens."""
    lr: float = 1e-3
    """Learning rate."""
    ce_seqs_per_lang: int = field(default=1, metadata=cli(min=1))
    """Held-out sequences per language for the CE-loss figures."""
    ce_context: int = field(default=0, metadata=cli(min=0))
    """CE losses on the first N positions of each sequence (0: all)."""
    probe_last_line: int = field(default=250, metadata=cli(min=201, max=250))
    """Selectivity probes: bundled corpus lines 201..N (held out)."""
    storage_dtype: str = field(default="auto", metadata=cli("--dtype"))
    """Storage dtype: auto (half precision if the measured loss is negligible), float32, float16, bfloat16."""
    forward_batch: int = field(default=8, metadata=cli(min=1))
    """Sequences per forward pass."""
    seed: int = 0
    """Seed for text sampling and training."""
    command: str = ""
    """The command line, recorded in the report."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_architecture(self.architecture, self.matryoshka_widths, self.d_sae)  # before any work

    def text_plan(self) -> TextPlan:
        return TextPlan(
            langs=self.langs,
            train_tokens_per_lang=self.train_tokens_per_lang,
            heldout_tokens_per_lang=self.heldout_tokens_per_lang,
            context_size=self.context_size,
            window_tokens=self.context_size - 1,
            seed=self.seed,
        )

    def settings(self, hook: str, tokens: int) -> TrainSettings:
        return TrainSettings(
            hook=hook,
            training_tokens=tokens,
            d_sae=self.d_sae,
            k=self.k,
            batch_tokens=self.batch_tokens,
            lr=self.lr,
            seed=self.seed,
            architecture=self.architecture,
            matryoshka_widths=self.matryoshka_widths,
        )


@dataclass
class TrainSaeResult:
    out_dir: Path
    hook: str
    report: dict[str, Any]


class _Timer:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def stage(self, name: str) -> _Stage:
        return _Stage(self, name)


class _Stage:
    def __init__(self, timer: _Timer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()
        log.info("stage %s ...", self.name)

    def __exit__(self, *exc: object) -> None:
        dt = time.perf_counter() - self.t0
        self.timer.times[self.name] = round(self.timer.times.get(self.name, 0.0) + dt, 1)
        log.info("stage %s done in %.1f s", self.name, dt)


def run_train_sae(
    cfg: TrainSaeConfig, *, model: HookedTransformer | None = None, progress: Progress | None = None
) -> TrainSaeResult:
    """Run the whole pipeline (see the module docstring) and write the SAE and its report to ``cfg.out_dir``."""
    import numpy as np
    from sae_lens.util import get_special_token_ids

    from saesteer.models.hooks import validate_hook
    from saesteer.models.loading import load_model, model_source

    if not cfg.hooks:
        raise SaesteerError("give at least one candidate hook (--hooks)")
    if cfg.storage_dtype not in ("auto", "float32", "float16", "bfloat16"):
        raise SaesteerError(
            f"unknown storage dtype {cfg.storage_dtype!r}: use auto, float32, float16 or bfloat16"
        )
    timer = _Timer()
    with timer.stage("load_model"):
        model = model if model is not None else load_model(cfg.model)
    for h in cfg.hooks:
        validate_hook(model, h)
    src = model_source(model)
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise SaesteerError("the model has no tokenizer")
    plan = cfg.text_plan()
    run_root = cfg.cache_dir / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{src.id}-{src.weights_hash[:16]}")

    with timer.stage("text"):
        text_path = run_root / f"text-{plan.key()}"
        if text_path.with_suffix(".json").is_file() and text_path.with_suffix(".npz").is_file():
            text = TrainingText.load(text_path)
        else:
            from saesteer.train.textclean import make_langid_classifier

            cands, sources = collect_candidates(
                cfg.text_dir, plan.langs, classify=make_langid_classifier(plan.langs)
            )
            text = build_training_text(cands, sources, tokenizer, plan, progress=progress)
            text.save(text_path)
        probe_tokens, probe_langs = bundled_heldout_tokens(
            tokenizer, plan.langs, plan.context_size, last_line=cfg.probe_last_line
        )
    special = get_special_token_ids(tokenizer)
    cache = ActivationCache(run_root / f"acts-{plan.key()}")
    with timer.stage("activations"):
        train_acts = cache.ensure(
            model, "train", text.train.tokens, cfg.hooks, batch_size=cfg.forward_batch, progress=progress
        )
        held_acts = cache.ensure(
            model, "heldout", text.heldout.tokens, cfg.hooks, batch_size=cfg.forward_batch, progress=progress
        )
        probe_acts = cache.ensure(
            model, "probe", probe_tokens, cfg.hooks, batch_size=cfg.forward_batch, progress=progress
        )
    train_mask = token_mask(text.train.tokens, special)
    held_mask = token_mask(text.heldout.tokens, special)
    probe_mask = token_mask(probe_tokens, special)
    n_train_tokens = int(train_mask.sum())

    d = int(model.cfg.d_model)
    b_dec: dict[str, np.ndarray] = {}

    def train(hook: str, tokens: int) -> tuple[SAE, TrainSettings]:
        settings = cfg.settings(hook, tokens)
        ds = cache.saelens_dataset("train", hook, train_acts[hook], text.train.tokens, seed=cfg.seed)
        if hook not in b_dec:
            mean, mean_norm = activation_stats(train_acts[hook], train_mask)
            b_dec[hook] = mean * math.sqrt(d) / mean_norm
        sae = run_training(
            model,
            settings,
            cached_activations=ds,
            tokens=text.train.tokens,
            context_size=cfg.context_size,
            out_dir=run_root / "runs" / f"{hook}-{settings.key()}",
            model_name=src.id,
            dataset_name="saesteer-debian-multilingual",
            b_dec_init=b_dec[hook],
        )
        return sae, settings

    candidates: list[HookCandidate] = []
    with timer.stage("compare_hooks"):
        for i, hook in enumerate(cfg.hooks):
            sae, _ = train(hook, cfg.compare_tokens)
            candidates.append(
                evaluate_candidate(
                    hook,
                    sae,
                    cfg.compare_tokens,
                    langs=plan.langs,
                    probe_acts=probe_acts[hook],
                    probe_mask=probe_mask,
                    probe_langs=probe_langs,
                    heldout_acts=held_acts[hook],
                    heldout_mask=held_mask,
                )
            )
            if progress is not None:
                progress("compare", i + 1, len(cfg.hooks))
    best = choose_hook(candidates)
    hook = best.hook
    with timer.stage("final_training"):
        sae, settings = train(hook, cfg.final_tokens)

    with timer.stage("quality"):
        quality = _quality(model, sae, hook, text, held_acts[hook], held_mask, cfg, progress)
        freq, _ = latent_frequencies(sae, probe_acts[hook], probe_mask, probe_langs, plan.langs)
        final_sel = language_selectivity(freq, plan.langs)
        probe = reconstruction_metrics(sae, probe_acts[hook], probe_mask)
        # Figures on the bundled held-out sentences, which anyone can recompute from the package alone.
        quality["bundled_heldout"] = {
            "explained_variance": probe.explained_variance,
            "nmse": probe.nmse,
            "l0": probe.l0,
            "n_tokens": probe.n_tokens,
            "lines": f"201-{cfg.probe_last_line}",
        }

    dtype = str(quality["shipped"])
    from saesteer.train.report import build_report, render_markdown

    report = build_report(
        cfg=cfg,
        model_source=asdict(src),
        hook=hook,
        settings=settings,
        sae=sae,
        text=text,
        n_train_tokens=n_train_tokens,
        candidates=candidates,
        quality=quality,
        selectivity=final_sel,
        storage_dtype=dtype,
        timings=timer.times,
    )
    with timer.stage("write"):
        _write_output(sae, cfg.out_dir, dtype, report, render_markdown, model_name=src.id, hook=hook)
    report["timings_s"] = timer.times
    return TrainSaeResult(cfg.out_dir, hook, report)


def _quality(
    model: HookedTransformer,
    sae: SAE,
    hook: str,
    text: TrainingText,
    acts: Any,
    mask: Any,
    cfg: TrainSaeConfig,
    progress: Progress | None,
) -> dict[str, Any]:
    """Metrics on the held-out split: reconstruction for the float32 SAE and its half-precision copies, the
    storage dtype chosen from them, then the CE losses of the SAE as shipped (in that dtype)."""
    import numpy as np

    variants = {
        "float32": sae,
        "float16": rounded_copy(sae, "float16"),
        "bfloat16": rounded_copy(sae, "bfloat16"),
    }
    langs = list(text.plan.langs)
    by_lang = {lang: [i for i, x in enumerate(text.heldout.langs) if x == lang] for lang in langs}
    per_lang: dict[str, dict[str, Any]] = {lang: {"n_tokens": 0} for lang in langs}
    fires_total = {k: np.zeros(int(sae.cfg.d_sae), dtype=np.int64) for k in variants}
    for lang, idx in by_lang.items():
        if not idx:
            continue
        a, m = np.asarray(acts[idx]), mask[idx]
        for name, v in variants.items():
            r = reconstruction_metrics(v, a, m)
            fires_total[name] += r.fires
            per_lang[lang]["n_tokens"] = r.n_tokens
            per_lang[lang][name] = {"explained_variance": r.explained_variance, "nmse": r.nmse, "l0": r.l0}
    n_total = sum(row["n_tokens"] for row in per_lang.values())
    all_idx = [i for idx in by_lang.values() for i in idx]
    a_all, m_all = np.asarray(acts[all_idx]), mask[all_idx]
    overall: dict[str, dict[str, Any]] = {}
    for name, v in variants.items():
        r = reconstruction_metrics(v, a_all, m_all)
        freq = fires_total[name] / max(1, n_total)
        overall[name] = {
            "explained_variance": r.explained_variance,
            "nmse": r.nmse,
            "l0": r.l0,
            "dead_share": float((fires_total[name] == 0).mean()),
            "dense_share": float((freq > 0.10).mean()),
            "n_tokens": r.n_tokens,
        }
    shipped = _choose_dtype(cfg.storage_dtype, overall)
    sums = {"clean": 0.0, "spliced": 0.0, "zero": 0.0, "n": 0}
    for li, (lang, idx) in enumerate(by_lang.items()):
        ce_idx = idx[: cfg.ce_seqs_per_lang]
        if ce_idx:
            width = cfg.ce_context or text.plan.context_size
            c = ce_losses(
                model,
                hook,
                text.heldout.tokens[ce_idx, :width],
                mask[ce_idx, :width],
                {shipped: variants[shipped]},
            )[shipped]
            per_lang[lang][shipped].update(
                {
                    "ce_clean": c.clean,
                    "ce_spliced": c.spliced,
                    "ce_zero": c.zero,
                    "ce_recovered": c.recovered,
                    "ce_tokens": c.n_tokens,
                }
            )
            for key, val in (("clean", c.clean), ("spliced", c.spliced), ("zero", c.zero)):
                sums[key] += val * c.n_tokens
            sums["n"] += c.n_tokens
        if progress is not None:
            progress("quality", li + 1, len(langs))
    n = max(int(sums["n"]), 1)
    clean, spliced, zero = sums["clean"] / n, sums["spliced"] / n, sums["zero"] / n
    overall[shipped].update(
        {
            "ce_clean": clean,
            "ce_spliced": spliced,
            "ce_zero": zero,
            "ce_tokens": int(sums["n"]),
            "ce_recovered": (zero - spliced) / (zero - clean) if zero != clean else float("nan"),
        }
    )
    return {"per_language": per_lang, "overall": overall, "shipped": shipped}


def _choose_dtype(requested: str, overall: dict[str, dict[str, Any]]) -> str:
    """``requested``, or for ``"auto"`` the first half precision whose reconstruction figures stay within
    :data:`HALF_PRECISION_TOLERANCE` of float32's."""
    if requested != "auto":
        return requested
    for cand in ("float16", "bfloat16"):
        if all(
            abs(overall[cand][k] - overall["float32"][k]) <= tol
            for k, tol in HALF_PRECISION_TOLERANCE.items()
        ):
            return cand
    return "float32"


def _write_output(
    sae: SAE,
    out_dir: Path,
    dtype: str,
    report: dict[str, Any],
    render: Callable[[dict[str, Any]], str],
    *,
    model_name: str,
    hook: str,
) -> None:
    """Write ``cfg.json``, ``sae_weights.safetensors`` (in ``dtype``), ``report.json`` and ``REPORT.md`` to
    ``out_dir``, replacing it atomically."""
    import torch
    from safetensors.torch import save_file

    tgt = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".tmp-", dir=out_dir.parent))
    try:
        sae.save_model(str(tmp))
        cfg_path = tmp / "cfg.json"
        cfg_json = json.loads(cfg_path.read_text())
        meta = cfg_json.setdefault("metadata", {})
        meta.update(
            {
                "model_name": model_name,
                "hook_name": hook,
                "dataset_path": "saesteer: Debian translated man pages, DDTP, gettext catalogues, bundled corpus",
            }
        )
        cfg_json["dtype"] = "float32"  # weights may be stored in half precision; they load as float32
        cfg_path.write_text(json.dumps(cfg_json, indent=1))
        from safetensors.torch import load_file

        weights = load_file(str(tmp / "sae_weights.safetensors"))
        save_file(
            {k: v.to(tgt).contiguous() for k, v in weights.items()}, str(tmp / "sae_weights.safetensors")
        )
        report["files"] = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / "report.json").write_text(
            json.dumps(report, indent=1, ensure_ascii=False, default=_json_default)
        )
        (tmp / "REPORT.md").write_text(render(report), encoding="utf-8")
        tmp.chmod(0o755)
        for f in tmp.iterdir():
            f.chmod(0o644)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(out_dir.name + f".old-{os.getpid()}")
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def with_overrides(cfg: TrainSaeConfig, **kw: Any) -> TrainSaeConfig:
    """``cfg`` with the non-None keyword values replaced."""
    return replace(cfg, **{k: v for k, v in kw.items() if v is not None})
