"""A verdict the data can carry: paired seeds, the paper's design under simulation, a claims scorecard.

Three groups of functions, all on numbers the study has already produced
(patient scores, AUCs per arm and seed); nothing here trains or imports torch
(arm names are checked against :data:`pdlib.arms.ARMS`).

Paired seeds
    :func:`seed_summary` (mean and spread of a metric over training seeds per
    arm) and :func:`paired_seed_differences` / :func:`paired_seed_summary`
    (per compared pair, the per-seed paired difference, its mean with a
    t-interval, how many seeds agree in sign and an exact sign test). Every
    arm must be trained with the same seeds for the differences to be paired.
    :func:`auc_contrast` gives DeLong's interval of a weighted sum of AUCs
    measured on the same patients (an arm's mean AUC over its seeds, or the
    mean paired difference of two arms over seeds): the patients' sampling
    error, where the paired t-interval gives the training runs'.
The paper's design under simulation
    :func:`simulate_design` draws many test sets of the paper's size (14 + 14,
    stratified by label) from a large external set scored by two arms and
    reports how often the design ranks the arms as the paper did, how often a
    paired DeLong test calls the difference, and the optimism of choosing the
    threshold by Youden's index on the test set itself. :func:`power_sample_size`
    gives the test-set size per class with 80% power for the difference seen on
    the external set, from DeLong's variance components (closed form) or by
    simulation over a grid of sizes.
The claims scorecard
    ``pdlib/data/claims.yaml`` lists every comparative or performance claim of
    Han et al. 2025 in our own words with the paper's evidence and the arms of
    :data:`pdlib.arms.ARMS` it concerns; :func:`load_claims` reads and
    checks it, :func:`claim_estimates`, :func:`reader_claim_estimates` and
    :func:`seed_claim_estimates` turn scores into estimates with intervals
    (:func:`time_ratio_estimates` the training-time claims, from the members'
    recorded times over seeds), and :func:`scorecard` applies the
    rule fixed in advance (see there) to give each claim a verdict.

Like :mod:`pdlib.stats`, public functions validate their inputs once; a
degenerate input with a well-defined shape gives
:class:`pdlib.stats.DegenerateInputWarning` and ``nan``; malformed input
raises ``ValueError`` naming what is wrong (the arm, seed, claim or file).
AUCs, DeLong tests and Youden thresholds are those of :mod:`pdlib.stats`.

References
----------
DeLong E.R., DeLong D.M., Clarke-Pearson D.L. (1988). Comparing the areas
under two or more correlated receiver operating characteristic curves: a
nonparametric approach. Biometrics 44(3):837-845.

Obuchowski N.A. (1998). Sample size calculations in studies of test accuracy.
Statistical Methods in Medical Research 7(4):371-392.

Obuchowski N.A., McClish D.K. (1997). Sample size determination for
diagnostic accuracy studies involving binormal ROC curve indices. Statistics
in Medicine 16(13):1529-1542.

Youden W.J. (1950). Index for rating diagnostic tests. Cancer 3(1):32-35.

Steyerberg E.W. et al. (2001). Internal validation of predictive models:
efficiency of some procedures for logistic regression analysis. Journal of
Clinical Epidemiology 54(8):774-781 (optimism of apparent performance).

Han S. et al. (2025). Deep learning progressive distill for predicting
clinical response to conversion therapy from preoperative CT images of
advanced gastric cancer patients. Scientific Reports.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

from pdlib import paths, stats
from pdlib.arms import ARMS
from pdlib.stats import DEFAULT_ALPHA, DegenerateInputWarning

__all__ = [
    "CLAIMS_FILE",
    "COMPARISONS",
    "COMPARATORS",
    "METRICS",
    "NON_INFERIORITY_MARGIN",
    "VALUE_PRECISION",
    "VERDICTS",
    "Claim",
    "DesignSimulation",
    "PowerResult",
    "seed_summary",
    "paired_seed_differences",
    "paired_seed_summary",
    "AUCContrast",
    "auc_contrast",
    "simulate_design",
    "power_sample_size",
    "load_claims",
    "check_claim_arms",
    "claim_estimates",
    "reader_claim_estimates",
    "seed_claim_estimates",
    "time_ratio_estimates",
    "scorecard",
]

#: The claims of Han et al. 2025 as data (schema in the file's header).
CLAIMS_FILE = paths.PACKAGE_DATA / "claims.yaml"

#: Comparison types of a claim (see :func:`scorecard` for the rule of each).
COMPARISONS = ("superior", "non_inferior", "value", "at_most")

#: Metrics a claim can be about. ``train_time_ratio`` is the training time of
#: the first arm divided by that of the second.
METRICS = ("auc", "accuracy", "sensitivity", "specificity", "train_time_ratio")

#: Comparators that are not arms: the three readers of Table 3 and their mean.
COMPARATORS = ("clinicians_mean", "C3", "C20", "C40")

#: Margin of every ``non_inferior`` claim unless the claim sets its own:
#: "at least as good" means no worse than this (difference first - second).
#: Fixed before any estimate was seen; 0.05 AUC or 5 accuracy points is the
#: smallest difference the paper itself treats as more than marginal (it
#: calls +0.03 to +0.04 AUC "marginal", Results, Performance of PD).
NON_INFERIORITY_MARGIN = {"auc": 0.05, "accuracy": 0.05, "sensitivity": 0.05, "specificity": 0.05}

#: A ``value`` claim is decided only when the interval's half-width is at
#: most this (an AUC known to +-0.05, the precision the issue asks of the
#: external set is +-0.03); wider intervals are "not decidable".
VALUE_PRECISION = {"auc": 0.05, "accuracy": 0.05, "sensitivity": 0.05, "specificity": 0.05, "train_time_ratio": 0.05}

#: Verdicts of :func:`scorecard`, in the order of the rule.
VERDICTS = ("supported", "contradicted", "not decidable", "not estimated")

_ID = re.compile(r"^[a-z][a-z0-9_]*$")


# --------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------


def _check_alpha(alpha: float) -> float:
    return stats._check_alpha(alpha)


def _plain(value):
    """A numpy scalar as the Python value it holds (for messages)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_long_table(long_table, *, arm: str, seed: str, value: str) -> pd.DataFrame:
    if not isinstance(long_table, pd.DataFrame):
        raise TypeError(f"the seed table must be a pandas DataFrame, got {type(long_table).__name__}")
    missing = [c for c in (arm, seed, value) if c not in long_table.columns]
    if missing:
        raise ValueError(f"the seed table lacks column(s) {missing}; expected {[arm, seed, value]}")
    table = long_table[[arm, seed, value]].copy()
    table[arm] = table[arm].astype(str)
    numbers = pd.to_numeric(table[value], errors="coerce")
    bad = ~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = table[bad].iloc[0]
        raise ValueError(f"arm {row[arm]!r}, seed {_plain(row[seed])!r}: {value!r} must be a finite number, "
                         f"got {_plain(row[value])!r}")
    table[value] = numbers.astype(float)
    dup = table.duplicated([arm, seed])
    if dup.any():
        row = table[dup].iloc[0]
        raise ValueError(f"arm {row[arm]!r}, seed {_plain(row[seed])!r} appears more than once in the seed table")
    return table


# --------------------------------------------------------------------------
# paired seeds
# --------------------------------------------------------------------------


def seed_summary(long_table: pd.DataFrame, *, arm: str = "arm", seed: str = "seed", value: str = "auc") -> pd.DataFrame:
    """Mean and spread of a metric over training seeds, per arm.

    Parameters
    ----------
    long_table : DataFrame
        One row per (arm, seed) with the columns ``arm``, ``seed`` and
        ``value`` (for example the external-set AUC of each trained arm).
    arm, seed, value : str
        Column names.

    Returns
    -------
    summary : DataFrame
        ``arm, n, mean, std, min, max`` (:func:`pdlib.stats.aggregate_over_seeds`;
        ``std`` has ddof = 1 and is ``nan`` for one seed).

    Raises
    ------
    ValueError
        A missing column, a non-finite value or an (arm, seed) listed twice,
        naming the arm and seed.

    Examples
    --------
    >>> long = pd.DataFrame({"arm": ["pd_b7"] * 3, "seed": [0, 1, 2], "auc": [0.7, 0.8, 0.9]})
    >>> seed_summary(long).round(3).to_dict("records")
    [{'arm': 'pd_b7', 'n': 3, 'mean': 0.8, 'std': 0.1, 'min': 0.7, 'max': 0.9}]
    """
    table = _check_long_table(long_table, arm=arm, seed=seed, value=value)
    return stats.aggregate_over_seeds(table, by=[arm], value=value)


