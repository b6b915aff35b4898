"""pdlib.audit: constructed cases with known answers, brute-force bounds, and the paper itself."""

from __future__ import annotations

import copy
import itertools

import pandas as pd
import pytest

from pdlib import audit, cli, paper
from pdlib.stats import roc_auc


# --- the arithmetic helpers --------------------------------------------------


def test_percent_counts_is_grim():
    assert audit.percent_counts("97.44", 39) == [38]
    assert audit.percent_counts("97.44", 73) == []
    assert audit.percent_counts("98.11", 112) == []  # 110/112 = 98.21, 109/112 = 97.32
    assert audit.percent_counts("100", 73) == [73]  # 72/73 = 98.6 is outside 99.5..100.5
    assert audit.percent_counts("50", 14) == [7]
    assert audit.percent_counts("7", 100) == [7]


def test_confusion_readings_enumerates_all_matrices():
    readings = audit.confusion_readings(n_pos=39, n_neg=73, acc="99.11", sen="97.44", spe="100")
    assert readings == [(38, 1, 73, 0)]
    # accuracy alone on a 14/14 set: 24/28 -> every split of 24 correct calls
    readings = audit.confusion_readings(n_pos=14, n_neg=14, acc="85.71")
    assert {tp + tn for tp, _, tn, _ in readings} == {24}
    assert len(readings) == 5  # tp from 10 to 14, tn = 24 - tp
    for tp, fn, tn, fp in readings:
        assert tp + fn == 14 and tn + fp == 14


def _empirical_curves(n_pos: int, n_neg: int):
    """Every tie-free ranking of n_pos positives among n_neg negatives."""
    n = n_pos + n_neg
    for positives in itertools.combinations(range(n), n_pos):
        y = [1 if i in positives else 0 for i in range(n)]
        yield y, list(range(n))  # score = rank


def test_auc_bounds_hold_for_every_small_roc_curve():
    trapezoid_fails = False
    for y, s in _empirical_curves(4, 5):
        auc = roc_auc(y, s)
        points = []
        for t in s:
            tp = sum(1 for yi, si in zip(y, s) if si >= t and yi == 1)
            tn = sum(1 for yi, si in zip(y, s) if si < t and yi == 0)
            points.append((tp / 4, tn / 5))
        best_j = max(se + sp - 1 for se, sp in points)
        for se, sp in points:
            youden = se + sp - 1 == best_j
            low, high = audit.auc_bounds(sensitivity=se, specificity=sp, youden_optimal=youden)
            assert low - 1e-12 <= auc <= high + 1e-12
            trapezoid_fails |= auc < (se + sp) / 2 - 1e-12
    # the trapezoid through the single point is no lower bound
    assert trapezoid_fails


def test_auc_bounds_are_attained():
    # ranking negative, positive, positive, negative (highest score first): the curve runs
    # (0,0) -> (0.5,0) -> (0.5,1) -> (1,1); its area 0.5 equals the lower bound at (sen 1, spe 0.5)
    # and is below the trapezoid (1 + 0.5) / 2 = 0.75
    assert roc_auc([0, 1, 1, 0], [0, 1, 2, 3]) == pytest.approx(0.5)
    assert audit.auc_bounds(sensitivity=1.0, specificity=0.5)[0] == pytest.approx(0.5)
    # a perfect ranking attains the Youden upper bound at J = 1
    assert audit.auc_bounds(sensitivity=1.0, specificity=1.0, youden_optimal=True)[1] == 1.0


def test_min_mcnemar_p_matches_brute_force():
    from pdlib.stats import mcnemar_exact

    n = 8
    for ka, kb in itertools.product(range(n + 1), repeat=2):
        best = 2.0
        truth = [1] * n
        for both in range(n + 1):
            b, c = ka - both, kb - both
            if b < 0 or c < 0 or both + b + c > n:
                continue
            a_pred = [1] * both + [1] * b + [0] * c + [0] * (n - both - b - c)
            b_pred = [1] * both + [0] * b + [1] * c + [0] * (n - both - b - c)
            best = min(best, mcnemar_exact(truth, a_pred, b_pred).p_value)
        assert audit.min_mcnemar_p(correct_a=ka, correct_b=kb, n=n)[0] == pytest.approx(best), (ka, kb)


# --- constructed cases with known answers --------------------------------------


