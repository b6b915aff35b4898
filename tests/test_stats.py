"""pdlib.stats against published references and deliberately naive implementations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from pdlib import stats
from pdlib.stats import DegenerateInputWarning

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def asah():
    """pROC's aSAH data (tests/data/README.md); label 1 = outcome Poor."""
    table = pd.read_csv(DATA / "aSAH.csv")
    return table.assign(label=(table["outcome"] == "Poor").astype(int))


# --- published pROC results on aSAH (tests/data/README.md) -----------------

PROC_AUC = {"wfns": 0.823678861788618, "s100b": 0.731368563685637, "ndka": 0.611957994579946}
PROC_VAR = {"wfns": 0.00146991470882363, "s100b": 0.00266868245717244, "ndka": 0.0031908105493913}
PROC_PAIRED = {
    ("wfns", "s100b"): (2.20898359144091, 0.0271757822291882),
    ("wfns", "ndka"): (2.79777591868904, 0.00514557970691098),
    ("ndka", "s100b"): (-1.39077002573558, 0.164295175223054),
}


@pytest.mark.parametrize("marker", sorted(PROC_AUC))
def test_delong_auc_and_variance_match_proc(asah, marker):
    result = stats.delong_auc(asah["label"], asah[marker])
    assert result.auc == pytest.approx(PROC_AUC[marker], rel=1e-9)
    assert result.variance == pytest.approx(PROC_VAR[marker], rel=1e-6)
    assert (result.n_pos, result.n_neg) == (41, 72)
    assert stats.roc_auc(asah["label"], asah[marker]) == pytest.approx(PROC_AUC[marker], rel=1e-9)


def test_delong_interval_matches_proc_ndka(asah):
    result = stats.delong_auc(asah["label"], asah["ndka"])
    assert result.ci_low == pytest.approx(0.501244999271703, rel=1e-6)
    assert result.ci_high == pytest.approx(0.722670989888189, rel=1e-6)


@pytest.mark.parametrize("pair", sorted(PROC_PAIRED))
def test_paired_delong_matches_proc(asah, pair):
    z, p = PROC_PAIRED[pair]
    result = stats.delong_test(asah["label"], asah[pair[0]], asah[pair[1]])
    assert result.z == pytest.approx(z, rel=1e-6)
    assert result.p_value == pytest.approx(p, rel=1e-6)
    # swapping the two models flips the sign of z and keeps p
    swapped = stats.delong_test(asah["label"], asah[pair[1]], asah[pair[0]])
    assert swapped.z == pytest.approx(-z, rel=1e-6)
    assert swapped.p_value == pytest.approx(p, rel=1e-6)


def test_youden_on_s100b_classifies_like_proc(asah):
    y, s = asah["label"].to_numpy(), asah["s100b"].to_numpy()
    threshold = stats.youden_threshold(y, s)
    assert threshold in set(s)  # an observed value, not a midpoint
    counts = stats.confusion_counts(y, (s >= threshold).astype(int))
    assert (counts["tp"], counts["tp"] + counts["fn"]) == (26, 41)
    assert (counts["tn"], counts["tn"] + counts["fp"]) == (58, 72)
    curve = stats.roc_curve(y, s)
    best = curve.loc[curve["youden"].idxmax()]
    assert best["threshold"] == threshold
    assert best["tpr"] == pytest.approx(26 / 41) and best["fpr"] == pytest.approx(14 / 72)


# --- naive references --------------------------------------------------------


def naive_auc(y, s):
    """O(n^2): share of (positive, negative) pairs ranked right, ties one half."""
    pos, neg = s[y == 1], s[y == 0]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (pos.size * neg.size)


def naive_delong_covariance(y, scores):
    """DeLong et al. (1988) structural components by direct pair counting."""
    psi = lambda a, b: (a > b) + 0.5 * (a == b)  # noqa: E731
    v10, v01 = [], []
    for s in scores:
        pos, neg = s[y == 1], s[y == 0]
        v10.append([np.mean([psi(p, q) for q in neg]) for p in pos])
        v01.append([np.mean([psi(p, q) for p in pos]) for q in neg])
    v10, v01 = np.array(v10), np.array(v01)
    return np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]


