"""Shared fixtures: real DICOM files and small cohorts built from them.

Everything is made from files shipped with pydicom and pydicom-data
(``CT_small.dcm``: 128 x 128 uncompressed CT; ``693_J2KR.dcm``: 512 x 512
contrast-enhanced abdominal CT, JPEG 2000 lossless; ``JPEG-LL.dcm``: JPEG
lossless), copied with edited headers to make series, studies and manifests.
Header values that would identify a patient are set to recognisable fakes
(:data:`FAKE_PATIENT_NAME`, :data:`FAKE_PATIENT_ID`) so that tests can check
that none of them reaches an output.
"""

from __future__ import annotations

import copy
import csv
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

#: Fake identifiers written into every generated DICOM header.
FAKE_PATIENT_NAME = "Identifiable^Jane"
FAKE_PATIENT_ID = "HOSPITAL-ID-0042"

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

#: Default values of a patients.csv row (a valid training patient).
PATIENT_DEFAULTS = {
    "split": "train", "response": "GR", "recist": "PR", "age": "66", "sex": "M",
    "lauren": "intestinal", "cea": "normal", "ca199": "normal", "ct_stage": "T3",
    "cn_stage": "N0-N1", "cm_stage": "M0", "pvp_series_uid": "", "first_slice": "", "last_slice": "",
}
PATIENT_COLUMNS = [
    "patient_id", "split", "response", "recist", "age", "sex", "lauren", "cea", "ca199",
    "ct_stage", "cn_stage", "cm_stage", "study_dir", "pvp_series_uid", "first_slice", "last_slice",
]


