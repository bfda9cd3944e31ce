"""Evaluation pieces: language ID, cross-entropy, matched fluency, the ablation matrix, the report."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from saesteer.corpus import RandomTokens, bundled_languages, bundled_texts
from saesteer.eval.ablation import ablation_matrix, diagonal_dominance, mean_token_ce
from saesteer.eval.langid import Py3LangId, accuracy
from saesteer.eval.language import summarize, windows
from saesteer.eval.report import Report
from saesteer.steer.fluency import FluencyCriteria


def test_langid_recognises_the_bundled_heldout_split():
    ident = Py3LangId()
    for lang in bundled_languages():
        acc = accuracy(bundled_texts(lang, "heldout"), lang, ident)
        assert sum(acc) / len(acc) >= 0.9, lang
    assert ident("   ") == ("und", 0.0)


def test_mean_token_ce_matches_transformer_lens_loss(tiny_model):
    text = "the cat sat on the mat"
    toks = tiny_model.to_tokens(text)
    with torch.no_grad():
        ref = tiny_model(toks, return_type="loss").item()
    assert math.isclose(mean_token_ce(tiny_model, [text]), ref, rel_tol=1e-5)
    # right padding in a batch does not change the per-token mean of each text
    texts = ["a", "a much longer sentence than the first one"]
    per = [mean_token_ce(tiny_model, [t]) for t in texts]
    n = [len(tiny_model.to_tokens(t)[0]) - 1 for t in texts]
    batched = mean_token_ce(tiny_model, texts)
    assert math.isclose(batched, (per[0] * n[0] + per[1] * n[1]) / sum(n), rel_tol=1e-5)


def test_windows_pick_the_best_fluent_point_and_flag_the_edge():
    varied = " ".join(str(i) for i in range(10))
    rows = [(0.0, "none", "unsteered", 0.0, 10.0, varied)]
    # strength -> (accuracy, ppl, ids): on target from 0.04, perplexity over budget at 0.16, repetitive at 0.32
    for s, c, p, ids in [(0.02, 0.0, 10, varied), (0.04, 1.0, 12, varied), (0.08, 1.0, 20, varied),
                         (0.16, 1.0, 90, varied), (0.32, 1.0, 8, "7 " * 10)]:
        rows.append((s, "fr", "m", c, p, ids))
    rows.append((0.0, "fr", "prompting", 0.0, 11, varied))
    samples = pd.DataFrame([{"strength": s, "language": lang, "method": m, "correct": c, "ppl": p, "ids": ids,
                             "chrf": 10.0} for s, lang, m, c, p, ids in rows for _ in range(2)])
    crit = FluencyCriteria.calibrate([10.0, 10.0], [list(range(10))] * 2, budget=3.0)
    curves = summarize(samples, crit).set_index(["method", "strength"])
    assert curves.loc[("m", 0.16), "ppl_ok"] == False  # noqa: E712
    assert curves.loc[("m", 0.32), "ppl_ok"] and not curves.loc[("m", 0.32), "fluent"]  # low ppl, repetitive
    w = windows(summarize(samples, crit)).set_index("method")
    assert w.loc["m", "strength"] == 0.04 and w.loc["m", "accuracy"] == 1.0 and not w.loc["m", "at_edge"]
    assert w.loc["m", "on_target_from"] == 0.04 and w.loc["m", "fluent_up_to"] == 0.08
    assert w.loc["m", "window"] == pytest.approx(2.0)
    assert not w.loc["prompting", "at_edge"] and math.isnan(w.loc["prompting", "window"])
    # only the first two strengths tried: the best fluent point is the strongest tried, at the edge
    few = windows(summarize(samples[samples["strength"] <= 0.04], crit)).set_index("method")
    assert few.loc["m", "at_edge"] and few.loc["m", "edge"] == "strongest" and w.loc["m", "edge"] == ""
    from saesteer.eval.summary import edge_check

    assert edge_check(w.reset_index()) == "Edge check: no chosen point sits at the edge of the strengths tried."
    text = edge_check(few.reset_index())
    assert text.startswith("Edge check: 1 chosen point(s)") and "fr/m (fluent at the strongest strength tried" in text


def test_diagonal_dominance():
    m = pd.DataFrame([[1.0, 0.1], [0.5, 0.2]], index=["fr", "de"], columns=["fr", "de"])
    assert diagonal_dominance(m) == 0.5


def test_ablation_matrix_shape_and_zero_for_orthogonal_text(tiny_model):
    from saesteer.steer.build import from_direction

    hook = "blocks.1.hook_resid_pre"
    g = torch.Generator().manual_seed(0)
    vecs = {lang: from_direction(torch.randn(64, generator=g), hook, tiny_model, scale_mode="raw") for lang in ("fr", "de")}
    texts = {lang: bundled_texts(lang, "heldout")[:3] for lang in ("fr", "de", "en")}
    m = ablation_matrix(tiny_model, vecs, texts)
    assert list(m.index) == ["fr", "de"] and list(m.columns) == ["fr", "de", "en"]
    assert m.notna().all().all()
    assert (m.abs() > 0).all().all()  # projecting a random direction out changes every CE


def test_report_writes_markdown_and_html(tmp_path):
    import plotly.express as px

    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    md, html = Report("T").heading("H").text("t").table(df, "cap").figure(px.bar(df, x="b", y="a"), "fig").write(tmp_path)
    assert "| a |" in md.read_text().replace("|   a |", "| a |") or "a" in md.read_text()
    assert "<table" in html.read_text() and "plotly" in html.read_text()
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_quickstart_cli_on_the_tiny_model(tmp_path):
    from typer.testing import CliRunner

    from saesteer.cli.main import app

    out, db = tmp_path / "out", tmp_path / "i.duckdb"
    args = ["quickstart", "--model", "tiny-random", "--sae", "tiny", "--db", str(db), "--out", str(out),
            "--languages", "en,fr,de", "--show", "fr", "--max-docs", "8", "--n-random", "8", "--n-prompts", "2",
            "--eval-prompts", "2", "--ablation-texts", "3", "--max-new-tokens", "4"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    assert {p.name for p in (out / "featuresets").iterdir()} == {"en.json", "fr.json", "de.json"}
    assert (out / "vectors" / "fr.safetensors").is_file()
    # the default recipe is an SAE clamp (swap): native keeps it; one-direction formats get the additive recipe's
    from saesteer.steer.export import load_vector

    assert load_vector(out / "vectors" / "fr.safetensors").operator == "clamp"
    assert (out / "vectors" / "fr.add.npy").is_file() and not (out / "vectors" / "fr.npy").exists()
    report = (out / "report.md").read_text()
    assert "Ablation matrix" in report and "steered into fr" in report
    assert "quick smoke view" in report and "`saesteer eval language` gives the real numbers" in report
    # a second run resumes the index: every condition is skipped, the results are the same
    res2 = CliRunner().invoke(app, args)
    assert res2.exit_code == 0, res2.output


def test_fluency_scores_the_continuation_alone_and_after_its_prompt(tiny_model):
    from saesteer.eval.language import _fluency
    from saesteer.steer.generate import GenerationConfig, TLBackend

    be = TLBackend(tiny_model)
    prompt = "the cat sat on"
    (gen,) = be.generate([prompt], GenerationConfig(max_new_tokens=6))
    alone, prompted = _fluency(be, [gen], [prompt], 4)

    def ppl(prefix: list[int]) -> float:
        ids = torch.tensor([prefix + list(gen.token_ids)])
        with torch.no_grad():
            logp = torch.log_softmax(tiny_model(ids)[0].double(), dim=-1)
        pos = torch.arange(len(prefix) - 1, ids.shape[1] - 1)
        return math.exp(-float(logp[pos, ids[0, len(prefix):]].mean()))

    bos = int(tiny_model.tokenizer.bos_token_id)
    assert math.isclose(alone[0], ppl([bos]), rel_tol=1e-4)  # the continuation on its own, after BOS only
    assert math.isclose(prompted[0], ppl(be.prompt_ids(prompt)), rel_tol=1e-4)
    assert not math.isclose(alone[0], prompted[0], rel_tol=1e-3)


def test_feature_ablation_changes_only_texts_where_the_features_fire(tiny_model, tiny_sae):
    from saesteer.eval.ablation import feature_ablation
    from saesteer.featureset import FeatureSet

    hook = "blocks.1.hook_resid_pre"
    texts = {lang: bundled_texts(lang, "heldout")[:3] for lang in ("fr", "de")}
    with torch.no_grad():
        acts = {}
        for lang, tx in texts.items():
            _, cache = tiny_model.run_with_cache(tiny_model.to_tokens(tx), names_filter=[hook])
            acts[lang] = tiny_sae.encode(cache[hook]).flatten(0, 1).amax(0)  # [d_sae]: max over tokens
    silent = [int(f) for f in torch.nonzero((acts["fr"] == 0) & (acts["de"] == 0))[:, 0][:3]]
    loud = [int(f) for f in acts["fr"].topk(3).indices]
    assert len(silent) == 3
    vecs = {
        name: feature_ablation(
            FeatureSet(features=feats, target="language=fr", model_id="tiny-random", sae_id="tiny", hook_name=hook),
            tiny_sae, tiny_model, typical_norm=1.0,
        )
        for name, feats in (("silent", silent), ("loud", loud))
    }
    m = ablation_matrix(tiny_model, vecs, texts, sae=tiny_sae)
    assert (m.loc["silent"].abs() < 1e-4).all()  # features that never fire: nothing changes
    assert m.loc["loud", "fr"] != pytest.approx(0.0, abs=1e-4)  # features that fire: the CE moves


def test_quickstart_uses_the_random_baseline_of_index_build():
    """`saesteer quickstart` after `saesteer index build --bundled --random uniform` (or the reverse) must reuse
    the build, not refuse it because the random-token condition was drawn differently."""
    from saesteer.index.spec import IndexSpec
    from saesteer.quickstart import QuickstartConfig

    spec, qs = IndexSpec(bundled=True, random=["uniform"]), QuickstartConfig()
    (rt,) = [c for c in spec.conditions() if c.label.startswith("random=")]
    assert rt.source == RandomTokens("uniform", n_seqs=qs.n_random, seq_len=qs.random_len, seed=0).condition().source


def test_cross_entropy_of_all_languages_in_sorted_batches_equals_one_text_at_a_time(tiny_model):
    """The ablation matrix scores every language's texts together (length-sorted batches): the same mean CE
    per language as scoring each text alone."""
    from saesteer.eval.ablation import mean_token_ce_by_group
    from saesteer.models.forward import token_nll

    texts = {"en": ["a short one", "a much longer English sentence than that"], "fr": ["oui", "une phrase moyenne"]}
    got = mean_token_ce_by_group(tiny_model, texts, batch_size=3)
    for lang, ts in texts.items():
        total = count = 0.0
        for t in ts:
            ids = tiny_model.to_tokens(t)
            with torch.no_grad():
                total += float(token_nll(tiny_model(ids), ids).double().sum())
            count += ids.shape[1] - 1
        assert got[lang] == pytest.approx(total / count, rel=1e-5)


def test_targets_table_counts_a_2x_window_that_reads_1_99999():
    """Strengths are kept to 6 significant digits, so a window of sqrt(2)^2 reads 1.99999: it is a 2x window."""
    import pandas as pd

    from saesteer.eval.language import targets_table

    win = pd.DataFrame({"method": ["m"] * 4, "language": ["a", "b", "c", "d"],
                        "window": [0.353553 / 0.176777, 2.0, 1.9, float("nan")],
                        "accuracy": [1.0, 1.0, 0.9, 0.0], "fluent": [True, True, True, False],
                        "chrf": [10.0, 10.0, 10.0, 5.0], "at_edge": [False] * 4})
    (row,) = targets_table(win).to_dict("records")
    assert row["window>=2x"] == 2 and row["accuracy>=target_fluent"] == 3


def test_targets_table_counts_languages_meeting_all_three_targets_at_once():
    """all_targets: accuracy >= 0.8 while fluent AND a 2x window AND chrF not below DiffMean's, per language."""
    import pandas as pd

    from saesteer.eval.language import targets_table

    langs = ["a", "b", "c", "d", "e"]
    win = pd.DataFrame({
        "method": ["m"] * 5 + ["diffmean"] * 5, "language": langs * 2,
        # a: all three; b: chrF below DiffMean's; c: window 1.41; d: not fluent; e: accuracy 0.75
        "window": [2.83, 4.0, 1.41, 4.0, 4.0] + [float("nan")] * 5,
        "accuracy": [1.0, 1.0, 1.0, 1.0, 0.75] + [0.0] * 5,
        "fluent": [True, True, True, False, True] + [True] * 5,
        "chrf": [12.0, 9.0, 12.0, 12.0, 12.0] + [10.0] * 5, "at_edge": [False] * 10})
    rows = {r["method"]: r for r in targets_table(win).to_dict("records")}
    assert rows["m"]["all_targets"] == 1 and rows["m"]["accuracy>=target_fluent"] == 3
    assert rows["diffmean"]["all_targets"] == 0
    assert "all_targets" not in targets_table(win[win["method"] == "m"]).columns  # no DiffMean: no comparison