def test_auc_and_delong_match_naive_pair_counting():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 60)
    a = np.round(rng.normal(size=60) + y, 1)  # rounded: many ties
    b = np.round(rng.normal(size=60) + 0.5 * y, 1)
    assert stats.roc_auc(y, a) == pytest.approx(naive_auc(y, a), abs=1e-12)
    cov = naive_delong_covariance(y, [a, b])
    assert stats.delong_auc(y, a).variance == pytest.approx(cov[0, 0], rel=1e-10)
    result = stats.delong_test(y, a, b)
    expected_z = (naive_auc(y, a) - naive_auc(y, b)) / math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert result.z == pytest.approx(expected_z, rel=1e-10)


def test_roc_curve_counts_match_thresholding():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 40)
    s = np.round(rng.uniform(size=40), 1)
    curve = stats.roc_curve(y, s)
    assert curve["threshold"].iloc[0] == np.inf and curve[["fpr", "tpr"]].iloc[0].tolist() == [0.0, 0.0]
    assert curve[["fpr", "tpr"]].iloc[-1].tolist() == [1.0, 1.0]
    for _, row in curve.iloc[1:].iterrows():
        called = s >= row["threshold"]
        assert row["tp"] == (called & (y == 1)).sum() and row["fp"] == (called & (y == 0)).sum()
    # trapezoid area under the curve is the AUC
    assert np.trapezoid(curve["tpr"], curve["fpr"]) == pytest.approx(stats.roc_auc(y, s))


def test_youden_tie_goes_to_highest_threshold():
    # thresholds 0.8 and 0.35 both give J = 0.5
    assert stats.youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.8


# --- Wilson intervals: Newcombe (1998), Statistics in Medicine 17:857, Table I -----
# (method "Wilson score, no continuity correction"; identical to R
# binom::binom.confint(x, n, methods = "wilson")), printed to four decimals.

NEWCOMBE_WILSON = [((81, 263), (0.2553, 0.3662)), ((15, 148), (0.0624, 0.1605)),
                   ((0, 20), (0.0000, 0.1611)), ((1, 29), (0.0061, 0.1718))]


@pytest.mark.parametrize(("x_n", "interval"), NEWCOMBE_WILSON)
def test_wilson_matches_newcombe(x_n, interval):
    low, high = stats.wilson_interval(*x_n)
    assert (round(low, 4), round(high, 4)) == interval


def test_wilson_closed_form():
    x, n, z = 12, 14, 1.959963984540054
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert stats.wilson_interval(x, n) == pytest.approx((centre - half, centre + half), rel=1e-10)


def test_classification_metrics_counts_and_intervals():
    y = np.array([1] * 14 + [0] * 14)
    pred = np.array([1] * 12 + [0] * 2 + [0] * 12 + [1] * 2)
    m = stats.classification_metrics(y, pred)
    assert (m["tp"], m["fn"], m["tn"], m["fp"], m["n"]) == (12, 2, 12, 2, 28)
    assert m["accuracy"] == pytest.approx(24 / 28) and m["sensitivity"] == pytest.approx(12 / 14)
    assert (m["sensitivity_ci_low"], m["sensitivity_ci_high"]) == pytest.approx(stats.wilson_interval(12, 14))
    assert (m["accuracy_ci_low"], m["accuracy_ci_high"]) == pytest.approx(stats.wilson_interval(24, 28))


# --- exact McNemar -----------------------------------------------------------


def test_mcnemar_matches_fagerland_example():
    # Fagerland, Lydersen & Laake (2013) BMC Med Res Methodol 13:91, Table 1
    # (Bentur et al. 2009): 21 children, discordant pairs 1 and 7; exact
    # conditional p = 0.070, i.e. 2 * (C(8,0) + C(8,1)) / 2^8 = 18/256.
    before = np.array([1] * 2 + [0] * 19)  # AHR before SCT
    after = np.array([1, 0] + [1] * 7 + [0] * 12)  # AHR after SCT
    truth = np.ones(21, dtype=int)  # "correct" = AHR present
    result = stats.mcnemar_exact(truth, before, after)
    assert (result.only_a_correct, result.only_b_correct) == (1, 7)
    assert result.p_value == pytest.approx(18 / 256, rel=1e-12)
    assert round(result.p_value, 3) == 0.070