def consistent_numbers() -> dict:
    """A small report in which every figure is consistent (group A is positive)."""
    return {
        "sets": {"train": {"n": 50, "groups": {"A": 20, "B": 30}}, "test": {"n": 20, "groups": {"A": 10, "B": 10}}},
        "counts": [{"location": "Text", "total": {"what": "cohort", "value": 70},
                    "parts": [{"what": "train", "value": 50}, {"what": "test", "value": 20}]}],
        "percentages": [{"location": "Text", "what": "A rate", "reported": "40.00", "count": 20, "denominator": 50}],
        "facts": [{"fact": "cohort size", "statements": [{"location": "Abstract", "value": "70"},
                                                         {"location": "Methods", "value": "70"}]}],
        "table1": {
            "location": "Table 1",
            "columns": {"train_A": 20, "train_B": 30},
            "means": {"Age": {"train_A": "60.2(40–80)", "train_B": "61.0(35–79)"}},
            "variables": {
                "Sex": {"F": {"train_A": "8(40.0%)", "train_B": "12(40.0%)"},
                        "M": {"train_A": "12(60.0%)", "train_B": "18(60.0%)"}},
                "Marker": {"≤ 5.0, Normal": {"train_A": "15(75.0%)", "train_B": "20(66.7%)"},
                           "> 5.0, Elevated": {"train_A": "5(25.0%)", "train_B": "10(33.3%)"}},
            },
        },
        "pooled_means": [{"location": "Methods", "row": "Age", "reported": "60.7(35–80)",
                          "columns": ["train_A", "train_B"]}],
        "metric_tables": [
            {"name": "Table X", "metrics": ["auc", "acc", "sen", "spe"],
             "threshold": {"train": "not stated", "test": "youden"},
             "rows": {"m1": {"train": ["0.95", "90.00", "85.00", "93.33"], "test": ["0.90", "85.00", "80.00", "90.00"]},
                      "m2": {"train": ["0.80", "74.00", "75.00", "73.33"], "test": ["0.78", "75.00", "70.00", "80.00"]}}},
            {"name": "Table Y", "metrics": ["acc", "sen", "spe"], "threshold": {"test": "binary calls"},
             "rows": {"r1": {"test": ["85.00", "80.00", "90.00"]}, "r2": {"test": ["75.00", "70.00", "80.00"]},
                      "Average": {"test": ["80.00", "75.00", "85.00"]}},
             "averages": [{"row": "Average", "of": ["r1", "r2"]}], "derived_rows": ["Average"]},
        ],
        "repeats": [
            {"location": "Results", "quote": "m1 (0.90, 85.0%)", "reported": {"auc": "0.90", "acc": "85.0"},
             "refers_to": ["Table X / m1 / test"]},
            {"location": "Table Y", "reported_row": "Table Y / r1 / test", "refers_to": ["Table X / m1 / test"]},
        ],
        "claims": [
            {"location": "Results", "quote": "m1 beats m2", "type": "greater",
             "left": "Table X / m1 / test / auc", "right": ["Table X / m2 / test / auc"]},
            {"location": "Results", "quote": "m1 significantly beats m2", "type": "significantly_greater",
             "left": "Table X / m1 / train / acc", "right": ["Table X / m2 / train / acc"]},
        ],
        "sections": [
            {"first": {"location": "Results", "quote": "m1 above m2", "says": "greater"},
             "second": {"location": "Discussion", "quote": "m1 beats m2", "says": "greater"},
             "left": "Table X / m1 / test / auc", "right": "Table X / m2 / test / auc"},
        ],
        "method": [
            {"about": "weight of the soft term", "first": {"location": "Eq. 1", "quote": "T^2 (1 - a)",
                                                          "expression": "T**2 * (1 - a)"},
             "second": {"location": "Algorithm", "quote": "(1 - a) T T", "expression": "(1 - a) * T * T"},
             "variables": {"a": [0.25, 0.5], "T": [1, 3]}},
            {"about": "schedule", "first": {"location": "Eq. 2", "quote": "per batch", "word": "batch"},
             "second": {"location": "Algorithm", "quote": "per batch", "word": "batch"}},
        ],
    }


def inconsistent(findings: pd.DataFrame) -> pd.DataFrame:
    return findings[findings["verdict"] == "inconsistent"]


