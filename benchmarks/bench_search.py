"""Benchmark: a full feature search (filters + score + top 20) over a synthetic 1M-feature index.

    .venv/bin/python benchmarks/bench_search.py                 # 1M features x 12 languages + random
    .venv/bin/python benchmarks/bench_search.py --profile sparse --runs 20

The index is written once (``--db``, default under the system temp dir; about 90 s and 0.6 GB for the
dense profile, plus its search table: one row per feature, columns per condition, which the default
search reads in one scan) and reused while its spec matches. Profiles:

- ``dense``: every feature fires in (almost) every condition: ~12M ``feature_stats`` rows, the worst case;
- ``sparse``: realistic SAE sparsity (background frequencies 1e-6..1e-3): ~45% of the rows.

Each scenario runs ``--runs`` times, cycling over the 12 target languages, on one read-only connection
(but "new connection per search": what one ``saesteer features search`` pays, cold caches included),
each run preceded by the numpy reference pass (a bincount over as many rows as ``feature_stats`` holds);
the script prints p50 / p95 of wall and process CPU time for both, their ratios, optionally the search's
per-stage wall times (``--stages``: ``SearchResult.timings``), and the load average (wall times are only
comparable between runs on an idle machine; CPU times and ratios hold up better under load).
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
from contextlib import nullcontext
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

    def default_cold(path, lang):  # a path: opened (cold caches) and closed by each run
        return Search(path, f"language={lang}").drop_random().top(20)

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
        "the same, new connection per search (CLI)": default_cold,
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
    ap.add_argument("--stages", action="store_true", help="also print each scenario's per-stage wall times")
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
    print("wall and CPU (process CPU seconds, all DuckDB threads; robust to other jobs' load) in ms; "
          "ratios: search / numpy pass, same percentile")
    print(f"{'scenario':45s} {'wall p50':>8s} {'p95':>6s} {'CPU p50':>8s} {'p95':>6s} | {'numpy wall p50':>14s} "
          f"{'p95':>5s} {'CPU p50':>7s} {'p95':>5s} | ratio wall p95, CPU p50, CPU p95")
    for name, make in _scenarios().items():
        if args.only and not any(x and x in name for x in args.only.split(",")):
            continue
        # one read-only connection per scenario (none held for the cold one: DuckDB shares an open file's
        # instance, and so its caches, between the connections of a process)
        with IndexDb(path, read_only=True) if "new connection" not in name else nullcontext(path) as db:
            make(db, "fr").run()  # warm-up: file pages, catalog
            times, cpu, ref_t, ref_c, stages = [], [], [], [], []
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
                stages.append(res.timings)
                assert len(res) == 20, name
            w, c, rw, rc = (1e3 * np.asarray(x) for x in (times, cpu, ref_t, ref_c))

            def p(x: np.ndarray, q: float) -> float:
                return float(np.percentile(x, q))

            print(
                f"{name:45s} {p(w, 50):8.0f} {p(w, 95):6.0f} {p(c, 50):8.0f} {p(c, 95):6.0f} | {p(rw, 50):14.0f} "
                f"{p(rw, 95):5.0f} {p(rc, 50):7.0f} {p(rc, 95):5.0f} | {p(w, 95) / p(rw, 95):.2f}x, "
                f"{p(c, 50) / p(rc, 50):.2f}x, {p(c, 95) / p(rc, 95):.2f}x",
                flush=True,
            )
            if args.stages:
                parts = ", ".join(f"{k} {1e3 * float(np.median([s.get(k, 0.0) for s in stages])):.1f}"
                                  for k in stages[0])
                print(f"{'':45s} stages, wall p50 ms: {parts}")
    print(
        f"load average after: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores); wall times are comparable "
        "only between runs on an idle machine, CPU times and the ratios also under load"
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