def _check_pairs(pairs, known: set[str]) -> list[tuple[str, str]]:
    out = []
    for pair in pairs:
        if isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f"each compared pair must be two arm names, got {pair!r}")
        a, b = str(pair[0]), str(pair[1])
        if a == b:
            raise ValueError(f"pair ({a!r}, {b!r}) compares an arm with itself")
        for name in (a, b):
            if name not in known:
                raise ValueError(f"arm {name!r} of pair ({a!r}, {b!r}) is not in the seed table (arms: {sorted(known)})")
        out.append((a, b))
    return out


def paired_seed_differences(
    long_table: pd.DataFrame,
    pairs: Iterable[Sequence[str]],
    *,
    arm: str = "arm",
    seed: str = "seed",
    value: str = "auc",
) -> pd.DataFrame:
    """Per-seed paired differences ``value(a) - value(b)`` for each compared pair.

    Seeds pair the arms: seed ``k`` of arm ``a`` is compared with seed ``k``
    of arm ``b`` only. Seeds that one arm of a pair lacks are left out of
    that pair with a :class:`DegenerateInputWarning` naming them (the
    verdict design trains every arm with the same seeds).

    Parameters
    ----------
    long_table : DataFrame
        One row per (arm, seed) with columns ``arm``, ``seed``, ``value``.
    pairs : iterable of (arm_a, arm_b)
        Compared pairs; the difference is ``a - b``.
    arm, seed, value : str
        Column names.

    Returns
    -------
    differences : DataFrame
        ``arm_a, arm_b, seed, value_a, value_b, difference``, one row per
        pair and common seed, pairs in the given order, seeds ascending.

    Examples
    --------
    >>> long = pd.DataFrame({"arm": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "auc": [0.8, 0.7, 0.75, 0.72]})
    >>> paired_seed_differences(long, [("a", "b")])["difference"].round(2).tolist()
    [0.05, -0.02]
    """
    table = _check_long_table(long_table, arm=arm, seed=seed, value=value)
    checked = _check_pairs(pairs, set(table[arm]))
    by_arm = {name: group.set_index(seed)[value] for name, group in table.groupby(arm, sort=False)}
    rows = []
    for a, b in checked:
        va, vb = by_arm[a], by_arm[b]
        common = sorted(set(va.index) & set(vb.index))
        lonely = [_plain(k) for k in sorted(set(va.index) ^ set(vb.index))]
        if lonely:
            warnings.warn(
                f"pair ({a!r}, {b!r}): seed(s) {lonely} are trained for one arm only and are left out of the paired differences",
                DegenerateInputWarning,
                stacklevel=2,
            )
        for k in common:
            rows.append({"arm_a": a, "arm_b": b, "seed": _plain(k), "value_a": float(va[k]), "value_b": float(vb[k]),
                         "difference": float(va[k] - vb[k])})
    return pd.DataFrame(rows, columns=["arm_a", "arm_b", "seed", "value_a", "value_b", "difference"])


def paired_seed_summary(
    long_table: pd.DataFrame,
    pairs: Iterable[Sequence[str]],
    *,
    arm: str = "arm",
    seed: str = "seed",
    value: str = "auc",
    alpha: float = DEFAULT_ALPHA,
) -> pd.DataFrame:
    """Mean paired difference over seeds, its t-interval and sign agreement.

    For the per-seed differences ``d_k = value_k(a) - value_k(b)``,
    ``k = 1..n`` (:func:`paired_seed_differences`):

    * ``mean = sum(d_k) / n`` and ``std`` (ddof = 1);
    * ``ci_low, ci_high = mean -+ t_{1-alpha/2, n-1} * std / sqrt(n)`` (the
      paired t-interval; it describes the variation between training runs on
      the patients the values were measured on, not the sampling of patients);
    * ``n_a_higher, n_b_higher, n_tied``: seeds with ``d_k > 0``, ``< 0``,
      ``= 0``; ``n_agree`` the larger of the first two, i.e. how many seeds
      agree with the majority sign (ties agree with neither);
    * ``sign_test_p``: two-sided exact binomial test of ``n_a_higher`` among
      the untied seeds against 1/2. With 5 seeds its smallest value is 0.0625.

    Parameters
    ----------
    long_table, pairs, arm, seed, value
        As for :func:`paired_seed_differences`.
    alpha : float, default 0.05
        Two-sided level of the t-interval.

    Returns
    -------
    summary : DataFrame
        ``arm_a, arm_b, n, mean, std, min, max, ci_low, ci_high, n_a_higher,
        n_b_higher, n_tied, n_agree, sign_test_p``, one row per pair. With
        fewer than two common seeds ``std`` and the interval are ``nan``; a
        pair without a common seed is all ``nan`` (a
        :class:`DegenerateInputWarning` either way).

    Examples
    --------
    >>> long = pd.DataFrame({"arm": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2,
    ...                      "auc": [0.8, 0.7, 0.9, 0.75, 0.72, 0.8]})
    >>> row = paired_seed_summary(long, [("a", "b")]).iloc[0]
    >>> round(float(row["mean"]), 4), int(row["n_a_higher"]), int(row["n_agree"])
    (0.0433, 2, 2)
    """
    alpha = _check_alpha(alpha)
    pairs = list(pairs)
    diffs = paired_seed_differences(long_table, pairs, arm=arm, seed=seed, value=value)
    rows = []
    for a, b in _check_pairs(pairs, set(long_table[arm].astype(str))):
        d = diffs.loc[(diffs["arm_a"] == a) & (diffs["arm_b"] == b), "difference"].to_numpy()
        rows.append({"arm_a": a, "arm_b": b, **_paired_stats(d, alpha, f"pair ({a!r}, {b!r})")})
    return pd.DataFrame(rows)


def _paired_stats(d: np.ndarray, alpha: float, what: str) -> dict[str, float]:
    n = int(d.size)
    nan = float("nan")
    if n == 0:
        warnings.warn(f"{what} has no common seed; returning nan", DegenerateInputWarning, stacklevel=3)
        return {"n": 0, "mean": nan, "std": nan, "min": nan, "max": nan, "ci_low": nan, "ci_high": nan,
                "n_a_higher": 0, "n_b_higher": 0, "n_tied": 0, "n_agree": 0, "sign_test_p": nan}
    mean = float(d.mean())
    if n < 2:
        warnings.warn(f"{what}: one seed gives no spread or interval; returning nan for them",
                      DegenerateInputWarning, stacklevel=3)
        std = low = high = nan
    else:
        std = float(d.std(ddof=1))
        half = float(_scipy_stats.t.ppf(1.0 - alpha / 2.0, n - 1)) * std / math.sqrt(n)
        low, high = mean - half, mean + half
    up, down = int((d > 0).sum()), int((d < 0).sum())
    untied = up + down
    p = float(_scipy_stats.binomtest(up, untied, 0.5).pvalue) if untied else nan
    return {"n": n, "mean": mean, "std": std, "min": float(d.min()), "max": float(d.max()), "ci_low": low,
            "ci_high": high, "n_a_higher": up, "n_b_higher": down, "n_tied": n - untied,
            "n_agree": max(up, down), "sign_test_p": p}


@dataclass(frozen=True)
class AUCContrast:
    """A weighted sum of correlated AUCs with its DeLong variance (:func:`auc_contrast`)."""

    estimate: float
    variance: float
    ci_low: float
    ci_high: float
    aucs: tuple[float, ...]
    weights: tuple[float, ...]


