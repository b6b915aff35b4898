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
* the verdict (chapter 12): :func:`verdict_run` reads every score once (with
  :func:`external_predictions`, the external set's ``external_predictions.csv``)
  into a :class:`VerdictRun`; :func:`verdict_run_statement`,
  :func:`threshold_statement`; AUCs and ranking: :func:`verdict_aucs`,
  :func:`verdict_mean_aucs`, :func:`auc_ranking`, :func:`auc_by_seed`,
  :func:`ranking_statement`, :func:`verdict_seed_spread`,
  :func:`seed_spread_statement`; compared pairs: :func:`verdict_pairs`,
  :func:`paired_seeds`, :func:`paired_seed_display`,
  :func:`paired_summary_display`, :func:`paired_statement`; the paper's
  design: :func:`design_simulations`, :func:`design_display`,
  :func:`design_statement`, :func:`power_table`, :func:`power_display`,
  :func:`power_statement`; the claims per source: :func:`verdict_scorecard`,
  :func:`scorecard_counts`, :func:`verdict_scorecard_statement`;
* sentences: :func:`run_statement`, :func:`learning_statement`,
  :func:`chapter_learning_statement`.

References
----------
Han et al. 2025, Scientific Reports (Tables 1-4, Figs. 3-6). Collins GS et al.
TRIPOD+AI statement. BMJ 385:e078378 (2024).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm as _scipy_norm

import pdlib
from pdlib import diagnostics, paper, provenance, stats, verdict
from pdlib.arms import ARCHITECTURES, ARMS, final_member, study_members, teacher_arm
from pdlib.config import resolve_config
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


#: The threshold sources of :func:`pdlib.stats.performance_table`, the one place they are named: the short
#: rule (:func:`verdict_run`), the label of a table's row and the words of a sentence.
THRESHOLD_SOURCES = {
    "youden_train_oof": {"rule": "out-of-fold", "label": "pre-specified: out-of-fold",
                         "words": "Youden's index on out-of-fold scores of the training patients"},
    "youden_train_resubstitution": {"rule": "resubstitution", "label": "pre-specified: training scores",
                                    "words": "Youden's index on the training patients' own scores (resubstitution)"},
    "youden_test": {"rule": "apparent", "label": "apparent (Youden on these patients)",
                    "words": "Youden's index on the test patients themselves (apparent)"},
}

#: Threshold rules of :func:`verdict_run`'s ``thresholds``, by source.
THRESHOLD_RULES = {src: v["rule"] for src, v in THRESHOLD_SOURCES.items() if src != "youden_test"}


def threshold_rule_label(way: str, source: str | None = None) -> str:
    """``apparent (Youden on these patients)``, ``pre-specified: out-of-fold`` or ``pre-specified: training scores``."""
    if way == "apparent":
        return THRESHOLD_SOURCES["youden_test"]["label"]
    return THRESHOLD_SOURCES.get(source or "", {}).get("label", "pre-specified")


#: Names of the training and test sets in tables for people.
SET_NAMES = {"train": "training", "test": "test", "val": "validation"}


def metric_display(long: pd.DataFrame) -> pd.DataFrame:
    """Readable rows of :func:`metrics_long`: plain headers, estimates with their 95% intervals in the cell.

    Returns
    -------
    DataFrame
        ``Model, Patients, Threshold rule, Threshold, AUC (95% CI), Accuracy
        (95% CI), Sensitivity (95% CI), Specificity (95% CI)`` (proportions in
        percent with Wilson intervals; the AUC with its DeLong interval); the
        threshold rule names where a pre-specified threshold came from
        (out-of-fold or training scores). Show it with :func:`people_table`.
    """
    rows = []
    for _, r in long.iterrows():
        rows.append({
            "Model": r["label"],
            "Patients": SET_NAMES.get(r["split"], r["split"]),
            "Threshold rule": threshold_rule_label(r["way"], r.get("threshold_source")),
            "Threshold": "n/a" if pd.isna(r["threshold"]) else f"{r['threshold']:.3f}",
            "AUC (95% CI)": _interval(r["auc"], r["auc_ci_low"], r["auc_ci_high"], percent=False),
            **{f"{name.capitalize()} (95% CI)": _interval(r[name], r[f"{name}_ci_low"], r[f"{name}_ci_high"],
                                                          percent=True)
               for name in ("accuracy", "sensitivity", "specificity")},
        })
    return pd.DataFrame(rows)


#: Words that keep their capitals in a plain header.
_HEADER_WORDS = {"auc": "AUC", "ci": "CI", "ct": "CT", "gr": "GR", "pr": "PR", "kd": "KD", "pd": "PD",
                 "oof": "out-of-fold", "p": "p", "n": "n", "id": "ID", "brier": "Brier", "mcnemar": "McNemar",
                 "delong": "DeLong", "recist": "RECIST", "holm": "Holm"}


def plain_header(name) -> str:
    """A column name as a reader reads it: ``auc_ci_low`` -> ``AUC CI low``, ``model`` -> ``Model``."""
    if isinstance(name, tuple):
        return " ".join(plain_header(part) for part in name if str(part))
    words = [_HEADER_WORDS.get(w.lower(), w) for w in str(name).replace("_", " ").split(" ") if w]
    text = " ".join(words)
    return text if not text or words[0] in ("p", "n") else text[:1].upper() + text[1:]


def people_table(frame: pd.DataFrame, *, decimals: int = 3):
    """A table as the book shows it: no index column, plain headers, numbers rounded, no ``NaN`` (a ``Styler``).

    A meaningful index (named levels) becomes ordinary columns first. The
    HTML ids derive from the table's content, so a rerun writes the same
    bytes and two tables of one page do not share ids.
    """
    frame = frame.copy()
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    frame.columns = [plain_header(c) for c in frame.columns]
    uid = hashlib.sha1(frame.to_csv().encode("utf-8")).hexdigest()[:10]

    def cell(value):
        if isinstance(value, (float, np.floating)):
            return "" if not np.isfinite(value) else f"{value:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:.0f}"
        return value

    return frame.style.hide(axis="index").format(cell).set_uuid(uid)


def csv_download(frame: pd.DataFrame, filename: str, *, text: str = "Download the full table (CSV)") -> str:
    """An HTML link that downloads ``frame`` as a CSV file, embedded in the page (no file beside the book)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+\.csv", filename):
        raise ValueError(f"csv_download: filename must be a plain name ending in .csv, got {filename!r}")
    payload = base64.b64encode(frame.to_csv(index=False).encode("utf-8")).decode("ascii")
    return f'<a download="{filename}" href="data:text/csv;base64,{payload}">{html.escape(text)}</a>'


def threshold_source_statement(long: pd.DataFrame) -> str:
    """Which arms' pre-specified thresholds came from out-of-fold scores and which from training scores (generated)."""
    pre = long[(long["way"] == "pre-specified") & (long["split"] == "test")]
    if pre.empty:
        return "No arm of this page is part of this study."
    by_source = {src: list(dict.fromkeys(pre.loc[pre["threshold_source"] == src, "label"]))
                 for src in ("youden_train_oof", "youden_train_resubstitution")}
    oof, resub = by_source["youden_train_oof"], by_source["youden_train_resubstitution"]
    lead = "Pre-specified thresholds are fixed before any test patient is scored: "
    if oof and not resub:
        return lead + "for every arm on this page by Youden's index on out-of-fold scores of the training patients."
    if resub and not oof:
        return (lead + "for every arm on this page by Youden's index on the training patients' own scores "
                "(resubstitution; this study trained no out-of-fold runs for them).")
    return (lead + f"by Youden's index on out-of-fold scores of the training patients for {_listing(oof)}, and on the "
            f"training patients' own scores (resubstitution) for the other {_plural(len(resub), 'arm', 'arms')} "
            f"({_listing(resub)}).")


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


#: Printed model names by architecture (:data:`pdlib.arms.ARCHITECTURES`).
ARMS_MODEL_NAMES = {arch: printed for arch, (_, _, printed) in ARCHITECTURES.items()}

#: How the book names the groups of arms (:attr:`pdlib.arms.Arm.group`).
GROUP_NAMES = {"baseline": "Baselines", "kd": "Knowledge distillation", "pd": "Progressive distill",
               "iteration": "PD iterations", "ablation": "Ablation", "control": "Controls"}

#: What the profiles' models are, for labels and captions.
SCALE_NAMES = {"smoke": "smoke profile: tiny models", "demo": "demo profile: scaled-down models, 56 px crops",
               "paper": "paper profile: the paper's models, 224 px crops"}


def arms_by_group(arms: Sequence[str]) -> dict[str, list[str]]:
    """The study's arms by the paper's grouping (:data:`GROUP_NAMES` as keys, in the paper's order), empty groups left out."""
    out: dict[str, list[str]] = {}
    for group in GROUP_NAMES:
        members = [a for a in arms if ARMS[a].group == group]
        if members:
            out[GROUP_NAMES[group]] = members
    return out


#: The three curves of the paper's Fig. 4B: EfficientNet-B7 alone, with KD, with PD.
FIG4B_ARMS = ("efficientnet_b7", "kd_b7", "pd_b7")


def fig4b_arms(arms: Sequence[str]) -> list[str]:
    """The arms of the paper's Fig. 4B (:data:`FIG4B_ARMS`) that the study trained."""
    return [a for a in FIG4B_ARMS if a in arms]


def forest_table(long: pd.DataFrame, table: str = "Table 2", *, split: str = "test",
                 way: str = "apparent", by_model: bool = False) -> pd.DataFrame:
    """Rows of :func:`pdlib.figures.plot_forest`: each arm's AUC with its interval and the paper's value.

    Returns
    -------
    DataFrame
        ``model, group, estimate, ci_low, ci_high, paper`` in the order of
        ``long``, grouped as the paper groups its rows (:data:`GROUP_NAMES`),
        or by the final model (``by_model``: Table 4's B7 and B3 blocks).
    """
    rows = long[(long["way"] == way) & (long["split"] == split)]
    printed = paper.values_for(list(dict.fromkeys(rows["label"])), table)
    out = []
    for _, r in rows.iterrows():
        match = printed[(printed["label"] == r["label"]) & (printed["split"] == split)]
        group = ARMS[r["arm"]].model if by_model else GROUP_NAMES.get(ARMS[r["arm"]].group, ARMS[r["arm"]].group)
        out.append({"model": r["label"], "group": group,
                    "estimate": r["auc"], "ci_low": r["auc_ci_low"], "ci_high": r["auc_ci_high"],
                    "paper": float(match.iloc[0]["auc"]) if len(match) and "auc" in match.columns else float("nan")})
    return pd.DataFrame(out, columns=["model", "group", "estimate", "ci_low", "ci_high", "paper"])


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
        readers = _reader_estimates(manifest, trained, y_test, test, thresholds, TEST_SOURCE)
        if readers is not None:
            parts.append(readers)
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


def markdown_html(text: str) -> str:
    """A generated Markdown sentence as HTML, for text glued into another page of the book.

    A page that pastes a glued value from another document (``{glue}`` with
    ``:doc:``) shows its HTML, not its Markdown; this renders the Markdown
    (CommonMark, as the book's generated text) once, here.
    """
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").render(text).strip()


def glance_statement(card: pd.DataFrame, long: pd.DataFrame, *, best_arm: str, profile: str,
                     cohort_name: str, n_test: int) -> str:
    """The introduction's paragraph: what this run found about the paper's claims and its best model (generated).

    Parameters
    ----------
    card : DataFrame
        :func:`claims_scorecard` of the run.
    long : DataFrame
        :func:`metrics_long` of the run's Table 2 arms (first seed).
    best_arm : str
        The paper's best model.
    profile, cohort_name : str
    n_test : int
        Test patients.
    """
    claims = card["claim"].nunique()
    verdicts = card.groupby("claim")["verdict"].agg(lambda v: "contradicted" if "contradicted" in set(v) else
                                                    "supported" if "supported" in set(v) else v.iloc[0])
    counts = verdicts.value_counts()
    tally = _listing([f"{int(counts[v])} {v}" for v in ("supported", "contradicted", "not decidable", "not estimated")
                      if counts.get(v, 0)])
    test = long[(long["way"] == "apparent") & (long["split"] == "test")].set_index("arm")
    text = (f"This run ({SCALE_NAMES.get(profile, profile + ' profile')}; cohort **{cohort_name}**, {n_test} test "
            f"patients) judged {_plural(claims, 'claim', 'claims')} of the paper by a rule fixed in advance: "
            f"{tally} (a claim counts as contradicted when any of its rows is).")
    if best_arm in test.index:
        best = test.loc[best_arm]
        printed = paper.values_for([best["label"]], "Table 2")
        paper_auc = (f" against {float(printed.loc[printed['split'] == 'test', 'auc'].iloc[0]):.2f} in the paper"
                     if len(printed[printed["split"] == "test"]) else "")
        text += (f" The paper's best model, {best['label']}, reaches a test AUC of {best['auc']:.2f} "
                 f"({best['auc_ci_low']:.2f} to {best['auc_ci_high']:.2f}){paper_auc}.")
        top = test["auc"].idxmax()
        if top != best_arm and test.loc[top, "auc"] > best["auc"]:
            overlap = test.loc[top, "auc_ci_low"] <= best["auc_ci_high"]
            text += (f" The highest test AUC of this run is {test.loc[top, 'label']}'s {test.loc[top, 'auc']:.2f} "
                     f"({test.loc[top, 'auc_ci_low']:.2f} to {test.loc[top, 'auc_ci_high']:.2f})"
                     + (f"; with {n_test} test patients the two intervals overlap." if overlap
                        else "; the two intervals do not overlap."))
    return text


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


def table1_for_people(patients: pd.DataFrame) -> pd.DataFrame:
    """Table 1 in one readable table: each cell holds this cohort's value and, after "vs", the paper's as printed.

    Returns
    -------
    DataFrame
        ``Variable, Category`` and one column per split and group
        (``Training GR``, ``Training PR``, ``Test GR``, ``Test PR``).
    """
    ours, printed = cohort_table1(patients), paper.table1()
    names = {"train": "Training", "test": "Test"}
    rows = []
    for (variable, category), row in ours.iterrows():
        out = {"Variable": variable, "Category": category}
        for column in ours.columns:
            split, group = column.split("_", 1)
            theirs = printed.loc[(variable, category), column] if (variable, category) in printed.index else ""
            out[f"{names.get(split, split)} {group}"] = f"{row[column]} vs {theirs}" if theirs else str(row[column])
        rows.append(out)
    return pd.DataFrame(rows)


def patient_flow(manifest: Manifest) -> dict:
    """Keywords of :func:`pdlib.figures.plot_patient_flow` (Fig. 1): the paper's exclusions, this run's sets.

    The patients assessed and excluded are the paper's (they happened before
    any manifest: the transcription in ``paper_numbers.yaml``); the paper
    prints its total as "excluded (n = 164)" although its reasons add up to
    far fewer, so the figure shows the exclusions by reason and reads 164 as
    the patients assessed when it equals the included ones plus the
    exclusions. The included patients and the sets are this run's manifest.
    """
    numbers = paper.load_paper_numbers()
    flow = next(c for c in numbers["counts"] if c.get("remaining", {}).get("what") == "included")
    exclusions = [(str(part["what"]), int(part["value"])) for part in flow["parts"]]
    printed_total, paper_included = int(flow["total"]["value"]), int(flow["remaining"]["value"])
    assessed = printed_total if printed_total == paper_included + sum(n for _, n in exclusions) else None
    patients = manifest.patients
    splits = []
    for split, name in (("train", "Training set"), ("test", "Test set")):
        part = patients[patients["split"] == split]
        groups = part["response"].value_counts()
        splits.append((name, int(len(part)), ", ".join(f"{g} {int(groups[g])}" for g in sorted(groups.index))))
    note = (f"Assessed and excluded: as reported by the paper, which prints {printed_total} as the number excluded; "
            f"{printed_total} = {paper_included} included + " + " + ".join(str(n) for _, n in exclusions)
            + " excluded is the reading shown. Included patients and sets: this run's manifest "
            f"({manifest.name}).")
    return {"assessed": assessed, "exclusions": exclusions, "included": int(len(patients)), "splits": splits,
            "note": note}


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
        ``model, iteration, metric, value, ci_low, ci_high, paper``: ``model``
        is the printed name of the chain's architecture, ``metric`` is
        ``accuracy`` (a fraction) or ``AUC``, the interval is Wilson's or
        DeLong's, ``paper`` the value the paper prints for the same chain
        (its Table 4 rows: iterations 0 to 2; NaN otherwise). Undefined values
        are left out.
    """
    points = []
    for arm in arms:
        long = metrics_long(results_dir, [arm], seeds=[seed])
        test = metric_row(long, arm)
        same = [a for a, other in ARMS.items() if other.group == "ablation" and other.final_key == ARMS[arm].final_key]
        printed = paper.values_for([ARMS[same[0]].label], "Table 4") if same else pd.DataFrame()
        printed = printed[printed["split"] == "test"] if len(printed) else printed
        for metric, column, key, scale in (("accuracy", "accuracy", "acc", 1.0), ("AUC", "auc", "auc", 1.0)):
            if pd.notna(test[column]):
                value = float(test[column]) * scale
                paper_value = float(printed.iloc[0][key]) if len(printed) and key in printed.columns else float("nan")
                points.append({"model": ARMS[arm].model, "iteration": ARMS[arm].iterations, "metric": metric,
                               "value": value, "ci_low": float(test[f"{column}_ci_low"]) * scale,
                               "ci_high": float(test[f"{column}_ci_high"]) * scale, "paper": paper_value})
    return pd.DataFrame(points, columns=["model", "iteration", "metric", "value", "ci_low", "ci_high", "paper"])


def iteration_table(points: pd.DataFrame) -> pd.DataFrame:
    """:func:`iteration_points` for people: one row per model and iteration, intervals in the cells, the paper beside."""
    rows = []
    for (model, iteration), part in points.groupby(["model", "iteration"], sort=False):
        row = {"Model": model, "Iteration": int(iteration)}
        for metric, name in (("accuracy", "Accuracy"), ("AUC", "AUC")):
            r = part[part["metric"] == metric]
            if len(r):
                r = r.iloc[0]
                percent = metric == "accuracy"
                row[f"{name} (95% CI)"] = _interval(r["value"], r["ci_low"], r["ci_high"], percent=percent)
                row[f"{name}, paper"] = ("" if pd.isna(r["paper"]) else
                                         f"{100 * r['paper']:.2f}%" if percent else f"{r['paper']:.2f}")
        rows.append(row)
    return pd.DataFrame(rows)


def chain_members(arm: str, *, profile: str, overrides: Mapping | None = None) -> pd.DataFrame:
    """One arm's chain, drawn from its definition: the input of :func:`pdlib.figures.plot_pd_chain` (Fig. 2)."""
    config = resolve_config(profile, **dict(overrides or {}))
    members = ARMS[arm].members
    rows = []
    for i, member in enumerate(members):
        role = "baseline" if len(members) == 1 else "teacher" if i == 0 else "student"
        rows.append({"model": ARMS_MODEL_NAMES.get(member.arch, member.arch), "role": role, "noise": member.noise,
                     "epochs": config.epochs * member.epochs_factor})
    return pd.DataFrame(rows)


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
    z = float(_scipy_norm.ppf(1 - ALPHA / 2))
    for arm in others:
        result = stats.delong_test(labels, best["score"], scores[arm])
        half = z * math.sqrt(result.variance) if np.isfinite(result.variance) else float("nan")
        tests.append({"comparator": ARMS[arm].label, "AUC best": result.auc_a, "AUC comparator": result.auc_b,
                      "difference": result.difference, "ci_low": result.difference - half,
                      "ci_high": result.difference + half, "p-value": result.p_value})
    table = pd.DataFrame(tests, columns=["comparator", "AUC best", "AUC comparator", "difference", "ci_low",
                                         "ci_high", "p-value"])
    table["Holm p-value"] = stats.holm_adjust(table["p-value"].to_numpy())
    return table


def delong_display(table: pd.DataFrame, best_label: str) -> pd.DataFrame:
    """:func:`delong_comparisons` for people: the difference with its 95% interval in one cell, plain headers."""
    return pd.DataFrame({
        "Comparator": table["comparator"],
        f"AUC, {best_label}": table["AUC best"].map(lambda v: f"{v:.2f}"),
        "AUC, comparator": table["AUC comparator"].map(lambda v: f"{v:.2f}"),
        "Difference (95% CI)": [f"{d:+.2f} ({lo:+.2f} to {hi:+.2f})" if np.isfinite(lo) else f"{d:+.2f}"
                                for d, lo, hi in zip(table["difference"], table["ci_low"], table["ci_high"])],
        "p-value": table["p-value"].map(lambda v: f"{v:.3f}"),
        "Holm p-value": table["Holm p-value"].map(lambda v: f"{v:.3f}"),
    })


def pretext_schedule(epochs, slices_per_patient) -> str:
    """``"6 epochs"`` or ``"6 epochs of 10 slices per pseudo-patient"``: how long the demo's pretext trained."""
    return f"{epochs} epochs" + ("" if slices_per_patient is None
                                 else f" of {slices_per_patient} slices per pseudo-patient")


def settings_table(profile: str, overrides: Mapping | None = None) -> pd.DataFrame:
    """The settings box of a results page: what the paper used beside what this run used.

    Returns
    -------
    DataFrame
        ``Setting, The paper, This run`` for model width, input size,
        epochs, slices per patient and epoch, starting weights, temperature
        T, KD weight, model noise and the patient score.
    """
    config = resolve_config(profile, **dict(overrides or {}))
    start = (f"pretext weights from an independent twin ({pretext_schedule(config.pretrain_epochs, config.pretrain_slices_per_patient)})"
             if config.pretrain_twin else "ImageNet weights" if config.pretrained else "random initialisation")
    width = {"paper": "the published architectures", "demo": "scaled-down members of each family (pdlib.models)",
             "smoke": "tiny members of each family"}.get(config.profile, config.profile)
    rows = [
        ("Models", "the published architectures", width),
        ("Input", "256 px slices, 224 px crops", f"{config.resize} px slices, {config.crop} px crops"),
        ("Epochs", "not reported", str(config.epochs)),
        ("Training slices per patient and epoch", "not reported (all slices, as we read it)",
         "all" if config.slices_per_patient is None else str(config.slices_per_patient)),
        ("Starting weights", "ImageNet", start),
        ("Temperature T", "not reported", f"{config.temperature:g}"),
        ("KD weight", "alpha, not reported", f"{config.kd_weight:g} on the distillation term"),
        ("Model noise", "dropout and stochastic depth, rates not reported",
         f"dropout {config.noise_drop_rate:g}, stochastic depth {config.noise_drop_path_rate:g}"),
        ("Patient score", "mean of the 10 highest slice probabilities", f"mean of the {config.top_k} highest"),
    ]
    return pd.DataFrame(rows, columns=["Setting", "The paper", "This run"])


def calibration_of(results_dir: str | os.PathLike, arm: str, *, seed: int):
    """:func:`pdlib.stats.calibration` of an arm's test scores (up to 5 bins, at least 2 patients a bin)."""
    test = split_predictions(results_dir, arm, seed=seed)
    labels = test["label"].to_numpy()
    return stats.calibration(labels, test["score"].to_numpy(), n_bins=min(5, len(labels) // 2 or 1))


def calibration_statement(calibration) -> str:
    """Calibration slope, intercept (each with its 95% interval) and Brier score of :func:`calibration_of`, in words."""
    def part(name, value, interval, ideal):
        if not np.isfinite(value):
            return f"the {name} could not be estimated (the scores separate the classes, or one class is missing)"
        low, high = interval
        inside = low <= ideal <= high
        return (f"{name} {value:.2f} (95% CI {low:.2f} to {high:.2f}; {'includes' if inside else 'excludes'} the "
                f"ideal {ideal:g})")
    return (f"Calibration {part('slope', calibration.slope, calibration.slope_ci, 1.0)}, "
            f"{part('intercept', calibration.intercept, calibration.intercept_ci, 0.0)}; "
            f"Brier score {calibration.brier:.3f}.")


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


def reader_forest(comparison: "ReaderComparison", best_label: str) -> pd.DataFrame | None:
    """Rows of :func:`pdlib.figures.plot_forest` for Table 3: test accuracy of the model and of each clinician.

    Each with its Wilson 95% interval and the accuracy the paper prints in its
    Table 3 (the model's row there is PD EfficientNet-B7). None without
    reader calls.
    """
    if comparison.table is None:
        return None
    printed = paper.metric_table("Table 3").set_index("row")["acc"]
    rows = []
    for r in comparison.table.itertuples():
        model = r.reader == "model"
        key = "PD (EfficientNet-B7)" if model else r.reader
        rows.append({"model": best_label if model else f"Clinician {r.reader}", "group": "Model" if model else
                     "Clinicians", "estimate": r.accuracy, "ci_low": r.accuracy_ci_low, "ci_high": r.accuracy_ci_high,
                     "paper": float(printed[key]) if key in printed.index else float("nan")})
    return pd.DataFrame(rows, columns=["model", "group", "estimate", "ci_low", "ci_high", "paper"])


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


#: Where a checklist answer comes from (column ``Answered from`` of :func:`checklist`).
FROM_RUN, FROM_BOOK, NOT_APPLICABLE = "computed from this run", "the book's text", "not applicable here"



def checklist(*, manifest: Manifest, results_dir: str | os.PathLike, arms: Sequence[str], best_arm: str,
              seeds: Sequence[int], profile: str) -> pd.DataFrame:
    """The 27 main items of TRIPOD+AI (Collins et al. 2024), each answered and each saying where from.

    Items a run can answer (sample size, outcome, predictors, data
    preparation, class balance, leakage, model output, threshold,
    performance with intervals, calibration, model specification) are
    computed from the manifest, the run folders and the predictions; items
    about the book itself (title, background, code and data sharing,
    limitations) point to the book's text; items about a clinical study that
    a reproduction does not have (ethics approval, registration, patient
    involvement) say so.

    Returns
    -------
    DataFrame
        ``Item`` (1 to 27, in TRIPOD+AI's order), ``Topic``, ``This
        edition`` (the answer) and ``Answered from`` (:data:`FROM_RUN`,
        :data:`FROM_BOOK` or :data:`NOT_APPLICABLE`).
    """
    patients = manifest.patients
    by_split = patients.groupby(["split", "response"]).size().unstack(fill_value=0)
    counts = {split: ", ".join(f"{n} {group}" for group, n in by_split.loc[split].items()) for split in by_split.index}
    members = study_members(arms)
    records = [json.loads((member_dir(results_dir, seeds[0], key) / "config.json").read_text()) for key in members]
    train_ids = set(patients.loc[patients["split"] == "train", "patient_id"])
    test_ids = set(patients.loc[patients["split"] == "test", "patient_id"])
    performance = arm_performance(results_dir, best_arm, seed=seeds[0]).set_index(["way", "split"])
    pre = performance.loc[("pre-specified", "test")]
    calibration = calibration_of(results_dir, best_arm, seed=seeds[0])
    n_train_used = {r["data"]["n_train_patients"] for r in records}
    n_test_used = {r["data"]["n_test_patients"] for r in records}
    recorded = records[0].get("train_config", {})
    config = {k: recorded.get(k, "not recorded") for k in (
        "resize", "crop", "augment", "slices_per_patient", "epochs", "optimizer", "lr", "label_smoothing_beta",
        "kd_weight", "temperature", "noise_drop_rate", "noise_drop_path_rate", "pretrain_epochs", "pretrain_twin",
        "pretrain_slices_per_patient", "pretrained", "top_k")}
    best_dir = arm_dir(results_dir, best_arm, seed=seeds[0])
    best_record = json.loads((best_dir / "config.json").read_text())
    summary_file = best_dir / "summary.json"
    n_parameters = json.loads(summary_file.read_text()).get("n_parameters") if summary_file.is_file() else None
    label = ARMS[best_arm].label
    events = int(by_split.loc["train"].get(manifest.positive_class, 0)) if "train" in by_split.index else 0
    auc = _interval(pre["auc"], pre["auc_ci_low"], pre["auc_ci_high"], percent=False)
    accuracy = _interval(pre["accuracy"], pre["accuracy_ci_low"], pre["accuracy_ci_high"], percent=True)
    slope = (f"slope {calibration.slope:.2f} ({calibration.slope_ci[0]:.2f}–{calibration.slope_ci[1]:.2f})"
             if np.isfinite(calibration.slope) else "slope not estimable (scores separate the classes or one class)")
    intercept = (f"intercept {calibration.intercept:.2f} ({calibration.intercept_ci[0]:.2f}–"
                 f"{calibration.intercept_ci[1]:.2f})" if np.isfinite(calibration.intercept) else "intercept not estimable")
    noise = f"dropout {config['noise_drop_rate']} and stochastic depth {config['noise_drop_path_rate']} on PD students"
    cap = config["pretrain_slices_per_patient"]
    start = (f"pretext weights from an independent twin "
             f"({pretext_schedule(config['pretrain_epochs'], None if cap == 'not recorded' else cap)})"
             if config["pretrain_twin"] not in (None, "not recorded") else "ImageNet weights"
             if config["pretrained"] is True else "random initialisation")
    items = [
        ("Title", "An executable edition of Han et al. 2025: development and evaluation of deep-learning models "
                  "predicting response to conversion therapy from pre-treatment CT.", FROM_BOOK),
        ("Abstract", "The introduction's summary and its at-a-glance box (the verdicts are generated from the run).",
         FROM_BOOK),
        ("Background", "Advanced gastric cancer, conversion therapy, RECIST 1.1 response groups; the paper's "
                       "method and claims are summarised in the introduction.", FROM_BOOK),
        ("Objectives", "Reproduce the paper's procedure (development and internal test evaluation) and judge its "
                       "claims; the paper's claims are listed with their evidence.", FROM_BOOK),
        ("Data", f"Cohort {manifest.name!r}: {len(patients)} patients read from DICOM through the manifest "
                 f"(a digital twin unless a hospital cohort is configured).", FROM_RUN),
        ("Participants", f"Training: {counts.get('train', 'none')}; test: {counts.get('test', 'none')} "
                         "(counts per response group).", FROM_RUN),
        ("Data preparation", f"Portal-venous series, slices of the study range resized to {config['resize']} px, "
                             f"{'random' if config['augment'] is True else 'centre'} crops of {config['crop']} px, "
                             f"{config['slices_per_patient'] or 'all'} training slices per patient per epoch.",
         FROM_RUN),
        ("Outcome", f"Response group from RECIST 1.1; the positive class (score 1) is {manifest.positive_class}.",
         FROM_RUN),
        ("Predictors", "CT pixels only (no clinical variable enters any model); the clinicians' calls are compared, "
                       "not used.", FROM_RUN),
        ("Sample size", f"{len(train_ids)} training patients with {events} {manifest.positive_class} events and "
                        f"{len(test_ids)} test patients; no sample-size calculation (the paper gives none). The "
                        "verdict study computes the test-set size a difference would need.", FROM_RUN),
        ("Missing data", "None allowed: a patient whose series is missing or unreadable stops the run with an "
                         "error naming the patient and file.", FROM_BOOK),
        ("Analytical methods", f"{len(members)} trained models; {config['epochs']} epochs, {config['optimizer']} at "
                               f"learning rate {config['lr']}, label smoothing {config['label_smoothing_beta']}, KD "
                               f"weight {config['kd_weight']} at T = {config['temperature']}, {noise}; start: "
                               f"{start}.", FROM_RUN),
        ("Class imbalance", f"Training classes {counts.get('train', '')}; no reweighting or resampling; thresholds "
                            "by Youden's index.", FROM_RUN),
        ("Fairness", "Not assessed: the twin's patients carry no attribute for which a disparity would mean "
                     "anything.", NOT_APPLICABLE),
        ("Model output", f"A score in [0, 1]: the mean of the {config['top_k']} highest slice probabilities of "
                         f"{manifest.positive_class}; a call by the pre-specified threshold.", FROM_RUN),
        ("Training versus evaluation", f"{len(train_ids & test_ids)} patients in both splits; each model learned "
                                       f"from {_either(n_train_used)} training patients and only scored the "
                                       f"{_either(n_test_used)} test patients; fixed epochs, no choice made on test "
                                       "data.", FROM_RUN),
        ("Ethical approval", "Not applicable to the twin (synthetic patients); the paper's approval is the paper's.",
         NOT_APPLICABLE),
        ("Open science", "Code, pipeline, configuration and this book are in the project repository; reference "
                         "versions in constraints.txt; the twin is regenerated by `make twin`.", FROM_BOOK),
        ("Patient and public involvement", "None (a methods reproduction).", NOT_APPLICABLE),
        ("Participants (results)", f"{len(patients)} patients analysed, none excluded by the run.", FROM_RUN),
        ("Model development", f"Each model trained on {_either(n_train_used)} patients with {events} "
                              f"{manifest.positive_class} events.", FROM_RUN),
        ("Model specification", f"{label}: {ARMS_MODEL_NAMES.get(ARMS[best_arm].members[-1].arch, '')} at "
                                f"{profile} scale"
                                + (f" with {n_parameters:,} parameters" if n_parameters else "")
                                + "; weights in the run folder (checkpoint.pt).", FROM_RUN),
        ("Model performance", f"{label} on the test set: AUC {auc}; accuracy {accuracy} at the pre-specified "
                              f"threshold {pre['threshold']:.3f} "
                              f"({THRESHOLD_SOURCES.get(pre['threshold_source'], {}).get('words', pre['threshold_source'])}); "
                              f"calibration {slope}, {intercept}, Brier score {calibration.brier:.3f}.", FROM_RUN),
        ("Model updating", "None.", NOT_APPLICABLE),
        ("Interpretation", "The results chapters and the claims scorecard say which claims the run supports.",
         FROM_BOOK),
        ("Limitations", "The limitations chapter.", FROM_BOOK),
        ("Usability of the model in context", "Not for clinical use: models trained on a digital twin.", FROM_BOOK),
    ]
    return pd.DataFrame([(i + 1, topic, answer, source) for i, (topic, answer, source) in enumerate(items)],
                        columns=["Item", "Topic", "This edition", "Answered from"])


def checklist_statement(table: pd.DataFrame) -> str:
    """How many of the checklist's items each source answers (:func:`checklist`)."""
    counts = table["Answered from"].value_counts()
    parts = [f"{_plural(int(counts[s]), 'item', 'items')} {s}" for s in (FROM_RUN, FROM_BOOK, NOT_APPLICABLE)
             if counts.get(s, 0)]
    return f"Of the {len(table)} items of TRIPOD+AI, " + _listing(parts) + "."


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
        ``arm, signal, n_patients, seed, metric, value, oracle`` (the twin's
        oracle AUC on its test patients; empty without a sweep).
    """
    rows = []
    for cohort in (sweep or {}).get("cohorts", []):
        twin = json.loads((Path(cohort["twin"]) / "twin.json").read_text())
        for arm in sweep["arms"]:
            long = metrics_long(cohort["results"], [arm], seeds=sweep["seeds"])
            for _, r in long[(long["split"] == "test") & (long["way"] == "apparent")].iterrows():
                rows.append({"arm": ARMS[arm].label, "signal": cohort["signal"], "n_patients": cohort["n_patients"],
                             "seed": r["seed"], "metric": "AUC", "value": r["auc"],
                             "oracle": twin["oracle_auc"]["test"]})
    return pd.DataFrame(rows)


def sweep_statement(sweep: Mapping | None) -> str:
    """What the sweep trained, or how to run one."""
    if not sweep:
        return ("This study configuration runs no signal sweep. The configuration `sweep_signal` does: "
                "`make study PROFILE=sweep_signal` trains its arms on twins of several signal strengths and "
                "builds this chapter from them.")
    signals = ", ".join(f"{v:g}" for v in sorted({c["signal"] for c in sweep["cohorts"]}))
    sizes = ", ".join(str(v) for v in sorted({c["n_patients"] for c in sweep["cohorts"]}))
    return (f"The sweep trained {_plural(len(sweep['arms']), 'arm', 'arms')} with "
            f"{_plural(len(sweep['seeds']), 'seed', 'seeds')} on {_plural(len(sweep['cohorts']), 'twin', 'twins')} "
            f"(signal strengths {signals}; cohort sizes {sizes}).")


def sweep_summary(results: pd.DataFrame) -> pd.DataFrame | None:
    """Mean test AUC over seeds per cohort size, signal and arm, beside the oracle AUC (None when empty)."""
    if not len(results):
        return None
    return results.groupby(["n_patients", "signal", "arm"]).agg(
        test_auc=("value", "mean"), oracle_auc=("oracle", "first"), seeds=("seed", "nunique"))


# --------------------------------------------------------------------------- the verdict (chapter 12)

#: File of a member's scores of the external set: every patient of the external twin.
EXTERNAL_FILE = "external_predictions.csv"

#: Columns of :data:`EXTERNAL_FILE`.
EXTERNAL_COLUMNS = ("patient_id", "recist", "label", "score")

#: Patients per class of the paper's test set (14 + 14), the design :func:`design_simulations` replays.
PAPER_PER_CLASS = 14

#: Names of the patient sets of the verdict chapter, in the order the chapter shows them.
VERDICT_SETS = ("external", "test")



def _check_arms(arms: Sequence[str]) -> list[str]:
    if isinstance(arms, str):
        raise ValueError(f"arms must be a list of arm names, got the string {arms!r}")
    arms = list(dict.fromkeys(str(a) for a in arms))
    if not arms:
        raise ValueError("the verdict needs at least one arm")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm(s) {unknown}; known: {sorted(ARMS)}")
    return arms


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    if isinstance(seeds, (str, int)):
        raise ValueError(f"seeds must be a list of integers, got {seeds!r}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers, got {seeds}")
    return seeds


def external_predictions(results_dir: str | os.PathLike, arm: str, *, seed: int) -> pd.DataFrame:
    """``external_predictions.csv`` of an arm's final member: its scores of every external patient.

    Returns
    -------
    DataFrame
        ``patient_id, recist, label, score`` (labels 0/1, finite scores, each
        patient once).

    Raises
    ------
    FileNotFoundError
        Naming the arm, the seed and the missing file.
    ValueError
        A missing column, a repeated patient, a label other than 0/1 or a
        score that is not a finite number, naming the arm, seed, file and patient.
    """
    _check_arms([arm])
    path = arm_dir(results_dir, arm, seed=seed) / EXTERNAL_FILE
    where = f"arm {arm} (seed {seed}), {path}"
    if not path.is_file():
        raise FileNotFoundError(f"arm {arm} (seed {seed}): no external-set scores; {path} is missing (the study's "
                                f"target external/seed{seed} writes it for every arm's final member)")
    table = pd.read_csv(path, dtype={"patient_id": str, "recist": str})
    missing = [c for c in EXTERNAL_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{where}: lacks column(s) {missing}; expected {list(EXTERNAL_COLUMNS)}")
    if not len(table):
        raise ValueError(f"{where}: scores no patient")
    dup = table.loc[table["patient_id"].duplicated(), "patient_id"]
    if len(dup):
        raise ValueError(f"{where}: patient {dup.iloc[0]!r} appears more than once")
    labels = pd.to_numeric(table["label"], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = table[bad].iloc[0]
        raise ValueError(f"{where}: patient {row['patient_id']!r} has label {row['label']!r}; labels are 0 or 1")
    scores = pd.to_numeric(table["score"], errors="coerce")
    bad = ~np.isfinite(scores.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = table[bad].iloc[0]
        raise ValueError(f"{where}: patient {row['patient_id']!r} has score {row['score']!r}; scores are finite numbers")
    return table[list(EXTERNAL_COLUMNS)].assign(label=labels.astype(np.int64), score=scores.astype(float))


@dataclass(frozen=True)
class ScoredPatients:
    """One set of patients scored by every arm of a seed.

    Attributes
    ----------
    labels : ndarray of int
        0/1 labels (1 = the positive class), in the order of ``scores``.
    scores : DataFrame
        Index ``patient_id``, one score column per arm.
    """

    labels: np.ndarray
    scores: pd.DataFrame

    @property
    def n(self) -> int:
        return int(self.labels.size)

    @property
    def n_pos(self) -> int:
        return int(self.labels.sum())

    @property
    def n_neg(self) -> int:
        return self.n - self.n_pos


def _align(frames: Mapping[str, pd.DataFrame], files: Mapping[str, Path], *, what: str,
           order: pd.Index | None = None) -> ScoredPatients:
    """Labels and scores of several arms on the same patients; errors name both arms and the files."""
    arms = list(frames)
    first = frames[arms[0]].set_index("patient_id")
    order = first.index if order is None else order
    ids = set(order)
    columns = {}
    for arm in arms:
        table = frames[arm].set_index("patient_id")
        if set(table.index) != ids:
            extra = sorted(set(table.index) - ids)[:3]
            lacking = sorted(ids - set(table.index))[:3]
            raise ValueError(f"{what}: arm {arm} scores other patients than arm {arms[0]} "
                             f"(only in {files[arm]}: {extra}; missing there: {lacking})")
        table = table.loc[order]
        disagree = table["label"].to_numpy() != first.loc[order, "label"].to_numpy()
        if disagree.any():
            pid = table.index[np.flatnonzero(disagree)[0]]
            raise ValueError(f"{what}: patient {pid!r} has label {int(table.loc[pid, 'label'])} in {files[arm]} "
                             f"but {int(first.loc[pid, 'label'])} in {files[arms[0]]}")
        columns[arm] = table["score"].to_numpy(dtype=float)
    return ScoredPatients(first.loc[order, "label"].to_numpy(dtype=np.int64), pd.DataFrame(columns, index=order))


@dataclass(frozen=True)
class VerdictRun:
    """Every score the verdict chapter reads, loaded once by :func:`verdict_run`.

    Attributes
    ----------
    results_dir : Path
    arms : tuple of str
    seeds : tuple of int
    train, test, external : dict seed -> ScoredPatients
        The study's training and test patients and the external twin's
        patients (``external`` is empty without an external set); within a
        set every seed lists the patients in the same order.
    thresholds : DataFrame
        ``arm, label, seed, threshold, rule, folds``: each arm's pre-specified
        threshold per seed (Youden's index on the training patients'
        out-of-fold scores, rule ``out-of-fold`` with the number of folds, or
        on their own scores, rule ``resubstitution``), as
        :func:`pdlib.stats.performance_table` chooses it for the other chapters.
    external_info : dict or None
        ``name, n, n_pos, n_neg, positive_class, negative_class, twin_seed,
        signal, oracle_auc`` of the external set.
    """

    results_dir: Path
    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    train: Mapping[int, ScoredPatients]
    test: Mapping[int, ScoredPatients]
    external: Mapping[int, ScoredPatients]
    thresholds: pd.DataFrame
    external_info: Mapping | None

    def sets(self) -> tuple[str, ...]:
        """The patient sets this run has (``external`` first when it has one)."""
        return VERDICT_SETS if self.external else ("test",)

    def scored(self, which: str, seed: int) -> ScoredPatients:
        """The patients of ``which`` (``train``, ``test`` or ``external``) scored by seed ``seed``'s members."""
        sets = {"train": self.train, "test": self.test, "external": self.external}
        if which not in sets or not sets[which]:
            raise ValueError(f"this run has no {which!r} patients (sets: {['train', *self.sets()]})")
        if seed not in sets[which]:
            raise ValueError(f"seed {seed} is not a seed of this run ({list(self.seeds)})")
        return sets[which][seed]

    def set_name(self, which: str) -> str:
        """Plain name of a patient set with its size (``external set (1000 patients)``)."""
        first = self.scored(which, self.seeds[0])
        return f"{'training' if which == 'train' else which} set ({first.n} patients)"

    def threshold(self, arm: str, seed: int) -> float:
        """The pre-specified threshold of ``arm`` in ``seed``."""
        row = self.thresholds[(self.thresholds["arm"] == arm) & (self.thresholds["seed"] == seed)]
        if not len(row):
            raise ValueError(f"arm {arm!r}, seed {seed}: not part of this run")
        return float(row["threshold"].iloc[0])


def _oof_folds(path: Path, *, arm: str, seed: int) -> int:
    table = pd.read_csv(path)
    if "fold" not in table.columns:
        raise ValueError(f"arm {arm} (seed {seed}): {path} lacks the column 'fold'")
    return int(table["fold"].nunique())


def _external_info(external: Mapping, scored: ScoredPatients, file: Path) -> dict:
    """What the chapter says about the external set, checked against its manifest when one is named."""
    name = str(external.get("name") or "external")
    info = {"name": name, "n": scored.n, "n_pos": scored.n_pos, "n_neg": scored.n_neg, "positive_class": None,
            "negative_class": None, "twin_seed": external.get("twin_seed", external.get("seed")),
            "signal": external.get("signal"), "oracle_auc": None}
    expected = external.get("n_patients")
    if expected is not None and int(expected) != scored.n:
        raise ValueError(f"the external set {name!r} has {int(expected)} patients, but {file} scores {scored.n}")
    if external.get("manifest"):
        manifest = load_manifest(external["manifest"], check_files=False)
        listed = manifest.patients.set_index("patient_id")
        lacking = sorted(set(listed.index) - set(scored.scores.index))
        extra = sorted(set(scored.scores.index) - set(listed.index))
        if lacking or extra:
            raise ValueError(f"{file} does not score the patients of the external manifest {manifest.folder}: "
                             f"{len(lacking)} not scored (e.g. {lacking[:3]}), {len(extra)} not in the manifest "
                             f"(e.g. {extra[:3]})")
        truth = (listed.loc[scored.scores.index, "response"] == manifest.positive_class).astype(int).to_numpy()
        wrong = np.flatnonzero(truth != scored.labels)
        if wrong.size:
            pid = scored.scores.index[wrong[0]]
            raise ValueError(f"{file}: patient {pid!r} has label {int(scored.labels[wrong[0]])}, but the external "
                             f"manifest {manifest.folder} gives response {listed.loc[pid, 'response']}")
        info["positive_class"] = manifest.positive_class
        info["negative_class"] = other_group(manifest.positive_class)
    twin_json = Path(external["twin"]) / "twin.json" if external.get("twin") else None
    if twin_json is not None and twin_json.is_file():
        twin = json.loads(twin_json.read_text())
        info["oracle_auc"] = twin.get("oracle_auc", {}).get("all")
        info["signal"] = info["signal"] if info["signal"] is not None else twin.get("parameters", {}).get(
            "signal_strength")
    return info


def verdict_run(results_dir: str | os.PathLike, arms: Sequence[str], *, seeds: Sequence[int],
                oof: Mapping | None = None, external: Mapping | None = None) -> VerdictRun:
    """Read every score the verdict chapter needs, checked, into one :class:`VerdictRun`.

    For each seed and arm: the final member's ``patient_predictions.csv``
    (training and test patients), its ``oof_predictions.csv`` when it has
    out-of-fold runs (the pre-specified threshold is then chosen on them, as
    :func:`metrics_long` does for the other chapters) and, with an external
    set, its ``external_predictions.csv`` (:func:`external_predictions`).

    Parameters
    ----------
    results_dir : path
    arms : sequence of str
        The verdict arms.
    seeds : sequence of int
        Training seeds; every arm was trained with each.
    oof : dict, optional
        The study's ``oof`` setting (``{"folds": k, "arms": [...]}``): an arm
        listed there must have ``oof_predictions.csv`` with ``k`` folds in
        every seed.
    external : dict, optional
        The external set (``name``, ``n_patients``, optionally ``manifest``
        (a manifest folder: its patients and responses must be exactly the
        scored ones), ``twin`` (its ``twin.json`` gives the oracle AUC),
        ``twin_seed`` or ``seed``, ``signal``); None: no external set.

    Raises
    ------
    FileNotFoundError
        A missing predictions file, naming the arm, the seed and the path.
    ValueError
        Arms or seeds that score different patients, labels that disagree,
        or a count of patients or folds other than the configuration's,
        naming the arms, seeds and files.
    """
    arms, seeds = _check_arms(arms), _check_seeds(seeds)
    oof = dict(oof or {})
    oof_arms, oof_k = set(oof.get("arms") or []), oof.get("folds")
    sets: dict[str, dict[int, ScoredPatients]] = {"train": {}, "test": {}, "external": {}}
    rows, first_files = [], {}
    for seed in seeds:
        parts: dict[str, dict[str, pd.DataFrame]] = {"train": {}, "test": {}, "external": {}}
        files: dict[str, dict[str, Path]] = {"train": {}, "test": {}, "external": {}}
        for arm in arms:
            folder = arm_dir(results_dir, arm, seed=seed)
            path = folder / "patient_predictions.csv"
            if not path.is_file():
                raise FileNotFoundError(f"arm {arm} (seed {seed}): no patient predictions; {path} is missing (run "
                                        "the study pipeline first)")
            predictions = arm_predictions(results_dir, arm, seed=seed)
            pre = _performance(predictions).set_index(["way", "split"]).loc[("pre-specified", "train")]
            oof_path = folder / "oof_predictions.csv"
            folds = _oof_folds(oof_path, arm=arm, seed=seed) if oof_path.is_file() else None
            if arm in oof_arms and folds is None:
                raise FileNotFoundError(f"arm {arm} (seed {seed}): the study trains {oof_k} out-of-fold folds for "
                                        f"this arm, but {oof_path} is missing")
            if arm in oof_arms and oof_k is not None and folds != int(oof_k):
                raise ValueError(f"arm {arm} (seed {seed}): {oof_path} holds {folds} folds, the study configuration "
                                 f"{int(oof_k)}")
            rows.append({"arm": arm, "label": ARMS[arm].label, "seed": seed, "threshold": float(pre["threshold"]),
                         "rule": THRESHOLD_RULES[pre["threshold_source"]],
                         "folds": float("nan") if folds is None else folds})
            for split in ("train", "test"):
                parts[split][arm] = predictions.loc[predictions["split"] == split, ["patient_id", "label", "score"]]
                files[split][arm] = path
            if external is not None:
                parts["external"][arm] = external_predictions(results_dir, arm, seed=seed)
                files["external"][arm] = folder / EXTERNAL_FILE
        for which in ("train", "test", "external"):
            if not parts[which]:
                continue
            order = sets[which][seeds[0]].scores.index if seeds[0] in sets[which] else None
            if order is not None and set(order) != set(parts[which][arms[0]]["patient_id"]):
                raise ValueError(f"seed {seed}: arm {arms[0]} scores other {which} patients in "
                                 f"{files[which][arms[0]]} than in seed {seeds[0]} ({first_files[which]})")
            scored = _align(parts[which], files[which], what=f"seed {seed}, {which} patients", order=order)
            if order is not None and not np.array_equal(scored.labels, sets[which][seeds[0]].labels):
                raise ValueError(f"seed {seed}: the labels of the {which} patients in {files[which][arms[0]]} differ "
                                 f"from seed {seeds[0]}'s ({first_files[which]})")
            sets[which][seed] = scored
            first_files.setdefault(which, files[which][arms[0]])
    info = (_external_info(external, sets["external"][seeds[0]], first_files["external"])
            if external is not None else None)
    return VerdictRun(Path(results_dir), tuple(arms), tuple(seeds), sets["train"], sets["test"], sets["external"],
                      pd.DataFrame(rows, columns=["arm", "label", "seed", "threshold", "rule", "folds"]), info)


def _listing(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def threshold_statement(run: VerdictRun) -> str:
    """How each arm's pre-specified threshold was chosen in this run (out-of-fold or resubstitution), in words."""
    rules = run.thresholds.groupby("arm", sort=False)["rule"].agg(lambda r: "/".join(sorted(set(r))))
    folds = run.thresholds.dropna(subset=["folds"]).groupby("arm", sort=False)["folds"].agg(
        lambda f: sorted({int(x) for x in f})).to_dict()
    oof_arms = [a for a in run.arms if rules[a] == "out-of-fold"]
    resub = [a for a in run.arms if rules[a] == "resubstitution"]
    mixed = [a for a in run.arms if a not in oof_arms and a not in resub]
    ks = sorted({k for a in oof_arms + mixed for k in folds.get(a, [])})
    lead = ("Each arm's threshold (for accuracy, sensitivity and specificity, and the fixed rule of the design "
            "simulation) is chosen by Youden's index before the test patients are seen, ")
    resub_text = ("on the training patients' own scores (resubstitution: the models have seen those patients, so "
                  "the threshold sits where they happen to separate best)")
    oof_text = (f"on out-of-fold scores of the training patients ({_either(ks)} folds: each patient scored by a "
                "model trained without it)")
    if not oof_arms and not mixed:
        return lead + resub_text + " for every arm; this study trained no out-of-fold folds."
    if not resub and not mixed:
        return lead + oof_text + f" for every arm ({len(oof_arms)})."
    parts = []
    if oof_arms:
        parts.append(oof_text + f" for {_listing([ARMS[a].label for a in oof_arms])}")
    if resub:
        parts.append(resub_text + f" for {_listing([ARMS[a].label for a in resub])}")
    if mixed:
        parts.append(f"on out-of-fold scores in some seeds and on the training patients' own scores in the others "
                     f"for {_listing([ARMS[a].label for a in mixed])} (each seed's own rule)")
    return lead + "; ".join(parts) + "."


def verdict_run_statement(run: VerdictRun, *, config_name: str, profile: str, manifest_dir: str | os.PathLike,
                          overrides: Mapping | None = None) -> str:
    """Markdown: which study, cohort, seeds and external set produced the chapter, and how thresholds were chosen."""
    text = run_statement(config_name=config_name, profile=profile, manifest_dir=manifest_dir, seeds=run.seeds,
                         overrides=overrides)
    test = run.scored("test", run.seeds[0])
    text += (f" Each of the {_plural(len(run.arms), 'arm', 'arms')} was trained once per seed "
             f"({_plural(len(run.seeds), 'seed', 'seeds')}), on the same training patients, and scored the same "
             f"{test.n} test patients ({test.n_pos} positive, {test.n_neg} negative)")
    info = run.external_info
    if info is None:
        text += ". This study has no external test set, so only the test set's estimates are shown."
    else:
        pos = f"{info['n_pos']} {info['positive_class']}" if info["positive_class"] else f"{info['n_pos']} positive"
        neg = f"{info['n_neg']} {info['negative_class']}" if info["negative_class"] else f"{info['n_neg']} negative"
        made = []
        if info["signal"] is not None:
            made.append(f"signal strength {float(info['signal']):g}")
        if info["twin_seed"] is not None:
            made.append(f"seed {info['twin_seed']}")
        named = "" if info["name"].lower() in ("external", "") else f" **{info['name']}**"
        text += (f"; every arm's final member of every seed also scored the external set{named}: "
                 f"{info['n']} patients ({pos}, {neg}) that no model saw in training"
                 + (f", a digital twin generated with {_listing(made)}" if made else "")
                 + (f", whose oracle AUC is {info['oracle_auc']:.3f}" if info["oracle_auc"] is not None else "")
                 + ".")
    return text + "\n\n" + threshold_statement(run)


# ---- AUCs, ranking and spread


def _ci_text(value: float, low: float, high: float, *, digits: int = 3, signed: bool = False) -> str:
    """``0.823 (0.791 to 0.855)``; ``n/a`` without a value, the value alone without an interval."""
    if value is None or not np.isfinite(value):
        return "n/a"
    fmt = f"{{:{'+' if signed else ''}.{digits}f}}"
    if not (np.isfinite(low) and np.isfinite(high)):
        return fmt.format(value)
    return f"{fmt.format(value)} ({fmt.format(low)} to {fmt.format(high)})"


def verdict_aucs(run: VerdictRun, *, alpha: float = ALPHA) -> pd.DataFrame:
    """AUC of every arm, seed and patient set with its DeLong interval.

    Returns
    -------
    DataFrame
        ``arm, label, set (external/test), seed, n, n_pos, n_neg, auc,
        ci_low, ci_high, half_width`` (``(ci_high - ci_low) / 2``); ``nan``
        with a :class:`pdlib.stats.DegenerateInputWarning` for a set with one
        class.
    """
    rows = []
    for which in run.sets():
        for seed in run.seeds:
            scored = run.scored(which, seed)
            for arm in run.arms:
                r = stats.delong_auc(scored.labels, scored.scores[arm].to_numpy(), alpha=alpha)
                rows.append({"arm": arm, "label": ARMS[arm].label, "set": which, "seed": seed, "n": scored.n,
                             "n_pos": scored.n_pos, "n_neg": scored.n_neg, "auc": r.auc, "ci_low": r.ci_low,
                             "ci_high": r.ci_high, "half_width": (r.ci_high - r.ci_low) / 2})
    return pd.DataFrame(rows, columns=["arm", "label", "set", "seed", "n", "n_pos", "n_neg", "auc", "ci_low",
                                       "ci_high", "half_width"])


def _seed_matrix(run: VerdictRun, which: str, arm: str) -> np.ndarray:
    return np.vstack([run.scored(which, s).scores[arm].to_numpy() for s in run.seeds])


def verdict_mean_aucs(run: VerdictRun, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Each arm's AUC averaged over its seeds, with DeLong's interval of the mean (:func:`pdlib.verdict.auc_contrast`).

    The interval is the patients' sampling error of the mean of the seeds'
    AUCs (their DeLong covariance included); the spread between seeds is
    :func:`verdict_seed_spread`'s.

    Returns
    -------
    DataFrame
        ``arm, label, set, n_seeds, auc, ci_low, ci_high, half_width``.
    """
    rows, k = [], len(run.seeds)
    for which in run.sets():
        labels = run.scored(which, run.seeds[0]).labels
        for arm in run.arms:
            c = verdict.auc_contrast(labels, _seed_matrix(run, which, arm), np.full(k, 1.0 / k), alpha=alpha)
            rows.append({"arm": arm, "label": ARMS[arm].label, "set": which, "n_seeds": k, "auc": c.estimate,
                         "ci_low": c.ci_low, "ci_high": c.ci_high, "half_width": (c.ci_high - c.ci_low) / 2})
    return pd.DataFrame(rows, columns=["arm", "label", "set", "n_seeds", "auc", "ci_low", "ci_high", "half_width"])


def _set_title(run: VerdictRun, which: str) -> str:
    return "External" if which == "external" else "Test"


def auc_ranking(run: VerdictRun, *, alpha: float = ALPHA) -> pd.DataFrame:
    """The ranking of the arms on the external set beside the 28-patient estimate, for people.

    One row per arm, best external AUC (mean over seeds) first: for each
    set (external first), the AUC of seed ``seeds[0]`` and the mean over
    seeds, each with its DeLong 95% interval in the cell and the interval's
    half-width beside it, and the arm's rank (by the mean on the external
    set, by the first seed on the test set: what one trained model and 28
    patients would rank).
    """
    aucs = verdict_aucs(run, alpha=alpha).set_index(["arm", "set", "seed"])
    means = verdict_mean_aucs(run, alpha=alpha).set_index(["arm", "set"])
    s0, k = run.seeds[0], len(run.seeds)
    ext = "external" in run.sets()
    rank_ext = means.xs("external", level="set")["auc"].rank(ascending=False, method="min") if ext else None
    rank_test = aucs.xs(("test", s0), level=("set", "seed"))["auc"].rank(ascending=False, method="min")
    rows = []
    for arm in run.arms:
        row = {"Model": ARMS[arm].label}
        for which in run.sets():
            title, one, mean = _set_title(run, which), aucs.loc[(arm, which, s0)], means.loc[(arm, which)]
            row[f"{title} AUC, seed {s0} (95% CI)"] = _ci_text(one["auc"], one["ci_low"], one["ci_high"])
            row[f"{title} ±, seed {s0}"] = "n/a" if not np.isfinite(one["half_width"]) else f"{one['half_width']:.3f}"
            row[f"{title} AUC, mean of {_plural(k, 'seed', 'seeds')} (95% CI)"] = _ci_text(
                mean["auc"], mean["ci_low"], mean["ci_high"])
            row[f"{title} ±, mean"] = "n/a" if not np.isfinite(mean["half_width"]) else f"{mean['half_width']:.3f}"
        if ext:
            row["Rank, external (mean)"] = "n/a" if pd.isna(rank_ext[arm]) else int(rank_ext[arm])
        row[f"Rank, test (seed {s0})"] = "n/a" if pd.isna(rank_test[arm]) else int(rank_test[arm])
        row["_order"] = -means.loc[(arm, run.sets()[0]), "auc"]
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("_order", kind="mergesort", na_position="last")
    return table.drop(columns="_order").reset_index(drop=True)


def auc_by_seed(run: VerdictRun, which: str = "external", *, alpha: float = ALPHA) -> pd.DataFrame:
    """Every arm's AUC on one patient set in each seed and their mean, intervals in the cells, for people.

    Returns
    -------
    DataFrame
        ``Model``, one column per seed, ``mean of k seeds`` (DeLong 95%
        intervals in the cells) and ``± (per seed)``: the range of the
        seeds' interval half-widths.
    """
    if which not in run.sets():
        raise ValueError(f"this run has no {which!r} set (sets: {list(run.sets())})")
    aucs = verdict_aucs(run, alpha=alpha)
    aucs = aucs[aucs["set"] == which].set_index(["arm", "seed"])
    means = verdict_mean_aucs(run, alpha=alpha)
    means = means[means["set"] == which].set_index("arm")
    rows = []
    for arm in run.arms:
        row = {"Model": ARMS[arm].label}
        for seed in run.seeds:
            r = aucs.loc[(arm, seed)]
            row[f"seed {seed}"] = _ci_text(r["auc"], r["ci_low"], r["ci_high"])
        m = means.loc[arm]
        row[f"mean of {_plural(len(run.seeds), 'seed', 'seeds')}"] = _ci_text(m["auc"], m["ci_low"], m["ci_high"])
        half = aucs.xs(arm, level="arm")["half_width"]
        row["± (per seed)"] = ("n/a" if not np.isfinite(half).any() else
                               f"{half.min():.3f}" if half.min() == half.max() else f"{half.min():.3f} to {half.max():.3f}")
        rows.append(row)
    return pd.DataFrame(rows)


def _concordant_pairs(first: pd.Series, second: pd.Series) -> tuple[int, int]:
    """Pairs of arms ordered the same way by two rankings (ties count as discordant), and all pairs."""
    arms = [a for a in first.index if np.isfinite(first[a]) and np.isfinite(second[a])]
    pairs = [(a, b) for i, a in enumerate(arms) for b in arms[i + 1:]]
    same = sum(1 for a, b in pairs if np.sign(first[a] - first[b]) == np.sign(second[a] - second[b]) != 0)
    return same, len(pairs)


def ranking_statement(run: VerdictRun, *, alpha: float = ALPHA) -> str:
    """Sentences: how precise one AUC is on each set, which arm each set ranks first, and how often they agree."""
    aucs = verdict_aucs(run, alpha=alpha)
    means = verdict_mean_aucs(run, alpha=alpha)
    s0, k = run.seeds[0], len(run.seeds)
    test = aucs[(aucs["set"] == "test") & (aucs["seed"] == s0)].set_index("arm")
    n_test = run.scored("test", s0).n
    if test["auc"].isna().all():
        return f"The test set ({n_test} patients) has one class only, so no AUC can be computed on it."
    best_test = test["auc"].idxmax()
    test_half = float(aucs.loc[aucs["set"] == "test", "half_width"].median())
    if "external" not in run.sets():
        return (f"On the {n_test} test patients an AUC is known to about ±{test_half:.2f} (median half-width of "
                f"the 95% intervals); the first seed ranks {ARMS[best_test].label} first "
                f"({_ci_text(*test.loc[best_test, ['auc', 'ci_low', 'ci_high']])}). This study has no external set "
                "to check that ranking against.")
    ext = means[means["set"] == "external"].set_index("arm")
    if ext["auc"].isna().all():
        return "The external set has one class only, so no AUC can be computed on it."
    best_ext = ext["auc"].idxmax()
    ext_half = float(aucs.loc[aucs["set"] == "external", "half_width"].median())
    n_ext = run.scored("external", s0).n
    text = (f"An arm's AUC is known to about ±{ext_half:.3f} on the {n_ext} external patients and to about "
            f"±{test_half:.3f} on the {n_test} test patients (median half-width of the 95% intervals over arms "
            f"and seeds). On the external set, averaged over the {_plural(k, 'seed', 'seeds')}, "
            f"{ARMS[best_ext].label} ranks first ({_ci_text(*ext.loc[best_ext, ['auc', 'ci_low', 'ci_high']])}); "
            f"the {n_test} test patients of seed {s0} rank "
            + (f"it first as well ({_ci_text(*test.loc[best_test, ['auc', 'ci_low', 'ci_high']])})"
               if best_test == best_ext else
               f"{ARMS[best_test].label} first ({_ci_text(*test.loc[best_test, ['auc', 'ci_low', 'ci_high']])})")
            + ".")
    same, total = _concordant_pairs(test["auc"], ext["auc"])
    if total:
        text += (f" Of the {total} pairs of arms, the test set of seed {s0} orders {same} "
                 f"({100 * same / total:.0f}%) as the external set does (mean over seeds); "
                 "50% is what a coin would do.")
    oracle = run.external_info.get("oracle_auc") if run.external_info else None
    if oracle is not None:
        text += f" No model can exceed the external twin's oracle AUC, {oracle:.3f}, in expectation."
    return text


def _finite(long: pd.DataFrame, what: str) -> pd.DataFrame:
    """Rows with a finite ``auc``; the others are left out with a warning naming them."""
    bad = long[~np.isfinite(long["auc"].to_numpy(dtype=float))]
    if len(bad):
        left = ", ".join(f"{r.arm} seed {r.seed}" for r in bad.itertuples())
        warnings.warn(f"{what}: no AUC for {left}; left out", stats.DegenerateInputWarning, stacklevel=3)
    return long[np.isfinite(long["auc"].to_numpy(dtype=float))]


def verdict_seed_spread(run: VerdictRun, *, alpha: float = ALPHA) -> pd.DataFrame:
    """Each arm's AUC over training seeds on each set (:func:`pdlib.verdict.seed_summary`), for people.

    Returns
    -------
    DataFrame
        ``Model, Patients, Seeds, Mean AUC, SD, Min to max`` (external set
        first); SD is ``n/a`` with one seed.
    """
    aucs = verdict_aucs(run, alpha=alpha)
    rows = []
    for which in run.sets():
        part = _finite(aucs[aucs["set"] == which], f"seed spread on the {which} set")
        summary = (verdict.seed_summary(part[["arm", "seed", "auc"]]).set_index("arm") if len(part)
                   else pd.DataFrame(columns=["n", "mean", "std", "min", "max"]))
        for arm in run.arms:
            s = summary.loc[arm] if arm in summary.index else None
            rows.append({"Model": ARMS[arm].label, "Patients": run.set_name(which),
                         "Seeds": 0 if s is None else int(s["n"]),
                         "Mean AUC": "n/a" if s is None else f"{s['mean']:.3f}",
                         "SD": "n/a" if s is None or not np.isfinite(s["std"]) else f"{s['std']:.3f}",
                         "Min to max": "n/a" if s is None else f"{s['min']:.3f} to {s['max']:.3f}"})
    return pd.DataFrame(rows, columns=["Model", "Patients", "Seeds", "Mean AUC", "SD", "Min to max"])


def seed_spread_statement(run: VerdictRun, *, alpha: float = ALPHA) -> str:
    """One sentence: how much retraining moves an AUC, against the external interval's half-width."""
    if len(run.seeds) < 2:
        return "This study trained each arm with one seed, so the spread between training runs cannot be shown."
    aucs = verdict_aucs(run, alpha=alpha)
    which = run.sets()[0]
    part = _finite(aucs[aucs["set"] == which], f"seed spread on the {which} set")
    if not len(part):
        return f"No AUC could be computed on the {run.set_name(which)}."
    spread = part.groupby("arm")["auc"].agg(lambda a: a.max() - a.min())
    widest = spread.idxmax()
    half = float(part["half_width"].median())
    return (f"Retrained with {len(run.seeds)} seeds on the same patients, an arm's AUC on the {run.set_name(which)} moves "
            f"by up to {spread.max():.3f} ({ARMS[widest].label}; median over arms {spread.median():.3f}), against "
            f"a 95% half-width of about {half:.3f} for one trained model: the choice of seed alone "
            + ("matters as much as the sampling of patients." if spread.median() >= half else
               "matters less than the sampling of patients, but it is not zero."))


# ---- compared pairs


def verdict_pairs(arms: Sequence[str], pairs: Sequence[Sequence[str]] | None = None) -> list[tuple[str, str]]:
    """The pairs of arms the chapter compares (first minus second).

    Parameters
    ----------
    arms : sequence of str
        The verdict arms.
    pairs : sequence of (arm_a, arm_b), optional
        Default: every two-arm claim of ``pdlib/data/claims.yaml`` whose arms
        are both in ``arms`` (in the file's order, the claimed better arm
        first), then PD-B7 against EfficientNet-B7 when both are trained;
        a pair is listed once whatever its order.

    Raises
    ------
    ValueError
        A pair that is not two different arms of ``arms``.
    """
    arms = _check_arms(arms)
    if pairs is None:
        candidates = [c.arms for c in verdict.load_claims() if len(c.arms) == 2 and c.versus is None]
        candidates.append(("pd_b7", "efficientnet_b7"))
        candidates = [c for c in candidates if c[0] in arms and c[1] in arms]
    else:
        candidates = list(pairs)
    out: list[tuple[str, str]] = []
    for pair in candidates:
        if isinstance(pair, str) or len(pair) != 2 or pair[0] == pair[1]:
            raise ValueError(f"a compared pair is two different arm names, got {pair!r}")
        a, b = str(pair[0]), str(pair[1])
        for name in (a, b):
            if name not in arms:
                raise ValueError(f"arm {name!r} of pair ({a!r}, {b!r}) is not a verdict arm ({arms})")
        if not any({a, b} == set(p) for p in out):
            out.append((a, b))
    return out


def _pair_label(a: str, b: str) -> str:
    return f"{ARMS[a].label} vs {ARMS[b].label}"


@dataclass(frozen=True)
class PairedSeeds:
    """The compared pairs seed by seed (:func:`paired_seeds`).

    Attributes
    ----------
    per_seed : DataFrame
        ``arm_a, arm_b, set, seed, auc_a, auc_b, difference, ci_low,
        ci_high, p_value``: the paired DeLong difference ``AUC_a - AUC_b`` of
        each seed with its 95% interval.
    summary : DataFrame
        ``arm_a, arm_b, set`` and :func:`pdlib.verdict.paired_seed_summary`'s
        columns (``n, mean, std, min, max, ci_low, ci_high`` (the paired
        t-interval over seeds), ``n_a_higher, n_b_higher, n_tied, n_agree,
        sign_test_p``), plus ``patients_ci_low, patients_ci_high``: DeLong's
        interval of the mean difference (:func:`pdlib.verdict.auc_contrast`).
    """

    per_seed: pd.DataFrame
    summary: pd.DataFrame


def paired_seeds(run: VerdictRun, pairs: Sequence[Sequence[str]], *, alpha: float = ALPHA) -> PairedSeeds:
    """Per-seed paired AUC differences of each pair on each set, and their summary over seeds."""
    pairs = verdict_pairs(run.arms, pairs)
    rows = []
    for which in run.sets():
        for a, b in pairs:
            for seed in run.seeds:
                scored = run.scored(which, seed)
                pair = [scored.scores[a].to_numpy(), scored.scores[b].to_numpy()]
                t = stats.delong_test(scored.labels, *pair)
                c = verdict.auc_contrast(scored.labels, pair, [1.0, -1.0], alpha=alpha)
                rows.append({"arm_a": a, "arm_b": b, "set": which, "seed": seed, "auc_a": t.auc_a, "auc_b": t.auc_b,
                             "difference": t.difference, "ci_low": c.ci_low, "ci_high": c.ci_high,
                             "p_value": t.p_value})
    per_seed = pd.DataFrame(rows, columns=["arm_a", "arm_b", "set", "seed", "auc_a", "auc_b", "difference",
                                           "ci_low", "ci_high", "p_value"])
    aucs = verdict_aucs(run, alpha=alpha)
    k = len(run.seeds)
    parts = []
    for which in run.sets():
        long = _finite(aucs[aucs["set"] == which], f"paired seeds on the {which} set")
        usable = [(a, b) for a, b in pairs if a in set(long["arm"]) and b in set(long["arm"])]
        summary = (verdict.paired_seed_summary(long[["arm", "seed", "auc"]], usable, alpha=alpha) if usable
                   else pd.DataFrame(columns=["arm_a", "arm_b"]))
        labels = run.scored(which, run.seeds[0]).labels
        extra = []
        for a, b in usable:
            c = verdict.auc_contrast(labels, np.vstack([_seed_matrix(run, which, a), _seed_matrix(run, which, b)]),
                                     np.r_[np.full(k, 1.0 / k), np.full(k, -1.0 / k)], alpha=alpha)
            extra.append({"patients_ci_low": c.ci_low, "patients_ci_high": c.ci_high})
        parts.append(pd.concat([summary.reset_index(drop=True), pd.DataFrame(extra)], axis=1).assign(set=which))
    summary = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    front = ["arm_a", "arm_b", "set"]
    return PairedSeeds(per_seed, summary[front + [c for c in summary.columns if c not in front]])


def paired_seed_display(paired: PairedSeeds, run: VerdictRun) -> pd.DataFrame:
    """:func:`paired_seeds` seed by seed, for people: one row per pair and set, each seed's difference (95% CI) in a cell."""
    rows = []
    for (a, b, which), group in paired.per_seed.groupby(["arm_a", "arm_b", "set"], sort=False):
        row = {"Comparison (first minus second)": _pair_label(a, b), "Patients": run.set_name(which)}
        for r in group.itertuples():
            row[f"seed {r.seed}"] = _ci_text(r.difference, r.ci_low, r.ci_high, signed=True)
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table["_set"] = table["Patients"].map({run.set_name(w): i for i, w in enumerate(run.sets())})
        table = table.sort_values("_set", kind="mergesort").drop(columns="_set").reset_index(drop=True)
    return table


def paired_summary_display(paired: PairedSeeds, run: VerdictRun) -> pd.DataFrame:
    """:func:`paired_seeds`' summary over seeds, for people (plain headers, intervals in the cells)."""
    rows = []
    for r in paired.summary.itertuples():
        n = int(r.n)
        rows.append({
            "Comparison (first minus second)": _pair_label(r.arm_a, r.arm_b),
            "Patients": run.set_name(r.set),
            "Mean difference over seeds (95% CI over seeds)": _ci_text(r.mean, r.ci_low, r.ci_high, signed=True),
            "95% CI over patients (DeLong)": ("n/a" if not np.isfinite(r.patients_ci_low) else
                                              f"{r.patients_ci_low:+.3f} to {r.patients_ci_high:+.3f}"),
            "Seeds with first higher": f"{int(r.n_a_higher)} of {n}",
            "Seeds with second higher": f"{int(r.n_b_higher)} of {n}",
            "Sign test p": "n/a" if not np.isfinite(r.sign_test_p) else f"{r.sign_test_p:.3f}",
        })
    return pd.DataFrame(rows)


def _focus(pairs: Sequence[tuple[str, str]], best_arm: str | None) -> tuple[str, str] | None:
    """The pair a chapter's sentences single out: the best arm against its own baseline, if compared."""
    if not pairs:
        return None
    if best_arm in ARMS:
        teacher = teacher_arm(best_arm)
        for pair in pairs:
            if set(pair) == {best_arm, teacher}:
                return pair
        for pair in pairs:
            if best_arm in pair:
                return pair
    return pairs[0]


def paired_statement(paired: PairedSeeds, run: VerdictRun, *, best_arm: str | None = None) -> str:
    """Sentences on the pairs over seeds: sign agreement and intervals, on each set, the best arm's pair first."""
    summary = paired.summary
    if not len(summary):
        return "No pair of arms is compared."
    k = len(run.seeds)
    pairs = list(dict.fromkeys(zip(summary["arm_a"], summary["arm_b"])))
    focus = _focus(pairs, best_arm)
    parts = []
    for which in run.sets():
        part = summary[summary["set"] == which]
        if not len(part):
            continue
        f = part[(part["arm_a"] == focus[0]) & (part["arm_b"] == focus[1])].iloc[0]
        all_agree = int(((part["n_agree"] == part["n"]) & (part["n"] > 0)).sum())
        excludes = int(((part["ci_low"] > 0) | (part["ci_high"] < 0)).sum())
        parts.append(
            f"On the {run.set_name(which)}, {ARMS[focus[0]].label} minus {ARMS[focus[1]].label} averages "
            f"{_ci_text(f['mean'], f['ci_low'], f['ci_high'], signed=True)} over the {k} seeds; the first arm is "
            f"higher in {int(f['n_a_higher'])} of {int(f['n'])} seeds"
            + (f" (exact sign test p = {f['sign_test_p']:.3f})" if np.isfinite(f["sign_test_p"]) else "")
            + f". Of the {_plural(len(part), 'compared pair', 'compared pairs')}, {all_agree} "
            f"{'has' if all_agree == 1 else 'have'} the same sign in every seed and {excludes} "
            f"{'has' if excludes == 1 else 'have'} a mean whose 95% interval over seeds excludes 0.")
    if k < 2:
        parts.append("With one seed there is no interval over seeds.")
    return " ".join(parts)


# ---- the paper's design under simulation and the sample size


def paper_test_auc(arm: str) -> float:
    """The test AUC the paper prints for an arm (Table 2, else Table 4), ``nan`` where it prints none."""
    label = ARMS[arm].label
    for table in ("Table 2", "Table 4"):
        printed = paper.values_for([label], table)
        printed = printed[printed["split"] == "test"]
        if len(printed) and pd.notna(printed["auc"].iloc[0]):
            return float(printed["auc"].iloc[0])
    return float("nan")


def paper_order(pair: Sequence[str]) -> tuple[str, str]:
    """The pair with the arm the paper ranked higher (by its printed test AUC) first; as given when unknown or tied."""
    a, b = pair
    pa, pb = paper_test_auc(a), paper_test_auc(b)
    return (b, a) if np.isfinite(pa) and np.isfinite(pb) and pb > pa else (a, b)


_DESIGN_COLUMNS = [
    "arm_a", "arm_b", "paper_auc_a", "paper_auc_b", "seed", "n_per_class", "n_draws", "auc_a", "auc_b",
    "difference", "p_ranked_as_paper", "p_tied", "p_significant", "p_significant_as_paper", "n_undefined_tests",
    "rule_a", "apparent_a", "fixed_a", "optimism_a", "optimism_a_q025", "optimism_a_q975",
    "rule_b", "apparent_b", "fixed_b", "optimism_b", "optimism_b_q025", "optimism_b_q975"]


def design_simulations(run: VerdictRun, pairs: Sequence[Sequence[str]], *, n_draws: int = 2000, seed: int = 0,
                       n_per_class: int = PAPER_PER_CLASS, alpha: float = ALPHA) -> pd.DataFrame:
    """The paper's 14 + 14 test design replayed on the external set, for each pair and seed.

    Each pair is put in the paper's order (:func:`paper_order`: ``a`` is the
    arm the paper ranked higher) and :func:`pdlib.verdict.simulate_design`
    draws ``n_draws`` test sets of ``n_per_class`` + ``n_per_class``
    external patients scored by the members of one seed, with each arm's
    pre-specified threshold of that seed as the fixed rule (its rule,
    out-of-fold or resubstitution, is in ``rule_a``/``rule_b``). A training
    seed is a training run the paper might have had; the chapter averages
    the seeds.

    Returns
    -------
    DataFrame
        One row per pair and seed (none without an external set): ``arm_a, arm_b, paper_auc_a, paper_auc_b,
        seed, n_per_class, n_draws, auc_a, auc_b, difference`` (on the whole
        external set), ``p_ranked_as_paper, p_tied, p_significant,
        p_significant_as_paper, n_undefined_tests`` and, per arm, ``rule,
        apparent, fixed, optimism`` (mean accuracies over the draws and their
        difference) and ``optimism_q025, optimism_q975``. A seed whose
        external set has fewer than ``n_per_class`` patients of a class gives
        ``nan`` with a :class:`pdlib.stats.DegenerateInputWarning`.
    """
    rows = []
    if not run.external:
        return pd.DataFrame(rows, columns=_DESIGN_COLUMNS)
    for pair in verdict_pairs(run.arms, pairs):
        a, b = paper_order(pair)
        for s in run.seeds:
            scored = run.scored("external", s)
            row = {"arm_a": a, "arm_b": b, "paper_auc_a": paper_test_auc(a), "paper_auc_b": paper_test_auc(b),
                   "seed": s, "n_per_class": n_per_class, "n_draws": n_draws,
                   "rule_a": _rule(run, a, s), "rule_b": _rule(run, b, s)}
            if min(scored.n_pos, scored.n_neg) < n_per_class:
                warnings.warn(f"seed {s}: the external set has {scored.n_pos} positive and {scored.n_neg} negative "
                              f"patients, fewer than {n_per_class} of a class; the design of pair ({a}, {b}) is not "
                              "simulated (nan)", stats.DegenerateInputWarning, stacklevel=2)
                rows.append(row)
                continue
            r = verdict.simulate_design(scored.labels, scored.scores[a].to_numpy(), scored.scores[b].to_numpy(),
                                        n_per_class=n_per_class, n_simulations=n_draws, seed=seed, alpha=alpha,
                                        threshold_a=run.threshold(a, s), threshold_b=run.threshold(b, s),
                                        arms=("a", "b"))
            row.update({k: getattr(r, k) for k in ("auc_a", "auc_b", "difference", "p_ranked_as_paper", "p_tied",
                                                   "p_significant", "p_significant_as_paper", "n_undefined_tests")})
            for side, o in r.optimism.set_index("arm").iterrows():
                row.update({f"apparent_{side}": o["apparent_mean"], f"fixed_{side}": o["fixed_mean"],
                            f"optimism_{side}": o["mean"], f"optimism_{side}_q025": o["q025"],
                            f"optimism_{side}_q975": o["q975"]})
            rows.append(row)
    return pd.DataFrame(rows, columns=_DESIGN_COLUMNS)


def _rule(run: VerdictRun, arm: str, seed: int) -> str:
    t = run.thresholds
    return str(t.loc[(t["arm"] == arm) & (t["seed"] == seed), "rule"].iloc[0])


def _percent(p: float) -> str:
    return "n/a" if p is None or not np.isfinite(p) else f"{100 * p:.0f}%"


def _mean_and_range(values: pd.Series, fmt) -> str:
    v = values.dropna()
    if not len(v):
        return "n/a"
    if len(v) == 1:
        return fmt(v.iloc[0])
    return f"{fmt(v.mean())} (seeds {fmt(v.min())} to {fmt(v.max())})"


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def design_display(sims: pd.DataFrame, *, per_seed: bool = False) -> pd.DataFrame:
    """:func:`design_simulations` for people.

    ``per_seed=False``: one row per pair, each probability as its mean over
    seeds with the seeds' range; ``per_seed=True``: one row per pair and
    seed. Optimism is in accuracy points (apparent minus fixed threshold).
    """
    rows = []
    for (a, b), group in sims.groupby(["arm_a", "arm_b"], sort=False):
        first = group.iloc[0]
        paper_text = ("not in the paper" if not (np.isfinite(first["paper_auc_a"]) and np.isfinite(first["paper_auc_b"]))
                      else f"{first['paper_auc_a']:.2f} vs {first['paper_auc_b']:.2f}")
        seeds = [group[group["seed"] == s] for s in group["seed"]] if per_seed else [group]
        for part in seeds:
            row = {"Comparison (paper's higher first)": _pair_label(a, b), "Paper's test AUCs": paper_text}
            if per_seed:
                row["Seed"] = int(part["seed"].iloc[0])
            row.update({
                "External difference": _mean_and_range(part["difference"], lambda x: f"{x:+.3f}"),
                "Ranked as the paper": _mean_and_range(part["p_ranked_as_paper"], _percent),
                "DeLong test significant at 5%": _mean_and_range(part["p_significant"], _percent),
                "Significant, paper's direction": _mean_and_range(part["p_significant_as_paper"], _percent),
                "Optimism, first (points)": _mean_and_range(part["optimism_a"], _points),
                "Optimism, second (points)": _mean_and_range(part["optimism_b"], _points),
                "Fixed thresholds": f"{_listing(sorted(set(part['rule_a']) | set(part['rule_b'])))}",
            })
            rows.append(row)
    return pd.DataFrame(rows)


def design_statement(sims: pd.DataFrame, run: VerdictRun, *, best_arm: str | None = None) -> str:
    """Sentences on the simulated design: the best arm's pair in detail, then the range over all pairs."""
    if not run.external:
        return ("This study has no external set, so the paper's design cannot be replayed: only a large set of "
                "patients scored by every arm shows how often a 14 + 14 test set ranks them correctly.")
    done = sims.dropna(subset=["p_ranked_as_paper"])
    if not len(done):
        return "The design could not be simulated: the external set has too few patients of a class."
    pairs = list(dict.fromkeys(zip(done["arm_a"], done["arm_b"])))
    a, b = _focus(pairs, best_arm)
    f = done[(done["arm_a"] == a) & (done["arm_b"] == b)]
    k, n_ext = f["seed"].nunique(), run.scored("external", run.seeds[0]).n
    per = int(f["n_per_class"].iloc[0])
    paper_known = np.isfinite(f["paper_auc_a"].iloc[0]) and np.isfinite(f["paper_auc_b"].iloc[0])
    order = ("the paper's order" if paper_known else "the order the pair is listed in (the paper prints no AUC "
             "for one of them)")
    text = (f"Drawing {int(f['n_draws'].iloc[0])} test sets of {per} + {per} patients from the {n_ext} external "
            f"patients, scored by the members of each of the {_plural(k, 'seed', 'seeds')} in turn (one trained "
            f"model per arm, as in the paper; the figures are averages over the seeds, i.e. over the training run "
            f"the paper might have had): {ARMS[a].label} comes out above {ARMS[b].label}, {order}, in "
            f"{_mean_and_range(f['p_ranked_as_paper'], _percent)} of the test sets, and a paired DeLong test at "
            f"the 5% level calls the difference in {_mean_and_range(f['p_significant'], _percent)}, "
            f"{_percent(f['p_significant_as_paper'].mean())} in the paper's direction. On the whole "
            f"external set the difference is {_mean_and_range(f['difference'], lambda x: f'{x:+.3f}')}.")
    if f["optimism_a"].notna().any():
        rules = sorted(set(f["rule_a"]))
        text += (f" Choosing the threshold on the test set itself (Youden's index, the paper's rule) raises "
                 f"{ARMS[a].label}'s accuracy by {_mean_and_range(f['optimism_a'], _points)} points on average "
                 f"over the accuracy at its threshold fixed beforehand ({_listing(rules)} on the training patients).")
    if len(pairs) > 1:
        means = done.groupby(["arm_a", "arm_b"])[["p_ranked_as_paper", "p_significant"]].mean()
        text += (f" Over all {len(pairs)} compared pairs, the design ranks a pair as the paper did in "
                 f"{_percent(means['p_ranked_as_paper'].min())} to {_percent(means['p_ranked_as_paper'].max())} "
                 f"of the test sets and calls a significant difference in "
                 f"{_percent(means['p_significant'].min())} to {_percent(means['p_significant'].max())}.")
    return text


def power_table(run: VerdictRun, pairs: Sequence[Sequence[str]], *, power: float = 0.8,
                alpha: float = ALPHA) -> pd.DataFrame:
    """Test-set size per class for a paired DeLong test to detect each pair's external difference.

    :func:`pdlib.verdict.power_sample_size` (closed form from DeLong's
    variance components) on each seed's external scores, the pair in the
    paper's order.

    Returns
    -------
    DataFrame
        ``arm_a, arm_b, seed, difference, variance_unit, n_per_class`` (``inf``
        with a warning when the AUCs are equal) and ``power_at_paper``: the
        power of the paper's 14 + 14 design for that difference. Empty without an external set.
    """
    rows = []
    columns = ["arm_a", "arm_b", "seed", "difference", "variance_unit", "n_per_class", "power", "power_at_paper"]
    if not run.external:
        return pd.DataFrame(rows, columns=columns)
    for pair in verdict_pairs(run.arms, pairs):
        a, b = paper_order(pair)
        for s in run.seeds:
            scored = run.scored("external", s)
            r = verdict.power_sample_size(scored.labels, scored.scores[a].to_numpy(), scored.scores[b].to_numpy(),
                                          power=power, alpha=alpha,
                                          grid=[PAPER_PER_CLASS, 20, 30, 50, 100, 200, 500, 1000])
            at_paper = float(r.curve.loc[r.curve["n_per_class"] == PAPER_PER_CLASS, "power"].iloc[0])
            rows.append({"arm_a": a, "arm_b": b, "seed": s, "difference": r.difference,
                         "variance_unit": r.variance_unit, "n_per_class": r.n_per_class, "power": power,
                         "power_at_paper": at_paper})
    return pd.DataFrame(rows, columns=columns)


def _size(n: float) -> str:
    return "none (equal AUCs)" if not np.isfinite(n) else f"{int(n):,}"


def power_display(powers: pd.DataFrame) -> pd.DataFrame:
    """:func:`power_table` for people: one row per pair, sizes per class of seed 0 and over seeds."""
    rows = []
    for (a, b), group in powers.groupby(["arm_a", "arm_b"], sort=False):
        first = group.iloc[0]
        sizes = group["n_per_class"]
        rows.append({
            "Comparison (paper's higher first)": _pair_label(a, b),
            "External difference": _mean_and_range(group["difference"], lambda x: f"{x:+.3f}"),
            f"Patients per class, seed {int(first['seed'])}": _size(first["n_per_class"]),
            "Patients per class, median over seeds": _size(float(np.median(sizes))),
            "Range over seeds": f"{_size(sizes.min())} to {_size(sizes.max())}",
            f"Power of {PAPER_PER_CLASS} + {PAPER_PER_CLASS}": _mean_and_range(group["power_at_paper"], _percent),
        })
    return pd.DataFrame(rows)


def power_statement(powers: pd.DataFrame, *, best_arm: str | None = None) -> str:
    """One sentence: how many patients the best arm's comparison needs, against the paper's 14 per class."""
    if not len(powers):
        return "No sample size is computed: it needs a difference measured on an external set."
    pairs = list(dict.fromkeys(zip(powers["arm_a"], powers["arm_b"])))
    a, b = _focus(pairs, best_arm)
    f = powers[(powers["arm_a"] == a) & (powers["arm_b"] == b)]
    target = float(f["power"].iloc[0])
    median = float(np.median(f["n_per_class"]))
    need = ("no test set of any size would show it, since the AUCs are equal" if not np.isfinite(median) else
            f"a paired DeLong test needs {_size(median)} patients per class (median over seeds; "
            f"{_size(f['n_per_class'].min())} to {_size(f['n_per_class'].max())}) for {100 * target:.0f}% power")
    return (f"For the external difference between {ARMS[a].label} and {ARMS[b].label} "
            f"({_mean_and_range(f['difference'], lambda x: f'{x:+.3f}')}), {need}, against the paper's "
            f"{PAPER_PER_CLASS}; with {PAPER_PER_CLASS} + {PAPER_PER_CLASS} patients its power is "
            f"{_mean_and_range(f['power_at_paper'], _percent)}.")


# ---- the claims, judged per source


def training_seconds(results_dir: str | os.PathLike, arms: Sequence[str], *, seeds: Sequence[int]) -> pd.DataFrame:
    """Training time of every arm and seed: the ``seconds`` of each member of its chain (``summary.json``), summed.

    Raises
    ------
    FileNotFoundError
        A member without ``summary.json``, naming the arm, seed and path.
    ValueError
        A ``summary.json`` without a positive finite ``seconds``, naming the path.
    """
    rows = []
    for arm in _check_arms(arms):
        for seed in _check_seeds(seeds):
            total = 0.0
            for key in ARMS[arm].member_keys():
                path = member_dir(results_dir, seed, key) / "summary.json"
                if not path.is_file():
                    raise FileNotFoundError(f"arm {arm} (seed {seed}): member {key} has no training summary; "
                                            f"{path} is missing")
                seconds = json.loads(path.read_text()).get("seconds")
                if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds) \
                        or seconds <= 0:
                    raise ValueError(f"arm {arm} (seed {seed}): {path} has no positive 'seconds' (got {seconds!r})")
                total += float(seconds)
            rows.append({"arm": arm, "seed": seed, "seconds": total})
    return pd.DataFrame(rows, columns=["arm", "seed", "seconds"])


def _aliases(arms: Sequence[str]) -> dict[str, str]:
    """Every arm of :data:`ARMS` whose final member is that of a verdict arm -> that verdict arm (itself first)."""
    by_key = {}
    for arm in arms:
        by_key.setdefault(ARMS[arm].final_key, arm)
    out = {arm: arm for arm in arms}
    for name, arm in ARMS.items():
        if name not in out and arm.final_key in by_key:
            out[name] = by_key[arm.final_key]
    return out


def _reader_estimates(manifest: Manifest | None, claims, labels: np.ndarray, scores: pd.DataFrame,
                      thresholds: Mapping[str, float], source: str) -> pd.DataFrame | None:
    """:func:`pdlib.verdict.reader_claim_estimates` on the test patients the manifest's readers called."""
    readers = manifest.readers if manifest is not None else None
    wanted = [c for c in claims if c.versus]
    if readers is None or not len(readers) or not wanted:
        return None
    calls = readers.pivot(index="patient_id", columns="reader", values="call")
    calls = calls.loc[[p for p in scores.index if p in calls.index]]
    positive = manifest.positive_class
    reader_calls = pd.DataFrame({r: (calls[r] == positive).astype(int).to_numpy() for r in calls.columns})
    keep = scores.index.isin(calls.index)
    return verdict.reader_claim_estimates(wanted, labels[keep], scores.loc[keep].reset_index(drop=True),
                                          reader_calls, thresholds=thresholds, source=source)


def verdict_sources(run: VerdictRun) -> dict[str, str]:
    """Plain labels of the scorecard's sources: ``test``, ``train``, ``external``, ``seeds``, ``time``."""
    s0, k = run.seeds[0], len(run.seeds)
    out = {"test": f"test set, {run.scored('test', s0).n} patients (seed {s0})",
           "train": f"training set, {run.scored('train', s0).n} patients (seed {s0})"}
    if run.external:
        out["external"] = f"external set, {run.scored('external', s0).n} patients (seed {s0})"
        out["seeds"] = f"{_plural(k, 'seed', 'seeds')} paired, external set"
    out["time"] = f"training time, {_plural(k, 'seed', 'seeds')}"
    return out


def verdict_scorecard(run: VerdictRun, *, manifest: Manifest | None = None, alpha: float = ALPHA) -> pd.DataFrame:
    """The paper's claims judged separately on each source of this run (:func:`pdlib.verdict.scorecard`).

    Sources (:func:`verdict_sources`): the test patients of the first seed
    (DeLong for AUCs, Wilson at each arm's pre-specified threshold, the
    readers of ``manifest`` when it has calls), its training patients (the
    claims on them), the external set scored by the first seed's members
    (the same estimates), the paired seeds on the external AUCs
    (:func:`pdlib.verdict.seed_claim_estimates`: mean difference and its
    t-interval over seeds) and the training times over seeds
    (:func:`pdlib.verdict.time_ratio_estimates`). An arm of the claims file
    that is not a verdict arm but has the same final member as one (e.g.
    the ablation row "+KD" and the KD arm) is judged on that member's
    scores. Claims whose arms were not trained are "not estimated".

    Returns
    -------
    DataFrame
        :func:`pdlib.verdict.scorecard`'s card, sources in the order above.
    """
    claims = verdict.load_claims()
    alias = _aliases(run.arms)
    trained = [c for c in claims if all(a in alias for a in c.arms)]
    needed = list(dict.fromkeys(a for c in trained for a in c.arms))
    sources = verdict_sources(run)
    s0 = run.seeds[0]
    parts = []

    def scores_of(which: str, seed: int) -> tuple[np.ndarray, pd.DataFrame]:
        scored = run.scored(which, seed)
        return scored.labels, pd.DataFrame({a: scored.scores[alias[a]] for a in needed}, index=scored.scores.index)

    if needed:
        thresholds = {a: run.threshold(alias[a], s0) for a in needed}
        y, scores = scores_of("test", s0)
        parts.append(verdict.claim_estimates(trained, y, scores, source=sources["test"], thresholds=thresholds,
                                             alpha=alpha))
        parts.append(_reader_estimates(manifest, trained, y, scores, thresholds, sources["test"]))
        y, scores = scores_of("train", s0)
        parts.append(verdict.claim_estimates(trained, y, scores, source=sources["train"], thresholds=thresholds,
                                             population="train", alpha=alpha))
        if run.external:
            y, scores = scores_of("external", s0)
            parts.append(verdict.claim_estimates(trained, y, scores, source=sources["external"],
                                                 thresholds=thresholds, alpha=alpha))
            aucs = verdict_aucs(run, alpha=alpha)
            ext = _finite(aucs[aucs["set"] == "external"], "the claims over seeds")
            long = pd.concat([ext[ext["arm"] == alias[a]].assign(arm=a) for a in needed], ignore_index=True)
            if len(run.seeds) > 1 and len(long):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", stats.DegenerateInputWarning)  # a seed with a nan AUC warned above
                    parts.append(verdict.seed_claim_estimates(trained, long[["arm", "seed", "auc"]],
                                                              source=sources["seeds"], value="auc", alpha=alpha))
        timed = [c for c in trained if c.metric == "train_time_ratio"]
        if timed:
            arms = list(dict.fromkeys(alias[a] for c in timed for a in c.arms))
            seconds = training_seconds(run.results_dir, arms, seeds=run.seeds)
            long = pd.concat([seconds[seconds["arm"] == alias[a]].assign(arm=a)
                              for a in dict.fromkeys(a for c in timed for a in c.arms)], ignore_index=True)
            parts.append(verdict.time_ratio_estimates(timed, long, source=sources["time"], alpha=alpha))
    parts = [p for p in parts if p is not None and len(p)]
    estimates = (pd.concat(parts, ignore_index=True) if parts
                 else pd.DataFrame(columns=["claim", "source", "estimate", "ci_low", "ci_high"]))
    return verdict.scorecard(claims, estimates)


def scorecard_counts(card: pd.DataFrame) -> pd.DataFrame:
    """Verdicts per source of a scorecard, for people: ``Patients`` and one column per verdict (counts of claims)."""
    judged = card[card["source"] != ""]
    rows = []
    for source, group in judged.groupby("source", sort=False):
        counts = group["verdict"].value_counts()
        rows.append({"Patients": source, **{v: int(counts.get(v, 0)) for v in verdict.VERDICTS[:3]}})
    return pd.DataFrame(rows, columns=["Patients", *verdict.VERDICTS[:3]])


def verdict_scorecard_statement(card: pd.DataFrame) -> str:
    """Generated sentences counting the verdicts of :func:`verdict_scorecard` per source."""
    claims = card["claim"].nunique()
    judged = card[card["source"] != ""]
    unjudged = card.loc[card["source"] == "", "claim"].nunique()
    text = (f"{_plural(claims, 'claim', 'claims')} of the paper, judged by the rule fixed in advance "
            "(`pdlib.verdict.scorecard`), each source on its own.")
    for source, group in judged.groupby("source", sort=False):
        counts = group["verdict"].value_counts()
        listed = [f"{int(counts[v])} {v}" for v in verdict.VERDICTS[:3] if counts.get(v, 0)]
        text += f" {source[:1].upper()}{source[1:]}: {_listing(listed)} (of {_plural(len(group), 'claim', 'claims')})."
    if unjudged:
        text += (f" {_plural(unjudged, 'claim is', 'claims are')} not estimated: this study did not train "
                 f"{'its arms' if unjudged == 1 else 'their arms'} (or the readers' calls are missing).")
    text += (" No correction is made for the number of claims, so a few verdicts either way are expected by "
             "chance; the external set's and the seeds' verdicts describe this twin, not the paper's cohort.")
    return text
