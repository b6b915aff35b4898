"""Hostile input (issue 13): no silently wrong HU, no raw traceback, nothing skipped without a word.

Every kind of bad input listed in the issue has a named test here, on real
files: pydicom's ``CT_small.dcm`` (and ``mlut_18.dcm`` for the Modality LUT)
copied into series with edited headers, the digital twin, real manifests and
a real tiny training run. The fuzz tests at the end (Hypothesis, fixed seed,
bounded example counts) edit valid series and manifests at random and check
the invariant: a correct result (HU equal to pydicom's ``apply_modality_lut``,
slices in order of position, no NaN) or a :class:`DicomInputError` /
manifest problem naming patient and file; never another exception. The
counts (cases tried, correct, clear error, anything else) are printed by
:func:`test_fuzz_counts` (run with ``-s`` to see them).

The tests run as root in CI, and root reads files and folders whatever
their mode, so an unreadable folder or file is made by dropping to the
``nobody`` user in a child process (``test_unreadable_folder_and_file``);
other unreadable entries are simulated with what root cannot read either: a
named pipe, a broken symbolic link, a symbolic link loop.
"""

from __future__ import annotations

import collections
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import FAKE_PATIENT_ID, FAKE_PATIENT_NAME, _write_ct_series, _write_manifest, pydicom_test_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from pdlib import atomic
from pdlib import dicom as pd_dicom
from pdlib import manifest as pm
from pdlib.dicom import DicomInputError

PATIENT = "P013"


def assert_names(err: DicomInputError, path=None) -> None:
    """The error names the patient and the file (or folder), and no header identifier."""
    assert err.patient == PATIENT
    text = str(err)
    assert PATIENT in text and err.path is not None and str(err.path) in text
    if path is not None:
        assert err.path == Path(path)
    assert FAKE_PATIENT_ID not in text and FAKE_PATIENT_NAME.split("^")[0] not in text


def set_raw(path, keyword: str, raw: bytes | None, *, vr: str | None = None) -> None:
    """Write ``raw`` as the stored bytes of ``keyword`` in file ``path`` (None: delete the element).

    The bytes are written as they are, whatever they hold (``b"nan"``,
    ``b"abc"``, ``b"1\\\\2"``): what a scanner or an editing tool with a bug
    would write. ``vr`` writes another VR than the dictionary's.
    """
    ds = pydicom.dcmread(path)
    tag = Tag(tag_for_keyword(keyword))
    if raw is None:
        if tag in ds:
            del ds[tag]
    else:
        vr = vr or dictionary_VR(tag)
        if vr in ("DS", "IS", "CS", "UI", "LO", "SH") and len(raw) % 2:
            raw += b"\x00" if vr == "UI" else b" "
        ds._dict[tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)
    ds.save_as(path)


def series_dir(tmp_path, n_slices=4, **kwargs) -> tuple[Path, list[Path]]:
    folder = tmp_path / "study"
    files = _write_ct_series(folder / "pvp", n_slices=n_slices, **kwargs)
    return folder, files


def load(folder):
    return pd_dicom.load_study_hu(folder, patient=PATIENT)


def reference_hu(path) -> np.ndarray:
    """HU of one file from pydicom alone: apply_modality_lut, padding to AIR_HU (pdlib's documented rule)."""
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    hu = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    def value(keyword):  # an empty element is an absent one (PS3.5 7.4)
        v = ds.get(keyword)
        return None if v is None or (isinstance(v, (str, bytes)) and not v.strip()) else int(v)

    pad = value("PixelPaddingValue")
    if pad is not None:
        limit = value("PixelPaddingRangeLimit")
        limit = pad if limit is None else limit
        bounds = np.array([pad, limit], dtype=np.int64).astype(stored.dtype)
        hu[(stored >= bounds.min()) & (stored <= bounds.max())] = pd_dicom.AIR_HU
    return hu.astype(np.float32)


def assert_correct(volume, folder) -> None:
    """The invariant's "correct result": every file, HU as pydicom, order by position, finite."""
    assert np.isfinite(volume.hu).all()
    assert np.all(np.diff(volume.positions) > 0)
    for k, path in enumerate(volume.files):
        np.testing.assert_array_equal(volume.hu[k], reference_hu(path))
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        o = np.array([float(v) for v in ds.ImageOrientationPatient])
        assert float(np.array([float(v) for v in ds.ImagePositionPatient]) @ np.cross(o[:3], o[3:])) == \
            volume.positions[k]
    in_series = []
    for path in pd_dicom.study_files(folder):
        try:
            uid = pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID
        except Exception:  # noqa: BLE001 - not DICOM: pdlib skipped it with a warning
            continue
        if uid == volume.series_uid:
            in_series.append(path)
    assert sorted(volume.files) == sorted(in_series)


# ==========================================================================
# header values that are not finite or not numbers


@pytest.mark.parametrize("keyword", ["RescaleSlope", "RescaleIntercept"])
@pytest.mark.parametrize("raw", [b"nan", b"inf", b"-inf", b"1e400", b"NaN"])
def test_rescale_value_not_finite_is_rejected(tmp_path, keyword, raw):
    folder, files = series_dir(tmp_path)
    set_raw(files[2], keyword, raw)
    with pytest.raises(DicomInputError, match=rf"\(0028,105[23]\) {keyword} value '.*' is not (finite|a number)") as info:
        load(folder)
    assert_names(info.value, files[2])
    assert raw.decode() in str(info.value)


def test_nan_in_one_image_position_is_rejected_not_reordered(tmp_path):
    folder, files = series_dir(tmp_path, n_slices=5)
    set_raw(files[3], "ImagePositionPatient", b"-100\\-100\\nan")
    with pytest.raises(DicomInputError, match=r"\(0020,0032\) ImagePositionPatient value 'nan' is not finite") as info:
        load(folder)
    assert_names(info.value, files[3])


