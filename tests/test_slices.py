"""Slice preprocessing, the decoded-slice cache and SliceDataset (pdlib.slices)."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from conftest import FAKE_PATIENT_ID, FAKE_PATIENT_NAME
from PIL import Image

from pdlib import slices as ps
from pdlib.dicom import DicomInputError, load_study_hu
from pdlib.manifest import load_manifest

SIZE = 32  # tiny slices keep the tests fast


# --------------------------------------------------------------------------
# array steps


def test_select_range_is_inclusive_and_checked():
    volume = np.arange(6)[:, None, None] * np.ones((6, 2, 3))
    assert ps.select_range(volume, 1, 4)[:, 0, 0].tolist() == [1, 2, 3, 4]
    assert ps.select_range(volume)[:, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert ps.select_range(volume, None, 0).shape == (1, 2, 3)
    assert ps.select_range(volume, 5, None).shape == (1, 2, 3)
    for first, last in [(4, 1), (0, 6), (-1, 3), (6, None)]:
        with pytest.raises(ValueError, match="does not fit a series of 6 slices"):
            ps.select_range(volume, first, last)
    with pytest.raises(ValueError, match="shape"):
        ps.select_range(np.zeros((4, 4)))


def test_window_is_the_papers():
    assert ps.HU_WINDOW == (-215.0, 285.0)  # level 35, width 500 (Han et al. 2025)
    out = ps.window(np.array([-3000.0, -215.0, 35.0, 285.0, 2000.0]))
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0])
    assert out.dtype == np.float32


def test_window_gives_the_bits_of_the_plain_expression():
    # Cached arrays must not change when window() is made faster.
    rng = np.random.default_rng(4)
    hu = rng.uniform(-3000, 3000, size=(3, 64, 64)).astype(np.float32)
    hu[0, 0, :6] = [-215.0, 285.0, 35.0, np.nextafter(-215.0, 0), np.nextafter(285.0, 0), -1024.0]
    low, high = ps.HU_WINDOW
    reference = ((np.clip(hu, low, high) - low) / (high - low)).astype(np.float32)
    out = ps.window(hu[:, 2:])  # a view, as select_range gives
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out.view(np.uint32), reference[:, 2:].view(np.uint32))


def test_resize_matches_pillow_antialiased_bilinear():
    # Pillow's BILINEAR resize widens its triangle filter when shrinking: an
    # independent reference implementation of the same antialiasing.
    rng = np.random.default_rng(0)
    x = rng.random((3, 100, 90)).astype(np.float32)
    for size in (SIZE, 150):
        out = ps.resize_slices(x, size)
        assert out.shape == (3, size, size) and out.dtype == np.float32
        for k in range(3):
            reference = np.asarray(Image.fromarray(x[k], mode="F").resize((size, size), Image.BILINEAR))
            np.testing.assert_allclose(out[k], reference, atol=1e-5)


def test_resize_antialiases_thin_lines():
    # One-pixel lines every 4 pixels, shrunk 4x: plain bilinear sampling
    # misses every line (all zeros); antialiasing keeps their mean, 1/4.
    x = np.zeros((1, 64, 64), np.float32)
    x[:, :, ::4] = 1.0
    out = ps.resize_slices(x, 16)
    np.testing.assert_allclose(out[0, :, 1:-1], 0.25, atol=1e-6)


def test_resize_is_deterministic_and_identity_at_size():
    rng = np.random.default_rng(1)
    x = rng.random((70, 40, 40)).astype(np.float32)  # more than one internal chunk
    a = ps.resize_slices(x, 24)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        b = ps.resize_slices(x, 24)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(a, b)
    same = ps.resize_slices(x, 40)
    np.testing.assert_array_equal(same, x)
    assert same is not x
    with pytest.raises(ValueError, match="size must be a positive integer"):
        ps.resize_slices(x, 0)


def test_preprocess_order_range_window_resize():
    rng = np.random.default_rng(2)
    hu = rng.uniform(-1200, 1500, size=(8, 48, 48)).astype(np.float32)
    out = ps.preprocess_volume(hu, first=2, last=5, resize=SIZE)
    expected = ps.resize_slices(ps.window(hu[2:6]), SIZE)
    np.testing.assert_allclose(out, expected, atol=1e-7)
    assert out.shape == (4, SIZE, SIZE) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    # Windowing before resizing: a bone pixel next to soft tissue saturates at
    # the window top instead of pulling the resized neighbourhood upwards.
    tissue = np.full((1, 4, 4), 35.0, np.float32)  # mid-window, 0.5
    tissue[0, 0, 0] = 3000.0
    windowed_first = ps.preprocess_volume(tissue, resize=2)[0, 0, 0]
    resized_first = ps.window(ps.resize_slices(tissue, 2))[0, 0, 0]
    assert windowed_first < resized_first
    assert windowed_first == pytest.approx(ps.resize_slices(ps.window(tissue), 2)[0, 0, 0])


def test_resample_depth():
    x = np.stack([np.full((2, 2), v, np.float32) for v in (0.0, 1.0, 2.0)])
    out = ps.resample_depth(x, 5)
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_array_equal(ps.resample_depth(x, 3), x)
    np.testing.assert_array_equal(ps.resample_depth(x[:1], 4), np.repeat(x[:1], 4, axis=0))
    assert ps.resample_depth(x, 1)[0, 0, 0] == 0.0


# --------------------------------------------------------------------------
# patients, cohorts and the cache


def test_load_patient_slices_matches_the_pipeline(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    patient = ps.load_patient_slices(manifest, "P002", resize=SIZE, cache_dir=tmp_path / "cache")
    assert (patient.patient_id, patient.label, patient.recist, patient.split) == ("P002", 1, "SD", "train")
    volume = load_study_hu(manifest.study_path("P002"), patient="P002")
    expected = ps.preprocess_volume(volume.hu, first=1, last=4, resize=SIZE)
    np.testing.assert_array_equal(patient.slices, expected)
    assert patient.slices.shape == (4, SIZE, SIZE)
    # The PVP series was chosen (the arterial one has other pixel values).
    pvp = [f for f in manifest.study_path("P002").rglob("*.dcm") if f.parent.name == "pvp"]
    assert set(volume.files) == set(pvp)


def test_load_cohort_by_split_and_positive_class(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    train = ps.load_cohort(manifest, split="train", resize=SIZE, cache_dir=tmp_path / "c")
    test = ps.load_cohort(manifest, split="test", resize=SIZE, cache_dir=tmp_path / "c")
    assert [p.patient_id for p in train] == ["P001", "P002", "P003"]
    assert [(p.patient_id, p.label) for p in test] == [("P004", 1), ("P005", 0)]
    assert len(ps.load_cohort(manifest, split=None, resize=SIZE, cache_dir=tmp_path / "c")) == 5
    manifest.positive_class = "GR"
    assert [p.label for p in ps.load_cohort(manifest, split="test", resize=SIZE, cache_dir=tmp_path / "c")] == [0, 1]
    with pytest.raises(ValueError, match="split"):
        ps.load_cohort(manifest, split="validation", resize=SIZE, cache_dir=tmp_path / "c")


def test_cache_is_read_and_keyed_on_content_and_parameters(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    cache = tmp_path / "cache"
    first = ps.load_patient_slices(manifest, "P001", resize=SIZE, cache_dir=cache).slices
    (entry,) = (cache / "slices").glob("*.npy")
    np.testing.assert_array_equal(np.load(entry), first)

    # A later call reads the entry instead of decoding: plant a marker in it.
    marker = np.full_like(first, 0.123)
    np.save(entry, marker)
    np.testing.assert_array_equal(ps.load_patient_slices(manifest, "P001", resize=SIZE, cache_dir=cache).slices, marker)

    # Another parameter is another entry.
    other = ps.load_patient_slices(manifest, "P001", resize=SIZE // 2, cache_dir=cache).slices
    assert other.shape == (4, SIZE // 2, SIZE // 2)
    assert len(list((cache / "slices").glob("*.npy"))) == 2

    # Changing one DICOM file's content misses the cache and decodes again.
    path = sorted((manifest.study_path("P001") / "pvp").glob("*.dcm"))[2]
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.copy()
    pixels[60:70, 60:70] = 1024 + 100  # +100 HU in a block
    ds.PixelData = pixels.tobytes()
    ds.save_as(path)
    fresh = ps.load_patient_slices(manifest, "P001", resize=SIZE, cache_dir=cache).slices
    assert not np.array_equal(fresh, marker)
    assert fresh.shape == first.shape and not np.array_equal(fresh, first)
    assert len(list((cache / "slices").glob("*.npy"))) == 3
    assert not list((cache / "slices").glob("*.tmp"))  # atomic writes leave no temporary files


def test_cache_survives_moving_the_data_but_not_a_new_range(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    cache = tmp_path / "cache"
    ps.load_patient_slices(manifest, "P003", resize=SIZE, cache_dir=cache)
    manifest.data_root.rename(manifest.data_root.with_name("moved"))
    manifest.data_root = manifest.data_root.with_name("moved")
    ps.load_patient_slices(manifest, "P003", resize=SIZE, cache_dir=cache)
    assert len(list((cache / "slices").glob("*.npy"))) == 1
    manifest.patients.loc[manifest.patients["patient_id"] == "P003", "last_slice"] = 5
    assert ps.load_patient_slices(manifest, "P003", resize=SIZE, cache_dir=cache).slices.shape[0] == 5
    assert len(list((cache / "slices").glob("*.npy"))) == 2


def test_cache_version_is_the_ingestion_codes_own_digest(tmp_path):
    """A change to decoding or preprocessing misses every old entry; nobody has to bump a number."""
    import shutil

    from pdlib import provenance

    package = Path(ps.__file__).parent
    assert ps.cache_version() == provenance.combine(provenance.module_code_digests(["pdlib.slices"]))
    # the cache key carries it
    payload = {"version": ps.cache_version(), "parameters": {"resize": 8}, "files": ["a", "b"]}
    assert ps.cache_key_from_digests(["b", "a"], resize=8) == hashlib.sha256(
        json.dumps(payload, sort_keys=True).encode()).hexdigest()

    copy = tmp_path / "pdlib"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))

    def version():
        provenance._MEMO.clear()  # the copy's files are edited in place within one second
        return provenance.combine(provenance.module_code_digests(["pdlib.slices"], copy))

    base = version()
    assert base == ps.cache_version()
    dicom = copy / "dicom.py"
    text = dicom.read_text()
    dicom.write_text(text + "\n# a comment changes nothing a cached array holds\n")
    assert version() == base
    assert "AIR_HU = " in text
    dicom.write_text(text.replace("AIR_HU = ", "AIR_HU = 1 + ", 1))  # decoding changed meaning
    assert version() != base
    dicom.write_text(text)
    window = copy / "slices.py"
    window.write_text(window.read_text().replace("HU_WINDOW = (-215.0, 285.0)", "HU_WINDOW = (-200.0, 300.0)"))
    assert version() != base


def test_corrupt_cache_entry_is_rebuilt(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    cache = tmp_path / "cache"
    good = ps.load_patient_slices(manifest, "P004", resize=SIZE, cache_dir=cache).slices
    (entry,) = (cache / "slices").glob("*.npy")
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(UserWarning, match="patient P004: unreadable cache entry .* rebuilding"):
        again = ps.load_patient_slices(manifest, "P004", resize=SIZE, cache_dir=cache).slices
    np.testing.assert_array_equal(again, good)


def test_same_numbers_with_and_without_cache(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    a = ps.load_cohort(manifest, split="test", resize=SIZE, cache_dir=tmp_path / "a")
    b = ps.load_cohort(manifest, split="test", resize=SIZE, cache_dir=tmp_path / "b")
    c = ps.load_cohort(manifest, split="test", resize=SIZE, cache_dir=tmp_path / "a")
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x.slices, y.slices)
        np.testing.assert_array_equal(x.slices, z.slices)


def test_no_header_identifier_in_the_cache(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    ps.load_cohort(manifest, split=None, resize=SIZE, cache_dir=tmp_path / "cache")
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for identifier in (FAKE_PATIENT_ID, FAKE_PATIENT_NAME, FAKE_PATIENT_NAME.split("^")[0]):
            assert identifier.encode() not in data and identifier not in path.name


def test_slice_range_outside_the_series_names_patient_and_study(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    manifest.patients.loc[manifest.patients["patient_id"] == "P005", "last_slice"] = 6
    with pytest.raises(DicomInputError, match="first_slice/last_slice .* series of 6 slices") as info:
        ps.load_patient_slices(manifest, "P005", resize=SIZE, cache_dir=tmp_path / "cache")
    assert info.value.patient == "P005" and info.value.path == manifest.study_path("P005")


def test_bad_dicom_error_names_the_patient_through_the_loader(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    victim = sorted((manifest.study_path("P002") / "pvp").glob("*.dcm"))[1]
    victim.write_bytes(victim.read_bytes()[:-3000])
    with pytest.raises(DicomInputError, match="truncated") as info:
        ps.load_cohort(manifest, split="train", resize=SIZE, cache_dir=tmp_path / "cache")
    assert info.value.patient == "P002" and info.value.path == victim


def test_load_patient_volume_for_the_3d_arm(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    volume = ps.load_patient_volume(manifest, "P001", depth=7, size=16, cache_dir=tmp_path / "cache")
    assert volume.shape == (7, 16, 16) and volume.dtype == np.float32
    stack = ps.load_patient_slices(manifest, "P001", resize=16, cache_dir=tmp_path / "cache").slices
    np.testing.assert_array_equal(volume[0], stack[0])
    np.testing.assert_array_equal(volume[-1], stack[-1])
    np.testing.assert_allclose(volume[2], stack[1], atol=1e-6)  # 7 slices over 4: slice 2 sits on input 1


# --------------------------------------------------------------------------
# SliceDataset


def _patients(n_slices=(3, 2), size=SIZE):
    rng = np.random.default_rng(3)
    return [
        ps.PatientSlices(f"P{i}", i % 2, rng.random((n, size, size)).astype(np.float32), "PR", "train")
        for i, n in enumerate(n_slices)
    ]


def test_slice_dataset_items():
    patients = _patients()
    data = ps.SliceDataset(patients, crop=24, train=False)
    assert len(data) == 5
    x, y, p = data[3]
    assert x.shape == (1, 24, 24) and x.dtype == torch.float32
    assert (y, p) == (1, 1)
    np.testing.assert_array_equal(x[0].numpy(), patients[1].slices[0, 4:28, 4:28])
    x[:] = -1  # items are copies: the stored slices stay intact
    assert patients[1].slices.min() >= 0
    with pytest.raises(ValueError, match="smaller than crop"):
        ps.SliceDataset(patients, crop=SIZE + 1, train=False)


def test_slice_dataset_training_items_are_seeded():
    patients = _patients()
    data = ps.SliceDataset(patients, crop=24, train=True)
    torch.manual_seed(0)
    a = [data[i][0] for i in range(len(data))]
    torch.manual_seed(0)
    b = [data[i][0] for i in range(len(data))]
    for u, v in zip(a, b):
        assert torch.equal(u, v)
    assert any(not torch.equal(u, v) for u, v in zip(a, a[1:] + a[:1]))


def test_slice_dataset_needs_no_files(tiny_cohort, tmp_path):
    import shutil

    manifest = load_manifest(tiny_cohort)
    patients = ps.load_cohort(manifest, split="train", resize=SIZE, cache_dir=tmp_path / "cache")
    data = ps.SliceDataset(patients, crop=28, train=True, augment=ps.Augment.none())
    shutil.rmtree(manifest.data_root)
    shutil.rmtree(tmp_path / "cache")
    items = [data[i] for i in range(len(data))]
    assert len(items) == 12 and [y for _, y, _ in items] == [0] * 4 + [1] * 4 + [0] * 4
