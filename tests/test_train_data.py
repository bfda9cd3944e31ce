"""Training-text preparation: balanced, packed, held-out documents never in the train split."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from saesteer.errors import CorpusError
from saesteer.testing.tiny import make_byte_tokenizer
from saesteer.train.data import (
    TextPlan,
    TrainingText,
    build_training_text,
    bundled_heldout_tokens,
    shuffled_order,
    source_kind,
)
from saesteer.train.sources import Candidate, SourceInfo


def _text(t: str) -> str:
    return t


def _cands(lang: str, source: str, n: int, marker: str) -> list[Candidate]:
    # Each document's text is made of a unique marker, so the packed tokens reveal which document they came from.
    return [
        Candidate(lang, source, f"{source}:{lang}:{i}", partial(_text, f"{marker}{i:03d} " * 8))
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def tok():
    return make_byte_tokenizer()


def _sources(*keys: str) -> dict[str, SourceInfo]:
    return {k: SourceInfo(k, source_kind(k), k, "1", "GPL-3+", "test") for k in keys}


def test_splits_are_packed_with_bos_and_held_out_documents_are_never_trained_on(tok):
    cands = (
        _cands("fr", "manpages-fr", 30, "M") + _cands("fr", "ddtp", 30, "D") + _cands("fr", "bundled", 5, "B")
    )
    cands += (
        _cands("de", "manpages-de", 30, "N") + _cands("de", "ddtp", 30, "E") + _cands("de", "bundled", 5, "C")
    )
    plan = TextPlan(
        langs=("fr", "de"),
        train_tokens_per_lang=1024,
        heldout_tokens_per_lang=256,
        context_size=64,
        window_tokens=40,
    )
    tt = build_training_text(cands, _sources("manpages-fr", "manpages-de", "ddtp", "bundled"), tok, plan)
    assert tt.train.tokens.shape == (2 * 16, 64) and tt.heldout.tokens.shape == (2 * 4, 64)
    assert (tt.train.tokens[:, 0] == tok.bos_token_id).all() and (
        tt.heldout.tokens[:, 0] == tok.bos_token_id
    ).all()
    assert (tt.train.tokens[:, 1:] != tok.bos_token_id).all()
    assert tt.train.langs == ["fr"] * 16 + ["de"] * 16
    # held-out documents: never the bundled corpus, and never in the train split
    assert tt.heldout_doc_ids and not any(d.startswith("bundled") for d in tt.heldout_doc_ids)
    train_text = tok.decode(tt.train.tokens.reshape(-1).tolist())
    for doc_id in tt.heldout_doc_ids:
        src, _, i = doc_id.split(":")
        marker = {"manpages-fr": "M", "ddtp": None, "manpages-de": "N"}[src]
        if marker is not None:
            assert f"{marker}{int(i):03d}" not in train_text
    # the kinds of a language are balanced (bundled runs out after its 5 short documents)
    fr = tt.counts["train"]["fr"]
    assert abs(fr["manpages-fr"]["tokens"] - fr["ddtp"]["tokens"]) <= 40
    assert fr["bundled"]["docs"] == 5


def test_scarce_sources_are_reread_with_other_windows(tok):
    cands = _cands("id", "manpages-id", 5, "I")
    plan = TextPlan(
        langs=("id",),
        train_tokens_per_lang=256,
        heldout_tokens_per_lang=32,
        context_size=32,
        window_tokens=20,
        max_passes=4,
    )
    tt = build_training_text(cands, _sources("manpages-id"), tok, plan)
    assert len(tt.heldout) == 1 and len(tt.train) >= 4
    assert tt.counts["train"]["id"]["manpages-id"]["docs"] == 2  # three documents are held out
    assert tt.counts["train"]["id"]["manpages-id"]["tokens"] > 2 * 20  # more than one window per document


def test_missing_language_is_a_clear_error(tok):
    with pytest.raises(CorpusError, match="no training text for language 'tr'"):
        build_training_text(
            _cands("fr", "ddtp", 3, "D"),
            _sources("ddtp"),
            tok,
            TextPlan(
                langs=("fr", "tr"), train_tokens_per_lang=64, heldout_tokens_per_lang=64, context_size=32
            ),
        )


def test_training_text_round_trips(tmp_path, tok):
    cands = _cands("fr", "ddtp", 20, "D")
    plan = TextPlan(langs=("fr",), train_tokens_per_lang=256, heldout_tokens_per_lang=64, context_size=32)
    tt = build_training_text(cands, _sources("ddtp"), tok, plan)
    tt.save(tmp_path / "text")
    back = TrainingText.load(tmp_path / "text")
    assert back.plan == plan and back.train.langs == tt.train.langs and back.sources == tt.sources
    np.testing.assert_array_equal(back.train.tokens, tt.train.tokens)
    np.testing.assert_array_equal(back.heldout.tokens, tt.heldout.tokens)
    assert back.counts == tt.counts


def test_bundled_heldout_tokens_packs_lines_201_to_250(tok):
    arr, langs = bundled_heldout_tokens(tok, ("fr", "zh"), 128)
    assert arr.shape[1] == 128 and (arr[:, 0] == tok.bos_token_id).all()
    assert set(langs) == {"fr", "zh"} and langs == sorted(langs, key=["fr", "zh"].index)
    from saesteer.paths import package_data

    lines = package_data("corpus", "data", "fr.txt").read_text(encoding="utf-8").splitlines()
    fr = arr[[i for i, x in enumerate(langs) if x == "fr"]]
    text = tok.decode([t for t in fr[:, 1:].reshape(-1).tolist() if t != tok.pad_token_id])
    assert text.startswith(lines[200]) and lines[249] in text and lines[199] not in text


def test_shuffled_order_is_a_seeded_permutation():
    assert sorted(shuffled_order(50, 1)) == list(range(50))
    assert shuffled_order(50, 1) == shuffled_order(50, 1) != shuffled_order(50, 2)
