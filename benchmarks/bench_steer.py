"""Steered vs unsteered generation throughput, measured side by side in one run.

Same prompts, same seeds, same number of new tokens (EOS suppressed until ``max_new_tokens``), runs
interleaved (unsteered, steered, unsteered, ...) so that machine load hits both alike; the ratio is
median steered throughput / median unsteered throughput (target: >= 0.97).

    .venv/bin/python benchmarks/bench_steer.py            # the tiny transformers model
    .venv/bin/python benchmarks/bench_steer.py --gemma    # also Gemma 3 270M (transformers backend)
    .venv/bin/python benchmarks/bench_steer.py --gemma --threads 1   # steadier on a shared machine
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
    return SteeringVector(
        components=(Component(f"blocks.{layer}.hook_resid_post", v / v.norm()),),
        model=info,
        operator=operator,
        positions=positions,
    )  # type: ignore[arg-type]


def hook_share(backend: HFBackend, prompts: list[str], cfg: GenerationConfig, vec: SteeringVector) -> float:
    """Fraction of a steered run's wall time spent inside saesteer's hooks (tracker + intervention).

    Load on a shared machine slows hooks and model alike, so this share is stable where wall-clock
    ratios are noisy; ``1 - share`` is the throughput ratio the hooks alone imply.
    """
    from saesteer.steer.hooks import SteeringHandle
    from saesteer.steer.positions import PositionTracker

    spent = [0.0]
    originals = (SteeringHandle._intervene, PositionTracker.begin_call)

    def timed(fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[0] += time.perf_counter() - t

        return wrapper

    SteeringHandle._intervene = timed(originals[0])  # type: ignore[method-assign]
    PositionTracker.begin_call = timed(originals[1])  # type: ignore[method-assign]
    try:
        t = time.perf_counter()
        backend.generate(prompts, cfg, steer=(vec, 1.0))
        total = time.perf_counter() - t
    finally:
        SteeringHandle._intervene, PositionTracker.begin_call = originals  # type: ignore[method-assign]
    return spent[0] / total


def bench(
    backend: HFBackend,
    prompts: list[str],
    cfg: GenerationConfig,
    repeats: int,
    variants: list[tuple[str, str]],
) -> list[dict[str, Any]]:
    n_tokens = len(prompts) * cfg.max_new_tokens
    backend.generate(prompts[:1], GenerationConfig(max_new_tokens=2))  # warm-up, unsteered and steered
    backend.generate(
        prompts[:1], GenerationConfig(max_new_tokens=2), steer=(_vector(backend, "add", "all"), 1.0)
    )
    rows = []
    for operator, positions in variants:
        vec = _vector(backend, operator, positions)
        wall: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        for i in range(repeats):
            for steered in (False, True) if i % 2 == 0 else (True, False):  # alternate the order
                t, c = time.perf_counter(), time.process_time()
                backend.generate(prompts, cfg, steer=(vec, 1.0) if steered else None)
                wall[steered].append(time.perf_counter() - t)
                cpu[steered].append(time.process_time() - c)
        b, s = statistics.median(wall[False]), statistics.median(wall[True])
        rows.append(
            {
                "model": backend.info.id,
                "operator": operator,
                "positions": positions,
                "unsteered_tok_s": n_tokens / b,
                "steered_tok_s": n_tokens / s,
                "ratio": b / s,
                "best_ratio": min(wall[False]) / min(wall[True]),
                "cpu_ratio": statistics.median(cpu[False]) / statistics.median(cpu[True]),
                "hook_share": hook_share(backend, prompts, cfg, vec),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gemma", action="store_true", help="also benchmark Gemma 3 270M")
    ap.add_argument("--no-tiny", action="store_true", help="skip the tiny model")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--gemma-repeats", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--gemma-tokens", type=int, default=20)
    ap.add_argument("--gemma-prompts", type=int, default=4)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (1 makes CPU time robust on a shared machine)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from saesteer.paths import package_data
    from saesteer.testing.tiny_hf import TINY_HF_ID, make_tiny_hf_model

    prompts = [
        ln.strip()
        for ln in package_data("corpus", "data", "prompts_en.txt").read_text().splitlines()
        if ln.strip()
    ]
    prompts = prompts[: args.prompts]
    variants = [("add", "all"), ("add", "generated"), ("norm_preserving_add", "all")]
    hf, tok = make_tiny_hf_model()
    rows = (
        []
        if args.no_tiny
        else bench(
            HFBackend(hf, tok, TINY_HF_ID),
            prompts,
            GenerationConfig(max_new_tokens=args.tokens, min_new_tokens=args.tokens, batch_size=len(prompts)),
            args.repeats,
            variants,
        )
    )
    if args.gemma:
        gemma = HFBackend.load("gemma-3-270m")
        rows += bench(
            gemma,
            prompts[: args.gemma_prompts],
            GenerationConfig(
                max_new_tokens=args.gemma_tokens, min_new_tokens=args.gemma_tokens, batch_size=4
            ),
            args.gemma_repeats,
            [("add", "all")],
        )
    print(
        f"{'model':<16} {'operator':<20} {'positions':<10} {'unsteered tok/s':>16} {'steered tok/s':>14} "
        f"{'ratio':>7} {'best-run ratio':>15} {'cpu-time ratio':>15} {'hook share':>11}"
    )
    for r in rows:
        print(
            f"{r['model']:<16} {r['operator']:<20} {r['positions']:<10} {r['unsteered_tok_s']:>16.1f} "
            f"{r['steered_tok_s']:>14.1f} {r['ratio']:>7.3f} {r['best_ratio']:>15.3f} {r['cpu_ratio']:>15.3f} "
            f"{r['hook_share']:>11.2%}"
        )
    print(
        "ratio = steered / unsteered throughput (wall clock, medians of interleaved runs); best-run ratio uses the "
        "fastest run of each (robust to load spikes); cpu-time ratio uses process CPU time; hook share = time inside "
        "saesteer's hooks / steered wall time (1 - share = the ratio the hooks imply)"
    )


if __name__ == "__main__":
    main()
