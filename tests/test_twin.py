"""The digital twin (pdlib.twin): cohort tables, reader calls, DICOM studies, truth.

The paper's numbers are transcribed again here, independently of
``pdlib/data/table1.yaml``, so a typo in either shows up.
"""

import hashlib
import io
import json
import struct
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from pdlib import twin, vocab
from pdlib.stats import roc_auc

# Han et al. 2025, Table 1 (test-set male counts 11 and 13: see TABLE1_CORRECTIONS)
PAPER_TABLE1 = {
    ("train", "GR"): dict(n=73, age=(66.1, 41, 81), sex=dict(F=16, M=57),
                          lauren=dict(intestinal=11, diffuse_mixed=32, undifferentiated=30),
                          cea=dict(normal=43, elevated=30), ca199=dict(normal=47, elevated=26),
                          ct_stage=dict(T3=19, T4a=41, T4b=13), cn_stage={"N0-N1": 4, "N2-N3": 69},
                          cm_stage=dict(M0=56, M1=17)),
    ("train", "PR"): dict(n=39, age=(64.5, 39, 79), sex=dict(F=6, M=33),
                          lauren=dict(intestinal=9, diffuse_mixed=27, undifferentiated=3),
                          cea=dict(normal=26, elevated=13), ca199=dict(normal=22, elevated=17),
                          ct_stage=dict(T3=10, T4a=25, T4b=4), cn_stage={"N0-N1": 3, "N2-N3": 36},
                          cm_stage=dict(M0=34, M1=5)),
    ("test", "GR"): dict(n=14, age=(64.3, 46, 81), sex=dict(F=3, M=11),
                         lauren=dict(intestinal=4, diffuse_mixed=3, undifferentiated=7),
                         cea=dict(normal=9, elevated=5), ca199=dict(normal=9, elevated=5),
                         ct_stage=dict(T3=4, T4a=6, T4b=4), cn_stage={"N0-N1": 2, "N2-N3": 12},
                         cm_stage=dict(M0=12, M1=2)),
    ("test", "PR"): dict(n=14, age=(68.4, 51, 81), sex=dict(F=1, M=13),
                         lauren=dict(intestinal=6, diffuse_mixed=6, undifferentiated=2),
                         cea=dict(normal=7, elevated=7), ca199=dict(normal=7, elevated=7),
                         ct_stage=dict(T3=4, T4a=8, T4b=2), cn_stage={"N0-N1": 3, "N2-N3": 11},
                         cm_stage=dict(M0=11, M1=3)),
}
# Han et al. 2025, Table 3: (PR called PR, GR called GR) out of 14 + 14, positive class PR
PAPER_TABLE3 = {"C3": (14, 12), "C20": (12, 11), "C40": (13, 9)}

SCHEMA = ["patient_id", "split", "response", "recist", "age", "sex", "lauren", "cea", "ca199", "ct_stage",
          "cn_stage", "cm_stage", "study_dir", "pvp_series_uid", "first_slice", "last_slice"]
SMALL = dict(n_patients=10, matrix=64, n_slices=16, signal_strength=1.8, seed=7)


@pytest.fixture(scope="module")
def cohort():
    return twin.make_cohort_table()


@pytest.fixture(scope="module")
def small_twin(tmp_path_factory):
    out = tmp_path_factory.mktemp("twin") / "a"
    summary = twin.generate_twin(out, **SMALL)
    return out, summary


@pytest.fixture(scope="module")
def small_files(small_twin):
    """Every DICOM file of the small twin: {patient_id: [(path, dataset), ...]}."""
    out, _ = small_twin
    patients = _patients(out)
    files = {}
    for row in patients.itertuples():
        paths = sorted(p for p in (out / "dicom" / row.study_dir).rglob("*") if p.is_file())
        files[row.patient_id] = [(p, pydicom.dcmread(p)) for p in paths]
    return files


def _patients(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "manifest" / "patients.csv", dtype=str, keep_default_na=False)