def test_consistent_report_passes_every_check():
    findings = audit.audit_paper(consistent_numbers())
    assert list(findings.columns) == audit.FINDING_COLUMNS
    assert inconsistent(findings).empty, inconsistent(findings).to_string()
    checks = set(findings["check"])
    for check in ("subgroups add up", "percentage matches count", "same figure where repeated",
                  "categories complementary", "pooled mean and range", "confusion matrix exists",
                  "AUC compatible with operating point", "average of parts", "claim supported", "sections agree",
                  "algorithm matches equations"):
        assert check in checks
    note = findings[(findings["check"] == "positive class") & findings["location"].str.contains("train")]
    assert "only with A" in note["why"].iloc[0]


def _only_new_inconsistency(numbers: dict) -> pd.Series:
    bad = inconsistent(audit.audit_paper(numbers))
    assert len(bad) >= 1
    return bad


def test_planted_grim_impossible_percentage():
    numbers = consistent_numbers()
    numbers["percentages"].append({"location": "Text", "what": "some rate", "reported": "70.10", "denominator": 50})
    bad = _only_new_inconsistency(numbers)
    assert len(bad) == 1
    row = bad.iloc[0]
    assert row["check"] == "percentage reachable"
    assert "35/50 = 70.00%" in row["why"] and "36/50 = 72.00%" in row["why"]


def test_planted_percentage_that_does_not_match_its_count():
    numbers = consistent_numbers()
    numbers["percentages"][0]["reported"] = "41.00"
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["percentage matches count"]
    assert bad["nearest_consistent_reading"].iloc[0] == "40.00% (20/50)"


def test_planted_subgroup_that_does_not_add_up():
    numbers = consistent_numbers()
    numbers["table1"]["variables"]["Sex"]["M"]["train_A"] = "13(65.0%)"  # percentage follows the wrong count
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["subgroups add up"]
    assert "21, not the column size 20" in bad["why"].iloc[0]
    assert "M 12(60.0%)" in bad["nearest_consistent_reading"].iloc[0]
    numbers = consistent_numbers()
    numbers["counts"][0]["parts"][1]["value"] = 21
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["subgroups add up"] and "50 + 21 = 71, not 70" in bad["why"].iloc[0]


def test_planted_accuracy_that_no_confusion_matrix_reaches():
    numbers = consistent_numbers()
    numbers["metric_tables"][0]["rows"]["m1"]["train"][1] = "91.00"  # 45.5 of 50
    bad = _only_new_inconsistency(numbers)
    row = bad[bad["check"] == "confusion matrix exists"].iloc[0]
    assert "m1, train set" in row["location"]
    assert "ACC 91.00% is not k/50" in row["why"]
    assert row["nearest_consistent_reading"].startswith("TP 17, FN 3, TN 28, FP 2 (A positive)")
    # each figure reachable alone, but not together
    numbers = consistent_numbers()
    numbers["metric_tables"][0]["rows"]["m1"]["train"][1] = "88.00"  # 44/50, but 17 + 28 = 45
    bad = _only_new_inconsistency(numbers)
    row = bad[bad["check"] == "confusion matrix exists"].iloc[0]
    assert "each figure alone is reachable" in row["why"] and "45/50 = 90.00%" in row["why"]


def test_planted_auc_outside_the_operating_point_bounds():
    numbers = consistent_numbers()
    numbers["metric_tables"][0]["rows"]["m1"]["test"][0] = "0.97"  # J = 0.7 caps the area at 0.955
    bad = _only_new_inconsistency(numbers).set_index("check")
    # the text's repeat of m1 (0.90) now disagrees too
    assert sorted(bad.index) == ["AUC compatible with operating point", "same figure where repeated"]
    assert "0.955" in bad.loc["AUC compatible with operating point", "why"]
    numbers = consistent_numbers()
    numbers["metric_tables"][0]["rows"]["m1"]["train"][0] = "0.70"  # below 17/20 * 28/30 = 0.793
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["AUC compatible with operating point"]
    numbers = consistent_numbers()
    numbers["metric_tables"][0]["rows"]["m1"]["train"][0] = "0.99"  # no Youden claim on train: no cap
    assert inconsistent(audit.audit_paper(numbers)).empty