@pytest.mark.parametrize("keyword, raw", [
    ("RescaleSlope", b"1,5"), ("RescaleIntercept", b"-1024HU"), ("ImagePositionPatient", b"1\\2\\x3"),
    ("PixelSpacing", b"0.7\\abc"), ("SeriesNumber", b"3.5"), ("NumberOfFrames", b"one"),
    ("ImageOrientationPatient", b"1\\0\\0\\0\\1\\O"),
])
def test_malformed_is_ds_text_is_an_error_naming_the_tag(tmp_path, keyword, raw):
    folder, files = series_dir(tmp_path)
    set_raw(files[1], keyword, raw)
    tag = pd_dicom.tag_name(keyword).replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(DicomInputError, match=rf"{tag} .*(is not (a number|an integer)|cannot be parsed)") as info:
        load(folder)
    assert_names(info.value, files[1])


@pytest.mark.parametrize("keyword, raw, count", [
    ("ImagePositionPatient", b"1\\2", 3), ("ImageOrientationPatient", b"1\\0\\0\\0\\1", 6),
    ("RescaleSlope", b"1\\2", 1), ("PixelSpacing", b"0.7\\0.7\\0.7", 2),
])
def test_wrong_number_of_values(tmp_path, keyword, raw, count):
    folder, files = series_dir(tmp_path)
    set_raw(files[0], keyword, raw)
    with pytest.raises(DicomInputError, match=rf"{keyword} has \d values, expected {count}") as info:
        load(folder)
    assert_names(info.value, files[0])


@pytest.mark.parametrize("keyword, raw, message", [
    ("RescaleSlope", b"0", "RescaleSlope is 0"),
    ("PixelSpacing", b"0\\0.7", r"PixelSpacing is 0|PixelSpacing value 0.0 is outside"),
    ("PixelSpacing", b"-0.7\\0.7", "PixelSpacing value -0.7 is outside"),
    ("ImagePositionPatient", b"1e9\\0\\0", "ImagePositionPatient value 1000000000.0 is outside"),
])
def test_values_out_of_range(tmp_path, keyword, raw, message):
    folder, files = series_dir(tmp_path)
    set_raw(files[0], keyword, raw)
    with pytest.raises(DicomInputError, match=message) as info:
        load(folder)
    assert_names(info.value, files[0])


def test_values_written_with_another_vr(tmp_path):
    import struct

    folder, files = series_dir(tmp_path, n_slices=3)
    set_raw(files[1], "RescaleSlope", struct.pack("<d", float("nan")), vr="FD")  # a binary NaN
    with pytest.raises(DicomInputError, match=r"\(0028,1053\) RescaleSlope value nan is not finite") as info:
        load(folder)
    assert_names(info.value, files[1])
    set_raw(files[1], "RescaleSlope", struct.pack("<H", 2), vr="US")  # a legal number in the wrong VR
    volume = load(folder)
    assert_correct(volume, folder)
    assert volume.hu[1].max() > 2 * volume.hu[0].max() - 1024  # slope 2 applied, as pydicom does
    set_raw(files[1], "RescaleSlope", b"\x01\x02\x03", vr="US")  # three bytes for a 2-byte number
    with pytest.raises(DicomInputError, match=r"RescaleSlope") as info:
        load(folder)
    assert_names(info.value, files[1])


def test_slope_without_intercept_is_an_error_not_slope_one(tmp_path):
    folder, files = series_dir(tmp_path)
    set_raw(files[0], "RescaleIntercept", None)
    with pytest.raises(DicomInputError, match=r"has \(0028,1053\) RescaleSlope but no \(0028,1052\) RescaleIntercept"):
        load(folder)


def test_huge_rescale_that_overflows_float32_is_rejected(tmp_path):
    folder, files = series_dir(tmp_path)
    set_raw(files[0], "RescaleSlope", b"1e300")
    with pytest.raises(DicomInputError, match="not finite in float32") as info:
        load(folder)
    assert_names(info.value, files[0])


# ==========================================================================
# geometry the code assumed away


def test_orientation_not_unit_length_is_rejected(tmp_path):
    folder, files = series_dir(tmp_path)
    for path in files:  # the same on every file, so not "two series mixed"
        set_raw(path, "ImageOrientationPatient", b"2\\0\\0\\0\\1\\0")
    with pytest.raises(DicomInputError, match=r"ImageOrientationPatient value 2.0 is outside") as info:
        load(folder)
    assert_names(info.value, files[0])
    for path in files:
        set_raw(path, "ImageOrientationPatient", b"0.9\\0\\0\\0\\1\\0")
    with pytest.raises(DicomInputError, match="have lengths 0.9 and 1, not 1"):
        load(folder)


def test_non_orthogonal_orientation_is_rejected(tmp_path):
    folder, files = series_dir(tmp_path)
    for path in files:
        set_raw(path, "ImageOrientationPatient", b"1\\0\\0\\0.1\\0.99498744\\0")
    with pytest.raises(DicomInputError, match=r"not orthogonal \(dot product 0.1") as info:
        load(folder)
    assert_names(info.value, files[0])


@pytest.mark.parametrize("raw, message", [
    (b"0\\0\\0\\0\\0\\0", "have lengths 0 and 0"),
    (b"1\\0\\0\\1\\0\\0", "not orthogonal"),
])
def test_zero_or_parallel_orientation_is_not_called_mixed_series(tmp_path, raw, message):
    folder, files = series_dir(tmp_path)
    set_raw(files[2], "ImageOrientationPatient", raw)
    with pytest.raises(DicomInputError, match=message) as info:
        load(folder)
    assert "two series mixed" not in str(info.value)
    assert_names(info.value, files[2])


