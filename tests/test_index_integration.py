"""The index on the real Gemma 3 270M with a random 640-wide SAE at blocks.6.hook_resid_post."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saesteer.corpus import Condition, RandomTokens, bundled_conditions
from saesteer.index.build import BuildConfig, build_index
from saesteer.index.db import IndexDb

pytestmark = pytest.mark.integration
HOOK = "blocks.6.hook_resid_post"


@pytest.fixture(scope="module")
def gemma_sae(tmp_path_factory, gemma):
    from saesteer.saes import load_sae
    from saesteer.testing.tiny import make_tiny_sae

    d = tmp_path_factory.mktemp("sae")
    sae = make_tiny_sae(d_in=640, d_sae=1024, hook_name=HOOK)
    with torch.no_grad():
        sae.b_enc.fill_(-40.0)  # Gemma's residual norms are in the hundreds; keep the random codes sparse
    sae.save_model(str(d))
    return load_sae(str(d), model=gemma)


def test_gemma_build_matches_direct_recomputation(tmp_path, gemma, gemma_sae):
    conds = [Condition(c.label, c.source, 20) for c in bundled_conditions(languages=["en", "fr", "zh"])]
    conds.append(RandomTokens("uniform", n_seqs=8, seq_len=32).condition())
    db = tmp_path / "g.duckdb"
    res = build_index(db, gemma, gemma_sae, conds, BuildConfig(batch_size=8, top_k=5))
    assert res.written == [c.label for c in conds]
    with IndexDb(db, read_only=True) as con:
        rows = dict(con.execute("SELECT condition, n_docs FROM conditions").fetchall())
        assert rows == {"language=en": 20, "language=fr": 20, "language=zh": 20, "random=uniform": 8}
        assert con.execute("SELECT count(DISTINCT feature) FROM feature_output").fetchall() == [(1024,)]
        got = con.fetch_df(
            "SELECT feature, n_active, sum_act, n_tokens FROM feature_stats JOIN conditions USING (build_id, condition) "
            "WHERE condition = 'language=fr'"
        )
        top = con.fetch_df(
            "SELECT * FROM top_examples WHERE condition = 'language=fr' ORDER BY activation DESC LIMIT 1"
        )
    acts = []
    with torch.inference_mode():
        for d in conds[1].documents():
            _, cache = gemma.run_with_cache(gemma.to_tokens(d.text), names_filter=HOOK)
            acts.append(gemma_sae.encode(cache[HOOK][0, 1:]).double().numpy())
    a = np.concatenate(acts)
    assert int(got.n_tokens.iloc[0]) == len(a)
    n_active, sums = np.zeros(1024), np.zeros(1024)
    n_active[got.feature] = got.n_active
    sums[got.feature] = got.sum_act
    assert (a > 0).sum() > 0
    np.testing.assert_array_equal(n_active, (a > 0).sum(0))
    np.testing.assert_allclose(sums, a.sum(0), rtol=1e-5, atol=1e-3)
    best = top.iloc[0]
    assert best.activation == pytest.approx(a.max(), rel=1e-4)
    assert list(best.context)[best.context_pos].strip()
