"""Steered vs unsteered generation throughput, measured side by side in one run.

Same prompts, same seeds, same number of new tokens (EOS suppressed until ``max_new_tokens``), runs
interleaved (unsteered, steered, unsteered, ...) so that machine load hits both alike; the ratio is
median steered throughput / median unsteered throughput (target: >= 0.97).

    .venv/bin/python benchmarks/bench_steer.py            # the tiny transformers model
    .venv/bin/python benchmarks/bench_steer.py --gemma    # also Gemma 3 270M (transformers backend)
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from saesteer.steer.generate import GenerationConfig, HFBackend
from saesteer.steer.vector import Component, SteeringVector


def _vector(backend: HFBackend, operator: str, positions: str) -> SteeringVector:
    info = backend.info
    layer = (info.n_layers or 2) // 2
    v = torch.randn(info.d_model, generator=torch.Generator().manual_seed(0))
    return SteeringVector(components=(Component(f"blocks.{layer}.hook_resid_post", v / v.norm()),), model=info,
                          operator=operator, positions=positions)  # type: ignore[arg-type]


def bench(backend: HFBackend, prompts: list[str], cfg: GenerationConfig, repeats: int, variants: list[tuple[str, str]]) -> list[dict[str, Any]]:
    n_tokens = len(prompts) * cfg.max_new_tokens
    backend.generate(prompts[:1], GenerationConfig(max_new_tokens=2))  # warm-up
    rows = []
    for operator, positions in variants:
        vec = _vector(backend, operator, positions)
        base, steer = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            backend.generate(prompts, cfg)
            base.append(time.perf_counter() - t)
            t = time.perf_counter()
            backend.generate(prompts, cfg, steer=(vec, 1.0))
            steer.append(time.perf_counter() - t)
        b, s = statistics.median(base), statistics.median(steer)
        rows.append({"model": backend.info.id, "operator": operator, "positions": positions,
                     "unsteered_tok_s": n_tokens / b, "steered_tok_s": n_tokens / s, "ratio": b / s})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gemma", action="store_true", help="also benchmark Gemma 3 270M")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gemma-repeats", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--gemma-tokens", type=int, default=20)
    args = ap.parse_args()

    from saesteer.paths import package_data
    from saesteer.steer.tiny import TINY_HF_ID, make_tiny_hf_model

    prompts = [ln.strip() for ln in package_data("corpus", "data", "prompts_en.txt").read_text().splitlines() if ln.strip()]
    prompts = prompts[: args.prompts]
    variants = [("add", "all"), ("add", "generated"), ("norm_preserving_add", "all")]
    hf, tok = make_tiny_hf_model()
    rows = bench(HFBackend(hf, tok, TINY_HF_ID), prompts,
                 GenerationConfig(max_new_tokens=args.tokens, min_new_tokens=args.tokens, batch_size=len(prompts)),
                 args.repeats, variants)
    if args.gemma:
        gemma = HFBackend.load("gemma-3-270m")
        rows += bench(gemma, prompts[:4], GenerationConfig(max_new_tokens=args.gemma_tokens, min_new_tokens=args.gemma_tokens,
                                                           batch_size=4), args.gemma_repeats, [("add", "all")])
    print(f"{'model':<16} {'operator':<20} {'positions':<10} {'unsteered tok/s':>16} {'steered tok/s':>14} {'ratio':>7}")
    for r in rows:
        print(f"{r['model']:<16} {r['operator']:<20} {r['positions']:<10} {r['unsteered_tok_s']:>16.1f} "
              f"{r['steered_tok_s']:>14.1f} {r['ratio']:>7.3f}")


if __name__ == "__main__":
    main()
