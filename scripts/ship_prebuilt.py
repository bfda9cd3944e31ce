"""Write what the package ships so the first run need not compute it (see saesteer.index.prebuilt and
saesteer.steer.residual_stats):

1. ``saesteer/prebuilt/index/``: the Parquet export of the default build of the bundled corpus
   (``saesteer index build --bundled --random uniform`` / ``saesteer quickstart`` on the default model +
   SAE), taken from ``--db``, which must hold that build with every bundled language and random=uniform;
2. ``saesteer/prebuilt/residual_stats.json``: the typical residual norm and the per-language mean
   residuals at the default SAE's hook, taken from the user cache when a run computed them, else computed.

    .venv/bin/python scripts/ship_prebuilt.py --db features_db/index.duckdb
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True, help="an index holding the default build of the bundled corpus")
    ap.add_argument("--skip-means", action="store_true", help="ship the norm only, not the DiffMean means")
    args = ap.parse_args(argv)

    from saesteer.activations import vocab_info
    from saesteer.corpus import RandomTokens, bundled_conditions, bundled_languages
    from saesteer.eval.language import LanguageEvalConfig
    from saesteer.index.build import BuildConfig
    from saesteer.index.db import IndexDb
    from saesteer.index.prebuilt import SHIPPED_DIR
    from saesteer.index.provenance import build_info
    from saesteer.index.shards import export_build
    from saesteer.models import load_model
    from saesteer.paths import package_data
    from saesteer.quickstart import QuickstartConfig
    from saesteer.saes import check_compatible, load_sae
    from saesteer.steer import residual_stats
    from saesteer.steer.residuals import (
        bundled_mean_residual,
        mean_settings,
        norm_settings,
        typical_residual_norm,
    )

    model = load_model("gemma-3-270m")
    sae = load_sae("default", model=model)
    hook = str(sae.cfg.metadata.hook_name)
    qs = QuickstartConfig()
    info = build_info(model, sae, check_compatible(model, sae, None), BuildConfig(), vocab_info(model).prepend_bos)
    conds = [*bundled_conditions("train"), RandomTokens("uniform", n_seqs=qs.n_random, seq_len=qs.random_len, seed=0)]
    want = {c.condition().label if isinstance(c, RandomTokens) else c.label:
            (c.condition() if isinstance(c, RandomTokens) else c).source_hash() for c in conds}
    with IndexDb(args.db, read_only=True) as db:
        have = dict(db.query("index_completed_conditions", [info.build_id]).fetchall())
    wrong = sorted(lb for lb, h in want.items() if have.get(lb) != h)
    if wrong:
        print(f"error: {args.db} lacks build {info.build_id} of {', '.join(wrong)} (or built it from other data)",
              file=sys.stderr)
        return 2

    out = package_data(*SHIPPED_DIR)
    tmp = Path(tempfile.mkdtemp(prefix="ship-index-"))
    export_build(args.db, tmp / "index", info.build_id)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(tmp / "index", out)
    shutil.rmtree(tmp)
    import pyarrow.parquet as pq

    for f in sorted(out.glob("*.parquet")):  # smaller in the wheel; DuckDB reads zstd Parquet as any other
        pq.write_table(pq.read_table(f), f, compression="zstd", compression_level=19)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"index: build {info.build_id} -> {out} ({size / 1e6:.2f} MB)")

    mhash = residual_stats.model_hash(model)
    assert mhash is not None
    entries = []
    norm = typical_residual_norm(model, hook)  # from the user cache when a run computed it
    entries.append(residual_stats.entry(mhash, hook, "norm", norm_settings(), norm))
    if not args.skip_means:
        n = LanguageEvalConfig().diffmean_texts
        for lang in bundled_languages():
            mean = bundled_mean_residual(model, hook, lang, n_texts=n)
            entries.append(residual_stats.entry(mhash, hook, "mean", mean_settings(lang, n),
                                                [float(x) for x in mean.tolist()]))
            print(f"mean residual {lang}: norm {float(mean.norm()):.2f}", flush=True)
    path = package_data(*residual_stats.SHIPPED)
    residual_stats.write_entries(path, entries)
    print(f"residual stats: {len(entries)} entries -> {path} ({path.stat().st_size / 1e3:.1f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