def test_planted_mismatched_repeat():
    numbers = consistent_numbers()
    numbers["repeats"][0]["reported"]["auc"] = "0.91"
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["same figure where repeated"]
    assert bad["nearest_consistent_reading"].iloc[0] == "AUC 0.90, ACC 85.00 (Table X / m1 / test)"
    numbers = consistent_numbers()
    numbers["facts"][0]["statements"][1]["value"] = "72"
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["same figure where repeated"] and "Methods says 72" in bad["why"].iloc[0]


def test_planted_wrong_average():
    numbers = consistent_numbers()
    numbers["metric_tables"][1]["rows"]["Average"]["test"][0] = "81.00"
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["average of parts"]
    assert "prints as 80.00, not 81.00" in bad["why"].iloc[0]
    assert bad["nearest_consistent_reading"].iloc[0].startswith("80.00% (32/40")


def test_planted_average_of_an_impossible_part():
    numbers = consistent_numbers()
    rows = numbers["metric_tables"][1]["rows"]
    rows["r2"]["test"][2] = "75.00"  # spe 7.5 of 10: impossible
    rows["Average"]["test"][2] = "82.50"  # the mean of the printed parts
    bad = _only_new_inconsistency(numbers)
    assert set(bad["check"]) == {"confusion matrix exists", "average of parts"}
    avg = bad[bad["check"] == "average of parts"].iloc[0]
    assert "(matches)" in avg["why"] and "k/20" in avg["why"]


def test_planted_cutoffs_and_pooled_mean():
    numbers = consistent_numbers()
    marker = numbers["table1"]["variables"]["Marker"]
    marker["> 35.0, Elevated"] = marker.pop("> 5.0, Elevated")
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["categories complementary"]
    numbers = consistent_numbers()
    numbers["pooled_means"][0]["reported"] = "62.0(35–80)"
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["pooled mean and range"] and "60.68" in bad["why"].iloc[0]


def test_planted_unsupported_claims():
    numbers = consistent_numbers()
    numbers["claims"][0]["type"] = "less"
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["claim supported"]
    numbers = consistent_numbers()
    numbers["claims"][1]["left"] = "Table X / m1 / test / acc"  # 17/20 vs 15/20: p >= 0.5
    numbers["claims"][1]["right"] = ["Table X / m2 / test / acc"]
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["claim supported"] and "p = 0.5" in bad["why"].iloc[0]


def test_malformed_transcription_is_named():
    numbers = consistent_numbers()
    numbers["table1"]["variables"]["Sex"]["F"]["train_B"] = "12(40.0"
    with pytest.raises(ValueError, match=r"Sex / F / train_B.*12\(40\.0"):
        audit.audit_paper(numbers)
    numbers = consistent_numbers()
    numbers["repeats"][0]["refers_to"] = ["Table X / m9 / test"]
    with pytest.raises(ValueError, match="m9.*names no table row"):
        audit.audit_paper(numbers)


# --- the transcribed paper (findings verified by hand) ---------------------------


@pytest.fixture(scope="module")
def paper_findings():
    return audit.audit_paper()


def _finding(findings, check, location_part, reported_part=""):
    rows = findings[(findings["check"] == check) & findings["location"].str.contains(location_part, regex=False)
                    & findings["reported"].str.contains(reported_part, regex=False)]
    assert len(rows) == 1, (check, location_part, reported_part, rows.to_string())
    return rows.iloc[0]


def test_paper_table1_test_set_males(paper_findings):
    # 3 + 12 = 15 GR test patients; 78.6% of 14 is 11. PR: 1 + 1 = 2; 92.9% of 14 is 13.
    gr = _finding(paper_findings, "subgroups add up", "Sex, test_GR")
    assert gr["verdict"] == "inconsistent" and "Male 11(78.6%)" in gr["nearest_consistent_reading"]
    pr = _finding(paper_findings, "subgroups add up", "Sex, test_PR")
    assert pr["verdict"] == "inconsistent" and "Male 13(92.9%)" in pr["nearest_consistent_reading"]
    assert _finding(paper_findings, "subgroups add up", "Sex, train_GR")["verdict"] == "consistent"


