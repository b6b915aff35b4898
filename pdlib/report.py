"""Tables and generated sentences of the chapters, from the run folders.

Every table a chapter shows and every sentence it writes from the numbers
comes from a function here, so that the notebook templates only tell and
this module, tested on its own, computes. The functions read what the study
pipeline wrote (:mod:`pdlib.pipeline`): each member's
``patient_predictions.csv`` (and ``oof_predictions.csv``, ``metrics.csv``,
``config.json``) in ``<results>/seed<k>/<member key>/``, the cohort manifest
and, on a digital twin, its ``twin.json``.

* predictions and metrics: :func:`arm_predictions`, :func:`arm_performance`,
  :func:`metrics_long`, :func:`metric_display`, :func:`beside_paper`;
* the cohort (chapter 1): :func:`cohort_table1`, :func:`table1_beside_paper`,
  :func:`cohort_counts`, :func:`oracle_statement` (corrections:
  :func:`pdlib.paper.table1_corrections`);
* one arm (chapter 2): :func:`training_history`;
* KD, PD and the ablation (chapters 3-5): :func:`kd_pairs`,
  :func:`iteration_points`, :func:`ablation_steps`;
* the comparison of arms (chapter 6): :func:`best_arm_summary`,
  :func:`roc_curves`, :func:`recist_calls`, :func:`decision_scores`,
  :func:`delong_comparisons`, :func:`calibration_of`, :func:`seed_spread`;
* the clinicians (chapter 7): :func:`reader_comparison`;
* heat maps (chapter 8): :func:`zero_maps_statement`, :func:`attention_statement`;
* the TRIPOD+AI checklist (chapter 10): :func:`checklist`;
* the signal sweep (chapter 11): :func:`sweep_results`, :func:`sweep_summary`;
* sentences: :func:`run_statement`, :func:`learning_statement`,
  :func:`chapter_learning_statement`.

References
----------
Han et al. 2025, Scientific Reports (Tables 1-4, Figs. 3-6). Collins GS et al.
TRIPOD+AI statement. BMJ 385:e078378 (2024).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

import pdlib
from pdlib import diagnostics, paper, provenance, stats, verdict
from pdlib.arms import ARMS, final_member, study_members, teacher_arm
from pdlib.manifest import Manifest, load_manifest
from pdlib.paths import member_dir
from pdlib.vocab import SPLITS, other_group

#: Significance level of the tests the chapters count.
ALPHA = 0.05

#: What a chapter says when none of its arms is part of the study.
NO_ARM_TEXT = "No arm of this page is part of this study."


def arm_dir(results_dir: str | os.PathLike, arm: str, *, seed: int) -> Path:
    """Run folder of an arm's final member, whose predictions are the arm's."""
    return member_dir(results_dir, seed, final_member(arm))


# --------------------------------------------------------------------------- predictions and metrics


def arm_predictions(results_dir: str | os.PathLike, arm: str, *, seed: int) -> pd.DataFrame:
    """Patient predictions of an arm's final member, with out-of-fold scores when trained.

    Returns
    -------
    DataFrame
        ``patient_id, split, recist, label, score`` and ``oof_score`` (NaN for
        test patients, or everywhere without out-of-fold runs).

    Raises
    ------
    FileNotFoundError
        Naming the arm, the seed and the folder without predictions.
    """
    folder = arm_dir(results_dir, arm, seed=seed)
    path = folder / "patient_predictions.csv"
    if not path.is_file():
        raise FileNotFoundError(f"arm {arm} (seed {seed}): no predictions in {folder}; run the study pipeline "
                                f"(make study) or pdlib.train.run_arm first")
    table = pd.read_csv(path, dtype={"patient_id": str})
    table = table[table["split"].isin(SPLITS)].reset_index(drop=True)
    oof = folder / "oof_predictions.csv"
    if oof.is_file():
        scores = pd.read_csv(oof, dtype={"patient_id": str}).set_index("patient_id")["score"]
        table["oof_score"] = table["patient_id"].map(scores)
    else:
        table["oof_score"] = float("nan")
    return table


def slice_predictions(results_dir: str | os.PathLike, arm: str, *, seed: int) -> pd.DataFrame:
    """``slice_predictions.csv`` of an arm's final member (``patient_id, slice_index, prob``)."""
    return pd.read_csv(arm_dir(results_dir, arm, seed=seed) / "slice_predictions.csv", dtype={"patient_id": str})


def _performance(predictions: pd.DataFrame) -> pd.DataFrame:
    if predictions["oof_score"].isna().all():
        predictions = predictions.drop(columns="oof_score")
    return stats.performance_table(predictions)


def arm_performance(results_dir: str | os.PathLike, arm: str, *, seed: int) -> pd.DataFrame:
    """:func:`pdlib.stats.performance_table` of one arm (out-of-fold scores used when trained)."""
    return _performance(arm_predictions(results_dir, arm, seed=seed))