def _series(datasets):
    groups = defaultdict(list)
    for path, ds in datasets:
        groups[ds.SeriesInstanceUID].append((path, ds))
    return groups


def _hu(ds):
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _tree_digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------
# cohort table (Table 1)


def test_table1_counts_exact_per_split_and_group(cohort):
    assert list(cohort.columns) == SCHEMA
    for (split, response), spec in PAPER_TABLE1.items():
        group = cohort[(cohort["split"] == split) & (cohort["response"] == response)]
        assert len(group) == spec["n"], (split, response)
        for covariate in ("sex", "lauren", "cea", "ca199", "ct_stage", "cn_stage", "cm_stage"):
            assert group[covariate].value_counts().to_dict() == spec[covariate], (split, response, covariate)


def test_table1_ages_mean_to_one_decimal_and_range(cohort):
    for (split, response), spec in PAPER_TABLE1.items():
        ages = cohort.loc[(cohort["split"] == split) & (cohort["response"] == response), "age"]
        mean, low, high = spec["age"]
        assert round(ages.mean(), 1) == mean
        assert (ages.min(), ages.max()) == (low, high)
        assert ages.dtype.kind == "i"


def test_cohort_values_spelled_as_schema_and_ids_pseudonymous(cohort):
    allowed = {
        "split": {"train", "test"}, "response": {"GR", "PR"}, "recist": {"CR", "PR", "SD", "PD"},
        "sex": {"F", "M"}, "lauren": {"intestinal", "diffuse_mixed", "undifferentiated"},
        "cea": {"normal", "elevated"}, "ca199": {"normal", "elevated"}, "ct_stage": {"T3", "T4a", "T4b"},
        "cn_stage": {"N0-N1", "N2-N3"}, "cm_stage": {"M0", "M1"},
    }
    for column, values in allowed.items():
        assert set(cohort[column]) == values, column
    assert cohort["patient_id"].tolist() == [f"TW{i:03d}" for i in range(1, 141)]
    assert cohort["study_dir"].is_unique
    # ids do not reveal the group: the first 73 ids are not the training GR patients
    assert cohort["response"].iloc[:73].nunique() == 2
    with_uid = cohort["pvp_series_uid"] != ""
    assert 0.2 < with_uid.mean() < 0.6
    assert cohort.loc[with_uid, "pvp_series_uid"].str.fullmatch(r"2\.25\.\d+").all()
    assert (cohort["first_slice"] >= 1).all() and (cohort["last_slice"] <= twin.DEFAULT_N_SLICES - 2).all()
    assert (cohort["last_slice"] - cohort["first_slice"] >= 10).all()


def test_recist_agrees_with_response_every_category_in_test_split(cohort):
    for table in (cohort, twin.make_cohort_table(n_patients=10, n_slices=16, seed=3)):
        good = table["response"] == "GR"
        assert table.loc[good, "recist"].isin(["CR", "PR"]).all()
        assert table.loc[~good, "recist"].isin(["SD", "PD"]).all()
        assert set(table.loc[table["split"] == "test", "recist"]) == {"CR", "PR", "SD", "PD"}
    counts = cohort["recist"].value_counts()
    assert counts["CR"] < counts["PR"] and counts["PD"] < counts["SD"]  # few CR, SD the commoner poor response


def test_small_cohort_keeps_two_per_cell_and_proportions():
    for n in (8, 10, 35):
        table = twin.make_cohort_table(n_patients=n, n_slices=16, seed=1)
        sizes = table.groupby(["split", "response"]).size()
        assert len(table) == n and sizes.min() >= 2 and len(sizes) == 4
    sizes = twin.make_cohort_table(n_patients=280, seed=1).groupby(["split", "response"]).size().to_dict()
    assert sizes == {("train", "GR"): 146, ("train", "PR"): 78, ("test", "GR"): 28, ("test", "PR"): 28}


