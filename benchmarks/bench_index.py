"""Benchmark the index build: throughput against the bare forward pass, memory as the corpus grows, a
1M-feature SAE over 12 conditions, and vectorized ingestion. Prints ratios measured side by side in
one run (no timing assertions anywhere).

    .venv/bin/python benchmarks/bench_index.py                 # tiny model: throughput + memory + 1M features
    .venv/bin/python benchmarks/bench_index.py --gemma         # also Gemma 3 270M (default SAE if shipped)
    .venv/bin/python benchmarks/bench_index.py --threads 2     # torch threads (default 1: fair on a busy box)

Throughput: the same documents, tokenized and batched once, go through (a) the bare forward pass to the
hook's layer (``model(tokens, stop_at_layer=...)``), (b) forward + SAE encode, (c) the full collection
(forward, encode, sufficient statistics, top-k); each is timed ``--repeats`` times, interleaved, and
the best time is kept. The ratio (a)/(c) is collection throughput relative to the bare forward pass;
it is given for wall-clock time and for process CPU time (steadier on a machine shared with other jobs).

Memory: each measurement runs ``build_index`` in a fresh child process and reports its peak RSS
(``ru_maxrss``) next to the RSS after loading the model and SAE.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HOOK_GEMMA = "blocks.6.hook_resid_post"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _gemma_sae(model: Any) -> Any:
    from saesteer.saes import load_sae
    from saesteer.saes.loading import default_sae_path

    if default_sae_path().is_dir():
        return load_sae("default", model=model)
    import torch

    from saesteer.testing.tiny import make_tiny_sae

    sae = make_tiny_sae(d_in=640, d_sae=5120, hook_name=HOOK_GEMMA)
    with torch.no_grad():
        sae.b_enc.fill_(-40.0)
    sae.saesteer_source = None
    return sae


def throughput(model: Any, sae: Any, texts_per_lang: int, repeats: int, batch_size: int) -> dict[str, float]:
    """Best-of-``repeats`` tokens/s of forward, forward+encode and full collection on identical batches."""
    import torch

    from saesteer.activations import (
        batches,
        forward_only,
        stream_activations,
        tokenized_documents,
        vocab_info,
    )
    from saesteer.corpus import Condition, bundled_conditions
    from saesteer.index.stats import FeatureStatsAccumulator, default_hist_edges
    from saesteer.index.topk import TopKAccumulator
    from saesteer.saes import check_compatible

    spec = check_compatible(model, sae)
    vocab = vocab_info(model)
    docs = [
        d
        for c in bundled_conditions("train")
        for d in tokenized_documents(
            Condition(c.label, c.source, texts_per_lang), model.tokenizer, vocab, max_seq_len=256
        )
    ]
    batch_list = list(batches(docs, batch_size=batch_size, pad_id=vocab.pad_id))
    n_tokens = sum(int(b.lengths.sum()) for b in batch_list)
    d_sae = int(sae.cfg.d_sae)

    def forward() -> None:
        forward_only(model, batch_list, spec)

    def encode() -> None:
        for _ in stream_activations(model, sae, batch_list, spec=spec, vocab=vocab):
            pass

    def collect() -> None:
        acc = FeatureStatsAccumulator(d_sae, len(vocab.kinds), hist_edges=default_hist_edges())
        top = TopKAccumulator(d_sae, 10)
        for chunk in stream_activations(model, sae, batch_list, spec=spec, vocab=vocab):
            top.update(chunk, acc.update(chunk))
        acc.result()
        top.result()

    names = ("forward", "forward+encode", "collect")
    best = dict.fromkeys(names, float("inf"))
    cpu = dict.fromkeys(names, float("inf"))
    with torch.inference_mode():
        forward()  # warm-up
        for _ in range(repeats):
            for name, fn in zip(names, (forward, encode, collect), strict=True):
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
                cpu[name] = min(cpu[name], time.process_time() - c0)
    out: dict[str, float] = {f"{k} tok/s": n_tokens / v for k, v in best.items()}
    out["tokens"] = n_tokens
    out["collect / forward throughput"] = best["forward"] / best["collect"]
    out["encode / forward throughput"] = best["forward"] / best["forward+encode"]
    out["collect / forward (CPU time)"] = cpu["forward"] / cpu["collect"]
    out["encode / forward (CPU time)"] = cpu["forward"] / cpu["forward+encode"]
    return out


def end_to_end(model: Any, sae: Any, texts_per_lang: int, batch_size: int) -> dict[str, float]:
    """``build_index`` on 12 languages + a random baseline, DB writes included."""
    from saesteer.corpus import Condition, RandomTokens, bundled_conditions
    from saesteer.index.build import BuildConfig, build_index

    conds: list[Any] = [Condition(c.label, c.source, texts_per_lang) for c in bundled_conditions("train")]
    conds.append(RandomTokens("uniform", n_seqs=texts_per_lang, seq_len=32))
    with tempfile.TemporaryDirectory() as tmp:
        res = build_index(
            Path(tmp) / "b.duckdb",
            model,
            sae,
            conds,
            BuildConfig(batch_size=batch_size, feature_output=False),
        )
    n = sum(res.n_tokens.values())
    return {"build tokens": n, "build seconds": res.seconds, "build tok/s (incl. DB writes)": n / res.seconds}


def child(args: argparse.Namespace) -> None:
    """One build in this (fresh) process; prints a JSON line with RSS figures."""
    import torch

    torch.set_num_threads(args.threads)
    from saesteer.corpus import Condition, RandomTokens, bundled_conditions
    from saesteer.index.build import BuildConfig, build_index
    from saesteer.index.db import IndexDb
    from saesteer.models import load_model
    from saesteer.testing.tiny import make_tiny_sae

    model = load_model("tiny-random")
    sae = make_tiny_sae(d_sae=args.d_sae, hook_name="blocks.1.hook_resid_pre")
    if args.d_sae >= 1 << 16:
        with torch.no_grad():
            sae.b_enc.fill_(-3.0)  # about 400 active features per token: a realistic L0 for a wide SAE
    loaded = _current_rss_mb()
    if args.conditions:
        conds: list[Any] = [Condition(c.label, c.source, args.docs) for c in bundled_conditions("train")][
            : args.conditions
        ]
    else:
        conds = [
            RandomTokens("uniform", n_seqs=args.tokens // 100, seq_len=99, seed=0)
        ]  # + BOS = 100 tokens each
    cfg = BuildConfig(top_k=args.top_k, feature_output=False, chunk_elements=args.chunk_elements)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "m.duckdb"
        res = build_index(db, model, sae, conds, cfg)
        with IndexDb(db, read_only=True) as con:
            rows = int(con.execute("SELECT count(*) FROM feature_stats").fetchall()[0][0])
            top_rows = int(con.execute("SELECT count(*) FROM top_examples").fetchall()[0][0])
            l0 = con.execute(
                "SELECT sum(n_active)::DOUBLE / (SELECT sum(n_tokens) FROM conditions) FROM feature_stats"
            ).fetchall()[0][0]
    out = {
        "d_sae": args.d_sae,
        "conditions": len(conds),
        "tokens": sum(res.n_tokens.values()) + 0,
        "rss_after_load_mb": round(loaded, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "seconds": round(res.seconds, 1),
        "feature_stats_rows": rows,
        "mean_active_features_per_token": round(float(l0), 1),
        "top_example_rows": top_rows,
    }
    print(json.dumps(out), flush=True)


def run_child(threads: int, **kw: Any) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--threads", str(threads)]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _print(title: str, rows: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for k, v in rows.items():
        print(f"  {k:<36} {v:,.3f}" if isinstance(v, float) else f"  {k:<36} {v}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gemma", action="store_true", help="also benchmark Gemma 3 270M")
    ap.add_argument("--gemma-docs", type=int, default=20, help="documents per language for Gemma")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-1m", action="store_true", help="skip the 1M-feature SAE run")
    ap.add_argument("--skip-tiny", action="store_true", help="skip the tiny-model throughput and memory runs")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tokens", type=int, default=10_000, help=argparse.SUPPRESS)
    ap.add_argument("--d-sae", type=int, default=256, help=argparse.SUPPRESS)
    ap.add_argument("--conditions", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--docs", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--top-k", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--chunk-elements", type=int, default=1 << 24, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    import torch

    torch.set_num_threads(args.threads)
    from saesteer.models import load_model
    from saesteer.saes import load_sae

    print(f"torch threads: {args.threads}; best of {args.repeats} interleaved runs")
    if not args.skip_tiny:
        tiny = load_model("tiny-random")
        tiny_sae = load_sae("tiny", model=tiny)
        _print(
            "tiny model (d_model 64) + tiny SAE (256 features), 12 languages x 50 docs",
            throughput(tiny, tiny_sae, 50, args.repeats, 16),
        )
        _print(
            "tiny model, build_index end to end, 12 languages x 50 docs + random",
            end_to_end(tiny, tiny_sae, 50, 16),
        )
        small = run_child(args.threads, tokens=10_000)
        big = run_child(args.threads, tokens=100_000)
        _print(
            "memory, tiny SAE (256 features), one condition",
            {
                "peak RSS at 10k tokens (MB)": small["peak_rss_mb"],
                "peak RSS at 100k tokens (MB)": big["peak_rss_mb"],
                "RSS after model+SAE load (MB)": small["rss_after_load_mb"],
                "peak 100k / peak 10k": big["peak_rss_mb"] / small["peak_rss_mb"],
            },
        )
    if not args.skip_1m:
        runs = [run_child(args.threads, d_sae=1 << 20, conditions=12, docs=d, top_k=5) for d in (2, 8)]
        for r in runs:
            _print(f"1M-feature SAE (2^20 x 64, synthetic), 12 conditions, {r['tokens']:,} tokens", r)
        _print(
            "1M-feature memory vs corpus size",
            {"peak RSS ratio (4x the docs)": runs[1]["peak_rss_mb"] / runs[0]["peak_rss_mb"]},
        )
    if args.gemma:
        gemma = load_model("gemma-3-270m")
        sae = _gemma_sae(gemma)
        what = (
            "default SAE"
            if getattr(sae, "saesteer_source", None)
            else "random 5120-feature SAE (default not shipped yet)"
        )
        _print(
            f"Gemma 3 270M + {what} at {sae.cfg.metadata.hook_name}, 12 languages x {args.gemma_docs} docs",
            throughput(gemma, sae, args.gemma_docs, args.repeats, 16),
        )


if __name__ == "__main__":
    main()
