"""Training runs (pdlib.train), profiles (pdlib.config) and patient scores (pdlib.infer).

Every run here is a real training on a tiny in-memory cohort: 40 x 40 px
slices of noise where positive patients carry a brighter square on some of
their slices.
"""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from pdlib import config as config_module
from pdlib import infer, runs, stats, train
from pdlib.arms import ARMS
from pdlib.slices import PatientSlices

torch.set_num_threads(1)


def make_cohort(n, split, *, seed, n_slices=5, size=40):
    rng = np.random.default_rng(seed)
    patients = []
    for i in range(n):
        label = i % 2
        slices = rng.random((n_slices + i % 3, size, size), dtype=np.float32) * 0.4
        if label:
            slices[1:4, 12:28, 12:28] += 0.5
        recist = "SD" if label else "PR"
        patients.append(PatientSlices(f"{split}-{i:02d}", label, slices, recist, split))
    return patients


TRAIN = make_cohort(8, "train", seed=0)
TEST = make_cohort(4, "test", seed=1)


def smoke(**overrides):
    values = dict(epochs=2, progress="none", num_threads=1)
    values.update(overrides)
    return config_module.resolve_config("smoke", **values)


def read(member_dir, name):
    return pd.read_csv(member_dir / name, dtype={"patient_id": str}, float_precision="round_trip")


# ----------------------------------------------------------------- equation 2


def test_learning_rate_follows_equation_2_after_warmup():
    base, warmup, total = 0.01, 10, 110
    period = total - warmup
    for t in (0, 1, 25, 50, 75, 99):
        expected = 0.5 * (1 + math.cos(t * math.pi / period)) * base
        assert train.lr_at(warmup + t, base_lr=base, total_steps=total, warmup_steps=warmup) == pytest.approx(expected)
    assert train.lr_at(warmup, base_lr=base, total_steps=total, warmup_steps=warmup) == pytest.approx(base)
    assert train.lr_at(warmup + 50, base_lr=base, total_steps=total, warmup_steps=warmup) == pytest.approx(base / 2)


def test_learning_rate_warms_up_linearly_and_then_only_decreases():
    rates = [train.lr_at(s, base_lr=1.0, total_steps=40, warmup_steps=4) for s in range(40)]
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))
    assert rates[-1] > 0
    with pytest.raises(ValueError, match="step"):
        train.lr_at(40, base_lr=1.0, total_steps=40)
    with pytest.raises(ValueError, match="warmup_steps"):
        train.lr_at(0, base_lr=1.0, total_steps=4, warmup_steps=4)


# ----------------------------------------------------------------- profiles


