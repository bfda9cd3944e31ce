"""The numpy score functions against hand-computed numbers (the formulas of their docstrings)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from saesteer.select import scores as S


def test_freq_diff_and_ratio():
    # target: 30 of 100 tokens active; contrast: 10 of 200
    assert S.freq_diff(30, 100, 10, 200) == pytest.approx(0.25)
    assert S.freq_ratio(30, 100, 10, 200, eps=0.0) == pytest.approx(6.0)
    # never active on the contrast: finite thanks to eps
    assert S.freq_ratio(30, 100, 0, 200, eps=1e-3) == pytest.approx((0.3 + 1e-3) / 1e-3)


def test_log_odds():
    # ln(30.5 / 70.5) - ln(10.5 / 190.5)
    assert S.log_odds(30, 100, 10, 200, alpha=0.5) == pytest.approx(2.060390911198421)
    # symmetric: swapping target and contrast flips the sign
    assert S.log_odds(10, 200, 30, 100) == pytest.approx(-2.060390911198421)
    assert S.log_odds(5, 100, 10, 200, alpha=0.0) == pytest.approx(0.0)  # same odds 5/95 = 10/190


def test_log_odds_z():
    # 2.060390911198421 / sqrt(1/30.5 + 1/70.5 + 1/10.5 + 1/190.5)
    assert S.log_odds_z(30, 100, 10, 200) == pytest.approx(5.365551817594484)
    # the same odds ratio on 10x the counts is 10x the evidence: sqrt(10) times the z-score
    assert S.log_odds_z(300, 1000, 100, 2000, alpha=0.0) == pytest.approx(
        math.sqrt(10) * S.log_odds_z(30, 100, 10, 200, alpha=0.0)
    )
    # 7 of 3000 target tokens and none elsewhere: a large log-odds, but weak evidence
    assert S.log_odds(7, 3000, 0, 30000) > S.log_odds(1000, 3000, 300, 30000)
    assert S.log_odds_z(7, 3000, 0, 30000) < S.log_odds_z(1000, 3000, 300, 30000)


def test_monolinguality_nu():
    # target mean 50/100 = 0.5; contrast means 10/100 = 0.1 and 30/200 = 0.15 -> 0.5 - 0.125
    assert S.monolinguality(50, 100, [10, 30], [100, 200]) == pytest.approx(0.375)
    # vectorised over features: [2 features, 2 contrast conditions]
    out = S.monolinguality([50, 0], 100, [[10, 30], [0, 0]], [100, 200])
    np.testing.assert_allclose(out, [0.375, 0.0])


def test_lape_entropy():
    # frequencies 0.3, 0.1, 0 -> p = 0.75, 0.25, 0 -> H = -(0.75 ln 0.75 + 0.25 ln 0.25)
    assert S.lape_entropy([30, 10, 0], [100, 100, 100]) == pytest.approx(0.5623351446188083)
    assert S.lape_entropy([7, 0, 0], [100, 50, 10]) == pytest.approx(0.0)
    assert S.lape_entropy([10, 20, 40], [100, 200, 400]) == pytest.approx(math.log(3))
    assert np.isnan(S.lape_entropy([0, 0], [10, 10]))


def test_smd_from_sums():
    # target tokens [0, 0, 2, 2]: s = 4, q = 8; contrast [0, 0, 0, 2]: s = 2, q = 4
    # SS_t = 8 - 16/4 = 4, SS_c = 4 - 4/4 = 3, pooled sd = sqrt(7 / 6), d = (1 - 0.5) / sd
    assert S.smd(4, 8, 4, 2, 4, 4) == pytest.approx(0.4629100498862757)
    t, c = np.array([0, 0, 2, 2.0]), np.array([0, 0, 0, 2.0])
    sd = math.sqrt((((t - t.mean()) ** 2).sum() + ((c - c.mean()) ** 2).sum()) / (len(t) + len(c) - 2))
    assert S.smd(t.sum(), (t**2).sum(), 4, c.sum(), (c**2).sum(), 4) == pytest.approx(
        (t.mean() - c.mean()) / sd
    )
    assert np.isnan(S.smd(0, 0, 10, 0, 0, 10))


def test_auroc_hand_computed():
    # one bin: target [0, 0, a, a], contrast [0, 0, 0, b], a and b in the same bin (ties)
    # zero-vs-zero: 6 ties -> 3; a vs 0: 6 wins; a vs b: 2 ties -> 1; total 10 / 16
    assert S.auroc_from_hist([2], 4, [1], 4) == pytest.approx(0.625)
    # two bins: target [0, 0, hi, hi] (bin 2), contrast [0, 0, 0, lo] (bin 1): 3 + 6 + 2 = 11 / 16
    assert S.auroc_from_hist([0, 2], 4, [1, 0], 4) == pytest.approx(0.6875)
    assert S.auroc_from_hist([0, 0], 10, [0, 0], 10) == pytest.approx(0.5)
    assert S.auroc_from_hist([0, 5], 5, [0, 0], 5) == pytest.approx(1.0)


def test_auroc_matches_pairwise_count_on_binned_samples():
    rng = np.random.default_rng(0)
    edges = np.logspace(-2, 2, 9)
    x_t = np.where(rng.random(300) < 0.4, rng.lognormal(0.5, 1.0, 300), 0.0)
    x_c = np.where(rng.random(500) < 0.1, rng.lognormal(0.0, 1.0, 500), 0.0)

    def binned(x):  # bin 0 = not positive, then the histogram bins (clipped to the edges)
        b = np.clip(np.searchsorted(edges, x, side="right"), 1, len(edges) - 1)
        return np.where(x > 0, b, 0)

    bt, bc = binned(x_t), binned(x_c)
    pairwise = ((bt[:, None] > bc[None, :]) + 0.5 * (bt[:, None] == bc[None, :])).mean()
    h_t = np.bincount(bt, minlength=len(edges))[1:]
    h_c = np.bincount(bc, minlength=len(edges))[1:]
    assert S.auroc_from_hist(h_t, len(x_t), h_c, len(x_c)) == pytest.approx(pairwise)


def test_scores_vectorise_over_features():
    k_t = np.array([30, 0, 100])
    out = S.log_odds(k_t, 100, np.array([10, 10, 0]), 200)
    assert out.shape == (3,)
    assert out[0] == pytest.approx(2.060390911198421)
    assert out[2] > out[0] > 0 > out[1]
    h = S.auroc_from_hist(np.array([[2], [0]]), 4, np.array([[1], [0]]), 4)
    np.testing.assert_allclose(h, [0.625, 0.5])