def test_bad_sizes_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="n_patients"):
        twin.make_cohort_table(n_patients=7)
    with pytest.raises(ValueError, match="n_slices"):
        twin.make_cohort_table(n_slices=5)
    with pytest.raises(ValueError, match="matrix"):
        twin.generate_twin(tmp_path / "x", n_patients=8, matrix=32)
    with pytest.raises(ValueError, match="signal_strength"):
        twin.make_truth_table(twin.make_cohort_table(n_patients=8, n_slices=16), signal_strength=-1)
    assert not (tmp_path / "x").exists()


def test_covariates_correlated_within_exact_margins(cohort):
    stage = cohort["ct_stage"].map({"T3": 0, "T4a": 1, "T4b": 2})
    assert np.corrcoef(stage, cohort["cm_stage"] == "M1")[0, 1] > 0.1
    assert np.corrcoef(cohort["cea"] == "elevated", cohort["ca199"] == "elevated")[0, 1] > 0.2
    assert np.corrcoef(cohort["sex"] == "F", cohort["lauren"] == "diffuse_mixed")[0, 1] > 0.1


def test_corrections_are_recorded_with_reasons():
    corrections = {(c["table"], c["cell"], c["row"]): c for c in twin.TABLE1_CORRECTIONS}
    assert corrections[(1, "test/GR", "Sex, Male")]["used"].startswith("11")
    assert corrections[(1, "test/PR", "Sex, Male")]["used"].startswith("13")
    assert "35" in corrections[(1, "all", "CA199, Normal")]["used"]
    assert "78.57" in corrections[(3, "C20", "Specificity")]["used"]
    assert all(len(c["reason"]) > 40 for c in twin.TABLE1_CORRECTIONS)


def test_same_seed_same_tables_other_seed_differs():
    a = twin.make_manifest_tables(n_patients=40, n_slices=20, seed=11)
    b = twin.make_manifest_tables(n_patients=40, n_slices=20, seed=11)
    c = twin.make_manifest_tables(n_patients=40, n_slices=20, seed=12)
    for key in a:
        pd.testing.assert_frame_equal(a[key], b[key])
    assert not a["patients"].equals(c["patients"])
    assert not a["truth"]["latent_score"].equals(c["truth"]["latent_score"])


# --------------------------------------------------------------------------
# readers (Table 3)


def test_reader_calls_reproduce_table3(cohort):
    readers = twin.make_reader_calls(cohort)
    assert list(readers.columns) == ["patient_id", "reader", "call"]
    merged = readers.merge(cohort[["patient_id", "split", "response"]], on="patient_id")
    assert (merged["split"] == "test").all()
    assert set(readers["call"]) == {"GR", "PR"}
    for reader, (true_pr, true_gr) in PAPER_TABLE3.items():
        calls = merged[merged["reader"] == reader]
        assert len(calls) == 28 and calls["patient_id"].is_unique
        assert ((calls["response"] == "PR") & (calls["call"] == "PR")).sum() == true_pr
        assert ((calls["response"] == "GR") & (calls["call"] == "GR")).sum() == true_gr
    accuracy = {r: (g["call"] == g["response"]).sum() for r, g in merged.groupby("reader")}
    assert accuracy == {"C3": 26, "C20": 23, "C40": 22}  # 92.86%, 82.14%, 78.57%


def test_readers_misread_patients_whose_tumour_looks_like_the_other_group(cohort):
    truth = twin.make_truth_table(cohort)
    merged = twin.make_reader_calls(cohort).merge(truth[["patient_id", "response", "latent_noise"]])
    wrong = merged["call"] != merged["response"]
    gr = merged["response"] == "GR"
    # misread GR patients lean towards the PR look (high noise), misread PR ones the other way
    assert merged.loc[gr & wrong, "latent_noise"].mean() > merged.loc[gr & ~wrong, "latent_noise"].mean() + 0.5
    assert merged.loc[~gr & wrong, "latent_noise"].mean() < merged.loc[~gr & ~wrong, "latent_noise"].mean()


# --------------------------------------------------------------------------
# signal and oracle AUC


