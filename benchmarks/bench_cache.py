"""Data loading with and without the decoded-slice cache (pdlib.slices).

An "epoch" here is what a training run does before its first step: load
every patient's preprocessed slices (:func:`pdlib.slices.load_patient_slices`).
The first epoch decodes the DICOM series and fills an empty cache; the second
reads the cached arrays. Both run in this process, on the same data, and the
ratio of their times is printed (no absolute threshold: machines differ).

Data: a manifest folder given with ``--manifest``; else the digital twin's
manifest when ``data/twin`` holds one; else a small synthetic cohort written
to a temporary folder with pydicom, from pydicom-data's ``693_J2KR.dcm``
(512 x 512 abdominal CT, JPEG 2000 lossless, like many hospital exports).

Usage::

    python benchmarks/bench_cache.py [--manifest DIR] [--patients 4] [--slices 32] [--resize 256]
"""

from __future__ import annotations

import argparse
import copy
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from pdlib import paths
from pdlib.manifest import PATIENT_COLUMNS, load_manifest
from pdlib.slices import load_patient_slices, resize_slices


def write_synthetic_cohort(folder: Path, *, n_patients: int, n_slices: int, source: str = "693_J2KR.dcm") -> Path:
    """A manifest folder and one portal-venous series per patient; returns the manifest folder."""
    template = pydicom.dcmread(get_testdata_file(source))
    rows = []
    for i in range(n_patients):
        pid = f"B{i:03d}"
        series_uid = generate_uid(entropy_srcs=["bench", pid])
        study = folder / "dicom" / pid
        study.mkdir(parents=True)
        for k in range(n_slices):
            ds = copy.deepcopy(template)
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(k)])
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesDescription = "PVP 5mm"
            ds.PatientName, ds.PatientID = "Bench^Patient", pid
            ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[series_uid, "frame"])
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [-122.5, -112.4, 5.0 * k]
            ds.save_as(study / f"{k:04d}.dcm", enforce_file_format=True)
        rows.append({
            "patient_id": pid, "split": "train" if i % 4 else "test", "response": "GR", "recist": "PR",
            "age": "66", "sex": "F", "lauren": "intestinal", "cea": "normal", "ca199": "normal",
            "ct_stage": "T3", "cn_stage": "N0-N1", "cm_stage": "M0", "study_dir": pid,
        })
    manifest = folder / "manifest"
    manifest.mkdir()
    (manifest / "manifest.yaml").write_text("name: cache benchmark\ndata_root: ../dicom\n")
    with open(manifest / "patients.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(PATIENT_COLUMNS), restval="")
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def twin_manifest() -> Path | None:
    """The digital twin's manifest folder, when one has been generated."""
    twin = paths.twin_dir()
    candidates = sorted(twin.glob("manifest.yaml")) + sorted(twin.glob("*/manifest.yaml")) if twin.is_dir() else []
    return candidates[0].parent if candidates else None


def epoch(manifest, patient_ids, *, resize: int, cache_dir: Path) -> tuple[float, int]:
    """Seconds to load every patient, and the number of slices loaded."""
    start = time.perf_counter()
    n = sum(len(load_patient_slices(manifest, pid, resize=resize, cache_dir=cache_dir).slices) for pid in patient_ids)
    return time.perf_counter() - start, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=None, help="manifest folder (default: twin, else synthetic)")
    parser.add_argument("--patients", type=int, default=4, help="patients to load (synthetic: to generate)")
    parser.add_argument("--slices", type=int, default=32, help="slices per synthetic series")
    parser.add_argument("--resize", type=int, default=256)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_cache_") as tmp:
        tmp = Path(tmp)
        folder = args.manifest or twin_manifest()
        if folder is None:
            folder = write_synthetic_cohort(tmp / "data", n_patients=args.patients, n_slices=args.slices)
            source = f"synthetic: {args.patients} patients x {args.slices} slices of 693_J2KR.dcm (JPEG 2000, 512 px)"
        else:
            source = f"manifest {folder}"
        manifest = load_manifest(folder)
        patient_ids = list(manifest.patients["patient_id"])[: args.patients]
        cache = tmp / "cache"
        resize_slices(np.zeros((1, 8, 8), np.float32), 4)  # import torch outside the timed epochs

        uncached, n_slices = epoch(manifest, patient_ids, resize=args.resize, cache_dir=cache)
        cached, _ = epoch(manifest, patient_ids, resize=args.resize, cache_dir=cache)
        size_mb = sum(p.stat().st_size for p in cache.rglob("*.npy")) / 2**20

    print(f"data: {source}")
    print(f"{len(patient_ids)} patients, {n_slices} slices, resize {args.resize}; cache {size_mb:.1f} MiB")
    print(f"uncached epoch (decode + preprocess + write cache): {uncached:8.3f} s")
    print(f"cached epoch   (hash files + read cache):           {cached:8.3f} s")
    print(f"ratio uncached / cached: {uncached / cached:.1f}x")


if __name__ == "__main__":
    main()