def test_gantry_tilt_is_rejected(tmp_path):
    folder, files = series_dir(tmp_path)
    for path in files:
        set_raw(path, "GantryDetectorTilt", b"15")
    with pytest.raises(DicomInputError, match=r"\(0018,1120\) GantryDetectorTilt is 15 degrees.*does not resample"):
        load(folder)
    for path in files:  # a tilt of 0 (as CT_small writes) is fine
        set_raw(path, "GantryDetectorTilt", b"0.0")
    assert load(folder).hu.shape[0] == 4


def test_sheared_stack_from_a_tilt_without_the_tag_is_rejected(tmp_path):
    # The positions move along y as well as z: a 15 degree tilt, with (0018,1120) absent.
    folder, files = series_dir(tmp_path)
    for k, path in enumerate(files):
        set_raw(path, "GantryDetectorTilt", None)
        set_raw(path, "ImagePositionPatient", f"-100\\{-100 + 5 * k * 0.268:.3f}\\{5 * k}".encode())
    with pytest.raises(DicomInputError, match="not stacked along their normal.*sheared") as info:
        load(folder)
    assert_names(info.value)


# ==========================================================================
# Modality LUT Sequence


def add_modality_lut(path, *, lut_type="HU", offset=-1024, entries=4096, first=0) -> None:
    ds = pydicom.dcmread(path)
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType", "PixelPaddingValue"):
        if keyword in ds:
            delattr(ds, keyword)
    item = Dataset()
    item.add_new(0x00283002, "US", [entries, first, 16])  # LUT Descriptor
    item.ModalityLUTType = lut_type
    item.add_new(0x00283006, "US", [(2 * i + 3) % 65536 for i in range(entries)])  # LUT Data
    ds.ModalityLUTSequence = Sequence([item])
    ds.save_as(path)


def test_modality_lut_sequence_in_hu_is_applied_through_pydicom(tmp_path):
    folder, files = series_dir(tmp_path, n_slices=3)
    for path in files:
        add_modality_lut(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "using slope 1, intercept 0" warning
        volume = load(folder)
    for k, path in enumerate(volume.files):
        ds = pydicom.dcmread(path)
        np.testing.assert_array_equal(volume.hu[k], apply_modality_lut(ds.pixel_array, ds).astype(np.float32))
        assert not np.array_equal(volume.hu[k], ds.pixel_array.astype(np.float32))  # not slope 1 / intercept 0


def test_modality_lut_sequence_not_in_hu_is_rejected(tmp_path):
    # pydicom-data's mlut_18.dcm: a real Modality LUT of type "US" (unspecified), relabelled as CT.
    files = _write_ct_series(tmp_path / "study" / "s", n_slices=2, source="mlut_18.dcm")
    with pytest.raises(DicomInputError, match=r"\(0028,3000\) ModalityLUTSequence maps stored values to .*'US', not HU"):
        load(tmp_path / "study")
    assert pydicom.dcmread(files[0]).ModalityLUTSequence[0].ModalityLUTType == "US"


def test_modality_lut_and_rescale_together_are_ambiguous(tmp_path):
    folder, files = series_dir(tmp_path, n_slices=2)
    add_modality_lut(files[0])
    set_raw(files[0], "RescaleSlope", b"1")
    set_raw(files[0], "RescaleIntercept", b"-1024")
    with pytest.raises(DicomInputError, match="both a .*ModalityLUTSequence and rescale tags") as info:
        load(folder)
    assert_names(info.value, files[0])


def test_malformed_modality_lut_is_rejected(tmp_path):
    folder, files = series_dir(tmp_path, n_slices=2)
    add_modality_lut(files[1], entries=4096)
    ds = pydicom.dcmread(files[1])
    ds.ModalityLUTSequence[0].LUTData = [1, 2, 3]
    ds.save_as(files[1])
    with pytest.raises(DicomInputError, match=r"LUTData has 3 entries; .*LUTDescriptor announces 4096") as info:
        load(folder)
    assert_names(info.value, files[1])


# ==========================================================================
# files the folder walk did not see


def test_slices_in_a_symlinked_folder_inside_the_study_are_read(tmp_path):
    study = tmp_path / "study"
    files = _write_ct_series(study / "real", n_slices=4)
    (study / "real" / "upper").mkdir()
    for path in files[2:]:
        path.rename(study / "real" / "upper" / path.name)
    os.symlink(study / "real" / "upper", study / "linked")
    # The upper slices are reachable twice (real folder and link): each real folder is read once.
    volume = load(study)
    assert len(volume.files) == 4


def test_slice_reached_only_through_a_link_inside_the_study(tmp_path):
    study = tmp_path / "study"
    files = _write_ct_series(study / "lower", n_slices=4)
    hidden = study / ".store" / "upper"
    hidden.mkdir(parents=True)
    for path in files[2:]:
        path.rename(hidden / path.name)
    (study / "upper").symlink_to(hidden, target_is_directory=True)
    volume = load(study)
    assert len(volume.files) == 4  # the end slices are not lost


def test_study_that_is_only_a_symlink_to_the_series_folder(tmp_path):
    files = _write_ct_series(tmp_path / "store" / "series", n_slices=3)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "study").symlink_to(tmp_path / "store" / "series", target_is_directory=True)
    volume = load(tmp_path / "data" / "study")
    assert [p.name for p in volume.files] == [p.name for p in files]


def test_symlink_leading_outside_the_study_is_refused(tmp_path):
    folder, files = series_dir(tmp_path)
    _write_ct_series(tmp_path / "other_patient", n_slices=2, description="PVP other")
    (folder / "extra").symlink_to(tmp_path / "other_patient", target_is_directory=True)
    with pytest.raises(DicomInputError, match="symbolic link to .*outside the study folder") as info:
        load(folder)
    assert_names(info.value, folder / "extra")