def test_paper_c20_specificity(paper_findings):
    row = _finding(paper_findings, "confusion matrix exists", "C20")
    assert row["verdict"] == "inconsistent"
    assert "SPE 75.57% is not k/14" in row["why"]
    assert "SPE 75.57 -> 78.57" in row["nearest_consistent_reading"]
    average = _finding(paper_findings, "average of parts", "Average", "SPE")
    assert average["verdict"] == "inconsistent" and average["nearest_consistent_reading"].startswith("76.19%")


def test_paper_hybrid_training_accuracy(paper_findings):
    row = _finding(paper_findings, "confusion matrix exists", "Hybrid Model, train")
    assert row["verdict"] == "inconsistent"
    assert "111/112" not in row["why"] and "110/112 = 98.21%" in row["why"]
    assert row["nearest_consistent_reading"].startswith("TP 38, FN 1, TN 72, FP 1 (PR positive)")


def test_paper_ca199_label(paper_findings):
    row = _finding(paper_findings, "categories complementary", "CA199")
    assert row["verdict"] == "inconsistent"
    assert row["nearest_consistent_reading"] == "≤ 35.0, Normal / > 35.0, Elevated"
    assert _finding(paper_findings, "categories complementary", "CEA")["verdict"] == "consistent"


def test_paper_text_numbers(paper_findings):
    exclusions = _finding(paper_findings, "subgroups add up", "Patient characteristics", "excluded")
    assert exclusions["verdict"] == "inconsistent" and "164 - 19 - 5 = 140" in exclusions["why"]
    gr_rate = _finding(paper_findings, "percentage matches count", "Patient characteristics", "65.17")
    assert gr_rate["verdict"] == "inconsistent" and "truncated" in gr_rate["why"]
    assert _finding(paper_findings, "percentage matches count", "Patient characteristics", "50.00")["verdict"] == "consistent"
    dates = _finding(paper_findings, "same figure where repeated", "Abstract", "end of recruitment")
    assert dates["verdict"] == "inconsistent"
    start = _finding(paper_findings, "same figure where repeated", "Abstract", "start of recruitment")
    assert start["verdict"] == "consistent"
    for age in _finding(paper_findings, "pooled mean and range", "Methods", "n = 112"), \
            _finding(paper_findings, "pooled mean and range", "Methods", "n = 28"):
        assert age["verdict"] == "consistent"


def test_paper_positive_class_is_the_poor_response_group(paper_findings):
    note = _finding(paper_findings, "positive class", "train")
    assert note["verdict"] == "note" and "only with PR (n = 39)" in note["why"] and "38/39" in note["why"]
    pd_row = _finding(paper_findings, "confusion matrix exists", "Progressive Distill (EfficientNet-B7), train")
    assert pd_row["verdict"] == "consistent" and pd_row["why"] == "TP 38, FN 1, TN 73, FP 0 (PR positive)"


def test_planted_claim_over_every_pair_section_contradiction_and_algorithm_mismatch():
    numbers = consistent_numbers()
    # a general claim: every left row against every right row; one failing pair is enough
    numbers["claims"][0]["left"] = ["Table X / m1 / test / auc", "Table X / m2 / test / auc"]
    numbers["claims"][0]["right"] = ["Table X / m2 / test / auc"]
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["claim supported"] and "1 of 2 pair(s)" in bad["why"].iloc[0]
    numbers = consistent_numbers()
    numbers["sections"][0]["second"]["says"] = "less"
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["sections agree"]
    assert "which supports Results" in bad["why"].iloc[0]  # 0.90 vs 0.78: the first section is right
    numbers = consistent_numbers()
    numbers["method"][0]["second"]["expression"] = "a"
    bad = _only_new_inconsistency(numbers)
    assert bad["check"].tolist() == ["algorithm matches equations"]
    assert "a = 0.25, T = 1: 0.75 vs 0.25" in bad["why"].iloc[0]
    numbers = consistent_numbers()
    numbers["method"][1]["second"]["word"] = "epoch"
    assert _only_new_inconsistency(numbers)["why"].iloc[0] == "schedule: batch in the first, epoch in the second"
    numbers = consistent_numbers()
    numbers["method"][0]["second"]["expression"] = "__import__('os').getcwd()"
    with pytest.raises(ValueError, match="is not arithmetic"):
        audit.audit_paper(numbers)