def test_samples_with_carriage_returns_stay_one_row_each(tmp_path):
    """A continuation holding a bare carriage return (or U+2028) is one row after writing and reading back,
    for tables written now (every text quoted) and for older ones (quoted only around newlines)."""
    import pandas as pd

    from saesteer.eval.samples import read_samples, write_samples

    df = pd.DataFrame({"language": ["pl", "pl", "fr"], "method": ["diffmean"] * 3, "strength": [0.48] * 3,
                       "text": ["a\rb", "x\u2028y\nz", ""], "ids": ["1 2", "7", ""], "ppl": [3.5, 4.0, float("nan")]})
    path = tmp_path / "samples.csv"
    write_samples(df.iloc[:2], path, append=True)
    write_samples(df.iloc[2:], path, append=True)  # appended cells: one header
    back = read_samples(path)
    assert len(back) == 3 and back["text"].fillna("").tolist() == ["a\rb", "x\u2028y\nz", ""]
    assert back["ids"].fillna("").tolist() == ["1 2", "7", ""] and back["ppl"].iloc[0] == 3.5
    old = tmp_path / "old.csv"
    df.to_csv(old, index=False)  # the earlier writer: the bare \r left unquoted
    assert len(pd.read_csv(old)) == 4  # what a default reader made of it
    assert read_samples(old)["text"].fillna("").tolist() == ["a\rb", "x\u2028y\nz", ""]