def test_symlink_loop_ends(tmp_path):
    folder, files = series_dir(tmp_path)
    (folder / "pvp" / "again").symlink_to(folder, target_is_directory=True)
    assert len(load(folder).files) == 4


def test_broken_symlink_is_reported(tmp_path):
    folder, files = series_dir(tmp_path)
    (folder / "pvp" / "IM9999.dcm").symlink_to(tmp_path / "gone.dcm")
    with pytest.raises(DicomInputError, match="broken symbolic link") as info:
        load(folder)
    assert_names(info.value, folder / "pvp" / "IM9999.dcm")


def test_self_referencing_symlink_is_reported(tmp_path):
    folder, files = series_dir(tmp_path)
    (folder / "pvp" / "loop").symlink_to(folder / "pvp" / "loop")
    with pytest.raises(DicomInputError, match="broken symbolic link") as info:
        load(folder)
    assert_names(info.value, folder / "pvp" / "loop")


def test_named_pipe_in_a_study_is_reported_not_skipped(tmp_path):
    # Stands in for a file that cannot be read (root reads any regular file).
    folder, files = series_dir(tmp_path)
    os.mkfifo(folder / "pvp" / "IM0002b.dcm")
    with pytest.raises(DicomInputError, match=r"is a named pipe \(FIFO\)") as info:
        load(folder)
    assert_names(info.value, folder / "pvp" / "IM0002b.dcm")