def auc_contrast(y_true, scores, weights, *, alpha: float = DEFAULT_ALPHA) -> AUCContrast:
    """DeLong's interval of ``sum_j w_j AUC_j`` for k score vectors on the same patients.

    With the AUCs ``A_j`` of the k score vectors and their DeLong covariance
    matrix ``S`` (DeLong et al. 1988, midranks of Sun & Xu 2014, as in
    :func:`pdlib.stats.delong_test`), the contrast ``c = w' A`` has variance
    ``w' S w`` and the interval ``c -+ z_{1-alpha/2} sqrt(w' S w)``. Weights
    ``1/k`` give the mean AUC of an arm over its k training seeds (its
    interval is clipped to [0, 1], as :func:`pdlib.stats.delong_auc` clips);
    ``+1/k`` on one arm's seeds and ``-1/k`` on another's give the mean
    paired difference over seeds (not clipped). The interval describes the
    sampling of patients for these fixed trained models, not the variation
    between training runs (:func:`paired_seed_summary` gives that one).

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        0/1 labels.
    scores : array-like of shape (k, n_patients), mapping name -> scores, or DataFrame with one column per score
        The k score vectors, same patients in the same order.
    weights : array-like of shape (k,)
        Finite weights, in the order of ``scores``.
    alpha : float, default 0.05
        Two-sided level.

    Returns
    -------
    result : AUCContrast
        ``estimate, variance, ci_low, ci_high`` and the k ``aucs``. With one
        class only everything is ``nan``; with a class of one patient the
        variance and interval are ``nan`` (a :class:`DegenerateInputWarning`
        either way).

    Examples
    --------
    >>> y = [0, 0, 0, 1, 1, 1]
    >>> a, b = [0.1, 0.5, 0.3, 0.4, 0.8, 0.9], [0.2, 0.1, 0.6, 0.5, 0.4, 0.3]
    >>> r = auc_contrast(y, [a, b], [1, -1])
    >>> round(r.estimate, 4), round(r.variance, 6) == round(stats.delong_test(y, a, b).variance, 6)
    (0.2222, True)
    """
    alpha = _check_alpha(alpha)
    y = stats._as_labels(y_true)
    if isinstance(scores, (pd.DataFrame, Mapping)):
        scores = list(_scores_by_arm(scores, y.size).values())
    matrix = np.atleast_2d(np.asarray(scores, dtype=float))
    if matrix.ndim != 2 or matrix.shape[1] != y.size:
        raise ValueError(f"scores must have shape (k, {y.size}) for {y.size} patients, got {matrix.shape}")
    for j, row in enumerate(matrix):
        stats._as_scores(row, n=y.size, name=f"score vector {j}")
    w = np.asarray(weights, dtype=float).ravel()
    if w.size != matrix.shape[0] or not np.all(np.isfinite(w)):
        raise ValueError(f"weights must be {matrix.shape[0]} finite numbers (one per score vector), got {list(w)}")
    nan = float("nan")
    if not stats._both_classes(y, "the AUC contrast"):
        return AUCContrast(nan, nan, nan, nan, tuple([nan] * w.size), tuple(w.tolist()))
    auc, cov = stats._auc_and_covariance(y, matrix)
    estimate = float(w @ auc)
    variance = float(w @ cov @ w)
    if not np.isfinite(variance):
        warnings.warn(f"the DeLong variance needs at least two patients per class (got {int(y.sum())} positive, "
                      f"{int(y.size - y.sum())} negative); returning nan for the interval",
                      DegenerateInputWarning, stacklevel=2)
        low = high = nan
    else:
        half = float(_scipy_stats.norm.ppf(1.0 - alpha / 2.0)) * math.sqrt(max(variance, 0.0))
        low, high = estimate - half, estimate + half
        if np.all(w >= 0) and math.isclose(float(w.sum()), 1.0):
            low, high = max(0.0, low), min(1.0, high)
    return AUCContrast(estimate, variance, float(low), float(high), tuple(float(a) for a in auc), tuple(w.tolist()))


# --------------------------------------------------------------------------
# the paper's design under simulation
# --------------------------------------------------------------------------