def test_mcnemar_matches_statsmodels_on_random_pairs():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 50)
    a = np.where(rng.uniform(size=50) < 0.8, y, 1 - y)
    b = np.where(rng.uniform(size=50) < 0.6, y, 1 - y)
    result = stats.mcnemar_exact(y, a, b)
    a_ok, b_ok = a == y, b == y
    table = [[(a_ok & b_ok).sum(), (a_ok & ~b_ok).sum()], [(~a_ok & b_ok).sum(), (~a_ok & ~b_ok).sum()]]
    assert result.p_value == pytest.approx(sm_mcnemar(table, exact=True).pvalue, rel=1e-12)


def test_mcnemar_without_discordance_is_one():
    assert stats.mcnemar_exact([1, 0, 1], [1, 0, 0], [1, 0, 0]).p_value == 1.0


def _test_predictions():
    y = np.array([1] * 6 + [0] * 6)
    return pd.DataFrame({
        "patient_id": [f"T{i:02d}" for i in range(12)],
        "split": "test",
        "label": y,
        "score": [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.55, 0.45, 0.2, 0.15, 0.1, 0.05],
    })


def _reader_calls(pred, calls_by_reader):
    rows = []
    for reader, calls in calls_by_reader.items():
        rows += [{"patient_id": p, "reader": reader, "call": c} for p, c in zip(pred["patient_id"], calls)]
    return pd.DataFrame(rows)


def test_reader_comparison_counts_and_mcnemar():
    pred = _test_predictions()
    truth = ["PR"] * 6 + ["GR"] * 6
    perfect = truth
    poor = ["GR"] * 12  # calls nobody positive
    readers = _reader_calls(pred, {"C3": perfect, "C40": poor})
    table = stats.reader_comparison(pred, readers, threshold=0.5).set_index("reader")
    # model at 0.5: TP 4 (0.9, 0.8, 0.7, 0.6), FP 1 (0.55)
    assert table.loc["model", ["tp", "fn", "tn", "fp"]].tolist() == [4, 2, 5, 1]
    assert table.loc["C3", "accuracy"] == 1.0
    assert (table.loc["C3", "model_only_correct"], table.loc["C3", "reader_only_correct"]) == (0, 3)
    assert table.loc["C3", "mcnemar_p"] == pytest.approx(2 * 0.5**3)
    assert table.loc["C40", ["tp", "tn"]].tolist() == [0, 6]
    # C40 is right on the 6 negatives; the model is right on 4 positives and 5 negatives
    assert (table.loc["C40", "model_only_correct"], table.loc["C40", "reader_only_correct"]) == (4, 1)


def test_reader_comparison_names_patient_without_a_call():
    pred = _test_predictions()
    readers = _reader_calls(pred, {"C3": ["PR"] * 12})
    readers = readers[readers["patient_id"] != "T07"]
    with pytest.raises(ValueError, match="T07.*C3"):
        stats.reader_comparison(pred, readers, threshold=0.5)
    bad = _reader_calls(pred, {"C3": ["PR"] * 11 + ["SD"]})
    with pytest.raises(ValueError, match="T11.*'SD'"):
        stats.reader_comparison(pred, bad, threshold=0.5)


# --- agreement ---------------------------------------------------------------


def naive_fleiss(matrix):
    """Fleiss (1971) from a subjects x categories count matrix."""
    m = matrix.sum(axis=1)[0]
    p_i = ((matrix**2).sum(axis=1) - m) / (m * (m - 1))
    p_j = matrix.sum(axis=0) / matrix.sum()
    return (p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum())