def run_process_group(command, *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """:func:`subprocess.run` with output captured, in a process group of its own that a timeout kills whole.

    ``subprocess.run`` kills only the process it started on a timeout; the
    jobs a killed Snakemake had started (shells and training processes)
    would live on and load the machine for the tests after it. Here the
    whole group is killed, then ``TimeoutExpired`` is raised as before.
    """
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr) from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def pydicom_test_file(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"test file {name} not found: install the test extras (pydicom-data)"
    return Path(path)


@pytest.fixture(scope="session")
def ct_small_path() -> Path:
    """pydicom's CT_small.dcm: CT, 128 x 128, Explicit VR Little Endian."""
    return pydicom_test_file("CT_small.dcm")


@pytest.fixture(scope="session")
def ct_j2k_path() -> Path:
    """pydicom-data's 693_J2KR.dcm: abdominal CT, 512 x 512, JPEG 2000 lossless, with padding."""
    return pydicom_test_file("693_J2KR.dcm")


@pytest.fixture(scope="session")
def jpeg_lossless_path() -> Path:
    """pydicom-data's JPEG-LL.dcm: JPEG lossless (SV1), 1024 x 256, no rescale tags."""
    return pydicom_test_file("JPEG-LL.dcm")


def _write_ct_series(
    folder,
    *,
    n_slices: int = 4,
    source: str = "CT_small.dcm",
    description: str = "PVP",
    protocol: str = "",
    positions=None,
    spacing: float = 5.0,
    orientation=AXIAL,
    series_uid: str | None = None,
    series_number: int = 1,
    vary_pixels: bool = True,
    prefix: str = "IM",
    modality: str = "CT",
) -> list[Path]:
    """Write a CT series of copies of a pydicom test file; return the paths.

    Slice ``k`` is at ``positions[k]`` along the slice normal (default
    ``k * spacing``), is named ``{prefix}{k:04d}.dcm`` and, for an
    uncompressed source with ``vary_pixels``, has ``7 * k`` added to its
    stored values so that no two slices are equal. A non-CT source (e.g.
    JPEG-LL.dcm, NM) is relabelled as CT Image Storage unless ``modality``
    is not ``"CT"``, in which case the source's SOP class is kept.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(pydicom_test_file(source))
    positions = [k * spacing for k in range(n_slices)] if positions is None else list(positions)
    series_uid = series_uid or generate_uid(entropy_srcs=[str(folder), description, str(series_number)])
    row_dir, col_dir = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row_dir, col_dir)
    compressed = template.file_meta.TransferSyntaxUID.is_compressed
    stored = None if compressed else template.pixel_array
    paths = []
    for k, z in enumerate(positions):
        ds = copy.deepcopy(template)
        ds.Modality = modality
        if modality == "CT":
            ds.SOPClassUID = CT_IMAGE_STORAGE
            ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.InstanceNumber = k + 1
        ds.SeriesDescription = description
        ds.ProtocolName = protocol
        ds.PatientName = FAKE_PATIENT_NAME
        ds.PatientID = FAKE_PATIENT_ID
        ds.FrameOfReferenceUID = ds.get("FrameOfReferenceUID") or generate_uid(entropy_srcs=[series_uid, "for"])
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.ImagePositionPatient = [float(v) for v in (np.array([-100.0, -100.0, 0.0]) + z * normal)]
        if "PixelSpacing" not in ds:
            ds.PixelSpacing = [0.7, 0.7]
        if stored is not None and vary_pixels:
            info = np.iinfo(stored.dtype)
            ds.PixelData = np.clip(stored.astype(np.int64) + 7 * k, info.min, info.max).astype(stored.dtype).tobytes()
        path = folder / f"{prefix}{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture
def write_ct_series():
    """Factory writing a CT series from a pydicom test file (see ``_write_ct_series``)."""
    return _write_ct_series


def _write_manifest(
    folder,
    patients: list[dict],
    *,
    readers: list[dict] | None = None,
    data_root: str = "dicom",
    name: str = "test cohort",
    positive_class: str | None = None,
    columns: list[str] | None = None,
) -> Path:
    """Write manifest.yaml, patients.csv (and readers.csv when given).

    Each patient dict needs ``patient_id``; other columns default to
    :data:`PATIENT_DEFAULTS` and ``study_dir`` to the patient id.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"name": name, "data_root": data_root}
    if positive_class is not None:
        config["positive_class"] = positive_class
    (folder / "manifest.yaml").write_text(yaml.safe_dump(config))
    columns = columns or PATIENT_COLUMNS
    with open(folder / "patients.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in patients:
            writer.writerow({**PATIENT_DEFAULTS, "study_dir": row["patient_id"], **row})
    if readers is not None:
        with open(folder / "readers.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["patient_id", "reader", "call"])
            writer.writeheader()
            writer.writerows(readers)
    return folder


@pytest.fixture
def write_manifest():
    """Factory writing a manifest folder (see ``_write_manifest``)."""
    return _write_manifest


#: The patients of :func:`tiny_cohort`: (id, split, response, recist).
TINY_COHORT = [
    ("P001", "train", "GR", "PR"),
    ("P002", "train", "PR", "SD"),
    ("P003", "train", "GR", "CR"),
    ("P004", "test", "PR", "PD"),
    ("P005", "test", "GR", "PR"),
]


@pytest.fixture
def tiny_cohort(tmp_path) -> Path:
    """A valid manifest folder with five patients and real DICOM studies.

    Each study (``<tmp>/dicom/<patient_id>``) holds an arterial series and a
    portal-venous series of 6 slices of 128 x 128 (CT_small copies, 5 mm
    apart, files named in reverse position order). Test patients have reader
    calls. Returns the manifest folder ``<tmp>/manifest`` whose
    ``data_root`` is ``../dicom``.
    """
    rows = []
    for i, (pid, split, response, recist) in enumerate(TINY_COHORT):
        study = tmp_path / "dicom" / pid
        _write_ct_series(study / "arterial", n_slices=6, description="Arterial phase", series_number=2)
        _write_ct_series(study / "pvp", n_slices=6, description=f"PVP 5mm {pid}", series_number=3,
                         positions=[5.0 * (5 - k) + 100 * i for k in range(6)])
        rows.append({"patient_id": pid, "split": split, "response": response, "recist": recist,
                     "first_slice": "1", "last_slice": "4"})
    readers = [{"patient_id": pid, "reader": reader, "call": call}
               for pid, split, _, _ in TINY_COHORT if split == "test"
               for reader, call in (("C3", "GR"), ("C20", "PR"))]
    return _write_manifest(tmp_path / "manifest", rows, readers=readers, data_root="../dicom")