def _check_two_arms(y_true, score_a, score_b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = stats._as_labels(y_true)
    a = stats._as_scores(score_a, n=y.size, name="score_a")
    b = stats._as_scores(score_b, n=y.size, name="score_b")
    return y, a, b


def _check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return int(value)


def _check_threshold(value, name: str) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite score, got {value!r}")
    return value


@dataclass(frozen=True)
class DesignSimulation:
    """Results of :func:`simulate_design` (``a`` is the arm the paper ranked higher)."""

    n_per_class: int
    n_simulations: int
    alpha: float
    auc_a: float
    auc_b: float
    difference: float
    p_ranked_as_paper: float
    p_tied: float
    p_significant: float
    p_significant_as_paper: float
    n_undefined_tests: int
    optimism: pd.DataFrame = field(repr=False)
    draws: pd.DataFrame = field(repr=False)

    def summary(self) -> dict[str, float]:
        """The scalar results as one flat record (for a results table)."""
        out = {k: getattr(self, k) for k in (
            "n_per_class", "n_simulations", "alpha", "auc_a", "auc_b", "difference", "p_ranked_as_paper",
            "p_tied", "p_significant", "p_significant_as_paper", "n_undefined_tests")}
        for _, row in self.optimism.iterrows():
            out[f"optimism_mean_{row['arm']}"] = row["mean"]
        return out


def _draw(rng: np.random.Generator, pos: np.ndarray, neg: np.ndarray, k: int, replace: bool) -> np.ndarray:
    return np.concatenate([rng.choice(pos, k, replace=replace), rng.choice(neg, k, replace=replace)])


def _accuracy(y: np.ndarray, s: np.ndarray, threshold: float) -> float:
    return float(((s >= threshold).astype(np.int64) == y).mean())


def simulate_design(
    y_true,
    score_a,
    score_b,
    *,
    n_per_class: int = 14,
    n_simulations: int = 2000,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    threshold_a: float | None = None,
    threshold_b: float | None = None,
    replace: bool = False,
    arms: tuple[str, str] = ("a", "b"),
) -> DesignSimulation:
    """The paper's test design (14 + 14 patients) replayed on a large external set.

    Each of ``n_simulations`` draws takes ``n_per_class`` positives and
    ``n_per_class`` negatives from the external set (stratified by label,
    without replacement unless ``replace``; ``numpy.random.default_rng(seed)``)
    and records, for arm ``a`` (the arm the paper ranked higher) and arm ``b``:

    * the empirical AUCs and whether ``AUC_a > AUC_b`` (the design "ranks the
      pair as the paper did") or ``AUC_a = AUC_b``;
    * the paired DeLong test (:func:`pdlib.stats.delong_test`): significant
      when ``p < alpha``; "significant as the paper" when also
      ``AUC_a > AUC_b``. A draw where the test is undefined (zero variance
      of the difference) counts as not significant and is counted in
      ``n_undefined_tests``;
    * for an arm with a fixed threshold ``t`` (chosen without the test
      patients, e.g. Youden's threshold on out-of-fold training scores):
      ``optimism = acc(score >= t_Y) - acc(score >= t)``, where ``t_Y`` is
      Youden's threshold picked on the draw itself
      (:func:`pdlib.stats.youden_threshold`, the rule of Han et al. 2025) and
      ``acc`` the accuracy on the draw. On a 14 + 14 draw accuracy equals
      balanced accuracy, so the fixed rule's expected accuracy is
      ``(sensitivity + specificity) / 2`` of the fixed threshold on the whole
      external set (reported as ``external_accuracy``).

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        0/1 labels of the external set.
    score_a, score_b : array-like of shape (n_patients,)
        Scores of the two arms for the same patients in the same order.
    n_per_class : int, default 14
        Patients per class in each simulated test set (the paper: 14 + 14).
    n_simulations : int, default 2000
        Number of simulated test sets.
    seed : int, default 0
        Seed of the generator: same seed, same results.
    alpha : float, default 0.05
        Two-sided level of the DeLong test.
    threshold_a, threshold_b : float, optional
        Fixed thresholds; the optimism is reported for each arm that has one.
    replace : bool, default False
        Draw with replacement (treat the external set as the population).
    arms : (str, str), default ("a", "b")
        Names of the two arms in the output tables.

    Returns
    -------
    result : DesignSimulation
        ``auc_a, auc_b, difference`` on the whole external set;
        ``p_ranked_as_paper, p_tied, p_significant, p_significant_as_paper``
        as fractions of the draws; ``optimism`` (one row per arm with a fixed
        threshold: ``arm, threshold, external_accuracy, apparent_mean,
        fixed_mean, mean, std, q025, q25, q50, q75, q975, p_positive``) and
        ``draws`` (one row per draw: ``auc_a, auc_b, p_value`` and, per arm
        with a threshold, ``apparent_<arm>, fixed_<arm>, optimism_<arm>``).

    Raises
    ------
    ValueError
        Malformed scores or labels, or fewer patients of a class than
        ``n_per_class`` when drawing without replacement.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> y = np.repeat([0, 1], 200)
    >>> a = y * 2.0 + rng.normal(size=400)
    >>> b = rng.normal(size=400)
    >>> r = simulate_design(y, a, b, n_simulations=200)
    >>> r.p_ranked_as_paper > 0.99, r.p_significant > 0.9
    (True, True)
    """
    y, a, b = _check_two_arms(y_true, score_a, score_b)
    alpha = _check_alpha(alpha)
    k = _check_positive_int(n_per_class, "n_per_class", minimum=2)
    n_sims = _check_positive_int(n_simulations, "n_simulations")
    if isinstance(arms, str) or len(arms) != 2 or arms[0] == arms[1]:
        raise ValueError(f"arms must be two different names, got {arms!r}")
    thresholds = {arms[0]: _check_threshold(threshold_a, "threshold_a"),
                  arms[1]: _check_threshold(threshold_b, "threshold_b")}
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if not replace and min(pos.size, neg.size) < k:
        raise ValueError(
            f"the external set has {pos.size} positive and {neg.size} negative patients; "
            f"cannot draw {k} per class without replacement"
        )
    if pos.size == 0 or neg.size == 0:
        raise ValueError(f"the external set needs both classes, got {pos.size} positive and {neg.size} negative")
    full = stats.delong_test(y, a, b)
    rng = np.random.default_rng(seed)
    scores = {arms[0]: a, arms[1]: b}
    columns: dict[str, np.ndarray] = {"auc_a": np.empty(n_sims), "auc_b": np.empty(n_sims), "p_value": np.empty(n_sims)}
    with_threshold = [name for name, t in thresholds.items() if t is not None]
    for name in with_threshold:
        for part in ("apparent", "fixed", "optimism"):
            columns[f"{part}_{name}"] = np.empty(n_sims)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateInputWarning)
        for i in range(n_sims):
            idx = _draw(rng, pos, neg, k, replace)
            yd = y[idx]
            test = stats.delong_test(yd, a[idx], b[idx])
            columns["auc_a"][i], columns["auc_b"][i], columns["p_value"][i] = test.auc_a, test.auc_b, test.p_value
            for name in with_threshold:
                sd = scores[name][idx]
                apparent = _accuracy(yd, sd, stats.youden_threshold(yd, sd))
                fixed = _accuracy(yd, sd, thresholds[name])
                columns[f"apparent_{name}"][i], columns[f"fixed_{name}"][i] = apparent, fixed
                columns[f"optimism_{name}"][i] = apparent - fixed
    draws = pd.DataFrame(columns)
    undefined = ~np.isfinite(draws["p_value"].to_numpy())
    significant = np.where(undefined, False, draws["p_value"].to_numpy() < alpha)
    ahead = draws["auc_a"].to_numpy() > draws["auc_b"].to_numpy()
    optimism_rows = []
    for name in with_threshold:
        o = draws[f"optimism_{name}"].to_numpy()
        pred = (scores[name] >= thresholds[name]).astype(np.int64)
        balanced = 0.5 * ((pred[y == 1] == 1).mean() + (pred[y == 0] == 0).mean())
        q = np.quantile(o, [0.025, 0.25, 0.5, 0.75, 0.975])
        optimism_rows.append({
            "arm": name, "threshold": thresholds[name], "external_accuracy": float(balanced),
            "apparent_mean": float(draws[f"apparent_{name}"].mean()), "fixed_mean": float(draws[f"fixed_{name}"].mean()),
            "mean": float(o.mean()), "std": float(o.std(ddof=1)) if n_sims > 1 else float("nan"),
            "q025": q[0], "q25": q[1], "q50": q[2], "q75": q[3], "q975": q[4], "p_positive": float((o > 0).mean()),
        })
    return DesignSimulation(
        n_per_class=k,
        n_simulations=n_sims,
        alpha=alpha,
        auc_a=full.auc_a,
        auc_b=full.auc_b,
        difference=full.difference,
        p_ranked_as_paper=float(ahead.mean()),
        p_tied=float((draws["auc_a"] == draws["auc_b"]).mean()),
        p_significant=float(significant.mean()),
        p_significant_as_paper=float((significant & ahead).mean()),
        n_undefined_tests=int(undefined.sum()),
        optimism=pd.DataFrame(optimism_rows, columns=[
            "arm", "threshold", "external_accuracy", "apparent_mean", "fixed_mean", "mean", "std",
            "q025", "q25", "q50", "q75", "q975", "p_positive"]),
        draws=draws,
    )


@dataclass(frozen=True)
class PowerResult:
    """Test-set size per class for a target power (:func:`power_sample_size`)."""

    method: str
    difference: float
    n_per_class: float
    power: float
    alpha: float
    variance_unit: float
    curve: pd.DataFrame = field(repr=False)