def test_kappas_match_references():
    rng = np.random.default_rng(5)
    truth = rng.integers(0, 2, 28)
    calls = {r: np.where(rng.uniform(size=28) < acc, truth, 1 - truth) for r, acc in
             (("C3", 0.9), ("C20", 0.8), ("C40", 0.75))}
    readers = pd.concat([pd.DataFrame({"patient_id": [f"P{i}" for i in range(28)], "reader": r,
                                       "call": np.where(c == 1, "PR", "GR")}) for r, c in calls.items()])
    pairs = stats.reader_agreement(readers).set_index(["reader_a", "reader_b"])
    assert len(pairs) == 3
    assert pairs.loc[("C20", "C3"), "kappa"] == pytest.approx(cohen_kappa_score(calls["C20"], calls["C3"]))
    assert stats.cohen_kappa(calls["C3"], calls["C40"]) == pytest.approx(cohen_kappa_score(calls["C3"], calls["C40"]))
    positives = np.sum(list(calls.values()), axis=0)
    matrix = np.column_stack([3 - positives, positives])
    assert stats.fleiss_kappa(readers) == pytest.approx(naive_fleiss(matrix), rel=1e-12)


# --- decision curves ---------------------------------------------------------


def test_net_benefit_matches_hand_formula_and_dcurves():
    import dcurves

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 80)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 80), 0, 1)
    grid = [0.0, 0.1, 0.25, 0.5, 0.75]
    curves = stats.decision_curve(y, {"pd": p}, thresholds=grid)
    assert curves["model"].unique().tolist() == ["pd", "all", "none"]
    n = y.size
    for pt in grid:
        tp, fp = ((p >= pt) & (y == 1)).sum(), ((p >= pt) & (y == 0)).sum()
        row = curves[(curves["model"] == "pd") & (curves["threshold"] == pt)].iloc[0]
        assert row["net_benefit"] == pytest.approx(tp / n - fp / n * pt / (1 - pt), abs=1e-12)
        treat_all = curves[(curves["model"] == "all") & (curves["threshold"] == pt)].iloc[0]
        assert treat_all["net_benefit"] == pytest.approx(y.mean() - (1 - y.mean()) * pt / (1 - pt), abs=1e-12)
    assert (curves.loc[curves["model"] == "none", "net_benefit"] == 0).all()
    direct = dcurves.dca(data=pd.DataFrame({"outcome": y, "pd": p}), outcome="outcome", modelnames=["pd"],
                         thresholds=grid)
    assert np.allclose(curves["net_benefit"], direct["net_benefit"].astype(float))


def test_decision_curve_rejects_non_probabilities():
    with pytest.raises(ValueError, match="probabilities"):
        stats.decision_curve([0, 1], {"m": [0.2, 1.4]}, thresholds=[0.5])
    with pytest.raises(ValueError, match="reserved"):
        stats.decision_curve([0, 1], {"all": [0.2, 0.4]}, thresholds=[0.5])


# --- bootstrap ---------------------------------------------------------------


def test_bootstrap_auc_interval_agrees_with_delong_on_large_sample():
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=2000) < 0.4).astype(int)
    s = rng.normal(size=2000) + 1.0 * y
    delong = stats.delong_auc(y, s)
    low, high = stats.bootstrap_ci(y, s, stats.roc_auc, n_resamples=400, seed=1)
    assert low == pytest.approx(delong.ci_low, abs=0.01)
    assert high == pytest.approx(delong.ci_high, abs=0.01)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 40)
    s = rng.normal(size=40) + y
    first = stats.bootstrap_ci(y, s, stats.roc_auc, n_resamples=100, seed=3)
    assert stats.bootstrap_ci(y, s, stats.roc_auc, n_resamples=100, seed=3) == first
    assert stats.bootstrap_ci(y, s, stats.roc_auc, n_resamples=100, seed=4) != first


# --- calibration -------------------------------------------------------------


