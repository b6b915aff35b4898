"""pdlib.verdict on synthetic scores with known answers, and the claims file against the real arms."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as scipy_stats

from pdlib import stats, verdict
from pdlib.arms import ARMS
from pdlib.stats import DegenerateInputWarning
from pdlib.verdict import Claim

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "study.md"


def _external(n_neg=1300, n_pos=700, effect_a=1.2, effect_b=1.2, seed=3):
    """A large labelled set scored by two arms whose AUCs follow from the effects."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], [n_neg, n_pos])
    return y, y * effect_a + rng.normal(size=y.size), y * effect_b + rng.normal(size=y.size)


def _exchangeable(seed=3):
    """Arm b is arm a's scores permuted within each class: equal external AUCs, paired patients."""
    y, a, _ = _external(seed=seed)
    rng = np.random.default_rng(seed + 1)
    b = a.copy()
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        b[idx] = a[rng.permutation(idx)]
    return y, a, b


# --------------------------------------------------------------------------- paired seeds

SEEDS = pd.DataFrame({
    "arm": ["pd_b7"] * 5 + ["efficientnet_b7"] * 5 + ["kd_b7"] * 5,
    "seed": [0, 1, 2, 3, 4] * 3,
    "auc": [0.80, 0.78, 0.85, 0.70, 0.82, 0.74, 0.75, 0.80, 0.72, 0.71, 0.79, 0.78, 0.84, 0.69, 0.83],
})


def test_seed_summary_is_mean_and_spread_per_arm():
    summary = verdict.seed_summary(SEEDS).set_index("arm")
    for arm, group in SEEDS.groupby("arm"):
        values = group["auc"].to_numpy()
        assert summary.loc[arm, "n"] == 5
        assert summary.loc[arm, "mean"] == pytest.approx(values.mean())
        assert summary.loc[arm, "std"] == pytest.approx(values.std(ddof=1))
        assert (summary.loc[arm, "min"], summary.loc[arm, "max"]) == (values.min(), values.max())


def test_paired_differences_pair_by_seed_not_by_row_order():
    shuffled = SEEDS.sample(frac=1.0, random_state=7)
    d = verdict.paired_seed_differences(shuffled, [("pd_b7", "efficientnet_b7")])
    assert d["seed"].tolist() == [0, 1, 2, 3, 4]
    assert d["difference"].round(10).tolist() == [0.06, 0.03, 0.05, -0.02, 0.11]