def metrics_long(results_dir: str | os.PathLike, arms: Sequence[str], *, seeds: Sequence[int]) -> pd.DataFrame:
    """:func:`pdlib.stats.performance_table` of every arm and seed, stacked.

    Returns
    -------
    DataFrame
        The performance-table columns plus ``arm``, ``label`` (the paper's
        row name) and ``seed``; four rows per arm and seed.
    """
    frames = [arm_performance(results_dir, arm, seed=seed).assign(arm=arm, label=ARMS[arm].label, seed=seed)
              for arm in arms for seed in seeds]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _interval(value: float, low: float, high: float, *, percent: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if percent:
        return f"{100 * value:.1f}% ({100 * low:.1f}–{100 * high:.1f})"
    return f"{value:.2f} ({low:.2f}–{high:.2f})"


def metric_display(long: pd.DataFrame) -> pd.DataFrame:
    """Readable rows of :func:`metrics_long`: estimates with their 95% intervals as text.

    Returns
    -------
    DataFrame
        ``model, threshold rule, set, threshold, AUC (95% CI), accuracy,
        sensitivity, specificity`` (accuracies in percent with Wilson
        intervals; the AUC with its DeLong interval).
    """
    rows = []
    for _, r in long.iterrows():
        rows.append({
            "model": r["label"],
            "threshold rule": r["way"],
            "set": r["split"],
            "threshold": "n/a" if pd.isna(r["threshold"]) else f"{r['threshold']:.3f}",
            "AUC (95% CI)": _interval(r["auc"], r["auc_ci_low"], r["auc_ci_high"], percent=False),
            **{name: _interval(r[name], r[f"{name}_ci_low"], r[f"{name}_ci_high"], percent=True)
               for name in ("accuracy", "sensitivity", "specificity")},
        })
    return pd.DataFrame(rows)


def beside_paper(long: pd.DataFrame, table: str, *, way: str = "apparent") -> pd.DataFrame:
    """This run's AUC, accuracy, sensitivity and specificity next to the printed values of ``table``.

    Parameters
    ----------
    long : DataFrame
        :func:`metrics_long` (one seed).
    table : {"Table 2", "Table 4"}
    way : {"apparent", "pre-specified"}
        Threshold rule of this run's rows (the paper's test rows are apparent).

    Returns
    -------
    DataFrame
        One row per (model, set): ``model, set`` and, per metric, ``<metric>
        (run)`` and ``<metric> (paper)``; paper cells are NaN where the paper
        has no such row.
    """
    ours = long[long["way"] == way]
    printed = paper.values_for(list(dict.fromkeys(ours["label"])), table)
    rows = []
    for _, r in ours.iterrows():
        match = printed[(printed["label"] == r["label"]) & (printed["split"] == r["split"])]
        p = match.iloc[0] if len(match) else None
        row = {"model": r["label"], "set": r["split"]}
        for metric, column in (("auc", "auc"), ("acc", "accuracy"), ("sen", "sensitivity"), ("spe", "specificity")):
            row[f"{column} (run)"] = r[column]
            row[f"{column} (paper)"] = p[metric] if p is not None and metric in p else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def metric_row(long: pd.DataFrame, arm: str, *, split: str = "test", way: str = "apparent") -> pd.Series:
    """The row of ``arm`` on ``split`` under threshold rule ``way`` in :func:`metrics_long` (first seed)."""
    rows = long[(long["arm"] == arm) & (long["split"] == split) & (long["way"] == way)]
    if not len(rows):
        raise ValueError(f"no {split} row of arm {arm!r} ({way}) in the metrics")
    return rows.iloc[0]


# --------------------------------------------------------------------------- statements


def chance_tests(results_dir: str | os.PathLike, arms: Sequence[str], *, seed: int,
                 split: str = "test") -> pd.DataFrame:
    """Test of AUC = 0.5 for every arm on one split, with Holm's correction over the arms.

    Returns
    -------
    DataFrame
        One row per arm: ``arm, label, auc, p_value`` (Mann-Whitney test of
        AUC = 0.5, :func:`pdlib.stats.auc_vs_chance`) and ``p_holm`` (adjusted
        over the arms given, :func:`pdlib.stats.holm_adjust`).
    """
    rows = []
    for arm in arms:
        table = arm_predictions(results_dir, arm, seed=seed)
        table = table[table["split"] == split]
        rows.append({"arm": arm, "label": ARMS[arm].label, "auc": stats.roc_auc(table["label"], table["score"]),
                     "p_value": stats.auc_vs_chance(table["label"], table["score"])})
    frame = pd.DataFrame(rows, columns=["arm", "label", "auc", "p_value"])
    frame["p_holm"] = stats.holm_adjust(frame["p_value"].to_numpy()) if len(frame) else []
    return frame


def _oracle_test_auc(twin_dir: str | os.PathLike | None) -> float | None:
    twin_json = Path(twin_dir) / "twin.json" if twin_dir else None
    if twin_json is None or not twin_json.is_file():
        return None
    return json.loads(twin_json.read_text())["oracle_auc"]["test"]


def learning_statement(long: pd.DataFrame, *, chance: pd.DataFrame | None = None,
                       twin_dir: str | os.PathLike | None = None, alpha: float = ALPHA) -> str:
    """Sentences, from the numbers, on whether the models of ``long`` separate the groups at all.

    Parameters
    ----------
    long : DataFrame
        :func:`metrics_long` (one seed).
    chance : DataFrame, optional
        :func:`chance_tests` of the same arms: adds how many differ from
        chance before and after Holm's correction.
    twin_dir : path, optional
        A digital twin: adds its test-set oracle AUC for comparison.
    alpha : float
        Level of the tests.

    Returns
    -------
    str
        Empty when ``long`` is empty.
    """
    if not len(long):
        return ""
    apparent = long[long["way"] == "apparent"]
    test = apparent[apparent["split"] == "test"].set_index("label")
    train = apparent[apparent["split"] == "train"].set_index("label")
    best = test.loc[test["auc"].idxmax()]
    n_above = int((test["auc_ci_low"] > 0.5).sum())
    text = (f"Of the {len(test)} models here, {n_above} have a test AUC whose 95% CI lies entirely above "
            f"0.5 (chance). The highest test AUC, {best['auc']:.2f} ({best.name}), has a 95% CI of "
            f"{best['auc_ci_low']:.2f} to {best['auc_ci_high']:.2f}, ")
    if best["auc_ci_low"] <= 0.5:
        text += ("which includes 0.5: this run gives no evidence that any of these models predicts the response "
                 "better than chance, and the differences between them are not improvements. ")
    else:
        text += "which excludes 0.5. "
    if chance is not None and len(chance) > 1:
        raw = int((chance["p_value"] < alpha).sum())
        held = int((chance["p_holm"] < alpha).sum())
        expected = alpha * len(chance)
        text += (f"Tested one by one (Mann-Whitney test of AUC = 0.5), {raw} of {len(chance)} differ from chance "
                 f"at the {100 * alpha:g}% level, where about {expected:.1f} would by luck alone if none had any "
                 f"skill; after Holm's correction for the {len(chance)} tests, {held} "
                 + ("does. " if held == 1 else "do. "))
    if len(train):
        text += (f"Their training AUCs range from {train['auc'].min():.2f} to {train['auc'].max():.2f}"
                 + (": they did not even fit their own training patients, i.e. they learned almost nothing "
                    "from the images. " if train["auc"].max() < 0.75 else ". "))
    oracle = _oracle_test_auc(twin_dir)
    if oracle is not None:
        text += (f"For comparison, the digital twin's oracle AUC on the test set (the best AUC reachable from "
                 f"the variables that generated the images) is {oracle:.2f}.")
    return text.strip()


def chapter_learning_statement(results_dir: str | os.PathLike, long: pd.DataFrame, *, seed: int,
                               twin_dir: str | os.PathLike | None = None) -> str:
    """:func:`learning_statement` of a chapter's arms with their :func:`chance_tests`, or :data:`NO_ARM_TEXT`."""
    if not len(long):
        return NO_ARM_TEXT
    chance = chance_tests(results_dir, list(dict.fromkeys(long["arm"])), seed=seed)
    return learning_statement(long, chance=chance, twin_dir=twin_dir) or NO_ARM_TEXT


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def arm_health(results_dir: str | os.PathLike, arms: Sequence[str], *, seed: int) -> pd.DataFrame:
    """Arms whose final member a rule of :mod:`pdlib.diagnostics` flags.

    Returns
    -------
    DataFrame
        ``arm, label, flags`` (the rules' labels joined by ``"; "``) and
        ``reasons`` (their sentences), one row per flagged arm in the order
        of ``arms``; empty when no rule fires.
    """
    rows = []
    for arm in arms:
        flags = diagnostics.member_flags(arm_dir(results_dir, arm, seed=seed))
        if flags:
            rows.append({"arm": arm, "label": ARMS[arm].label, "flags": "; ".join(f.label for f in flags),
                         "reasons": "; ".join(f.message for f in flags)})
    return pd.DataFrame(rows, columns=["arm", "label", "flags", "reasons"])


def data_quality_notes(results_dir: str | os.PathLike, arms: Sequence[str], *, seed: int) -> list[str]:
    """The data-quality notes of the members behind ``arms`` (``summary.json``), each once, in order."""
    notes: dict[str, None] = {}
    for key in study_members(arms):
        summary = member_dir(results_dir, seed, key) / "summary.json"
        if summary.is_file():
            notes.update(dict.fromkeys(json.loads(summary.read_text()).get("data_quality") or []))
    return list(notes)


def health_statement(results_dir: str | os.PathLike, arms: Sequence[str], *, seed: int) -> str:
    """Markdown: which arms failed by the rules of :mod:`pdlib.diagnostics`, and the data-quality notes."""
    if not arms:
        return NO_ARM_TEXT
    health = arm_health(results_dir, arms, seed=seed)
    rules = ", ".join(diagnostics.RULES.values())
    if health.empty:
        text = (f"None of the {_plural(len(arms), 'arm', 'arms')} is flagged by the rules for failed or "
                f"degenerate models ({rules}; `pdlib.diagnostics`).")
    else:
        listed = "; ".join(f"{row.label} ({row.flags})" for row in health.itertuples())
        text = (f"{_plural(len(health), 'arm is', 'arms are')} flagged by the rules for failed or degenerate "
                f"models ({rules}; `pdlib.diagnostics`): {listed}. Their numbers are shown but describe a model "
                "that did not learn what it is scored on.")
    notes = data_quality_notes(results_dir, arms, seed=seed)
    if notes:
        text += (f"\n\nData quality: {_plural(len(notes), 'note', 'notes')} from the training runs "
                 "(legal input that departs from what the paper computed):\n\n"
                 + "\n".join(f"- {note}" for note in notes))
    else:
        text += "\n\nData quality: no training run reported a departure from what the paper computed."
    return text


#: Plain-language source label of the run's own test set in the scorecard.
TEST_SOURCE = "this run's test set"

#: Plain-language source label of the run's training patients.
TRAIN_SOURCE = "this run's training set"


def _scores_of(results_dir, arms, *, seed: int, split: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Labels and one score column per arm for the patients of ``split``, aligned by patient id."""
    frames = {arm: split_predictions(results_dir, arm, seed=seed, split=split).set_index("patient_id")
              for arm in arms}
    order = next(iter(frames.values())).index
    labels = next(iter(frames.values()))["label"].to_numpy(dtype=int)
    return labels, pd.DataFrame({arm: frame.loc[order, "score"].to_numpy() for arm, frame in frames.items()},
                                index=order)


def claims_scorecard(results_dir: str | os.PathLike, manifest: Manifest, arms: Sequence[str], *,
                     seed: int) -> pd.DataFrame:
    """The paper's claims (``pdlib/data/claims.yaml``) judged on this run (:func:`pdlib.verdict.scorecard`).

    Every claim whose arms the study trained is estimated on the run's own
    patients: AUC differences and values on the test set (DeLong), threshold
    metrics at each arm's pre-specified threshold (the one the chapters
    label: out-of-fold where the study trained folds, otherwise chosen on
    the training patients), training-set claims on the training patients,
    and comparisons with the readers of ``readers.csv`` on their test
    patients. Claims the study cannot estimate (arms it did not train,
    training times) are listed as "not estimated". The verdict rule is the
    one written down in :func:`pdlib.verdict.scorecard`.
    """
    claims = verdict.load_claims()
    trained = [c for c in claims if all(a in arms for a in c.arms)]
    needed = list(dict.fromkeys(a for c in trained for a in c.arms))
    parts = []
    if needed:
        long = metrics_long(results_dir, needed, seeds=[seed])
        pre = long[(long["way"] == "pre-specified") & (long["split"] == "test")].set_index("arm")["threshold"]
        thresholds = {arm: float(pre[arm]) for arm in needed if arm in pre.index and np.isfinite(pre[arm])}
        y_test, test = _scores_of(results_dir, needed, seed=seed, split="test")
        parts.append(verdict.claim_estimates(trained, y_test, test, source=TEST_SOURCE, thresholds=thresholds))
        y_train, train = _scores_of(results_dir, needed, seed=seed, split="train")
        parts.append(verdict.claim_estimates(trained, y_train, train, source=TRAIN_SOURCE, thresholds=thresholds,
                                             population="train"))
        readers = manifest.readers
        if readers is not None and len(readers) and any(c.versus for c in trained):
            calls = readers.pivot(index="patient_id", columns="reader", values="call")
            calls = calls.loc[[p for p in test.index if p in calls.index]]
            positive = manifest.positive_class
            reader_calls = pd.DataFrame({r: (calls[r] == positive).astype(int).to_numpy() for r in calls.columns})
            keep = test.index.isin(calls.index)
            parts.append(verdict.reader_claim_estimates(
                [c for c in trained if c.versus], y_test[keep], test.loc[keep].reset_index(drop=True),
                reader_calls, thresholds=thresholds, source=TEST_SOURCE))
    estimates = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
        else pd.DataFrame(columns=["claim", "source", "estimate", "ci_low", "ci_high"])
    return verdict.scorecard(claims, estimates)


def scorecard_display(card: pd.DataFrame) -> pd.DataFrame:
    """:func:`claims_scorecard` for people: one row per claim and source, plain headers, interval in the cell."""
    rows = []
    for row in card.itertuples():
        shown = "" if not np.isfinite(row.estimate) else (
            f"{row.estimate:.2f} ({row.ci_low:.2f} to {row.ci_high:.2f})" if np.isfinite(row.ci_low)
            else f"{row.estimate:.2f}")
        rows.append({"Claim of the paper": row.statement, "Where": row.where, "Paper's evidence": row.evidence,
                     "Patients": row.source or "", "This run (95% CI)": shown, "Verdict": row.verdict})
    return pd.DataFrame(rows)


def scorecard_statement(card: pd.DataFrame, *, n_test: int) -> str:
    """One generated sentence counting the verdicts of :func:`claims_scorecard` (``n_test``: test patients)."""
    claims = card["claim"].nunique()
    counts = card["verdict"].value_counts()
    parts = [f"{_plural(int(counts[v]), 'row', 'rows')} {v}" for v in
             ("supported", "contradicted", "not decidable", "not estimated") if counts.get(v, 0)]
    return (f"{_plural(claims, 'claim', 'claims')} of the paper, judged on this run by the rule fixed in advance "
            f"(`pdlib.verdict.scorecard`): " + "; ".join(parts) + f". With {n_test} test patients most "
            "comparisons between arms cannot be decided; a row is a verdict about this run, not about the "
            "paper's cohort.")


def run_statement(*, config_name: str, profile: str, manifest_dir: str | os.PathLike, seeds: Sequence[int],
                  overrides: Mapping | None = None) -> str:
    """One Markdown sentence saying which study, profile and cohort produced a page's numbers."""
    manifest = load_manifest(manifest_dir, check_files=False)
    counts = manifest.patients["split"].value_counts()
    seeds = list(seeds)
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
    changed = f" with {', '.join(f'`{k}={v}`' for k, v in sorted((overrides or {}).items()))}" if overrides else ""
    training = provenance.training_code_hash()
    return (f"The numbers on this page were produced by the study configuration **{config_name}** "
            f"(training profile **{profile}**{changed}, {seed_text}) on the cohort **{manifest.name}** "
            f"({int(counts.get('train', 0))} training and {int(counts.get('test', 0))} test patients), "
            f"with pdlib {pdlib.__version__}; the models were trained by training code `{training}` "
            "(the digest of `pdlib.train` and what it imports, recorded in each member's stamp).")


# --------------------------------------------------------------------------- the cohort (chapter 1)


def cohort_table1(patients: pd.DataFrame) -> pd.DataFrame:
    """Table 1 of a cohort, laid out and worded as Han et al. 2025 print it.

    Parameters
    ----------
    patients : DataFrame
        ``patients.csv`` of a manifest (columns ``split, response, age`` and
        the covariates of :data:`pdlib.paper.TABLE1_ROWS`).

    Returns
    -------
    DataFrame
        Index ``(variable, category)``: first ``("Age, years", "")`` as
        ``mean(min–max)``, then one row per category as ``count(percent%)``
        with two decimals; columns ``train_GR, train_PR, test_GR, test_PR``.
        An empty group gives empty strings.
    """
    columns = {}
    for split, group in paper.TABLE1_COLUMNS:
        part = patients[(patients["split"] == split) & (patients["response"] == group)]
        n = len(part)
        cells = {paper.TABLE1_AGE_ROW: (f"{part['age'].mean():.1f}({part['age'].min()}–{part['age'].max()})"
                                        if n else "")}
        for (column, value), row in paper.TABLE1_ROWS.items():
            k = int((part[column] == value).sum())
            cells[row] = f"{k}({100 * k / n:.2f}%)" if n else ""
        columns[f"{split}_{group}"] = cells
    table = pd.DataFrame(columns)
    table.index = pd.MultiIndex.from_tuples(table.index, names=["variable", "category"])
    return table


def table1_beside_paper(patients: pd.DataFrame) -> pd.DataFrame:
    """:func:`cohort_table1` (``this cohort``) beside :func:`pdlib.paper.table1` (``Han et al. 2025 (as printed)``)."""
    return pd.concat({"this cohort": cohort_table1(patients), "Han et al. 2025 (as printed)": paper.table1()},
                     axis=1)


def cohort_counts(manifest: Manifest) -> dict:
    """``cohort_name, n_patients, n_train, n_test`` of a manifest."""
    patients = manifest.patients
    return {"cohort_name": manifest.name, "n_patients": len(patients),
            "n_train": int((patients["split"] == "train").sum()),
            "n_test": int((patients["split"] == "test").sum())}


def oracle_statement(twin_dir: str | os.PathLike | None) -> str:
    """What the twin's oracle AUC is (``twin.json``), or that a real cohort has none."""
    twin_json = Path(twin_dir) / "twin.json" if twin_dir else None
    if twin_json is None or not twin_json.is_file():
        return ("This run used a cohort that is not a digital twin, so no oracle AUC exists: the "
                "signal in the images is unknown.")
    twin = json.loads(twin_json.read_text())
    oracle = twin["oracle_auc"]
    return (f"This cohort is a digital twin generated with signal strength "
            f"{twin['parameters']['signal_strength']:g} (seed {twin['parameters']['seed']}). "
            f"Its oracle AUC is {oracle['all']:.3f} over all patients, {oracle['train']:.3f} on the "
            f"training set and {oracle['test']:.3f} on the test set (expected "
            f"{twin['expected_oracle_auc']:.3f} for an infinite cohort). The test AUCs of the later "
            f"chapters should be read against the test-set value.")


# --------------------------------------------------------------------------- one arm (chapter 2)


def training_history(results_dir: str | os.PathLike, arm: str, *, seed: int) -> pd.DataFrame:
    """``metrics.csv`` of an arm's final member: one row per epoch (loss, accuracy, learning rate).

    Raises
    ------
    FileNotFoundError
        Naming the arm, the seed and the folder, when the member was not trained.
    """
    folder = arm_dir(results_dir, arm, seed=seed)
    path = folder / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"arm {arm} (seed {seed}): no training history in {folder}; run the study "
                                f"pipeline (make study) first")
    return pd.read_csv(path)


