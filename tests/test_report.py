"""Chapter tables and generated sentences (pdlib.report) on tiny run folders written here.

The run folders hold what the pipeline writes for a member
(``patient_predictions.csv``, ``metrics.csv``, ``config.json``) for the
members b7, b7--b7, b7--b7mn and b7--b7mn--b7mn: the arms efficientnet_b7,
kd_b7, pd_b7, the B7 ablation rows and the B7 iteration curve of Fig. 6.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import _write_manifest

from pdlib import paper, report, stats, verdict
from pdlib.arms import ARMS
from pdlib.manifest import load_manifest

#: Members written by :func:`run`, with the strength of their planted signal.
SIGNAL = {"b7": 0.0, "b7--b7": 0.7, "b7--b7mn": 1.0, "b7--b7mn--b7mn": 1.5}
N_TRAIN, N_TEST = 12, 10
RECIST = {"GR": ("CR", "PR"), "PR": ("SD", "PD")}


def _patients() -> list[dict]:
    rows = []
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        for i in range(n):
            response = ("GR", "PR")[i % 2]
            rows.append({"patient_id": f"{split[:2].upper()}{i:02d}", "split": split, "response": response,
                         "recist": RECIST[response][(i // 2) % 2], "age": str(50 + i),
                         "sex": "FM"[i % 2]})
    return rows


def _write_member(folder, patients: list[dict], *, signal: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    labels = np.array([p["response"] == "PR" for p in patients], dtype=int)
    scores = 1 / (1 + np.exp(-(signal * (labels - 0.5) + rng.normal(size=len(labels)))))
    pd.DataFrame({"patient_id": [p["patient_id"] for p in patients], "split": [p["split"] for p in patients],
                  "recist": [p["recist"] for p in patients], "label": labels, "score": scores}).to_csv(
        folder / "patient_predictions.csv", index=False)
    pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.7, 0.6, 0.5], "train_accuracy": [0.5, 0.6, 0.7],
                  "lr": [1e-3, 5e-4, 0.0]}).to_csv(folder / "metrics.csv", index=False)
    (folder / "config.json").write_text(json.dumps({
        "train_config": {"epochs": 3}, "data": {"n_train_patients": N_TRAIN, "n_test_patients": N_TEST}}))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """A manifest with reader calls and the run folders of seeds 0 and 1."""
    base = tmp_path_factory.mktemp("report")
    patients = _patients()
    test = [p for p in patients if p["split"] == "test"]
    readers = [{"patient_id": p["patient_id"], "reader": reader,
                "call": p["response"] if (i + k) % 4 else ("GR" if p["response"] == "PR" else "PR")}
               for k, reader in enumerate(("C3", "C20")) for i, p in enumerate(test)]
    manifest_dir = _write_manifest(base / "manifest", patients, readers=readers, name="tiny cohort")
    for seed in (0, 1):
        for n, (key, signal) in enumerate(SIGNAL.items()):
            _write_member(base / "results" / f"seed{seed}" / key, patients, signal=signal, seed=10 * seed + n)
    (base / "twin").mkdir()
    (base / "twin" / "twin.json").write_text(json.dumps({
        "oracle_auc": {"all": 0.9, "train": 0.91, "test": 0.934}, "expected_oracle_auc": 0.92,
        "parameters": {"signal_strength": 3.0, "seed": 7}}))
    return {"results": base / "results", "manifest_dir": manifest_dir, "twin": base / "twin",
            "manifest": load_manifest(manifest_dir, check_files=False)}


# --------------------------------------------------------------------------- predictions and metrics


def test_arm_predictions_read_the_final_member_and_name_a_missing_run(run, tmp_path):
    table = report.arm_predictions(run["results"], "pd_b7", seed=0)
    written = pd.read_csv(run["results"] / "seed0" / "b7--b7mn--b7mn" / "patient_predictions.csv",
                          dtype={"patient_id": str})
    pd.testing.assert_frame_equal(table.drop(columns="oof_score"), written)
    assert table["oof_score"].isna().all()
    with pytest.raises(FileNotFoundError, match=r"arm kd_b3 \(seed 0\): no predictions in .*b3--b3"):
        report.arm_predictions(run["results"], "kd_b3", seed=0)
    # out-of-fold scores are joined by patient
    folder = tmp_path / "seed0" / "b7"
    folder.mkdir(parents=True)
    written.to_csv(folder / "patient_predictions.csv", index=False)
    train = written[written["split"] == "train"]
    train.assign(score=0.25)[["patient_id", "score"]].to_csv(folder / "oof_predictions.csv", index=False)
    oof = report.arm_predictions(tmp_path, "efficientnet_b7", seed=0)
    assert (oof.loc[oof["split"] == "train", "oof_score"] == 0.25).all()
    assert oof.loc[oof["split"] == "test", "oof_score"].isna().all()


def test_metrics_long_stacks_each_arms_performance_table(run):
    long = report.metrics_long(run["results"], ["efficientnet_b7", "pd_b7"], seeds=[0, 1])
    assert len(long) == 2 * 2 * 4
    for (arm, seed), part in long.groupby(["arm", "seed"], sort=False):
        predictions = report.arm_predictions(run["results"], arm, seed=seed).drop(columns="oof_score")
        expected = stats.performance_table(predictions)
        pd.testing.assert_frame_equal(part.drop(columns=["arm", "label", "seed"]).reset_index(drop=True), expected)
        assert set(part["label"]) == {ARMS[arm].label}
    assert report.metrics_long(run["results"], [], seeds=[0]).empty


def test_metric_display_writes_estimates_with_intervals():
    long = pd.DataFrame([{"label": "M", "way": "apparent", "split": "test", "threshold": 0.4567,
                          "auc": 0.8123, "auc_ci_low": 0.6, "auc_ci_high": 0.95,
                          **{f"{m}{s}": v for m in ("accuracy", "sensitivity", "specificity")
                             for s, v in (("", 0.75), ("_ci_low", 0.5), ("_ci_high", 0.9))}},
                         {"label": "M", "way": "pre-specified", "split": "test", "threshold": float("nan"),
                          "auc": float("nan"), "auc_ci_low": float("nan"), "auc_ci_high": float("nan"),
                          **{f"{m}{s}": 0.5 for m in ("accuracy", "sensitivity", "specificity")
                             for s in ("", "_ci_low", "_ci_high")}}])
    shown = report.metric_display(long)
    assert shown.iloc[0].to_dict() == {"Model": "M", "Patients": "test",
                                       "Threshold rule": "apparent (Youden on these patients)",
                                       "Threshold": "0.457", "AUC (95% CI)": "0.81 (0.60–0.95)",
                                       "Accuracy (95% CI)": "75.0% (50.0–90.0)",
                                       "Sensitivity (95% CI)": "75.0% (50.0–90.0)",
                                       "Specificity (95% CI)": "75.0% (50.0–90.0)"}
    assert (shown.iloc[1]["Threshold"], shown.iloc[1]["AUC (95% CI)"]) == ("n/a", "n/a")
    assert shown.iloc[1]["Threshold rule"] == "pre-specified"
    long["threshold_source"] = ["youden_test", "youden_train_oof"]
    assert report.metric_display(long).iloc[1]["Threshold rule"] == "pre-specified: out-of-fold"
    html = report.people_table(shown).to_html()
    assert "row_heading" not in html and "Threshold rule" in html  # no index column


def test_beside_paper_pairs_each_row_with_its_printed_values(run):
    long = report.metrics_long(run["results"], ["efficientnet_b7", "pd_b7"], seeds=[0])
    table = report.beside_paper(long, "Table 2")
    assert len(table) == 4 and list(table.columns[:4]) == ["model", "set", "auc (run)", "auc (paper)"]
    row = table[(table["model"] == ARMS["pd_b7"].label) & (table["set"] == "test")].iloc[0]
    assert (row["auc (paper)"], row["accuracy (paper)"]) == (0.87, pytest.approx(0.8571))
    assert row["auc (run)"] == report.metric_row(long, "pd_b7")["auc"]
    # an arm the paper does not print keeps NaN
    iteration = report.metrics_long(run["results"], ["pd_b7_iter1"], seeds=[0])
    assert report.beside_paper(iteration, "Table 2")["auc (paper)"].isna().all()


def test_chance_tests_use_each_arms_test_predictions(run):
    arms = ["efficientnet_b7", "kd_b7", "pd_b7"]
    table = report.chance_tests(run["results"], arms, seed=0)
    assert list(table["arm"]) == arms
    for row in table.itertuples():
        p = report.split_predictions(run["results"], row.arm, seed=0)
        assert row.auc == pytest.approx(stats.roc_auc(p["label"], p["score"]))
        assert row.p_value == pytest.approx(stats.auc_vs_chance(p["label"], p["score"]))
    np.testing.assert_allclose(table["p_holm"], stats.holm_adjust(table["p_value"].to_numpy()))


# --------------------------------------------------------------------------- sentences


def test_learning_statement_is_written_from_the_numbers(tmp_path):
    rows = []
    for label, test_auc, low, train_auc in (("A", 0.81, 0.62, 0.95), ("B", 0.55, 0.33, 0.60)):
        rows.append({"label": label, "way": "apparent", "split": "test", "auc": test_auc, "auc_ci_low": low,
                     "auc_ci_high": min(1.0, test_auc + 0.2)})
        rows.append({"label": label, "way": "apparent", "split": "train", "auc": train_auc, "auc_ci_low": 0.5,
                     "auc_ci_high": 1.0})
    long = pd.DataFrame(rows)
    chance = pd.DataFrame({"arm": ["a", "b"], "label": ["A", "B"], "auc": [0.81, 0.55],
                           "p_value": [0.004, 0.6], "p_holm": [0.008, 0.6]})
    (tmp_path / "twin.json").write_text(json.dumps({"oracle_auc": {"test": 0.934}}))
    text = report.learning_statement(long, chance=chance, twin_dir=tmp_path)
    assert "Of the 2 models here, 1 have a test AUC whose 95% CI lies entirely above 0.5" in text
    assert "The highest test AUC, 0.81 (A), has a 95% CI of 0.62 to 1.00, which excludes 0.5." in text
    assert "1 of 2 differ from chance at the 5% level" in text and "after Holm's correction for the 2 tests, 1 does" in text
    assert "training AUCs range from 0.60 to 0.95." in text
    assert text.endswith("is 0.93.")
    weak = long.assign(auc=lambda f: np.where(f["split"] == "train", 0.6, f["auc"]))
    assert "did not even fit their own training patients" in report.learning_statement(weak)
    assert report.learning_statement(long.iloc[:0]) == ""


def test_chapter_learning_statement_tests_the_chapters_arms(run):
    long = report.metrics_long(run["results"], ["efficientnet_b7", "pd_b7"], seeds=[0])
    chance = report.chance_tests(run["results"], ["efficientnet_b7", "pd_b7"], seed=0)
    assert report.chapter_learning_statement(run["results"], long, seed=0, twin_dir=run["twin"]) == \
        report.learning_statement(long, chance=chance, twin_dir=run["twin"])
    assert report.chapter_learning_statement(run["results"], long.iloc[:0], seed=0) == report.NO_ARM_TEXT


def test_run_statement_names_configuration_profile_and_cohort(run):
    text = report.run_statement(config_name="demo", profile="smoke", manifest_dir=run["manifest_dir"], seeds=[0, 1],
                                overrides={"epochs": 2})
    assert text.startswith("The numbers on this page were produced by the study configuration **demo** "
                           "(training profile **smoke** with `epochs=2`, seeds 0, 1) on the cohort **tiny cohort** "
                           f"({N_TRAIN} training and {N_TEST} test patients), with pdlib ")


# --------------------------------------------------------------------------- the cohort


def test_cohort_table1_counts_the_manifest():
    patients = pd.DataFrame({
        "split": ["train", "train", "train", "test"], "response": ["GR", "GR", "PR", "PR"],
        "age": [60, 70, 50, 80], "sex": ["F", "M", "M", "M"],
        "lauren": ["intestinal", "diffuse_mixed", "undifferentiated", "intestinal"],
        "cea": ["normal", "elevated", "normal", "normal"], "ca199": ["normal"] * 4,
        "ct_stage": ["T3", "T4a", "T4b", "T3"], "cn_stage": ["N0-N1"] * 4, "cm_stage": ["M0", "M1", "M0", "M0"],
    })
    table = report.cohort_table1(patients)
    assert table.loc[("Age, years", ""), "train_GR"] == "65.0(60–70)"
    assert table.loc[("Sex", "Female"), "train_GR"] == "1(50.00%)"
    assert table.loc[("Clinical M stage", "M0"), "test_PR"] == "1(100.00%)"
    assert table.loc[("Sex", "Male"), "test_GR"] == ""  # empty group
    assert list(paper.table1().index) == list(table.index)
    both = report.table1_beside_paper(patients)
    assert list(dict.fromkeys(both.columns.get_level_values(0))) == ["this cohort", "Han et al. 2025 (as printed)"]
    assert both[("Han et al. 2025 (as printed)", "test_PR")][("Sex", "Male")] == "1(92.9%)"


def test_cohort_counts_corrections_and_oracle(run, tmp_path):
    assert report.cohort_counts(run["manifest"]) == {"cohort_name": "tiny cohort", "n_patients": N_TRAIN + N_TEST,
                                                     "n_train": N_TRAIN, "n_test": N_TEST}
    assert report.oracle_statement(run["twin"]).startswith(
        "This cohort is a digital twin generated with signal strength 3 (seed 7). Its oracle AUC is 0.900 over all "
        "patients, 0.910 on the training set and 0.934 on the test set (expected 0.920")
    assert "not a digital twin" in report.oracle_statement(None)
    assert "not a digital twin" in report.oracle_statement(tmp_path)


def test_slice_predictions_are_the_final_members(run, tmp_path):
    folder = run["results"] / "seed1" / "b7--b7"
    pd.DataFrame({"patient_id": ["TE00", "TE00"], "slice_index": [0, 1], "prob": [0.2, 0.7]}).to_csv(
        folder / "slice_predictions.csv", index=False)
    table = report.slice_predictions(run["results"], "kd_b7", seed=1)
    assert list(table["prob"]) == [0.2, 0.7] and table["patient_id"].dtype == object


def test_training_history_is_the_members_metrics(run):
    history = report.training_history(run["results"], "efficientnet_b7", seed=0)
    assert list(history["epoch"]) == [1, 2, 3]
    with pytest.raises(FileNotFoundError, match="arm hybrid"):
        report.training_history(run["results"], "hybrid", seed=0)


# --------------------------------------------------------------------------- KD, PD, ablation


def test_kd_pairs_set_each_student_beside_its_teacher(run):
    pairs = report.kd_pairs(run["results"], ["kd_b7"], seed=0)
    assert list(pairs["role"]) == ["teacher", "student"]
    assert list(pairs["model"]) == [ARMS["efficientnet_b7"].label, ARMS["kd_b7"].label]
    long = report.metrics_long(run["results"], ["efficientnet_b7", "kd_b7"], seeds=[0])
    assert list(pairs["test AUC"]) == [report.metric_row(long, "efficientnet_b7")["auc"],
                                       report.metric_row(long, "kd_b7")["auc"]]
    better = int(pairs["test AUC"].iloc[1] > pairs["test AUC"].iloc[0])
    assert report.students_better(pairs) == better
    assert report.students_better(report.kd_pairs(run["results"], [], seed=0)) == 0


def test_iteration_points_follow_the_chain(run):
    arms = [f"pd_b7_iter{i}" for i in range(3)]
    points = report.iteration_points(run["results"], arms, seed=0)
    assert list(points.columns) == ["model", "iteration", "metric", "value", "ci_low", "ci_high", "paper"]
    assert set(points["model"]) == {"EfficientNet-B7"}
    auc = points[points["metric"] == "AUC"].set_index("iteration")
    for i, arm in enumerate(arms):
        row = report.metric_row(report.metrics_long(run["results"], [arm], seeds=[0]), arm)
        assert auc.loc[i, "value"] == row["auc"] and auc.loc[i, "ci_low"] == row["auc_ci_low"]
    # the paper's points are its Table 4 rows for the same chain: 0.74, 0.78, 0.87 for iterations 0 to 2
    assert auc["paper"].tolist() == [0.74, 0.78, 0.87]
    table = report.iteration_table(points)
    assert table["AUC, paper"].tolist() == ["0.74", "0.78", "0.87"] and "(" in table["AUC (95% CI)"].iloc[0]
    members = report.chain_members("pd_b0_b3_b7", profile="smoke")
    assert members["role"].tolist() == ["teacher", "student", "student"] and members["noise"].tolist() == [
        False, True, True]
    assert report.chain_members("compute_matched_b7", profile="smoke")["epochs"].tolist() == [6]  # 3 x 2 epochs


def test_ablation_steps_difference_each_step_from_the_one_before(run):
    arms = ["ablation_b7_base", "ablation_b7_kd", "ablation_b7_kd_mn", "ablation_b7_kd_mn_mi"]
    steps = report.ablation_steps(report.metrics_long(run["results"], arms, seeds=[0]))
    assert list(steps["step"]) == ["base", "+KD", "+KD +MN", "+KD +MN +MI"]
    assert set(steps["model"]) == {"EfficientNet-B7"}
    np.testing.assert_allclose(steps["change in AUC"].to_numpy()[1:], np.diff(steps["auc"].to_numpy()))
    assert np.isnan(steps["change in AUC"].iloc[0])
    assert report.ablation_steps(pd.DataFrame()).empty


# --------------------------------------------------------------------------- comparing arms


def test_best_arm_roc_decision_delong_and_calibration(run):
    arms, best = ["efficientnet_b7", "kd_b7", "pd_b7"], "pd_b7"
    long = report.metrics_long(run["results"], arms, seeds=[0])
    summary = report.best_arm_summary(long, best)
    assert summary.label == ARMS[best].label
    assert summary.accuracy_prespecified == pytest.approx(
        100 * report.metric_row(long, best, way="pre-specified")["accuracy"])
    curves = report.roc_curves(run["results"], arms, seed=0)
    assert list(dict.fromkeys(curves["model"])) == [ARMS[a].label for a in arms]
    test = report.split_predictions(run["results"], best, seed=0)
    assert len(test) == N_TEST and set(test["split"]) == {"test"}
    assert curves[curves["model"] == summary.label]["auc"].iloc[0] == pytest.approx(
        stats.roc_auc(test["label"], test["score"]))
    labels, scores = report.decision_scores(run["results"], arms, best_arm=best, seed=0)
    np.testing.assert_array_equal(labels, test["label"].to_numpy())
    assert list(scores) == [ARMS[a].label for a in arms]
    delong = report.delong_comparisons(run["results"], arms, best_arm=best, seed=0)
    assert list(delong["comparator"]) == [ARMS["efficientnet_b7"].label, ARMS["kd_b7"].label]
    other = report.split_predictions(run["results"], "kd_b7", seed=0)
    assert delong["p-value"].iloc[1] == pytest.approx(
        stats.delong_test(test["label"], test["score"], other["score"]).p_value)
    np.testing.assert_allclose(delong["Holm p-value"], stats.holm_adjust(delong["p-value"].to_numpy()))
    calibration = report.calibration_of(run["results"], best, seed=0)
    assert calibration.brier == pytest.approx(float(np.mean((test["score"] - test["label"]) ** 2)))
    confusion = report.recist_calls(run["results"], best, seed=0, threshold=summary.threshold)
    assert int(confusion.to_numpy().sum()) == N_TEST


def test_seed_spread_over_two_seeds_and_its_absence(run):
    spread, text = report.seed_spread(run["results"], ["efficientnet_b7"], seeds=[0, 1])
    assert text.startswith("The study trained every arm with 2 seeds (0, 1)") and len(spread)
    assert report.seed_spread(run["results"], ["efficientnet_b7"], seeds=[0])[0] is None


# --------------------------------------------------------------------------- clinicians, heat maps


def test_reader_comparison_against_the_pre_specified_threshold(run):
    comparison = report.reader_comparison(run["results"], run["manifest"], "pd_b7", seed=0)
    performance = report.arm_performance(run["results"], "pd_b7", seed=0).set_index(["way", "split"])
    assert comparison.threshold == performance.loc[("pre-specified", "test"), "threshold"]
    assert set(comparison.shown()["reader"]) == {"model", "C3", "C20"}
    assert comparison.statement.startswith(f"2 readers called {N_TEST} test patients. The model row uses "
                                           f"{ARMS['pd_b7'].label} at its pre-specified threshold")
    assert comparison.mcnemar_statement.endswith("of 2 clinicians differ from the model at the 5% level "
                                                 "(exact McNemar test on the discordant patients).")
    assert set(comparison.reader_points()["reader"]) == {"C3", "C20"}
    no_readers = run["manifest"].__class__(**{**run["manifest"].__dict__,
                                              "readers": run["manifest"].readers.iloc[:0]})
    empty = report.reader_comparison(run["results"], no_readers, "pd_b7", seed=0)
    assert empty.table is None and empty.shown() is None and "no reader calls" in empty.statement


def test_heat_map_statements():
    assert report.zero_maps_statement(0, 4) == "None of the 4 heat maps shown is zero everywhere."
    assert report.zero_maps_statement(1, 4).startswith("1 of the 4 heat maps shown are zero everywhere")
    mass = pd.DataFrame({"patient": ["a", "b"], "RECIST": ["CR", "PD"], "tumour slices": [2, 2],
                         "zero maps": [0, 1], "CAM mass inside": [0.5, 0.3], "chance": [0.1, 0.1]})
    text = report.attention_statement(mass)
    assert text.startswith("1 of the 4 heat maps of tumour slices (25%) are zero everywhere")
    assert "a mean 40.0% of the heat maps' mass falls inside the tumour mask, against 10.0%" in text
    assert "is concentrated on the tumour" in text
    undefined = report.attention_statement(mass.assign(**{"CAM mass inside": np.nan, "zero maps": 2}))
    assert "the share of their mass inside the tumour mask is undefined" in undefined
    assert "no tumour masks" in report.attention_statement(None)


# --------------------------------------------------------------------------- checklist, sweep


def test_checklist_answers_all_27_items_and_says_from_where(run):
    table = report.checklist(manifest=run["manifest"], results_dir=run["results"], arms=["kd_b7", "pd_b7"],
                             best_arm="pd_b7", seeds=[0], profile="smoke")
    assert table["Item"].tolist() == list(range(1, 28))  # numbered as TRIPOD+AI
    assert set(table["Answered from"]) == {report.FROM_RUN, report.FROM_BOOK, report.NOT_APPLICABLE}
    items = table.set_index("Topic")["This edition"]
    assert items["Participants"] == "Training: 6 GR, 6 PR; test: 5 GR, 5 PR (counts per response group)."
    assert items["Training versus evaluation"].startswith(
        f"0 patients in both splits; each model learned from {N_TRAIN} training patients and only scored the "
        f"{N_TEST} test patients")
    calibration = report.calibration_of(run["results"], "pd_b7", seed=0)
    performance = items["Model performance"]
    assert "AUC " in performance and f"Brier score {calibration.brier:.3f}" in performance
    # the threshold's source in words, never the internal code
    assert "youden_train" not in performance and "Youden's index on" in performance
    assert "{" not in "".join(table["This edition"])  # no Python dicts leak into the book
    text = report.checklist_statement(table)
    assert text.startswith("Of the 27 items of TRIPOD+AI, ") and "computed from this run" in text


def test_sweep_results_and_statements(run):
    assert report.sweep_results(None).empty and report.sweep_summary(report.sweep_results(None)) is None
    assert "runs no signal sweep" in report.sweep_statement(None)
    sweep = {"cohorts": [{"name": "s3", "signal": 3.0, "n_patients": 22, "twin": str(run["twin"]),
                          "results": str(run["results"])}], "arms": ["efficientnet_b7"], "seeds": [0, 1]}
    results = report.sweep_results(sweep)
    assert len(results) == 2 and set(results["oracle"]) == {0.934}
    summary = report.sweep_summary(results)
    assert summary["seeds"].iloc[0] == 2 and summary["test_auc"].iloc[0] == pytest.approx(results["value"].mean())
    assert report.sweep_statement(sweep) == ("The sweep trained 1 arm with 2 seeds on 1 twin (signal strengths "
                                             "3; cohort sizes 22).")


# --------------------------------------------------------------------------- model health and data quality


def _healthy(folder) -> None:
    """Training scores that separate the classes, test scores that mostly do."""
    table = pd.read_csv(folder / "patient_predictions.csv", dtype={"patient_id": str})
    noise = np.where(table["split"] == "train", 0.0, np.linspace(-0.3, 0.3, len(table)))
    table.assign(score=np.clip(0.25 + 0.5 * table["label"] + noise, 0, 1)).to_csv(
        folder / "patient_predictions.csv", index=False)


def test_health_statement_flags_failed_arms_and_lists_data_quality_notes(run, tmp_path):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(run["results"], results)
    for key in ("b7", "b7--b7mn--b7mn"):
        _healthy(results / "seed0" / key)
    arms = ["efficientnet_b7", "pd_b7"]
    text = report.health_statement(results, arms, seed=0)
    assert text.startswith("None of the 2 arms is flagged") and "no training run reported" in text
    # a constant model and a data-quality note, written as a member would
    folder = results / "seed0" / "b7"
    table = pd.read_csv(folder / "patient_predictions.csv", dtype={"patient_id": str}).assign(score=0.3)
    table.to_csv(folder / "patient_predictions.csv", index=False)
    note = "patient TE01 (test) has 7 slice(s), fewer than the 10 averaged into the patient score"
    (folder / "summary.json").write_text(json.dumps({"status": "complete", "data_quality": [note]}))
    health = report.arm_health(results, arms, seed=0)
    assert list(health["arm"]) == ["efficientnet_b7"] and health["flags"].iloc[0] == "constant scores"
    text = report.health_statement(results, arms, seed=0)
    assert text.startswith("1 arm is flagged") and f"{ARMS['efficientnet_b7'].label} (constant scores)" in text
    assert "Data quality: 1 note from the training runs" in text and f"- {note}" in text
    # pd_b7 shares the b7 member: its note is listed once
    assert report.data_quality_notes(results, arms, seed=0) == [note]
    assert report.health_statement(results, [], seed=0) == report.NO_ARM_TEXT


# --------------------------------------------------------------------------- the claims scorecard


def test_claims_scorecard_judges_the_claims_the_run_can_estimate(run):
    arms = ["efficientnet_b7", "kd_b7", "pd_b7"]
    card = report.claims_scorecard(run["results"], run["manifest"], arms, seed=0)
    by_claim = card.groupby("claim")
    # every claim of the paper has a row; claims on arms the run did not train are not estimated
    assert set(card["claim"]) == {c.id for c in verdict.load_claims()}
    assert set(card.loc[card["claim"] == "pd_b3_beats_kd_b3", "verdict"]) == {"not estimated"}
    # PD B7 against the baseline B7 on the test set: the DeLong difference of the two arms' scores
    row = card[(card["claim"] == "pd_b7_beats_baseline_b7") & (card["source"] == report.TEST_SOURCE)].iloc[0]
    test = {a: report.split_predictions(run["results"], a, seed=0, split="test") for a in ("pd_b7", "efficientnet_b7")}
    delta = stats.roc_auc(test["pd_b7"]["label"], test["pd_b7"]["score"]) - stats.roc_auc(
        test["efficientnet_b7"]["label"], test["efficientnet_b7"]["score"])
    assert row["estimate"] == pytest.approx(delta) and row["ci_low"] <= delta <= row["ci_high"]
    assert row["verdict"] in {"supported", "contradicted", "not decidable"}
    # the readers of readers.csv are compared on their patients
    assert (card.loc[card["claim"] == "pd_beats_clinicians_mean", "source"] == report.TEST_SOURCE).any()
    shown = report.scorecard_display(card)
    assert list(shown.columns) == ["Claim of the paper", "Where", "Paper's evidence", "Patients",
                                   "This run (95% CI)", "Verdict"]
    assert not any("_" in str(v) for v in shown["Verdict"])
    text = report.scorecard_statement(card, n_test=10)
    assert text.startswith(f"{card['claim'].nunique()} claims of the paper") and "With 10 test patients" in text
    assert by_claim.ngroups == card["claim"].nunique()


def test_reader_source_is_said_plainly_for_a_twin_and_for_a_cohort(run, tmp_path):
    twin = report.reader_source_statement(run["manifest"], run["twin"])
    assert twin.startswith("The calls of C3, C20 on this page were not made by clinicians")
    assert "10 test patients" in twin and "not the agreement or the skill of real clinicians" in twin
    cohort = report.reader_source_statement(run["manifest"], None)
    assert cohort.startswith("The calls are those of C3, C20 in the cohort manifest's `readers.csv`")
    assert report.reader_source_statement(run["manifest"], tmp_path) == cohort  # a folder that is no twin


def test_forest_rows_for_table_4_and_the_readers(run):
    arms = ["ablation_b7_base", "ablation_b7_kd", "ablation_b7_kd_mn", "ablation_b7_kd_mn_mi"]
    long = report.metrics_long(run["results"], arms, seeds=[0])
    rows = report.forest_table(long, "Table 4", by_model=True)
    assert rows["group"].tolist() == ["EfficientNet-B7"] * 4
    assert rows["paper"].tolist() == [0.74, 0.77, 0.78, 0.87]  # Table 4 as printed
    test = long[(long["way"] == "apparent") & (long["split"] == "test")]
    assert rows["estimate"].tolist() == test["auc"].tolist()
    comparison = report.reader_comparison(run["results"], run["manifest"], "pd_b7", seed=0)
    if comparison.table is not None:
        readers = report.reader_forest(comparison, "PD B7")
        assert readers["group"].iloc[0] == "Model" and set(readers["group"].iloc[1:]) == {"Clinicians"}
        assert (readers["ci_low"] <= readers["estimate"]).all() and (readers["estimate"] <= readers["ci_high"]).all()