def _difference_variance_components(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(S10, S01)``: DeLong's variance components of the paired AUC difference.

    DeLong et al. (1988): with structural components ``V10_i`` (for each
    positive, the fraction of negatives it outscores, ties one half) and
    ``V01_j`` (for each negative, the fraction of positives that outscore
    it), ``Var(AUC_a - AUC_b) = S10 / m + S01 / n`` where ``S10`` is the
    sample variance of ``V10_a - V10_b`` over the ``m`` positives and
    ``S01`` that of ``V01_a - V01_b`` over the ``n`` negatives, so ``m = n = k``
    gives ``(S10 + S01) / k``. :mod:`pdlib.stats` keeps the components
    internal; they are computed here from midranks in the same way (Sun & Xu
    2014), and the test suite checks that ``S10 / m + S01 / n`` equals
    :func:`pdlib.stats.delong_test`'s variance.
    """
    m, n = int(y.sum()), int(y.size - y.sum())
    v10s, v01s = [], []
    for s in (a, b):
        pos, neg = s[y == 1], s[y == 0]
        t_x = _scipy_stats.rankdata(pos)
        t_y = _scipy_stats.rankdata(neg)
        t_z = _scipy_stats.rankdata(np.concatenate([pos, neg]))
        v10s.append((t_z[:m] - t_x) / n)
        v01s.append(1.0 - (t_z[m:] - t_y) / m)
    return float(np.var(v10s[0] - v10s[1], ddof=1)), float(np.var(v01s[0] - v01s[1], ddof=1))


def power_sample_size(
    y_true,
    score_a,
    score_b,
    *,
    power: float = 0.8,
    alpha: float = DEFAULT_ALPHA,
    method: str = "delong",
    grid: Sequence[int] | None = None,
    n_simulations: int = 500,
    seed: int = 0,
) -> PowerResult:
    """Patients per class a paired DeLong test needs to detect the external difference.

    The difference to detect is the one measured on the external set,
    ``delta = AUC_a - AUC_b``; a test set has ``k`` patients of each class
    and the test is two-sided at ``alpha``, counted as a success when it is
    significant in the direction of ``delta``.

    ``method="delong"`` (closed form, Obuchowski 1998, section 3, with
    DeLong's variance components instead of a binormal model)
        With ``V = S10 + S01`` the DeLong variance of the paired difference
        at one patient per class (estimated on the external set),
        ``Var_k = V / k`` and ``power(k) = Phi(|delta| sqrt(k / V) - z_{1-alpha/2})``
        (+ the negligible opposite tail), so
        ``k = ceil((z_{1-alpha/2} + z_{power})^2 V / delta^2)``. The variance
        under the null is taken equal to that under the alternative, as in
        Obuchowski & McClish (1997).
    ``method="simulation"``
        For each ``k`` of ``grid`` draw ``n_simulations`` test sets of ``k``
        + ``k`` patients with replacement from the external set (treated as
        the population) and count significant DeLong tests in the direction
        of ``delta``; ``k`` is the smallest grid size reaching ``power``.

    Parameters
    ----------
    y_true : array-like of shape (n_patients,)
        0/1 labels of the external set.
    score_a, score_b : array-like of shape (n_patients,)
        Scores of two arms for the same patients.
    power : float, default 0.8
        Target power, in (alpha, 1).
    alpha : float, default 0.05
        Two-sided level.
    method : {"delong", "simulation"}
    grid : sequence of int, optional
        Sizes per class for the power curve (default: 14, 20, 30, 50, 75,
        100, 150, 200, 300, 500, 750, 1000, 1500, 2000).
    n_simulations : int, default 500
        Draws per grid size (``method="simulation"``).
    seed : int, default 0
        Seed of the generator (``method="simulation"``).

    Returns
    -------
    result : PowerResult
        ``method, difference, n_per_class, power, alpha, variance_unit`` and
        ``curve`` (``n_per_class, power`` over the grid). ``n_per_class`` is
        ``inf`` with a :class:`DegenerateInputWarning` when ``delta = 0``, and
        ``nan`` (with a warning) when the simulated grid never reaches the
        target power.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 300)
    >>> a, b = y * 1.0 + rng.normal(size=600), y * 0.5 + rng.normal(size=600)
    >>> r = power_sample_size(y, a, b)
    >>> 30 < r.n_per_class < 300
    True
    """
    y, a, b = _check_two_arms(y_true, score_a, score_b)
    alpha = _check_alpha(alpha)
    power = float(power)
    if not alpha < power < 1.0:
        raise ValueError(f"power must lie strictly between alpha ({alpha}) and 1, got {power}")
    if method not in ("delong", "simulation"):
        raise ValueError(f"method must be 'delong' or 'simulation', got {method!r}")
    grid_sizes = [14, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000] if grid is None else grid
    grid_sizes = sorted({_check_positive_int(g, "a grid size", minimum=2) for g in grid_sizes})
    n_sims = _check_positive_int(n_simulations, "n_simulations")
    n_pos, n_neg = int(y.sum()), int(y.size - y.sum())
    if min(n_pos, n_neg) < 2:
        raise ValueError(f"the external set needs at least two patients per class, got {n_pos} positive and {n_neg} negative")
    delta = stats.roc_auc(y, a) - stats.roc_auc(y, b)
    unit = sum(_difference_variance_components(y, a, b))
    z_alpha = float(_scipy_stats.norm.ppf(1.0 - alpha / 2.0))
    if method == "delong":
        if delta == 0.0 or unit <= 0.0:
            warnings.warn("the two arms have equal AUCs (or identical scores) on the external set: no test-set size "
                          "gives power above alpha; returning inf", DegenerateInputWarning, stacklevel=2)
            curve = pd.DataFrame({"n_per_class": grid_sizes, "power": alpha / 2.0})
            return PowerResult(method, float(delta), float("inf"), power, alpha, unit, curve)
        z_power = float(_scipy_stats.norm.ppf(power))
        k = math.ceil((z_alpha + z_power) ** 2 * unit / delta**2)
        sizes = np.asarray(grid_sizes, dtype=float)
        shift = abs(delta) * np.sqrt(sizes / unit)
        curve_power = _scipy_stats.norm.cdf(shift - z_alpha)
        return PowerResult(method, float(delta), float(k), power, alpha, unit,
                           pd.DataFrame({"n_per_class": grid_sizes, "power": curve_power}))
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    sign = np.sign(delta)
    curve_power = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateInputWarning)
        for size in grid_sizes:
            hits = 0
            for _ in range(n_sims):
                idx = _draw(rng, pos, neg, size, True)
                test = stats.delong_test(y[idx], a[idx], b[idx])
                if np.isfinite(test.p_value) and test.p_value < alpha and np.sign(test.difference) == sign != 0:
                    hits += 1
            curve_power.append(hits / n_sims)
    curve = pd.DataFrame({"n_per_class": grid_sizes, "power": curve_power})
    reached = curve.loc[curve["power"] >= power, "n_per_class"]
    if reached.empty:
        warnings.warn(f"no grid size up to {grid_sizes[-1]} per class reached power {power}; returning nan",
                      DegenerateInputWarning, stacklevel=2)
        k = float("nan")
    else:
        k = float(reached.iloc[0])
    return PowerResult(method, float(delta), k, power, alpha, unit, curve)


# --------------------------------------------------------------------------
# the claims
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, as listed in ``pdlib/data/claims.yaml``.

    ``arms`` holds one or two arm names of :data:`pdlib.arms.ARMS`; a
    comparison with the readers of Table 3 names the one arm and sets
    ``versus`` to one of :data:`COMPARATORS`. For ``superior`` and
    ``non_inferior`` the quantity is ``metric(first) - metric(second)``; for
    ``value`` it is ``metric(arm)``; for ``at_most`` it is ``metric`` itself
    (``train_time_ratio`` is first / second).
    """

    id: str
    statement: str
    where: str
    evidence: str
    comparison: str
    metric: str
    arms: tuple[str, ...]
    versus: str | None = None
    population: str = "test"
    paper_a: float | None = None
    paper_b: float | None = None
    margin: float | None = None
    bound: float | None = None

    @property
    def paper_value(self) -> float:
        """The paper's number for the claimed quantity (``nan`` where it printed none)."""
        nan = float("nan")
        if self.comparison == "at_most":
            return float(self.bound)
        if self.comparison == "value":
            return nan if self.paper_a is None else float(self.paper_a)
        if self.paper_a is None or self.paper_b is None:
            return nan
        return float(self.paper_a) - float(self.paper_b)

    @property
    def compared(self) -> str:
        """``"a vs b"`` or the single arm, for tables."""
        second = self.versus if self.versus is not None else (self.arms[1] if len(self.arms) > 1 else None)
        return self.arms[0] if second is None else f"{self.arms[0]} vs {second}"


_CLAIM_KEYS = {"id", "statement", "where", "evidence", "comparison", "metric", "arms", "versus", "population",
               "paper", "margin", "bound"}


def _claim_from_entry(entry, where: str) -> Claim:
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where}: each claim must be a mapping, got {type(entry).__name__}")
    cid = entry.get("id")
    label = f"{where}, claim {cid!r}"
    if not isinstance(cid, str) or not _ID.match(cid):
        raise ValueError(f"{label}: id must be lower_snake_case")
    unknown = set(entry) - _CLAIM_KEYS
    if unknown:
        raise ValueError(f"{label}: unknown key(s) {sorted(unknown)}")
    for key in ("statement", "where", "evidence", "comparison", "metric", "arms"):
        if key not in entry or entry[key] in (None, ""):
            raise ValueError(f"{label}: lacks {key!r}")
    comparison, metric = entry["comparison"], entry["metric"]
    if comparison not in COMPARISONS:
        raise ValueError(f"{label}: comparison must be one of {COMPARISONS}, got {comparison!r}")
    if metric not in METRICS:
        raise ValueError(f"{label}: metric must be one of {METRICS}, got {metric!r}")
    arms = entry["arms"]
    if isinstance(arms, str) or not isinstance(arms, Sequence) or not all(isinstance(x, str) for x in arms):
        raise ValueError(f"{label}: arms must be a list of arm names")
    arms = tuple(arms)
    versus = entry.get("versus")
    if versus is not None and versus not in COMPARATORS:
        raise ValueError(f"{label}: versus must be one of {COMPARATORS}, got {versus!r}")
    sides = len(arms) + (versus is not None)
    need = {"superior": 2, "non_inferior": 2, "value": 1}.get(comparison)
    if need is not None and sides != need:
        raise ValueError(f"{label}: a {comparison!r} claim compares {need} side(s) (arms plus versus), got {sides}")
    if comparison == "at_most" and (entry.get("bound") is None or len(arms) not in (1, 2)):
        raise ValueError(f"{label}: an 'at_most' claim needs a bound and one or two arms")
    population = entry.get("population", "test")
    if population not in ("test", "train"):
        raise ValueError(f"{label}: population must be 'test' or 'train', got {population!r}")
    paper = entry.get("paper") or {}
    if not isinstance(paper, Mapping) or set(paper) - {"a", "b"}:
        raise ValueError(f"{label}: paper must be a mapping with keys 'a' and/or 'b'")
    numbers = {}
    for key in ("a", "b", "margin", "bound"):
        raw = paper.get(key) if key in ("a", "b") else entry.get(key)
        if raw is None:
            numbers[key] = None
            continue
        try:
            numbers[key] = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{label}: {key!r} must be a number, got {raw!r}") from None
    if comparison == "value" and numbers["a"] is None:
        raise ValueError(f"{label}: a 'value' claim needs the paper's value (paper: {{a: ...}})")
    if numbers["margin"] is not None and numbers["margin"] < 0:
        raise ValueError(f"{label}: margin must be non-negative")
    return Claim(
        id=cid, statement=str(entry["statement"]).strip(), where=str(entry["where"]).strip(),
        evidence=str(entry["evidence"]).strip(), comparison=comparison, metric=metric, arms=arms, versus=versus,
        population=population, paper_a=numbers["a"], paper_b=numbers["b"], margin=numbers["margin"],
        bound=numbers["bound"],
    )


