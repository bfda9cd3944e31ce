"""Domain confounds: the build stores per-condition domain signals (schema 2); ``features search`` and
``steer build`` warn when the target's and the contrast's text differ sharply in them, and stay quiet
on matched corpora and on indexes that predate the signals."""

from __future__ import annotations

import logging

import pytest

from saesteer.corpus.sources import Condition, ListSource
from saesteer.index.build import BuildConfig, build_index
from saesteer.index.db import IndexDb
from saesteer.index.domain import SIGNALS, token_kinds
from saesteer.select.catalog import load_catalog
from saesteer.select.domain import DOC_LEN_RATIO, THRESHOLDS, compare, condition_signals, domain_warning
from saesteer.select.search import Search

PROSE_A = [f"the quiet river runs past the old mill number {w}" for w in ("one", "two", "three")] * 4
PROSE_B = [f"a small bird sings over the green field at {w}" for w in ("dawn", "noon", "dusk")] * 4
PROSE_C = [f"my friend reads a long book about the {w}" for w in ("sea", "sky", "town")] * 4
CODE = [
    f"cp /usr/lib/x{i}/libfoo.so.{i} /opt/{i}_bak && chmod 0{i}55 ${{HOME}}/bin/run_{i}.sh\n"
    f"grep -c '[0-9]*' /etc/conf.d/{i}.cfg >> /var/log/{i}.log # {i * 37} {i * 101}\n"
    for i in range(12)
]


def _conds(*pairs):
    return [Condition(label, ListSource(tuple(texts), name=label)) for label, texts in pairs]


@pytest.fixture(scope="module")
def index(tmp_path_factory, tiny_model, tiny_sae):
    path = tmp_path_factory.mktemp("domain") / "i.duckdb"
    conds = _conds(("topic=a", PROSE_A), ("topic=b", PROSE_B), ("topic=c", PROSE_C), ("topic=code", CODE))
    build_index(path, tiny_model, tiny_sae, conds, BuildConfig(top_k=2, feature_output=False))
    return path


def test_token_kinds():
    names = dict(zip(SIGNALS, range(len(SIGNALS)), strict=True))
    assert token_kinds("2024")[names["digit"]] and not token_kinds("two")[names["digit"]]
    assert token_kinds(" .,")[names["punct"]] and token_kinds("«")[names["punct"]]
    assert not token_kinds("a.")[names["punct"]] and not token_kinds(" ")[names["punct"]]
    assert not token_kinds("\ufffd")[names["punct"]]  # a byte-fallback piece is not punctuation
    assert token_kinds("/usr")[names["code"]] and token_kinds("_")[names["code"]]
    assert not token_kinds("usr")[names["code"]]
    assert token_kinds("\n")[names["newline"]] and not token_kinds("x")[names["newline"]]


def test_build_stores_exact_signal_counts(index):
    with IndexDb(index, read_only=True) as db:
        rows = db.execute(
            "SELECT s.condition, s.signal, s.n_tokens, c.n_tokens FROM condition_signals s "
            "JOIN conditions c USING (build_id, condition) ORDER BY 1, 2"
        ).fetchall()
    got = {(c, s): n for c, s, n, _ in rows}
    assert len(rows) == 4 * len(SIGNALS)
    # the byte tokenizer counts characters: newlines and digits of the code condition exactly
    assert got[("topic=code", "newline")] == sum(t.count("\n") for t in CODE)
    assert got[("topic=code", "digit")] == sum(ch.isdigit() for t in CODE for ch in t)
    assert got[("topic=code", "code")] == sum(ch in "/\\_{}[]<>=|`$#~@*^%&" for t in CODE for ch in t)
    for cond in ("topic=a", "topic=b", "topic=c"):
        assert got[(cond, "newline")] == got[(cond, "code")] == got[(cond, "digit")] == 0


def test_compare_thresholds():
    base = {"digit": 0.0, "punct": 0.10, "code": 0.0, "newline": 0.0, "doc_len": 14.0}
    vals = {"t": dict(base), "x": dict(base), "y": dict(base)}
    assert compare(vals, "t", ["x", "y"]) == []
    vals["t"]["punct"] = 0.10 * THRESHOLDS["punct"].min_ratio - 0.001  # just under the ratio
    assert compare(vals, "t", ["x", "y"]) == []
    vals["t"]["punct"] = 0.21
    vals["t"]["digit"] = THRESHOLDS["digit"].min_abs - 0.001  # a ratio of infinity, but too few tokens
    assert [d.signal for d in compare(vals, "t", ["x", "y"])] == ["punct"]
    vals["t"]["doc_len"] = 14.0 * DOC_LEN_RATIO
    vals["y"]["code"] = 0.5  # the contrast mean (0.25) differs from the target; y is the farthest
    diffs = compare(vals, "t", ["x", "y"])
    assert [d.signal for d in diffs] == ["doc_len", "punct", "code"]
    assert diffs[2].contrast == pytest.approx(0.25) and diffs[2].worst == "y"
    # the target is plain; one contrast condition is the odd one out: the line names it
    odd = {"t": dict(base), "x": dict(base), "y": dict(base), "z": {**base, "doc_len": 200.0}}
    (d,) = compare(odd, "t", ["x", "y", "z"])
    assert d.describe() == "tokens per document (14 vs 76; z: 200)"
    (d,) = compare(odd, "z", ["t", "x", "y"])
    assert d.describe() == "tokens per document (200 vs 14)"
    del vals["x"]["code"]  # a condition without the signal (an old index): not compared
    assert "code" not in [d.signal for d in compare(vals, "t", ["x", "y"])]