def _find_series_as_nobody(study: Path) -> str:
    """find_series in a forked child that has dropped to the ``nobody`` user; its outcome as text."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no pytest machinery from here on, only os._exit
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            try:
                pd_dicom.find_series(study, patient=PATIENT)
                text = "no error"
            except DicomInputError as err:
                text = f"DicomInputError {err.path} | {err}"
            except BaseException as err:  # noqa: BLE001 - reported to the parent
                text = f"{type(err).__name__}: {err}"
            os.write(write_end, text.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(pid, 0)
    return text


@pytest.mark.parametrize("what", ["folder", "file"])
def test_unreadable_folder_and_file(tmp_path, what):
    """A folder or file the process may not read is a DicomInputError, not a skip or a bare PermissionError.

    As root, permissions do not stop reads; the check then runs in a forked
    child that has dropped to the ``nobody`` user (uid 65534).
    """
    base = Path(tempfile.mkdtemp(prefix="pdlib-hostile-"))
    try:
        os.chmod(base, 0o755)
        files = _write_ct_series(base / "study" / "pvp", n_slices=3)
        for path in [base / "study", base / "study" / "pvp", *files]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        target = base / "study" / "pvp" if what == "folder" else files[1]
        os.chmod(target, 0)
        text = _find_series_as_nobody(base / "study")
        assert text.startswith(f"DicomInputError {target} |"), text
        assert PATIENT in text and "cannot be read (PermissionError" in text
    finally:
        for root, dirs, names in os.walk(base):
            for name in dirs + names:
                os.chmod(os.path.join(root, name), 0o755)
        shutil.rmtree(base)


def test_every_file_of_a_series_is_kept_through_links_and_depth(tmp_path):
    study = tmp_path / "study"
    files = _write_ct_series(study / "a" / "b", n_slices=6)
    (study / "c").mkdir()
    for path in files[4:]:
        path.rename(study / "c" / path.name)
    volume = load(study)
    assert len(volume.files) == 6 and np.all(np.diff(volume.positions) > 0)


# ==========================================================================
# manifests


def valid_manifest(tmp_path, n=3, *, with_dicom=True, **kwargs) -> Path:
    rows = [{"patient_id": f"P{i}", "split": "train" if i < 2 else "test"} for i in range(n)]
    for row in rows:
        study = row["patient_id"]
        row.update(kwargs.get(study, {}))
        row.setdefault("study_dir", study)
        if with_dicom and row["study_dir"] != ".":
            _write_ct_series(tmp_path / "dicom" / row["study_dir"] / "pvp", n_slices=4,
                             description="PVP", series_number=3)
        else:
            (tmp_path / "dicom" / study).mkdir(parents=True, exist_ok=True)
    readers = [{"patient_id": "P2", "reader": "C3", "call": "GR"}]
    return _write_manifest(tmp_path / "manifest", rows, readers=readers, data_root="../dicom")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_patients_csv_in_a_detectable_encoding_loads(tmp_path, encoding):
    folder = valid_manifest(tmp_path)
    text = (folder / "patients.csv").read_text(encoding="utf-8")
    (folder / "patients.csv").write_bytes(text.encode(encoding))
    m = pm.load_manifest(folder)
    assert m.patients["patient_id"].tolist() == ["P0", "P1", "P2"]


def test_latin1_patients_csv_is_a_clear_encoding_problem(tmp_path):
    folder = valid_manifest(tmp_path)
    lines = (folder / "patients.csv").read_text(encoding="utf-8").splitlines()
    lines[2] += "é"  # in the last cell (last_slice), on line 3
    (folder / "patients.csv").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    problems = pm.check_manifest(folder)
    assert [(p.file, p.row) for p in problems] == [("patients.csv", 0)]
    assert "is not UTF-8: byte 0xe9 on line 3 (Latin-1 would read it as 'é'); save the file as UTF-8" in \
        problems[0].message
    assert pm.main([str(folder)]) == 1


def test_binary_patients_csv_is_reported_not_a_traceback(tmp_path, capsys):
    folder = valid_manifest(tmp_path)
    (folder / "patients.csv").write_bytes(bytes(range(256)) * 4)
    assert pm.main([str(folder)]) == 1
    out = capsys.readouterr().out
    assert "patients.csv: is not a text file" in out


def test_readers_csv_in_utf16_and_a_broken_yaml_encoding(tmp_path):
    folder = valid_manifest(tmp_path)
    (folder / "readers.csv").write_bytes((folder / "readers.csv").read_text().encode("utf-16"))
    assert pm.check_manifest(folder) == []
    (folder / "manifest.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (problem,) = pm.check_manifest(folder)
    assert problem.file == "manifest.yaml" and "is not UTF-8" in problem.message


def test_study_dir_dot_is_rejected(tmp_path):
    folder = valid_manifest(tmp_path, P1={"study_dir": "."})
    problems = pm.check_manifest(folder)
    assert [(p.row, p.column) for p in problems] == [(3, "study_dir")]
    assert "is data_root itself" in problems[0].message


def test_study_dir_linking_outside_data_root_is_rejected(tmp_path):
    folder = valid_manifest(tmp_path)
    outside = tmp_path / "elsewhere"
    _write_ct_series(outside / "pvp", n_slices=2)
    shutil.rmtree(tmp_path / "dicom" / "P1")
    (tmp_path / "dicom" / "P1").symlink_to(outside, target_is_directory=True)
    problems = pm.check_manifest(folder)
    assert [(p.row, p.column) for p in problems] == [(3, "study_dir")]
    assert "leads outside data_root" in problems[0].message and str(outside) in problems[0].message
    with pytest.raises(pm.ManifestError, match="leads outside data_root"):
        pm.load_manifest(folder)  # the load refuses it too, before any folder is scanned


def test_study_dirs_that_are_the_same_folder_or_nested_are_rejected(tmp_path):
    folder = valid_manifest(tmp_path, P1={"study_dir": "P0/inner"}, P2={"study_dir": "P2"})
    problems = pm.check_manifest(folder, check_dicom=False)
    assert [(p.row, p.column) for p in problems] == [(3, "study_dir")]
    assert "lies inside the study folder of patient P0" in problems[0].message


def test_paths_the_file_system_cannot_take_are_problems_not_tracebacks(tmp_path):
    folder = valid_manifest(tmp_path)
    text = (folder / "patients.csv").read_text()
    assert text.count(",P1,,,") == 1
    (folder / "patients.csv").write_text(text.replace(",P1,,,", "," + "x" * 300 + ",,,"))
    problems = pm.check_manifest(folder)
    assert [(p.row, p.column) for p in problems] == [(3, "study_dir")]
    assert "cannot be inspected (OSError: File name too long)" in problems[0].message
    (folder / "manifest.yaml").write_text('name: x\ndata_root: "../di\\0com"\n')
    (problem,) = pm.check_manifest(folder)
    assert (problem.file, problem.row, problem.column) == ("manifest.yaml", 2, "data_root")
    with pytest.raises(DicomInputError, match="study folder cannot be inspected") as info:
        pd_dicom.find_series(tmp_path / ("y" * 300), patient=PATIENT)
    assert_names(info.value, tmp_path / ("y" * 300))


def test_check_manifest_finds_a_last_slice_beyond_the_series(tmp_path):
    folder = valid_manifest(tmp_path, with_dicom=True, P0={"first_slice": "1", "last_slice": "4"})
    problems = pm.check_manifest(folder)
    assert [(p.row, p.column) for p in problems] == [(2, "last_slice")]
    assert "last_slice 4 is beyond the portal-venous series" in problems[0].message
    assert "of 4 slice(s) (valid: 0..3)" in problems[0].message
    assert pm.check_manifest(folder, check_dicom=False) == []  # tables alone are fine


def test_check_manifest_finds_a_pvp_series_uid_absent_from_the_study(tmp_path):
    folder = valid_manifest(tmp_path, with_dicom=True, P2={"pvp_series_uid": "1.2.3.4"})
    problems = pm.check_manifest(folder)
    assert [(p.row, p.column) for p in problems] == [(4, "pvp_series_uid")]
    assert "pvp_series_uid 1.2.3.4 from the manifest is not among the series found" in problems[0].message
    assert "patient P2" in problems[0].message


def test_check_manifest_finds_a_study_without_dicom(tmp_path):
    folder = valid_manifest(tmp_path, with_dicom=True)
    shutil.rmtree(tmp_path / "dicom" / "P1" / "pvp")
    (tmp_path / "dicom" / "P1" / "notes.txt").write_text("not an image")
    problems = pm.check_manifest(folder)
    assert [(p.row, p.column) for p in problems] == [(3, "study_dir")]
    assert "no DICOM series found" in problems[0].message and "notes.txt" in problems[0].message


def test_reader_labels_that_are_not_readers(tmp_path):
    folder = valid_manifest(tmp_path)
    (folder / "readers.csv").write_text("patient_id,reader,call\nP2,GR,PR\nP2,P1,GR\nP2,C 3,GR\nP2,C20,GR\n")
    problems = pm.check_manifest(folder)
    assert [(p.file, p.row, p.column) for p in problems] == [
        ("readers.csv", 2, "reader"), ("readers.csv", 3, "reader"), ("readers.csv", 4, "reader")]
    assert "'GR' is a call, not a reader label" in problems[0].message
    assert "'P1' is a patient id" in problems[1].message
    assert "'C 3' is not a reader label" in problems[2].message


def test_duplicate_patient_id_does_not_cascade_into_reader_errors(tmp_path):
    folder = valid_manifest(tmp_path, n=4, P3={"patient_id": "P2", "split": "train", "study_dir": "P3"})
    problems = pm.check_manifest(folder)
    assert [(p.file, p.row, p.column) for p in problems] == [("patients.csv", 5, "patient_id")]
    assert "P2 is in both splits" in problems[0].message


def test_manifest_yaml_problems_carry_line_numbers(tmp_path):
    folder = valid_manifest(tmp_path)
    (folder / "manifest.yaml").write_text("# cohort\nname: x\ndata_root: ../dicom\npositive_class: SD\n"
                                          "dataroot: typo\nname: twice\n")
    problems = {(p.column, p.row) for p in pm.check_manifest(folder)}
    assert problems == {("positive_class", 4), ("dataroot", 5), ("name", 6)}
    text = "\n".join(str(p) for p in pm.check_manifest(folder))
    assert "manifest.yaml line 4, column positive_class" in text and "given twice (also line 2)" in text
    (folder / "manifest.yaml").write_text("name: x\ndata_root: [../dicom\n")
    (problem,) = pm.check_manifest(folder)
    assert problem.file == "manifest.yaml" and problem.row == 3 and "not valid YAML" in problem.message
    (folder / "manifest.yaml").write_text("name: x\n")
    (problem,) = pm.check_manifest(folder)
    assert (problem.column, problem.row) == ("data_root", 0)  # absent: no line to point at


# ==========================================================================
# run artefacts


def _tiny_patients():
    from pdlib.slices import PatientSlices

    rng = np.random.default_rng(0)
    out = []
    for split, n in (("train", 6), ("test", 4)):
        for i in range(n):
            slices = rng.random((12, 32, 32), dtype=np.float32) * 0.5
            if i % 2:
                slices[2:8, 8:24, 8:24] += 0.4
            out.append(PatientSlices(f"{split}-{i}", i % 2, slices, "SD" if i % 2 else "PR", split))
    return [p for p in out if p.split == "train"], [p for p in out if p.split == "test"]


def _train(member_dir, **kwargs):
    from pdlib import config as config_module
    from pdlib import train

    train_patients, test_patients = _tiny_patients()
    config = config_module.resolve_config("smoke", epochs=2, progress="log", num_threads=1)
    return train.train_member(member_dir, arch="efficientnet_b0_smoke", train_patients=train_patients,
                              test_patients=test_patients, config=config, **kwargs)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong shapes"])
def test_corrupt_checkpoint_is_named_set_aside_and_training_restarts(tmp_path, capsys, damage):
    import torch

    _train(tmp_path / "straight" / "m")
    assert _train(tmp_path / "killed" / "m", stop_after_epoch=1) is None
    checkpoint = tmp_path / "killed" / "m" / "checkpoint.pt"
    if damage == "truncated":
        data = checkpoint.read_bytes()
        checkpoint.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        checkpoint.write_bytes(b"\x00not a checkpoint" * 10)
    else:
        saved = torch.load(checkpoint, weights_only=True)
        name = next(iter(saved["state_dict"]))
        saved["state_dict"][name] = torch.zeros(3)
        torch.save(saved, checkpoint)
    capsys.readouterr()
    with pytest.warns(RuntimeWarning, match=r"checkpoint.pt cannot be used .*set aside as checkpoint.pt.corrupt"):
        assert _train(tmp_path / "killed" / "m") is not None
    log = capsys.readouterr().out
    assert f"{checkpoint} cannot be used" in log and "training this member from scratch" in log
    assert (checkpoint.parent / "checkpoint.pt.corrupt").is_file()
    summary = json.loads((checkpoint.parent / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == 0
    for name in ("patient_predictions.csv", "slice_predictions.csv"):
        assert (checkpoint.parent / name).read_bytes() == (tmp_path / "straight" / "m" / name).read_bytes()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_killed_writes_are_removed(tmp_path):
    out = tmp_path / "results.csv"
    identity = atomic.process_identity()
    host = atomic._host_hash(identity["host"])
    dead = tmp_path / f".results.csv.{_dead_pid()}~1~{host}.abc123.tmp"
    alive = tmp_path / f".results.csv.{os.getpid()}~{identity['start']}~{host}.def456.tmp"
    foreign_old = tmp_path / f".results.csv.1~1~{'0' * 8}.ghi789.tmp"
    for path in (dead, alive, foreign_old):
        path.write_text("half")
    os.utime(foreign_old, (0, 0))
    atomic.write_text(out, "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["results.csv", alive.name])
    assert out.read_text() == "whole"


def test_a_lock_held_by_a_live_unrelated_pid_does_not_block(tmp_path):
    # PID 1 is alive, but its start time is not the one recorded: the recorded owner is gone.
    lock_owner = {**atomic.process_identity(1), "start": (atomic.process_start(1) or 0) + 12345}
    assert not atomic.owner_alive(lock_owner)
    assert atomic.owner_alive(atomic.process_identity())
    assert atomic.owner_alive({**atomic.process_identity(1), "host": "another-host"})  # cannot judge: wait
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / ".lock").write_text(json.dumps(lock_owner))
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd_dicom.DataQualityWarning)
        assert _train(tmp_path / "m") is not None
    assert not (tmp_path / "m" / ".lock").exists()
    assert json.loads((tmp_path / "m" / "summary.json").read_text())["data_quality"] == []


# ==========================================================================
# degenerate but legal input


def test_one_slice_series_warns_and_is_noted(tmp_path):
    folder, files = series_dir(tmp_path, n_slices=1)
    with pytest.warns(pd_dicom.DataQualityWarning, match="has one slice") as caught:
        volume = load(folder)
    assert volume.hu.shape[0] == 1 and np.isnan(volume.slice_spacing)
    assert volume.notes == (str(caught[0].message),) and PATIENT in volume.notes[0] and str(files[0]) in volume.notes[0]


def test_fewer_slices_than_top_k_warns_in_the_log_and_summary(tmp_path, capsys):
    # _tiny_patients has 12 slices each (no note: see the lock test); cut one patient to 3 and one to 1.
    from pdlib import config as config_module
    from pdlib import train

    train_patients, test_patients = _tiny_patients()
    train_patients[0].slices = train_patients[0].slices[:3]
    test_patients[1].slices = test_patients[1].slices[:1]
    capsys.readouterr()
    config = config_module.resolve_config("smoke", epochs=1, progress="log", num_threads=1)
    with pytest.warns(pd_dicom.DataQualityWarning) as caught:
        train.train_member(tmp_path / "n", arch="efficientnet_b0_smoke", train_patients=train_patients,
                           test_patients=test_patients, config=config)
    notes = json.loads((tmp_path / "n" / "summary.json").read_text())["data_quality"]
    assert len(notes) == 2 and "patient train-0 (train) has 3 slice(s), fewer than the 10" in notes[0]
    assert "patient test-1 (test) has 1 slice(s)" in notes[1]
    assert {str(w.message) for w in caught if w.category is pd_dicom.DataQualityWarning} == set(notes)
    log = capsys.readouterr().out
    assert all(f"data quality: {note}" in log for note in notes)


def test_short_slice_range_is_noted_by_check_manifest(tmp_path, capsys):
    folder = valid_manifest(tmp_path, with_dicom=True, P0={"first_slice": "1", "last_slice": "2"})
    notes = []
    assert pm.check_manifest(folder, notes=notes) == []
    assert len(notes) == 3 and "patient P0 keeps 2 slice(s)" in notes[0]
    assert pm.main([str(folder)]) == 0
    assert capsys.readouterr().out.count("note: ") == 3


# ==========================================================================
# fuzz harness

#: Outcomes per harness: tried, correct, clear error, anything else.
COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

FUZZ = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

#: Header elements the fuzzer edits: every one pdlib reads, and a few it must not care about.
FUZZ_KEYWORDS = [
    "RescaleSlope", "RescaleIntercept", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "SeriesNumber", "NumberOfFrames", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID", "Modality",
    "FrameOfReferenceUID", "Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored",
    "PixelRepresentation", "PixelPaddingValue", "PixelPaddingRangeLimit", "GantryDetectorTilt",
    "SeriesDescription", "PixelData", "InstanceNumber", "SliceLocation",
]
RAW_TEXTS = [b"nan", b"inf", b"-inf", b"", b" ", b"abc", b"1e400", b"1\\2", b"1\\2\\3\\4\\5\\6\\7", b"0", b"-0",
             b"1e-300", b"1.5.6", b"+5", b"-1024", b"7", b"0.5", b"1\\0\\0\\0\\1\\0", b"0\\0\\0\\0\\0\\0",
             b"-100\\-100\\nan", b"\x00\x01", b"\xff\xfe", b"3.0", b"1e9"]

edits = st.lists(st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 11), st.sampled_from(FUZZ_KEYWORDS)),
    st.tuples(st.just("set"), st.integers(0, 11), st.sampled_from(FUZZ_KEYWORDS),
              st.one_of(st.sampled_from(RAW_TEXTS), st.binary(max_size=12),
                        st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode()))),
    st.tuples(st.just("vr"), st.integers(0, 11), st.sampled_from(FUZZ_KEYWORDS),
              st.sampled_from(["US", "SS", "UL", "FD", "LO", "UN", "OB"]), st.binary(min_size=0, max_size=8)),
    st.tuples(st.just("truncate"), st.integers(0, 11), st.floats(0, 1)),
    st.tuples(st.just("shuffle"), st.randoms(use_true_random=False)),
    st.tuples(st.just("remove"), st.integers(0, 11)),
    st.tuples(st.just("duplicate"), st.integers(0, 11)),
    st.tuples(st.just("relocate"), st.integers(0, 11), st.booleans()),
), min_size=1, max_size=3)


def apply_edit(files: list[Path], edit) -> None:
    kind = edit[0]
    if kind == "shuffle":
        present = [p for p in files if p.exists()]
        names = [p.name for p in present]
        edit[1].shuffle(names)
        moved = [p.rename(p.with_name(p.name + ".moving")) for p in present]
        for path, name in zip(moved, names):
            path.rename(path.with_name(name))
        return
    path = files[edit[1] % len(files)]
    if not path.exists():
        return
    if kind == "remove":
        path.unlink()
    elif kind == "duplicate":  # the same slice twice under another name
        shutil.copyfile(path, path.with_name("copy_" + path.name))
    elif kind == "relocate":  # deeper in the study, directly or reached through a link inside it
        deep = path.parent / "deeper" / "still"
        deep.mkdir(parents=True, exist_ok=True)
        path.rename(deep / path.name)
        files[files.index(path)] = deep / path.name
        if edit[2] and not (path.parent / "linked").exists():
            (path.parent / "linked").symlink_to(deep, target_is_directory=True)
    elif kind == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * edit[2])])
    else:
        try:
            if kind == "delete":
                set_raw(path, edit[2], None)
            elif kind == "set":
                set_raw(path, edit[2], edit[3])
            else:
                set_raw(path, edit[2], edit[4], vr=edit[3])
        except Exception:  # the edit itself cannot be written (e.g. a file an earlier edit truncated)
            pass


def check_invariant(harness: str, folder: Path, patient: str) -> None:
    """Correct result or a DicomInputError naming patient and file; anything else is raised (and counted)."""
    COUNTS[harness]["tried"] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            volume = pd_dicom.load_study_hu(folder, patient=patient)
    except DicomInputError as err:
        text = str(err)
        if err.patient != patient or err.path is None or patient not in text or str(err.path) not in text \
                or folder.resolve() not in (err.path.resolve(), *err.path.resolve().parents):
            COUNTS[harness]["anything else"] += 1
            raise AssertionError(f"error does not name patient and file: {text}") from err
        COUNTS[harness]["clear error"] += 1
        return
    except BaseException:
        COUNTS[harness]["anything else"] += 1
        raise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert_correct(volume, folder)
    except BaseException:
        COUNTS[harness]["anything else"] += 1
        raise
    COUNTS[harness]["correct"] += 1


class Files(dict):
    """File name -> bytes, with a short repr for Hypothesis' failure reports."""

    def __repr__(self) -> str:
        return f"<{len(self)} files>"


