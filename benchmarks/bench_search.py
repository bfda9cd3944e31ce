"""Benchmark: a full feature search (filters + score + top 20) over a synthetic 1M-feature index.

    .venv/bin/python benchmarks/bench_search.py                 # 1M features x 12 languages + random
    .venv/bin/python benchmarks/bench_search.py --profile sparse --runs 20

The index is written once (``--db``, default under the system temp dir; about 90 s and 0.6 GB for the
dense profile, plus its search table: one row per feature, columns per condition, which the default
search reads in one scan) and reused while its spec matches. Profiles:

- ``dense``: every feature fires in (almost) every condition: ~12M ``feature_stats`` rows, the worst case;
- ``sparse``: realistic SAE sparsity (background frequencies 1e-6..1e-3): ~45% of the rows.

Each scenario runs ``--runs`` times, cycling over the 12 target languages, on one read-only connection;
the script prints p50 / p95 wall time per scenario and the machine's load average (the numbers are only
comparable between runs on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LANGS = ("en", "fr", "de", "es", "it", "pt", "nl", "pl", "ru", "tr", "id", "zh")


def _spec(args: argparse.Namespace):
    from saesteer.testing.synthetic import SyntheticSpec, agnostic_feature, language_feature

    freq = (1e-4, 3e-2) if args.profile == "dense" else (1e-6, 1e-3)
    return SyntheticSpec(
        n_features=args.features,
        languages=LANGS,
        n_tokens=args.tokens,
        n_docs=200,
        n_bins=args.bins,
        freq_range=freq,
        planted=[language_feature(1, "fr"), agnostic_feature(2)],
        top_k=0,
        n_output_tokens=5,
        seed=0,
    )


def _ensure_index(path: Path, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from saesteer.index.db import IndexDb
    from saesteer.testing.synthetic import build_synthetic_index

    spec = _spec(args)
    key = json.dumps(asdict(spec), sort_keys=True, default=str)
    meta = path.with_suffix(".spec.json")
    if not args.rebuild and path.exists() and meta.exists() and meta.read_text() == key:
        from saesteer.index.search_table import refresh_search_table

        with IndexDb(path) as db:
            refresh_search_table(db, spec.build_id)  # an index written by an older saesteer has none
            return int(db.execute("SELECT count(*) FROM feature_stats").fetchall()[0][0])
    for p in (path, meta, path.with_suffix(path.suffix + ".wal")):
        p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    print(
        f"building the synthetic index {path} ({args.features:,} features, profile {args.profile}) ...",
        flush=True,
    )
    res = build_synthetic_index(
        path, spec, progress=lambda c: print(f"  {c}  {time.perf_counter() - t0:.0f}s", flush=True)
    )
    meta.write_text(key)
    print(
        f"built in {time.perf_counter() - t0:.0f}s: {res.n_rows:,} feature_stats rows, {path.stat().st_size / 1e9:.2f} GB"
    )
    return res.n_rows


def _scenarios():
    from saesteer.select.search import Search

    def default(db, lang):
        return Search(db, f"language={lang}").drop_random().top(20)

    def default_rows(db, lang):
        s = default(db, lang)
        s.search_table = False  # the GROUP BY over feature_stats, for comparison
        return s

    def all_filters(db, lang):
        return (
            Search(db, f"language={lang}")
            .drop_random()
            .drop_dead()
            .drop_dense()
            .drop_bos_only()
            .min_freq(1e-3)
            .top(20)
        )

    def nu(db, lang):
        return Search(db, f"language={lang}").drop_random().rank_by("nu").top(20)

    def auroc(db, lang):
        return Search(db, f"language={lang}").drop_random().rank_by("auroc").top(20)

    return {
        "drop_random + log_odds_z (default), top 20": default,
        "the same via feature_stats (GROUP BY)": default_rows,
        "all filters + log_odds_z, top 20": all_filters,
        "drop_random + nu, top 20": nu,
        "drop_random + auroc (histograms), top 20": auroc,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--db",
        type=Path,
        default=None,
        help="index file (default: <tmp>/saesteer-bench-search/<profile>.duckdb)",
    )
    ap.add_argument("--features", type=int, default=1_000_000)
    ap.add_argument("--tokens", type=int, default=20_000, help="counted tokens per condition")
    ap.add_argument("--bins", type=int, default=16)
    ap.add_argument("--profile", choices=("dense", "sparse"), default="dense")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--only", default=None,
                    help="run only the scenarios whose name contains one of these comma-separated texts")
    args = ap.parse_args(argv)

    from saesteer.index.db import IndexDb

    path = (
        args.db
        or Path(tempfile.gettempdir()) / "saesteer-bench-search" / f"{args.profile}-{args.features}.duckdb"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    n_rows = _ensure_index(path, args)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(
        f"index: {path} | {args.features:,} features x {len(LANGS)} languages + random=uniform | "
        f"{n_rows:,} feature_stats rows | threads: DuckDB default | load average: {os.getloadavg()[0]:.2f}"
    )
    feats, vals = _reference_data(n_rows)
    print(f"machine-speed reference: one numpy bincount of {n_rows:,} weighted rows, timed before every search run")
    print(f"{'scenario':45s} {'p50 (s)':>8s} {'p95 (s)':>8s} {'min (s)':>8s} {'cpu p50':>8s}  runs   ratios to the reference")
    with IndexDb(path, read_only=True) as db:
        for name, make in _scenarios().items():
            if args.only and not any(x and x in name for x in args.only.split(",")):
                continue
            make(db, "fr").run()  # warm-up: file pages, catalog
            times, cpu, ref_t, ref_c = [], [], [], []
            for i in range(args.runs):
                t0, c0 = time.perf_counter(), _cpu()
                np.bincount(feats, weights=vals, minlength=1_000_000)
                ref_t.append(time.perf_counter() - t0)
                ref_c.append(_cpu() - c0)
                search = make(db, LANGS[i % len(LANGS)])
                t0, c0 = time.perf_counter(), _cpu()
                res = search.run()
                times.append(time.perf_counter() - t0)
                cpu.append(_cpu() - c0)
                assert len(res) == 20, name
            t, r = np.asarray(times), np.asarray(ref_t)
            print(
                f"{name:45s} {np.percentile(t, 50):8.3f} {np.percentile(t, 95):8.3f} {t.min():8.3f} "
                f"{np.percentile(cpu, 50):8.3f}  {len(t)}   p95 {np.percentile(t, 95) / np.percentile(r, 95):.2f}x, "
                f"p50 {np.percentile(t, 50) / np.percentile(r, 50):.2f}x, CPU p50 "
                f"{np.percentile(cpu, 50) / np.percentile(ref_c, 50):.2f}x the numpy pass "
                f"(numpy p50 {np.percentile(r, 50):.3f} s wall, {np.percentile(ref_c, 50):.3f} s CPU)",
                flush=True,
            )
    print(
        f"load average after: {os.getloadavg()[0]:.2f}. cpu = process CPU seconds (all DuckDB threads); on an "
        f"idle machine wall ~ cpu / {os.cpu_count()} cores for the scan-bound part"
    )


def _reference_data(n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_rows`` (feature, value) pairs: one numpy pass over them is the floor any per-row aggregation pays."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 1_000_000, n_rows), rng.random(n_rows)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


if __name__ == "__main__":
    main()
