"""Benchmark the Ray engine against the plain index build on the same documents, side by side in one run
(no timing assertions anywhere).

    .venv/bin/python benchmarks/bench_ray.py                        # Gemma 3 270M + default SAE
    .venv/bin/python benchmarks/bench_ray.py --model tiny-random --sae tiny --docs 40

Each configuration runs in a fresh child process (clean peak-memory figures):

- ``plain``: ``build_index`` in one process with torch on 1 thread (what one Ray worker gets);
- ``ray1`` / ``ray2``: ``build_index_ray`` on a local Ray cluster with 1 and 2 workers of 1 CPU each.

Printed: tokens/s of the compute phase (plain: the build after the model is loaded; Ray: from the
workers being ready to the last unit stored, which includes each unit's private DuckDB file, export and
transfer) and end to end (plain: model load + build; Ray: cluster start, workers loading the model,
units, merge); the ratio Ray-1-worker / plain (the engine's overhead; target >= 0.9); each worker's CPU
share (its process CPU time / the units phase wall time) and peak RSS; the driver's peak RSS during the
merge (sampled every 20 ms) and over the whole run. The scaling projection at the end is arithmetic on
these measurements, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def _rss_now_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _conditions(args: argparse.Namespace) -> list[Any]:
    from dataclasses import replace

    from saesteer.corpus import RandomTokens, bundled_conditions

    conds: list[Any] = [replace(c, max_docs=args.docs) for c in bundled_conditions("train", args.languages.split(","))]
    if args.n_random:
        conds.append(RandomTokens("uniform", n_seqs=args.n_random, seq_len=64, seed=0))
    return conds


def child_plain(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import torch

    from saesteer.index.build import BuildConfig, build_index
    from saesteer.models import load_model
    from saesteer.saes import load_sae

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    m = load_model(args.model)
    s = load_sae(args.sae, model=m)
    t1 = time.perf_counter()
    c0 = time.process_time()
    res = build_index(out / "plain.duckdb", m, s, _conditions(args), BuildConfig(feature_output=False))
    t2 = time.perf_counter()
    tokens = sum(res.n_tokens.values())
    return {"tokens": tokens, "compute_s": t2 - t1, "end_to_end_s": t2 - t0, "cpu_s": time.process_time() - c0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_ray(args: argparse.Namespace, out: Path, workers: int) -> dict[str, Any]:
    from saesteer.cluster import RaySettings
    from saesteer.index.build import BuildConfig
    from saesteer.index.ray_build import RayProgress, build_index_ray
    from saesteer.index.units import RayBuildSettings

    merging = threading.Event()
    stop = threading.Event()
    peak = {"merge": 0.0}

    def sample() -> None:
        while not stop.is_set():
            if merging.is_set():
                peak["merge"] = max(peak["merge"], _rss_now_mb())
            time.sleep(0.02)

    def on_progress(ev: RayProgress) -> None:
        if ev.last == "merging":
            peak["before_merge"] = _rss_now_mb()
            merging.set()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    settings = RayBuildSettings(RaySettings(workers=workers, cpus_per_worker=1), unit_docs=args.unit_docs)
    t0 = time.perf_counter()
    res = build_index_ray(out / f"ray{workers}.duckdb", args.model, args.sae, _conditions(args),
                          BuildConfig(feature_output=False), settings=settings, progress=on_progress)
    t1 = time.perf_counter()
    stop.set()
    sampler.join()
    units_s = res.phases["units"]
    return {"tokens": res.n_tokens, "compute_s": units_s, "end_to_end_s": t1 - t0, "phases": res.phases,
            "units": res.units,
            "workers": [{"cpu_share": w["cpu_s"] / max(units_s, 1e-9), "peak_rss_mb": w["max_rss_mb"]}
                        for w in res.worker_usage],
            "cpu_s": sum(w["cpu_s"] for w in res.worker_usage),
            "driver_rss_before_merge_mb": peak.get("before_merge", float("nan")),
            "driver_peak_rss_merge_mb": peak["merge"],
            "driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _run_child(kind: str, argv: list[str], out: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, *argv, "--child", kind, "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gemma-3-270m")
    ap.add_argument("--sae", default="default")
    ap.add_argument("--languages", default="fr,de,zh,ru")
    ap.add_argument("--docs", type=int, default=60, help="documents per language")
    ap.add_argument("--n-random", type=int, default=0, help="random-token sequences (64 tokens) added")
    ap.add_argument("--unit-docs", type=int, default=30)
    ap.add_argument("--child", choices=["plain", "ray1", "ray2"], help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        res = child_plain(args, args.out) if args.child == "plain" else child_ray(args, args.out, int(args.child[-1]))
        print(json.dumps(res))
        return
    argv = ["--model", args.model, "--sae", args.sae, "--languages", args.languages, "--docs", str(args.docs),
            "--n-random", str(args.n_random), "--unit-docs", str(args.unit_docs)]
    with tempfile.TemporaryDirectory() as tmp:
        runs = {kind: _run_child(kind, argv, Path(tmp)) for kind in ("plain", "ray1", "ray2")}
    plain = runs["plain"]
    assert all(r["tokens"] == plain["tokens"] for r in runs.values()), "the runs indexed different token counts"
    print(f"model {args.model}, SAE {args.sae}; {args.languages} x {args.docs} docs + {args.n_random} random: "
          f"{plain['tokens']:,} tokens; Ray units of {args.unit_docs} docs ({runs['ray1']['units']} units)")
    print(f"{'run':6} {'compute tok/s':>14} {'end-to-end tok/s':>17} {'compute s':>10} {'end-to-end s':>13}")
    for kind, r in runs.items():
        print(f"{kind:6} {r['tokens'] / r['compute_s']:14,.1f} {r['tokens'] / r['end_to_end_s']:17,.1f} "
              f"{r['compute_s']:10.1f} {r['end_to_end_s']:13.1f}")
    rate = {k: r["tokens"] / r["compute_s"] for k, r in runs.items()}
    per_cpu = {k: r["tokens"] / r["cpu_s"] for k, r in runs.items()}
    print("tokens per CPU-second (plain: the build process; Ray: the workers, units phase): "
          + ", ".join(f"{k} {v:,.1f}" for k, v in per_cpu.items()))
    print(f"ratio Ray-1-worker / plain (compute, wall): {rate['ray1'] / rate['plain']:.2f}  (target >= 0.9)")
    print(f"ratio Ray-1-worker / plain (compute, CPU time): {per_cpu['ray1'] / per_cpu['plain']:.2f}")
    print(f"ratio Ray-2-workers / Ray-1-worker (compute): {rate['ray2'] / rate['ray1']:.2f}")
    print(f"ratio Ray-1-worker / plain (end to end): "
          f"{(plain['end_to_end_s'] / runs['ray1']['end_to_end_s']):.2f}")
    for kind in ("ray1", "ray2"):
        r = runs[kind]
        ph = ", ".join(f"{k} {v:.1f} s" for k, v in r["phases"].items())
        ws = "; ".join(f"worker {i}: CPU share {w['cpu_share']:.2f}, peak RSS {w['peak_rss_mb']:,.0f} MB"
                       for i, w in enumerate(r["workers"]))
        print(f"{kind}: phases {ph}; {ws}")
        print(f"{kind}: driver RSS {r['driver_rss_before_merge_mb']:,.0f} MB before the merge, peak "
              f"{r['driver_peak_rss_merge_mb']:,.0f} MB during it, {r['driver_peak_rss_mb']:,.0f} MB over the run")
    print(f"plain: peak RSS {plain['peak_rss_mb']:,.0f} MB (model + SAE + one condition)")
    eff = min(1.0, per_cpu["ray1"] / per_cpu["plain"])
    share = sum(w["cpu_share"] for w in runs["ray2"]["workers"]) / len(runs["ray2"]["workers"])
    print("PROJECTION (arithmetic on the numbers above, not measured): with N workers on N free cores, the "
          f"units phase runs at about N x {eff:.2f} (CPU-time efficiency, capped at 1) x {per_cpu['plain']:,.0f} "
          f"tok per core-second; on this machine 2 workers got {share:.2f} of a core each on average. The merge "
          f"({runs['ray2']['phases']['merge']:.1f} s here) and the start-up do not shrink with N.")


if __name__ == "__main__":
    main()
