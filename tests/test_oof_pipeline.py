"""Out-of-fold thresholds scheduled by the study pipeline (``oof`` in a study configuration).

The pipeline trains every member of the configured arms on k stratified
folds of the training patients, whole chains included, one target per fold
member, then gathers each member's held-out scores. These tests run those
real targets on a small twin and check them against the one-process
:func:`pdlib.runs.run_arm`, which must give byte-identical scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pdlib import pipeline, runs
from pdlib.config import resolve_config
from pdlib.manifest import load_manifest
from pdlib.slices import load_cohort


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    from pdlib.twin import generate_twin

    folder = tmp_path_factory.mktemp("oof") / "twin"
    generate_twin(folder, n_patients=16, matrix=64, n_slices=12, signal_strength=3.0)
    return folder


def _study(twin: Path, results: Path, **extra):
    return pipeline.load_study({"profile": "smoke", "manifest": str(twin / "manifest"), "twin": str(twin),
                                "results": str(results), "cache": str(results / "cache"),
                                "book_runs": str(results / "book"), "arms": ["kd_b7"], "best_arm": "kd_b7",
                                "overrides": {"num_threads": 1, "epochs": 1}, "signal_sweep": None,
                                "oof": None, **extra})


def test_oof_configuration_is_validated(twin, tmp_path):
    for bad, message in [({"folds": 1}, "folds must be an integer >= 2"),
                         ({"folds": 2, "arms": ["pd_b7"]}, "oof.arms must be arms of the study"),
                         ({"folds": 2, "k": 3}, "unknown key")]:
        with pytest.raises(ValueError, match=message):
            _study(twin, tmp_path, oof=bad)
    assert _study(twin, tmp_path).oof is None
    assert _study(twin, tmp_path, oof={"folds": 3}).oof == {"folds": 3, "arms": ["kd_b7"]}


def test_fold_chains_are_planned_upstream_of_the_chapters(twin, tmp_path):
    study = _study(twin, tmp_path, oof={"folds": 2})
    targets = pipeline.plan(study)
    ids = list(targets)
    assert targets["oof/seed0/k2-fold1/b7--b7"].inputs == ("oof/seed0/k2-fold1/b7",)  # the fold's own teacher
    assert targets["oof/seed0/b7--b7"].inputs == ("member/seed0/b7--b7", "oof/seed0/k2-fold0/b7--b7",
                                                  "oof/seed0/k2-fold1/b7--b7")
    for tid, target in targets.items():
        assert all(ids.index(i) < ids.index(tid) for i in target.inputs), tid  # plan order: inputs first
    assert "oof/seed0/b7--b7" in targets["runs/06_results"].inputs
    assert "oof/seed0/b7" in targets["runs/03_kd"].inputs
    # without folds nothing of the kind is planned
    assert not [t for t in pipeline.plan(_study(twin, tmp_path)) if t.startswith("oof/")]


@pytest.mark.slow
def test_scheduled_fold_runs_equal_the_one_process_arm(twin, tmp_path):
    study = _study(twin, tmp_path / "pipeline", oof={"folds": 2})
    targets = pipeline.plan(study)
    for tid, target in targets.items():
        if target.kind in ("member", "oof"):
            pipeline.train_member_target(target, targets, study=study)
    assert {t for t in pipeline.stale_targets(study, targets=targets) if not t.startswith("runs/")} == set()
    seed0 = Path(study.results) / "seed0"
    manifest = load_manifest(twin / "manifest")
    config = resolve_config("smoke", seed=0, num_threads=1, epochs=1, oof_folds=2)
    train = load_cohort(manifest, split="train", resize=config.resize, cache_dir=tmp_path / "cache")
    test = load_cohort(manifest, split="test", resize=config.resize, cache_dir=tmp_path / "cache")
    runs.run_arm("kd_b7", train_patients=train, test_patients=test, config=config, out_dir=tmp_path / "arm")
    test_ids = set(manifest.patients.loc[manifest.patients["split"] == "test", "patient_id"])
    for key in ("b7", "b7--b7"):
        ours = (seed0 / key / "oof_predictions.csv").read_bytes()
        assert ours == (tmp_path / "arm" / key / "oof_predictions.csv").read_bytes(), key
        oof = pd.read_csv(seed0 / key / "oof_predictions.csv", dtype={"patient_id": str})
        assert sorted(oof["patient_id"]) == sorted(p.patient_id for p in train)  # every training patient once
        for fold in (0, 1):  # fold runs never see a test patient
            scored = pd.read_csv(seed0 / "oof" / f"k2-fold{fold}" / key / "patient_predictions.csv",
                                 dtype={"patient_id": str})
            assert test_ids.isdisjoint(scored["patient_id"])
    # the gathered scores follow their member: retraining it makes them stale
    stamp = Path(targets["member/seed0/b7"].output)
    stamp.write_text(stamp.read_text().replace('"pdlib_version"', '"note": 1,\n  "pdlib_version"', 1))
    stale = pipeline.stale_targets(study, targets=targets)
    assert "oof/seed0/b7" in stale and "member/seed0/b7" not in stale
    assert json.loads((seed0 / "b7" / pipeline.OOF_STAMP).read_text())["parameters"]["folds"] == 2