# --------------------------------------------------------------------------- KD, PD, ablation (chapters 3-5)


def kd_pairs(results_dir: str | os.PathLike, arms: Sequence[str], *, seed: int) -> pd.DataFrame:
    """Each KD arm's test AUC and accuracy (apparent threshold) next to its teacher trained alone.

    Returns
    -------
    DataFrame
        Two rows per arm, teacher first: ``KD arm, role, model, test AUC,
        test accuracy``.
    """
    rows = []
    for arm in arms:
        for role, name in (("teacher", teacher_arm(arm)), ("student", arm)):
            test = metric_row(metrics_long(results_dir, [name], seeds=[seed]), name)
            rows.append({"KD arm": ARMS[arm].label, "role": role, "model": ARMS[name].label,
                         "test AUC": test["auc"], "test accuracy": test["accuracy"]})
    return pd.DataFrame(rows, columns=["KD arm", "role", "model", "test AUC", "test accuracy"])


def students_better(pairs: pd.DataFrame) -> int:
    """How many students of :func:`kd_pairs` reach a higher test AUC than their teacher."""
    if not len(pairs):
        return 0
    gains = pairs.pivot(index="KD arm", columns="role", values="test AUC")
    return int((gains["student"] > gains["teacher"]).sum())


def iteration_points(results_dir: str | os.PathLike, arms: Sequence[str], *, seed: int) -> pd.DataFrame:
    """Test accuracy and AUC (apparent threshold) of PD chains against their number of iterations (Fig. 6).

    Returns
    -------
    DataFrame
        ``model, iteration, metric, value``: ``model`` is the printed name of
        the chain's architecture, ``metric`` is ``accuracy`` or ``AUC``;
        undefined values are left out.
    """
    points = []
    for arm in arms:
        test = metric_row(metrics_long(results_dir, [arm], seeds=[seed]), arm)
        for metric, column in (("accuracy", "accuracy"), ("AUC", "auc")):
            if pd.notna(test[column]):
                points.append({"model": ARMS[arm].model, "iteration": ARMS[arm].iterations, "metric": metric,
                               "value": float(test[column])})
    return pd.DataFrame(points, columns=["model", "iteration", "metric", "value"])


