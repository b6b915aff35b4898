"""Rules that flag failed and degenerate members (pdlib.diagnostics), pinned on constructed runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdlib import diagnostics


def _predictions(train_scores, test_scores) -> pd.DataFrame:
    rows = []
    for split, scores in (("train", train_scores), ("test", test_scores)):
        labels = [0, 1] * (len(scores) // 2)
        rows += [{"patient_id": f"{split}{i}", "split": split, "label": y, "score": s}
                 for i, (y, s) in enumerate(zip(labels, scores))]
    return pd.DataFrame(rows)


GOOD_TRAIN = [0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.15, 0.85]  # AUC 1.0
GOOD_TEST = [0.2, 0.7, 0.4, 0.6, 0.55, 0.5, 0.3, 0.8]  # AUC 15/16
FALLING = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.70, 0.60, 0.50]})


def test_a_healthy_member_raises_no_flag():
    assert diagnostics.flags_of(_predictions(GOOD_TRAIN, GOOD_TEST), FALLING) == []
    assert diagnostics.flag_text([]) == ""


def test_constant_scores_are_flagged():
    flags = diagnostics.flags_of(_predictions(GOOD_TRAIN, [0.3] * 8), FALLING)
    assert [f.rule for f in flags] == ["constant_scores"]
    assert "1 distinct score(s) over 8 test patients" in flags[0].message
    # two distinct values is still below the rule's minimum of three
    assert diagnostics.flags_of(_predictions(GOOD_TRAIN, [0.3, 0.4] * 4), FALLING)[0].rule == "constant_scores"


@pytest.mark.parametrize("losses, fires", [([0.7, 0.7], True), ([0.7, 0.75], True), ([0.7, 0.695], True),
                                           ([0.7, 0.69], False), ([0.7, float("nan")], True)])
def test_a_loss_that_does_not_fall_is_flagged(losses, fires):
    metrics = pd.DataFrame({"epoch": range(1, len(losses) + 1), "loss": losses})
    rules = [f.rule for f in diagnostics.flags_of(_predictions(GOOD_TRAIN, GOOD_TEST), metrics)]
    assert ("loss_not_falling" in rules) == fires


def test_training_auc_below_test_auc_is_flagged():
    flags = diagnostics.flags_of(_predictions(GOOD_TEST, GOOD_TRAIN), FALLING)
    assert [f.rule for f in flags] == ["train_below_test"]
    assert flags[0].message.startswith("training AUC 0.94 below test AUC 1.00")
    text = diagnostics.flag_text(flags)
    assert text.startswith("Flagged: training AUC below test AUC (") and text.endswith(".")


def test_member_folders_are_read(tmp_path):
    _predictions(GOOD_TRAIN, [0.5] * 8).to_csv(tmp_path / "patient_predictions.csv", index=False)
    assert [f.rule for f in diagnostics.member_flags(tmp_path)] == ["constant_scores"]  # no metrics.csv: rule 2 skipped
    FALLING.assign(loss=[0.7, 0.7, 0.7]).to_csv(tmp_path / "metrics.csv", index=False)
    assert [f.rule for f in diagnostics.member_flags(tmp_path)] == ["constant_scores", "loss_not_falling"]
    with pytest.raises(ValueError, match="lack column"):
        diagnostics.flags_of(pd.DataFrame({"split": ["test"]}))
