"""Write what the package ships so the first run need not compute it (see saesteer.index.prebuilt and
saesteer.steer.residual_stats):

1. ``saesteer/prebuilt/index/``: the Parquet export of the default build of the bundled corpus
   (``saesteer index build --bundled --random uniform`` / ``saesteer quickstart`` on the default model +
   SAE), taken from ``--db``, which must hold that build with every bundled language and random=uniform;
2. ``saesteer/prebuilt/residual_stats.json``: the typical residual norm at the default SAE's hook, and
   ``saesteer/prebuilt/mean_residuals.safetensors``: the per-language mean residuals of the bundled corpus
   there (DiffMean; float32, with the identity they are used under: weights hash, hook, settings, sha256
   of the texts), taken from the user cache when a run computed them, else computed.

    .venv/bin/python scripts/ship_prebuilt.py --db features_db/index.duckdb
    .venv/bin/python scripts/ship_prebuilt.py --stats-only      # the norm and the means only (no index)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, help="an index holding the default build of the bundled corpus")
    ap.add_argument("--stats-only", action="store_true", help="ship the residual statistics only, not the index")
    ap.add_argument("--skip-means", action="store_true", help="ship the norm only, not the DiffMean means")
    args = ap.parse_args(argv)
    if args.db is None and not args.stats_only:
        ap.error("--db is required unless --stats-only")

    from saesteer.models import load_model
    from saesteer.saes import load_sae

    model = load_model("gemma-3-270m")
    sae = load_sae("default", model=model)
    hook = str(sae.cfg.metadata.hook_name)
    if not args.stats_only:
        ship_index(args.db, model, sae)
    ship_stats(model, hook, means=not args.skip_means)
    return 0


def ship_index(db_path: Path, model: Any, sae: Any) -> None:
    from saesteer.activations import vocab_info
    from saesteer.corpus import RandomTokens, bundled_conditions
    from saesteer.index.build import BuildConfig
    from saesteer.index.db import IndexDb
    from saesteer.index.prebuilt import SHIPPED_DIR
    from saesteer.index.provenance import build_info
    from saesteer.index.shards import export_build
    from saesteer.paths import package_data
    from saesteer.quickstart import QuickstartConfig
    from saesteer.saes import check_compatible

    qs = QuickstartConfig()
    info = build_info(model, sae, check_compatible(model, sae, None), BuildConfig(), vocab_info(model).prepend_bos)
    conds = [*bundled_conditions("train"), RandomTokens("uniform", n_seqs=qs.n_random, seq_len=qs.random_len, seed=0)]
    want = {c.condition().label if isinstance(c, RandomTokens) else c.label:
            (c.condition() if isinstance(c, RandomTokens) else c).source_hash() for c in conds}
    with IndexDb(db_path, read_only=True) as db:
        have = dict(db.query("index_completed_conditions", [info.build_id]).fetchall())
    wrong = sorted(lb for lb, h in want.items() if have.get(lb) != h)
    if wrong:
        print(f"error: {db_path} lacks build {info.build_id} of {', '.join(wrong)} (or built it from other data)",
              file=sys.stderr)
        raise SystemExit(2)

    out = package_data(*SHIPPED_DIR)
    tmp = Path(tempfile.mkdtemp(prefix="ship-index-"))
    export_build(db_path, tmp / "index", info.build_id)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(tmp / "index", out)
    shutil.rmtree(tmp)
    import pyarrow.parquet as pq

    for f in sorted(out.glob("*.parquet")):  # smaller in the wheel; DuckDB reads zstd Parquet as any other
        pq.write_table(pq.read_table(f), f, compression="zstd", compression_level=19)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"index: build {info.build_id} -> {out} ({size / 1e6:.2f} MB)")


def ship_stats(model: Any, hook: str, *, means: bool) -> None:
    from saesteer.corpus import bundled_languages
    from saesteer.corpus.parallel import corpus_texts
    from saesteer.eval.language import LanguageEvalConfig
    from saesteer.paths import package_data
    from saesteer.steer import residual_stats
    from saesteer.steer.residuals import (
        corpus_mean_residual,
        mean_settings,
        norm_settings,
        typical_residual_norm,
    )

    mhash = residual_stats.model_hash(model)
    assert mhash is not None
    norm = typical_residual_norm(model, hook)  # from the user cache when a run computed it
    path = package_data(*residual_stats.SHIPPED)
    residual_stats.write_entries(path, [residual_stats.entry(mhash, hook, "norm", norm_settings(), norm)])
    print(f"residual norm: {norm:.2f} -> {path} ({path.stat().st_size / 1e3:.1f} kB)")
    if not means:
        return
    n = LanguageEvalConfig().diffmean_texts
    vectors, shas = {}, {}
    for lang in bundled_languages():
        vectors[lang] = corpus_mean_residual(model, hook, lang, n_texts=n)  # the user cache, else computed
        shas[lang] = residual_stats.texts_sha256(corpus_texts("bundled", lang, "train")[:n])
        print(f"mean residual {lang}: norm {float(vectors[lang].norm()):.2f}", flush=True)
    out = package_data(*residual_stats.SHIPPED_MEANS)
    residual_stats.write_shipped_means(out, mhash, hook, mean_settings("en", n), vectors, shas)
    print(f"mean residuals: {len(vectors)} languages -> {out} ({out.stat().st_size / 1e3:.1f} kB)")


if __name__ == "__main__":
    raise SystemExit(main())