def ablation_steps(long: pd.DataFrame) -> pd.DataFrame:
    """Table 4 step by step: each ablation row's test AUC and its change from the step before.

    Parameters
    ----------
    long : DataFrame
        :func:`metrics_long` of ablation arms (one seed), in step order.

    Returns
    -------
    DataFrame
        ``model, step, auc, change in AUC, accuracy`` (apparent threshold);
        the change is NaN for each model's first step.
    """
    columns = ["model", "step", "auc", "change in AUC", "accuracy"]
    if not len(long):
        return pd.DataFrame(columns=columns)
    test = long[(long["split"] == "test") & (long["way"] == "apparent")].copy()
    test["model"] = [ARMS[a].model for a in test["arm"]]
    test["step"] = [ARMS[a].step for a in test["arm"]]
    test["change in AUC"] = test.groupby("model")["auc"].diff()
    return test[columns]


# --------------------------------------------------------------------------- comparing arms (chapter 6)


@dataclass(frozen=True)
class BestArm:
    """The best arm's test numbers that the results chapter states.

    Attributes
    ----------
    label : str
    auc, auc_ci_low, auc_ci_high : float
        Test AUC and its DeLong interval.
    accuracy_apparent, accuracy_prespecified : float
        Test accuracy in percent at the apparent and the pre-specified threshold.
    threshold : float
        The pre-specified (training-set) threshold.
    """

    label: str
    auc: float
    auc_ci_low: float
    auc_ci_high: float
    accuracy_apparent: float
    accuracy_prespecified: float
    threshold: float