def check_claim_arms(claims: Sequence[Claim], arms: Iterable[str] | None = None) -> list[str]:
    """Problems with the arms the claims name (empty when every arm exists).

    Parameters
    ----------
    claims : sequence of Claim
    arms : iterable of str, optional
        Known arm names; default the keys of :data:`pdlib.arms.ARMS`.

    Returns
    -------
    problems : list of str
        One line per unknown arm, naming the claim.
    """
    if arms is None:
        arms = ARMS
    known = set(arms)
    return [f"claim {c.id!r}: arm {name!r} is not an arm of pdlib.arms.ARMS"
            for c in claims for name in c.arms if name not in known]


def load_claims(path: str | Path | None = None, *, arms: Iterable[str] | None = None) -> list[Claim]:
    """Read and check the claims file (default ``pdlib/data/claims.yaml``).

    Parameters
    ----------
    path : str or Path, optional
        A YAML file with the schema described in the header of
        ``pdlib/data/claims.yaml``.
    arms : iterable of str, optional
        Known arm names (default :data:`pdlib.arms.ARMS`).

    Returns
    -------
    claims : list of Claim
        In the file's order.

    Raises
    ------
    ValueError
        An unreadable file, a malformed entry, a repeated id or an arm that
        does not exist; the message names the file and the claim.
    """
    path = Path(path) if path is not None else CLAIMS_FILE
    document = paths.read_yaml(path, what="claims")
    if not isinstance(document, Mapping) or not isinstance(document.get("claims"), list):
        raise ValueError(f"claims file {path} must hold a mapping with a list under 'claims'")
    claims = [_claim_from_entry(entry, str(path)) for entry in document["claims"]]
    seen: set[str] = set()
    for c in claims:
        if c.id in seen:
            raise ValueError(f"{path}: claim id {c.id!r} appears more than once")
        seen.add(c.id)
    problems = check_claim_arms(claims, arms)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return claims


# --------------------------------------------------------------------------
# estimates for the claims
# --------------------------------------------------------------------------

_ESTIMATE_COLUMNS = ["claim", "source", "estimate", "ci_low", "ci_high"]


def _scores_by_arm(scores, n: int) -> dict[str, np.ndarray]:
    if isinstance(scores, pd.DataFrame):
        scores = {str(c): scores[c].to_numpy() for c in scores.columns}
    if not isinstance(scores, Mapping):
        raise TypeError(f"scores must be a mapping arm -> scores or a DataFrame with one column per arm, got {type(scores).__name__}")
    return {str(arm): stats._as_scores(s, n=n, name=f"scores of arm {arm!r}") for arm, s in scores.items()}


def claim_estimates(
    claims: Sequence[Claim],
    y_true,
    scores,
    *,
    source: str,
    thresholds: Mapping[str, float] | None = None,
    population: str = "test",
    alpha: float = DEFAULT_ALPHA,
) -> pd.DataFrame:
    """Estimates with intervals for the claims one set of patients can speak to.

    For each claim of ``population`` whose arms all have scores:

    * ``auc``, ``superior`` / ``non_inferior`` between two arms: the paired
      difference ``AUC_a - AUC_b`` of :func:`pdlib.stats.delong_test` with
      the interval ``difference -+ z_{1-alpha/2} sqrt(var)``;
    * ``auc``, ``value``: :func:`pdlib.stats.delong_auc` and its interval;
    * ``accuracy`` / ``sensitivity`` / ``specificity``, ``value``: the metric
      at the arm's fixed threshold from ``thresholds`` (skipped without
      one) with its Wilson interval (:func:`pdlib.stats.classification_metrics`).

    Other claims (the readers of Table 3, training times, accuracy
    differences between arms) are left to the caller and appear as "not
    estimated" in :func:`scorecard` unless the caller adds rows for them.

    Parameters
    ----------
    claims : sequence of Claim
    y_true : array-like of shape (n_patients,)
        0/1 labels.
    scores : mapping arm -> array-like, or DataFrame with one column per arm
        Scores of each arm for the same patients in the same order.
    source : str
        Label of the patient set in the scorecard (for example
        ``"test (14+14)"`` or ``"external (n=1000)"``).
    thresholds : mapping arm -> float, optional
        Fixed (out-of-fold) threshold of each arm, for the threshold metrics.
    population : {"test", "train"}, default "test"
        Which claims apply to these patients.
    alpha : float, default 0.05

    Returns
    -------
    estimates : DataFrame
        ``claim, source, estimate, ci_low, ci_high`` (input of :func:`scorecard`).
    """
    alpha = _check_alpha(alpha)
    y = stats._as_labels(y_true)
    by_arm = _scores_by_arm(scores, y.size)
    thresholds = {str(k): _check_threshold(v, f"threshold of arm {k!r}") for k, v in (thresholds or {}).items()}
    z = float(_scipy_stats.norm.ppf(1.0 - alpha / 2.0))
    rows = []
    for c in claims:
        if c.population != population or c.versus is not None or not all(arm in by_arm for arm in c.arms):
            continue
        if c.metric == "auc" and c.comparison in ("superior", "non_inferior"):
            test = stats.delong_test(y, by_arm[c.arms[0]], by_arm[c.arms[1]])
            half = z * math.sqrt(test.variance) if np.isfinite(test.variance) else float("nan")
            rows.append([c.id, source, test.difference, test.difference - half, test.difference + half])
        elif c.metric == "auc" and c.comparison == "value":
            r = stats.delong_auc(y, by_arm[c.arms[0]], alpha=alpha)
            rows.append([c.id, source, r.auc, r.ci_low, r.ci_high])
        elif c.metric in ("accuracy", "sensitivity", "specificity") and c.comparison == "value":
            t = thresholds.get(c.arms[0])
            if t is None:
                continue
            pred = (by_arm[c.arms[0]] >= t).astype(np.int64)
            m = stats.classification_metrics(y, pred, alpha=alpha)
            rows.append([c.id, source, m[c.metric], m[f"{c.metric}_ci_low"], m[f"{c.metric}_ci_high"]])
    return pd.DataFrame(rows, columns=_ESTIMATE_COLUMNS)


