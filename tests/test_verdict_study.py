"""The verdict study: controls, paired seeds, out-of-fold thresholds and an external twin (pdlib.pipeline).

The planning tests read the shipped configurations (``verdict.yaml``,
``smoke_verdict.yaml``); the slow test runs the smoke verdict study through
Snakemake on a 14-patient twin with a 24-patient external twin, as a user
would with ``make study PROFILE=smoke_verdict``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pdlib import arms, pipeline, pretrain
from pdlib.config import resolve_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_the_verdict_study_plans_paired_seeds_folds_and_the_external_set():
    study = pipeline.load_study({"profile": "verdict"})
    assert study.arms == arms.ARM_GROUPS["verdict"] and len(study.seeds) >= 5
    targets = pipeline.plan(study)
    members = [t for t in targets.values() if t.kind == "member" and t.id.startswith("member/")]
    # the same 15 members in every seed: differences between arms are paired
    per_seed = {s: sorted(t.parameters["member"] for t in members if t.parameters["seed"] == s) for s in study.seeds}
    assert len(per_seed[0]) == 15 and all(keys == per_seed[0] for keys in per_seed.values())
    # out-of-fold thresholds: the PD-B7 chain (whole chains) on 5 folds, in every seed
    folds = [t for t in targets.values() if t.id.startswith("oof/") and t.kind == "member"]
    assert len(folds) == 5 * 3 * len(study.seeds)
    # one scoring job per seed: every arm's final member scores the external twin
    external = [t for t in targets.values() if t.kind == "external"]
    assert [t.id for t in external] == [f"external/seed{s}" for s in study.seeds]
    finals = {arms.ARMS[a].final_key for a in study.arms}
    assert all(set(t.parameters["members"]) == finals for t in external)
    assert all(f"member/seed{t.parameters['seed']}/b7x3" in t.inputs for t in external)
    cohort = pipeline.external_cohort(study)
    assert cohort["twin_seed"] != 2025 and cohort["n_patients"] >= 500  # another hospital, a large set
    # chapter 12 reads every seed's members, the out-of-fold scores and the external scores
    chapter = targets["runs/12_verdict"]
    assert set(chapter.inputs) >= {t.id for t in external} | {f"oof/seed{s}/b7--b7mn--b7mn" for s in study.seeds}
    assert chapter.parameters["external"] == cohort and chapter.parameters["oof"] == study.oof
    # every seed starts from the same pretext weights, like the paper's ImageNet start
    config = resolve_config(study.profile, seed=3, **study.overrides)
    assert pretrain.pretext_config(config).seed == study.overrides["pretrain_seed"]


def test_external_chapters_and_controls_only_where_asked():
    demo = pipeline.load_study({"profile": "demo"})
    assert "12_verdict" not in demo.chapters and demo.external is None
    assert not {"noisy_student_b7", "compute_matched_b7"} & set(demo.arms)  # the paper's arms only
    assert not [t for t in pipeline.plan(demo).values() if t.kind == "external"]
    with pytest.raises(ValueError, match="need an external test set"):
        pipeline.load_study({"profile": "smoke", "chapters": ["12_verdict"]})
    with pytest.raises(ValueError, match="external: unknown key"):
        pipeline.load_study({"profile": "smoke_verdict", "external": {"patients": 10}})
    with pytest.raises(ValueError, match="group of pdlib.arms.ARM_GROUPS"):
        pipeline.load_study({"profile": "smoke", "arms": "verdicts"})
    assert pipeline.load_study({"profile": "smoke", "arms": "table4", "oof": None,
                                "best_arm": "ablation_b7_kd_mn_mi"}).arms \
        == arms.ARM_GROUPS["table4"]


@pytest.mark.slow
def test_the_smoke_verdict_study_runs_through_snakemake(tmp_path):
    """Controls, paired seeds, fold thresholds and the external twin, end to end on tiny models."""
    from pdlib.twin import generate_twin

    generate_twin(tmp_path / "twin", n_patients=14, matrix=64, n_slices=12, signal_strength=3.0)
    config = {"profile": "smoke_verdict", "manifest": str(tmp_path / "twin" / "manifest"),
              "twin": str(tmp_path / "twin"), "results": str(tmp_path / "results"),
              "book_runs": str(tmp_path / "book"), "cache": str(tmp_path / "cache")}
    command = [str(BIN / "snakemake"), "--snakefile", str(ROOT / "workflow" / "Snakefile"), "--directory",
               str(tmp_path), "-j", "2", "--rerun-triggers", "mtime", "params", "--config",
               *[f"{k}={v}" for k, v in config.items()]]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "PYTHONHASHSEED": "0"})
    assert run.returncode == 0, run.stderr[-6000:]
    study = pipeline.load_study(config)
    results = Path(config["results"])
    external = pd.read_csv(pipeline.external_cohort(study)["manifest"] + "/patients.csv", dtype={"patient_id": str})
    for seed in study.seeds:
        scored = {}
        for arm in study.arms:
            table = pd.read_csv(results / f"seed{seed}" / arms.ARMS[arm].final_key / "external_predictions.csv",
                                dtype={"patient_id": str})
            # every patient of the second hospital, scored by every arm, in every seed
            assert table["patient_id"].tolist() == external["patient_id"].tolist()
            assert table["score"].between(0, 1).all()
            scored[arm] = table["score"].to_numpy()
        # seeds differ, arms differ: the scores are each member's own
        assert not (scored["pd_b7"] == scored["efficientnet_b7"]).all()
    # the controls: the noisy student trained alone with noise, the compute-matched B7 three times as long
    noisy = json.loads((results / "seed0" / "b7mn" / "config.json").read_text())
    matched = json.loads((results / "seed0" / "b7x3" / "config.json").read_text())
    plain = json.loads((results / "seed0" / "b7" / "config.json").read_text())
    assert noisy["noise"] and noisy["teacher"] is None and noisy["drop_rate"] > 0
    assert matched["train_config"]["epochs"] == 3 * plain["train_config"]["epochs"]
    # the fold thresholds of the PD-B7 chain in both seeds
    for seed in study.seeds:
        assert (results / f"seed{seed}" / "b7--b7mn--b7mn" / "oof_predictions.csv").is_file()
    # the chapter executed, without errors, and says what the run did
    notebook = Path(config["book_runs"]) / "12_verdict.ipynb"
    text = notebook.read_text()
    assert '"output_type": "error"' not in text and "smoke_verdict" in text
    assert "out-of-fold" in text and "external" in text
    # everything is current: a second run has nothing to do
    again = subprocess.run(command + ["--dry-run"], capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in again.stdout + again.stderr, (again.stdout + again.stderr)[-3000:]
