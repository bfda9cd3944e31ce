"""``eval language`` on a named shipped corpus (``--corpus udhr``) and fluency judged per target language
(native) next to English: prompts, references, DiffMean means, index check, native baselines, the report."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

import pandas as pd
import pytest

from saesteer.corpus import corpus_texts
from saesteer.errors import CorpusError, SteeringVectorError
from saesteer.eval.language import (
    LanguageEvalConfig,
    evaluate_language_steering,
    native_baselines,
    result_from_samples,
)
from saesteer.eval.parallel import corpus_parallel_prompts, cut_prompt
from saesteer.eval.recipes import RecipeVectors, check_index_corpus, parse_recipe
from saesteer.steer.generate import TLBackend

UDHR_HELDOUT = 21


def test_cut_prompt_cuts_text_without_spaces_by_characters():
    zh = "人人有直接或通过自由选择的代表参与治理本国的权利。"
    assert cut_prompt(zh) == zh[: round(len(zh) / 2)] and len(cut_prompt(zh)) < len(zh)
    assert cut_prompt("一二三四五六七八九十一二三") == "一二三四五六"  # 13 characters: round(6.5) = 6
    assert cut_prompt("one two three four five six seven eight") == "one two three four"  # words as before


def test_corpus_prompts_come_from_the_held_out_split_of_that_corpus():
    ps = corpus_parallel_prompts("udhr")
    assert len(ps) == UDHR_HELDOUT == len(corpus_texts("udhr", "en", "heldout"))
    for i in (0, 20):
        assert ps[i].index == i and ps[i].prompt == cut_prompt(corpus_texts("udhr", "en", "heldout")[i])
        assert ps[i].references["pl"] == corpus_texts("udhr", "pl", "heldout")[i]
        assert ps[i].references["en"] == corpus_texts("udhr", "en", "heldout")[i]
    assert len(ps[0].references) == 12
    assert [p.prompt for p in corpus_parallel_prompts("bundled", n=3)] == [
        cut_prompt(t) for t in corpus_texts("bundled", "en", "heldout")[:3]]
    with pytest.raises(CorpusError, match="unknown corpus"):
        corpus_parallel_prompts("nope")


def test_corpus_means_are_cached_per_corpus(monkeypatch, tmp_path, tiny_model):
    from saesteer.steer import residual_stats
    from saesteer.steer import residuals as res

    monkeypatch.setenv("SAESTEER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(residual_stats, "CACHEABLE_KINDS", ("tiny",))
    hook = "blocks.1.hook_resid_pre"
    udhr = res.corpus_mean_residual(tiny_model, hook, "fr", corpus="udhr", n_texts=5)
    bundled = res.corpus_mean_residual(tiny_model, hook, "fr", corpus="bundled", n_texts=5)
    fresh, _ = res.mean_residual(tiny_model, [hook], corpus_texts("udhr", "fr", "train")[:5])
    assert bool((udhr == fresh[hook]).all()) and not bool((udhr == bundled).all())
    assert res.mean_settings("fr", 5)["corpus"] == "bundled"  # the shipped prebuilt stats' key is unchanged
    stored = residual_stats.lookup(tiny_model, hook, "mean", res.mean_settings("fr", 5, corpus="udhr"))
    assert stored is not None and stored == [float(x) for x in udhr.tolist()]
    assert bool((res.bundled_mean_residual(tiny_model, hook, "fr", n_texts=5) == bundled).all())


@pytest.fixture(scope="module")
def indexes(tiny_model, tiny_sae, tmp_path_factory):
    """A tiny index of each shipped corpus (fr, de, en, zh; a few train texts each)."""
    from saesteer.corpus import RandomTokens, corpus_conditions
    from saesteer.index.build import BuildConfig, build_index

    out = {}
    for corpus in ("bundled", "udhr"):
        db = tmp_path_factory.mktemp(f"idx_{corpus}") / "index.duckdb"
        conds = [replace(c, max_docs=6) for c in corpus_conditions(corpus, "train", ["en", "fr", "de", "zh"])]
        build_index(db, tiny_model, tiny_sae, [*conds, RandomTokens("uniform", n_seqs=8, seq_len=16, seed=0)],
                    BuildConfig(feature_output=False))
        out[corpus] = db
    return out


def test_the_index_must_be_a_build_of_the_corpus(indexes):
    check_index_corpus(indexes["udhr"], "udhr", ["fr", "en", "xx"])  # a missing language is left to the search
    check_index_corpus(indexes["bundled"], "bundled", ["fr", "en"])
    with pytest.raises(CorpusError, match=r"language=fr from 'bundled:fr:train', not the udhr corpus"):
        check_index_corpus(indexes["bundled"], "udhr", ["fr"])
    with pytest.raises(CorpusError, match="not the bundled corpus; build one with `saesteer index build --corpus bundled"):
        check_index_corpus(indexes["udhr"], "bundled", ["de"])


CFG = LanguageEvalConfig(languages=("fr", "zh"), recipes=("diffmean", "prompting"), n_prompts=3,
                         calibration_prompts=4, max_new_tokens=5, batch_size=4, diffmean_texts=6, refine=1,
                         corpus="udhr")


def test_udhr_evaluation_with_native_baselines_resumes(tiny_model, tiny_sae, indexes, tmp_path, caplog):
    calls: list[list[str]] = []

    class Counting(TLBackend):
        def generate(self, prompts, *a, **k):  # type: ignore[no-untyped-def]
            calls.append(list(prompts))
            return super().generate(prompts, *a, **k)

    be = Counting(tiny_model)
    path = tmp_path / "samples.csv"
    ps = corpus_parallel_prompts("udhr")
    res = evaluate_language_steering(tiny_model, be, tiny_sae, indexes["udhr"], ps, CFG, samples_path=path)
    s = res.samples
    # the English baseline on 4 prompts, and per target language a native one on its own held-out sentences
    assert calls[0] == [p.prompt for p in ps[:4]]
    for lang in CFG.languages:
        nat = s[(s["method"] == "native") & (s["language"] == lang)]
        assert nat["prompt"].tolist() == [cut_prompt(t) for t in corpus_texts("udhr", lang, "heldout")[:4]]
        want = nat["prompt"].tolist()  # generated (the languages' native baselines share a call in lockstep)
        assert any(c[i : i + len(want)] == want for c in calls for i in range(len(c))), lang
        assert nat["chrf"].notna().all() and res.native[lang].baseline_ppl == pytest.approx(nat["ppl"].median())
    steered = s[~s["method"].isin(["unsteered", "native"])]
    assert set(steered["prompt"]) == {p.prompt for p in ps[:3]}
    assert res.reference == "native" and set(res.native) == {"fr", "zh"}
    c = res.curves
    assert {"fluent", "fluent_en", "fluent_native"} <= set(c.columns) and not (c["method"] == "native").any()
    assert (c["fluent"] == c["fluent_native"]).all()
    # every cell judged by each language's own criteria (native) and by the English ones
    for r in c.itertuples():
        g = s[(s["language"] == r.language) & (s["method"] == r.method) & (s["strength"] == r.strength)]
        ids = [[int(t) for t in x.split()] if isinstance(x, str) else [] for x in g["ids"]]
        assert r.fluent_native == res.native[r.language].judge(g["ppl"].tolist(), ids).fluent
        assert r.fluent_en == res.criteria.judge(g["ppl"].tolist(), ids).fluent
    pd.testing.assert_frame_equal(res.by_reference["native"], res.windows)
    base = native_baselines(res)
    assert base["language"].tolist() == ["en", "fr", "zh"] and base["n"].tolist() == [4, 4, 4]
    # DiffMean's means come from the corpus's train split
    vec = RecipeVectors(tiny_model, tiny_sae, indexes["udhr"], diffmean_texts=6, corpus="udhr").vector(
        parse_recipe("diffmean"), "fr")
    assert vec is not None and vec.provenance["corpus"] == "udhr"
    # a rerun reads every cell back (native ones too); English as the primary reference, same cells
    n_calls = len(calls)
    again = evaluate_language_steering(tiny_model, be, tiny_sae, indexes["udhr"], ps, CFG, samples_path=path)
    assert len(calls) == n_calls
    pd.testing.assert_frame_equal(again.windows, res.windows)
    eng = result_from_samples(pd.read_csv(path), replace(CFG, fluency_reference="english"))
    assert eng.reference == "english" and (eng.curves["fluent"] == eng.curves["fluent_en"]).all()
    pd.testing.assert_frame_equal(eng.by_reference["native"], res.by_reference["native"])
    # an older samples table without native cells: English, with a warning
    old = pd.read_csv(path)
    old = old[old["method"] != "native"]
    with caplog.at_level(logging.WARNING, logger="saesteer.eval.language"):
        fallback = result_from_samples(old, CFG)
    assert fallback.reference == "english" and not fallback.native and "no native baseline for fr, zh" in caplog.text
    assert (fallback.curves["fluent"] == fallback.curves["fluent_en"]).all()
    assert (fallback.curves["fluent_native"] == fallback.curves["fluent_en"]).all()


def _samples(native_ppl: float) -> pd.DataFrame:
    """English baseline perplexity 10, fr's native baseline ``native_ppl``; method m on fr at 0.1 / 0.2 / 0.4
    with perplexities 20 / 50 / 200 (all on target, none repetitive)."""
    varied = " ".join(str(i) for i in range(10))
    rows = [("none", "unsteered", 0.0, 0.0, 10.0), ("fr", "native", 0.0, 1.0, native_ppl)]
    rows += [("fr", "m", s, 1.0, p) for s, p in ((0.1, 20.0), (0.2, 50.0), (0.4, 200.0))]
    return pd.DataFrame([{"language": lang, "method": m, "strength": s, "correct": c, "ppl": p, "ids": varied,
                          "chrf": 10.0, "prompt": "x"} for lang, m, s, c, p in rows for _ in range(2)])


def test_native_fluency_reads_a_language_against_its_own_baseline():
    res = result_from_samples(_samples(40.0), LanguageEvalConfig())
    c = res.curves.set_index("strength")
    # English: limit 30 (3 x 10): only 0.1 is fluent; native fr: limit 120 (3 x 40): 0.1 and 0.2
    assert c["fluent_en"].tolist() == [True, False, False] and c["fluent_native"].tolist() == [True, True, False]
    assert res.native["fr"].max_ppl == pytest.approx(120.0) and res.criteria.max_ppl == pytest.approx(30.0)
    nat, en = res.by_reference["native"].iloc[0], res.by_reference["english"].iloc[0]
    assert nat["fluent_up_to"] == 0.2 and nat["window"] == pytest.approx(2.0)
    assert en["fluent_up_to"] == 0.1 and en["window"] == pytest.approx(1.0)
    assert res.windows.iloc[0]["window"] == pytest.approx(2.0)  # the primary reference is native
    eng = result_from_samples(_samples(40.0), LanguageEvalConfig(fluency_reference="english"))
    assert eng.windows.iloc[0]["window"] == pytest.approx(1.0)
    base = native_baselines(res).set_index("language")
    assert base.loc["en", "ppl_median"] == 10.0 and base.loc["fr", "ppl_median"] == 40.0
    assert base.loc["fr", "max_ppl"] == pytest.approx(120.0)
    with pytest.raises(SteeringVectorError, match="fluency reference"):
        LanguageEvalConfig(fluency_reference="german")


def test_the_report_shows_both_references_and_the_native_baselines(tmp_path):
    from saesteer.eval.report import Report
    from saesteer.eval.summary import add_evaluation

    rep = Report("t")
    add_evaluation(rep, result_from_samples(_samples(40.0), LanguageEvalConfig()), corpus="udhr")
    md = rep.write(tmp_path)[0].read_text()
    assert "held-out English sentence i of the udhr parallel corpus" in md
    assert "fluent by the native reference (primary)" in md and "fluent by the English reference:" in md
    assert md.index("native reference (primary)") < md.index("English reference:")
    assert "the unsteered baselines fluency is calibrated on" in md
    old = _samples(40.0)
    rep = Report("t")
    add_evaluation(rep, result_from_samples(old[old["method"] != "native"], LanguageEvalConfig()))
    md = rep.write(tmp_path / "old")[0].read_text()
    assert "No native baselines in these samples" in md and "fluent by the English reference (primary)" in md


def _cli(args: list[str]) -> int:
    from saesteer.cli.main import main

    old = sys.argv
    sys.argv = ["saesteer", "eval", "language", "--model", "tiny-random", "--sae", "tiny", *args]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = old
    return 0


@pytest.mark.parametrize("case", ["too_many", "wrong_index", "bad_reference", "unknown_corpus"])
def test_eval_language_corpus_errors_are_one_line(case, indexes, tmp_path, capsys):
    out = tmp_path / "out"
    args = {"too_many": ["--corpus", "udhr", "--n-prompts", str(UDHR_HELDOUT + 1), "--db", str(indexes["udhr"])],
            "wrong_index": ["--corpus", "udhr", "--db", str(indexes["bundled"])],
            "bad_reference": ["--fluency-reference", "german", "--db", str(indexes["bundled"])],
            "unknown_corpus": ["--corpus", "nope", "--db", str(indexes["bundled"])]}[case]
    assert _cli([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and not out.exists()
    if case == "too_many":
        assert "--n-prompts 22 exceeds the 21 held-out sentences of the udhr corpus" in err[0]


def test_eval_language_cli_on_udhr_and_resummarise(indexes, tmp_path, capsys):
    out = tmp_path / "out"
    common = ["--corpus", "udhr", "--db", str(indexes["udhr"]), "--languages", "fr", "--recipes",
              "diffmean,prompting", "--n-prompts", "2", "--calibration-prompts", "2", "--max-new-tokens", "3",
              "--ablation-texts", "0", "--refine", "0"]
    assert _cli([*common, "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    assert "corpus udhr (the Universal Declaration" in md and "of the udhr parallel corpus" in md
    assert "fluent by the native reference (primary)" in md and "fluent by the English reference" in md
    samples = pd.read_csv(out / "samples.csv")
    assert (samples["method"] == "native").sum() == 2
    # re-summarise without generation, English as the primary reference
    again = tmp_path / "again"
    assert _cli([*common, "--samples", str(out / "samples.csv"), "--fluency-reference", "english",
                 "--out", str(again)]) == 0
    md2 = (again / "report.md").read_text()
    assert "Generations reused from" in md2 and "fluent by the English reference (primary)" in md2
    capsys.readouterr()
    # the samples' prompts say which corpus they came from
    assert _cli([*common[2:], "--samples", str(out / "samples.csv"), "--out", str(tmp_path / "x")]) == 2
    assert "not the held-out prompts of the bundled corpus" in capsys.readouterr().err


def test_udhr_index_build_on_the_tiny_model(tmp_path):
    from typer.testing import CliRunner

    from saesteer.cli.main import app

    db = tmp_path / "features_db" / "udhr.duckdb"
    res = CliRunner().invoke(app, ["index", "build", "--model", "tiny-random", "--sae", "tiny", "--corpus", "udhr",
                                   "--db", str(db), "--max-docs", "2", "--no-feature-output"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert db.exists()
    check_index_corpus(db, "udhr", ["fr", "zh", "en"])