def _naive_auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_oracle_auc_is_the_pair_count_of_the_latent_score_per_split(cohort):
    truth = twin.make_truth_table(cohort, signal_strength=1.8)
    auc = twin.oracle_auc(truth)
    assert auc["all"] == pytest.approx(_naive_auc(truth["latent_score"], truth["label"]))
    for split in ("train", "test"):
        part = truth[truth["split"] == split]
        assert auc[split] == pytest.approx(_naive_auc(part["latent_score"], part["label"]))


def test_twin_categories_are_the_vocabulary():
    assert {k: set(v) for k, v in twin.CATEGORY_ORDER.items()} == {
        k: set(v) for k, v in vocab.COVARIATE_CATEGORIES.items()}
    assert twin.CELLS == ("train/GR", "train/PR", "test/GR", "test/PR")


def test_oracle_auc_grows_with_signal_and_is_chance_at_zero(cohort):
    aucs = [twin.oracle_auc(twin.make_truth_table(cohort, signal_strength=s))["all"] for s in (0, 0.5, 1, 1.8, 3)]
    assert all(b >= a for a, b in zip(aucs, aucs[1:])) and aucs[-1] > aucs[0] + 0.4
    assert abs(aucs[3] - twin.expected_oracle_auc(1.8)) < 0.05
    assert twin.expected_oracle_auc(1.8) == pytest.approx(0.90, abs=0.005)
    big = twin.make_cohort_table(n_patients=1400, n_slices=16, seed=5)
    assert abs(twin.oracle_auc(twin.make_truth_table(big, signal_strength=0, n_slices=16, seed=5))["all"] - 0.5) < 0.04


def test_truth_appearance_depends_on_response_nuisance_does_not(cohort):
    truth = twin.make_truth_table(cohort)
    poor = truth["label"] == 1
    assert (truth["label"] == (truth["response"] == "PR")).all()
    assert truth.loc[poor, "necrotic_fraction"].mean() > truth.loc[~poor, "necrotic_fraction"].mean() + 0.05
    # bulk is the most visible part of the signal: poor responders' tumours are far larger
    for column in ("tumour_thickness_mm", "tumour_half_extent_mm", "tumour_half_length_mm", "tumour_outward_mm"):
        assert truth.loc[poor, column].mean() > 1.4 * truth.loc[~poor, column].mean(), column
    null = twin.make_truth_table(cohort, signal_strength=0.0)
    for column in ("half_width_mm", "contrast_timing", "noise_hu", "liver_top", "fov_mm"):
        pd.testing.assert_series_equal(truth[column], null[column])  # the signal moves nothing else
        assert abs(roc_auc(truth["label"], truth[column]) - 0.5) < 0.15, column
    # without signal, neither the tumour's size nor its look tells the groups apart
    for column in ("tumour_thickness_mm", "necrotic_fraction", "enhancement_hu"):
        assert abs(roc_auc(null["label"], null[column]) - 0.5) < 0.15, column


def test_tumour_bulk_scales_the_drawn_geometry():
    geometry = {"tumour_thickness_mm": np.array([16.0, 16.0, 16.0]), "tumour_half_extent_mm": np.array([30.0] * 3),
                "tumour_half_length_mm": np.array([20.0] * 3), "tumour_outward_mm": np.array([3.0] * 3)}
    scaled = twin.tumour_bulk(np.array([0.0, 0.5, 1.0]), geometry, slice_mm=5.0)
    np.testing.assert_allclose(scaled["tumour_thickness_mm"], [8.0, 16.0, 40.0])  # floor of 8 mm
    np.testing.assert_allclose(scaled["tumour_half_extent_mm"], [18.0, 30.0, 54.0])  # floor of 18 mm
    np.testing.assert_allclose(scaled["tumour_half_length_mm"], [8.0, 20.0, 32.0])
    np.testing.assert_allclose(scaled["tumour_outward_mm"], [3.0, 18.0, 33.0])


# --------------------------------------------------------------------------
# the written twin