def test_paired_summary_matches_the_paired_t_interval_and_counts_signs():
    row = verdict.paired_seed_summary(SEEDS, [("pd_b7", "efficientnet_b7"), ("pd_b7", "kd_b7")]).set_index("arm_b")
    d = np.array([0.06, 0.03, 0.05, -0.02, 0.11])
    ci = scipy_stats.ttest_1samp(d, 0.0).confidence_interval(0.95)
    first = row.loc["efficientnet_b7"]
    assert first["mean"] == pytest.approx(d.mean())
    assert (first["ci_low"], first["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert (first["n_a_higher"], first["n_b_higher"], first["n_tied"], first["n_agree"]) == (4, 1, 0, 4)
    assert first["sign_test_p"] == pytest.approx(0.375)
    # pd_b7 - kd_b7 = 0.01, 0, 0.01, 0.01, -0.01: one tie, three of four untied seeds agree
    second = row.loc["kd_b7"]
    assert (second["n_a_higher"], second["n_b_higher"], second["n_tied"], second["n_agree"]) == (3, 1, 1, 3)


def test_five_seeds_all_agreeing_give_the_smallest_sign_test_p():
    long = pd.DataFrame({"arm": ["a"] * 5 + ["b"] * 5, "seed": list(range(5)) * 2,
                         "auc": [0.9] * 5 + [0.8] * 5})
    row = verdict.paired_seed_summary(long, [("a", "b")]).iloc[0]
    assert row["n_agree"] == 5 and row["sign_test_p"] == pytest.approx(0.0625)
    assert row["std"] == 0.0 and row["ci_low"] == row["ci_high"] == pytest.approx(0.1)


def test_a_seed_missing_for_one_arm_is_left_out_with_a_warning():
    partial = SEEDS[~((SEEDS["arm"] == "efficientnet_b7") & (SEEDS["seed"] == 4))]
    with pytest.warns(DegenerateInputWarning, match=r"seed\(s\) \[4\]"):
        row = verdict.paired_seed_summary(partial, [("pd_b7", "efficientnet_b7")]).iloc[0]
    assert row["n"] == 4


def test_one_seed_gives_nan_spread_with_a_warning():
    long = pd.DataFrame({"arm": ["a", "b"], "seed": [0, 0], "auc": [0.8, 0.7]})
    with pytest.warns(DegenerateInputWarning, match="one seed"):
        row = verdict.paired_seed_summary(long, [("a", "b")]).iloc[0]
    assert row["mean"] == pytest.approx(0.1) and np.isnan(row["std"]) and np.isnan(row["ci_low"])


def test_bad_seed_tables_name_the_arm_and_seed():
    twice = pd.concat([SEEDS, SEEDS.iloc[[2]]])
    with pytest.raises(ValueError, match=r"arm 'pd_b7', seed 2 appears more than once"):
        verdict.seed_summary(twice)
    broken = SEEDS.assign(auc=SEEDS["auc"].astype(object))
    broken.loc[6, "auc"] = "n/a"
    with pytest.raises(ValueError, match=r"arm 'efficientnet_b7', seed 1: 'auc' must be a finite number"):
        verdict.seed_summary(broken)
    with pytest.raises(ValueError, match=r"arm 'pd_b3' of pair"):
        verdict.paired_seed_differences(SEEDS, [("pd_b7", "pd_b3")])
    with pytest.raises(ValueError, match="lacks column"):
        verdict.seed_summary(SEEDS.drop(columns="seed"))


# --------------------------------------------------------------------------- the design under simulation


def test_exchangeable_arms_rank_half_the_time_and_delong_keeps_its_level():
    y, a, b = _exchangeable()
    r = verdict.simulate_design(y, a, b, n_simulations=2000, seed=1)
    assert r.difference == 0.0
    assert r.p_ranked_as_paper + r.p_tied / 2 == pytest.approx(0.5, abs=0.04)
    assert 0.02 <= r.p_significant <= 0.09
    assert r.p_significant_as_paper <= r.p_significant


def test_well_separated_arms_are_always_ranked_and_always_significant():
    rng = np.random.default_rng(5)
    y = np.repeat([0, 1], 300)
    a = y + rng.uniform(0, 0.9, size=y.size)  # AUC 1
    b = rng.normal(size=y.size)  # AUC about 0.5
    r = verdict.simulate_design(y, a, b, n_simulations=500)
    assert r.auc_a == 1.0
    assert r.p_ranked_as_paper == 1.0
    assert r.p_significant_as_paper >= 0.98


def test_drawing_the_whole_set_reproduces_the_full_set_delong_test():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 14)
    a, b = y * 1.5 + rng.normal(size=28), y * 0.3 + rng.normal(size=28)
    full = stats.delong_test(y, a, b)
    r = verdict.simulate_design(y, a, b, n_simulations=20)
    assert r.draws["auc_a"].eq(full.auc_a).all()  # the same patients in another order
    assert r.draws["p_value"].to_numpy() == pytest.approx(np.full(20, full.p_value), rel=1e-9)
    assert r.p_ranked_as_paper == float(full.auc_a > full.auc_b)
    assert r.p_significant == float(full.p_value < 0.05)


def test_apparent_rule_is_optimistic_for_a_random_score_and_not_for_a_perfect_one():
    rng = np.random.default_rng(11)
    y = np.repeat([0, 1], 500)
    noise = rng.normal(size=y.size)
    perfect = y + rng.uniform(0, 0.5, size=y.size)
    r = verdict.simulate_design(y, noise, perfect, n_simulations=1000, threshold_a=float(np.median(noise)),
                                threshold_b=1.0, arms=("random", "perfect"))
    opt = r.optimism.set_index("arm")
    assert opt.loc["random", "fixed_mean"] == pytest.approx(0.5, abs=0.02)
    assert opt.loc["random", "external_accuracy"] == pytest.approx(0.5, abs=0.03)
    # Youden's index on 14 + 14 random scores finds about 60% accuracy where there is none
    assert opt.loc["random", "apparent_mean"] == pytest.approx(0.60, abs=0.02)
    assert opt.loc["random", "mean"] > 0.07 and opt.loc["random", "p_positive"] > 0.85
    # on balanced draws Youden's threshold maximises accuracy, so no fixed threshold beats it
    assert (r.draws["optimism_random"] >= 0).all()
    assert opt.loc["perfect", "mean"] == 0.0 and opt.loc["perfect", "external_accuracy"] == 1.0
    assert r.draws["optimism_random"].equals(r.draws["apparent_random"] - r.draws["fixed_random"])
    assert r.summary()["optimism_mean_random"] == opt.loc["random", "mean"]


def test_simulation_is_reproducible_from_its_seed():
    y, a, b = _external(effect_b=0.8)
    first = verdict.simulate_design(y, a, b, n_simulations=50, seed=4, threshold_a=0.6)
    again = verdict.simulate_design(y, a, b, n_simulations=50, seed=4, threshold_a=0.6)
    other = verdict.simulate_design(y, a, b, n_simulations=50, seed=5, threshold_a=0.6)
    pd.testing.assert_frame_equal(first.draws, again.draws)
    assert not first.draws.equals(other.draws)


def test_simulation_rejects_bad_input():
    y, a, b = _external(n_neg=10, n_pos=10)
    with pytest.raises(ValueError, match="10 positive and 10 negative.*cannot draw 14"):
        verdict.simulate_design(y, a, b)
    verdict.simulate_design(y, a, b, replace=True, n_simulations=5)  # with replacement it can
    with pytest.raises(ValueError, match="score_b has 19 values"):
        verdict.simulate_design(y, a, b[:-1])
    with pytest.raises(ValueError, match="threshold_a must be a finite score"):
        verdict.simulate_design(y, a, b, n_per_class=5, threshold_a=float("nan"))
    with pytest.raises(ValueError, match="n_simulations"):
        verdict.simulate_design(y, a, b, n_per_class=5, n_simulations=0)


# --------------------------------------------------------------------------- power


@pytest.mark.parametrize("n_neg,n_pos", [(400, 400), (900, 300)])
def test_variance_components_reproduce_the_delong_variance_of_pdlib_stats(n_neg, n_pos):
    y, a, b = _external(n_neg=n_neg, n_pos=n_pos, effect_a=1.0, effect_b=0.6)
    b = np.round(b, 1)  # ties
    s10, s01 = verdict._difference_variance_components(y, a, b)
    assert s10 / n_pos + s01 / n_neg == pytest.approx(stats.delong_test(y, a, b).variance, rel=1e-10)


def test_required_size_falls_as_the_effect_grows():
    sizes = []
    for effect_b in (1.1, 0.9, 0.6):
        y, a, b = _external(effect_a=1.2, effect_b=effect_b)
        sizes.append(verdict.power_sample_size(y, a, b).n_per_class)
    assert sizes[0] > sizes[1] > sizes[2] > 14


def test_closed_form_size_gives_80_percent_power_in_simulation():
    y, a, b = _external(effect_a=1.2, effect_b=0.7)
    formula = verdict.power_sample_size(y, a, b)
    k = int(formula.n_per_class)
    curve = formula.curve.set_index("n_per_class")["power"]
    assert curve.is_monotonic_increasing
    simulated = verdict.power_sample_size(y, a, b, method="simulation", grid=[k], n_simulations=400, seed=2)
    assert simulated.curve["power"].iloc[0] == pytest.approx(0.8, abs=0.07)
    assert simulated.difference == pytest.approx(formula.difference)


def test_simulated_size_is_the_first_grid_size_reaching_the_target():
    y, a, b = _external(effect_a=1.2, effect_b=0.7)
    r = verdict.power_sample_size(y, a, b, method="simulation", grid=[10, 40, 400], n_simulations=200)
    assert r.curve["power"].iloc[0] < 0.8 <= r.curve["power"].iloc[2]
    assert r.n_per_class == next(k for k, p in zip(r.curve["n_per_class"], r.curve["power"]) if p >= 0.8)


def test_power_degenerate_cases_warn():
    y, a, b = _exchangeable()
    with pytest.warns(DegenerateInputWarning, match="equal AUCs"):
        assert verdict.power_sample_size(y, a, b).n_per_class == float("inf")
    y, a, b = _external(effect_a=1.2, effect_b=1.1)
    with pytest.warns(DegenerateInputWarning, match="no grid size up to 20"):
        r = verdict.power_sample_size(y, a, b, method="simulation", grid=[20], n_simulations=50)
    assert np.isnan(r.n_per_class)
    with pytest.raises(ValueError, match="power must lie"):
        verdict.power_sample_size(y, a, b, power=0.01)
    with pytest.raises(ValueError, match="method must be"):
        verdict.power_sample_size(y, a, b, method="bootstrap")


# --------------------------------------------------------------------------- the claims file


@pytest.fixture(scope="module")
def claims():
    return verdict.load_claims()


def test_claims_file_names_only_real_arms_and_covers_the_issue_list(claims):
    assert verdict.check_claim_arms(claims, ARMS) == []
    ids = {c.id for c in claims}
    assert len(ids) == len(claims) >= 10
    required = {
        "pd_b7_beats_baseline_b7", "pd_b7_beats_kd_b7", "kd_same_size_improves_b7", "kd_b7_b3_student_beats_teacher",
        "noise_helps_b7", "noise_hurts_b3", "iterations_help_b7", "second_iteration_beats_third_b7",
        "pd_b0_b3_b7_matches_pd_b7", "pd_b0_b3_b7_half_time", "pd_at_least_clinicians_mean", "headline_auc",
        "headline_accuracy",
    }
    assert required <= ids
    headline = next(c for c in claims if c.id == "headline_auc")
    assert (headline.arms, headline.paper_value) == (("pd_b7",), 0.87)
    gain = next(c for c in claims if c.id == "pd_b7_beats_baseline_b7")
    assert gain.paper_value == pytest.approx(0.13) and gain.compared == "pd_b7 vs efficientnet_b7"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@pytest.mark.skipif(not PAPER.exists(), reason="the paper's text is not in this checkout")
def test_claim_statements_are_our_own_words(claims):
    paper = " ".join(_words(PAPER.read_text(encoding="utf-8")))
    for c in claims:
        words = _words(c.statement)
        for i in range(len(words) - 7):
            assert " ".join(words[i:i + 8]) not in paper, f"claim {c.id!r} copies the paper: {' '.join(words[i:i + 8])!r}"


def _write_claims(tmp_path, entries) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": entries}), encoding="utf-8")
    return path


GOOD = {"id": "x", "statement": "s", "where": "w", "evidence": "e", "comparison": "superior", "metric": "auc",
        "arms": ["pd_b7", "efficientnet_b7"], "paper": {"a": 0.87, "b": 0.74}}


@pytest.mark.parametrize("change,message", [
    ({"arms": ["pd_b7", "efficientnet_b9"]}, r"claim 'x': arm 'efficientnet_b9' is not an arm"),
    ({"comparison": "better"}, r"claim 'x': comparison must be one of"),
    ({"metric": "f1"}, r"claim 'x': metric must be one of"),
    ({"arms": ["pd_b7"]}, r"claim 'x': a 'superior' claim compares 2 side"),
    ({"comparison": "value", "paper": {}}, r"claim 'x': a 'value' claim compares 1 side"),
    ({"comparison": "value", "arms": ["pd_b7"], "paper": {}}, r"claim 'x': a 'value' claim needs the paper's value"),
    ({"versus": "C99", "arms": ["pd_b7"]}, r"claim 'x': versus must be one of"),
    ({"statement": ""}, r"claim 'x': lacks 'statement'"),
    ({"colour": "red"}, r"claim 'x': unknown key"),
    ({"id": "Bad Id"}, r"id must be lower_snake_case"),
])
def test_malformed_claims_are_rejected_naming_file_and_claim(tmp_path, change, message):
    path = _write_claims(tmp_path, [{**GOOD, **change}])
    with pytest.raises(ValueError, match=message) as err:
        verdict.load_claims(path, arms=ARMS)
    assert str(path) in str(err.value)


def test_repeated_claim_ids_and_missing_files_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="'x' appears more than once"):
        verdict.load_claims(_write_claims(tmp_path, [GOOD, GOOD]), arms=ARMS)
    with pytest.raises(ValueError, match="claims file not found"):
        verdict.load_claims(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- the scorecard rule

SUP = Claim("sup", "a beats b", "Results", "Table 2", "superior", "auc", ("a", "b"), paper_a=0.87, paper_b=0.74)
NONINF = Claim("ni", "a as good as b", "Results", "Table 2", "non_inferior", "auc", ("a", "b"), paper_a=0.84, paper_b=0.87)
NONINF_M = Claim("ni10", "a as good as b", "Results", "Table 2", "non_inferior", "auc", ("a", "b"), margin=0.10)
VALUE = Claim("val", "a reaches 0.87", "Abstract", "Table 2", "value", "auc", ("a",), paper_a=0.87)
ATMOST = Claim("half", "half the time", "Results", "text", "at_most", "train_time_ratio", ("a", "b"), bound=0.5)


@pytest.mark.parametrize("claim,interval,expected", [
    (SUP, (0.05, 0.02, 0.08), "supported"),
    (SUP, (-0.05, -0.08, -0.02), "contradicted"),
    (SUP, (0.05, -0.02, 0.12), "not decidable"),
    (SUP, (0.03, 0.0, 0.06), "not decidable"),  # touching 0 does not exclude it
    (NONINF, (0.0, -0.04, 0.04), "supported"),
    (NONINF, (-0.15, -0.2, -0.1), "contradicted"),
    (NONINF, (-0.03, -0.08, 0.02), "not decidable"),
    (NONINF_M, (-0.03, -0.08, 0.02), "supported"),  # the claim's own margin
    (VALUE, (0.85, 0.82, 0.88), "supported"),
    (VALUE, (0.75, 0.72, 0.78), "contradicted"),
    (VALUE, (0.80, 0.65, 0.95), "not decidable"),  # inside, but +-0.15
    (VALUE, (0.60, 0.45, 0.75), "contradicted"),  # a wide interval can still exclude the paper's value
    (ATMOST, (0.45, 0.40, 0.50), "supported"),
    (ATMOST, (0.70, 0.60, 0.80), "contradicted"),
    (ATMOST, (0.50, 0.40, 0.60), "not decidable"),
    (SUP, (0.05, float("nan"), float("nan")), "not decidable"),
    (SUP, (float("nan"), float("nan"), float("nan")), "not estimated"),
])
def test_scorecard_rule_on_every_branch(claim, interval, expected):
    est, low, high = interval
    estimates = pd.DataFrame({"claim": [claim.id], "source": ["external"], "estimate": [est], "ci_low": [low],
                              "ci_high": [high]})
    row = verdict.scorecard([claim], estimates).iloc[0]
    assert row["verdict"] == expected
    assert row["verdict"] in verdict.VERDICTS and row["reason"]


def test_scorecard_lists_every_claim_and_every_source_in_order():
    estimates = pd.DataFrame({
        "claim": ["val", "sup", "sup"],
        "source": ["test (14+14)", "test (14+14)", "external (n=2000)"],
        "estimate": [0.80, 0.10, 0.04],
        "ci_low": [0.64, -0.08, 0.02],
        "ci_high": [0.96, 0.28, 0.06],
    })
    card = verdict.scorecard([SUP, VALUE, ATMOST], estimates)
    assert card[["claim", "source", "verdict"]].values.tolist() == [
        ["sup", "test (14+14)", "not decidable"],
        ["sup", "external (n=2000)", "supported"],
        ["val", "test (14+14)", "not decidable"],
        ["half", "", "not estimated"],
    ]
    # the paper's 0.13 gain: inside the 28-patient interval, outside the external one
    assert card["paper_in_ci"].tolist()[:3] == [True, False, True]
    assert card.loc[0, "paper_value"] == pytest.approx(0.13)


@pytest.mark.parametrize("rows,message", [
    ({"claim": ["nope"], "estimate": [0.1], "ci_low": [0.0], "ci_high": [0.2]}, "claim 'nope'.*no such claim"),
    ({"claim": ["sup"], "estimate": [0.3], "ci_low": [0.0], "ci_high": [0.2]}, "estimate 0.3 lies outside"),
    ({"claim": ["sup"], "estimate": [0.1], "ci_low": [0.2], "ci_high": [0.0]}, "exceeds ci_high"),
    ({"claim": ["sup", "sup"], "estimate": [0.1, 0.1], "ci_low": [0.0, 0.0], "ci_high": [0.2, 0.2]},
     "more than one estimate from 'external'"),
])
def test_bad_estimates_are_rejected_naming_the_claim(rows, message):
    estimates = pd.DataFrame({"source": "external", **rows})
    with pytest.raises(ValueError, match=message):
        verdict.scorecard([SUP], estimates)


# --------------------------------------------------------------------------- estimates from scores and seeds


def test_claim_estimates_use_the_delong_difference_and_fixed_thresholds(claims):
    y, pd_b7, base = _external(n_neg=200, n_pos=200, effect_a=1.5, effect_b=0.5)
    scores = {"pd_b7": pd_b7, "efficientnet_b7": base}
    est = verdict.claim_estimates(claims, y, scores, source="external", thresholds={"pd_b7": 0.75})
    est = est.set_index("claim")
    test = stats.delong_test(y, pd_b7, base)
    half = 1.959963984540054 * np.sqrt(test.variance)
    assert est.loc["pd_b7_beats_baseline_b7", "estimate"] == pytest.approx(test.difference)
    assert est.loc["pd_b7_beats_baseline_b7", ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [test.difference - half, test.difference + half])
    assert est.loc["headline_auc", "estimate"] == pytest.approx(stats.roc_auc(y, pd_b7))
    accuracy = float(((pd_b7 >= 0.75).astype(int) == y).mean())
    assert est.loc["headline_accuracy", "estimate"] == pytest.approx(accuracy)
    # training-set and reader claims are not estimated from these patients
    assert "headline_train_auc" not in est.index and "pd_at_least_clinicians_mean" not in est.index
    card = verdict.scorecard(claims, est.reset_index()).set_index("claim")
    assert card.loc["pd_b7_beats_baseline_b7", "verdict"] == "supported"
    assert card.loc["pd_b7_beats_kd_b7", "verdict"] == "not estimated"


def test_seed_claim_estimates_are_the_paired_means(claims):
    est = verdict.seed_claim_estimates(claims, SEEDS, source="seeds (5)").set_index("claim")
    summary = verdict.paired_seed_summary(SEEDS, [("pd_b7", "efficientnet_b7")]).iloc[0]
    assert set(est.index) == {"pd_b7_beats_baseline_b7", "pd_b7_beats_kd_b7", "kd_same_size_improves_b7"}
    assert est.loc["pd_b7_beats_baseline_b7", "estimate"] == pytest.approx(summary["mean"])
    assert est.loc["pd_b7_beats_baseline_b7", "ci_low"] == pytest.approx(summary["ci_low"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        card = verdict.scorecard(claims, est.reset_index())
    assert set(card["verdict"]) <= set(verdict.VERDICTS)


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(verdict, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 6 and result.failed == 0


def test_reader_claims_compare_accuracy_on_the_same_patients(claims):
    rng = np.random.default_rng(8)
    y = np.repeat([0, 1], 14)
    score = y * 2.0 + rng.normal(size=28)
    calls = {"C3": y.copy(), "C20": y.copy(), "C40": y.copy()}
    calls["C20"][[0, 15, 16, 20]] ^= 1
    calls["C40"][[1, 2, 3, 17, 18, 19, 21, 22, 23, 24]] ^= 1
    est = verdict.reader_claim_estimates(claims, y, {"pd_b7": score}, calls, thresholds={"pd_b7": 1.0},
                                         source="test (14+14)").set_index("claim")
    assert set(est.index) == {"pd_at_least_clinicians_mean", "pd_beats_clinicians_mean", "pd_beats_clinician_c40",
                              "pd_at_least_clinician_c20"}
    # the same accuracies as pdlib.stats.reader_comparison
    ids = [f"p{i:02d}" for i in range(28)]
    predictions = pd.DataFrame({"patient_id": ids, "split": "test", "label": y, "score": score})
    long = pd.DataFrame([{"patient_id": p, "reader": r, "call": "PR" if c[i] else "GR"}
                         for r, c in calls.items() for i, p in enumerate(ids)])
    table = stats.reader_comparison(predictions, long, threshold=1.0).set_index("reader")["accuracy"]
    assert est.loc["pd_beats_clinician_c40", "estimate"] == pytest.approx(table["model"] - table["C40"])
    assert est.loc["pd_at_least_clinician_c20", "estimate"] == pytest.approx(table["model"] - table["C20"])
    mean_readers = table[["C3", "C20", "C40"]].mean()
    assert est.loc["pd_at_least_clinicians_mean", "estimate"] == pytest.approx(table["model"] - mean_readers)
    assert (est["ci_low"] <= est["estimate"]).all() and (est["estimate"] <= est["ci_high"]).all()
    with pytest.raises(ValueError, match="reader 'C3' has 27 calls"):
        verdict.reader_claim_estimates(claims, y, {"pd_b7": score}, {"C3": y[:-1]}, thresholds={"pd_b7": 1.0},
                                       source="t")