@pytest.fixture(scope="module")
def ct_series_bytes(tmp_path_factory) -> Files:
    folder = tmp_path_factory.mktemp("fuzz-ct")
    files = _write_ct_series(folder, n_slices=5)
    return Files({p.name: p.read_bytes() for p in files})


@settings(FUZZ, max_examples=400)
@given(edits=edits)
def test_fuzz_ct_small_series(ct_series_bytes, edits):
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study"
        (study / "pvp").mkdir(parents=True)
        files = []
        for name, data in ct_series_bytes.items():
            (study / "pvp" / name).write_bytes(data)
            files.append(study / "pvp" / name)
        for edit in edits:
            apply_edit(files, edit)
        check_invariant("CT_small series", study, "FZ01")


@pytest.fixture(scope="module")
def twin_study(tmp_path_factory) -> Path:
    from pdlib.twin import generate_twin

    out = tmp_path_factory.mktemp("fuzz-twin") / "twin"
    generate_twin(out, n_patients=8, matrix=64, n_slices=12, seed=13)
    return out / "dicom" / "TW001"


@settings(FUZZ, max_examples=150)
@given(edits=edits, series=st.integers(0, 3))
def test_fuzz_twin_study(twin_study, edits, series):
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "TW001"
        shutil.copytree(twin_study, study)
        folders = sorted(p for p in study.iterdir() if p.is_dir())
        pvp = max(folders, key=lambda p: len(list(p.iterdir())))  # the portal-venous series has the most slices
        target = folders[series % len(folders)] if series else pvp
        files = sorted(target.iterdir())
        for edit in edits:
            apply_edit(files, edit)
        check_invariant("twin study", study, "TW001")