def test_calibration_of_calibrated_and_overconfident_scores():
    from scipy.optimize import brentq

    rng = np.random.default_rng(8)
    true_logit = rng.normal(0, 1.5, 3000)
    p = 1 / (1 + np.exp(-true_logit))
    y = (rng.uniform(size=3000) < p).astype(int)
    calibrated = stats.calibration(y, p)
    assert calibrated.slope_ci[0] < 1 < calibrated.slope_ci[1]
    # calibration in the large: the 1-D maximum-likelihood equation solved by hand
    a_hat = brentq(lambda a: np.sum(y - 1 / (1 + np.exp(-(a + true_logit)))), -3, 3)
    assert calibrated.intercept == pytest.approx(a_hat, abs=1e-8)
    assert calibrated.intercept_ci[0] < a_hat < calibrated.intercept_ci[1]
    assert abs(calibrated.intercept) < 0.15
    # scores shifted up by one logit: the intercept must bring them back down by about one
    shifted = stats.calibration(y, 1 / (1 + np.exp(-(true_logit + 1.0))))
    assert shifted.intercept == pytest.approx(-1.0, abs=0.15)
    overconfident = stats.calibration(y, 1 / (1 + np.exp(-2 * true_logit)))
    assert overconfident.slope == pytest.approx(0.5, abs=0.06)
    assert overconfident.slope_ci[1] < 1
    assert calibrated.brier == pytest.approx(np.mean((p - y) ** 2))
    curve = calibrated.curve
    assert curve["n"].sum() == 3000 and len(curve) == 5
    assert np.allclose(curve["mean_predicted"], curve["observed_fraction"], atol=0.05)


# --- the patient-prediction table --------------------------------------------


def _prediction_table(with_oof: bool):
    table = pd.DataFrame({
        "patient_id": [f"P{i:02d}" for i in range(14)],
        "split": ["train"] * 8 + ["test"] * 6,
        "recist": ["SD", "PD", "SD", "PD", "CR", "PR", "PR", "PR", "SD", "PD", "SD", "CR", "PR", "PR"],
        "label": [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0],
        "score": [0.95, 0.9, 0.85, 0.8, 0.3, 0.2, 0.15, 0.1, 0.7, 0.5, 0.35, 0.6, 0.4, 0.05],
    })
    if with_oof:
        table["oof_score"] = [0.7, 0.6, 0.45, 0.3, 0.5, 0.25, 0.2, 0.1] + [np.nan] * 6
    return table


def test_performance_table_apparent_and_prespecified():
    table = stats.performance_table(_prediction_table(with_oof=True)).set_index(["way", "split"])
    assert list(table.index) == [("apparent", "train"), ("apparent", "test"),
                                 ("pre-specified", "train"), ("pre-specified", "test")]
    # apparent: Youden on each split itself
    assert table.loc[("apparent", "train"), "threshold"] == 0.8
    assert table.loc[("apparent", "test"), "threshold_source"] == "youden_test"
    # test scores: positives 0.7, 0.5, 0.35; negatives 0.6, 0.4, 0.05 -> J = 1/3 at 0.7, 0.5 and 0.35;
    # ties go to the higher threshold
    assert table.loc[("apparent", "test"), "threshold"] == 0.7
    # pre-specified: Youden on the OOF scores -> 0.3 (sens 4/4, spec 3/4), frozen for the test set
    pre = table.loc[("pre-specified", "test")]
    assert pre["threshold_source"] == "youden_train_oof" and pre["threshold"] == 0.3
    assert [pre[k] for k in ("tp", "fn", "tn", "fp")] == [3, 0, 1, 2]
    assert pre["sensitivity"] == 1.0 and pre["specificity"] == pytest.approx(1 / 3)
    assert (pre["sensitivity_ci_low"], pre["sensitivity_ci_high"]) == pytest.approx(stats.wilson_interval(3, 3))
    # the AUC does not depend on the threshold
    assert pre["auc"] == table.loc[("apparent", "test"), "auc"] == pytest.approx(naive_auc(
        np.array([1, 1, 1, 0, 0, 0]), np.array([0.7, 0.5, 0.35, 0.6, 0.4, 0.05])))
    assert pre["auc_ci_low"] <= pre["auc"] <= pre["auc_ci_high"]


