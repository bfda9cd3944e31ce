"""Text sources, conditions, random-token baselines and the bundled corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from saesteer.corpus import (
    Condition,
    HFDatasetSource,
    ListSource,
    RandomTokens,
    TableSource,
    TextFileSource,
    bundled_conditions,
    bundled_languages,
    bundled_prompts,
    bundled_texts,
    text_source,
)
from saesteer.errors import CorpusError


def _texts(source):
    return [(d.doc_id, d.text) for d in source.documents()]


def test_text_file_one_doc_per_line_skips_blanks(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("first\n\n  \nsecond line\nthird\n", encoding="utf-8")
    src = text_source(f)
    assert isinstance(src, TextFileSource) and src.mode == "line"
    assert _texts(src) == [(0, "first"), (1, "second line"), (2, "third")]
    h = src.content_hash()
    assert h == text_source(f).content_hash()
    f.write_text("first\nsecond line changed\nthird\n", encoding="utf-8")
    assert text_source(f).content_hash() != h


def test_text_directory_one_doc_per_file(tmp_path):
    (tmp_path / "b.txt").write_text("doc b\nstill b", encoding="utf-8")
    (tmp_path / "a.txt").write_text("doc a", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("doc c", encoding="utf-8")
    (tmp_path / ".hidden.txt").write_text("hidden", encoding="utf-8")
    src = text_source(tmp_path)
    assert src.count() == 3
    assert _texts(src) == [(0, "doc a"), (1, "doc b\nstill b"), (2, "doc c")]
    assert [t for _, t in _texts(TextFileSource(tmp_path, per="line"))] == [
        "doc a",
        "doc b",
        "still b",
        "doc c",
    ]


def test_tables_with_text_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": i, "body": f"text {i}"} for i in range(5)] + [{"id": 5, "body": None}]
    jl = tmp_path / "d.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    cs = tmp_path / "d.csv"
    cs.write_text("id,body\n" + "".join(f'{r["id"]},"{r["body"] or ""}"\n' for r in rows), encoding="utf-8")
    pqf = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), pqf)
    want = [(i, f"text {i}") for i in range(5)]
    for path in (jl, cs, pqf):
        src = text_source(path, column="body")
        assert isinstance(src, TableSource)
        src.validate()
        assert _texts(src) == want, path


def test_unknown_column_lists_the_available_ones(tmp_path):
    jl = tmp_path / "d.jsonl"
    jl.write_text('{"content": "x"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"unknown column 'text'.*available columns: content"):
        TableSource(jl).validate()
    with pytest.raises(CorpusError, match="--column applies"):
        text_source(tmp_path / "x.txt", column="body")


def test_undecodable_text_is_a_clear_error(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes("ok line\ncaf\xe9\n".encode("latin-1"))
    src = text_source(f)
    with pytest.raises(CorpusError, match=r"undecodable text: .*latin1.txt is not valid UTF-8 \(byte 11"):
        src.content_hash()
    with pytest.raises(CorpusError, match="undecodable"):
        list(src.documents())


def test_empty_corpus_is_a_clear_error(tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(CorpusError, match="empty corpus"):
        Condition("language=xx", text_source(f)).validate()
    with pytest.raises(CorpusError, match="no such file"):
        text_source(tmp_path / "missing.txt").validate()


def test_condition_labels_and_max_docs():
    src = ListSource(("a", "b", "c"))
    c = Condition("language=fr", src, max_docs=2)
    assert (c.key, c.value, c.is_random) == ("language", "fr", False)
    assert [d.text for d in c.documents()] == ["a", "b"]
    assert c.count() == 2
    assert c.source_hash() != Condition("language=fr", src).source_hash()
    for bad in ("french", "language=", "=fr", "language = fr"):
        with pytest.raises(CorpusError, match="key=value"):
            Condition(bad, src)


def test_hf_dataset_from_local_path(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text": ["one", "", "two", "three"], "n": [1, 2, 3, 4]}).save_to_disk(
        tmp_path / "ds"
    )
    src = HFDatasetSource(str(tmp_path / "ds"), n=2)
    src.validate()
    assert _texts(src) == [(0, "one"), (1, "two")]
    assert src.count() == 2
    stream = HFDatasetSource(str(tmp_path / "ds"), streaming=True)
    assert [t for _, t in _texts(stream)] == ["one", "two", "three"]
    assert src.content_hash() == HFDatasetSource(str(tmp_path / "ds"), n=2).content_hash()
    with pytest.raises(CorpusError, match=r"unknown column 'body'.*text, n"):
        HFDatasetSource(str(tmp_path / "ds"), column="body").validate()
    with pytest.raises(CorpusError, match="cannot load dataset"):
        HFDatasetSource(str(tmp_path / "nope")).validate()


def test_random_tokens_uniform_seeded_and_non_special():
    allowed = np.array([5, 6, 7, 9, 11])
    rt = RandomTokens("uniform", n_seqs=50, seq_len=20, seed=3)
    a = list(rt.sequences(allowed))
    b = list(RandomTokens("uniform", n_seqs=50, seq_len=20, seed=3).sequences(allowed))
    c = list(RandomTokens("uniform", n_seqs=50, seq_len=20, seed=4).sequences(allowed))
    assert [i for i, _ in a] == list(range(50))
    assert all(len(s) == 20 for _, s in a)
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, c, strict=True))
    flat = np.concatenate([s for _, s in a])
    assert set(flat) == set(allowed)  # every allowed id appears, nothing else
    assert rt.label == "random=uniform" and rt.condition().is_random


def test_random_tokens_unigram_follows_reference():
    ref = ListSource(("aab", "aaab", "ab"))

    def encode(texts):
        return [[ord(ch) for ch in t] for t in texts]

    allowed = np.array([ord("a"), ord("b"), ord("c")])
    rt = RandomTokens("unigram", n_seqs=400, seq_len=50, seed=0, reference=ref)
    ids, probs = rt.unigram_distribution(allowed, encode)
    assert list(ids) == [ord("a"), ord("b")]
    np.testing.assert_allclose(probs, [6 / 9, 3 / 9])
    flat = np.concatenate([s for _, s in rt.sequences(allowed, encode)])
    assert set(flat) == {ord("a"), ord("b")}
    assert abs((flat == ord("a")).mean() - 2 / 3) < 0.02
    with pytest.raises(CorpusError, match="reference"):
        RandomTokens("unigram").validate()
    assert rt.content_hash() != RandomTokens("unigram", 400, 50, 0, ListSource(("b",))).content_hash()


def test_bundled_corpus():
    langs = bundled_languages()
    assert len(langs) == 12 and {"en", "fr", "zh"} <= set(langs)
    for lang in langs:
        assert len(bundled_texts(lang, "train")) == 200
        assert len(bundled_texts(lang, "heldout")) == 50
        assert bundled_texts(lang, "all") == bundled_texts(lang, "train") + bundled_texts(lang, "heldout")
    assert len(bundled_prompts()) == 40
    conds = bundled_conditions("heldout", ["fr", "de"])
    assert [c.label for c in conds] == ["language=fr", "language=de"]
    assert [d.text for d in conds[0].documents()] == bundled_texts("fr", "heldout")
    with pytest.raises(CorpusError, match="no bundled corpus"):
        bundled_texts("xx")
