"""An index of each study folder, so that a warm cohort load reads no DICOM.

:func:`pdlib.slices.load_cohort` needs, per patient, the files of the
portal-venous series (:func:`pdlib.dicom.find_series`, then
:func:`pdlib.dicom.choose_pvp`) and the sha256 of their bytes (the
content-keyed cache of :mod:`pdlib.slices`). Both cost I/O proportional to
the cohort: a header read of every file of every phase and a full read of
every portal-venous file. This module records them once per study folder, in
``<cache_dir>/index/<digest of the folder's path>.json``:

* per file (every regular file under the folder, DICOM or not, found as
  :func:`pdlib.dicom.study_files` finds them): its path relative to the folder, ``st_size``,
  ``st_mtime_ns``, ``st_ctime_ns`` and ``st_ino``, the series it belongs to,
  and the sha256 of its bytes once that has been needed;
* per series, in ``find_series`` order: a sha256 of its Series Instance UID
  (to match the manifest's ``pvp_series_uid`` without a header read) and its
  files; and which series :func:`pdlib.dicom.choose_pvp` picks by name.

The index holds no DICOM header value (UIDs only as digests, no
description, no name), like the cache it sits in. It is stored as parallel
lists in sorted path order (:data:`INDEX_VERSION` 2; an index of another
version is ignored and the folder scanned again, which re-hashes its
portal-venous files but decodes nothing when the cached array exists: the
cache keys do not depend on the index).

In a cold load, the portal-venous files are read once: the bytes hashed here
are handed to :func:`pdlib.dicom.read_series_hu` (:attr:`PvpSeries.contents`),
so the decoded slices are exactly the bytes whose digests key the cache.

A later load lists the folder and stats every file (``os.scandir``, one
``stat`` per file, no file is opened). When the set of files and all four
stat fields of every file equal the index, and every entry is trusted (see
below), the series grouping, the choice and the digests come from the index
(compared on the stored lists, without building an entry per file).
Otherwise the folder is scanned again through ``find_series`` (a header read
of each of its files); digests of files whose stat fields did not change are
kept, the others are computed again when needed.

What is guaranteed. A cached array is found under a key made of the sha256
of the bytes of its series' files (:func:`pdlib.slices.cache_key`). With the
index, a file's recorded sha256 is reused only while its size, modification
time, status-change time (ctime) and inode number are all unchanged. Writing
to a file, truncating it, or replacing it (a new inode) changes its ctime,
which no user can set back: ``os.utime`` restores the modification time, not
the ctime. So a changed file is always hashed again, even when its size and
modification time were restored, and a changed file can never be served the
cached array of its old content. Two limits: (1) a change within the same
clock tick as the previous one leaves ctime unchanged; an entry is therefore
trusted only when its ctime and mtime were at least :data:`RACY_SECONDS`
older than the moment it was recorded (as git does with racily clean index
entries), and is checked again at the next load otherwise; (2) file systems
that do not keep ctime or inode numbers (some FUSE or network mounts) or a
system clock set backwards by an administrator defeat the check; there,
delete ``<cache_dir>/index`` (or the whole cache) after changing data. Files
must not change while a load runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISDIR, S_ISREG

import pydicom

from pdlib import atomic
from pdlib.dicom import DicomInputError, Series, choose_pvp, find_series

#: Version of the index format; another version is ignored and rebuilt.
INDEX_VERSION = 2

#: An entry whose mtime or ctime was less than this many seconds before it
#: was recorded is checked again at the next load (a change in the same clock
#: tick would not change ctime). 2 s covers file systems with coarse
#: time-stamps (e.g. 1 s on ext3, 2 s mtime on FAT).
RACY_SECONDS = 2.0


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _uid_digest(uid: str) -> str:
    return hashlib.sha256(str(uid).strip().encode()).hexdigest()


def _stat_fields(st: os.stat_result) -> tuple[int, int, int, int]:
    return (int(st.st_size), int(st.st_mtime_ns), int(st.st_ctime_ns), int(st.st_ino))


def list_files(study_dir: str | os.PathLike) -> dict[str, tuple[int, int, int, int]] | None:
    """Every regular file under ``study_dir`` with its stat fields, opening none.

    Parameters
    ----------
    study_dir : path

    Returns
    -------
    files : dict or None
        Path relative to ``study_dir`` (POSIX separators) to ``(st_size,
        st_mtime_ns, st_ctime_ns, st_ino)`` of the file (of a link's target).
        The walk is :func:`pdlib.dicom.study_files`' (names sorted, links
        followed within the study folder, each real folder visited once), so
        the same files are found under the same names. None when that
        function would raise (an unreadable entry, a broken link or one out of
        the study, a pipe): the caller then scans, and the scan reports it.
    """
    root = os.path.realpath(study_dir)
    visited = {root}
    out: dict[str, tuple[int, int, int, int]] = {}

    def visit(prefix: str, folder: str, real_folder: str) -> bool:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = prefix + entry.name
            link = entry.is_symlink()
            if link:
                target = os.path.realpath(entry.path)
                if not os.path.exists(target) or not (target == root or target.startswith(root + os.sep)):
                    return False
            st = entry.stat()
            if S_ISREG(st.st_mode):
                out[rel] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            elif S_ISDIR(st.st_mode):
                # a folder that is not a link lies at its parent's real path (no realpath call needed)
                real = target if link else os.path.join(real_folder, entry.name)
                if real in visited:
                    continue
                visited.add(real)
                if not visit(rel + "/", entry.path, real):
                    return False
            else:
                return False
        return True

    try:
        return out if visit("", os.fspath(study_dir), root) else None
    except OSError:
        return None


@dataclass
class FileEntry:
    """What the index records about one file of a study folder."""

    stat: tuple[int, int, int, int]
    series: int = -1  # position in StudyIndex.series, -1 when in no series
    digest: str | None = None  # sha256 of the bytes, once needed
    trusted: bool = False  # stat fields old enough when recorded (see RACY_SECONDS)


@dataclass
class SeriesEntry:
    uid_digest: str
    files: tuple[str, ...]  # relative paths, in find_series order


@dataclass
class StudyIndex:
    """The index of one study folder (see the module docstring)."""

    study: Path
    files: dict[str, FileEntry] = field(default_factory=dict)
    series: list[SeriesEntry] = field(default_factory=list)
    by_name: int | None = None  # choose_pvp's pick without an override, None if it fails

    def matches(self, listing: dict | None) -> bool:
        """Whether ``listing`` (:func:`list_files`) shows no change since the index was made."""
        if listing is None or listing.keys() != self.files.keys():
            return False
        return all(entry.trusted and listing[rel] == entry.stat for rel, entry in self.files.items())

    def choice(self, override_uid: str | None) -> int | None:
        """The series :func:`pdlib.dicom.choose_pvp` picks; None when it would raise."""
        if override_uid:
            wanted = _uid_digest(override_uid)
            return next((i for i, s in enumerate(self.series) if s.uid_digest == wanted), None)
        return self.by_name

    # ---- storage (format 2: parallel lists in sorted path order, so that a
    # warm load compares the listing with the record without building an
    # entry per file; see _stored_listing)

    def to_json(self) -> str:
        names = sorted(self.files)
        entries = [self.files[rel] for rel in names]
        payload = {"version": INDEX_VERSION, "study": str(self.study), "by_name": self.by_name,
                   "series": [[s.uid_digest, list(s.files)] for s in self.series], "names": names,
                   "stat": [v for e in entries for v in e.stat], "series_of": [e.series for e in entries],
                   "digest": [e.digest for e in entries], "trusted": [e.trusted for e in entries]}
        return json.dumps(payload, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, study: Path) -> "StudyIndex | None":
        payload = _payload(text, study)
        if payload is None:
            return None
        try:
            names, stats = payload["names"], _stored_listing(payload)
            files = {rel: FileEntry(stat=stats[rel], series=series, digest=digest, trusted=trusted)
                     for rel, series, digest, trusted in zip(names, payload["series_of"], payload["digest"],
                                                             payload["trusted"], strict=True)}
            series = [SeriesEntry(uid, tuple(members)) for uid, members in payload["series"]]
            return cls(study=study, files=files, series=series, by_name=payload["by_name"])
        except (ValueError, TypeError, KeyError):
            return None


def _payload(text: str, study: Path) -> dict | None:
    """The decoded index of ``study``, or None when not valid JSON, of another version or of another folder."""
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("version") != INDEX_VERSION or payload.get("study") != str(study):
        return None
    return payload


def _stored_listing(payload: dict) -> dict[str, tuple[int, int, int, int]]:
    """The recorded files and stat fields, in :func:`list_files`' form (ValueError when malformed)."""
    names, stat = payload["names"], payload["stat"]
    if not isinstance(names, list) or not isinstance(stat, list) or len(stat) != 4 * len(names):
        raise ValueError("malformed index")
    return dict(zip(names, zip(stat[0::4], stat[1::4], stat[2::4], stat[3::4])))