def best_arm_summary(long: pd.DataFrame, best_arm: str) -> BestArm:
    """The test numbers of ``best_arm`` in :func:`metrics_long` (first seed)."""
    apparent, prespecified = metric_row(long, best_arm), metric_row(long, best_arm, way="pre-specified")
    return BestArm(label=ARMS[best_arm].label, auc=float(apparent["auc"]), auc_ci_low=float(apparent["auc_ci_low"]),
                   auc_ci_high=float(apparent["auc_ci_high"]),
                   accuracy_apparent=float(100 * apparent["accuracy"]),
                   accuracy_prespecified=float(100 * prespecified["accuracy"]),
                   threshold=float(prespecified["threshold"]))


def split_predictions(results_dir: str | os.PathLike, arm: str, *, seed: int, split: str = "test") -> pd.DataFrame:
    """The rows of :func:`arm_predictions` of one split (default the test patients)."""
    table = arm_predictions(results_dir, arm, seed=seed)
    return table[table["split"] == split].reset_index(drop=True)


def roc_points(predictions: pd.DataFrame, label: str) -> pd.DataFrame:
    """ROC curve of one model's predictions with its DeLong AUC: the input of :func:`pdlib.figures.plot_roc`."""
    auc = stats.delong_auc(predictions["label"], predictions["score"])
    curve = stats.roc_curve(predictions["label"], predictions["score"])
    return curve[["fpr", "tpr"]].assign(model=label, auc=auc.auc, auc_ci_low=auc.ci_low, auc_ci_high=auc.ci_high)