def test_paper_sections_and_algorithm_against_equations(paper_findings):
    noise = _finding(paper_findings, "sections agree", "Ablation study", "only slight gains")
    assert noise["verdict"] == "inconsistent" and "which supports Results, Ablation study" in noise["why"]
    alpha = _finding(paper_findings, "algorithm matches equations", "equation 1", "T^2 (1 - alpha)")
    assert alpha["verdict"] == "inconsistent" and "alpha = 0.3, T = 4: 11.2 vs 0.3" in alpha["why"]
    schedule = _finding(paper_findings, "algorithm matches equations", "equation 2", "at batch t")
    assert schedule["verdict"] == "inconsistent" and "every epoch" in schedule["why"]
    pd_kd = _finding(paper_findings, "claim supported", "Performance of PD", "PD outperforms KD")
    assert pd_kd["verdict"] == "inconsistent" and "of 16 pair(s)" in pd_kd["why"]


def test_paper_repeats_and_claims(paper_findings):
    start = _finding(paper_findings, "same figure where repeated", "Performance of PD", "from 0.72 to 75.0%")
    assert start["verdict"] == "inconsistent" and "AUC 0.74" in start["nearest_consistent_reading"]
    resnext = _finding(paper_findings, "same figure where repeated", "Performance of PD", "ResNext101 (0.77, 75.0%)")
    assert resnext["verdict"] == "consistent"
    significance = _finding(paper_findings, "claim supported", "clinicians", "significantly higher")
    assert significance["verdict"] == "inconsistent" and "p = 0.5" in significance["why"]
    superior = _finding(paper_findings, "claim supported", "Discussion", "superior accuracy")
    assert superior["verdict"] == "inconsistent" and "C3 has 92.86" in superior["why"]


def test_paper_consistent_rows_stay_consistent(paper_findings):
    # 19 of the 20 training rows and every Table 2 test row have an integer confusion matrix
    rows = paper_findings[(paper_findings["check"] == "confusion matrix exists")
                          & paper_findings["location"].str.startswith("Table 2")]
    assert (rows["verdict"] == "inconsistent").sum() == 1
    assert (paper_findings.loc[paper_findings["check"] == "AUC compatible with operating point", "verdict"]
            == "consistent").all()


# --- report and command line -------------------------------------------------


def test_markdown_report(paper_findings):
    text = audit.to_markdown(paper_findings)
    assert text.startswith("# Consistency audit")
    assert "## Inconsistencies" in text and "## What the consistent readings imply" in text
    n_bad = int((paper_findings["verdict"] == "inconsistent").sum())
    table = text.split("## Inconsistencies")[1].split("## What")[0]
    assert table.count("\n| ") == n_bad + 1  # header plus one line per inconsistency


def test_cli_prints_and_writes_atomically(tmp_path, capsys):
    out = tmp_path / "findings.csv"
    assert cli.main(["audit", "--markdown", "--csv", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Hybrid Model" in printed and printed.startswith("# Consistency audit")
    written = pd.read_csv(out, keep_default_na=False)
    assert list(written.columns) == audit.FINDING_COLUMNS and len(written) == len(audit.audit_paper())
    assert [p.name for p in tmp_path.iterdir()] == ["findings.csv"]  # no temporary file left behind
    assert audit.main([]) == 0
    assert "INCONSISTENT [confusion matrix exists] Table 3, C20" in capsys.readouterr().out


def test_cli_reports_a_bad_file(tmp_path, capsys):
    bad = tmp_path / "numbers.yaml"
    bad.write_text("- just a list\n", encoding="utf-8")
    assert audit.main(["--numbers", str(bad)]) == 2
    assert "must hold a mapping" in capsys.readouterr().err


def test_audit_is_deterministic(paper_findings):
    pd.testing.assert_frame_equal(paper_findings, audit.audit_paper(copy.deepcopy(paper.load_paper_numbers())))


def test_verdict_counts_and_checks_by_verdict(paper_findings):
    counts = audit.verdict_counts(paper_findings)
    assert counts["n_checks"] == len(paper_findings)
    assert counts["n_consistent"] + counts["n_inconsistent"] + counts["n_notes"] == counts["n_checks"]
    assert counts["n_inconsistent"] == int((paper_findings["verdict"] == "inconsistent").sum()) > 0
    table = audit.checks_by_verdict(paper_findings)
    assert int(table.to_numpy().sum()) == len(paper_findings)
    assert set(table.index) == set(paper_findings["check"]) and "inconsistent" in table.columns
