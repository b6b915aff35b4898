"""The verdict chapter (notebooks/12_verdict.ipynb): its tables and sentences on a synthetic run written to disk.

The run (``verdict_run_helper.write_run``) has three arms over three seeds
with binormal scores of known signal, out-of-fold scores for two arms and an
external set of 2 x 150 patients. The numbers the chapter shows are checked
against direct computations (scikit-learn's AUC, per-seed differences done by
hand, :mod:`pdlib.verdict` called directly), the sentences against the run,
bad input against the errors it must raise, and the template is executed
with papermill on the run.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import roc_auc_score
from verdict_run_helper import N_EXTERNAL, N_TEST, N_TRAIN, SECONDS, SEEDS, SIGNAL, write_run

from pdlib import report, stats, verdict
from pdlib.arms import ARMS
from pdlib.manifest import load_manifest
from pdlib.stats import DegenerateInputWarning

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "notebooks" / "12_verdict.ipynb"
INTERVAL = re.compile(r"^[+-]?\d\.\d{3} \([+-]?\d\.\d{3} to [+-]?\d\.\d{3}\)$")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict:
    return write_run(tmp_path_factory.mktemp("verdict"))


@pytest.fixture(scope="module")
def run(written) -> report.VerdictRun:
    return report.verdict_run(written["results"], written["arms"], seeds=written["seeds"], oof=written["oof"],
                              external=written["external"])


def _file(written, arm, seed, name="external_predictions.csv") -> pd.DataFrame:
    return pd.read_csv(written["results"] / f"seed{seed}" / ARMS[arm].final_key / name, dtype={"patient_id": str})


def _copy(written, tmp_path) -> dict:
    base = Path(written["results"]).parent
    shutil.copytree(base, tmp_path / "copy")
    out = dict(written, results=tmp_path / "copy" / "results", manifest_dir=tmp_path / "copy" / "manifest")
    out["external"] = dict(written["external"], manifest=str(tmp_path / "copy" / "external" / "manifest"))
    return out


# --------------------------------------------------------------------------- the run as read


def test_the_run_holds_every_arm_seed_and_set_in_one_patient_order(run, written):
    assert run.arms == tuple(SIGNAL) and run.seeds == SEEDS
    for seed in SEEDS:
        assert run.scored("external", seed).n == N_EXTERNAL and run.scored("test", seed).n == N_TEST
        assert run.scored("train", seed).n == N_TRAIN
        assert list(run.scored("external", seed).scores.index) == list(run.scored("external", 0).scores.index)
        for arm in SIGNAL:
            file = _file(written, arm, seed).set_index("patient_id")
            scored = run.scored("external", seed)
            np.testing.assert_array_equal(scored.scores[arm].to_numpy(), file.loc[scored.scores.index, "score"])
    assert run.external_info["n_pos"] == run.external_info["n_neg"] == N_EXTERNAL // 2
    assert run.external_info["positive_class"] == "PR" and run.external_info["twin_seed"] == 11


def test_thresholds_are_the_pre_specified_ones_of_the_other_chapters(run, written):
    for seed in SEEDS:
        long = report.metrics_long(written["results"], written["arms"], seeds=[seed])
        pre = long[(long["way"] == "pre-specified") & (long["split"] == "test")].set_index("arm")
        for arm in SIGNAL:
            assert run.threshold(arm, seed) == pytest.approx(pre.loc[arm, "threshold"])
    rules = run.thresholds.groupby("arm")["rule"].agg(set).to_dict()
    assert rules == {"efficientnet_b7": {"out-of-fold"}, "pd_b7": {"out-of-fold"}, "kd_b7": {"resubstitution"}}
    assert set(run.thresholds.dropna(subset=["folds"])["folds"]) == {5}


# --------------------------------------------------------------------------- AUCs, ranking, spread


def test_external_and_test_aucs_are_sklearns_with_delong_half_widths(run, written):
    aucs = report.verdict_aucs(run)
    assert len(aucs) == 2 * len(SIGNAL) * len(SEEDS)
    z = scipy_stats.norm.ppf(0.975)
    for row in aucs.itertuples():
        if row.set == "external":
            file = _file(written, row.arm, row.seed)
        else:
            file = _file(written, row.arm, row.seed, "patient_predictions.csv")
            file = file[file["split"] == "test"]
        assert row.auc == pytest.approx(roc_auc_score(file["label"], file["score"]), abs=1e-12)
        assert row.half_width == pytest.approx((row.ci_high - row.ci_low) / 2)
        if row.ci_high < 1:  # not clipped: the half-width is z * sqrt(DeLong variance)
            r = stats.delong_auc(file["label"], file["score"])
            assert row.half_width == pytest.approx(z * math.sqrt(r.variance))
    external = aucs[aucs["set"] == "external"]
    assert external["half_width"].max() < aucs[aucs["set"] == "test"]["half_width"].min()
    means = report.verdict_mean_aucs(run).set_index(["arm", "set"])
    for arm, signal in SIGNAL.items():
        per_seed = external[external["arm"] == arm]["auc"]
        assert means.loc[(arm, "external"), "auc"] == pytest.approx(per_seed.mean())
        # binormal scores: the expected AUC is Phi(signal / sqrt(2))
        assert means.loc[(arm, "external"), "auc"] == pytest.approx(scipy_stats.norm.cdf(signal / math.sqrt(2)),
                                                                    abs=0.06)
        assert means.loc[(arm, "external"), "ci_low"] < per_seed.mean() < means.loc[(arm, "external"), "ci_high"]


def test_auc_contrast_is_delong_for_one_auc_and_for_a_paired_difference():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 40)
    a, b = y * 1.0 + rng.normal(size=80), y * 0.4 + rng.normal(size=80)
    one, single = verdict.auc_contrast(y, [a], [1.0]), stats.delong_auc(y, a)
    assert (one.estimate, one.ci_low, one.ci_high) == pytest.approx((single.auc, single.ci_low, single.ci_high))
    diff, test = verdict.auc_contrast(y, {"a": a, "b": b}, [1, -1]), stats.delong_test(y, a, b)
    assert diff.estimate == pytest.approx(test.difference) and diff.variance == pytest.approx(test.variance)
    mean = verdict.auc_contrast(y, [a, b], [0.5, 0.5])
    assert mean.estimate == pytest.approx((test.auc_a + test.auc_b) / 2)
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(verdict.auc_contrast(np.zeros(80, int), [a], [1.0]).estimate)
    with pytest.raises(ValueError, match="weights"):
        verdict.auc_contrast(y, [a, b], [1.0])


def test_ranking_table_is_for_people_and_ranks_by_the_external_mean(run):
    table = report.auc_ranking(run)
    assert list(table.columns)[0] == "Model" and len(table) == len(SIGNAL)
    assert list(table.index) == list(range(len(table)))
    assert "External AUC, seed 0 (95% CI)" in table and "Test AUC, mean of 3 seeds (95% CI)" in table
    for column in ("External AUC, seed 0 (95% CI)", "Test AUC, seed 0 (95% CI)"):
        assert table[column].str.match(INTERVAL).all(), table[column]
    means = report.verdict_mean_aucs(run)
    order = means[means["set"] == "external"].sort_values("auc", ascending=False)["label"].tolist()
    assert table["Model"].tolist() == order
    assert table["Rank, external (mean)"].tolist() == [1, 2, 3]
    by_seed = report.auc_by_seed(run, "external")
    assert list(by_seed.columns) == ["Model", "seed 0", "seed 1", "seed 2", "mean of 3 seeds", "± (per seed)"]
    assert by_seed["seed 1"].str.match(INTERVAL).all()


def test_ranking_and_spread_sentences_follow_the_run(run):
    text = report.ranking_statement(run)
    aucs = report.verdict_aucs(run)
    assert f"±{aucs[aucs['set'] == 'external']['half_width'].median():.3f} on the {N_EXTERNAL} external" in text
    assert f"{ARMS['pd_b7'].label} ranks first" in text
    spread = report.verdict_seed_spread(run)
    assert list(spread.columns) == ["Model", "Patients", "Seeds", "Mean AUC", "SD", "Min to max"]
    summary = verdict.seed_summary(aucs[aucs["set"] == "external"][["arm", "seed", "auc"]]).set_index("arm")
    row = spread[(spread["Model"] == ARMS["kd_b7"].label) & spread["Patients"].str.startswith("external")].iloc[0]
    assert row["SD"] == f"{summary.loc['kd_b7', 'std']:.3f}" and row["Seeds"] == 3
    widest = aucs[aucs["set"] == "external"].groupby("arm")["auc"].agg(lambda a: a.max() - a.min())
    assert f"moves by up to {widest.max():.3f}" in report.seed_spread_statement(run)


# --------------------------------------------------------------------------- compared pairs


def test_default_pairs_are_the_claims_among_the_arms_and_bad_pairs_are_named():
    assert report.verdict_pairs(list(SIGNAL)) == [("pd_b7", "efficientnet_b7"), ("pd_b7", "kd_b7"),
                                                  ("kd_b7", "efficientnet_b7")]
    assert report.verdict_pairs(["pd_b7", "efficientnet_b7"], [["efficientnet_b7", "pd_b7"]]) == [
        ("efficientnet_b7", "pd_b7")]
    with pytest.raises(ValueError, match="'pd_b3'"):
        report.verdict_pairs(list(SIGNAL), [["pd_b7", "pd_b3"]])
    with pytest.raises(ValueError, match="two different arm names"):
        report.verdict_pairs(list(SIGNAL), [["pd_b7", "pd_b7"]])


def test_paired_differences_are_the_naive_per_seed_differences(run, written):
    pairs = report.verdict_pairs(run.arms)
    paired = report.paired_seeds(run, pairs)
    assert len(paired.per_seed) == 2 * len(pairs) * len(SEEDS)
    t = scipy_stats.t.ppf(0.975, len(SEEDS) - 1)
    for a, b in pairs:
        naive = []
        for seed in SEEDS:
            fa, fb = _file(written, a, seed).set_index("patient_id"), _file(written, b, seed).set_index("patient_id")
            d = roc_auc_score(fa["label"], fa["score"]) - roc_auc_score(fb["label"], fb.loc[fa.index, "score"])
            row = paired.per_seed[(paired.per_seed["arm_a"] == a) & (paired.per_seed["arm_b"] == b)
                                  & (paired.per_seed["set"] == "external") & (paired.per_seed["seed"] == seed)]
            assert row["difference"].iloc[0] == pytest.approx(d, abs=1e-12)
            assert row["ci_low"].iloc[0] < d < row["ci_high"].iloc[0]
            naive.append(d)
        naive = np.array(naive)
        s = paired.summary[(paired.summary["arm_a"] == a) & (paired.summary["arm_b"] == b)
                           & (paired.summary["set"] == "external")].iloc[0]
        assert s["mean"] == pytest.approx(naive.mean())
        assert s["ci_high"] - s["mean"] == pytest.approx(t * naive.std(ddof=1) / math.sqrt(len(SEEDS)))
        assert s["n_a_higher"] == (naive > 0).sum() and s["n_b_higher"] == (naive < 0).sum()
        assert s["n_agree"] == max((naive > 0).sum(), (naive < 0).sum())
        assert s["patients_ci_low"] < s["mean"] < s["patients_ci_high"]
    display = report.paired_summary_display(paired, run)
    assert display["Mean difference over seeds (95% CI over seeds)"].str.match(INTERVAL).all()
    assert set(report.paired_seed_display(paired, run).columns) >= {"seed 0", "seed 1", "seed 2"}
    text = report.paired_statement(paired, run, best_arm="pd_b7")
    focus = paired.summary[(paired.summary["arm_a"] == "pd_b7") & (paired.summary["arm_b"] == "efficientnet_b7")]
    assert f"higher in {int(focus['n_a_higher'].iloc[0])} of 3 seeds" in text
    assert f"{ARMS['pd_b7'].label} minus {ARMS['efficientnet_b7'].label}" in text


# --------------------------------------------------------------------------- the paper's design


def test_design_simulation_is_verdicts_in_the_papers_order_with_each_seeds_thresholds(run):
    sims = report.design_simulations(run, [("efficientnet_b7", "pd_b7")], n_draws=40)
    assert set(sims["arm_a"]) == {"pd_b7"} and list(sims["seed"]) == list(SEEDS)  # the paper: 0.87 vs 0.74
    assert sims["paper_auc_a"].iloc[0] == 0.87 and sims["paper_auc_b"].iloc[0] == 0.74
    scored = run.scored("external", 1)
    direct = verdict.simulate_design(scored.labels, scored.scores["pd_b7"], scored.scores["efficientnet_b7"],
                                     n_simulations=40, threshold_a=run.threshold("pd_b7", 1),
                                     threshold_b=run.threshold("efficientnet_b7", 1))
    row = sims[sims["seed"] == 1].iloc[0]
    assert row["p_ranked_as_paper"] == direct.p_ranked_as_paper and row["p_significant"] == direct.p_significant
    assert row["optimism_a"] == pytest.approx(direct.optimism.set_index("arm").loc["a", "mean"])
    assert row["rule_a"] == "out-of-fold"
    shown = report.design_display(sims)
    assert len(shown) == 1 and shown["Paper's test AUCs"].iloc[0] == "0.87 vs 0.74"
    assert len(report.design_display(sims, per_seed=True)) == len(SEEDS)
    text = report.design_statement(sims, run, best_arm="pd_b7")
    assert f"in {100 * sims['p_ranked_as_paper'].mean():.0f}% (seeds" in text and "14 + 14" in text
    assert "out-of-fold on the training patients" in text


def test_power_is_verdicts_closed_form_on_each_seed(run):
    powers = report.power_table(run, [("pd_b7", "kd_b7")])
    scored = run.scored("external", 2)
    direct = verdict.power_sample_size(scored.labels, scored.scores["pd_b7"], scored.scores["kd_b7"])
    assert powers.loc[powers["seed"] == 2, "n_per_class"].iloc[0] == direct.n_per_class
    assert 0 < powers["power_at_paper"].min() <= powers["power_at_paper"].max() < 1
    shown = report.power_display(powers)
    assert shown["Patients per class, seed 0"].iloc[0] == f"{int(powers['n_per_class'].iloc[0]):,}"
    assert f"{int(np.median(powers['n_per_class'])):,} patients per class" in report.power_statement(
        powers, best_arm="pd_b7")


# --------------------------------------------------------------------------- the claims


def test_scorecard_judges_each_source_and_the_sentence_counts_them(run, written):
    manifest = load_manifest(written["manifest_dir"], check_files=False)
    card = report.verdict_scorecard(run, manifest=manifest)
    sources = report.verdict_sources(run)
    judged = card[card["source"] != ""]
    assert set(judged["source"]) == {sources["test"], sources["external"], sources["seeds"], sources["train"]}
    claim = card[(card["claim"] == "pd_b7_beats_baseline_b7")].set_index("source")
    test = run.scored("test", 0)
    direct = stats.delong_test(test.labels, test.scores["pd_b7"], test.scores["efficientnet_b7"])
    assert claim.loc[sources["test"], "estimate"] == pytest.approx(direct.difference)
    aucs = report.verdict_aucs(run)
    ext = aucs[aucs["set"] == "external"].pivot(index="seed", columns="arm", values="auc")
    assert claim.loc[sources["seeds"], "estimate"] == pytest.approx((ext["pd_b7"] - ext["efficientnet_b7"]).mean())
    # an ablation row with the same final member as a verdict arm is judged on that member
    assert "ablation_b7_kd_mn_mi" not in run.arms and len(card[card["claim"] == "headline_auc"]) == 2
    text = report.verdict_scorecard_statement(card)
    for source, group in judged.groupby("source"):
        counts = group["verdict"].value_counts()
        assert f" {source[:1].upper()}{source[1:]}: " in text
        for v, n in counts.items():
            assert f"{n} {v}" in text
    counts = report.scorecard_counts(card)
    assert list(counts.columns) == ["Patients", "supported", "contradicted", "not decidable"]
    assert counts.set_index("Patients").sum(axis=1).to_dict() == judged.groupby("source").size().to_dict()
    shown = report.scorecard_display(card)
    assert shown["This run (95% CI)"].str.contains(" to ").any()


def test_the_file_name_is_the_one_the_pipeline_writes():
    from pdlib import runs  # imports torch: only the name is compared

    assert report.EXTERNAL_FILE == runs.EXTERNAL_PREDICTIONS


def test_training_time_is_summed_over_the_chain_and_its_ratio_over_seeds(written):
    seconds = report.training_seconds(written["results"], ["pd_b7", "efficientnet_b7"], seeds=[0, 1])
    pd_b7 = seconds[(seconds["arm"] == "pd_b7") & (seconds["seed"] == 1)]["seconds"].iloc[0]
    assert pd_b7 == pytest.approx(1.1 * sum(SECONDS[k] for k in ARMS["pd_b7"].member_keys()))
    claim = verdict.Claim("t", "b7 takes half the time", "x", "y", "at_most", "train_time_ratio",
                          ("efficientnet_b7", "pd_b7"), bound=0.5)
    est = verdict.time_ratio_estimates([claim], seconds, source="2 seeds").iloc[0]
    assert est["estimate"] == pytest.approx(SECONDS["b7"] / sum(SECONDS[k] for k in ARMS["pd_b7"].member_keys()))
    (written["results"] / "seed1" / "b7--b7mn" / "summary.json").write_text(json.dumps({"epochs": 3}))
    try:
        with pytest.raises(ValueError, match=r"arm pd_b7 \(seed 1\).*b7--b7mn/summary.json"):
            report.training_seconds(written["results"], ["pd_b7"], seeds=[1])
    finally:
        (written["results"] / "seed1" / "b7--b7mn" / "summary.json").write_text(
            json.dumps({"seconds": SECONDS["b7--b7mn"] * 1.1}))


# --------------------------------------------------------------------------- the run statement


def test_run_statement_says_what_ran_and_how_thresholds_were_chosen(run, written):
    text = report.verdict_run_statement(run, config_name="verdict", profile="smoke",
                                        manifest_dir=written["manifest_dir"])
    assert "**verdict**" in text and "**smoke**" in text and "seeds 0, 1, 2" in text
    assert f"{N_TRAIN} training and {N_TEST} test patients" in text
    assert f"{N_EXTERNAL} patients (150 PR, 150 GR)" in text and "seed 11" in text
    assert "out-of-fold scores of the training patients (5 folds" in text
    assert (f"for {ARMS['efficientnet_b7'].label} and {ARMS['pd_b7'].label}; on the training patients' own "
            "scores (resubstitution") in text
    assert f"for {ARMS['kd_b7'].label}." in text


def test_threshold_sentence_changes_without_out_of_fold_runs(tmp_path):
    plain = write_run(tmp_path, oof_arms=None, seeds=(0,))
    assert plain["oof"] is None
    run = report.verdict_run(plain["results"], plain["arms"], seeds=[0], oof=plain["oof"], external=plain["external"])
    text = report.threshold_statement(run)
    assert "resubstitution" in text and "for every arm; this study trained no out-of-fold folds" in text
    assert "out-of-fold scores of" not in text
    every = write_run(tmp_path / "all", oof_arms=tuple(SIGNAL), folds=3, seeds=(0,))
    run = report.verdict_run(every["results"], every["arms"], seeds=[0], oof=every["oof"], external=every["external"])
    assert "(3 folds" in report.threshold_statement(run) and "for every arm (3)" in report.threshold_statement(run)


# --------------------------------------------------------------------------- bad and degenerate input


def test_missing_files_are_named_with_arm_seed_and_path(written, tmp_path):
    copy = _copy(written, tmp_path)
    args = dict(seeds=copy["seeds"], oof=copy["oof"], external=copy["external"])
    external = copy["results"] / "seed2" / "b7--b7" / "external_predictions.csv"
    external.unlink()
    with pytest.raises(FileNotFoundError, match=rf"arm kd_b7 \(seed 2\).*{re.escape(str(external))}"):
        report.verdict_run(copy["results"], copy["arms"], **args)
    oof = copy["results"] / "seed1" / "b7" / "oof_predictions.csv"
    oof.unlink()
    with pytest.raises(FileNotFoundError, match=rf"arm efficientnet_b7 \(seed 1\).*5 out-of-fold.*{re.escape(str(oof))}"):
        report.verdict_run(copy["results"], copy["arms"], **args)
    predictions = copy["results"] / "seed0" / "b7--b7mn--b7mn" / "patient_predictions.csv"
    predictions.unlink()
    with pytest.raises(FileNotFoundError, match=rf"arm pd_b7 \(seed 0\).*{re.escape(str(predictions))}"):
        report.verdict_run(copy["results"], copy["arms"], **args)


def test_inconsistent_runs_raise_errors_naming_what_differs(written, tmp_path):
    copy = _copy(written, tmp_path)
    args = dict(seeds=copy["seeds"], oof=copy["oof"])
    with pytest.raises(ValueError, match="has 500 patients, but .*scores 300"):
        report.verdict_run(copy["results"], copy["arms"], **args, external=dict(copy["external"], n_patients=500))
    with pytest.raises(ValueError, match="holds 5 folds, the study configuration 4"):
        report.verdict_run(copy["results"], copy["arms"], seeds=copy["seeds"], oof={"folds": 4, "arms": ["pd_b7"]},
                           external=copy["external"])
    path = copy["results"] / "seed1" / "b7--b7" / "external_predictions.csv"
    table = pd.read_csv(path, dtype={"patient_id": str})
    table.iloc[:-1].to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"seed 1, external patients: arm kd_b7 scores other patients than arm "
                                         r"efficientnet_b7"):
        report.verdict_run(copy["results"], copy["arms"], **args, external=copy["external"])
    table.assign(score=["x"] + list(table["score"].iloc[1:])).to_csv(path, index=False)
    with pytest.raises(ValueError, match=rf"arm kd_b7 \(seed 1\), {re.escape(str(path))}: patient 'EX000' has score"):
        report.verdict_run(copy["results"], copy["arms"], **args, external=copy["external"])
    table.assign(label=1 - table["label"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="patient 'EX000' has label 1 in .*b7--b7/external_predictions.csv but 0"):
        report.verdict_run(copy["results"], copy["arms"], **args, external=copy["external"])
    table.to_csv(path, index=False)
    for seed in SEEDS:
        for arm in SIGNAL:
            p = copy["results"] / f"seed{seed}" / ARMS[arm].final_key / "external_predictions.csv"
            t = pd.read_csv(p, dtype={"patient_id": str})
            t.assign(label=1 - t["label"]).to_csv(p, index=False)
    with pytest.raises(ValueError, match="patient 'EX000' has label 1, but the external manifest .* response GR"):
        report.verdict_run(copy["results"], copy["arms"], **args, external=copy["external"])


def test_degenerate_external_set_gives_nan_and_warnings(written, tmp_path):
    copy = _copy(written, tmp_path)
    for seed in SEEDS:
        for arm in SIGNAL:
            p = copy["results"] / f"seed{seed}" / ARMS[arm].final_key / "external_predictions.csv"
            t = pd.read_csv(p, dtype={"patient_id": str})
            t.assign(label=0).to_csv(p, index=False)
    external = {"name": "one class", "n_patients": N_EXTERNAL}  # no manifest: its responses would disagree
    run = report.verdict_run(copy["results"], copy["arms"], seeds=copy["seeds"], external=external)
    with pytest.warns(DegenerateInputWarning):
        aucs = report.verdict_aucs(run)
    assert aucs[aucs["set"] == "external"]["auc"].isna().all() and aucs[aucs["set"] == "test"]["auc"].notna().all()
    with pytest.warns(DegenerateInputWarning, match="no AUC for efficientnet_b7 seed 0"):
        spread = report.verdict_seed_spread(run)
    assert (spread[spread["Patients"].str.startswith("external")]["Mean AUC"] == "n/a").all()
    with pytest.warns(DegenerateInputWarning, match="fewer than 14 of a class"):
        sims = report.design_simulations(run, [("pd_b7", "kd_b7")], n_draws=10)
    assert sims["p_ranked_as_paper"].isna().all()
    assert "could not be simulated" in report.design_statement(sims, run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateInputWarning)
        assert "one class only" in report.ranking_statement(run)


def test_one_seed_has_no_spread_or_interval_over_seeds(written):
    run = report.verdict_run(written["results"], written["arms"], seeds=[0], external=written["external"])
    assert "one seed" in report.seed_spread_statement(run)
    with pytest.warns(DegenerateInputWarning, match="one seed gives no spread"):
        paired = report.paired_seeds(run, [("pd_b7", "kd_b7")])
    assert paired.summary["ci_low"].isna().all() and paired.summary["mean"].notna().all()
    assert "With one seed there is no interval over seeds." in report.paired_statement(paired, run)


# --------------------------------------------------------------------------- the template, executed


def test_template_runs_on_the_synthetic_run_and_shows_the_tables(written, tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "12_verdict.ipynb"
    papermill.execute_notebook(
        str(TEMPLATE), str(out), kernel_name="python3", cwd=str(ROOT), progress_bar=False, log_output=False,
        parameters={"profile": "smoke", "config_name": "verdict", "manifest_dir": str(written["manifest_dir"]),
                    "twin_dir": None, "results_dir": str(written["results"]), "seeds": list(SEEDS),
                    "arms": written["arms"], "best_arm": "pd_b7", "oof": written["oof"],
                    "external": written["external"], "pairs": None, "n_draws": 30})
    nb = nbformat.read(str(out), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    for header in ("External AUC, seed 0 (95% CI)", "Mean difference over seeds (95% CI over seeds)",
                   "Ranked as the paper", "Patients per class, seed 0", "Claim of the paper", "Min to max"):
        assert header in html, header
    assert 'class="row_heading' not in html  # tables without their index
    records = {o["metadata"]["scrapbook"]["name"]: o["data"] for o in outputs if "scrapbook" in o.get("metadata", {})}
    glued = {k: d["application/papermill.record/text/markdown"] for k, d in records.items()
             if "application/papermill.record/text/markdown" in d}
    # the introduction pastes the verdicts as HTML (rendered once, from the same sentences)
    assert "<p>" in records["verdict_glance_html"]["application/papermill.record/text/html"]
    assert "**verdict**" in glued["run_statement"] and "(5 folds" in glued["run_statement"]
    assert "14 + 14" in glued["design_text"] and "Test set, 28 patients (seed 0): " in glued["scorecard_text"]