def test_performance_table_falls_back_to_resubstitution_and_says_so():
    table = stats.performance_table(_prediction_table(with_oof=False)).set_index(["way", "split"])
    pre = table.loc[("pre-specified", "test")]
    assert pre["threshold_source"] == "youden_train_resubstitution"
    assert pre["threshold"] == 0.8  # the training scores separate perfectly at 0.8
    assert [pre[k] for k in ("tp", "fn", "tn", "fp")] == [0, 3, 3, 0]


def test_performance_table_is_deterministic():
    first = stats.performance_table(_prediction_table(with_oof=True))
    second = stats.performance_table(_prediction_table(with_oof=True))
    pd.testing.assert_frame_equal(first, second)


def test_performance_table_errors_name_the_patient():
    table = _prediction_table(with_oof=False)
    table.loc[3, "score"] = np.nan
    with pytest.raises(ValueError, match="P03.*score"):
        stats.performance_table(table)
    table = _prediction_table(with_oof=False)
    table.loc[5, "patient_id"] = "P04"
    with pytest.raises(ValueError, match="P04.*more than once"):
        stats.performance_table(table)
    table = _prediction_table(with_oof=True)
    table.loc[2, "oof_score"] = np.nan
    with pytest.raises(ValueError, match="P02.*out-of-fold"):
        stats.performance_table(table)
    table = _prediction_table(with_oof=False)
    table.loc[0, "label"] = 2
    with pytest.raises(ValueError, match="P00.*label"):
        stats.performance_table(table)


def test_recist_confusion_layout():
    table = _prediction_table(with_oof=False)
    test = table[table["split"] == "test"]
    pred = (test["score"] >= 0.45).astype(int)  # calls 0.7, 0.5, 0.6 positive (PR group)
    confusion = stats.recist_confusion(test["recist"], pred)
    assert list(confusion.index) == ["CR", "PR", "SD", "PD"] and list(confusion.columns) == ["GR", "PR"]
    assert confusion.loc["CR"].tolist() == [0, 1]
    assert confusion.loc["PR"].tolist() == [2, 0]
    assert confusion.loc["SD"].tolist() == [1, 1]
    assert confusion.loc["PD"].tolist() == [0, 1]
    assert confusion.to_numpy().sum() == len(test)
    with pytest.raises(ValueError, match="'XX'"):
        stats.recist_confusion(["CR", "XX"], [0, 1])


def test_aggregate_over_seeds():
    long = pd.DataFrame({
        "arm": ["pd"] * 3 + ["kd"] * 3,
        "metric": ["auc"] * 6,
        "seed": [0, 1, 2] * 2,
        "value": [0.8, 0.9, 0.85, 0.7, 0.7, 0.76],
    })
    summary = stats.aggregate_over_seeds(long).set_index("arm")
    assert summary.loc["pd", "mean"] == pytest.approx(0.85)
    assert summary.loc["pd", "std"] == pytest.approx(np.std([0.8, 0.9, 0.85], ddof=1))
    assert (summary.loc["kd", "min"], summary.loc["kd", "max"], summary.loc["kd", "n"]) == (0.7, 0.76, 3)
    with pytest.raises(ValueError, match="value"):
        stats.aggregate_over_seeds(long.drop(columns="value"))


# --- degenerate and malformed inputs -----------------------------------------


def test_one_class_gives_warning_and_nan():
    y, s = [1, 1, 1], [0.2, 0.5, 0.9]
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(stats.roc_auc(y, s))
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(stats.delong_auc(y, s).ci_low)
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(stats.youden_threshold(y, s))
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(stats.delong_test(y, s, s).z)
    with pytest.warns(DegenerateInputWarning):
        assert all(math.isnan(v) for v in stats.bootstrap_ci(y, s, stats.roc_auc, n_resamples=10))
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(stats.calibration(y, s).slope)
    with pytest.warns(DegenerateInputWarning):
        assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))


