"""DICOM ingestion (pdlib.dicom) on real files from pydicom and pydicom-data."""

import shutil
import warnings

import numpy as np
import pydicom
import pytest
from conftest import FAKE_PATIENT_ID, FAKE_PATIENT_NAME, pydicom_test_file
from pydicom.pixels import apply_modality_lut, get_decoder
from pydicom.uid import JPEG2000Lossless

from pdlib import dicom as pd_dicom
from pdlib.dicom import DicomInputError

PATIENT = "P007"


def assert_names(err: DicomInputError, path) -> None:
    """The error names the patient and the file, and no header identifier."""
    assert err.patient == PATIENT
    assert err.path == path
    text = str(err)
    assert PATIENT in text and str(path) in text
    assert FAKE_PATIENT_ID not in text and FAKE_PATIENT_NAME.split("^")[0] not in text


def series_of(folder):
    (series,) = pd_dicom.find_series(folder, patient=PATIENT)
    return series


# --------------------------------------------------------------------------
# HU


@pytest.mark.parametrize("name", ["CT_small.dcm", "693_J2KR.dcm", "JPEG-LL.dcm"])
def test_hu_equals_pydicom_modality_lut(name):
    ds = pydicom.dcmread(pydicom_test_file(name))
    stored = ds.pixel_array
    reference = apply_modality_lut(stored, ds).astype(np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hu = pd_dicom.to_hu(ds, patient=PATIENT)
    assert hu.dtype == np.float32 and hu.shape == stored.shape
    padding = ds.get("PixelPaddingValue")
    is_padding = stored == padding if padding is not None else np.zeros(stored.shape, bool)
    np.testing.assert_array_equal(hu[~is_padding], reference[~is_padding])
    assert (hu[is_padding] == pd_dicom.AIR_HU).all()
    if name == "693_J2KR.dcm":  # a real scan with padding outside the round field of view
        assert is_padding.sum() > 1000 and reference[is_padding].min() < -2000
    no_rescale = [w for w in caught if "Rescale" in str(w.message)]
    assert len(no_rescale) == (1 if name == "JPEG-LL.dcm" else 0)


def test_pixel_padding_range_limit_and_unsigned_spelling():
    # (0028,0121) Pixel Padding Range Limit: a range of stored values is padding.
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    stored = ds.pixel_array
    ds.PixelPaddingValue, ds.PixelPaddingRangeLimit = 200, 128
    hu = pd_dicom.to_hu(ds)
    is_padding = (stored >= 128) & (stored <= 200)
    assert 0 < is_padding.sum() < stored.size
    assert (hu[is_padding] == pd_dicom.AIR_HU).all()
    np.testing.assert_array_equal(hu[~is_padding], apply_modality_lut(stored, ds)[~is_padding].astype(np.float32))
    # A signed padding value (-2000) written as unsigned (63536) still matches.
    ds = pydicom.dcmread(pydicom_test_file("693_J2KR.dcm"))
    expected = pd_dicom.to_hu(ds)
    del ds.PixelPaddingValue
    ds.add_new(0x00280120, "US", 63536)
    np.testing.assert_array_equal(pd_dicom.to_hu(ds), expected)


@pytest.mark.parametrize("source", ["CT_small.dcm", "693_J2KR.dcm", "JPEG-LL.dcm"])
def test_series_hu_equals_modality_lut_slice_by_slice(tmp_path, write_ct_series, source):
    files = write_ct_series(tmp_path / "s", n_slices=3, source=source, positions=[10.0, 0.0, 5.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        volume = pd_dicom.read_series_hu(series_of(tmp_path / "s"), patient=PATIENT)
    assert volume.files == (files[1], files[2], files[0])
    np.testing.assert_array_equal(volume.positions, [0.0, 5.0, 10.0])
    assert volume.slice_spacing == 5.0
    for hu, path in zip(volume.hu, volume.files):
        ds = pydicom.dcmread(path)
        reference = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
        padding = ds.get("PixelPaddingValue")
        keep = ds.pixel_array != padding if padding is not None else np.ones(hu.shape, bool)
        np.testing.assert_array_equal(hu[keep], reference[keep])
    # Missing rescale tags: one warning for the series, naming its first file.
    no_rescale = [str(w.message) for w in caught if "Rescale" in str(w.message)]
    if source == "JPEG-LL.dcm":
        assert len(no_rescale) == 1
        assert PATIENT in no_rescale[0] and "3 of 3" in no_rescale[0] and str(files[0]) in no_rescale[0]
    else:
        assert no_rescale == []


# --------------------------------------------------------------------------
# finding and ordering series


def test_find_series_groups_by_uid_and_skips_non_dicom(tmp_path, write_ct_series):
    study = tmp_path / "study"
    pvp = write_ct_series(study / "a", n_slices=3, description="PVP", series_number=3)
    # Same description, geometry and folder, different UID: never merged.
    twin = write_ct_series(study / "a", n_slices=2, description="PVP", series_number=4, prefix="B")
    # One series split over two folders stays whole.
    uid = "1.2.826.0.1.3680043.8.498.1"
    split = write_ct_series(study / "b" / "x", n_slices=2, series_uid=uid, description="Arterial", series_number=2)
    split += write_ct_series(study / "b" / "y", n_slices=2, series_uid=uid, description="Arterial", series_number=2,
                             positions=[10.0, 15.0], prefix="Z")
    (study / "README.txt").write_text("exported by the PACS\n")
    (study / "thumbs.db").write_bytes(b"\x00" * 300)
    shutil.copy(pydicom_test_file("DICOMDIR"), study / "DICOMDIR")

    series = pd_dicom.find_series(study, patient=PATIENT)
    assert [s.series_number for s in series] == [2, 3, 4]
    assert [len(s.files) for s in series] == [4, 3, 2]
    assert series[0].files == tuple(sorted(split)) and series[0].series_uid == uid
    assert series[1].files == tuple(pvp) and series[2].files == tuple(twin)
    assert series[1].description == "PVP" and series[1].modality == "CT"


def test_find_series_errors(tmp_path):
    with pytest.raises(DicomInputError, match="does not exist") as info:
        pd_dicom.find_series(tmp_path / "absent", patient=PATIENT)
    assert_names(info.value, tmp_path / "absent")
    (tmp_path / "README.txt").write_text("no images here")
    with pytest.raises(DicomInputError, match=r"no DICOM series found.*skipped 1 file.*README.txt") as info:
        pd_dicom.find_series(tmp_path, patient=PATIENT)
    assert_names(info.value, tmp_path)


def test_slices_sorted_along_the_normal_of_an_oblique_stack(tmp_path, write_ct_series):
    # Sagittal slices: rows along +y, columns along -z, so the normal is -x.
    # Sorting on z, or with the cross product the wrong way round, fails here.
    orientation = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    files = write_ct_series(tmp_path, n_slices=4, orientation=orientation, positions=[7.5, -2.5, 2.5, 12.5])
    volume = pd_dicom.read_series_hu(series_of(tmp_path), patient=PATIENT)
    assert volume.files == (files[1], files[2], files[0], files[3])
    first = pydicom.dcmread(files[1])
    np.testing.assert_allclose(volume.positions - volume.positions[0], [0.0, 5.0, 10.0, 15.0], atol=1e-6)
    assert volume.positions[0] == pytest.approx(-float(first.ImagePositionPatient[0]))
    np.testing.assert_array_equal(volume.hu[0], pd_dicom.to_hu(first))
    assert volume.pixel_spacing == pytest.approx((0.661468, 0.661468))


# --------------------------------------------------------------------------
# choosing the portal-venous series


@pytest.mark.parametrize("text, expected", [
    ("PVP", True), ("ABD PV 5.0 B31f", True), ("Portal venous phase", True), ("PVP5mm", True),
    ("venous", True), ("门静脉期 5mm", True), ("Port Ven 1.25", True),
    ("Arterial", False), ("Late arterial", False), ("Delayed venous", False), ("5/5mm Plain", False),
    ("Non-contrast", False), ("PVP coronal MPR", False), ("Topogram", False), ("动脉期", False),
    ("Dose Report", False), ("Abdomen 5mm", False), ("", False), ("Previous", False),
])
def test_portal_venous_wording(text, expected):
    assert pd_dicom.is_portal_venous(text) is expected


@pytest.fixture
def study(tmp_path, write_ct_series):
    """An arterial, a non-contrast and a portal-venous series."""
    folder = tmp_path / "study"
    write_ct_series(folder / "1", n_slices=3, description="Arterial phase", series_number=2)
    write_ct_series(folder / "2", n_slices=3, description="NC 5mm", series_number=1)
    write_ct_series(folder / "3", n_slices=4, description="", protocol="Abdomen PVP", series_number=3)
    return folder


def test_choose_pvp_by_name_and_by_override(study):
    series = pd_dicom.find_series(study, patient=PATIENT)
    chosen = pd_dicom.choose_pvp(series, patient=PATIENT)
    assert chosen.protocol == "Abdomen PVP" and len(chosen.files) == 4
    arterial = next(s for s in series if s.description == "Arterial phase")
    assert pd_dicom.choose_pvp(series, override_uid=arterial.series_uid, patient=PATIENT) is arterial
    volume = pd_dicom.load_study_hu(study, patient=PATIENT)
    assert volume.series_uid == chosen.series_uid and volume.hu.shape == (4, 128, 128)
    assert pd_dicom.load_study_hu(study, patient=PATIENT, pvp_series_uid=arterial.series_uid).hu.shape[0] == 3


def test_choose_pvp_unknown_override_lists_series(study):
    series = pd_dicom.find_series(study, patient=PATIENT)
    with pytest.raises(DicomInputError, match="not among the series found") as info:
        pd_dicom.choose_pvp(series, override_uid="1.2.3.4", patient=PATIENT)
    assert_names(info.value, study)
    assert all(s.series_uid in str(info.value) for s in series)


def test_no_portal_venous_series(study):
    shutil.rmtree(study / "3")
    with pytest.raises(DicomInputError, match="no portal-venous series") as info:
        pd_dicom.load_study_hu(study, patient=PATIENT)
    assert_names(info.value, study)
    assert "'Arterial phase'" in str(info.value) and "'NC 5mm'" in str(info.value)
    assert "pvp_series_uid" in str(info.value)


def test_ambiguous_portal_venous_series(study, write_ct_series):
    write_ct_series(study / "4", n_slices=2, description="PVP 1.25mm", series_number=5)
    with pytest.raises(DicomInputError, match="ambiguous portal-venous series: 2 CT series") as info:
        pd_dicom.load_study_hu(study, patient=PATIENT)
    assert_names(info.value, study)
    assert "PVP 1.25mm" in str(info.value) and "pvp_series_uid" in str(info.value)


def test_non_ct_portal_venous_series(tmp_path, write_ct_series):
    files = write_ct_series(tmp_path / "mr", n_slices=2, source="MR_small.dcm", modality="MR", description="PV")
    with pytest.raises(DicomInputError, match="modality MR, not CT") as info:
        pd_dicom.load_study_hu(tmp_path, patient=PATIENT)
    assert_names(info.value, files[0])


def test_non_ct_file_inside_a_series(tmp_path, write_ct_series):
    files = write_ct_series(tmp_path, n_slices=3)
    ds = pydicom.dcmread(files[1])
    ds.Modality = "MR"
    ds.save_as(files[1])
    with pytest.raises(DicomInputError, match="modality is MR, not CT") as info:
        pd_dicom.read_series_hu(series_of(tmp_path), patient=PATIENT)
    assert_names(info.value, files[1])


# --------------------------------------------------------------------------
# bad files


@pytest.mark.parametrize("source", ["CT_small.dcm", "693_J2KR.dcm"])
def test_truncated_pixel_data(tmp_path, write_ct_series, source):
    files = write_ct_series(tmp_path, n_slices=3, source=source)
    data = files[2].read_bytes()
    files[2].write_bytes(data[: len(data) - 2000])
    with pytest.raises(DicomInputError, match="truncated") as info:
        pd_dicom.read_series_hu(series_of(tmp_path), patient=PATIENT)
    assert_names(info.value, files[2])


def test_truncated_header(tmp_path, write_ct_series):
    files = write_ct_series(tmp_path, n_slices=3)
    files[0].write_bytes(files[0].read_bytes()[:400])
    with pytest.raises(DicomInputError, match=r"no \(0020,000E\) Series Instance UID.*truncated") as info:
        pd_dicom.find_series(tmp_path, patient=PATIENT)
    assert_names(info.value, files[0])


@pytest.mark.parametrize("keyword, value, tag", [
    ("ImageOrientationPatient", [1.0, 0.0, 0.0, 0.0, 0.0, -1.0], "(0020,0037)"),
    ("PixelSpacing", [0.9, 0.9], "(0028,0030)"),
    ("FrameOfReferenceUID", "1.2.826.0.1.3680043.8.498.99", "(0020,0052)"),
])
def test_mixed_series_under_one_uid(tmp_path, write_ct_series, keyword, value, tag):
    files = write_ct_series(tmp_path, n_slices=4)
    ds = pydicom.dcmread(files[2])
    setattr(ds, keyword, value)
    ds.save_as(files[2])
    with pytest.raises(DicomInputError, match="two series mixed") as info:
        pd_dicom.read_series_hu(series_of(tmp_path), patient=PATIENT)
    assert_names(info.value, files[2])
    assert tag in str(info.value) and files[0].name in str(info.value)


def test_two_slices_at_one_position_with_different_content(tmp_path, write_ct_series):
    files = write_ct_series(tmp_path, n_slices=4, positions=[0.0, 5.0, 5.0, 10.0])
    with pytest.raises(DicomInputError, match="different pixels: two series mixed") as info:
        pd_dicom.read_series_hu(series_of(tmp_path), patient=PATIENT)
    assert_names(info.value, files[2])


def test_duplicate_slice(tmp_path, write_ct_series):
    # The same file exported twice.
    files = write_ct_series(tmp_path / "a", n_slices=4)
    copy = tmp_path / "a" / "IM0001b.dcm"
    shutil.copy(files[1], copy)
    with pytest.raises(DicomInputError, match="duplicate slice") as info:
        pd_dicom.read_series_hu(series_of(tmp_path / "a"), patient=PATIENT)
    assert_names(info.value, copy)
    assert files[1].name in str(info.value)
    # Two instances with equal pixels at one position.
    files = write_ct_series(tmp_path / "b", n_slices=3, positions=[0.0, 0.0, 5.0], vary_pixels=False)
    with pytest.raises(DicomInputError, match="duplicate slice: IM0000.dcm and IM0001.dcm") as info:
        pd_dicom.read_series_hu(series_of(tmp_path / "b"), patient=PATIENT)
    assert_names(info.value, files[1])


def test_missing_slice(tmp_path, write_ct_series):
    files = write_ct_series(tmp_path, n_slices=5, positions=[0.0, 5.0, 10.0, 20.0, 25.0])
    with pytest.raises(DicomInputError, match=r"missing slice\(s\): gap of 10.00 mm") as info:
        pd_dicom.read_series_hu(series_of(tmp_path), patient=PATIENT)
    assert_names(info.value, files[3])
    # A gap within 1.5x the median spacing is accepted (irregular but complete).
    shutil.rmtree(tmp_path)
    write_ct_series(tmp_path, n_slices=4, positions=[0.0, 5.0, 12.0, 17.0])
    assert pd_dicom.read_series_hu(series_of(tmp_path), patient=PATIENT).slice_spacing == 5.0


def test_unsupported_transfer_syntax(tmp_path, write_ct_series):
    files = write_ct_series(tmp_path, n_slices=2, source="693_J2KR.dcm")
    ds = pydicom.dcmread(files[0])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.92"  # JPEG 2000 Part 2 Multi-component
    ds.save_as(files[0])
    with pytest.raises(DicomInputError, match="is not supported; supported are: .*JPEG 2000") as info:
        pd_dicom.read_series_hu(series_of(tmp_path), patient=PATIENT)
    assert_names(info.value, files[0])


@pytest.fixture
def without_jpeg2000_decoders():
    """pydicom as installed without pylibjpeg-openjpeg and Pillow's JPEG 2000 support."""
    decoder = get_decoder(JPEG2000Lossless)
    removed = [label for label in ("pylibjpeg", "pillow") if label in decoder.available_plugins]
    for label in removed:
        decoder.remove_plugin(label)
    try:
        yield
    finally:
        for label in removed:
            decoder.add_plugin(label, (f"pydicom.pixels.decoders.{label}", "_decode_frame"))
        assert decoder.is_available


def test_missing_decoder_names_the_package(tmp_path, write_ct_series, without_jpeg2000_decoders):
    files = write_ct_series(tmp_path, n_slices=2, source="693_J2KR.dcm")
    message = "needs a decoder that is not installed: pip install pylibjpeg pylibjpeg-openjpeg"
    with pytest.raises(DicomInputError, match=message) as info:
        pd_dicom.read_series_hu(series_of(tmp_path), patient=PATIENT)
    assert_names(info.value, files[0])


def test_every_supported_transfer_syntax_has_a_decoder_here():
    for uid in pd_dicom.SUPPORTED_TRANSFER_SYNTAXES:
        assert get_decoder(uid).is_available, uid


#: A real greyscale single-frame file of each supported transfer syntax.
TRANSFER_SYNTAX_SAMPLES = {
    "1.2.840.10008.1.2": "MR_small_implicit.dcm",
    "1.2.840.10008.1.2.1": "CT_small.dcm",
    "1.2.840.10008.1.2.1.99": "image_dfl.dcm",
    "1.2.840.10008.1.2.2": "MR_small_bigendian.dcm",
    "1.2.840.10008.1.2.5": "MR_small_RLE.dcm",
    "1.2.840.10008.1.2.4.51": "JPGExtended.dcm",
    "1.2.840.10008.1.2.4.70": "JPEG-LL.dcm",
    "1.2.840.10008.1.2.4.80": "MR_small_jpeg_ls_lossless.dcm",
    "1.2.840.10008.1.2.4.81": "JPEGLSNearLossless_16.dcm",
    "1.2.840.10008.1.2.4.90": "693_J2KR.dcm",
    "1.2.840.10008.1.2.4.91": "693_J2KI.dcm",
}


def _jpeg_baseline_ct(tmp_path):
    """CT_small re-encoded as 8-bit JPEG Baseline with Pillow (no such sample ships)."""
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    eight_bit = (ds.pixel_array.astype(np.float64) / ds.pixel_array.max() * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(eight_bit).save(buffer, format="JPEG", quality=90)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    del ds.PixelPaddingValue
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    path = tmp_path / "baseline.dcm"
    ds.save_as(path)
    return path


@pytest.mark.filterwarnings("ignore:patient .*Rescale Slope:UserWarning")
@pytest.mark.parametrize("uid", [u for u in pd_dicom.SUPPORTED_TRANSFER_SYNTAXES if u != "1.2.840.10008.1.2.4.57"])
def test_supported_transfer_syntaxes_decode(tmp_path, uid):
    # JPEG Lossless Process 14 (…4.57) has no greyscale sample; it uses the same
    # libjpeg decoder as the Process 14 SV1 file (…4.70) tested here.
    if uid == "1.2.840.10008.1.2.4.50":
        path = _jpeg_baseline_ct(tmp_path)
    else:
        path = pydicom_test_file(TRANSFER_SYNTAX_SAMPLES[uid])
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == uid
    hu = pd_dicom.to_hu(ds, patient=PATIENT, path=path)
    reference = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    padding = ds.get("PixelPaddingValue")
    keep = ds.pixel_array != padding if padding is not None else np.ones(hu.shape, bool)
    assert hu.shape == (ds.Rows, ds.Columns)
    np.testing.assert_array_equal(hu[keep], reference[keep])


@pytest.mark.parametrize("kind", ["enhanced", "multiframe"])
def test_enhanced_multiframe_ct_is_rejected(tmp_path, write_ct_series, kind):
    if kind == "enhanced":
        path = tmp_path / "ect.dcm"
        shutil.copy(pydicom_test_file("eCT_Supplemental.dcm"), path)  # Enhanced CT Image Storage, 2 frames
        ds = pydicom.dcmread(path)
        ds.SeriesDescription = "PVP"
        ds.save_as(path)
    else:
        (path,) = write_ct_series(tmp_path, n_slices=1)
        ds = pydicom.dcmread(path)
        ds.NumberOfFrames = 3
        ds.save_as(path)
    with pytest.raises(DicomInputError, match="enhanced or multi-frame CT .* is not supported") as info:
        pd_dicom.load_study_hu(tmp_path, patient=PATIENT)
    assert_names(info.value, path)
    assert pd_dicom.CT_IMAGE_STORAGE in str(info.value)


@pytest.mark.parametrize("damage, message", [
    ("delete position", r"has no \(0020,0032\) ImagePositionPatient"),
    ("one spacing value", r"\(0028,0030\) PixelSpacing has 1 values, expected 2"),
])
def test_bad_geometry_tags(tmp_path, write_ct_series, damage, message):
    files = write_ct_series(tmp_path, n_slices=2)
    ds = pydicom.dcmread(files[1])
    if damage == "delete position":
        del ds.ImagePositionPatient
    else:
        ds.PixelSpacing = 0.5
    ds.save_as(files[1])
    with pytest.raises(DicomInputError, match=message) as info:
        pd_dicom.read_series_hu(series_of(tmp_path), patient=PATIENT)
    assert_names(info.value, files[1])


def test_error_without_patient_still_names_the_file(tmp_path):
    err = DicomInputError("bad", path=tmp_path / "x.dcm")
    assert str(err) == f"patient (unknown), {tmp_path / 'x.dcm'}: bad"


def test_readme_lists_the_supported_transfer_syntaxes():
    from pdlib import paths

    readme = (paths.manifest_dir() / "README.md").read_text(encoding="utf-8")
    listed = {line.split("`")[1] for line in readme.splitlines() if line.startswith("| `1.2.840.10008.1.2")}
    assert listed == set(pd_dicom.SUPPORTED_TRANSFER_SYNTAXES)
    for uid, package in pd_dicom.SUPPORTED_TRANSFER_SYNTAXES.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{uid}` |"))
        assert row.rstrip(" |").endswith(package or "pydicom")


@pytest.mark.parametrize("representation", [0, 1])
@pytest.mark.parametrize("bits_stored", [16, 12, 9])
def test_native_decode_and_hu_table_equal_pydicom(representation, bits_stored):
    # issue #14: the fast native read and the per-series HU table give pydicom's numbers bit for bit,
    # including unused high bits (garbage here) and padding
    ds = pydicom.dcmread(pydicom_test_file("CT_small.dcm"))
    rng = np.random.default_rng(bits_stored + representation)
    raw = rng.integers(0, 2**16, size=(ds.Rows, ds.Columns), dtype=np.uint16)
    ds.PixelData = raw.astype("<u2").tobytes()
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, representation
    ds.RescaleSlope, ds.RescaleIntercept = "1.5", "-1024.25"
    ds.PixelPaddingValue = int(ds.pixel_array.ravel()[7])
    ts = str(ds.file_meta.TransferSyntaxUID)
    stored = pd_dicom._native_stored(ds, ts, ds.Rows, ds.Columns)
    assert stored is not None and stored.dtype == ds.pixel_array.dtype
    np.testing.assert_array_equal(stored, ds.pixel_array)
    hu, missing = pd_dicom._hu_from_stored(stored, ds)
    expected = stored.astype(np.float64) * 1.5 + -1024.25
    expected[stored == ds.pixel_array.ravel()[7]] = pd_dicom.AIR_HU
    assert not missing and hu.dtype == np.float32
    assert hu.tobytes() == expected.astype(np.float32).tobytes()
