"""The training report shipped next to the SAE: ``report.json`` (every figure) and ``REPORT.md`` (tables)."""

from __future__ import annotations

import platform
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from saesteer.paths import portable_command, portable_path
from saesteer.train.quality import DENSE_THRESHOLD, SELECTIVE_THRESHOLD, LanguageSelectivity

if TYPE_CHECKING:
    from sae_lens import SAE

    from saesteer.train.data import TrainingText
    from saesteer.train.pipeline import TrainSaeConfig
    from saesteer.train.runner import TrainSettings
    from saesteer.train.select_hook import HookCandidate

TARGETS = {"ce_recovered": 0.8, "explained_variance": 0.7}
MIN_SELECTIVE_LANGUAGES = 10


def _sel(s: LanguageSelectivity) -> dict[str, Any]:
    return {**asdict(s), "clear": s.clear}


def build_report(
    *,
    cfg: TrainSaeConfig,
    model_source: dict[str, Any],
    hook: str,
    settings: TrainSettings,
    sae: SAE,
    text: TrainingText,
    n_train_tokens: int,
    candidates: list[HookCandidate],
    quality: dict[str, Any],
    selectivity: list[LanguageSelectivity],
    storage_dtype: str,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Everything the report says, as JSON-able data."""
    import sae_lens
    import torch

    o32 = quality["overall"][quality["shipped"]]  # the figures of the SAE as shipped
    epochs = settings.training_tokens / max(1, n_train_tokens)
    n_clear = sum(s.clear for s in selectivity)
    n_selective = sum(s.n_selective > 0 for s in selectivity)
    targets = {
        "ce_recovered": {
            "target": TARGETS["ce_recovered"],
            "measured": o32["ce_recovered"],
            "met": bool(o32["ce_recovered"] >= TARGETS["ce_recovered"]),
        },
        "explained_variance": {
            "target": TARGETS["explained_variance"],
            "measured": o32["explained_variance"],
            "met": bool(o32["explained_variance"] >= TARGETS["explained_variance"]),
        },
        "selective_languages": {
            "target": MIN_SELECTIVE_LANGUAGES,
            "measured": n_selective,
            "met": n_selective >= MIN_SELECTIVE_LANGUAGES,
        },
        "dominant_latent_languages": {
            "target": MIN_SELECTIVE_LANGUAGES,
            "measured": n_clear,
            "met": n_clear >= MIN_SELECTIVE_LANGUAGES,
        },
    }
    tokens_by_lang = {
        split: {lang: sum(v["tokens"] for v in per.values()) for lang, per in text.counts[split].items()}
        for split in ("train", "heldout")
    }
    per_source: dict[str, dict[str, int]] = {}
    for split in ("train", "heldout"):
        for _lang, per in text.counts[split].items():
            for key, v in per.items():
                row = per_source.setdefault(key, {"train_tokens": 0, "heldout_tokens": 0, "train_docs": 0})
                row[f"{split}_tokens"] += v["tokens"]
                if split == "train":
                    row["train_docs"] += v["docs"]
    return {
        "sae": {
            "architecture": sae.cfg.architecture(),  # as saved (BatchTopK variants load as JumpReLU)
            "trained_as": settings.architecture,
            "matryoshka_widths": list(settings.matryoshka_widths),
            "d_in": int(sae.cfg.d_in),
            "d_sae": int(sae.cfg.d_sae),
            "k": int(settings.k),
            "hook_name": hook,
            "model_name": model_source["id"],
            "storage_dtype": storage_dtype,
            "normalisation": "expected_average_only_in (folded into the weights)",
        },
        "model": {**model_source, "path": portable_path(model_source["path"]) if model_source.get("path") else None},
        "command": portable_command(cfg.command),  # paths relative to the repository, never this machine's
        "config": {
            k: ((portable_path(v) if v is not None else None) if k in ("cache_dir", "out_dir", "text_dir") else v)
            for k, v in asdict(cfg).items()
            if k not in ("command",)
        },
        "training": {
            **asdict(settings),
            "steps": settings.steps,
            "cached_train_tokens": n_train_tokens,
            "epochs_over_cache": round(epochs, 2),
            "runner": "sae_lens.LanguageModelSAETrainingRunner",
            "sae_lens_version": sae_lens.__version__,
            "torch_version": torch.__version__,
            "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} threads (shared)",
        },
        "text": {
            "context_size": text.plan.context_size,
            "train_sequences": len(text.train),
            "heldout_sequences": len(text.heldout),
            "tokens_by_language": tokens_by_lang,
            "tokens_by_source": per_source,
            "sources": {k: asdict(v) for k, v in sorted(text.sources.items())},
            "heldout_policy": "whole documents, drawn before the train split and never trained on; "
            f"language-selectivity probes use the bundled corpus lines 201-{cfg.probe_last_line} "
            "(never trained on)",
        },
        "hook_comparison": [
            {
                "hook": c.hook,
                "training_tokens": c.training_tokens,
                "explained_variance": c.explained_variance,
                "l0": c.l0,
                "n_clear_languages": c.n_clear,
                "mean_selectivity": c.mean_score,
                "chosen": c.hook == hook,
                "per_language": [_sel(s) for s in c.selectivity],
            }
            for c in candidates
        ],
        "quality": quality,
        "selectivity": {
            "threshold": SELECTIVE_THRESHOLD,
            "n_clear_languages": n_clear,
            "n_selective_languages": n_selective,
            "bar": _bar_text(),
            "per_language": [_sel(s) for s in selectivity],
        },
        "dense_threshold": DENSE_THRESHOLD,
        "targets": targets,
        "limits": _limits(targets, settings, n_train_tokens, epochs),
        "timings_s": dict(timings),
    }


def _bar_text() -> str:
    from saesteer.select.selective import SelectivityBar

    bar = SelectivityBar()
    return (
        f"fires on >= {bar.min_freq:g} of the language's tokens and >= {bar.ratio:g}x as often as on any "
        "other language"
    )


def _limits(targets: dict[str, Any], settings: TrainSettings, n_cache: int, epochs: float) -> list[str]:
    notes = []
    missed = [k for k, v in targets.items() if not v["met"]]
    if missed:
        notes.append(
            f"Not met: {', '.join(missed)}. The run trained on {settings.training_tokens:,} activation vectors "
            f"({settings.steps} steps of {settings.batch_tokens}), {epochs:.1f} passes over {n_cache:,} cached "
            "tokens: the compute budget (a shared 2-core CPU, no GPU) bounded both the forward passes that "
            "produce activations and the SAE steps; SAEs of this width usually train on 10^7-10^8 tokens."
        )
    return notes


def _f(x: Any, nd: int = 3) -> str:
    if isinstance(x, float):
        return "nan" if x != x else f"{x:.{nd}f}"
    return str(x)


def _arch(sae: dict[str, Any]) -> str:
    trained = sae.get("trained_as", sae["architecture"])
    if trained == sae["architecture"]:
        return str(trained)
    widths = sae.get("matryoshka_widths") or []
    nested = f", nested prefixes {'/'.join(map(str, widths))}" if widths else ""
    return f"{trained}{nested} (saved as {sae['architecture']})"


def render_markdown(r: dict[str, Any]) -> str:
    """``REPORT.md`` from :func:`build_report`'s data."""
    sae, tr, q = r["sae"], r["training"], r["quality"]
    shipped = q["shipped"]
    o = q["overall"][shipped]
    lines = [
        "# Default SAE for Gemma 3 270M: training report",
        "",
        "Written by `saesteer train-sae`; every figure below is measured by that command (see `report.json`).",
        "",
        f"- Model: `{sae['model_name']}`; hook `{sae['hook_name']}`; architecture {_arch(sae)} "
        f"(k={sae['k']}), d_in {sae['d_in']}, width {sae['d_sae']} ({sae['d_sae'] // sae['d_in']}x); "
        f"stored as {sae['storage_dtype']} (loads as float32); normalisation {sae['normalisation']}.",
        f"- Trained with `{tr['runner']}` (sae-lens {tr['sae_lens_version']}, torch {tr['torch_version']}) on "
        f"{tr['training_tokens']:,} activation vectors ({tr['steps']} steps x {tr['batch_tokens']}, lr {tr['lr']}), "
        f"{tr['epochs_over_cache']} passes over {tr['cached_train_tokens']:,} cached tokens; {tr['machine']}.",
        f"- Command: `{r['command']}`",
        "",
        "## Targets (held-out multilingual text)",
        "",
        "| metric | target | measured | met |",
        "|---|---|---|---|",
    ]
    for k, v in r["targets"].items():
        lines.append(f"| {k} | {v['target']} | {_f(v['measured'])} | {'yes' if v['met'] else 'no'} |")
    sel0 = r["selectivity"]
    if "bar" in sel0:
        lines += [
            "",
            f"selective_languages: languages with at least one latent that {sel0['bar']} on the probe "
            "sentences (the bar of `saesteer features selective`, which on an index also drops latents that fire "
            f"on random tokens); dominant_latent_languages: languages whose best latent fires on >= "
            f"{sel0['threshold']:g} more of their tokens than of any other language's (a stricter bar).",
        ]
    for note in r["limits"]:
        lines += ["", note]
    lines += [
        "",
        f"## Quality per language (held-out documents, BOS excluded; the SAE as shipped, {shipped} weights)",
        "",
        "| lang | tokens | EV | NMSE | L0 | CE clean | CE spliced | CE zero-abl. | CE recovered |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lang, row in q["per_language"].items():
        m = row.get(shipped)
        if not m:
            lines.append(f"| {lang} | 0 | | | | | | | |")
            continue
        lines.append(
            f"| {lang} | {row['n_tokens']} | {_f(m['explained_variance'])} | {_f(m['nmse'])} | {_f(m['l0'], 1)} | "
            f"{_f(m['ce_clean'])} | {_f(m['ce_spliced'])} | {_f(m['ce_zero'])} | {_f(m['ce_recovered'])} |"
        )
    lines.append(
        f"| **all** | {o['n_tokens']} | {_f(o['explained_variance'])} | {_f(o['nmse'])} | {_f(o['l0'], 1)} | "
        f"{_f(o['ce_clean'])} | {_f(o['ce_spliced'])} | {_f(o['ce_zero'])} | {_f(o['ce_recovered'])} |"
    )
    lines += [
        "",
        f"Dead latents (never fire on the held-out set): {_f(100 * o['dead_share'], 1)}%; dense latents "
        f"(fire on > {int(100 * r['dense_threshold'])}% of its tokens): {_f(100 * o['dense_share'], 2)}%. "
        f"CE is measured on the first sequences of each language ({o['ce_tokens']} predicted tokens in all); "
        "the spliced and zero-ablated runs replace the hook's activations at every non-BOS position.",
        "",
        "EV = 1 - Σ‖x-x̂‖²/Σ‖x-mean(x)‖²; NMSE = Σ‖x-x̂‖²/Σ‖x‖²; CE recovered = (CE_zero - CE_spliced)/(CE_zero - CE_clean).",
        "",
    ]
    b = q.get("bundled_heldout")
    if b:
        lines += [
            f"On the bundled corpus' held-out sentences (lines {b['lines']}, all languages, {b['n_tokens']} tokens): "
            f"EV {_f(b['explained_variance'])}, NMSE {_f(b['nmse'])}, L0 {_f(b['l0'], 1)} "
            "(recomputed by the integration test in tests/test_train_default_sae.py).",
            "",
        ]
    lines += [
        "## Storage precision",
        "",
        "| weights | EV | NMSE | L0 | CE recovered | dead | dense |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in q["overall"].items():
        lines.append(
            f"| {name} | {_f(m['explained_variance'], 4)} | {_f(m['nmse'], 4)} | {_f(m['l0'], 2)} | "
            f"{_f(m.get('ce_recovered', 'not measured'), 4)} | {_f(m['dead_share'], 4)} | "
            f"{_f(m['dense_share'], 4)} |"
        )
    sizes = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in r.get("files", {}).items())
    lines += [
        "",
        f"Shipped as {sae['storage_dtype']} (half precision is chosen when its EV and NMSE stay within "
        "0.002 of float32's; the CE losses are measured for the shipped weights only). "
        f"Files: {sizes}.",
        "",
        "## Hook choice",
        "",
    ]
    lines += [
        f"Short runs on the same cached text; per language, the latent maximising freq(lang) - max freq(other) "
        f"on the bundled corpus' held-out lines {q.get('bundled_heldout', {}).get('lines', '201-250')}; "
        f"'clear' = difference >= {r['selectivity']['threshold']}.",
        "",
        "| hook | tokens | EV | L0 | languages clear | mean selectivity | chosen |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in r["hook_comparison"]:
        lines.append(
            f"| `{c['hook']}` | {c['training_tokens']:,} | {_f(c['explained_variance'])} | {_f(c['l0'], 1)} | "
            f"{c['n_clear_languages']}/{len(c['per_language'])} | {_f(c['mean_selectivity'])} | "
            f"{'yes' if c['chosen'] else ''} |"
        )
    lines += [
        "",
        "Per language (selectivity of the best latent):",
        "",
        "| lang | " + " | ".join(f"`{c['hook']}`" for c in r["hook_comparison"]) + " |",
        "|---|" + "---|" * len(r["hook_comparison"]),
    ]
    langs = [s["lang"] for s in r["hook_comparison"][0]["per_language"]] if r["hook_comparison"] else []
    for i, lang in enumerate(langs):
        cells = [
            f"{_f(c['per_language'][i]['score'], 2)} (#{c['per_language'][i]['latent']})"
            for c in r["hook_comparison"]
        ]
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    sel = r["selectivity"]
    lines += [
        "",
        f"## Language-selective latents of the shipped SAE ({sel['n_clear_languages']}/{len(sel['per_language'])} clear)",
        "",
        "Per language: the latent with the largest frequency margin, and the number of latents passing the "
        "selectivity bar.",
        "",
        "| lang | latent | fires on lang | max on other | other | margin | clear | latents passing the bar |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in sel["per_language"]:
        lines.append(
            f"| {s['lang']} | {s['latent']} | {_f(s['freq_in'])} | {_f(s['freq_out'])} | {s['other_lang']} | "
            f"{_f(s['score'])} | {'yes' if s['clear'] else 'no'} | {s.get('n_selective', '')} |"
        )
    t = r["text"]
    lines += [
        "",
        "## Training text",
        "",
        f"{t['train_sequences']} train and {t['heldout_sequences']} held-out sequences of {t['context_size']} tokens "
        f"(BOS first, one language per sequence). Held out: {t['heldout_policy']}.",
        "",
        "| lang | train tokens | held-out tokens |",
        "|---|---|---|",
    ]
    for lang, n in t["tokens_by_language"]["train"].items():
        lines.append(f"| {lang} | {n:,} | {t['tokens_by_language']['heldout'].get(lang, 0):,} |")
    lines += [
        "",
        "| source | package | version | licence | train tokens | held-out tokens |",
        "|---|---|---|---|---|---|",
    ]
    for key, s in t["sources"].items():
        n = t["tokens_by_source"].get(key, {})
        lines.append(
            f"| {key} | {s['package']} | {s['version']} | {s['licence']} | {n.get('train_tokens', 0):,} | "
            f"{n.get('heldout_tokens', 0):,} |"
        )
    lines += [
        "",
        "## Timings (wall clock, seconds)",
        "",
        "Of the run that wrote this report; a stage near 0 s found its result in the cache (tokenized text, "
        "activations, finished training runs).",
        "",
        "| stage | s |",
        "|---|---|",
    ]
    for k, v in r["timings_s"].items():
        lines.append(f"| {k} | {v} |")
    return "\n".join(lines) + "\n"
