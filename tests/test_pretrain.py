"""Pretraining on an independent twin's tumour-slice task (pdlib.pretrain), on a real small twin."""

import json

import numpy as np
import pytest
import torch

from pdlib import config as config_module
from pdlib import models, pretrain, train
from pdlib.manifest import load_manifest
from pdlib.slices import load_cohort
from pdlib.twin import generate_twin

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    base = tmp_path_factory.mktemp("pretrain")
    generate_twin(base / "pretext", n_patients=10, matrix=64, n_slices=16, seed=7)
    generate_twin(base / "study", n_patients=10, matrix=64, n_slices=16, seed=8)
    return base


def smoke(**overrides):
    return config_module.resolve_config("smoke", **{"epochs": 1, "pretrain_epochs": 1, "progress": "none",
                                                    **overrides})


def test_pseudo_patients_split_each_patient_by_its_tumour_mask(twins):
    cohort = pretrain.tumour_slice_cohort(twins / "pretext", split="train", resize=40)
    manifest = load_manifest(twins / "pretext" / "manifest")
    patients = {p.patient_id: p for p in load_cohort(manifest, split="train", resize=40)}
    ranges = manifest.patients.set_index("patient_id")
    for patient_id, patient in patients.items():
        mask = np.load(twins / "pretext" / "masks" / f"{patient_id}.npz")["mask"]
        first, last = int(ranges.loc[patient_id, "first_slice"]), int(ranges.loc[patient_id, "last_slice"])
        shown = mask[first:last + 1].any(axis=(1, 2))
        parts = {p.patient_id: p for p in cohort if p.patient_id.startswith(patient_id)}
        assert parts[patient_id + "+tumour"].label == 1
        np.testing.assert_array_equal(parts[patient_id + "+tumour"].slices, patient.slices[shown])
        if (~shown).any():
            assert parts[patient_id + "-tumour"].label == 0
            np.testing.assert_array_equal(parts[patient_id + "-tumour"].slices, patient.slices[~shown])


def test_pretext_weights_have_no_head_load_into_a_member_and_are_reused(twins, tmp_path):
    config = smoke(pretrain_twin=str(twins / "pretext"))
    path = pretrain.pretrained_weights(twins / "pretext", arch="efficientnet_b0_smoke", config=config,
                                       out_dir=tmp_path / "pretrain")
    state = torch.load(path, weights_only=True)
    model = models.create_model("efficientnet_b0_smoke", weights_path=path)
    head = model.pdlib_classifier
    assert state and not any(k.startswith(head + ".") for k in state)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())
    # the pretext run is a complete member whose records say what it learned from
    record = json.loads((tmp_path / "pretrain" / "efficientnet_b0_smoke" / "config.json").read_text())
    assert record["train_config"]["epochs"] == 1 and record["train_config"]["pretrain_twin"] is None
    assert record["data"]["positive_class"] == "tumour"
    # a second call with the same twin and settings returns the file without training again
    before = path.stat().st_mtime_ns
    again = pretrain.pretrained_weights(twins / "pretext", arch="efficientnet_b0_smoke", config=config,
                                        out_dir=tmp_path / "pretrain")
    assert again == path and path.stat().st_mtime_ns == before


def test_members_start_from_the_pretext_weights_and_record_them(twins, tmp_path):
    manifest = load_manifest(twins / "study" / "manifest")
    train_set = load_cohort(manifest, split="train", resize=40)
    test_set = load_cohort(manifest, split="test", resize=40)
    config = smoke(pretrain_twin=str(twins / "pretext"))
    # the caller resolves the starting weights (train never calls pretrain)
    weights = pretrain.starting_weights("efficientnet_b0_smoke", config=config, out_dir=tmp_path / "pretrain")
    assert weights == tmp_path / "pretrain" / "efficientnet_b0_smoke.pt"
    train.train_member(tmp_path / "study" / "b0", arch="efficientnet_b0_smoke", train_patients=train_set,
                       test_patients=test_set, config=config, member_key="b0", init_weights=weights)
    record = json.loads((tmp_path / "study" / "b0" / "config.json").read_text())
    assert record["init_weights"] == {"file": weights.name,
                                      "fingerprint": models.weights_fingerprint(weights)}
    # the 3D arm has no 2D pretext: it starts from scratch and says so
    assert pretrain.starting_weights("resnet50_3d_smoke", config=config, out_dir=tmp_path / "pretrain") is None
    assert pretrain.starting_weights("efficientnet_b0_smoke", config=smoke(), out_dir=tmp_path / "pretrain") is None
    train.train_member(tmp_path / "study" / "r50_3d", arch="resnet50_3d_smoke", train_patients=train_set,
                       test_patients=test_set, config=config, member_key="r50_3d")
    record = json.loads((tmp_path / "study" / "r50_3d" / "config.json").read_text())
    assert record["init_weights"] is None
    # same settings, same numbers
    train.train_member(tmp_path / "again" / "b0", arch="efficientnet_b0_smoke", train_patients=train_set,
                       test_patients=test_set, config=config, member_key="b0", init_weights=weights)
    first = (tmp_path / "study" / "b0" / "slice_predictions.csv").read_text()
    assert (tmp_path / "again" / "b0" / "slice_predictions.csv").read_text() == first


def test_bad_pretraining_settings_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a digital twin"):
        pretrain.pretrained_weights(tmp_path, arch="efficientnet_b0_smoke", config=smoke(), out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="volumetric"):
        pretrain.pretrained_weights(tmp_path, arch="resnet50_3d_smoke", config=smoke(), out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="exclude each other"):
        smoke(pretrained=True, pretrain_twin="data/pretrain_twin")
    with pytest.raises(ValueError, match="pretrain_epochs"):
        smoke(pretrain_epochs=0)
