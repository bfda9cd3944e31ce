"""The second shipped corpus (UDHR): exact sizes, disjoint splits, alignment, no overlap with the
bundled corpus or (where fetched) the default SAE's Debian training text, and ``index build --corpus``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from saesteer.cli.main import app
from saesteer.corpus import (
    CORPORA,
    bundled_languages,
    bundled_texts,
    corpus_conditions,
    corpus_languages,
    corpus_texts,
    udhr_conditions,
    udhr_languages,
    udhr_texts,
)
from saesteer.corpus.parallel import UDHR
from saesteer.errors import CorpusError
from saesteer.index.spec import IndexSpec
from saesteer.train.sources import LANGS, LOCALE_TO_LANG

runner = CliRunner()


def test_udhr_sizes_and_splits():
    assert udhr_languages() == sorted(LANGS)
    for lang in udhr_languages():
        train, held, every = udhr_texts(lang, "train"), udhr_texts(lang, "heldout"), udhr_texts(lang, "all")
        assert (len(train), len(held), len(every)) == (30, 21, 51)
        assert every == train + held
        assert not set(train) & set(held)
        assert len(set(every)) == 51  # no repeated paragraph
    with pytest.raises(CorpusError, match="unknown split"):
        udhr_texts("fr", "test")  # type: ignore[arg-type]
    with pytest.raises(CorpusError, match="no udhr corpus for language 'xx'"):
        udhr_texts("xx")


def test_udhr_is_aligned_by_article():
    rows = (UDHR.data_dir() / "lines.tsv").read_text(encoding="utf-8").splitlines()[1:]
    articles = [int(r.split("\t")[1]) for r in rows]
    assert len(articles) == 51 and articles[0] == 0 and articles == sorted(articles)
    # the split falls between articles 20 and 21: no article is in both
    assert articles[UDHR.train_lines - 1] == 20 and articles[UDHR.train_lines] == 21
    # line 2 is article 1 in every language (spot-check three scripts)
    assert udhr_texts("en")[1].startswith("All human beings are born free and equal in dignity")
    assert udhr_texts("ru")[1].startswith("Все люди рождаются свободными")
    assert udhr_texts("zh")[1].startswith("人人生而自由")
    # the paragraphs have comparable lengths in every language (a misaligned line would not)
    for i in range(51):
        lengths = [len(udhr_texts(lang, "all")[i]) for lang in udhr_languages() if lang != "zh"]
        assert max(lengths) < 3 * min(lengths), i


def _shingles(text: str, n: int = 6) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def test_udhr_shares_nothing_with_the_bundled_corpus():
    for lang in bundled_languages():
        if lang == "zh":  # no word boundaries: compare 12-character windows instead
            bundled = "\n".join(bundled_texts(lang, "all"))
            grams = {t[i : i + 12] for t in udhr_texts(lang, "all") for i in range(len(t) - 11)}
            assert not any(g in bundled for g in grams)
            continue
        ours = set().union(*(_shingles(t) for t in udhr_texts(lang, "all")))
        theirs = set().union(*(_shingles(t) for t in bundled_texts(lang, "all")))
        assert not ours & theirs, (lang, sorted(ours & theirs)[:3])


def _training_text(root: Path, lang: str) -> str:
    """Every text of one language in the default SAE's Debian sources (as fetched by
    ``scripts/fetch_training_text.sh``): DDTP descriptions, man pages, gettext catalogues."""
    import gettext
    import gzip

    locales = [loc for loc, code in LOCALE_TO_LANG.items() if code == lang]
    parts: list[str] = []
    for loc in locales:
        ddtp = root / "ddtp" / f"Translation-{loc}"
        if ddtp.is_file():
            parts.append(ddtp.read_text(encoding="utf-8", errors="replace"))
    man_dirs = (
        [root / "pkgs" / "manpages" / "usr" / "share" / "man"]
        if lang == "en"
        else [p / "usr" / "share" / "man" / loc for p in (root / "pkgs").glob("manpages*") for loc in locales]
    )
    for d in man_dirs:
        for page in sorted(d.glob("man*/*")) if d.is_dir() else []:
            raw = page.read_bytes()
            parts.append((gzip.decompress(raw) if page.suffix == ".gz" else raw).decode("utf-8", "replace"))
    for loc in ["de"] if lang == "en" else locales:  # English catalogue text = the msgids
        for mo in sorted((root / "pkgs").glob(f"*/usr/share/locale/{loc}/LC_MESSAGES/*.mo")):
            with mo.open("rb") as fh:
                catalog = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]
            parts += [str(k if lang == "en" else v) for k, v in catalog.items()]
    return "\n".join(parts)


@pytest.mark.integration
def test_udhr_is_not_in_the_default_sae_training_text():
    """Where ``scripts/fetch_training_text.sh`` has run (``$SAESTEER_TRAIN_TEXT``, default
    ``/work/train_cache``), no UDHR paragraph opening occurs in that language's training sources."""
    root = Path(os.environ.get("SAESTEER_TRAIN_TEXT", "/work/train_cache"))
    if not (root / "ddtp").is_dir() or not (root / "pkgs").is_dir():
        pytest.skip("the training text is not fetched (scripts/fetch_training_text.sh)")
    for lang in udhr_languages():
        text = " ".join(_training_text(root, lang).split())
        assert len(text) > 100_000, lang  # the sources are there
        # a known sentence of the sources is found the same way (the check can fail)
        probe = next(ln for ln in _training_text(root, lang).splitlines() if len(ln.strip()) > 60).strip()
        assert " ".join(probe.split())[:40] in text
        found = [t[:40] for t in udhr_texts(lang, "all") if t[:40] in text]
        assert not found, (lang, found)


