"""Two vectors at once after `saesteer auto`: the auto run's SAE-feature vector for a target label plus a
DiffMean language vector (bundled parallel corpus, target vs English) at the same hook.

    .venv/bin/python scripts/auto_interaction.py OUT [--target formal] [--lang fr] [--lang-strength 0.2]

OUT is the `--out` folder of a finished `saesteer auto` run (its report.json, vectors/ and index are
reused; the probe is retrained on the same train split, which is deterministic). Prints the interaction
table (saesteer.eval.interaction) as Markdown and writes it to OUT/interaction.md with one example
continuation per run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--target", default="formal")
    ap.add_argument("--method", default="sae_features")
    ap.add_argument("--lang", default="fr")
    ap.add_argument("--lang-strength", type=float, default=0.2)
    ap.add_argument("--strength", type=float, default=None, help="the target vector's (default: auto's choice)")
    ap.add_argument("--model", default=None, help="default: the auto run's")
    ap.add_argument("--n-prompts", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    args = ap.parse_args()

    from saesteer.corpus import bundled_prompts
    from saesteer.corpus.labelled import load_labelled
    from saesteer.eval.auto_report import interaction_table
    from saesteer.eval.interaction import Arm, interaction
    from saesteer.eval.probe import train_probe
    from saesteer.models import load_model
    from saesteer.steer.baselines import diffmean_bundled
    from saesteer.steer.calibrate import language_accuracy
    from saesteer.steer.export import load_vector
    from saesteer.steer.generate import GenerationConfig, make_backend

    info = json.loads((args.out / "report.json").read_text())
    settings = info.get("settings", {})
    model_name = args.model or settings.get("model", "gemma-3-270m")
    pick = next(r for r in info["summary"] if r["target"] == args.target and r["method"] == args.method)
    strength = args.strength if args.strength is not None else pick["strength"]
    data = load_labelled(settings.get("data", info["source"].removesuffix(".jsonl")), info["label_column"])
    vec = load_vector(args.out / "vectors" / f"{data.condition_label(args.target)}.{args.method}.safetensors")
    hook = vec.components[0].hook_name
    model = load_model(model_name)
    probe = train_probe(model, hook, data.pairs("train"), data.pairs("heldout"))
    lang = diffmean_bundled(model, hook, args.lang, ["en"])
    backend = make_backend(model_name)
    table, texts = interaction(
        backend, bundled_prompts()[: args.n_prompts],
        Arm(args.target, vec, float(strength), probe.metric(model, args.target)),
        Arm(args.lang, lang, args.lang_strength, language_accuracy(args.lang)),
        GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.n_prompts),
    )
    md = [f"{args.target} ({args.method}, x{strength:g}) + {args.lang} (DiffMean vs en, x{args.lang_strength:g}) at "
          f"`{hook}`, {args.n_prompts} prompts, {args.max_new_tokens} greedy tokens; probe held-out accuracy "
          f"{probe.heldout_accuracy:.3f}", "", interaction_table(table), "", "| run | first continuation |", "|---|---|"]
    md += [f"| {name} | {items[0]!r} |".replace("\n", " ") for name, items in texts.items()]
    text = "\n".join(md) + "\n"
    (args.out / "interaction.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
