"""Patient-level statistics: ROC/AUC with DeLong intervals, thresholds, tests.

Everything here works on one score per patient (the mean of the ten highest
slice probabilities, Han et al. 2025, "Model testing and statistical
analysis") and a binary label (1 = positive class, by default the PR = poor
response group; see ``ARCHITECTURE.md``). No function imports torch.

Public functions validate their inputs once and then call private helpers
that trust them. A degenerate input that still has a well-defined shape (one
class only, an empty group, no discordant pair) gives a
:class:`DegenerateInputWarning` and ``nan``; malformed input (wrong lengths,
labels other than 0/1, non-finite scores, a patient listed twice) raises
``ValueError`` naming what is wrong and, where there is one, the patient.

Conventions
-----------
* A patient is called positive when ``score >= threshold`` (the same rule as
  ``sklearn.metrics.roc_curve`` and ``dcurves``), and every threshold reported
  here is an observed score, so the rule reproduces the reported counts.
* Two ways of choosing the threshold are kept side by side in
  :func:`performance_table`: *apparent* (Youden's index maximised on the very
  set being described, which is what Han et al. 2025 did on their test set)
  and *pre-specified* (Youden's index maximised on training patients, then
  frozen and applied to the test set).

References
----------
DeLong E.R., DeLong D.M., Clarke-Pearson D.L. (1988). Comparing the areas
under two or more correlated receiver operating characteristic curves: a
nonparametric approach. Biometrics 44(3):837-845.

Sun X., Xu W. (2014). Fast implementation of DeLong's algorithm for comparing
the areas under correlated receiver operating characteristic curves. IEEE
Signal Processing Letters 21(11):1389-1393.

Youden W.J. (1950). Index for rating diagnostic tests. Cancer 3(1):32-35.

Wilson E.B. (1927). Probable inference, the law of succession, and
statistical inference. JASA 22(158):209-212.

Vickers A.J., Elkin E.B. (2006). Decision curve analysis: a novel method for
evaluating prediction models. Medical Decision Making 26(6):565-574.

Han S. et al. (2025). Deep learning progressive distill for predicting
clinical response to conversion therapy from preoperative CT images of
advanced gastric cancer patients. Scientific Reports.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

from pdlib.vocab import RECIST_CATEGORIES, SPLITS

__all__ = [
    "DegenerateInputWarning",
    "AUCResult",
    "DeLongTestResult",
    "McNemarResult",
    "CalibrationResult",
    "RECIST_CATEGORIES",
    "roc_curve",
    "roc_auc",
    "delong_auc",
    "delong_test",
    "auc_vs_chance",
    "holm_adjust",
    "youden_threshold",
    "confusion_counts",
    "wilson_interval",
    "classification_metrics",
    "bootstrap_ci",
    "performance_table",
    "mcnemar_exact",
    "reader_comparison",
    "cohen_kappa",
    "reader_agreement",
    "fleiss_kappa",
    "calibration",
    "decision_curve",
    "recist_confusion",
    "aggregate_over_seeds",
]

#: Default two-sided level of every confidence interval (95%).
DEFAULT_ALPHA = 0.05


class DegenerateInputWarning(UserWarning):
    """A statistic is undefined for this input (for example one class only)."""


# --------------------------------------------------------------------------
# validation (public entries only)
# --------------------------------------------------------------------------


def _as_labels(y_true, *, name: str = "y_true") -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {y.shape}")
    if y.dtype == bool:
        return y.astype(np.int64)
    if y.size and not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"{name} must hold 0/1 labels, got dtype {y.dtype}")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        raise ValueError(f"{name} must hold 0/1 labels; position {int(np.flatnonzero(bad)[0])} is {y[bad][0]!r}")
    return y.astype(np.int64)


def _as_scores(y_score, *, n: int, name: str = "y_score") -> np.ndarray:
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {s.shape}")
    if s.shape[0] != n:
        raise ValueError(f"{name} has {s.shape[0]} values but y_true has {n}")
    bad = ~np.isfinite(s)
    if bad.any():
        raise ValueError(f"{name} must be finite; position {int(np.flatnonzero(bad)[0])} is {s[bad][0]!r}")
    return s


def _check_binary(y_true, y_score, *, score_name: str = "y_score") -> tuple[np.ndarray, np.ndarray]:
    y = _as_labels(y_true)
    return y, _as_scores(y_score, n=y.shape[0], name=score_name)


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    return alpha


def _both_classes(y: np.ndarray, what: str) -> bool:
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.shape[0]:
        warnings.warn(
            f"{what} is undefined with only one class present "
            f"({n_pos} positive of {y.shape[0]}); returning nan",
            DegenerateInputWarning,
            stacklevel=3,
        )
        return False
    return True


# --------------------------------------------------------------------------
# ROC, AUC and DeLong
# --------------------------------------------------------------------------


def roc_curve(y_true, y_score) -> pd.DataFrame:
    """Empirical ROC curve with one point per distinct observed score.

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        1 for the positive class, 0 otherwise.
    y_score : array-like of shape (n_patients,)
        Higher means more likely positive.

    Returns
    -------
    curve : DataFrame of shape (n_distinct_scores + 1, 6)
        Columns ``threshold, fpr, tpr, tp, fp, youden``, thresholds
        descending. The first row (threshold ``inf``) is the point (0, 0).
        Row ``i`` describes the rule ``score >= threshold``. With one class
        only, ``fpr`` or ``tpr`` is ``nan`` and a
        :class:`DegenerateInputWarning` is given.

    Examples
    --------
    >>> roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])[["threshold", "fpr", "tpr"]]
       threshold  fpr  tpr
    0        inf  0.0  0.0
    1       0.80  0.0  0.5
    2       0.40  0.5  0.5
    3       0.35  0.5  1.0
    4       0.10  1.0  1.0
    """
    y, s = _check_binary(y_true, y_score)
    ok = _both_classes(y, "the ROC curve")
    thresholds, tp, fp = _cumulative_counts(y, s)
    n_pos, n_neg = int(y.sum()), int(y.shape[0] - y.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tp / n_pos if n_pos else np.full(tp.shape, np.nan)
        fpr = fp / n_neg if n_neg else np.full(fp.shape, np.nan)
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "fpr": fpr,
            "tpr": tpr,
            "tp": tp,
            "fp": fp,
            "youden": tpr - fpr if ok else np.nan,
        }
    )


def _cumulative_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending, led by inf) and TP/FP counts of ``s >= t``."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(s_sorted) != 0), s_sorted.size - 1] if s.size else np.array([], int)
    tp = np.cumsum(y_sorted)[last_of_value] if s.size else np.array([], int)
    fp = (last_of_value + 1) - tp
    return (
        np.r_[np.inf, s_sorted[last_of_value]],
        np.r_[0, tp].astype(np.int64),
        np.r_[0, fp].astype(np.int64),
    )


def _auc_and_covariance(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and DeLong covariance of k score vectors (Sun & Xu 2014, midranks).

    ``scores`` has shape (k, n); both classes present. Returns (auc [k],
    covariance [k, k]); the covariance is nan when a class has one patient.
    """
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    # Midranks within the positives (T_x), the negatives (T_y) and both (T_z).
    t_x = _scipy_stats.rankdata(pos, axis=1)
    t_y = _scipy_stats.rankdata(neg, axis=1)
    t_z = _scipy_stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    auc = (t_z[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    # Structural components: V10 for each positive, V01 for each negative.
    v10 = (t_z[:, :m] - t_x) / n
    v01 = 1.0 - (t_z[:, m:] - t_y) / m
    if m < 2 or n < 2:
        return auc, np.full((scores.shape[0],) * 2, np.nan)
    s10 = np.atleast_2d(np.cov(v10))
    s01 = np.atleast_2d(np.cov(v01))
    return auc, s10 / m + s01 / n


def roc_auc(y_true, y_score) -> float:
    """Area under the empirical ROC curve (ties count one half).

    Equal to the Mann-Whitney probability P(score of a positive > score of a
    negative) + 0.5 P(tie), computed from midranks in O(n log n).

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        1 for the positive class, 0 otherwise.
    y_score : array-like of shape (n_patients,)
        Higher means more likely positive.

    Returns
    -------
    auc : float
        In [0, 1]; ``nan`` (with a :class:`DegenerateInputWarning`) when only
        one class is present.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s = _check_binary(y_true, y_score)
    if not _both_classes(y, "the AUC"):
        return float("nan")
    return float(_auc_and_covariance(y, s[None, :])[0][0])


@dataclass(frozen=True)
class AUCResult:
    """AUC with its DeLong variance and confidence interval."""

    auc: float
    variance: float
    ci_low: float
    ci_high: float
    n_pos: int
    n_neg: int


def delong_auc(y_true, y_score, *, alpha: float = DEFAULT_ALPHA) -> AUCResult:
    """AUC with DeLong's variance and a normal-theory confidence interval.

    The variance is DeLong et al. (1988)'s, computed with the midrank
    algorithm of Sun & Xu (2014). The interval is ``auc +- z * sqrt(var)``
    clipped to [0, 1], as pROC's ``ci.auc(method = "delong")`` does.

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        1 for the positive class, 0 otherwise.
    y_score : array-like of shape (n_patients,)
        Higher means more likely positive.
    alpha : float, default 0.05
        Two-sided level; 0.05 gives a 95% interval.

    Returns
    -------
    result : AUCResult
        ``auc, variance, ci_low, ci_high, n_pos, n_neg``. All ``nan`` with
        one class only; variance and interval ``nan`` when a class has a
        single patient (a :class:`DegenerateInputWarning` either way).

    References
    ----------
    DeLong et al. 1988; Sun & Xu 2014 (see module docstring).

    Examples
    --------
    >>> r = delong_auc([0, 0, 0, 1, 1, 1], [0.1, 0.5, 0.3, 0.4, 0.8, 0.9])
    >>> round(r.auc, 4), round(r.variance, 4)
    (0.8889, 0.0247)
    """
    alpha = _check_alpha(alpha)
    y, s = _check_binary(y_true, y_score)
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    if not _both_classes(y, "the AUC"):
        return AUCResult(float("nan"), float("nan"), float("nan"), float("nan"), n_pos, n_neg)
    auc, cov = _auc_and_covariance(y, s[None, :])
    var = float(cov[0, 0])
    if not np.isfinite(var):
        warnings.warn(
            f"DeLong variance needs at least two patients per class (got {n_pos} positive, {n_neg} negative); returning nan",
            DegenerateInputWarning,
            stacklevel=2,
        )
    low, high = _normal_interval(float(auc[0]), var, alpha)
    return AUCResult(float(auc[0]), var, low, high, n_pos, n_neg)


def _normal_interval(estimate: float, variance: float, alpha: float) -> tuple[float, float]:
    if not np.isfinite(variance):
        return float("nan"), float("nan")
    half = _scipy_stats.norm.ppf(1.0 - alpha / 2.0) * math.sqrt(max(variance, 0.0))
    return float(max(0.0, estimate - half)), float(min(1.0, estimate + half))


@dataclass(frozen=True)
class DeLongTestResult:
    """Paired DeLong comparison of two AUCs on the same patients."""

    auc_a: float
    auc_b: float
    difference: float
    variance: float
    z: float
    p_value: float


def delong_test(y_true, score_a, score_b) -> DeLongTestResult:
    """Paired DeLong test of H0: AUC(a) = AUC(b) on the same patients.

    ``z = (AUC_a - AUC_b) / sqrt(var_a + var_b - 2 cov_ab)`` with the DeLong
    covariance matrix (Sun & Xu 2014); the p-value is two-sided normal.

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        1 for the positive class, 0 otherwise.
    score_a, score_b : array-like of shape (n_patients,)
        Scores of the two models for the same patients in the same order.

    Returns
    -------
    result : DeLongTestResult
        ``auc_a, auc_b, difference, variance, z, p_value``. ``z`` and
        ``p_value`` are ``nan`` (with a :class:`DegenerateInputWarning`) for
        one class only or when the difference has zero variance (identical
        scores).

    Examples
    --------
    >>> y = [0, 0, 0, 1, 1, 1]
    >>> r = delong_test(y, [0.1, 0.5, 0.3, 0.4, 0.8, 0.9], [0.2, 0.1, 0.6, 0.5, 0.4, 0.3])
    >>> round(r.difference, 4)
    0.2222
    """
    y = _as_labels(y_true)
    a = _as_scores(score_a, n=y.size, name="score_a")
    b = _as_scores(score_b, n=y.size, name="score_b")
    nan = float("nan")
    if not _both_classes(y, "the DeLong test"):
        return DeLongTestResult(nan, nan, nan, nan, nan, nan)
    auc, cov = _auc_and_covariance(y, np.vstack([a, b]))
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    diff = float(auc[0] - auc[1])
    if not np.isfinite(var) or var <= 1e-15:
        warnings.warn(
            "the paired DeLong test is undefined: the AUC difference has zero or undefined variance; returning nan",
            DegenerateInputWarning,
            stacklevel=2,
        )
        return DeLongTestResult(float(auc[0]), float(auc[1]), diff, var, nan, nan)
    z = diff / math.sqrt(var)
    return DeLongTestResult(float(auc[0]), float(auc[1]), diff, var, z, float(2.0 * _scipy_stats.norm.sf(abs(z))))


def auc_vs_chance(y_true, y_score) -> float:
    """Two-sided p-value of H0: AUC = 0.5 (the scores do not separate the classes).

    The AUC is the Mann-Whitney U statistic divided by ``n_pos * n_neg``, so
    the test is the Mann-Whitney U test of the positive against the negative
    scores (exact for small samples without ties, normal approximation with
    tie correction otherwise; :func:`scipy.stats.mannwhitneyu`). Unlike a
    z-test with DeLong's variance, it uses the variance under the null.

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        1 for the positive class, 0 otherwise.
    y_score : array-like of shape (n_patients,)

    Returns
    -------
    p_value : float
        ``nan`` (with a :class:`DegenerateInputWarning`) when a class is empty.

    Examples
    --------
    >>> round(auc_vs_chance([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), 4)
    0.1
    """
    y, s = _check_binary(y_true, y_score)
    if not _both_classes(y, "the test of AUC = 0.5"):
        return float("nan")
    return float(_scipy_stats.mannwhitneyu(s[y == 1], s[y == 0], alternative="two-sided").pvalue)


def holm_adjust(p_values) -> np.ndarray:
    """Holm's step-down adjustment of p-values for multiple comparisons.

    The ``i``-th smallest of ``m`` p-values is multiplied by ``m - i + 1``
    (``i`` from 1), made non-decreasing along the sorted order and capped at
    1. Rejecting where the adjusted value is below ``alpha`` controls the
    family-wise error rate at ``alpha`` under any dependence between the
    tests (Holm 1979). ``nan`` entries are left out of ``m`` and stay ``nan``.

    Parameters
    ----------
    p_values : array-like of shape (m,)

    Returns
    -------
    adjusted : ndarray of shape (m,)

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure.
    Scandinavian Journal of Statistics, 6(2), 65-70.

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03, 0.005]).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError("p_values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    index = np.flatnonzero(finite)
    order = index[np.argsort(p[index], kind="stable")]
    m = order.size
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out


# --------------------------------------------------------------------------
# thresholds and 2x2 metrics
# --------------------------------------------------------------------------


def youden_threshold(y_true, y_score) -> float:
    """Observed score that maximises Youden's J = sensitivity + specificity - 1.

    Candidates are the distinct observed scores with the rule
    ``score >= threshold`` (Youden 1950). J is compared exactly in integer
    arithmetic (``TP * n_neg + TN * n_pos``); among equal maxima the highest
    threshold (fewest positive calls) wins. Han et al. 2025 chose their
    threshold this way on the test set itself.

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        1 for the positive class, 0 otherwise.
    y_score : array-like of shape (n_patients,)
        Higher means more likely positive.

    Returns
    -------
    threshold : float
        One of the observed scores; ``nan`` (with a
        :class:`DegenerateInputWarning`) when only one class is present.

    Examples
    --------
    >>> youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.55, 0.8])
    0.55
    """
    y, s = _check_binary(y_true, y_score)
    if not _both_classes(y, "Youden's threshold"):
        return float("nan")
    return _youden(y, s)


def _youden(y: np.ndarray, s: np.ndarray) -> float:
    thresholds, tp, fp = _cumulative_counts(y, s)
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    tn = n_neg - fp
    j_scaled = tp[1:] * n_neg + tn[1:] * n_pos  # drop the inf row
    return float(thresholds[1:][int(np.argmax(j_scaled))])


def confusion_counts(y_true, y_pred) -> dict[str, int]:
    """Counts of the 2x2 table.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_patients,)
        0/1 truth and 0/1 prediction.

    Returns
    -------
    counts : dict
        ``{"tp", "fn", "tn", "fp"}`` as ints.

    Examples
    --------
    >>> confusion_counts([1, 1, 0, 0], [1, 0, 0, 1])
    {'tp': 1, 'fn': 1, 'tn': 1, 'fp': 1}
    """
    y = _as_labels(y_true)
    p = _as_labels(y_pred, name="y_pred")
    if p.size != y.size:
        raise ValueError(f"y_pred has {p.size} values but y_true has {y.size}")
    return _counts(y, p)


def _counts(y: np.ndarray, p: np.ndarray) -> dict[str, int]:
    return {
        "tp": int(((y == 1) & (p == 1)).sum()),
        "fn": int(((y == 1) & (p == 0)).sum()),
        "tn": int(((y == 0) & (p == 0)).sum()),
        "fp": int(((y == 0) & (p == 1)).sum()),
    }


def wilson_interval(count: int, nobs: int, *, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``count / nobs``.

    Computed by ``statsmodels.stats.proportion.proportion_confint`` with
    ``method="wilson"`` (Wilson 1927). It stays inside [0, 1] and keeps close
    to its nominal coverage for the small counts of a 28-patient test set,
    unlike the Wald interval (Newcombe 1998).

    Parameters
    ----------
    count : int
        Successes, ``0 <= count <= nobs``.
    nobs : int
        Trials.
    alpha : float, default 0.05
        Two-sided level.

    Returns
    -------
    (low, high) : tuple of float
        ``(nan, nan)`` with a :class:`DegenerateInputWarning` when ``nobs`` is 0.

    References
    ----------
    Newcombe R.G. (1998). Two-sided confidence intervals for the single
    proportion: comparison of seven methods. Statistics in Medicine
    17(8):857-872.

    Examples
    --------
    >>> tuple(round(v, 4) for v in wilson_interval(81, 263))
    (0.2553, 0.3662)
    """
    alpha = _check_alpha(alpha)
    if int(count) != count or int(nobs) != nobs or not 0 <= count <= nobs:
        raise ValueError(f"need integers 0 <= count <= nobs, got count={count}, nobs={nobs}")
    if nobs == 0:
        warnings.warn("a proportion of 0 observations is undefined; returning nan", DegenerateInputWarning, stacklevel=2)
        return float("nan"), float("nan")
    return _wilson(int(count), int(nobs), alpha)


def _wilson(count: int, nobs: int, alpha: float) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    if nobs == 0:
        return float("nan"), float("nan")
    low, high = proportion_confint(count, nobs, alpha=alpha, method="wilson")
    return float(low), float(high)


def classification_metrics(y_true, y_pred, *, alpha: float = DEFAULT_ALPHA) -> dict[str, float]:
    """Accuracy, sensitivity and specificity with Wilson intervals and counts.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_patients,)
        0/1 truth and 0/1 prediction (1 = positive class).
    alpha : float, default 0.05
        Two-sided level of the Wilson intervals.

    Returns
    -------
    metrics : dict
        ``tp, fn, tn, fp, n``, and for each of ``accuracy``, ``sensitivity``
        (TP / (TP + FN)) and ``specificity`` (TN / (TN + FP)) the value and
        ``<name>_ci_low``, ``<name>_ci_high``. A proportion with an empty
        denominator is ``nan`` (with a :class:`DegenerateInputWarning`).

    Examples
    --------
    >>> m = classification_metrics([1, 1, 0, 0], [1, 0, 0, 0])
    >>> m["sensitivity"], m["specificity"], m["accuracy"]
    (0.5, 1.0, 0.75)
    """
    alpha = _check_alpha(alpha)
    y = _as_labels(y_true)
    p = _as_labels(y_pred, name="y_pred")
    if p.size != y.size:
        raise ValueError(f"y_pred has {p.size} values but y_true has {y.size}")
    _both_classes(y, "sensitivity or specificity")
    return _metrics_from_counts(_counts(y, p), alpha)


def _metrics_from_counts(c: Mapping[str, int], alpha: float) -> dict[str, float]:
    out: dict[str, float] = dict(c)
    n = c["tp"] + c["fn"] + c["tn"] + c["fp"]
    out["n"] = n
    for name, num, den in (
        ("accuracy", c["tp"] + c["tn"], n),
        ("sensitivity", c["tp"], c["tp"] + c["fn"]),
        ("specificity", c["tn"], c["tn"] + c["fp"]),
    ):
        out[name] = num / den if den else float("nan")
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = _wilson(num, den, alpha)
    return out


def bootstrap_ci(
    y_true,
    y_score,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_resamples: int = 2000,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
) -> tuple[float, float]:
    """Stratified patient-level percentile bootstrap interval of a statistic.

    Patients are resampled with replacement within each class separately, so
    every resample keeps the observed numbers of positives and negatives
    (and every class-dependent statistic stays defined).

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        1 for the positive class, 0 otherwise.
    y_score : array-like of shape (n_patients,)
        One value per patient (a score, or a 0/1 prediction).
    statistic : callable ``(y_true, y_score) -> float``
        Computed on each resample; resamples where it is not finite are
        dropped (and counted in the warning below).
    n_resamples : int, default 2000
    alpha : float, default 0.05
        Two-sided level; the interval is the ``alpha/2`` and ``1 - alpha/2``
        quantiles of the bootstrap distribution.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``: same seed, same interval.

    Returns
    -------
    (low, high) : tuple of float
        ``(nan, nan)`` with a :class:`DegenerateInputWarning` for one class only.

    References
    ----------
    Efron B., Tibshirani R.J. (1993). An Introduction to the Bootstrap.
    Chapman & Hall, chapter 13.

    Examples
    --------
    >>> y = [0] * 20 + [1] * 20
    >>> s = [i / 40 for i in range(40)]
    >>> low, high = bootstrap_ci(y, s, roc_auc, n_resamples=200, seed=1)
    >>> low <= 1.0 <= high
    True
    """
    alpha = _check_alpha(alpha)
    y, s = _check_binary(y_true, y_score)
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not _both_classes(y, "a stratified bootstrap"):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    values = np.empty(int(n_resamples))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateInputWarning)
        for i in range(int(n_resamples)):
            idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
            values[i] = statistic(y[idx], s[idx])
    finite = values[np.isfinite(values)]
    if finite.size < values.size:
        warnings.warn(
            f"{values.size - finite.size} of {values.size} bootstrap resamples gave a non-finite statistic and were dropped",
            DegenerateInputWarning,
            stacklevel=2,
        )
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


# --------------------------------------------------------------------------
# the patient-prediction table
# --------------------------------------------------------------------------

_PREDICTION_COLUMNS = ("patient_id", "split", "label", "score")


def _check_predictions(predictions: pd.DataFrame, *, oof_column: str | None = None) -> pd.DataFrame:
    """Validate a ``patient_predictions.csv`` table; errors name the patient."""
    if not isinstance(predictions, pd.DataFrame):
        raise TypeError(f"predictions must be a pandas DataFrame, got {type(predictions).__name__}")
    missing = [c for c in _PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"patient predictions lack column(s) {missing}; expected at least {list(_PREDICTION_COLUMNS)}")
    table = predictions.copy()
    table["patient_id"] = table["patient_id"].astype(str)
    dup = table["patient_id"][table["patient_id"].duplicated()]
    if not dup.empty:
        raise ValueError(f"patient {dup.iloc[0]!r} appears more than once in the patient predictions")
    for _, row in table.iterrows():
        pid = row["patient_id"]
        if row["split"] not in SPLITS:
            raise ValueError(f"patient {pid!r}: split must be 'train' or 'test', got {row['split']!r}")
        if row["label"] not in (0, 1):
            raise ValueError(f"patient {pid!r}: label must be 0 or 1, got {row['label']!r}")
        if not np.isfinite(pd.to_numeric(row["score"], errors="coerce")):
            raise ValueError(f"patient {pid!r}: score must be a finite number, got {row['score']!r}")
    table["label"] = table["label"].astype(np.int64)
    table["score"] = table["score"].astype(np.float64)
    if oof_column is not None and oof_column in table.columns:
        oof = pd.to_numeric(table[oof_column], errors="coerce")
        train = table["split"] == "train"
        have = train & oof.notna()
        if have.any() and not have[train].all():
            pid = table.loc[train & oof.isna(), "patient_id"].iloc[0]
            raise ValueError(
                f"patient {pid!r}: training patient without an out-of-fold score in column {oof_column!r} "
                "(give every training patient one, or none)"
            )
        table[oof_column] = oof
    return table


def performance_table(
    predictions: pd.DataFrame,
    *,
    oof_column: str = "oof_score",
    alpha: float = DEFAULT_ALPHA,
) -> pd.DataFrame:
    """Train and test metrics under an apparent and a pre-specified threshold.

    The two ways of dichotomising the score, side by side:

    ``apparent``
        Youden's threshold is picked on each split itself (training
        threshold on training patients, test threshold on test patients).
        On the test set this is what Han et al. 2025 report ("optimal
        threshold selected based on the Youden index within the test set");
        it is optimistic because the threshold has seen the test labels.
    ``pre-specified``
        One threshold, picked by Youden's index on the training patients'
        out-of-fold scores (column ``oof_column``) and applied unchanged to
        both splits. When the table has no out-of-fold scores the training
        patients' own (resubstitution) scores are used instead, and
        ``threshold_source`` says so.

    Parameters
    ----------
    predictions : DataFrame of shape (n_patients, >= 4)
        One row per patient with ``patient_id, split ("train"/"test"),
        label (0/1), score``; optionally ``recist`` and ``oof_column``.
    oof_column : str, default "oof_score"
        Column of out-of-fold training scores, if any.
    alpha : float, default 0.05
        Two-sided level of all intervals.

    Returns
    -------
    table : DataFrame of shape (4, 27)
        One row per ``(way, split)`` with ``threshold_source, threshold, n,
        n_pos, n_neg, auc, auc_ci_low, auc_ci_high, tp, fn, tn, fp`` and
        accuracy, sensitivity, specificity with Wilson ``_ci_low/_ci_high``.
        The AUC and its DeLong interval do not depend on the threshold and are
        repeated in both ways. A split with one class only gets ``nan``
        metrics and a :class:`DegenerateInputWarning`.

    Examples
    --------
    >>> table = pd.DataFrame({
    ...     "patient_id": list("abcdefgh"),
    ...     "split": ["train"] * 4 + ["test"] * 4,
    ...     "label": [0, 0, 1, 1, 0, 1, 0, 1],
    ...     "score": [0.1, 0.4, 0.6, 0.9, 0.3, 0.5, 0.7, 0.8]})
    >>> performance_table(table)[["way", "split", "threshold", "accuracy"]]
                 way  split  threshold  accuracy
    0       apparent  train        0.6      1.00
    1       apparent   test        0.8      0.75
    2  pre-specified  train        0.6      1.00
    3  pre-specified   test        0.6      0.50
    """
    alpha = _check_alpha(alpha)
    table = _check_predictions(predictions, oof_column=oof_column)
    train = table[table["split"] == "train"]
    test = table[table["split"] == "test"]
    if train.empty or test.empty:
        raise ValueError(
            f"patient predictions need both splits; got {len(train)} training and {len(test)} test patients"
        )

    has_oof = oof_column in train.columns and train[oof_column].notna().all()
    source_scores = train[oof_column] if has_oof else train["score"]
    frozen_source = "youden_train_oof" if has_oof else "youden_train_resubstitution"
    frozen = _threshold_or_nan(train["label"].to_numpy(), source_scores.to_numpy(), "the training threshold")

    rows = []
    for way in ("apparent", "pre-specified"):
        for split, part in (("train", train), ("test", test)):
            y, s = part["label"].to_numpy(), part["score"].to_numpy()
            if way == "apparent":
                threshold = _threshold_or_nan(y, s, f"the {split} threshold")
                source = f"youden_{split}"
            else:
                threshold, source = frozen, frozen_source
            rows.append({"way": way, "split": split, "threshold_source": source, "threshold": threshold,
                         **_split_metrics(y, s, threshold, alpha)})
    return pd.DataFrame(rows)


def _threshold_or_nan(y: np.ndarray, s: np.ndarray, what: str) -> float:
    if not _both_classes(y, what):
        return float("nan")
    return _youden(y, s)


def _split_metrics(y: np.ndarray, s: np.ndarray, threshold: float, alpha: float) -> dict[str, float]:
    n_pos = int(y.sum())
    out: dict[str, float] = {"n": int(y.size), "n_pos": n_pos, "n_neg": int(y.size) - n_pos}
    if 0 < n_pos < y.size:
        auc, cov = _auc_and_covariance(y, s[None, :])
        out["auc"] = float(auc[0])
        out["auc_ci_low"], out["auc_ci_high"] = _normal_interval(float(auc[0]), float(cov[0, 0]), alpha)
    else:
        out["auc"] = out["auc_ci_low"] = out["auc_ci_high"] = float("nan")
    if np.isfinite(threshold):
        metrics = _metrics_from_counts(_counts(y, (s >= threshold).astype(np.int64)), alpha)
    else:
        metrics = {k: float("nan") for k in ("tp", "fn", "tn", "fp")}
        for name in ("accuracy", "sensitivity", "specificity"):
            metrics[name] = metrics[f"{name}_ci_low"] = metrics[f"{name}_ci_high"] = float("nan")
    metrics.pop("n", None)
    out.update(metrics)
    return out


# --------------------------------------------------------------------------
# comparisons with clinicians
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on the discordant pairs of two paired classifiers."""

    n: int
    only_a_correct: int
    only_b_correct: int
    p_value: float


def mcnemar_exact(y_true, pred_a, pred_b) -> McNemarResult:
    """Exact (conditional binomial) McNemar test of equal accuracy.

    Under H0 each of the ``d = b + c`` discordant patients (``b``: only ``a``
    right, ``c``: only ``b`` right) is equally likely to go either way, so
    ``p = min(1, 2 * P(Binomial(d, 1/2) <= min(b, c)))``.

    Parameters
    ----------
    y_true, pred_a, pred_b : array-like of shape (n_patients,)
        0/1 truth and the two 0/1 predictions for the same patients.

    Returns
    -------
    result : McNemarResult
        ``n, only_a_correct (b), only_b_correct (c), p_value``. With no
        discordant patient the p-value is 1.

    References
    ----------
    McNemar Q. (1947). Note on the sampling error of the difference between
    correlated proportions or percentages. Psychometrika 12(2):153-157.
    Fagerland M.W., Lydersen S., Laake P. (2013). The McNemar test for binary
    matched-pairs data. BMC Medical Research Methodology 13:91.

    Examples
    --------
    >>> y = [1] * 8
    >>> r = mcnemar_exact(y, [1] * 7 + [0], [0] * 7 + [1])
    >>> r.only_a_correct, r.only_b_correct, round(r.p_value, 4)
    (7, 1, 0.0703)
    """
    y = _as_labels(y_true)
    a = _as_labels(pred_a, name="pred_a")
    b = _as_labels(pred_b, name="pred_b")
    if not (a.size == b.size == y.size):
        raise ValueError(f"y_true, pred_a and pred_b must have equal lengths, got {y.size}, {a.size}, {b.size}")
    return _mcnemar(y, a, b)


def _mcnemar(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> McNemarResult:
    a_ok, b_ok = a == y, b == y
    only_a = int((a_ok & ~b_ok).sum())
    only_b = int((~a_ok & b_ok).sum())
    d = only_a + only_b
    p = 1.0 if d == 0 else min(1.0, 2.0 * float(_scipy_stats.binom.cdf(min(only_a, only_b), d, 0.5)))
    return McNemarResult(int(y.size), only_a, only_b, p)


def _reader_wide(readers: pd.DataFrame, *, positive_class: str, negative_class: str) -> pd.DataFrame:
    """``readers.csv`` (long) -> patients x readers of 0/1 calls; errors name the patient."""
    missing = [c for c in ("patient_id", "reader", "call") if c not in readers.columns]
    if missing:
        raise ValueError(f"reader calls lack column(s) {missing}; expected patient_id, reader, call")
    long = readers.copy()
    long["patient_id"] = long["patient_id"].astype(str)
    bad = ~long["call"].isin([positive_class, negative_class])
    if bad.any():
        row = long[bad].iloc[0]
        raise ValueError(
            f"patient {row['patient_id']!r}: reader {row['reader']!r} call must be "
            f"{negative_class!r} or {positive_class!r}, got {row['call']!r}"
        )
    dup = long.duplicated(["patient_id", "reader"])
    if dup.any():
        row = long[dup].iloc[0]
        raise ValueError(f"patient {row['patient_id']!r}: reader {row['reader']!r} has more than one call")
    long["positive"] = (long["call"] == positive_class).astype(np.int64)
    return long.pivot(index="patient_id", columns="reader", values="positive")


def reader_comparison(
    predictions: pd.DataFrame,
    readers: pd.DataFrame,
    *,
    threshold: float,
    positive_class: str = "PR",
    negative_class: str = "GR",
    alpha: float = DEFAULT_ALPHA,
) -> pd.DataFrame:
    """Each clinician against the model on the test patients, with exact McNemar.

    Han et al. 2025 (Table 3) compared three clinicians (3, 20 and 40 years
    of experience) with the PD model by accuracy, sensitivity and
    specificity only; this adds Wilson intervals and a paired test. The
    model's calls should use a *pre-specified* threshold (see
    :func:`performance_table`), not one tuned on the test labels.

    Parameters
    ----------
    predictions : DataFrame
        Patient predictions (``patient_id, split, label, score``); only
        ``split == "test"`` rows are used.
    readers : DataFrame
        Long table ``patient_id, reader, call`` with calls
        ``negative_class``/``positive_class``; every reader must have called
        every test patient.
    threshold : float
        The model calls a patient positive when ``score >= threshold``.
    positive_class, negative_class : str, default "PR", "GR"
        Names of the calls meaning label 1 and label 0.
    alpha : float, default 0.05

    Returns
    -------
    table : DataFrame of shape (n_readers + 1, 17)
        One row per reader plus a first row ``reader == "model"``, with
        ``n, tp, fn, tn, fp``, accuracy/sensitivity/specificity with Wilson
        intervals, and (reader rows) ``model_only_correct``,
        ``reader_only_correct``, ``mcnemar_p``.

    Examples
    --------
    >>> pred = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "split": "test",
    ...                      "label": [1, 1, 0, 0], "score": [0.9, 0.6, 0.4, 0.2]})
    >>> calls = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "reader": "C3",
    ...                       "call": ["PR", "GR", "GR", "PR"]})
    >>> reader_comparison(pred, calls, threshold=0.5)[["reader", "accuracy", "mcnemar_p"]]
      reader  accuracy  mcnemar_p
    0  model       1.0        NaN
    1     C3       0.5        0.5
    """
    alpha = _check_alpha(alpha)
    table = _check_predictions(predictions)
    test = table[table["split"] == "test"].set_index("patient_id")
    if test.empty:
        raise ValueError("patient predictions have no test patient")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    wide = _reader_wide(readers, positive_class=positive_class, negative_class=negative_class)
    unknown = wide.index.difference(test.index)
    if len(unknown):
        raise ValueError(f"patient {unknown[0]!r} has reader calls but is not a test patient in the predictions")
    for reader in wide.columns:
        missing = test.index.difference(wide.index[wide[reader].notna()])
        if len(missing):
            raise ValueError(f"patient {missing[0]!r}: no call from reader {reader!r}")
    y = test["label"].to_numpy()
    model = (test["score"].to_numpy() >= threshold).astype(np.int64)
    _both_classes(y, "sensitivity or specificity")
    rows = [{"reader": "model", **_metrics_from_counts(_counts(y, model), alpha)}]
    for reader in wide.columns:
        calls = wide.loc[test.index, reader].to_numpy().astype(np.int64)
        test_result = _mcnemar(y, model, calls)
        rows.append({
            "reader": str(reader),
            **_metrics_from_counts(_counts(y, calls), alpha),
            "model_only_correct": test_result.only_a_correct,
            "reader_only_correct": test_result.only_b_correct,
            "mcnemar_p": test_result.p_value,
        })
    return pd.DataFrame(rows)


def cohen_kappa(calls_a, calls_b) -> float:
    """Cohen's kappa between two raters' 0/1 calls on the same patients.

    Parameters
    ----------
    calls_a, calls_b : array-like of shape (n_patients,)

    Returns
    -------
    kappa : float
        ``(p_o - p_e) / (1 - p_e)``; ``nan`` with a
        :class:`DegenerateInputWarning` when both raters give one identical
        call to everyone (``p_e = 1``).

    References
    ----------
    Cohen J. (1960). A coefficient of agreement for nominal scales.
    Educational and Psychological Measurement 20(1):37-46.

    Examples
    --------
    >>> cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0])
    0.5
    """
    a = _as_labels(calls_a, name="calls_a")
    b = _as_labels(calls_b, name="calls_b")
    if a.size != b.size:
        raise ValueError(f"calls_a has {a.size} values but calls_b has {b.size}")
    return _kappa(a, b)


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    n = a.size
    p_o = float((a == b).mean()) if n else float("nan")
    p_e = (a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean())) if n else float("nan")
    if not n or p_e >= 1.0:
        warnings.warn("Cohen's kappa is undefined when chance agreement is 1; returning nan",
                      DegenerateInputWarning, stacklevel=3)
        return float("nan")
    return float((p_o - p_e) / (1.0 - p_e))


def kappa_interval(a, b, *, alpha: float = DEFAULT_ALPHA) -> tuple[float, float]:
    """Wald interval of Cohen's kappa from its large-sample standard error (Cohen 1960).

    ``SE = sqrt(p_o (1 - p_o) / (n (1 - p_e)^2))`` with observed agreement
    ``p_o`` and chance agreement ``p_e``; the interval ``kappa -+ z SE`` is
    clipped to [-1, 1]. ``(nan, nan)`` when kappa is undefined.

    Examples
    --------
    >>> low, high = kappa_interval([1, 1, 0, 0, 1, 0, 1, 0], [1, 0, 0, 0, 1, 0, 1, 1])
    >>> round(low, 3), round(high, 3)
    (-0.1, 1.0)
    """
    alpha = _check_alpha(alpha)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"kappa_interval: the two raters have {a.size} and {b.size} calls")
    n = a.size
    if not n:
        return float("nan"), float("nan")
    p_o = float((a == b).mean())
    p_e = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    if p_e >= 1.0:
        return float("nan"), float("nan")
    kappa = (p_o - p_e) / (1.0 - p_e)
    half = float(_scipy_stats.norm.ppf(1 - alpha / 2)) * math.sqrt(p_o * (1 - p_o) / (n * (1 - p_e) ** 2))
    return max(-1.0, kappa - half), min(1.0, kappa + half)


def reader_agreement(
    readers: pd.DataFrame, *, positive_class: str = "PR", negative_class: str = "GR"
) -> pd.DataFrame:
    """Pairwise Cohen's kappa between clinicians, with 95% intervals (:func:`kappa_interval`).

    Parameters
    ----------
    readers : DataFrame
        Long table ``patient_id, reader, call``.
    positive_class, negative_class : str, default "PR", "GR"

    Returns
    -------
    table : DataFrame of shape (n_pairs, 7)
        ``reader_a, reader_b, n`` (patients called by both),
        ``agreement`` (observed), ``kappa`` and its 95% interval
        ``kappa_ci_low, kappa_ci_high``.

    Examples
    --------
    >>> calls = pd.DataFrame({"patient_id": list("abcdabcd"), "reader": ["C3"] * 4 + ["C20"] * 4,
    ...                       "call": ["PR", "PR", "GR", "GR", "PR", "GR", "GR", "GR"]})
    >>> reader_agreement(calls)[["reader_a", "reader_b", "n", "agreement", "kappa"]]
      reader_a reader_b  n  agreement  kappa
    0      C20       C3  4       0.75    0.5
    """
    wide = _reader_wide(readers, positive_class=positive_class, negative_class=negative_class)
    rows = []
    for ra, rb in itertools.combinations(sorted(wide.columns, key=str), 2):
        both = wide[[ra, rb]].dropna()
        a, b = both[ra].to_numpy().astype(np.int64), both[rb].to_numpy().astype(np.int64)
        kappa = _kappa(a, b)
        low, high = kappa_interval(a, b) if np.isfinite(kappa) else (float("nan"), float("nan"))
        rows.append({"reader_a": str(ra), "reader_b": str(rb), "n": int(a.size),
                     "agreement": float((a == b).mean()) if a.size else float("nan"), "kappa": kappa,
                     "kappa_ci_low": low, "kappa_ci_high": high})
    return pd.DataFrame(rows, columns=["reader_a", "reader_b", "n", "agreement", "kappa", "kappa_ci_low",
                                       "kappa_ci_high"])


def fleiss_kappa(readers: pd.DataFrame, *, positive_class: str = "PR", negative_class: str = "GR") -> float:
    """Fleiss' kappa of all clinicians on the patients every one of them called.

    Parameters
    ----------
    readers : DataFrame
        Long table ``patient_id, reader, call``.

    Returns
    -------
    kappa : float
        From ``statsmodels.stats.inter_rater.fleiss_kappa``; ``nan`` with a
        :class:`DegenerateInputWarning` when all calls are identical.

    References
    ----------
    Fleiss J.L. (1971). Measuring nominal scale agreement among many raters.
    Psychological Bulletin 76(5):378-382.

    Examples
    --------
    >>> calls = pd.DataFrame({"patient_id": list("abab"), "reader": ["x", "x", "y", "y"],
    ...                       "call": ["PR", "GR", "PR", "GR"]})
    >>> fleiss_kappa(calls)
    1.0
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    wide = _reader_wide(readers, positive_class=positive_class, negative_class=negative_class).dropna()
    positives = wide.sum(axis=1).to_numpy()
    counts = np.column_stack([wide.shape[1] - positives, positives])
    if counts.shape[0] == 0 or (counts[:, 0].sum() == 0 or counts[:, 1].sum() == 0):
        warnings.warn("Fleiss' kappa is undefined when every call is the same; returning nan",
                      DegenerateInputWarning, stacklevel=2)
        return float("nan")
    return float(_fleiss(counts, method="fleiss"))


# --------------------------------------------------------------------------
# calibration and decision curves
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationResult:
    """Calibration of probability scores (see :func:`calibration`)."""

    curve: pd.DataFrame
    brier: float
    slope: float
    slope_ci: tuple[float, float]
    intercept: float
    intercept_ci: tuple[float, float]


def _check_probabilities(s: np.ndarray, name: str) -> None:
    bad = (s < 0) | (s > 1)
    if bad.any():
        raise ValueError(f"{name} must be probabilities in [0, 1]; position {int(np.flatnonzero(bad)[0])} is {s[bad][0]}")


def calibration(
    y_true,
    y_prob,
    *,
    n_bins: int = 5,
    strategy: str = "quantile",
    alpha: float = DEFAULT_ALPHA,
    clip: float = 1e-6,
) -> CalibrationResult:
    """Binned calibration curve, Brier score, calibration slope and intercept.

    The slope is ``b`` in the logistic recalibration model
    ``logit P(y = 1) = a + b * logit(p)``; the intercept (calibration in the
    large) is ``a`` in ``logit P(y = 1) = a + logit(p)`` with the slope fixed
    at 1 through an offset. A well-calibrated model has slope 1 and
    intercept 0. Both are fitted by maximum likelihood with statsmodels
    (binomial GLM) and come with Wald intervals.

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        1 for the positive class, 0 otherwise.
    y_prob : array-like of shape (n_patients,)
        Predicted probabilities of the positive class, in [0, 1].
    n_bins : int, default 5
        Bins of the curve (few: a test set of 28 patients).
    strategy : {"quantile", "uniform"}, default "quantile"
        Bins of equal patient counts, or of equal width on [0, 1].
    alpha : float, default 0.05
    clip : float, default 1e-6
        Probabilities are clipped to ``[clip, 1 - clip]`` before the logit.

    Returns
    -------
    result : CalibrationResult
        ``curve`` (DataFrame ``bin, n, mean_predicted, observed_fraction``,
        empty bins dropped), ``brier``, ``slope``, ``slope_ci``,
        ``intercept``, ``intercept_ci``. Slope and intercept are ``nan`` (with
        a :class:`DegenerateInputWarning`) for one class only or when the fit
        does not converge (for example perfectly separated scores).

    References
    ----------
    Cox D.R. (1958). Two further applications of a model for binary
    regression. Biometrika 45(3/4):562-565.
    Van Calster B. et al. (2016). A calibration hierarchy for risk models was
    defined: from utopia to empirical data. J Clin Epidemiol 74:167-176.
    Brier G.W. (1950). Verification of forecasts expressed in terms of
    probability. Monthly Weather Review 78(1):1-3.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.05, 0.95, 400)
    >>> y = (rng.uniform(size=400) < p).astype(int)
    >>> r = calibration(y, p)
    >>> r.slope_ci[0] < 1 < r.slope_ci[1]
    True
    """
    alpha = _check_alpha(alpha)
    y, p = _check_binary(y_true, y_prob, score_name="y_prob")
    _check_probabilities(p, "y_prob")
    if strategy not in ("quantile", "uniform"):
        raise ValueError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if not 0.0 < clip < 0.5:
        raise ValueError(f"clip must lie in (0, 0.5), got {clip}")

    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, int(n_bins) + 1)))
    else:
        edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
    bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    curve = (
        pd.DataFrame({"bin": bins, "p": p, "y": y})
        .groupby("bin", as_index=False)
        .agg(n=("y", "size"), mean_predicted=("p", "mean"), observed_fraction=("y", "mean"))
    )
    brier = float(np.mean((p - y) ** 2)) if y.size else float("nan")
    nan2 = (float("nan"), float("nan"))
    if not _both_classes(y, "the calibration slope and intercept"):
        return CalibrationResult(curve, brier, float("nan"), nan2, float("nan"), nan2)
    slope, slope_ci, intercept, intercept_ci = _recalibration(y, p, alpha, clip)
    return CalibrationResult(curve, brier, slope, slope_ci, intercept, intercept_ci)


def _recalibration(y: np.ndarray, p: np.ndarray, alpha: float, clip: float):
    import statsmodels.api as sm

    logit = np.log(np.clip(p, clip, 1 - clip) / (1 - np.clip(p, clip, 1 - clip)))
    nan, nan2 = float("nan"), (float("nan"), float("nan"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # separation / non-convergence -> except
            slope_fit = sm.GLM(y, sm.add_constant(logit, has_constant="add"), family=sm.families.Binomial()).fit()
            icpt_fit = sm.GLM(y, np.ones((y.size, 1)), family=sm.families.Binomial(), offset=logit).fit()
        slope_ci = tuple(float(v) for v in slope_fit.conf_int(alpha=alpha)[1])
        icpt_ci = tuple(float(v) for v in icpt_fit.conf_int(alpha=alpha)[0])
        result = (float(slope_fit.params[1]), slope_ci, float(icpt_fit.params[0]), icpt_ci)
        if not all(np.isfinite(v) for v in (result[0], result[2], *slope_ci, *icpt_ci)):
            raise FloatingPointError("non-finite estimate")
        return result
    except Exception as err:  # statsmodels raises several types for separation
        warnings.warn(f"the logistic recalibration fit failed ({type(err).__name__}: {err}); returning nan",
                      DegenerateInputWarning, stacklevel=3)
        return nan, nan2, nan, nan2


#: Default threshold-probability grid of the decision curve: 0.00 to 0.99.
DCA_THRESHOLDS = tuple(round(i / 100, 2) for i in range(100))


def decision_curve(
    y_true,
    scores: Mapping[str, Sequence[float]],
    *,
    thresholds: Sequence[float] = DCA_THRESHOLDS,
) -> pd.DataFrame:
    """Net benefit of each model, of treating all and of treating none.

    Net benefit at threshold probability ``pt`` is
    ``TP/n - FP/n * pt / (1 - pt)`` with ``score >= pt`` called positive
    (Vickers & Elkin 2006), computed by ``dcurves.dca``. Han et al. 2025,
    Fig. 4B shows such curves for baseline, KD and PD EfficientNet-B7.

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        1 for the positive class, 0 otherwise.
    scores : mapping of model name -> array-like of shape (n_patients,)
        Probabilities in [0, 1]. The names ``all`` and ``none`` are reserved.
    thresholds : sequence of float, default 0.00, 0.01, ..., 0.99
        Threshold probabilities in [0, 1).

    Returns
    -------
    curves : DataFrame of shape ((n_models + 2) * n_thresholds, 7)
        Tidy: ``model, threshold, n, prevalence, tp_rate, fp_rate,
        net_benefit``; models in the given order, then ``all``, ``none``.

    References
    ----------
    Vickers A.J., Elkin E.B. (2006), see module docstring.

    Examples
    --------
    >>> curves = decision_curve([0, 1, 1, 0], {"m": [0.2, 0.8, 0.6, 0.4]}, thresholds=[0.5])
    >>> curves[["model", "net_benefit"]]
      model  net_benefit
    0     m          0.5
    1   all          0.0
    2  none          0.0
    """
    import dcurves

    y = _as_labels(y_true)
    if not scores:
        raise ValueError("scores must name at least one model")
    reserved = {"all", "none"} & set(scores)
    if reserved:
        raise ValueError(f"model names {sorted(reserved)} are reserved for the reference strategies")
    grid = np.asarray(list(thresholds), dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or ((grid < 0) | (grid >= 1) | ~np.isfinite(grid)).any():
        raise ValueError("thresholds must be a non-empty sequence of numbers in [0, 1)")
    data = {"outcome": y}
    for name, values in scores.items():
        s = _as_scores(values, n=y.size, name=f"scores[{name!r}]")
        _check_probabilities(s, f"scores[{name!r}]")
        data[str(name)] = s
    frame = dcurves.dca(data=pd.DataFrame(data), outcome="outcome", modelnames=[str(k) for k in scores],
                        thresholds=[float(t) for t in grid])
    columns = ["model", "threshold", "n", "prevalence", "tp_rate", "fp_rate", "net_benefit"]
    return frame[columns].reset_index(drop=True)


# --------------------------------------------------------------------------
# RECIST confusion and seed aggregation
# --------------------------------------------------------------------------


def recist_confusion(recist, y_pred, *, positive_class: str = "PR", negative_class: str = "GR") -> pd.DataFrame:
    """Predicted response group by RECIST category (Han et al. 2025, Fig. 4A).

    Parameters
    ----------
    recist : array-like of shape (n_patients,)
        RECIST 1.1 category of each patient: ``CR``, ``PR``, ``SD`` or ``PD``.
    y_pred : array-like of shape (n_patients,)
        0/1 predictions, 1 meaning ``positive_class``.
    positive_class, negative_class : str, default "PR", "GR"
        Names of the predicted groups (columns).

    Returns
    -------
    table : DataFrame of shape (4, 2)
        Counts; index ``recist`` = CR, PR, SD, PD (RECIST partial response),
        columns ``predicted`` = GR, PR (response groups).

    Examples
    --------
    >>> recist_confusion(["CR", "PR", "SD", "PD"], [0, 1, 1, 1])  # doctest: +NORMALIZE_WHITESPACE
    predicted  GR  PR
    recist
    CR          1   0
    PR          0   1
    SD          0   1
    PD          0   1
    """
    r = np.asarray(recist, dtype=object)
    p = _as_labels(y_pred, name="y_pred")
    if r.ndim != 1 or r.size != p.size:
        raise ValueError(f"recist and y_pred must be one-dimensional of equal length, got {r.shape} and {p.shape}")
    bad = ~np.isin(r, RECIST_CATEGORIES)
    if bad.any():
        raise ValueError(f"recist must be one of {RECIST_CATEGORIES}; position {int(np.flatnonzero(bad)[0])} is {r[bad][0]!r}")
    predicted = np.where(p == 1, positive_class, negative_class)
    table = pd.crosstab(pd.Categorical(r, categories=RECIST_CATEGORIES),
                        pd.Categorical(predicted, categories=[negative_class, positive_class]), dropna=False)
    table.index.name, table.columns.name = "recist", "predicted"
    table.index = pd.Index(list(table.index.astype(str)), name="recist")
    table.columns = pd.Index(list(table.columns.astype(str)), name="predicted")
    return table.astype(np.int64)


def aggregate_over_seeds(
    long_table: pd.DataFrame,
    *,
    by: Sequence[str] = ("arm", "metric"),
    value: str = "value",
) -> pd.DataFrame:
    """Mean, standard deviation, minimum and maximum over seeds.

    Parameters
    ----------
    long_table : DataFrame
        One row per (arm, metric, seed) with the columns in ``by`` and ``value``.
    by : sequence of str, default ("arm", "metric")
        Grouping columns.
    value : str, default "value"
        Numeric column to summarise.

    Returns
    -------
    summary : DataFrame
        ``*by, n, mean, std, min, max``; ``std`` is the sample standard
        deviation (ddof = 1), ``nan`` for a single seed.

    Examples
    --------
    >>> long = pd.DataFrame({"arm": ["pd", "pd"], "metric": ["auc", "auc"], "seed": [0, 1], "value": [0.8, 0.9]})
    >>> aggregate_over_seeds(long).round(4)  # doctest: +NORMALIZE_WHITESPACE
      arm metric  n  mean    std  min  max
    0  pd    auc  2  0.85  0.0707  0.8  0.9
    """
    by = list(by)
    missing = [c for c in [*by, value] if c not in long_table.columns]
    if missing:
        raise ValueError(f"long table lacks column(s) {missing}")
    values = pd.to_numeric(long_table[value], errors="coerce")
    if values.isna().any():
        bad = long_table[values.isna()].iloc[0]
        raise ValueError(f"non-numeric or missing {value!r} in row {dict(bad)}")
    frame = long_table[by].assign(**{value: values})
    return (
        frame.groupby(by, sort=True)[value]
        .agg(n="size", mean="mean", std="std", min="min", max="max")
        .reset_index()
    )
