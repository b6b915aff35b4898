"""Failed and degenerate models, flagged by rules written down in advance.

A chapter must not print a number that only looks like a result. A member
is flagged, with a sentence saying why, when one of these rules fires on
what it wrote (``patient_predictions.csv``, ``metrics.csv``):

1. ``constant_scores``: fewer than :data:`MIN_DISTINCT_SCORES` distinct
   patient scores on the test split. The model gives (nearly) every patient
   the same score, so its AUC of 0.5 and its zero-width interval measure
   nothing (the demo's VGG-16 never leaves the class prior).
2. ``loss_not_falling``: the training loss of the last epoch is not at least
   :data:`MIN_LOSS_DROP` (relative) below the first epoch's: the optimiser
   made no progress, whatever the scores say.
3. ``train_below_test``: the training AUC is below the test AUC. A model
   that fits its own training patients worse than unseen ones has not
   learned what it is scored on; its test AUC is luck of the split.

The rules are deliberately simple and conservative; none uses the test
patients for any choice, only to describe what the member did.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pdlib import stats

#: Fewer distinct test scores than this is a constant model (rule 1).
MIN_DISTINCT_SCORES = 3

#: The last epoch's training loss must be at least this fraction below the
#: first epoch's (rule 2).
MIN_LOSS_DROP = 0.01

#: Every rule, in the order they are checked, with its short label.
RULES = {
    "constant_scores": "constant scores",
    "loss_not_falling": "training loss did not fall",
    "train_below_test": "training AUC below test AUC",
}


@dataclass(frozen=True)
class Flag:
    """One rule that fired for one member."""

    rule: str
    message: str

    @property
    def label(self) -> str:
        return RULES[self.rule]


def flags_of(predictions: pd.DataFrame, metrics: pd.DataFrame | None = None) -> list[Flag]:
    """The rules that fire on a member's predictions and training history.

    Parameters
    ----------
    predictions : DataFrame
        ``patient_predictions.csv``: columns ``split``, ``label``, ``score``.
    metrics : DataFrame, optional
        ``metrics.csv``: columns ``epoch``, ``loss``; rule 2 is skipped
        without it (or with a single epoch).

    Returns
    -------
    list of Flag
        Empty for a member none of the rules catches.
    """
    missing = {"split", "label", "score"} - set(predictions.columns)
    if missing:
        raise ValueError(f"predictions lack column(s) {sorted(missing)}")
    flags = []
    test = predictions[predictions["split"] == "test"]
    train = predictions[predictions["split"] == "train"]
    distinct = int(np.unique(np.round(test["score"].to_numpy(dtype=float), 6)).size)
    if len(test) and distinct < MIN_DISTINCT_SCORES:
        flags.append(Flag("constant_scores", f"{distinct} distinct score(s) over {len(test)} test patients: "
                                             "the model does not rank patients, so its AUC measures nothing"))
    if metrics is not None and len(metrics) >= 2 and "loss" in metrics:
        history = metrics.sort_values("epoch")["loss"].to_numpy(dtype=float)
        first, last = history[0], history[-1]
        if not (np.isfinite(first) and np.isfinite(last)) or last > first * (1 - MIN_LOSS_DROP):
            flags.append(Flag("loss_not_falling", f"training loss {first:.3f} in the first epoch, {last:.3f} "
                                                  "in the last: the optimiser made no progress"))
    if len(train) and len(test) and train["label"].nunique() == 2 and test["label"].nunique() == 2:
        with np.errstate(all="ignore"):
            train_auc = stats.roc_auc(train["label"], train["score"])
            test_auc = stats.roc_auc(test["label"], test["score"])
        if train_auc < test_auc:
            flags.append(Flag("train_below_test", f"training AUC {train_auc:.2f} below test AUC {test_auc:.2f}: "
                                                  "the model fits unseen patients better than its own"))
    return flags


def member_flags(member_dir: str | os.PathLike) -> list[Flag]:
    """:func:`flags_of` on a member folder's ``patient_predictions.csv`` and ``metrics.csv``."""
    folder = Path(member_dir)
    predictions = pd.read_csv(folder / "patient_predictions.csv", dtype={"patient_id": str})
    metrics_path = folder / "metrics.csv"
    metrics = pd.read_csv(metrics_path) if metrics_path.is_file() else None
    return flags_of(predictions, metrics)


def flag_text(flags: list[Flag]) -> str:
    """One plain sentence for a chapter: '' when no rule fired."""
    if not flags:
        return ""
    return "Flagged: " + "; ".join(f"{f.label} ({f.message})" for f in flags) + "."
