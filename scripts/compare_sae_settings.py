"""Compare SAE training settings on the cached activations of `saesteer train-sae`, by language selectivity.

    .venv/bin/python scripts/compare_sae_settings.py CACHE "n=400000" "n=400000,k=16" "n=400000,a=m,mw=128-512-2048"

Each spec is comma-separated key=value: n (activation vectors), w (width), k, b (batch), lr, a (t: topk,
b: batchtopk, m: matryoshka), mw (matryoshka prefix widths, dash-separated). The text and activation caches
must exist (run scripts/train_default_sae.sh CACHE once; this script repeats no forward pass and trains with
the same sae-lens runner). Per spec it prints EV on the held-out split, then per language on the probe
sentences (bundled lines 201-225): the best latent's frequency margin and the number of latents passing the
`saesteer features selective` bar; results are appended to CACHE/compare_sae_settings.txt.
"""

from __future__ import annotations

import logging
import math
import re
import sys
import time
from pathlib import Path

import numpy as np


def main(cache: Path, specs: list[str]) -> None:
    from sae_lens.util import get_special_token_ids

    from saesteer.models.loading import load_model, model_source
    from saesteer.train.activation_cache import ActivationCache, token_mask
    from saesteer.train.data import TrainingText, bundled_heldout_tokens
    from saesteer.train.pipeline import TrainSaeConfig
    from saesteer.train.quality import language_selectivity, latent_frequencies, reconstruction_metrics
    from saesteer.train.runner import TrainSettings, activation_stats, run_training

    hook = "blocks.9.hook_resid_post"
    # the text plan of the shipped SAE (scripts/train_default_sae.sh)
    cfg = TrainSaeConfig(
        cache_dir=cache / "runs",
        out_dir=cache / "unused",
        text_dir=cache,
        train_tokens_per_lang=49152,
        heldout_tokens_per_lang=256,
        context_size=128,
        probe_last_line=225,
        seed=0,
    )
    model = load_model("gemma-3-270m")
    src = model_source(model)
    plan = cfg.text_plan()
    root = cfg.cache_dir / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{src.id}-{src.weights_hash[:16]}")
    text = TrainingText.load(root / f"text-{plan.key()}")
    probe_tokens, probe_langs = bundled_heldout_tokens(model.tokenizer, plan.langs, 128, last_line=225)
    special = get_special_token_ids(model.tokenizer)
    acts = ActivationCache(root / f"acts-{plan.key()}")
    train = acts.ensure(model, "train", text.train.tokens, [hook])[hook]
    held = acts.ensure(model, "heldout", text.heldout.tokens, [hook])[hook]
    probe = acts.ensure(model, "probe", probe_tokens, [hook])[hook]
    tm, hm = token_mask(text.train.tokens, special), token_mask(text.heldout.tokens, special)
    pm = token_mask(probe_tokens, special)
    mean, mean_norm = activation_stats(train, tm)
    b_dec = mean * math.sqrt(int(model.cfg.d_model)) / mean_norm
    arch = {"t": "topk", "b": "batchtopk", "m": "matryoshka"}
    for spec in specs:
        kv = dict(p.split("=", 1) for p in spec.split(","))
        st = TrainSettings(
            hook=hook,
            training_tokens=int(kv.get("n", 400_000)),
            d_sae=int(kv.get("w", 5120)),
            k=int(kv.get("k", 64)),
            batch_tokens=int(kv.get("b", 1024)),
            lr=float(kv.get("lr", 1e-3)),
            seed=0,
            architecture=arch[kv.get("a", "t")],
            matryoshka_widths=tuple(int(x) for x in kv.get("mw", "").split("-") if x),
        )
        t0 = time.time()
        sae = run_training(
            model,
            st,
            cached_activations=acts.saelens_dataset("train", hook, train, text.train.tokens, seed=0),
            tokens=text.train.tokens,
            context_size=128,
            out_dir=cache / "compare" / f"{st.key()}",
            model_name=src.id,
            dataset_name="saesteer-debian-multilingual",
            b_dec_init=b_dec,
        )
        rec = reconstruction_metrics(sae, np.asarray(held), hm)
        freq, _ = latent_frequencies(sae, probe, pm, probe_langs, plan.langs)
        sel = language_selectivity(freq, plan.langs)
        line = (
            f"{spec}: {time.time() - t0:.0f} s, EV {rec.explained_variance:.3f}, dead on probe "
            f"{float((freq.sum(0) == 0).mean()):.2f}, languages with a latent passing the bar "
            f"{sum(s.n_selective > 0 for s in sel)}, margin >= 0.3: {sum(s.clear for s in sel)}\n  "
            + " ".join(f"{s.lang}:{s.score:.2f}/{s.n_selective}" for s in sel)
        )
        print(line, flush=True)
        with open(cache / "compare_sae_settings.txt", "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2:])