def test_twin_layout_and_summary(small_twin):
    out, summary = small_twin
    for rel in ("manifest/manifest.yaml", "manifest/patients.csv", "manifest/readers.csv", "truth.csv",
                "identifiers.csv", "twin.json"):
        assert (out / rel).is_file(), rel
    assert not list(out.parent.glob(".a.partial-*"))
    text = (out / "manifest" / "manifest.yaml").read_text()
    assert 'name: "digital twin (seed 7, signal 1.8)"' in text
    assert "data_root: ../dicom" in text and "positive_class: PR" in text
    stored = json.loads((out / "twin.json").read_text())
    assert stored["parameters"] == {k: SMALL[k] for k in SMALL} | {"signal_strength": 1.8}
    assert set(stored["oracle_auc"]) == {"all", "train", "test"}
    assert stored["counts"] == {"test/GR": 2, "test/PR": 2, "train/GR": 4, "train/PR": 2}
    assert summary["n_files"] == sum(1 for p in (out / "dicom").rglob("*") if p.is_file())
    assert summary["reused"] is False
    patients = _patients(out)
    assert list(patients.columns) == SCHEMA
    assert sorted(p.stem for p in (out / "masks").glob("*.npz")) == patients["patient_id"].tolist()


def test_every_file_is_valid_ct_dicom(small_twin, small_files):
    out, _ = small_twin
    for pid, items in small_files.items():
        for path, ds in items:
            raw = path.read_bytes()
            # independent of pydicom: preamble, prefix, explicit VR group length (PS3.10 7.1)
            assert raw[128:132] == b"DICM"
            group, element, vr, length = struct.unpack("<HH2sH", raw[132:140])
            assert (group, element, vr, length) == (2, 0, b"UL", 4)
            meta_length = struct.unpack("<I", raw[140:144])[0]
            assert struct.unpack("<H", raw[144 + meta_length:146 + meta_length])[0] != 2  # group 2 ends there
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == pydicom.uid.CTImageStorage
            assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
            assert ds.Modality == "CT" and ds.Rows == ds.Columns == 64
            assert ds.pixel_array.shape == (64, 64)


def test_studies_have_three_phases_sharing_study_and_frame_of_reference(small_twin, small_files):
    out, _ = small_twin
    patients = _patients(out).set_index("patient_id")
    descriptions = set()
    for pid, items in small_files.items():
        series = _series(items)
        assert len(series) >= 3
        assert len({ds.StudyInstanceUID for _, ds in items}) == 1
        assert len({ds.FrameOfReferenceUID for _, ds in items}) == 1
        assert len({ds.SeriesNumber for _, ds in items}) == len(series)
        pvp = [uid for uid, s in series.items() if len(s) == SMALL["n_slices"]]
        assert len(pvp) == 1
        if patients.at[pid, "pvp_series_uid"]:
            assert patients.at[pid, "pvp_series_uid"] == pvp[0]
        descriptions |= {s[0][1].SeriesDescription for s in series.values()}
    assert len(descriptions) >= 8  # varied wording, as from several scanners