def roc_curves(results_dir: str | os.PathLike, arms: Sequence[str], *, seed: int) -> pd.DataFrame:
    """:func:`roc_points` of every arm on the test set, stacked (Fig. 3)."""
    return pd.concat([roc_points(split_predictions(results_dir, arm, seed=seed), ARMS[arm].label) for arm in arms],
                     ignore_index=True)


def recist_calls(results_dir: str | os.PathLike, arm: str, *, seed: int, threshold: float) -> pd.DataFrame:
    """Test patients by RECIST category and predicted group at ``threshold`` (Fig. 4A)."""
    test = split_predictions(results_dir, arm, seed=seed)
    called = (test["score"] >= threshold).astype(int)
    return stats.recist_confusion(test["recist"], called)


def _aligned_scores(results_dir, arms, *, reference: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    return {arm: split_predictions(results_dir, arm, seed=seed).set_index("patient_id")
            .loc[reference["patient_id"], "score"].to_numpy() for arm in arms}


def decision_scores(results_dir: str | os.PathLike, arms: Sequence[str], *, best_arm: str,
                    seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Test labels and every arm's scores in the best arm's patient order: the input of :func:`pdlib.stats.decision_curve`."""
    best = split_predictions(results_dir, best_arm, seed=seed)
    scores = _aligned_scores(results_dir, arms, reference=best, seed=seed)
    return best["label"].to_numpy(), {ARMS[arm].label: s for arm, s in scores.items()}


def delong_comparisons(results_dir: str | os.PathLike, arms: Sequence[str], *, best_arm: str,
                       seed: int) -> pd.DataFrame:
    """Paired DeLong tests of the best arm against every other arm on the same test patients.

    Returns
    -------
    DataFrame
        ``comparator, AUC best, AUC comparator, difference, p-value, Holm
        p-value`` (Holm's correction over the comparators).
    """
    best = split_predictions(results_dir, best_arm, seed=seed)
    others = [arm for arm in arms if arm != best_arm]
    scores = _aligned_scores(results_dir, others, reference=best, seed=seed)
    labels = best["label"].to_numpy()
    tests = []
    for arm in others:
        result = stats.delong_test(labels, best["score"], scores[arm])
        tests.append({"comparator": ARMS[arm].label, "AUC best": result.auc_a, "AUC comparator": result.auc_b,
                      "difference": result.difference, "p-value": result.p_value})
    table = pd.DataFrame(tests, columns=["comparator", "AUC best", "AUC comparator", "difference", "p-value"])
    table["Holm p-value"] = stats.holm_adjust(table["p-value"].to_numpy())
    return table


def calibration_of(results_dir: str | os.PathLike, arm: str, *, seed: int):
    """:func:`pdlib.stats.calibration` of an arm's test scores (up to 5 bins, at least 2 patients a bin)."""
    test = split_predictions(results_dir, arm, seed=seed)
    labels = test["label"].to_numpy()
    return stats.calibration(labels, test["score"].to_numpy(), n_bins=min(5, len(labels) // 2 or 1))


def seed_spread(results_dir: str | os.PathLike, arms: Sequence[str], *,
                seeds: Sequence[int]) -> tuple[pd.DataFrame | None, str]:
    """Test AUC and accuracy over seeds (:func:`pdlib.stats.aggregate_over_seeds`) and a sentence.

    Returns
    -------
    (DataFrame or None, str)
        None and a sentence saying so when the study trained one seed.
    """
    seeds = list(seeds)
    if len(seeds) < 2:
        return None, ("This study trained each arm with one seed, so the spread over seeds is not shown; "
                      "the configuration `sweep_seeds` repeats the key arms over several seeds.")
    long = metrics_long(results_dir, arms, seeds=seeds)
    test = long[(long["split"] == "test") & (long["way"] == "apparent")]
    tidy = test.melt(id_vars=["label", "seed"], value_vars=["auc", "accuracy"], var_name="metric")
    spread = stats.aggregate_over_seeds(tidy.rename(columns={"label": "arm"}))
    return spread, (f"The study trained every arm with {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
                    "test metrics over seeds:")


# --------------------------------------------------------------------------- the clinicians (chapter 7)


@dataclass(frozen=True)
class ReaderComparison:
    """The model against the clinicians' calls (Table 3).

    Attributes
    ----------
    table : DataFrame or None
        :func:`pdlib.stats.reader_comparison` (a ``model`` row and one row per
        reader); None without reader calls.
    statement, mcnemar_statement : str
        What the comparison shows, in words.
    threshold : float
        The model's pre-specified threshold.
    """

    table: pd.DataFrame | None
    statement: str
    mcnemar_statement: str
    threshold: float

    def shown(self) -> pd.DataFrame | None:
        """The columns the chapter shows."""
        if self.table is None:
            return None
        columns = ["reader", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "sensitivity", "specificity",
                   "model_only_correct", "reader_only_correct", "mcnemar_p"]
        return self.table[[c for c in columns if c in self.table]]

    def reader_points(self) -> pd.DataFrame | None:
        """Each clinician's sensitivity and specificity: the reader points of :func:`pdlib.figures.plot_roc`."""
        if self.table is None:
            return None
        return self.table[self.table["reader"] != "model"][["reader", "sensitivity", "specificity"]]


def reader_source_statement(manifest: Manifest, twin_dir: str | os.PathLike | None) -> str:
    """Where the readers' calls of chapter 7 come from, said plainly (generated on a twin, read on a cohort)."""
    readers = manifest.readers
    if readers is None or not len(readers):
        return "The cohort manifest has no reader calls (`readers.csv`), so this chapter has nothing to compare."
    names = ", ".join(dict.fromkeys(readers["reader"]))
    n = readers["patient_id"].nunique()
    if twin_dir is not None and (Path(twin_dir) / "twin.json").is_file():
        return (f"The calls of {names} on this page were not made by clinicians: the digital twin generated them "
                f"(`pdlib.twin`) so that each reader's accuracy, sensitivity and specificity on the {n} test "
                "patients reproduce Table 3 of the paper exactly. The comparison therefore places this run's model "
                "against the operating points the paper reports; the kappa values and McNemar tests below describe "
                "these generated calls, not the agreement or the skill of real clinicians.")
    return (f"The calls are those of {names} in the cohort manifest's `readers.csv` ({n} test patients), "
            "made without the model's output.")


def reader_comparison(results_dir: str | os.PathLike, manifest: Manifest, best_arm: str, *,
                      seed: int, alpha: float = ALPHA) -> ReaderComparison:
    """Compare the best arm at its pre-specified threshold with the manifest's reader calls."""
    predictions = arm_predictions(results_dir, best_arm, seed=seed)
    performance = _performance(predictions).set_index(["way", "split"])
    threshold = float(performance.loc[("pre-specified", "test"), "threshold"])
    readers = manifest.readers
    if not len(readers):
        return ReaderComparison(
            None, "This cohort's manifest has no reader calls (`readers.csv`), so there is nothing to compare.",
            "No McNemar test without reader calls.", threshold)
    table = stats.reader_comparison(predictions, readers, threshold=threshold,
                                    positive_class=manifest.positive_class,
                                    negative_class=other_group(manifest.positive_class))
    text = (f"{readers['reader'].nunique()} readers called {readers['patient_id'].nunique()} test patients. "
            f"The model row uses {ARMS[best_arm].label} at its pre-specified threshold {threshold:.3f}.")
    model_test = performance.loc[("apparent", "test")]
    text += (f" That model's test AUC is {model_test['auc']:.2f} (95% CI {model_test['auc_ci_low']:.2f} to "
             f"{model_test['auc_ci_high']:.2f})"
             + (", an interval that includes 0.5: in this run the model does not separate the groups better than "
                "chance, so the clinicians are compared with a model that has learned almost nothing."
                if model_test["auc_ci_low"] <= 0.5 else "."))
    significant = table["mcnemar_p"].lt(alpha).sum()
    mcnemar = (f"{int(significant)} of {len(table) - 1} clinicians differ from the model at the {100 * alpha:g}% "
               f"level (exact McNemar test on the discordant patients).")
    return ReaderComparison(table, text, mcnemar, threshold)


# --------------------------------------------------------------------------- heat maps (chapter 8)


def zero_maps_statement(n_zero: int, n_maps: int) -> str:
    """How many of the heat maps shown are zero everywhere, and what that means."""
    if not n_zero:
        return f"None of the {n_maps} heat maps shown is zero everywhere."
    return (f"{n_zero} of the {n_maps} heat maps shown are zero everywhere: for those slices the model's last "
            "convolutional layer gives no positive evidence for the positive class, which is what a model that has "
            "learned little from the images produces.")


def attention_statement(mass: pd.DataFrame | None) -> str:
    """Whether the heat maps' mass falls inside the tumour, from :func:`pdlib.explain.tumour_attention`."""
    if mass is None:
        return "This cohort has no tumour masks (not a digital twin), so the heat maps cannot be checked against them."
    inside, chance = mass["CAM mass inside"].mean(), mass["chance"].mean()
    n_maps, n_zero = int(mass["tumour slices"].sum()), int(mass["zero maps"].sum())
    n_undefined = int(mass["CAM mass inside"].isna().sum())
    zero_text = (f"{n_zero} of the {n_maps} heat maps of tumour slices ({100 * n_zero / n_maps:.0f}%) are zero "
                 "everywhere: the model gives no positive evidence for the positive class on them. "
                 if n_zero else "")
    if np.isnan(inside):
        return (zero_text + f"For all {len(mass)} test patients whose kept slices show the tumour the heat maps "
                "are zero everywhere, so the share of their mass inside the tumour mask is undefined and no "
                f"number can be given (an evenly spread map would put {100 * chance:.1f}% inside). This is what "
                "a model that has learned almost nothing from the images looks like.")
    return (zero_text + f"Over the {len(mass) - n_undefined} test patients whose kept slices show the tumour "
            f"and whose heat maps are not all zero, a mean {100 * inside:.1f}% of the heat maps' mass falls "
            f"inside the tumour mask, against {100 * chance:.1f}% for an evenly spread map; the model's "
            f"attention is {'concentrated on' if inside > chance else 'not concentrated on'} the tumour."
            + (f" {n_undefined} patients with only zero maps are left out of that mean." if n_undefined else ""))


# --------------------------------------------------------------------------- TRIPOD+AI (chapter 10)


def _either(values) -> str:
    return " or ".join(map(str, sorted(values)))


def checklist(*, manifest: Manifest, results_dir: str | os.PathLike, arms: Sequence[str], best_arm: str,
              seeds: Sequence[int], profile: str) -> pd.DataFrame:
    """The TRIPOD+AI items a reproduction can answer, answered from this run.

    Parameters
    ----------
    manifest : Manifest
        The cohort.
    results_dir : path
        Run folders of the study.
    arms : sequence of str
        Every arm of the study (their members' ``config.json`` are read).
    best_arm : str
        The model whose threshold and calibration are reported.
    seeds : sequence of int
        The study's seeds (run folders of ``seeds[0]`` are read).
    profile : str
        Training profile.

    Returns
    -------
    DataFrame
        ``item, answer from this run``.
    """
    patients = manifest.patients
    by_split = patients.groupby(["split", "response"]).size().unstack(fill_value=0)
    members = study_members(arms)
    records = [json.loads((member_dir(results_dir, seeds[0], key) / "config.json").read_text()) for key in members]
    train_ids = set(patients.loc[patients["split"] == "train", "patient_id"])
    test_ids = set(patients.loc[patients["split"] == "test", "patient_id"])
    prespecified = arm_performance(results_dir, best_arm, seed=seeds[0]).set_index(["way", "split"]).loc[
        ("pre-specified", "test")]
    calibration = calibration_of(results_dir, best_arm, seed=seeds[0])
    n_train_used = {r["data"]["n_train_patients"] for r in records}
    n_test_used = {r["data"]["n_test_patients"] for r in records}
    items = [
        ("Sample size", f"{len(patients)} patients: training {by_split.loc['train'].to_dict()}, "
                        f"test {by_split.loc['test'].to_dict()} (counts per response group)."),
        ("Outcome", f"Response group from RECIST 1.1; the positive class (score 1) is {manifest.positive_class}."),
        ("Data leakage", f"{len(train_ids & test_ids)} patients in both splits; each of the {len(members)} trained "
                         f"models learned from {_either(n_train_used)} training "
                         f"patients and only scored the {_either(n_test_used)} test patients."),
        ("Model selection", f"Fixed number of epochs ({records[0]['train_config']['epochs']}); no model or epoch "
                            "was chosen on test data."),
        ("Threshold", f"Pre-specified on training patients ({prespecified['threshold_source']}): "
                      f"{prespecified['threshold']:.3f}; the apparent test-set threshold is reported beside it."),
        ("Uncertainty", "DeLong 95% intervals for AUCs, Wilson 95% intervals for accuracy, sensitivity and "
                        "specificity; paired DeLong and exact McNemar tests."),
        ("Calibration", f"Test set: slope {calibration.slope:.2f}, intercept {calibration.intercept:.2f}, "
                        f"Brier score {calibration.brier:.3f}."),
        ("External validation", "None: one cohort, split once into training and test sets "
                                f"(cohort: {manifest.name})."),
        ("Code availability", "All code, the pipeline and this book: the project repository, with the exact "
                              "versions of the reference run in constraints.txt."),
        ("Data availability", "The digital twin is regenerated by `make twin`; the hospital cohort of the paper "
                              "is available from its authors on reasonable request."),
        ("Reproducibility", f"Training profile {profile}, seeds {list(seeds)}; same seed, same numbers on a CPU."),
    ]
    return pd.DataFrame(items, columns=["item", "answer from this run"])


# --------------------------------------------------------------------------- the signal sweep (chapter 11)


def sweep_results(sweep: Mapping | None) -> pd.DataFrame:
    """Test AUC (apparent threshold) of every sweep arm, seed and twin, with the twin's test oracle AUC.

    Parameters
    ----------
    sweep : mapping or None
        ``{"cohorts": [...], "arms": [...], "seeds": [...]}`` as the pipeline
        passes it (:func:`pdlib.pipeline.sweep_cohorts`); None: no sweep.

    Returns
    -------
    DataFrame
        ``arm, signal, n_patients, seed, metric, value, oracle AUC (test)``
        (empty without a sweep).
    """
    rows = []
    for cohort in (sweep or {}).get("cohorts", []):
        twin = json.loads((Path(cohort["twin"]) / "twin.json").read_text())
        for arm in sweep["arms"]:
            long = metrics_long(cohort["results"], [arm], seeds=sweep["seeds"])
            for _, r in long[(long["split"] == "test") & (long["way"] == "apparent")].iterrows():
                rows.append({"arm": ARMS[arm].label, "signal": cohort["signal"], "n_patients": cohort["n_patients"],
                             "seed": r["seed"], "metric": "AUC", "value": r["auc"],
                             "oracle AUC (test)": twin["oracle_auc"]["test"]})
    return pd.DataFrame(rows)


def sweep_statement(sweep: Mapping | None) -> str:
    """What the sweep trained, or how to run one."""
    if not sweep:
        return ("This study configuration runs no signal sweep. The configuration `sweep_signal` does: "
                "`make study PROFILE=sweep_signal` trains its arms on twins of several signal strengths and "
                "builds this chapter from them.")
    return (f"The sweep trained {len(sweep['arms'])} arms with {len(sweep['seeds'])} seed(s) on "
            f"{len(sweep['cohorts'])} twins (signal strengths "
            f"{sorted({c['signal'] for c in sweep['cohorts']})}, cohort sizes "
            f"{sorted({c['n_patients'] for c in sweep['cohorts']})}).")


def sweep_summary(results: pd.DataFrame) -> pd.DataFrame | None:
    """Mean test AUC over seeds per cohort size, signal and arm, beside the oracle AUC (None when empty)."""
    if not len(results):
        return None
    return results.groupby(["n_patients", "signal", "arm"]).agg(
        test_auc=("value", "mean"), oracle_auc=("oracle AUC (test)", "first"), seeds=("seed", "nunique"))