@pytest.fixture(scope="module")
def manifest_bytes(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    base = tmp_path_factory.mktemp("fuzz-manifest")
    folder = valid_manifest(base, n=4, with_dicom=True, P1={"first_slice": "0", "last_slice": "2"},
                            P3={"split": "test"})
    (folder / "readers.csv").write_text("patient_id,reader,call\nP2,C3,GR\nP3,C20,PR\nP2,C20,PR\n")
    assert pm.check_manifest(folder) == []
    return folder, {name: (folder / name).read_bytes() for name in ("manifest.yaml", "patients.csv", "readers.csv")}


byte_edits = st.lists(st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=6)),
    st.tuples(st.just("insert"), st.integers(0, 10**6),
              st.sampled_from([b",", b"\n", b"\"", b"\r", b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\xe9", b":", b"- ",
                               b"..", b"/", b"{", b"\t", b"\\", b"x" * 300, b'"\\0"', b"../../.."])),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 20)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
    st.tuples(st.just("encode"), st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "utf-8-sig"])),
), min_size=1, max_size=4)


def apply_byte_edit(data: bytes, edit) -> bytes:
    kind = edit[0]
    if kind == "encode":
        try:
            return data.decode("utf-8").encode(edit[1])
        except (UnicodeDecodeError, UnicodeEncodeError):
            return data
    at = edit[1] % (len(data) + 1)
    if kind == "flip":
        return data[:at] + bytes([edit[2]]) + data[at + 1:]
    if kind == "insert":
        return data[:at] + edit[2] + data[at:]
    if kind == "delete":
        return data[:at] + data[at + edit[2]:]
    return data[:at]