def test_geometry_and_rescale(small_files):
    intercepts, representations = set(), set()
    for pid, items in small_files.items():
        for uid, series in _series(items).items():
            first = series[0][1]
            normal = np.cross(np.array(first.ImageOrientationPatient[:3], float),
                              np.array(first.ImageOrientationPatient[3:], float))
            assert list(map(float, first.ImageOrientationPatient)) == [1, 0, 0, 0, 1, 0]
            positions = np.sort([np.dot(normal, np.array(ds.ImagePositionPatient, float)) for _, ds in series])
            assert np.allclose(np.diff(positions), float(first.SliceThickness), atol=1e-3), (pid, uid)
            if "SpacingBetweenSlices" in first:
                assert float(first.SpacingBetweenSlices) == pytest.approx(float(first.SliceThickness))
            assert {tuple(map(float, ds.PixelSpacing)) for _, ds in series} == {tuple(map(float, first.PixelSpacing))}
            assert len({tuple(map(float, ds.ImagePositionPatient[:2])) for _, ds in series}) == 1
            intercepts.add(float(first.RescaleIntercept))
            representations.add(int(first.PixelRepresentation))
            # air in front of the abdomen (top centre, inside the reconstruction circle) is about -1000 HU
            hu = _hu(series[len(series) // 2][1])
            assert -1080 < hu[1:3, 28:36].mean() < -900, (pid, uid)
    assert len(intercepts) >= 2 and representations == {0, 1}


def test_instance_numbers_and_file_names_not_always_spatial(small_files):
    orders, named_in_order, layouts = set(), [], set()
    for pid, items in small_files.items():
        layouts.add(all(p.parent.name == pid for p, _ in items))
        for uid, series in _series(items).items():
            by_position = sorted(series, key=lambda item: float(item[1].ImagePositionPatient[2]))
            numbers = [int(ds.InstanceNumber) for _, ds in by_position]
            assert sorted(numbers) == list(range(1, len(numbers) + 1))
            orders.add("ascending" if numbers == sorted(numbers) else
                       "descending" if numbers == sorted(numbers, reverse=True) else "shuffled")
            names = [p.name for p, _ in by_position]
            named_in_order.append(names == sorted(names) or names == sorted(names, reverse=True))
    assert orders == {"ascending", "descending", "shuffled"}
    assert not all(named_in_order)
    assert layouts == {True, False}  # some studies flat, some with series sub-folders


def test_liver_range_and_tumour_mask_align_with_pvp(small_twin, small_files):
    out, _ = small_twin
    patients = _patients(out).set_index("patient_id")
    shifts = {"none": (0, 0, 0), "x+2": (0, 0, 2), "x-2": (0, 0, -2), "y+2": (0, 2, 0), "y-2": (0, -2, 0),
              "z+1": (1, 0, 0), "z-1": (-1, 0, 0)}
    soft_tissue = defaultdict(list)
    for pid, items in small_files.items():
        pvp = [s for s in _series(items).values() if len(s) == SMALL["n_slices"]][0]
        pvp = sorted(pvp, key=lambda item: float(item[1].ImagePositionPatient[2]))
        hu = np.stack([_hu(ds) for _, ds in pvp])
        saved = np.load(out / "masks" / f"{pid}.npz")
        mask, positions = saved["mask"], saved["slice_positions"]
        assert mask.dtype == bool and mask.shape == hu.shape
        assert np.allclose(positions, [float(ds.ImagePositionPatient[2]) for _, ds in pvp])
        first, last = int(patients.at[pid, "first_slice"]), int(patients.at[pid, "last_slice"])
        assert 0 < first < last < SMALL["n_slices"] - 1  # lung bases above, lower abdomen below
        per_slice = mask.sum(axis=(1, 2))
        assert per_slice[first:last + 1].sum() > 0 and per_slice[:first].sum() == per_slice[last + 1:].sum() == 0
        assert 10 < np.median(hu[mask]) < 160  # tumour: enhancing or necrotic soft tissue
        # above the liver range the lung bases lower the mean HU
        assert hu[last + 1:].mean() < hu[first:last + 1].mean()
        for name, shift in shifts.items():
            values = hu[np.roll(mask, shift, axis=(0, 1, 2))]
            soft_tissue[name].append(((values > 10) & (values < 200)).mean())
    # the mask covers soft tissue; moved by 2 pixels or 1 slice it reaches lumen, fat or air
    pooled = {name: np.mean(v) for name, v in soft_tissue.items()}
    assert pooled["none"] > 0.8
    assert all(pooled["none"] > v + 0.03 for name, v in pooled.items() if name != "none"), pooled


def test_truth_table_has_generating_variables_and_no_identifiers(small_twin):
    out, _ = small_twin
    truth = pd.read_csv(out / "truth.csv")
    identifiers = pd.read_csv(out / "identifiers.csv", dtype=str)
    assert {"latent_score", "necrotic_fraction", "heterogeneity_hu", "enhancement_hu", "tumour_thickness_mm",
            "contrast_timing", "tumour_voxels"} <= set(truth.columns)
    assert (truth["tumour_voxels"] > 0).all()
    assert not ({"PatientName", "PatientID", "PatientBirthDate", "AccessionNumber"} & set(truth.columns))
    stored = json.loads((out / "twin.json").read_text())
    assert stored["oracle_auc"]["all"] == pytest.approx(roc_auc(truth["label"], truth["latent_score"]))
    assert set(identifiers["keyword"]) >= {"PatientName", "PatientID"}


def test_identifiers_planted_in_headers_listed_and_kept_out_of_tables(small_twin, small_files):
    out, _ = small_twin
    identifiers = pd.read_csv(out / "identifiers.csv", dtype=str, keep_default_na=False)
    listed = identifiers.pivot(index="patient_id", columns="keyword", values="value")
    for pid, items in small_files.items():
        for _, ds in items:
            for keyword in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyDate",
                            "InstitutionName", "ReferringPhysicianName"):
                assert str(ds[keyword].value) == listed.at[pid, keyword], (pid, keyword)
            assert pid not in str(ds.PatientName) and pid != ds.PatientID
            study = pd.Timestamp(ds.StudyDate)
            assert pd.Timestamp("2017-09-01") <= study <= pd.Timestamp("2022-11-30")
            birth = pd.Timestamp(ds.PatientBirthDate)
            age = study.year - birth.year - ((study.month, study.day) < (birth.month, birth.day))
            assert f"{age:03d}Y" == ds.PatientAge
    assert listed["PatientName"].is_unique and listed["PatientID"].is_unique
    assert listed["PatientName"].str.contains("=").any()  # some with an ideographic (Chinese) group
    outputs = [out / "manifest" / n for n in ("manifest.yaml", "patients.csv", "readers.csv")]
    outputs += [out / "truth.csv", out / "twin.json", *sorted((out / "masks").glob("*.npz"))]
    blob = b"".join(p.read_bytes() for p in outputs)
    for value in set(identifiers["value"]):
        assert value.encode("utf-8") not in blob, value


def test_same_seed_byte_identical_other_seed_differs(small_twin, tmp_path):
    out, _ = small_twin
    argv = ["--out", str(tmp_path / "b"), "--n-patients", "10", "--matrix", "64", "--slices", "16",
            "--signal", "1.8", "--seed", "7", "--jobs", "2"]
    assert twin.main(argv) == 0
    assert _tree_digest(tmp_path / "b") == _tree_digest(out)  # also with 2 worker processes
    twin.generate_twin(tmp_path / "c", **{**SMALL, "seed": 8})
    pixels = {}
    for root in (out, tmp_path / "c"):
        pixels[root] = sorted(hashlib.sha256(pydicom.dcmread(p).PixelData).hexdigest()
                              for p in (root / "dicom").rglob("*") if p.is_file())
    assert not set(pixels[out]) & set(pixels[tmp_path / "c"])
    tables = [root / "manifest" / "patients.csv" for root in (out, tmp_path / "c")]
    assert tables[0].read_bytes() != tables[1].read_bytes()


def test_existing_twin_reused_replaced_or_protected(small_twin, tmp_path):
    out, _ = small_twin
    before = (out / "twin.json").stat().st_mtime_ns
    again = twin.generate_twin(out, **SMALL)
    assert again["reused"] is True and (out / "twin.json").stat().st_mtime_ns == before
    other = tmp_path / "other"
    twin.generate_twin(other, **{**SMALL, "n_patients": 8})
    replaced = twin.generate_twin(other, **{**SMALL, "n_patients": 9})
    assert replaced["reused"] is False and len(_patients(other)) == 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]  # no partial or old folders left
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not replacing"):
        twin.generate_twin(precious, **SMALL)
    assert (precious / "notes.txt").read_text() == "keep me"
    # empty folders made in advance (as workflow managers do for outputs) are not in the way
    prepared = tmp_path / "prepared"
    (prepared / "manifest").mkdir(parents=True)
    twin.generate_twin(prepared, **{**SMALL, "n_patients": 8})
    assert (prepared / "manifest" / "manifest.yaml").is_file()


