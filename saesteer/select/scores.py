"""Selectivity scores of a feature for a target condition against contrast conditions.

Each score is a plain numpy function of the sufficient statistics stored in the index
(``feature_stats`` + ``conditions.n_tokens``), vectorised over features: arguments broadcast, so a
``[n_features]`` array per statistic gives ``[n_features]`` scores. The SQL versions that rank the whole
index (:mod:`saesteer.select.ranking`) implement the same formulas; a test keeps them equal.

Notation, per feature: ``k`` tokens active (activation > threshold), ``n`` counted tokens of the
condition (the denominator, ``conditions.n_tokens``), ``s`` the sum and ``q`` the sum of squares of the
activations over the counted tokens (inactive tokens count as 0), ``h`` the histogram of positive
activations over ``builds.hist_edges``. Subscript ``t`` is the target, ``c`` the contrast conditions
pooled (their statistics summed) unless a function says otherwise.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

F64 = NDArray[np.float64]


def _f(x: ArrayLike) -> F64:
    return np.asarray(x, dtype=np.float64)


def freq_diff(k_t: ArrayLike, n_t: ArrayLike, k_c: ArrayLike, n_c: ArrayLike) -> F64:
    """Difference of activation frequencies: ``k_t / n_t - k_c / n_c``. In [-1, 1]."""
    return _f(k_t) / _f(n_t) - _f(k_c) / _f(n_c)


def freq_ratio(k_t: ArrayLike, n_t: ArrayLike, k_c: ArrayLike, n_c: ArrayLike, eps: float = 1e-6) -> F64:
    """Ratio of activation frequencies, smoothed: ``(k_t / n_t + eps) / (k_c / n_c + eps)``.

    ``eps`` keeps features that never fire on the contrast finite (their ratio is ``(f_t + eps) / eps``).
    """
    return (_f(k_t) / _f(n_t) + eps) / (_f(k_c) / _f(n_c) + eps)


def log_odds(k_t: ArrayLike, n_t: ArrayLike, k_c: ArrayLike, n_c: ArrayLike, alpha: float = 0.5) -> F64:
    """Smoothed log-odds ratio of firing on the target versus the contrast (natural log)::

        ln((k_t + a) / (n_t - k_t + a)) - ln((k_c + a) / (n_c - k_c + a))

    ``a = alpha`` (0.5: the Haldane-Anscombe correction) keeps zero counts finite. Positive: the feature
    fires more often, in odds, on the target. Rewards features that are both frequent and exclusive.
    """
    k_t, n_t, k_c, n_c = _f(k_t), _f(n_t), _f(k_c), _f(n_c)
    return np.log((k_t + alpha) / (n_t - k_t + alpha)) - np.log((k_c + alpha) / (n_c - k_c + alpha))


def log_odds_z(k_t: ArrayLike, n_t: ArrayLike, k_c: ArrayLike, n_c: ArrayLike, alpha: float = 0.5) -> F64:
    """The smoothed log-odds ratio divided by its standard error (a z-score, as in Monroe et al. 2008)::

        z = log_odds / sqrt(1/(k_t + a) + 1/(n_t - k_t + a) + 1/(k_c + a) + 1/(n_c - k_c + a))

    Unlike the raw log-odds, it does not reward a feature that fired on a handful of target tokens and
    never elsewhere: the evidence has to be both strong and well supported by counts.
    """
    k_t, n_t, k_c, n_c = _f(k_t), _f(n_t), _f(k_c), _f(n_c)
    var = 1 / (k_t + alpha) + 1 / (n_t - k_t + alpha) + 1 / (k_c + alpha) + 1 / (n_c - k_c + alpha)
    return log_odds(k_t, n_t, k_c, n_c, alpha) / np.sqrt(var)


def monolinguality(s_t: ArrayLike, n_t: ArrayLike, s_c: ArrayLike, n_c: ArrayLike) -> F64:
    """Monolinguality ν (Deng et al. 2025): the mean activation on the target minus the mean over the
    other conditions of their mean activations::

        ν = s_t / n_t - (1 / K) Σ_k s_k / n_k

    Here the contrast is *not* pooled: ``s_c`` is ``[..., K]`` (one sum per contrast condition, 0 where
    the feature never fired) and ``n_c`` is ``[K]``. In activation units.
    """
    s_c, n_c = _f(s_c), _f(n_c)
    return _f(s_t) / _f(n_t) - (s_c / n_c).mean(axis=-1)


def lape_entropy(k: ArrayLike, n: ArrayLike) -> F64:
    """LAPE-style entropy (Tang et al. 2024) of the activation probabilities over conditions::

        p_k = f_k / Σ_j f_j  with  f_k = k_k / n_k,     H = -Σ_k p_k ln p_k   (0 ln 0 = 0)

    ``k`` is ``[..., K]`` (active counts per condition: the target and the contrast conditions), ``n`` is
    ``[K]``. Low entropy: the feature's firing is concentrated on few conditions; 0 for one condition,
    ``ln K`` for uniform. NaN for a feature that never fires.
    """
    f = _f(k) / _f(n)
    total = f.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = f / total
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    h = -terms.sum(axis=-1)
    return np.where(total[..., 0] > 0, h, np.nan)


def smd(
    s_t: ArrayLike, q_t: ArrayLike, n_t: ArrayLike, s_c: ArrayLike, q_c: ArrayLike, n_c: ArrayLike
) -> F64:
    """Standardized mean difference (Cohen's d) from sums and sums of squares::

        m = s / n,   SS = q - s² / n   (sum of squared deviations),
        d = (m_t - m_c) / sqrt((SS_t + SS_c) / (n_t + n_c - 2))

    i.e. the difference of means over the pooled sample standard deviation. NaN where the pooled
    deviation is 0.
    """
    s_t, q_t, n_t, s_c, q_c, n_c = map(_f, (s_t, q_t, n_t, s_c, q_c, n_c))
    ss = np.maximum(q_t - s_t**2 / n_t, 0.0) + np.maximum(q_c - s_c**2 / n_c, 0.0)
    sd = np.sqrt(ss / np.maximum(n_t + n_c - 2.0, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, (s_t / n_t - s_c / n_c) / np.where(sd > 0, sd, 1.0), np.nan)


def auroc_from_hist(h_t: ArrayLike, n_t: ArrayLike, h_c: ArrayLike, n_c: ArrayLike) -> F64:
    """AUROC of "target token vs contrast token" by the activation, estimated from the histograms.

    ``h_t``, ``h_c``: ``[..., B]`` counts of positive activations per bin; the tokens not in a bin
    (``n - Σ h``) form a bin "0" below the first. With ``t_i``, ``c_i`` the counts of bins ``i = 0..B``::

        AUROC = Σ_i t_i (Σ_{j<i} c_j + c_i / 2) / (n_t n_c)

    i.e. P(X_t > X_c) + P(X_t = X_c) / 2, where two activations in the same bin count as a tie.
    0.5: no separation; 1: every target token activates more than every contrast token.
    """
    h_t, h_c = _f(h_t), _f(h_c)
    n_t, n_c = _f(n_t), _f(n_c)
    t = np.concatenate([(n_t - h_t.sum(-1))[..., None], h_t], axis=-1)
    c = np.concatenate([(n_c - h_c.sum(-1))[..., None], h_c], axis=-1)
    below = np.cumsum(c, axis=-1) - c
    return (t * (below + c / 2.0)).sum(-1) / (n_t * n_c)