def test_other_degenerate_cases_warn():
    with pytest.warns(DegenerateInputWarning):  # identical scores: zero variance of the difference
        assert math.isnan(stats.delong_test([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]).p_value)
    with pytest.warns(DegenerateInputWarning):  # one positive: DeLong variance undefined
        assert math.isnan(stats.delong_auc([0, 0, 1], [0.1, 0.2, 0.3]).variance)
    with pytest.warns(DegenerateInputWarning):  # perfectly separated: recalibration fit fails
        assert math.isnan(stats.calibration([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]).slope)
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(stats.cohen_kappa([1, 1, 1], [1, 1, 1]))
    table = _prediction_table(with_oof=False)
    table.loc[table["split"] == "test", "label"] = 1
    with pytest.warns(DegenerateInputWarning):
        result = stats.performance_table(table).set_index(["way", "split"])
    assert math.isnan(result.loc[("apparent", "test"), "auc"])
    assert result.loc[("apparent", "train"), "accuracy"] == 1.0


def test_malformed_inputs_raise():
    with pytest.raises(ValueError, match="0/1"):
        stats.roc_auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="3 values but y_true has 2"):
        stats.roc_auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="finite"):
        stats.delong_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="alpha"):
        stats.delong_auc([0, 1], [0.1, 0.2], alpha=1.5)
    with pytest.raises(ValueError, match="count"):
        stats.wilson_interval(5, 3)


# --------------------------------------------------------------------------- chance and multiplicity


def test_auc_vs_chance_is_the_mann_whitney_test_of_the_auc():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(14, int), np.ones(14, int)]
    s = rng.normal(size=28) + 0.8 * y
    p = stats.auc_vs_chance(y, s)
    assert p == pytest.approx(mannwhitneyu(s[y == 1], s[y == 0]).pvalue)
    # the U statistic behind it is the AUC times n_pos * n_neg
    assert mannwhitneyu(s[y == 1], s[y == 0]).statistic == pytest.approx(stats.roc_auc(y, s) * 14 * 14)
    # scores that do not depend on the class are not "significant"; a perfect split is
    assert stats.auc_vs_chance(y, np.arange(28) % 2) > 0.5  # half of each class scores 1
    assert stats.auc_vs_chance(y, y + 0.01 * rng.normal(size=28)) < 1e-4


def test_auc_vs_chance_with_one_class_is_nan_with_a_warning():
    with pytest.warns(stats.DegenerateInputWarning):
        assert np.isnan(stats.auc_vs_chance([1, 1, 1], [0.1, 0.2, 0.3]))


def test_holm_adjust_matches_the_step_down_definition():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    adjusted = stats.holm_adjust(p)
    np.testing.assert_allclose(adjusted[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(adjusted[4])
    # never below the raw p-value, capped at 1, order-preserving
    q = np.random.default_rng(0).uniform(size=20)
    a = stats.holm_adjust(q)
    assert np.all(a >= q) and np.all(a <= 1)
    assert np.all(np.diff(a[np.argsort(q)]) >= 0)
    # with one test nothing changes
    assert stats.holm_adjust([0.2]).tolist() == [0.2]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.holm_adjust([0.5, 1.5])


def test_kappa_interval_matches_the_large_sample_formula_and_the_reader_table():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 2, 40)
    b = np.where(rng.random(40) < 0.8, a, 1 - a)
    p_o = (a == b).mean()
    p_e = a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean())
    kappa = (p_o - p_e) / (1 - p_e)
    half = 1.959963984540054 * np.sqrt(p_o * (1 - p_o) / (40 * (1 - p_e) ** 2))  # Cohen (1960)
    low, high = stats.kappa_interval(a, b)
    assert low == pytest.approx(max(-1, kappa - half)) and high == pytest.approx(min(1, kappa + half))
    calls = pd.DataFrame({"patient_id": [f"p{i}" for i in range(40)] * 2, "reader": ["A"] * 40 + ["B"] * 40,
                          "call": ["PR" if v else "GR" for v in np.concatenate([a, b])]})
    row = stats.reader_agreement(calls).iloc[0]
    assert row["kappa"] == pytest.approx(kappa) and (row["kappa_ci_low"], row["kappa_ci_high"]) == pytest.approx((low, high))
    assert np.isnan(stats.kappa_interval([1, 1, 1], [1, 1, 1])[0])  # chance agreement 1: undefined