def test_series_encoder_matches_pydicom_writer():
    ident = {"StudyDate": "20190305", "AccessionNumber": "CT1903051234",
             "InstitutionName": "YUNFENG RIVERSIDE HOSPITAL", "ReferringPhysicianName": "ZHOU^WENBIN",
             "PatientName": "WANG^JIANGUO=王^建国", "PatientID": "0012345678", "PatientBirthDate": "19500101"}
    row = {"sex": "M", "age": 69}
    for vendor in twin.VENDOR_STYLES:
        ident_v = ident if vendor["charset"] == "ISO_IR 192" else {**ident, "PatientName": "WANG^JIANGUO"}
        common = twin._common_attributes(
            vendor=vendor, ident=ident_v, row=row, phase="portal_venous", description="PVP", protocol="ABD",
            study_uid="2.25.1", series_uid="2.25.2", frame_uid="2.25.3", number=4, thickness=5.0, spacing=1.953125,
            matrix=4, study_time="101200", series_time="101610.00", inject_time="101500.00", fov=250.0)
        encoder = twin.SeriesEncoder(common, padding=vendor["storage"][4])
        pixels = (np.arange(16).reshape(4, 4) * 50).astype(np.int16 if vendor["storage"][0] else np.uint16)
        # odd and even lengths of every per-image value (padding), one image after another
        for image in (dict(sop_uid="2.25.99", instance=3, position=(-124.0, -120.5, 37.5), pixels=pixels),
                      dict(sop_uid="2.25.1234", instance=120, position=(-99.123456, 3.25, -1002.5),
                           pixels=pixels[::-1])):
            buffer = io.BytesIO()
            encoder.dataset(**image).save_as(buffer, enforce_file_format=True)
            data = encoder.encode(**image)
            assert data == buffer.getvalue(), vendor["manufacturer"]
            ds = pydicom.dcmread(io.BytesIO(data))
            assert np.array_equal(ds.pixel_array, image["pixels"])
            assert str(ds.PatientName) == ident_v["PatientName"]
            assert ds.InstanceNumber == image["instance"]