def reader_claim_estimates(
    claims: Sequence[Claim],
    y_true,
    scores,
    reader_calls,
    *,
    thresholds: Mapping[str, float],
    source: str,
    alpha: float = DEFAULT_ALPHA,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Estimates for the claims that compare an arm's accuracy with the readers.

    For a claim with ``versus`` set (:data:`COMPARATORS`), each patient ``i``
    contributes the paired difference ``d_i = c_i(arm) - c_i(readers)``, where
    ``c_i(arm)`` is 1 when the arm's call (``score >= threshold``) is right,
    and ``c_i(readers)`` is 1 when the named reader is right or, for
    ``clinicians_mean``, the fraction of the readers who are right. The
    estimate is ``mean(d)`` (the accuracy difference) and the interval its
    label-stratified percentile bootstrap (:func:`pdlib.stats.bootstrap_ci`).

    Parameters
    ----------
    claims : sequence of Claim
    y_true : array-like of shape (n_patients,)
        0/1 labels of the patients the readers called (the test set).
    scores : mapping arm -> array-like, or DataFrame with one column per arm
        Scores of the arms for the same patients in the same order.
    reader_calls : mapping reader -> array-like of 0/1, or DataFrame with one column per reader
        Each reader's calls (1 = positive class) in the same order; reader
        names as in ``readers.csv`` (``C3``, ``C20``, ``C40``).
    thresholds : mapping arm -> float
        Fixed (out-of-fold) threshold of each arm.
    source : str
        Label in the scorecard.
    alpha : float, default 0.05
    n_resamples, seed : int
        Of the bootstrap.

    Returns
    -------
    estimates : DataFrame
        ``claim, source, estimate, ci_low, ci_high``; claims whose arm has no
        score or threshold, or whose reader has no calls, are left out.
    """
    alpha = _check_alpha(alpha)
    y = stats._as_labels(y_true)
    by_arm = _scores_by_arm(scores, y.size)
    if isinstance(reader_calls, pd.DataFrame):
        reader_calls = {str(c): reader_calls[c].to_numpy() for c in reader_calls.columns}
    if not isinstance(reader_calls, Mapping) or not reader_calls:
        raise ValueError("reader_calls must be a non-empty mapping reader -> 0/1 calls (or a DataFrame)")
    calls = {}
    for reader, c in reader_calls.items():
        c = stats._as_labels(c, name=f"calls of reader {reader!r}")
        if c.size != y.size:
            raise ValueError(f"reader {reader!r} has {c.size} calls but y_true has {y.size} patients")
        calls[str(reader)] = c
    readers_right = {r: (c == y).astype(float) for r, c in calls.items()}
    readers_right["clinicians_mean"] = np.mean(list(readers_right.values()), axis=0)
    rows = []
    for c in claims:
        if c.versus is None or c.metric != "accuracy" or c.versus not in readers_right:
            continue
        arm = c.arms[0]
        if arm not in by_arm or arm not in thresholds:
            continue
        t = _check_threshold(thresholds[arm], f"threshold of arm {arm!r}")
        right = ((by_arm[arm] >= t).astype(np.int64) == y).astype(float)
        d = right - readers_right[c.versus]
        low, high = stats.bootstrap_ci(y, d, lambda _y, v: float(v.mean()), n_resamples=n_resamples,
                                       alpha=alpha, seed=seed)
        rows.append([c.id, source, float(d.mean()), low, high])
    return pd.DataFrame(rows, columns=_ESTIMATE_COLUMNS)


def seed_claim_estimates(
    claims: Sequence[Claim],
    long_table: pd.DataFrame,
    *,
    source: str,
    arm: str = "arm",
    seed: str = "seed",
    value: str = "auc",
    metric: str = "auc",
    alpha: float = DEFAULT_ALPHA,
) -> pd.DataFrame:
    """Estimates for the two-arm claims on one metric from paired seeds.

    The estimate is the mean paired difference over seeds and the interval
    its paired t-interval (:func:`paired_seed_summary`). It answers whether
    the difference holds across training runs on the patients the values
    were measured on; with the external set's AUCs in ``long_table`` the
    patients' own sampling error is small, with the 28 test patients it is
    not included.

    Parameters
    ----------
    claims : sequence of Claim
    long_table : DataFrame
        One row per (arm, seed) with columns ``arm``, ``seed``, ``value``.
    source : str
        Label in the scorecard (for example ``"seeds (5), external"``).
    arm, seed, value : str
        Column names.
    metric : str, default "auc"
        The metric ``value`` holds; only claims on it are estimated.
    alpha : float, default 0.05

    Returns
    -------
    estimates : DataFrame
        ``claim, source, estimate, ci_low, ci_high``.
    """
    alpha = _check_alpha(alpha)
    table = _check_long_table(long_table, arm=arm, seed=seed, value=value)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    known = set(table[arm])
    wanted = [c for c in claims if c.metric == metric and c.comparison in ("superior", "non_inferior") and c.versus is None
              and c.population == "test" and all(a in known for a in c.arms)]
    if not wanted:
        return pd.DataFrame(columns=_ESTIMATE_COLUMNS)
    summary = paired_seed_summary(table, [c.arms for c in wanted], arm=arm, seed=seed, value=value, alpha=alpha)
    rows = [[c.id, source, row["mean"], row["ci_low"], row["ci_high"]] for c, (_, row) in zip(wanted, summary.iterrows())]
    return pd.DataFrame(rows, columns=_ESTIMATE_COLUMNS)


def time_ratio_estimates(
    claims: Sequence[Claim],
    long_table: pd.DataFrame,
    *,
    source: str,
    arm: str = "arm",
    seed: str = "seed",
    value: str = "seconds",
    alpha: float = DEFAULT_ALPHA,
) -> pd.DataFrame:
    """Estimates for the training-time claims (``train_time_ratio``) from paired seeds.

    For a claim on arms ``a`` and ``b`` and the seeds both were trained
    with, ``r_k = T_k(a) / T_k(b)`` is the ratio of their training times in
    seed ``k`` (``T``: the seconds of every member of the arm's chain). The
    estimate is the geometric mean ``exp(mean(log r_k))`` and the interval
    ``exp`` of the paired t-interval of ``log r_k`` (:func:`paired_seed_summary`):
    it describes the variation of the timings between runs on this machine.
    One seed gives the ratio without an interval.

    Parameters
    ----------
    claims : sequence of Claim
    long_table : DataFrame
        One row per (arm, seed) with columns ``arm``, ``seed``, ``value``
        (training seconds, positive).
    source : str
        Label in the scorecard.
    arm, seed, value : str
        Column names.
    alpha : float, default 0.05

    Returns
    -------
    estimates : DataFrame
        ``claim, source, estimate, ci_low, ci_high``; claims whose arms are
        not both in the table are left out.

    Raises
    ------
    ValueError
        A time that is not a positive finite number, naming the arm and seed.

    Examples
    --------
    >>> c = Claim("t", "a takes half the time of b", "Results", "text", "at_most", "train_time_ratio",
    ...           ("a", "b"), bound=0.5)
    >>> long = pd.DataFrame({"arm": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "seconds": [30.0, 40.0, 100.0, 100.0]})
    >>> round(float(time_ratio_estimates([c], long, source="2 seeds")["estimate"].iloc[0]), 4)  # sqrt(0.3 * 0.4)
    0.3464
    """
    alpha = _check_alpha(alpha)
    table = _check_long_table(long_table, arm=arm, seed=seed, value=value)
    bad = table[table[value] <= 0]
    if len(bad):
        row = bad.iloc[0]
        raise ValueError(f"arm {row[arm]!r}, seed {_plain(row[seed])!r}: training time must be positive, got {row[value]!r}")
    known = set(table[arm])
    wanted = [c for c in claims if c.metric == "train_time_ratio" and len(c.arms) == 2 and c.versus is None
              and all(a in known for a in c.arms)]
    if not wanted:
        return pd.DataFrame(columns=_ESTIMATE_COLUMNS)
    logs = table.assign(**{value: np.log(table[value])})
    summary = paired_seed_summary(logs, [c.arms for c in wanted], arm=arm, seed=seed, value=value, alpha=alpha)
    rows = [[c.id, source, math.exp(row["mean"]), math.exp(row["ci_low"]), math.exp(row["ci_high"])]
            for c, (_, row) in zip(wanted, summary.iterrows())]
    return pd.DataFrame(rows, columns=_ESTIMATE_COLUMNS)


# --------------------------------------------------------------------------
# the scorecard
# --------------------------------------------------------------------------


def _check_estimates(estimates, ids: set[str]) -> pd.DataFrame:
    if not isinstance(estimates, pd.DataFrame):
        raise TypeError(f"estimates must be a pandas DataFrame, got {type(estimates).__name__}")
    missing = [c for c in _ESTIMATE_COLUMNS if c not in estimates.columns]
    if missing:
        raise ValueError(f"estimates lack column(s) {missing}; expected {_ESTIMATE_COLUMNS}")
    table = estimates[_ESTIMATE_COLUMNS].copy()
    table["claim"] = table["claim"].astype(str)
    table["source"] = table["source"].astype(str)
    for col in ("estimate", "ci_low", "ci_high"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    for _, row in table.iterrows():
        where = f"estimate of claim {row['claim']!r} from {row['source']!r}"
        if row["claim"] not in ids:
            raise ValueError(f"{where}: no such claim")
        low, est, high = row["ci_low"], row["estimate"], row["ci_high"]
        if np.isfinite(low) and np.isfinite(high) and low > high:
            raise ValueError(f"{where}: ci_low {low} exceeds ci_high {high}")
        if np.isfinite(est) and np.isfinite(low) and np.isfinite(high) and not low - 1e-12 <= est <= high + 1e-12:
            raise ValueError(f"{where}: estimate {est} lies outside its interval [{low}, {high}]")
    dup = table.duplicated(["claim", "source"])
    if dup.any():
        row = table[dup].iloc[0]
        raise ValueError(f"claim {row['claim']!r} has more than one estimate from {row['source']!r}")
    return table


def _verdict(claim: Claim, estimate: float, low: float, high: float) -> tuple[str, str]:
    """The rule of :func:`scorecard` for one claim and one estimate."""
    if not np.isfinite(estimate):
        return "not estimated", "no estimate from this source"
    if not (np.isfinite(low) and np.isfinite(high)):
        return "not decidable", "the estimate has no interval"
    if claim.comparison == "superior":
        if low > 0:
            return "supported", "the interval of the difference lies above 0"
        if high < 0:
            return "contradicted", "the interval of the difference lies below 0"
        return "not decidable", "the interval of the difference contains 0"
    if claim.comparison == "non_inferior":
        margin = claim.margin if claim.margin is not None else NON_INFERIORITY_MARGIN[claim.metric]
        if low > -margin:
            return "supported", f"the interval of the difference lies above -{margin:g}"
        if high < -margin:
            return "contradicted", f"the interval of the difference lies below -{margin:g}"
        return "not decidable", f"the interval of the difference contains -{margin:g}"
    if claim.comparison == "at_most":
        if high <= claim.bound:
            return "supported", f"the interval lies at or below {claim.bound:g}"
        if low > claim.bound:
            return "contradicted", f"the interval lies above {claim.bound:g}"
        return "not decidable", f"the interval contains {claim.bound:g}"
    # value
    paper = claim.paper_value
    precision = VALUE_PRECISION[claim.metric]
    if not low <= paper <= high:
        return "contradicted", f"the paper's {paper:g} lies outside the interval"
    if (high - low) / 2.0 <= precision:
        return "supported", f"the paper's {paper:g} lies inside an interval of half-width <= {precision:g}"
    return "not decidable", f"the paper's {paper:g} lies inside an interval wider than +-{precision:g}"


def scorecard(claims: Sequence[Claim], estimates: pd.DataFrame) -> pd.DataFrame:
    """Each claim of the paper next to this run's estimates, with a verdict.

    The rule, fixed before any estimate was seen. For an estimate with a
    two-sided interval ``[low, high]`` (95% unless the caller chose
    otherwise) of the claim's quantity (:class:`Claim`):

    ``superior`` (first better than second; quantity ``d = first - second``)
        supported if ``low > 0``; contradicted if ``high < 0``; otherwise
        not decidable at this sample size.
    ``non_inferior`` (first at least as good as second, margin ``M``,
    default :data:`NON_INFERIORITY_MARGIN`: 0.05)
        supported if ``low > -M``; contradicted if ``high < -M``; otherwise
        not decidable.
    ``value`` (a headline number ``v`` of the paper)
        contradicted if ``v`` lies outside ``[low, high]``; supported if it
        lies inside and the half-width ``(high - low) / 2`` is at most
        :data:`VALUE_PRECISION` (0.05); otherwise (inside a wider
        interval) not decidable.
    ``at_most`` (the quantity is at most the bound ``B``)
        supported if ``high <= B``; contradicted if ``low > B``; otherwise
        not decidable.

    An estimate without an interval is "not decidable"; a claim without any
    estimate gets one row with verdict "not estimated". Each source (the
    28-patient test, the external set, the seeds) is judged on its own; no
    multiplicity correction is made across claims, so with many claims some
    "supported" or "contradicted" verdicts are expected by chance alone.
    ``paper_in_ci`` says whether the paper's own number for the quantity
    lies in the interval (``nan`` where the paper printed none).

    Parameters
    ----------
    claims : sequence of Claim
        As loaded by :func:`load_claims`.
    estimates : DataFrame
        ``claim, source, estimate, ci_low, ci_high`` (from
        :func:`claim_estimates`, :func:`seed_claim_estimates` or the caller);
        at most one row per (claim, source).

    Returns
    -------
    card : DataFrame
        ``claim, statement, compared, comparison, metric, where, evidence,
        paper_value, source, estimate, ci_low, ci_high, paper_in_ci,
        verdict, reason``; claims in the given order, sources in the order
        of ``estimates``.

    Raises
    ------
    ValueError
        An estimate for an unknown claim, a repeated (claim, source), or an
        interval that does not contain its estimate.

    Examples
    --------
    >>> c = Claim("x", "a beats b", "Results", "Table 2", "superior", "auc", ("a", "b"), paper_a=0.87, paper_b=0.74)
    >>> est = pd.DataFrame({"claim": ["x"], "source": ["external"], "estimate": [0.05],
    ...                     "ci_low": [0.02], "ci_high": [0.08]})
    >>> scorecard([c], est)[["claim", "verdict", "paper_in_ci"]].to_dict("records")
    [{'claim': 'x', 'verdict': 'supported', 'paper_in_ci': False}]
    """
    claims = list(claims)
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError("claim ids must be unique")
    table = _check_estimates(estimates, set(ids))
    rows = []
    for c in claims:
        mine = table[table["claim"] == c.id]
        entries = [(r["source"], r["estimate"], r["ci_low"], r["ci_high"]) for _, r in mine.iterrows()]
        if not entries:
            entries = [("", float("nan"), float("nan"), float("nan"))]
        for source, est, low, high in entries:
            verdict, reason = _verdict(c, est, low, high)
            paper = c.paper_value
            inside = (bool(low <= paper <= high) if np.isfinite(paper) and np.isfinite(low) and np.isfinite(high)
                      else float("nan"))
            if c.comparison == "at_most":
                inside = float("nan")
            rows.append({
                "claim": c.id, "statement": c.statement, "compared": c.compared, "comparison": c.comparison,
                "metric": c.metric, "where": c.where, "evidence": c.evidence, "paper_value": paper,
                "source": source, "estimate": est, "ci_low": low, "ci_high": high, "paper_in_ci": inside,
                "verdict": verdict, "reason": reason,
            })
    return pd.DataFrame(rows, columns=[
        "claim", "statement", "compared", "comparison", "metric", "where", "evidence", "paper_value", "source",
        "estimate", "ci_low", "ci_high", "paper_in_ci", "verdict", "reason"])