def test_profiles_and_overrides():
    demo = config_module.resolve_config("demo")
    paper = config_module.resolve_config("paper")
    assert (demo.resize, demo.crop) == (64, 56)
    assert (paper.resize, paper.crop, paper.top_k) == (256, 224, 10)  # Han et al. 2025
    assert paper.pretrained and paper.amp and paper.channels_last
    changed = config_module.resolve_config("demo", epochs="3", lr="5e-4", slices_per_patient="none", amp="true")
    assert (changed.epochs, changed.lr, changed.slices_per_patient, changed.amp) == (3, 5e-4, None, True)
    with pytest.raises(ValueError, match="unknown TrainConfig field.*epoch"):
        config_module.resolve_config("demo", epoch=3)
    with pytest.raises(ValueError, match="kd_weight"):
        config_module.resolve_config("demo", kd_weight=1.5)
    with pytest.raises(ValueError, match="crop"):
        config_module.resolve_config("smoke", crop=64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo.epochs = 1
    assert config_module.parse_overrides(["epochs=4", "device=cpu"]) == {"epochs": 4, "device": "cpu"}
    with pytest.raises(ValueError, match="key=value"):
        config_module.parse_overrides(["epochs"])


# ----------------------------------------------------------------- patient scores


def test_patient_score_is_the_mean_of_the_ten_highest_slices():
    rng = np.random.default_rng(0)
    probs = rng.random(37)
    owner = np.repeat([0, 1, 2], [25, 4, 8])
    scores = infer.patient_scores(probs, owner, n_patients=3, top_k=10)
    for p, score in enumerate(scores):
        mine = sorted(probs[owner == p], reverse=True)
        assert score == pytest.approx(np.mean(mine[:10]))  # all slices when fewer than 10
    with pytest.warns(RuntimeWarning, match="no slices"):
        assert math.isnan(infer.patient_scores(probs, owner, n_patients=4)[3])


# ----------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def pd_chain(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    record = runs.run_arm("pd_b0_b3_b7", train_patients=TRAIN, test_patients=TEST, config=smoke(), out_dir=out)
    return out, record


def test_a_two_iteration_pd_chain_writes_every_member(pd_chain):
    out, record = pd_chain
    assert record["members"] == ["b0", "b0--b3mn", "b0--b3mn--b7mn"]
    for key, arch, teacher in zip(record["members"], ["efficientnet_b0_smoke", "efficientnet_b3_smoke",
                                                       "efficientnet_b7_smoke"], [None, "b0", "b0--b3mn"]):
        member = out / key
        for name in train.RUN_FILES:
            assert (member / name).is_file(), f"{key}/{name}"
        cfg = json.loads((member / "config.json").read_text())
        assert (cfg["arch"], cfg["teacher"], cfg["profile"], cfg["seed"]) == (arch, teacher, "smoke", 0)
        assert cfg["provenance"]["pdlib_version"]
        patients = read(member, "patient_predictions.csv")
        assert list(patients.columns) == ["patient_id", "split", "recist", "label", "score"]
        assert list(patients["patient_id"]) == [p.patient_id for p in TRAIN + TEST]
        assert patients["score"].between(0, 1).all()
        slices = read(member, "slice_predictions.csv")
        assert len(slices) == sum(len(p.slices) for p in TRAIN + TEST)
        first = slices[slices["patient_id"] == TRAIN[0].patient_id]["prob"]
        expected = np.mean(sorted(first, reverse=True)[:10])
        assert patients["score"].iloc[0] == pytest.approx(expected)
        metrics = read(member, "metrics.csv")
        assert list(metrics["epoch"]) == [1, 2]
        assert {"loss", "task_loss", "kd_loss", "lr", "train_accuracy"} <= set(metrics.columns)
        assert (metrics["kd_loss"] > 0).all() == (teacher is not None)
    arm = json.loads((out / "arms" / "pd_b0_b3_b7.json").read_text())
    assert arm["final_member"] == "b0--b3mn--b7mn"


def test_checkpoints_hold_the_student_alone_and_load_safely(pd_chain):
    out, record = pd_chain
    checkpoint = torch.load(out / "b0--b3mn" / "checkpoint.pt", map_location="cpu", weights_only=True)
    student = infer.load_member(out / "b0--b3mn")
    assert list(checkpoint["state_dict"]) == list(student.state_dict())
    assert checkpoint["epoch"] == 2 and checkpoint["optimizer"] is None  # finished: optimiser dropped
    assert checkpoint["model_args"]["drop_rate"] == smoke().noise_drop_rate
    # the reloaded student reproduces its own test predictions
    _, table = infer.predict_patients(student, TEST, arch="efficientnet_b3_smoke", crop=32)
    saved = read(out / "b0--b3mn", "patient_predictions.csv").set_index("patient_id").loc[table["patient_id"]]
    np.testing.assert_allclose(table["score"].to_numpy(), saved["score"].to_numpy(), rtol=1e-12)


def test_shared_members_are_not_trained_twice(pd_chain):
    out, _ = pd_chain
    before = (out / "b0" / "checkpoint.pt").stat().st_mtime_ns
    runs.run_arm("efficientnet_b0", train_patients=TRAIN, test_patients=TEST, config=smoke(), out_dir=out)
    assert (out / "b0" / "checkpoint.pt").stat().st_mtime_ns == before
    # a changed configuration is a different run: retrained
    runs.run_arm("efficientnet_b0", train_patients=TRAIN, test_patients=TEST, config=smoke(epochs=1), out_dir=out)
    assert (out / "b0" / "checkpoint.pt").stat().st_mtime_ns != before
    assert json.loads((out / "b0" / "config.json").read_text())["train_config"]["epochs"] == 1


def _student_run(folder, *, seed=0, stop_after_epoch=None):
    cfg = smoke(epochs=3, seed=seed)
    torch.manual_seed(123)
    teacher = train.train_member(folder / "teacher", arch="efficientnet_b0_smoke", train_patients=TRAIN,
                                 test_patients=TEST, config=smoke(epochs=1, seed=seed))
    return train.train_member(folder / "student", arch="efficientnet_b3_smoke", train_patients=TRAIN,
                              test_patients=TEST, config=cfg, teacher=teacher, noise=True,
                              stop_after_epoch=stop_after_epoch)


def test_a_killed_run_resumes_to_the_same_predictions(tmp_path):
    _student_run(tmp_path / "straight")
    assert _student_run(tmp_path / "killed", stop_after_epoch=2) is None
    stopped = tmp_path / "killed" / "student"
    assert not (stopped / "summary.json").exists() and not (stopped / "patient_predictions.csv").exists()
    assert torch.load(stopped / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert _student_run(tmp_path / "killed") is not None  # resumes at epoch 3
    assert json.loads((stopped / "summary.json").read_text())["resumed_from_epoch"] == 2
    for name in ("patient_predictions.csv", "slice_predictions.csv"):
        pd.testing.assert_frame_equal(read(stopped, name), read(tmp_path / "straight" / "student", name))
    loss = ["loss", "task_loss", "kd_loss", "lr", "train_accuracy"]
    pd.testing.assert_frame_equal(read(stopped, "metrics.csv")[loss],
                                  read(tmp_path / "straight" / "student", "metrics.csv")[loss])


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train.train_member(tmp_path / name, arch="resnet50_smoke", train_patients=TRAIN, test_patients=TEST,
                           config=smoke(seed=seed), member_key="r50")
        runs[name] = read(tmp_path / name, "slice_predictions.csv")
    pd.testing.assert_frame_equal(runs["a"], runs["b"])
    assert not np.allclose(runs["a"]["prob"], runs["c"]["prob"])
    # the caller's random state is left alone
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    train.train_member(tmp_path / "d", arch="densenet121_smoke", train_patients=TRAIN, test_patients=TEST,
                       config=smoke(epochs=1))
    assert torch.equal(torch.rand(3), expected)


def test_3d_and_hybrid_arms_train_and_score_patients(tmp_path):
    cfg = smoke(epochs=1, volume_batch_size=3)
    runs.run_arm("resnet50_3d", train_patients=TRAIN, test_patients=TEST, config=cfg, out_dir=tmp_path)
    volume = read(tmp_path / "r50_3d", "slice_predictions.csv")
    assert len(volume) == len(TRAIN + TEST) and (volume["slice_index"] == -1).all()
    patients = read(tmp_path / "r50_3d", "patient_predictions.csv")
    np.testing.assert_allclose(patients["score"], volume["prob"])
    runs.run_arm("hybrid", train_patients=TRAIN, test_patients=TEST, config=cfg, out_dir=tmp_path)
    assert json.loads((tmp_path / "hybrid_b7" / "summary.json").read_text())["status"] == "complete"


def test_out_of_fold_scores_cover_every_training_patient_once(tmp_path):
    cfg = smoke(epochs=1, oof_folds=2)
    runs.run_arm("kd_b0", train_patients=TRAIN, test_patients=TEST, config=cfg, out_dir=tmp_path)
    for key in ("b0", "b0--b0"):
        oof = read(tmp_path / key, "oof_predictions.csv")
        assert list(oof.columns) == ["patient_id", "fold", "recist", "label", "score"]
        assert list(oof["patient_id"]) == [p.patient_id for p in TRAIN]
        assert sorted(oof["fold"].unique()) == [0, 1]
        for fold, part in oof.groupby("fold"):
            assert part["label"].tolist().count(1) == 2  # stratified: 4 positives over 2 folds
            run = read(tmp_path / "oof" / f"k2-fold{fold}" / key, "patient_predictions.csv")
            assert set(run[run["split"] == "train"]["patient_id"]).isdisjoint(part["patient_id"])
            held = run[run["split"] == "heldout"].set_index("patient_id").loc[part["patient_id"]]
            np.testing.assert_array_equal(held["score"].to_numpy(), part["score"].to_numpy())
    # the main members do not depend on the out-of-fold setting
    config_b0 = json.loads((tmp_path / "b0" / "config.json").read_text())
    assert "oof_folds" not in config_b0["train_config"]
    with pytest.raises(ValueError, match="per class"):
        runs.stratified_folds([0, 0, 1, 1, 1], n_folds=3, seed=0)


def test_validation_split_is_monitored_not_trained_on(tmp_path):
    train.train_member(tmp_path / "v", arch="efficientnet_b0_smoke", train_patients=TRAIN, test_patients=TEST,
                       config=smoke(epochs=1, val_fraction=0.25))
    metrics = read(tmp_path / "v", "metrics.csv")
    assert {"val_loss", "val_accuracy"} <= set(metrics.columns)
    patients = read(tmp_path / "v", "patient_predictions.csv")
    assert (patients["split"] == "val").sum() == 2
    assert json.loads((tmp_path / "v" / "config.json").read_text())["data"]["n_train_patients"] == 6


def test_bad_patients_are_named(tmp_path):
    broken = make_cohort(2, "train", seed=3)
    broken[1] = dataclasses.replace(broken[1], slices=np.full((3, 40, 40), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="train-01.*non-finite"):
        train.train_member(tmp_path / "x", arch="efficientnet_b0_smoke", train_patients=broken,
                           test_patients=TEST, config=smoke())
    with pytest.raises(ValueError, match="both training and test.*test-00"):
        train.train_member(tmp_path / "x", arch="efficientnet_b0_smoke", train_patients=TRAIN + TEST[:1],
                           test_patients=TEST, config=smoke())
    with pytest.raises(ValueError, match="unknown arm"):
        runs.run_arm("pd_b9", train_patients=TRAIN, test_patients=TEST, config=smoke(), out_dir=tmp_path)


def test_command_line_rejects_unknown_arms_and_fields(capsys):
    with pytest.raises(SystemExit):
        runs.main(["--arm", "pd_b9", "--profile", "smoke"])
    assert "unknown arm" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        runs.main(["--arm", "pd_b7", "--profile", "smoke", "--set", "epoch=3"])
    assert "unknown TrainConfig field" in capsys.readouterr().err


def test_every_arm_resolves_to_models_of_each_profile():
    from pdlib import models

    for profile in ("smoke", "demo", "paper"):
        for arm in ARMS.values():
            for member in arm.members:
                assert models.arch_for_profile(member.arch, profile=profile) in models.ARCHS[profile]


def test_a_lock_left_by_a_dead_process_does_not_block(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / ".lock").write_text(dead.stdout.strip())
    train.train_member(tmp_path / "m", arch="efficientnet_b0_smoke", train_patients=TRAIN, test_patients=TEST,
                       config=smoke(epochs=1))
    assert (tmp_path / "m" / "summary.json").is_file() and not (tmp_path / "m" / ".lock").exists()


def test_command_line_trains_an_arm_from_real_dicom_without_leaking_identifiers(tmp_path, capsys):
    from pdlib.twin import generate_twin

    generate_twin(tmp_path / "twin", n_patients=8, matrix=64, n_slices=12, signal_strength=3.0)
    out = tmp_path / "results"
    code = runs.main(["--arm", "kd_b0", "--profile", "smoke", "--manifest", str(tmp_path / "twin" / "manifest"),
                       "--out", str(out), "--cache", str(tmp_path / "cache"), "--seed", "3",
                       "--set", "epochs=1", "--set", "oof_folds=2", "--set", "progress=none"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["members"] == ["b0", "b0--b0"] and (out / "arms" / "kd_b0.json").is_file()
    manifest = pd.read_csv(tmp_path / "twin" / "manifest" / "patients.csv", dtype=str)
    for key in record["members"]:
        patients = read(out / key, "patient_predictions.csv")
        assert sorted(patients["patient_id"]) == sorted(manifest["patient_id"])
        expected = (manifest.set_index("patient_id")["response"] == "PR").astype(int)
        assert (patients.set_index("patient_id")["label"] == expected.loc[patients["patient_id"]]).all()
        assert json.loads((out / key / "config.json").read_text())["seed"] == 3
        assert len(read(out / key, "oof_predictions.csv")) == (manifest["split"] == "train").sum()
    # no identifier planted in the DICOM headers reaches any output
    planted = pd.read_csv(tmp_path / "twin" / "identifiers.csv", dtype=str)["value"].dropna()
    planted = {v for v in planted if len(v) >= 6}
    texts = [p.read_text(errors="ignore") for p in out.rglob("*") if p.suffix in (".csv", ".json")]
    assert planted and texts
    assert not [v for v in planted for t in texts if v in t]


def test_worker_processes_keep_runs_reproducible(tmp_path):
    for name in ("a", "b"):
        train.train_member(tmp_path / name, arch="efficientnet_b0_smoke", train_patients=TRAIN, test_patients=TEST,
                           config=smoke(epochs=1, num_workers=2), member_key="b0")
    pd.testing.assert_frame_equal(read(tmp_path / "a", "slice_predictions.csv"),
                                  read(tmp_path / "b", "slice_predictions.csv"))


def test_persistent_workers_give_the_batches_of_a_fresh_loader_per_epoch():
    # The paper profile keeps its DataLoader workers alive across epochs; every epoch must still be the one a
    # fresh loader seeded with the epoch's seed gives (same slices, order and augmentation), or a resumed run
    # would differ from an uninterrupted one, and the training process's generator must stay untouched.
    from pdlib.slices import Augment, SliceDataset

    dataset = SliceDataset(TRAIN, crop=32, train=True, augment=Augment())
    lengths = [len(p.slices) for p in TRAIN]
    data = train.EpochData(dataset, lengths, per_patient=3, batch_size=4, num_workers=2)
    try:
        for epoch_seed in (11, 12, 13):
            indices = train.epoch_sample(lengths, per_patient=3, rng=np.random.default_rng(epoch_seed))
            fresh = torch.utils.data.DataLoader(
                torch.utils.data.Subset(dataset, indices.tolist()), batch_size=4, shuffle=True, drop_last=True,
                num_workers=2, worker_init_fn=train._seed_worker, generator=torch.Generator().manual_seed(epoch_seed))
            expected = [(x.clone(), y.clone(), p.clone()) for x, y, p in fresh]
            state = torch.get_rng_state()
            got = list(data.loader(epoch_seed))
            assert torch.equal(torch.get_rng_state(), state)
            assert len(got) == len(expected) == data.steps_per_epoch
            for (x, y, p), (ex, ey, ep) in zip(got, expected):
                assert torch.equal(x, ex) and torch.equal(y, ey) and torch.equal(p, ep)
        workers = data._persistent._iterator._workers
        assert all(w.is_alive() for w in workers)
    finally:
        data.close()
    assert not any(w.is_alive() for w in workers)


def test_positive_control_a_planted_signal_is_learned_and_generalises(tmp_path):
    # The demo's models stay at chance on the twin; this guards the other explanation
    # (a training loop that cannot learn): a conspicuous planted signal must be found
    # and must carry over to unseen patients, and its absence must not be "found".
    train_set, test_set = make_cohort(24, "train", seed=2), make_cohort(12, "test", seed=3)
    config = smoke(epochs=6, lr=3e-3)
    train.train_member(tmp_path / "signal", arch="efficientnet_b0_smoke", train_patients=train_set,
                       test_patients=test_set, config=config, member_key="b0")
    scores = read(tmp_path / "signal", "patient_predictions.csv")
    test = scores[scores["split"] == "test"]
    assert stats.roc_auc(test["label"], test["score"]) >= 0.9
    # the same design without the square: nothing to learn, nothing found
    rng = np.random.default_rng(4)
    flat = [dataclasses.replace(p, slices=rng.random(p.slices.shape, dtype=np.float32) * 0.4)
            for p in train_set + test_set]
    train.train_member(tmp_path / "none", arch="efficientnet_b0_smoke", train_patients=flat[:24],
                       test_patients=flat[24:], config=config, member_key="b0")
    scores = read(tmp_path / "none", "patient_predictions.csv")
    test = scores[scores["split"] == "test"]
    assert stats.roc_auc(test["label"], test["score"]) < 0.9