def test_ellipses_painted_in_their_bounding_box_equal_whole_slice_painting(monkeypatch):
    from pdlib import phantom

    truth = twin.make_truth_table(twin.make_cohort_table(n_patients=8, n_slices=24, seed=3), n_slices=24, seed=3)
    for index in (0, 5):
        row = truth.iloc[index].to_dict()
        anatomy = twin._anatomy(row)
        fov, matrix = float(row["fov_mm"]), 96
        x = float(row["recon_x_mm"]) - fov / 2 + fov / matrix * (np.arange(matrix) + 0.5)
        y = float(row["recon_y_mm"]) - fov / 2 + fov / matrix * (np.arange(matrix) + 0.5)
        z = twin.pvp_positions(row, n_slices=24)

        def render():
            return phantom.render_labels(anatomy, x_mm=x, y_mm=y, z_mm=z, rng=np.random.default_rng(index))

        boxed = render()
        with monkeypatch.context() as m:
            m.setattr(phantom._Canvas, "_span", staticmethod(lambda coords, low, high: (0, coords.size)))
            whole = render()
        assert np.array_equal(boxed, whole)
        assert (boxed == phantom.LABELS["tumour"]).any()


def test_committed_manifest_is_the_default_twin():
    root = Path(__file__).resolve().parent.parent / "data_manifest"
    tables = twin.make_manifest_tables()
    assert (root / "patients.csv").read_text(encoding="utf-8") == twin._csv_text(tables["patients"])
    assert (root / "readers.csv").read_text(encoding="utf-8") == twin._csv_text(tables["readers"])
    expected = twin.manifest_yaml(name=twin.twin_name(seed=twin.DEFAULT_SEED, signal_strength=twin.DEFAULT_SIGNAL),
                                  data_root="../data/twin/dicom")
    assert (root / "manifest.yaml").read_text(encoding="utf-8") == expected


def test_cli_rejects_bad_size(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        twin.main(["--out", str(tmp_path / "t"), "--n-patients", "3"])
    assert exc.value.code == 2
    assert "n_patients" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