def test_search_warns_on_a_planted_domain_difference(index, caplog):
    with caplog.at_level(logging.WARNING, logger="saesteer"):
        res = Search(index, target="topic=code", against="rest").top(5).run()
    assert res.domain_warning is not None
    line = res.domain_warning
    assert "\n" not in line and line.startswith("possible domain confound: topic=code differs")
    assert "code/path-token share" in line and "digit-token share" in line and "punctuation-token" in line
    assert "newline" not in line  # 2 newlines in ~190 characters: a share under THRESHOLDS' 0.02
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [line]


def test_matched_corpora_do_not_warn(index, caplog):
    with caplog.at_level(logging.WARNING, logger="saesteer"):
        for target, against in (("topic=a", "topic=b,topic=c"), ("topic=b", "topic=a"), ("topic=c", "rest")):
            res = Search(index, target=target, against=against).top(5).run()
            assert (res.domain_warning is None) == (against != "rest"), target  # rest includes the code
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_an_index_without_signals_stays_readable(index, tmp_path, caplog):
    old = tmp_path / "old.duckdb"
    old.write_bytes(index.read_bytes())
    with IndexDb(old) as db:  # make it look like a schema-1 index
        db.execute("DROP TABLE condition_signals")
        db.execute("DELETE FROM schema_version WHERE version > 1")
    with caplog.at_level(logging.DEBUG, logger="saesteer"):
        res = Search(old, target="topic=code", against="rest").top(5).run()
    assert len(res) > 0
    # only the document length is left to compare, and the code lines are not 3x longer than the prose
    assert res.domain_warning is None
    assert any("predates schema 2" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    with IndexDb(old) as db:  # opened for writing it migrates; its old conditions still have no signals
        assert db.schema_version() >= 2
        cat = load_catalog(db)
        vals = condition_signals(db, cat, cat.names)
        assert all(set(v) == {"doc_len"} for v in vals.values())
        assert domain_warning(db, cat, "topic=code", ["topic=a"]) is None


def test_steer_build_warns_and_records_it(index, tiny_model, tiny_sae, caplog):
    """The warning travels in the feature set (select checks the index); steer logs and records it."""
    from dataclasses import replace

    from saesteer.select.weights import weigh
    from saesteer.steer.build import from_feature_set

    confounded = Search(index, target="topic=code", against="rest").top(3).run().to_featureset()
    matched = Search(index, target="topic=a", against="topic=b").top(3).run().to_featureset()
    assert confounded.domain_warning is not None and matched.domain_warning is None
    with caplog.at_level(logging.WARNING, logger="saesteer"):
        vec = from_feature_set(weigh(confounded, "auto", index), tiny_sae, tiny_model, weighting="auto")
        plain = from_feature_set(weigh(matched, "auto", index), tiny_sae, tiny_model, weighting="auto")
    warned = [r.getMessage() for r in caplog.records if r.name == "saesteer.steer.build"]
    assert warned == [vec.provenance["domain_warning"]]
    assert warned[0].startswith("possible domain confound: topic=code differs")
    assert "domain_warning" not in plain.provenance
    # a feature set that names no warning (hand-made, or an old file) is checked when its index weights are read
    bare = replace(confounded, domain_warning=None)
    assert "domain_warning" not in from_feature_set(bare, tiny_sae, tiny_model, weighting="given").provenance
    assert weigh(bare, "mean_diff", index).domain_warning == confounded.domain_warning


def test_a_build_backfills_missing_signals_from_token_counts(index, tmp_path, tiny_model, tiny_sae):
    """Conditions imported from an export written before schema 2 (or built before the migration) get
    their signals from the stored token counts the next time the build runs: the same rows."""
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(index.read_bytes())
    query = "SELECT condition, signal, n_tokens FROM condition_signals ORDER BY 1, 2"
    with IndexDb(copy) as db:
        before = db.execute(query).fetchall()
        db.execute("DELETE FROM condition_signals WHERE condition IN ('topic=code', 'topic=a')")
    conds = _conds(("topic=a", PROSE_A), ("topic=b", PROSE_B), ("topic=c", PROSE_C), ("topic=code", CODE))
    res = build_index(copy, tiny_model, tiny_sae, conds, BuildConfig(top_k=2, feature_output=False))
    assert res.written == [] and len(res.skipped) == 4  # nothing recomputed
    with IndexDb(copy, read_only=True) as db:
        assert db.execute(query).fetchall() == before
