"""Fluency that repetition cannot fool, the per-vector strength search, recipes, chrF prompts, and the
resumable language evaluation on the tiny model."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from saesteer.errors import SteeringVectorError
from saesteer.eval.parallel import chrf, cut_prompt, parallel_prompts
from saesteer.eval.recipes import parse_recipe
from saesteer.steer.calibrate import Probe, search_strength
from saesteer.steer.fluency import FluencyCriteria, distinct_share, repeated_ngram_rate, repetition

# unsteered continuations: varied tokens (a 20-token sentence each), perplexities around 10
UNSTEERED_IDS = [list(range(100 + 20 * i, 120 + 20 * i)) for i in range(4)] + [[5, 6, 7, 5, 8, 9, 10, 11, 12, 13]]
UNSTEERED_PPL = [9.0, 10.1, 11.0, 12.0, 10.1]


def test_repetition_measures_exact():
    wird = [42] * 20  # "wird wird wird ..."
    assert distinct_share(wird) == pytest.approx(1 / 20)
    assert repeated_ngram_rate(wird) == pytest.approx(17 / 18)  # 18 trigrams, all but the first seen before
    assert distinct_share([1, 2, 3, 4]) == 1.0 and repeated_ngram_rate([1, 2, 3, 4]) == 0.0
    assert repeated_ngram_rate([1, 2, 3, 1, 2, 3]) == pytest.approx(1 / 4)  # (1,2,3) again at the end
    assert repeated_ngram_rate([1, 1]) == 0.0  # shorter than a trigram
    assert math.isnan(distinct_share([])) and math.isnan(repeated_ngram_rate([]))


def test_repetitive_text_is_not_fluent_although_its_perplexity_is_low():
    crit = FluencyCriteria.calibrate(UNSTEERED_PPL, UNSTEERED_IDS, budget=3.0)
    assert crit.baseline_ppl == pytest.approx(10.1) and crit.max_ppl == pytest.approx(30.3)
    assert crit.min_distinct == pytest.approx(0.9)  # the least varied unsteered one: 9 distinct of 10
    assert crit.max_repeat == pytest.approx(0.0)
    # "wird wird wird ...": perplexity 8.1, under the unsteered median, yet not fluent
    wird = crit.judge([8.1] * 4, [[42] * 20] * 4)
    assert wird.ppl_ok and wird.ppl_median == pytest.approx(8.1)
    assert wird.repetitive_share == 1.0 and not wird.repetition_ok and not wird.fluent
    assert wird.distinct_median == pytest.approx(0.05) and wird.repeat_median == pytest.approx(17 / 18)
    # varied text at the same perplexity is fluent; one repetitive continuation in four is tolerated
    varied = [list(range(300 + 20 * i, 320 + 20 * i)) for i in range(4)]
    assert crit.judge([8.1] * 4, varied).fluent
    assert crit.judge([8.1] * 4, [*varied[:3], [42] * 20]).fluent
    assert not crit.judge([8.1] * 4, [*varied[:2], [42] * 20, [7] * 20]).fluent
    # and perplexity still counts: varied text above the budget is not fluent
    assert not crit.judge([31.0] * 4, varied).fluent
    # an empty continuation cannot be judged fluent
    assert crit.is_repetitive([])
    assert repetition([42] * 20).distinct == pytest.approx(0.05)


def test_search_refines_until_fluency_breaks_and_reports_the_window():
    calls: list[float] = []

    def evaluate(s: float) -> Probe:  # fluent up to 0.3, on target from 0.07
        calls.append(s)
        return Probe(s, 1.0 if s >= 0.07 else 0.0, s <= 0.3)

    res = search_strength(evaluate, start=0.02, cap=2.0, refine=2, refine_target=1)
    # coarse, geometric, until two strengths in a row break (patience 1: one noisy cell does not stop it)
    assert calls[:6] == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.32, 0.64])
    assert calls[6] == pytest.approx(math.sqrt(0.16 * 0.32))  # bisection between last fluent and first broken
    assert calls[7] == pytest.approx(math.sqrt(calls[6] * 0.32))
    assert calls[8] == pytest.approx(math.sqrt(0.04 * 0.08))  # below the weakest strength on target (0.08)
    assert len(calls) == len(set(calls)) == 9
    assert res.weakest_on_target is not None and res.weakest_on_target.strength == pytest.approx(0.08)
    assert res.strongest_fluent is not None and res.strongest_fluent.strength == pytest.approx(calls[7], rel=1e-5)
    assert res.window == pytest.approx(calls[7] / 0.08, rel=1e-5)
    # the window's geometric centre (sqrt(0.08 * 0.269) = 0.147): 0.16 is the closest fluent on-target strength
    # (was 0.08, the weakest with the best accuracy, before the chosen point became the window's centre)
    assert res.chosen is not None and res.chosen.strength == pytest.approx(0.16)
    assert not res.chosen_at_edge and not res.capped
    # an isolated broken strength (noise) does not end the search: it goes on past it
    noisy = search_strength(lambda s: Probe(s, 1.0 if s >= 0.15 else 0.0, abs(s - 0.04) > 1e-9 and s <= 0.3),
                            start=0.02, cap=2.0, refine=0, refine_target=0)
    assert noisy.strengths == pytest.approx([0.02, 0.04, 0.08, 0.16, 0.32, 0.64])
    assert noisy.weakest_on_target is not None and noisy.weakest_on_target.strength == pytest.approx(0.16)
    assert noisy.strongest_fluent is not None and noisy.strongest_fluent.strength == pytest.approx(0.16)
    # patience 0: the first broken strength ends the coarse search (then one step below the chosen start)
    assert search_strength(lambda s: Probe(s, 0.0, s < 0.03), start=0.02, cap=2.0, refine=0, refine_target=0,
                           patience=0).strengths == pytest.approx([0.01, 0.02, 0.04])
    # never broken: stops at the cap, and the chosen point is at the edge of what was tried
    capped = search_strength(lambda s: Probe(s, 1.0 if s >= 1 else 0.0, True), start=0.25, cap=2.0, refine=2)
    assert capped.capped and capped.strengths == pytest.approx([0.25, 0.5, math.sqrt(0.5), 1.0, 2.0], rel=1e-5)
    assert capped.chosen is not None and capped.chosen.strength == 1.0 and not capped.chosen_at_edge
    at_top = search_strength(lambda s: Probe(s, s, True), start=0.25, cap=1.0, refine_target=0)
    assert at_top.chosen is not None and at_top.chosen.strength == 1.0 and at_top.chosen_at_edge
    # broken from the start: the search goes down
    down = search_strength(lambda s: Probe(s, 0.0, s < 0.01), start=0.02, cap=2.0, refine=0, refine_target=0)
    # ... and below its chosen point (0.005, the only fluent strength), which is bracketed from below too
    assert down.strengths == pytest.approx([0.0025, 0.005, 0.01, 0.02])
    assert math.isnan(down.window) and down.chosen == Probe(0.005, 0.0, True) and not down.chosen_at_edge
    # fluent at the start, never on target, broken above: stepped below the start (was: chosen at the edge)
    flat = search_strength(lambda s: Probe(s, 0.25 if s >= 0.03 else 0.0, s < 0.05), start=0.03, cap=2.0,
                           refine=0, refine_target=0)
    assert flat.strengths == pytest.approx([0.015, 0.03, 0.06, 0.12])
    assert flat.chosen == Probe(0.03, 0.25, True) and not flat.chosen_at_edge
    with pytest.raises(SteeringVectorError):
        search_strength(evaluate, start=0.0, cap=1.0)


def test_search_steps_down_until_it_brackets_the_windows_lower_edge():
    calls: list[float] = []

    def evaluate(s: float) -> Probe:  # on target from 0.05, fluent up to 0.4: a true window of 8x
        calls.append(s)
        return Probe(s, 1.0 if s >= 0.05 else 0.0, s <= 0.4)

    res = search_strength(evaluate, start=0.25, cap=2.0, refine=2, refine_target=2)
    assert len(calls) == len(set(calls))  # every strength evaluated once
    assert calls[:6] == pytest.approx([0.25, 0.5, 1.0, 0.125, 0.0625, 0.03125])  # up until broken, then down
    assert min(calls) < 0.05 and not evaluate(min(calls)).accuracy  # the lower edge is bracketed
    lo, hi = res.weakest_on_target, res.strongest_fluent
    assert lo is not None and hi is not None
    # each edge is bracketed by a tried strength on its other side; the window is 8x within that precision
    below = max(s for s in calls if s < 0.05)
    above = min(s for s in calls if s > 0.4)
    assert below < 0.05 <= lo.strength and hi.strength <= 0.4 < above
    assert 8 * (below / lo.strength) * (hi.strength / above) <= res.window <= 8.0
    assert res.window == pytest.approx(hi.strength / lo.strength) and res.window > 6
    # the chosen point: the tried on-target fluent strength closest in log-space to the window's centre
    centre = math.sqrt(lo.strength * hi.strength)
    on = [s for s in calls if 0.05 <= s <= 0.4]
    best = min(on, key=lambda s: abs(math.log(s / centre)))
    assert res.chosen is not None and res.chosen.strength == pytest.approx(best) and not res.chosen_at_edge
    assert lo.strength < res.chosen.strength < hi.strength
    # at most max_down_target steps down, then it stops (still on target)
    short = search_strength(lambda s: Probe(s, 1.0, s <= 0.4), start=0.25, cap=2.0, refine=0, refine_target=0,
                            max_down_target=2)
    assert short.strengths == pytest.approx([0.0625, 0.125, 0.25, 0.5, 1.0])
    # a weakest strength that is on target but not fluent is not stepped below
    assert search_strength(lambda s: Probe(s, 1.0, s <= 0.1), start=0.25, cap=2.0, refine=0, refine_target=0,
                           max_down=1).strengths == pytest.approx([0.125, 0.25])


def test_recipes_parse_and_name():
    assert parse_recipe("sae").name == "sae"
    r = parse_recipe("sae:k=5:filter=0:w=unit:op=swap:pos=generated")
    assert (r.k, r.filter, r.w, r.op, r.pos) == (5, False, "unit", "swap", "generated")
    assert r.name == "sae:k=5:filter=0:w=unit:op=swap:pos=generated"
    assert parse_recipe(r.name) == r
    assert parse_recipe("diffmean:op=norm_preserving_add").name == "diffmean:op=norm_preserving_add"
    r = parse_recipe("sae:op=swap:src=0:pos=prompt")
    assert (r.op, r.src, r.pos, r.name) == ("swap", False, "prompt", "sae:op=swap:pos=prompt:src=0")
    assert parse_recipe(r.name) == r and parse_recipe("sae:op=swap").src
    for bad in ("sea", "sae:k=0", "sae:k=x", "sae:filter=2", "sae:src=2", "diffmean:src=0", "sae:w=max", "diffmean:k=5", "diffmean:op=swap",
                "prompting:op=add", "sae:op"):
        with pytest.raises(SteeringVectorError):
            parse_recipe(bad)


def test_parallel_prompts_and_chrf():
    assert cut_prompt("one two three four five six seven eight") == "one two three four"
    assert cut_prompt("one two three") == "one two"  # never the whole sentence
    texts = {"en": ["I like green tea very much.", "The train leaves at noon today."],
             "fr": ["J'aime beaucoup le thé vert.", "Le train part à midi aujourd'hui."]}
    ps = parallel_prompts(texts, n=1)
    assert len(ps) == 1 and ps[0].prompt == "I like green" and ps[0].references["fr"] == texts["fr"][0]
    assert chrf("Le train part à midi.", "Le train part à midi.") == pytest.approx(100.0)
    assert chrf("Le train part à midi.", texts["fr"][1]) > chrf("Der Zug fährt mittags.", texts["fr"][1])
    from saesteer.errors import CorpusError

    with pytest.raises(CorpusError):
        parallel_prompts({"en": ["a b c"], "fr": []})


@pytest.fixture
def tiny_index(tiny_language_index):
    return tiny_language_index


def test_language_eval_on_the_tiny_model_resumes_from_its_samples(tiny_model, tiny_sae, tiny_index, tmp_path):
    from saesteer.eval.language import LanguageEvalConfig, evaluate_language_steering, result_from_samples
    from saesteer.eval.parallel import bundled_parallel_prompts
    from saesteer.steer.generate import TLBackend

    class Counting(TLBackend):
        calls = 0
        rows = 0

        def generate(self, prompts, *a, **k):  # type: ignore[no-untyped-def]
            Counting.calls += 1
            Counting.rows += len(prompts)
            return super().generate(prompts, *a, **k)

    be = Counting(tiny_model)
    cfg = LanguageEvalConfig(languages=("fr",), recipes=("sae:k=4:filter=0", "sae:k=4:op=swap:filter=0",
                                                          "diffmean:op=norm_preserving_add", "prompting"),
                             n_prompts=3, calibration_prompts=3, max_new_tokens=4, batch_size=3, diffmean_texts=4,
                             refine=1)
    path = tmp_path / "samples.csv"
    res = evaluate_language_steering(tiny_model, be, tiny_sae, tiny_index, bundled_parallel_prompts(), cfg,
                                     samples_path=path)
    first, cells = Counting.calls, Counting.rows // 3
    assert cells >= 1 + 3 * 2 + 1  # unsteered, at least two strengths per vector, prompting
    assert first < cells  # the searches ran in lockstep: their cells shared generate calls
    assert set(res.windows["method"]) == {parse_recipe(r).name for r in cfg.recipes}
    assert len(res.samples) == Counting.rows and res.samples["chrf"].notna().all()
    assert {"window", "at_edge", "chrf", "repetitive_share", "fluent"} <= set(res.windows.columns)
    assert res.curves.groupby("method").size()["prompting"] == 1
    # a rerun reads every cell back: no generation at all, the same table
    again = evaluate_language_steering(tiny_model, be, tiny_sae, tiny_index, bundled_parallel_prompts(), cfg,
                                       samples_path=path)
    assert Counting.calls == first
    pd.testing.assert_frame_equal(again.windows, res.windows)
    pd.testing.assert_frame_equal(result_from_samples(pd.read_csv(path), cfg).windows, res.windows)


@pytest.mark.parametrize("args", [["--recipes", "sae,sea"], ["--recipes", "sae:k=0"], ["--n-prompts", "0"]])
def test_eval_language_refuses_bad_recipes_before_loading(args, tmp_path, capsys):
    import sys

    from saesteer.cli.main import main

    old = sys.argv
    sys.argv = ["saesteer", "eval", "language", "--model", "tiny-random", "--sae", "tiny", "--db",
                str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "out"), *args]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = old
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert not (tmp_path / "out").exists()


def test_lockstep_searches_give_the_samples_of_a_sequential_run(tiny_model, tiny_sae, tiny_index):
    """Running the (language, recipe) searches in lockstep batches their generations; every continuation,
    every strength tried and the summary are those of the sequential run, in the same order."""
    from saesteer.eval.language import LanguageEvalConfig, evaluate_language_steering
    from saesteer.eval.parallel import bundled_parallel_prompts
    from saesteer.steer.generate import TLBackend

    cfg = LanguageEvalConfig(languages=("fr", "de"), recipes=("sae:k=4:filter=0", "diffmean", "prompting"),
                             n_prompts=3, calibration_prompts=3, max_new_tokens=4, batch_size=12, diffmean_texts=4,
                             refine=1)
    runs = [evaluate_language_steering(tiny_model, TLBackend(tiny_model), tiny_sae, tiny_index,
                                       bundled_parallel_prompts(), replace(cfg, lockstep=lock))
            for lock in (False, True)]
    cols = ["language", "method", "strength", "prompt_index", "text", "ids", "ppl"]
    seq, lock = (r.samples[cols] for r in runs)
    pd.testing.assert_frame_equal(seq.drop(columns="ppl"), lock.drop(columns="ppl"))
    np.testing.assert_allclose(seq["ppl"], lock["ppl"], rtol=1e-5)
    pd.testing.assert_frame_equal(runs[0].windows, runs[1].windows)