def _unchanged(payload: dict, study: Path, override_uid: str | None) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The chosen series' files and digests from a stored index, when the folder shows no change; else None.

    The same test as :meth:`StudyIndex.matches` and :meth:`StudyIndex.choice`
    (every file listed with equal stat fields, every entry trusted, a series
    chosen, its digests recorded), made on the stored lists directly.
    """
    try:
        if not all(payload["trusted"]) or _stored_listing(payload) != list_files(study):
            return None
        series = payload["series"]
        if override_uid:
            wanted = _uid_digest(override_uid)
            chosen = next((i for i, s in enumerate(series) if s[0] == wanted), None)
        else:
            chosen = payload["by_name"]
        if chosen is None:
            return None
        members = tuple(series[chosen][1])
        position = {rel: i for i, rel in enumerate(payload["names"])}
        digests = tuple(payload["digest"][position[rel]] for rel in members)
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    if not members or not all(isinstance(d, str) for d in digests):
        return None
    return members, digests


def index_path(study_dir: str | os.PathLike, cache_dir: str | os.PathLike) -> Path:
    """Where the index of a study folder lives: ``<cache_dir>/index/<sha256 of its absolute path>.json``."""
    name = hashlib.sha256(os.path.abspath(study_dir).encode()).hexdigest()[:40]
    return Path(cache_dir) / "index" / f"{name}.json"


def read_index(study_dir: str | os.PathLike, cache_dir: str | os.PathLike) -> StudyIndex | None:
    """The stored index of a study folder, or None when absent, unreadable or of another version."""
    study = Path(os.path.abspath(study_dir))
    text = _read_text(index_path(study, cache_dir))
    return None if text is None else StudyIndex.from_json(text, study)


def _read_text(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def scan_study(study_dir: str | os.PathLike, *, patient: str | None = None,
               previous: StudyIndex | None = None) -> tuple[StudyIndex, list[Series]]:
    """Index a study folder: list and stat its files, then group them with :func:`pdlib.dicom.find_series`.

    Parameters
    ----------
    study_dir : path
    patient : str, optional
        Pseudonymous id, for error messages.
    previous : StudyIndex, optional
        An older index of the folder: the digests of files whose stat fields
        are unchanged (and were trusted) are carried over.

    Returns
    -------
    index : StudyIndex
        Not yet written (see :func:`pvp_series`).
    series : list of pdlib.dicom.Series
        What ``find_series`` returned.

    Raises
    ------
    DicomInputError
        As :func:`pdlib.dicom.find_series`.
    """
    study = Path(os.path.abspath(study_dir))
    if not study.is_dir():
        raise DicomInputError("study folder does not exist", patient=patient, path=study)
    # Stat before reading: if a file changes after this, its recorded stat no
    # longer matches at the next load and it is read again.
    now = time.time_ns()
    listing = list_files(study)
    found = find_series(study, patient=patient)
    racy_after = now - int(RACY_SECONDS * 1e9)
    index = StudyIndex(study=study)
    for rel, st in (listing or {}).items():
        index.files[rel] = FileEntry(stat=st, trusted=max(st[1], st[2]) <= racy_after)
    for position, series in enumerate(found):
        members = []
        for path in series.files:
            rel = Path(path).relative_to(study).as_posix()
            entry = index.files.get(rel)
            if entry is None:  # appeared between the listing and find_series
                entry = index.files[rel] = FileEntry(stat=_stat_fields(os.stat(path)), trusted=False)
            entry.series = position
            members.append(rel)
        index.series.append(SeriesEntry(_uid_digest(series.series_uid), tuple(members)))
    if previous is not None:
        for rel, entry in index.files.items():
            old = previous.files.get(rel)
            if old is not None and old.trusted and old.digest and old.stat == entry.stat:
                entry.digest = old.digest
    try:
        chosen = choose_pvp(found, patient=patient)
        index.by_name = found.index(chosen)
    except DicomInputError:
        index.by_name = None
    return index, found


@dataclass
class PvpSeries:
    """The portal-venous series of a study, as :func:`pvp_series` returns it.

    Attributes
    ----------
    files : tuple of Path
        The series' files, in :func:`pdlib.dicom.find_series` order (made
        on first use: a load served from the cache never needs them).
    digests : tuple of str
        sha256 of each file's bytes, same order.
    scanned : bool
        Whether the study folder was scanned (header reads) by this call.
    contents : dict
        The bytes of the files this call hashed (path as in :attr:`files`
        to bytes), for :func:`pdlib.dicom.read_series_hu` (``contents=``), so
        that a cold load reads each file once; empty when no file was hashed.
    """

    study: Path
    members: tuple[str, ...]
    digests: tuple[str, ...]
    scanned: bool
    patient: str | None = None
    _series: Series | None = field(default=None, repr=False)
    contents: dict = field(default_factory=dict, repr=False)

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(self.study / rel for rel in self.members)

    def series(self) -> Series:
        """The :class:`pdlib.dicom.Series`, for :func:`pdlib.dicom.read_series_hu`.

        From the scan when there was one; otherwise built from the index,
        with the Series Instance UID read from the first file's header (the
        only header read, and only when the series is decoded).
        """
        if self._series is None:
            first = self.files[0]
            try:
                ds = pydicom.dcmread(first, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
            except Exception as err:  # pydicom raises many types on corrupt input
                raise DicomInputError(f"cannot be read as DICOM ({type(err).__name__}: {err})",
                                      patient=self.patient, path=first) from err
            self._series = Series(series_uid=str(ds.get("SeriesInstanceUID", "")).strip(), files=self.files)
        return self._series


def pvp_series(study_dir: str | os.PathLike, *, cache_dir: str | os.PathLike, patient: str | None = None,
               override_uid: str | None = None) -> PvpSeries:
    """The portal-venous series of a study folder and the sha256 of its files, through the index.

    Parameters
    ----------
    study_dir : path
        The patient's study folder (:meth:`pdlib.manifest.Manifest.study_path`).
    cache_dir : path
        The index lives under ``<cache_dir>/index``.
    patient : str, optional
        Pseudonymous id, for messages.
    override_uid : str, optional
        The manifest's ``pvp_series_uid``.

    Returns
    -------
    pvp : PvpSeries
        Same files and order as ``choose_pvp(find_series(study_dir), ...)``.
        When the folder is unchanged since it was indexed (see the module
        docstring), no file is opened: the folder is listed and stat'ed, and
        the index read. Otherwise the folder is scanned, the series' missing
        digests are computed, and the index is written (atomically).

    Raises
    ------
    DicomInputError
        As :func:`pdlib.dicom.find_series` and :func:`pdlib.dicom.choose_pvp`,
        naming the patient and the file.
    """
    study = Path(os.path.abspath(study_dir))
    override_uid = override_uid or None
    text = _read_text(index_path(study, cache_dir))
    payload = None if text is None else _payload(text, study)
    if payload is not None:
        warm = _unchanged(payload, study, override_uid)
        if warm is not None:  # the common case, decided without building the index's entries
            return PvpSeries(study=study, members=warm[0], digests=warm[1], scanned=False, patient=patient)
    index = None if text is None else StudyIndex.from_json(text, study)
    found = None
    listing = list_files(study) if index is not None and study.is_dir() else None
    if index is None or not index.matches(listing) or index.choice(override_uid) is None:
        index, found = scan_study(study, patient=patient, previous=index)
        changed = True
    else:
        changed = False
    chosen = index.choice(override_uid)
    if chosen is None:  # choose_pvp raises with its message (the scan above saw the current files)
        atomic.write_text(index_path(study, cache_dir), index.to_json())
        choose_pvp(found, override_uid=override_uid, patient=patient)
        raise AssertionError("choose_pvp chose no series and raised nothing")  # pragma: no cover
    members = index.series[chosen].files
    contents = {}
    for rel in members:
        entry = index.files[rel]
        if entry.digest is None:
            # read once: hashed here, and kept for read_series_hu (a cold load decodes these bytes next)
            with open(study / rel, "rb") as f:
                data = f.read()
            entry.digest = hashlib.sha256(data).hexdigest()
            contents[study / rel] = data
            changed = True
    if changed:
        atomic.write_text(index_path(study, cache_dir), index.to_json())
    return PvpSeries(study=study, members=members, digests=tuple(index.files[rel].digest for rel in members),
                     scanned=found is not None, patient=patient,
                     _series=found[chosen] if found is not None else None, contents=contents)