@settings(FUZZ, max_examples=400)
@given(which=st.sampled_from(["manifest.yaml", "patients.csv", "readers.csv"]), edits=byte_edits,
       check_files=st.booleans())
def test_fuzz_manifest_bytes(manifest_bytes, which, edits, check_files):
    folder, original = manifest_bytes
    harness = "manifest"
    COUNTS[harness]["tried"] += 1
    try:
        for name, data in original.items():
            if name == which:
                for edit in edits:
                    data = apply_byte_edit(data, edit)
            (folder / name).write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problems = pm.check_manifest(folder, check_files=check_files)
            if problems:
                assert all(p.file in ("manifest.yaml", "patients.csv", "readers.csv") and isinstance(p.row, int)
                           and p.row >= 0 and p.message for p in problems)
                with pytest.raises(pm.ManifestError):
                    pm.load_manifest(folder, check_files=check_files)
                COUNTS[harness]["clear error"] += 1
            else:
                m = pm.load_manifest(folder, check_files=check_files)
                assert not m.patients[list(pm.REQUIRED_COLUMNS)].isna().any().any()
                assert set(m.patients["split"]) <= set(pm.SPLITS)
                COUNTS[harness]["correct"] += 1
    except BaseException:
        COUNTS[harness]["anything else"] += 1
        raise
    finally:
        for name, data in original.items():
            (folder / name).write_bytes(data)


def test_fuzz_counts():
    """Report the fuzz outcomes (``-s`` shows them) and check that nothing else happened."""
    lines = []
    for harness, counts in COUNTS.items():
        lines.append(f"fuzz {harness}: tried {counts['tried']}, correct {counts['correct']}, "
                     f"clear error {counts['clear error']}, anything else {counts['anything else']}")
        assert counts["tried"] == counts["correct"] + counts["clear error"] + counts["anything else"]
        assert counts["anything else"] == 0
    print("\n" + "\n".join(lines))
