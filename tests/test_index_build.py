"""Building the index on the tiny model: SQL results equal a direct recomputation, resume, crash
safety, readers during a build, and a clear error for each bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from saesteer.corpus import Condition, ListSource, RandomTokens, bundled_conditions, text_source
from saesteer.errors import (
    CorpusError,
    DatabaseLockedError,
    DimensionMismatchError,
    HookError,
    IndexDbError,
    SchemaVersionError,
)
from saesteer.index.build import BuildConfig, build_index
from saesteer.index.db import IndexDb

STATS_SQL = """
SELECT f.feature, f.n_active, f.n_active::DOUBLE / c.n_tokens AS freq, f.sum_act / c.n_tokens AS mean,
       f.n_docs_active
FROM feature_stats f JOIN conditions c USING (build_id, condition)
WHERE f.condition = ? ORDER BY f.feature
"""


def _conds(n_docs=25, langs=("fr", "ru")):
    return [Condition(c.label, c.source, n_docs) for c in bundled_conditions(languages=list(langs))]


def _direct(model, sae, token_rows):
    """Raw SAE codes per document from a plain full forward pass with the cache (BOS dropped)."""
    hook = sae.cfg.metadata.hook_name
    out = []
    with torch.inference_mode():
        for toks in token_rows:
            _, cache = model.run_with_cache(toks, names_filter=hook)
            out.append(sae.encode(cache[hook][0, 1:]).double().numpy())
    return out


def _rows(db_path, table, order):
    with IndexDb(db_path, read_only=True) as db:
        return db.fetch_df(f"SELECT * EXCLUDE (build_id) FROM {table} ORDER BY {order}")


def test_sql_frequencies_and_means_equal_direct_recomputation(tmp_path, tiny_model, tiny_sae):
    conds = [*_conds(), RandomTokens("uniform", n_seqs=12, seq_len=40, seed=1)]
    db = tmp_path / "i.duckdb"
    res = build_index(db, tiny_model, tiny_sae, conds, BuildConfig(batch_size=8, feature_output=False))
    assert res.written == ["language=fr", "language=ru", "random=uniform"]
    from saesteer.activations import vocab_info

    allowed = vocab_info(tiny_model).allowed_ids
    for cond in conds:
        if isinstance(cond, RandomTokens):
            rows = [torch.tensor([[2, *s.tolist()]]) for _, s in cond.sequences(allowed)]
            label = cond.label
        else:
            rows = [tiny_model.to_tokens(d.text) for d in cond.documents()]
            label = cond.label
        acts = _direct(tiny_model, tiny_sae, rows)
        a = np.concatenate(acts)
        with IndexDb(db, read_only=True) as con:
            got = con.fetch_df(STATS_SQL, [label])
            n_tokens = con.execute("SELECT n_tokens FROM conditions WHERE condition = ?", [label]).fetchall()[
                0
            ][0]
        assert n_tokens == len(a)
        n_active, freq, mean = np.zeros(a.shape[1]), np.zeros(a.shape[1]), np.zeros(a.shape[1])
        n_active[got.feature] = got.n_active
        freq[got.feature] = got.freq
        mean[got.feature] = got["mean"]
        np.testing.assert_array_equal(n_active, (a > 0).sum(0))
        np.testing.assert_allclose(freq, (a > 0).mean(0), rtol=1e-12)
        np.testing.assert_allclose(mean, a.mean(0), rtol=1e-9, atol=1e-12)
        docs_active = np.zeros(a.shape[1])
        docs_active[got.feature] = got.n_docs_active
        np.testing.assert_array_equal(docs_active, sum((x > 0).any(0) for x in acts))
        assert (a > 0).any()


def test_top_examples_point_at_the_activating_token(tmp_path, tiny_model, tiny_sae):
    conds = _conds(10, ("en",))
    db = tmp_path / "i.duckdb"
    build_index(db, tiny_model, tiny_sae, conds, BuildConfig(top_k=3, context_window=4, feature_output=False))
    texts = [d.text for d in conds[0].documents()]
    with IndexDb(db, read_only=True) as con:
        top = con.fetch_df("SELECT * FROM top_examples ORDER BY feature, rank")
    assert len(top) and top["rank"].max() == 2
    hook = tiny_sae.cfg.metadata.hook_name
    for row in top.sample(20, random_state=0).itertuples():
        toks = tiny_model.to_tokens(texts[row.doc_id])
        with torch.inference_mode():
            _, cache = tiny_model.run_with_cache(toks, names_filter=hook)
            act = tiny_sae.encode(cache[hook][0, row.position])[row.feature].item()
        assert act == pytest.approx(row.activation, abs=1e-5)  # one row vs a batched encode
        strs = tiny_model.tokenizer.batch_decode([[t] for t in toks[0].tolist()])
        assert list(row.context)[row.context_pos] == strs[row.position]
        assert len(row.context) <= 9
    per_feature = top.groupby("feature")["activation"].apply(lambda s: list(s) == sorted(s, reverse=True))
    assert per_feature.all()


def test_exclusions_and_token_counts(tmp_path, tiny_model, tiny_sae):
    cond = Condition("topic=special", ListSource(("ab<eos>cd", "xyz")))
    db = tmp_path / "i.duckdb"
    build_index(db, tiny_model, tiny_sae, [cond], BuildConfig(feature_output=False))
    keep_bos = tmp_path / "j.duckdb"
    res = build_index(
        keep_bos, tiny_model, tiny_sae, [cond], BuildConfig(exclude=("pad", "special"), feature_output=False)
    )
    with IndexDb(db, read_only=True) as a, IndexDb(keep_bos, read_only=True) as b:
        assert a.execute("SELECT n_tokens, n_bos, n_docs FROM conditions").fetchall() == [(7, 2, 2)]
        assert b.execute("SELECT n_tokens, n_bos FROM conditions").fetchall() == [(9, 2)]
        counts = dict(a.execute("SELECT token_id, count FROM token_counts").fetchall())
        assert 1 not in counts and 2 not in counts and sum(counts.values()) == 7
        assert dict(b.execute("SELECT token_id, count FROM token_counts").fetchall())[2] == 2
    assert (
        res.build_id
        != build_index(db, tiny_model, tiny_sae, [cond], BuildConfig(feature_output=False)).build_id
    )


def test_rerun_resumes_and_rejects_changed_sources(tmp_path, tiny_model, tiny_sae):
    db = tmp_path / "i.duckdb"
    first = build_index(db, tiny_model, tiny_sae, _conds(8, ("fr",)), BuildConfig(feature_output=False))
    again = build_index(db, tiny_model, tiny_sae, _conds(8, ("fr", "de")), BuildConfig(feature_output=False))
    assert first.build_id == again.build_id
    assert (again.written, again.skipped) == (["language=de"], ["language=fr"])
    with pytest.raises(IndexDbError, match="language=fr built from different data"):
        build_index(db, tiny_model, tiny_sae, _conds(9, ("fr",)), BuildConfig(feature_output=False))
    other = build_index(
        db, tiny_model, tiny_sae, _conds(8, ("fr",)), BuildConfig(top_k=2, feature_output=False)
    )
    assert other.build_id != first.build_id and other.written == ["language=fr"]
    with IndexDb(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM builds").fetchall()[0][0] == 2


def test_interrupt_leaves_no_partial_condition_and_rerun_completes(tmp_path, tiny_model, tiny_sae):
    db = tmp_path / "i.duckdb"
    conds = _conds(12, ("fr", "de"))

    def interrupt(ev):
        if ev.condition == "language=de" and ev.status == "batch":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(
            db,
            tiny_model,
            tiny_sae,
            conds,
            BuildConfig(batch_size=2, feature_output=False),
            progress=interrupt,
        )
    with IndexDb(db, read_only=True) as con:
        for table in ("conditions", "feature_stats", "top_examples", "token_counts", "condition_signals"):
            got = con.execute(f"SELECT DISTINCT condition FROM {table}").fetchall()
            assert got == [("language=fr",)], table
    res = build_index(db, tiny_model, tiny_sae, conds, BuildConfig(batch_size=2, feature_output=False))
    assert (res.written, res.skipped) == (["language=de"], ["language=fr"])
    clean = tmp_path / "clean.duckdb"
    build_index(clean, tiny_model, tiny_sae, conds, BuildConfig(batch_size=2, feature_output=False))
    for table, order in [
        ("feature_stats", "condition, feature"),
        ("top_examples", "condition, feature, rank"),
    ]:
        a = _rows(db, table, order).map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v)
        b = _rows(clean, table, order).map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v)
        assert len(a) > 0 and a.to_dict("list") == b.to_dict("list")


def test_failure_inside_the_write_transaction_rolls_back(tmp_path, tiny_model, tiny_sae, monkeypatch):
    db = tmp_path / "i.duckdb"
    original = IndexDb.insert_arrow

    def failing(self, table, data):
        if table == "token_counts":
            raise KeyboardInterrupt
        return original(self, table, data)

    monkeypatch.setattr(IndexDb, "insert_arrow", failing)
    with pytest.raises(KeyboardInterrupt):
        build_index(db, tiny_model, tiny_sae, _conds(5, ("fr",)), BuildConfig(feature_output=False))
    monkeypatch.setattr(IndexDb, "insert_arrow", original)
    with IndexDb(db, read_only=True) as con:
        for table in ("conditions", "feature_stats", "top_examples", "token_counts", "condition_signals"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)], table
        assert con.execute("SELECT count(*) FROM builds").fetchall() == [(0,)]  # the build row commits with its first condition


def test_feature_output_is_the_logit_lens(tmp_path, tiny_model, tiny_sae):
    db = tmp_path / "i.duckdb"
    build_index(db, tiny_model, tiny_sae, _conds(3, ("fr",)), BuildConfig(feature_output_k=4))
    with IndexDb(db, read_only=True) as con:
        fo = con.fetch_df("SELECT * FROM feature_output ORDER BY feature, rank")
    assert len(fo) == 4 * tiny_sae.cfg.d_sae
    logits = ((tiny_sae.W_dec * tiny_model.ln_final.w) @ tiny_model.W_U).detach()  # see saesteer.models.unembed
    logits[:, :4] = float("-inf")  # the 4 special tokens are left out
    want = logits.topk(4, dim=1)
    np.testing.assert_array_equal(fo.token_id.to_numpy().reshape(-1, 4), want.indices.numpy())
    np.testing.assert_allclose(fo.logit.to_numpy().reshape(-1, 4), want.values.numpy(), rtol=1e-5)


def test_reader_can_query_while_a_build_runs(tmp_path, tiny_model, tiny_sae):
    db = tmp_path / "i.duckdb"
    seen = {}
    script = textwrap.dedent(f"""
        from saesteer.index.db import IndexDb
        with IndexDb({str(db)!r}, read_only=True, wait_s=5) as db:
            print(db.execute("SELECT count(*) FROM conditions").fetchall()[0][0])
    """)

    def probe(ev):
        if ev.condition == "language=de" and ev.status == "batch" and "n" not in seen:
            out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
            seen["n"] = int(out.stdout.strip())

    build_index(
        db,
        tiny_model,
        tiny_sae,
        _conds(6, ("fr", "de")),
        BuildConfig(batch_size=2, feature_output=False),
        progress=probe,
    )
    assert seen["n"] == 1  # the reader saw the finished condition in the middle of the build


@pytest.fixture
def locked_db(tmp_path):
    """A database held open for writing by another process."""
    db = tmp_path / "locked.duckdb"
    IndexDb(db).close()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(db)!r}); print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ok"
    yield db
    proc.kill()
    proc.wait()


def test_locked_database_is_a_clear_error(locked_db, tiny_model, tiny_sae):
    with pytest.raises(DatabaseLockedError, match="being written by another process"):
        build_index(locked_db, tiny_model, tiny_sae, _conds(2, ("fr",)), BuildConfig(lock_wait_s=0.3))
    with pytest.raises(DatabaseLockedError, match="being written"):
        IndexDb(locked_db, read_only=True, wait_s=0.3)


def test_bad_inputs_fail_before_writing(tmp_path, tiny_model, tiny_sae):
    from saesteer.testing.tiny import make_tiny_sae

    db = tmp_path / "i.duckdb"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    bad_utf8 = tmp_path / "bad.txt"
    bad_utf8.write_bytes(b"fine\n\xff\xfe\n")
    table = tmp_path / "t.jsonl"
    table.write_text('{"body": "x"}\n', encoding="utf-8")
    ok = _conds(3, ("fr",))
    cases = [
        ([Condition("language=xx", text_source(empty))], CorpusError, "empty corpus"),
        ([Condition("language=xx", text_source(bad_utf8))], CorpusError, "undecodable text"),
        ([Condition("language=xx", text_source(table))], CorpusError, "unknown column 'text'"),
        ([*ok, *ok], CorpusError, "duplicate condition label"),
        ([], CorpusError, "no conditions"),
    ]
    for conds, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            build_index(
                db, tiny_model, tiny_sae, ok + conds if conds and conds[0].label == "language=xx" else conds
            )
    with pytest.raises(DimensionMismatchError, match="d_in=32"):
        build_index(db, tiny_model, make_tiny_sae(d_in=32), ok)
    with pytest.raises(HookError, match="unknown hook"):
        build_index(db, tiny_model, tiny_sae, ok, hook_name="blocks.7.hook_resid_post")
    assert not db.exists()  # nothing was written, not even the build row


def test_newer_schema_is_refused(tmp_path, tiny_model, tiny_sae):
    db = tmp_path / "i.duckdb"
    with IndexDb(db) as con:
        con.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(SchemaVersionError, match="newer saesteer"):
        build_index(db, tiny_model, tiny_sae, _conds(2, ("fr",)))


def test_build_config_validation():
    from saesteer.errors import SaesteerError

    with pytest.raises(SaesteerError, match="shard"):
        BuildConfig(shard=(2, 2))
    with pytest.raises(SaesteerError, match="batch_size=0"):
        BuildConfig(batch_size=0)
    with pytest.raises(CorpusError, match="unknown token exclusion"):
        from saesteer.activations import exclusion_table, vocab_info
        from saesteer.testing.tiny import make_tiny_model

        exclusion_table(vocab_info(make_tiny_model()), ["eos"])
