"""The study-folder index (pdlib.cohort_index) behind pdlib.slices.load_cohort.

Real DICOM studies from the ``tiny_cohort`` fixture. What is read from disk
is measured with the kernel's own counter (``rchar`` of ``/proc/self/io``,
the bytes this process got from ``read`` calls), not by replacing any
function.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import FAKE_PATIENT_ID, FAKE_PATIENT_NAME

from pdlib import cohort_index as ci
from pdlib import slices as ps
from pdlib.dicom import DicomInputError, choose_pvp, find_series
from pdlib.manifest import load_manifest

SIZE = 32


def _age_past_racy_window(root: Path) -> None:
    """Wait until every file under ``root`` is older than the racy window, so the next scan trusts it."""
    newest = max(max(p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in root.rglob("*") if p.is_file())
    wait = newest / 1e9 + ci.RACY_SECONDS + 0.05 - time.time()
    if wait > 0:
        time.sleep(wait)


def _bytes_read() -> int:
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])


def _pvp_file(manifest, pid: str, k: int = 2) -> Path:
    return sorted((manifest.study_path(pid) / "pvp").glob("*.dcm"))[k]


def _trusted_cache(manifest, cache: Path):
    """Load the cohort once the files are old enough that the index trusts them; return the slices."""
    _age_past_racy_window(manifest.data_root)
    return {p.patient_id: p.slices for p in ps.load_cohort(manifest, split=None, resize=SIZE, cache_dir=cache)}


def test_index_gives_what_find_series_and_choose_pvp_give(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    study = manifest.study_path("P001")
    found = find_series(study, patient="P001")
    for override in (None, found[0].series_uid):
        expected = choose_pvp(found, override_uid=override, patient="P001")
        for _ in range(2):  # a scan, then from the index
            pvp = ci.pvp_series(study, cache_dir=tmp_path / "cache", patient="P001", override_uid=override)
            assert pvp.files == tuple(Path(os.path.abspath(f)) for f in expected.files)
            assert pvp.digests == tuple(ci.file_sha256(f) for f in expected.files)
            assert pvp.series().series_uid == expected.series_uid
    # The cache key is the one pdlib.slices always computed from the bytes, so
    # existing caches stay valid.
    assert ps.cache_key_from_digests(pvp.digests, a=1) == ps.cache_key(expected.files, a=1)


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs Linux's /proc/self/io to count bytes read")
def test_warm_load_reads_only_the_index_and_the_arrays(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    cache = tmp_path / "cache"
    cold = _trusted_cache(manifest, cache)
    ps.load_cohort(manifest, split=None, resize=SIZE, cache_dir=cache)  # imports and lazy set-up done
    arrays = sum(p.stat().st_size for p in (cache / "slices").glob("*.npy"))
    indexes = sum(p.stat().st_size for p in (cache / "index").glob("*.json"))
    dicom = sorted(p.stat().st_size for p in manifest.data_root.rglob("*.dcm"))
    before = _bytes_read()
    warm = ps.load_cohort(manifest, split=None, resize=SIZE, cache_dir=cache)
    read = _bytes_read() - before
    assert {p.patient_id: p.slices.tobytes() for p in warm} == {k: v.tobytes() for k, v in cold.items()}
    # Everything read is the arrays and the indexes: not even one DICOM file
    # (each is larger than the slack) was opened and read.
    assert arrays + indexes <= read < arrays + indexes + dicom[0], (read, arrays, indexes, dicom[0])


@pytest.mark.parametrize("how", ["in place", "replaced"])
def test_changed_file_with_size_and_mtime_restored_misses_the_cache(tiny_cohort, tmp_path, how):
    manifest = load_manifest(tiny_cohort)
    cache = tmp_path / "cache"
    before = _trusted_cache(manifest, cache)
    assert not ci.pvp_series(manifest.study_path("P003"), cache_dir=cache, patient="P003").scanned
    path = _pvp_file(manifest, "P003")
    st = path.stat()
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.copy()
    pixels[40:80, 40:80] += 150  # +150 HU in a block, same number of bytes
    ds.PixelData = pixels.tobytes()
    if how == "in place":
        ds.save_as(path)
    else:  # a new file (new inode) moved over the old one
        ds.save_as(path.with_suffix(".new"))
        os.replace(path.with_suffix(".new"), path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    now = path.stat()
    assert (now.st_size, now.st_mtime_ns) == (st.st_size, st.st_mtime_ns)  # what a size + mtime check would see
    after = ps.load_patient_slices(manifest, "P003", resize=SIZE, cache_dir=cache).slices
    fresh = ps.load_patient_slices(manifest, "P003", resize=SIZE, cache_dir=tmp_path / "fresh").slices
    np.testing.assert_array_equal(after, fresh)
    assert not np.array_equal(after, before["P003"])
    assert len(list((cache / "slices").glob("*.npy"))) == len(before) + 1
    # Other patients are still served from the index, without a scan.
    assert not ci.pvp_series(manifest.study_path("P002"), cache_dir=cache, patient="P002").scanned


def test_added_and_removed_files_are_noticed(tiny_cohort, tmp_path, write_ct_series):
    manifest = load_manifest(tiny_cohort)
    cache = tmp_path / "cache"
    before = _trusted_cache(manifest, cache)
    # A second series named portal-venous makes the choice ambiguous.
    extra = write_ct_series(manifest.study_path("P001") / "pvp2", n_slices=3, description="PVP thin", series_number=9)
    with pytest.raises(DicomInputError, match="ambiguous portal-venous series") as info:
        ps.load_patient_slices(manifest, "P001", resize=SIZE, cache_dir=cache)
    assert info.value.patient == "P001"
    for path in extra:
        path.unlink()
    np.testing.assert_array_equal(ps.load_patient_slices(manifest, "P001", resize=SIZE, cache_dir=cache).slices,
                                  before["P001"])
    # A removed slice: another series, another entry (and here a missing-slice gap).
    _pvp_file(manifest, "P002", 3).unlink()
    with pytest.raises(DicomInputError, match="missing slice") as info:
        ps.load_patient_slices(manifest, "P002", resize=SIZE, cache_dir=cache)
    assert info.value.patient == "P002"


def test_recent_files_are_checked_again_until_old_enough(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    study, cache = manifest.study_path("P004"), tmp_path / "cache"
    if time.time() - max(p.stat().st_ctime for p in study.rglob("*")) > ci.RACY_SECONDS - 0.5:
        pytest.skip("the fixture took too long to check a recent file")
    assert ci.pvp_series(study, cache_dir=cache, patient="P004").scanned
    index = ci.read_index(study, cache)
    assert index.files and not any(e.trusted for e in index.files.values())
    assert ci.pvp_series(study, cache_dir=cache, patient="P004").scanned  # not trusted: scanned again
    _age_past_racy_window(study)
    assert ci.pvp_series(study, cache_dir=cache, patient="P004").scanned
    assert all(e.trusted for e in ci.read_index(study, cache).files.values())
    assert not ci.pvp_series(study, cache_dir=cache, patient="P004").scanned


def test_override_change_and_a_broken_index(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    cache = tmp_path / "cache"
    study = manifest.study_path("P005")
    _trusted_cache(manifest, cache)
    arterial = find_series(study, patient="P005")[0]
    assert arterial.description == "Arterial phase"
    manifest.patients.loc[manifest.patients["patient_id"] == "P005", "pvp_series_uid"] = arterial.series_uid
    pvp = ci.pvp_series(study, cache_dir=cache, patient="P005", override_uid=arterial.series_uid)
    assert not pvp.scanned and pvp.files == arterial.files
    with pytest.raises(DicomInputError, match="pvp_series_uid 1.2.3 from the manifest is not among"):
        ci.pvp_series(study, cache_dir=cache, patient="P005", override_uid="1.2.3")
    path = ci.index_path(study, cache)
    path.write_text("{not json")
    assert ci.pvp_series(study, cache_dir=cache, patient="P005").scanned
    json.loads(path.read_text())


def test_index_holds_no_header_value(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    ps.load_cohort(manifest, split=None, resize=SIZE, cache_dir=tmp_path / "cache")
    texts = [p.read_text() for p in (tmp_path / "cache" / "index").glob("*.json")]
    assert len(texts) == 5
    uids = {s.series_uid for pid in ("P001", "P002") for s in find_series(manifest.study_path(pid))}
    for text in texts:
        for value in (FAKE_PATIENT_ID, FAKE_PATIENT_NAME, "Arterial", "PVP 5mm", *uids):
            assert value not in text


def test_folders_reached_through_links_are_indexed_as_find_series_walks_them(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    study, cache = manifest.study_path("P001"), tmp_path / "cache"
    (study / "pvp").rename(study / "real_pvp")
    (study / "a_link").symlink_to("real_pvp")  # walked first, so the slices are found under a_link/
    _age_past_racy_window(study)
    expected = choose_pvp(find_series(study, patient="P001"), patient="P001")
    assert all(f.parent.name == "a_link" for f in expected.files)
    for scanned in (True, False):
        pvp = ci.pvp_series(study, cache_dir=cache, patient="P001")
        assert pvp.scanned is scanned and pvp.files == expected.files
    (study / "b_link").symlink_to(tmp_path)  # out of the study: the scan reports it
    with pytest.raises(DicomInputError, match="outside the study folder"):
        ci.pvp_series(study, cache_dir=cache, patient="P001")


def test_a_new_parameter_decodes_the_indexed_series_without_a_scan(tiny_cohort, tmp_path):
    manifest = load_manifest(tiny_cohort)
    cache = tmp_path / "cache"
    _trusted_cache(manifest, cache)
    study = manifest.study_path("P002")
    pvp = ci.pvp_series(study, cache_dir=cache, patient="P002")
    assert not pvp.scanned
    assert pvp.series().series_uid == choose_pvp(find_series(study), patient="P002").series_uid
    half = ps.load_patient_slices(manifest, "P002", resize=SIZE // 2, cache_dir=cache).slices
    fresh = ps.load_patient_slices(manifest, "P002", resize=SIZE // 2, cache_dir=tmp_path / "fresh").slices
    np.testing.assert_array_equal(half, fresh)