def test_named_corpora_and_conditions():
    assert set(CORPORA) == {"bundled", "udhr"}
    assert corpus_languages("udhr") == udhr_languages()
    assert corpus_texts("bundled", "fr", "heldout") == bundled_texts("fr", "heldout")
    conds = udhr_conditions("heldout", ["fr", "tr"])
    assert [c.label for c in conds] == ["language=fr", "language=tr"]
    assert [d.text for d in conds[1].documents()] == udhr_texts("tr", "heldout")
    assert conds[0].describe()["udhr"] == "fr" and conds[0].describe()["split"] == "heldout"
    assert [c.label for c in corpus_conditions("udhr")] == [f"language={x}" for x in sorted(LANGS)]
    # a different corpus of the same language is a different source
    assert corpus_conditions("udhr", languages=["fr"])[0].source_hash() != corpus_conditions(
        "bundled", languages=["fr"]
    )[0].source_hash()
    with pytest.raises(CorpusError, match="unknown corpus 'nope'"):
        corpus_texts("nope", "fr")


def test_index_spec_corpus():
    spec = IndexSpec(corpus="udhr", corpus_languages=["de", "pl"], max_docs=5)
    conds = spec.conditions()
    assert [(c.label, c.count()) for c in conds] == [("language=de", 5), ("language=pl", 5)]
    assert len(IndexSpec(corpus="udhr").conditions()) == 12
    with pytest.raises(CorpusError, match="unknown corpus"):
        IndexSpec(corpus="nope").conditions()


def test_index_build_corpus_flag(tmp_path):
    db = tmp_path / "u.duckdb"
    args = ["index", "build", "--model", "tiny-random", "--sae", "tiny", "--db", str(db), "--corpus", "udhr"]
    res = runner.invoke(app, [*args, "--max-docs", "2", "--no-feature-output"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "12 condition(s) written" in res.output
    bad = runner.invoke(app, [*args[:-1], "nope"])
    assert isinstance(bad.exception, CorpusError) and "unknown corpus 'nope'" in str(bad.exception)
    assert not db.with_suffix(".duckdb.tmp").exists()
