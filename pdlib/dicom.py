"""From a folder of DICOM files to the portal-venous CT volume in HU.

Three steps, each a public function:

1. :func:`find_series` walks a study folder and groups the DICOM files by
   ``(0020,000E) Series Instance UID``. Two series are never merged; files
   without a DICOM preamble (README, thumbnails) and the ``DICOMDIR`` index
   are skipped.
2. :func:`choose_pvp` picks the portal-venous phase (PVP) series: the
   manifest's ``pvp_series_uid`` when given, otherwise the one CT series whose
   ``(0008,103E) Series Description`` or ``(0018,1030) Protocol Name`` reads as
   portal-venous. Han et al. 2025 ("CT imaging and data preprocessing") kept
   only the PVP images, where gastric cancer stands out best from the normal
   gastric wall.
3. :func:`read_series_hu` reads every file and checks its header, sorts the
   slices along the slice normal, decodes each into its place in the volume
   and converts stored values to Hounsfield units, and checks that the files
   form one regular stack. Every file is checked for what may differ per file
   (geometry, rescale, padding, transfer syntax, pixel size); uncompressed
   16-bit slices are read without pydicom's decoder (same values), and
   8/16-bit stored values are converted through a table of the HU of every
   possible value (same float64 arithmetic, so the same float32 bits).

Every bad input raises :class:`DicomInputError` naming the patient (the
manifest's pseudonymous id) and the file. No value from a DICOM header that
identifies a patient (name, id, birth date, accession number) is ever put in
a message or a result.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import stat
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.tag import BaseTag
from pydicom.pixels import apply_modality_lut, get_decoder
from pydicom.uid import UID

#: ``(0008,0016) SOP Class UID`` of classic, single-frame CT Image Storage
#: (PS3.4 B.5): the only image storage pdlib reads.
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
#: Enhanced CT Image Storage (multi-frame); rejected with advice.
ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"
#: Media Storage Directory Storage: a ``DICOMDIR`` index, not an image.
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

#: Transfer syntaxes pdlib decodes, with the pip package that provides the
#: decoder through pydicom's plugins (``None``: pydicom itself). The tests
#: decode a real file of each, except JPEG Lossless Process 14 (no greyscale
#: sample ships with pydicom-data; same libjpeg decoder as the SV1 variant).
SUPPORTED_TRANSFER_SYNTAXES: dict[str, str | None] = {
    "1.2.840.10008.1.2": None,  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1": None,  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99": None,  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2": None,  # Explicit VR Big Endian (retired)
    "1.2.840.10008.1.2.5": None,  # RLE Lossless
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",  # JPEG Extended (Process 2 and 4)
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",  # JPEG Lossless (Process 14)
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",  # JPEG Lossless, First-Order Prediction (SV1)
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",  # JPEG 2000 (Lossless Only)
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",  # JPEG 2000
}

#: HU given to padding pixels: air (water is 0 HU, air -1000 HU; -1024 is the
#: usual floor of CT scanners and lies far below the study's window floor of
#: -215 HU, so padding maps to 0 after windowing).
AIR_HU = -1024.0

#: A gap between adjacent slices larger than this times the median spacing
#: means missing slices.
MAX_GAP_FACTOR = 1.5

#: Two slices closer than this (mm, along the slice normal) are at the same
#: position. ``(0020,0032)`` is a decimal string; scanners write it to
#: 1e-3 mm or better.
SAME_POSITION_MM = 0.01

#: Words of a series description or protocol name that mark the portal-venous
#: phase, compared with whole words of the lower-cased text.
PORTAL_VENOUS_WORDS = frozenset({"pvp", "pv", "portal", "portalvenous", "portovenous", "venous", "ven"})
#: Words that mark another phase or a derived series; they veto a series.
NOT_PORTAL_VENOUS_WORDS = frozenset({
    "arterial", "art", "ap", "early", "late", "delay", "delayed", "equilibrium", "eq",
    "nc", "non", "noncontrast", "unenhanced", "plain", "native", "pre", "precontrast",
    "topogram", "scout", "localizer", "surview", "mip", "mpr", "coronal", "cor",
    "sagittal", "sag", "dose", "report", "bolus", "tracking",
})
#: The same in Chinese (portal vein / venous phase; arterial / plain scan /
#: delayed), matched as substrings since Chinese has no spaces between words.
PORTAL_VENOUS_CJK = ("门脉", "门静脉", "静脉期")
NOT_PORTAL_VENOUS_CJK = ("动脉", "平扫", "延迟")

_WORDS = re.compile(r"[a-z]+|[0-9]+")

#: Direction cosines of ``(0020,0037) Image Orientation Patient`` must be unit
#: vectors and orthogonal to within this (a decimal string of 6 to 16
#: characters carries far more precision).
DIRECTION_TOLERANCE = 1e-3

#: Largest ``(0018,1120) Gantry/Detector Tilt`` accepted, degrees. The slices
#: of a tilted acquisition lie on a sheared grid; pdlib does not resample
#: them, so a tilted series is rejected (see :func:`read_series_hu`).
MAX_GANTRY_TILT_DEG = 0.1

#: A slice whose position has moved within the image plane (relative to the
#: first slice) by more than ``SHEAR_MM + SHEAR_RATIO x`` its distance along
#: the normal is not stacked along its normal: a sheared (gantry-tilted) or
#: shifted stack, rejected. 0.01 is a shear of about 0.6 degrees.
SHEAR_MM = 0.05
SHEAR_RATIO = 0.01

#: Largest absolute coordinate accepted in ``(0020,0032) Image Position
#: Patient``, mm (100 m: anything beyond is a corrupt value).
MAX_POSITION_MM = 1e5
#: Largest ``(0028,0030) Pixel Spacing`` accepted, mm.
MAX_PIXEL_SPACING_MM = 1e3

#: Decimal String and Integer String text (PS3.5 6.2), leading and trailing
#: spaces removed.
_DS_TEXT = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_IS_TEXT = re.compile(r"^[+-]?[0-9]+$")


class DataQualityWarning(UserWarning):
    """Legal input on which the study's method is not what the paper computed.

    For example a one-slice series (no slice spacing, no gap check) or a
    slice range shorter than the top-10 patient score. The message names the
    patient and the file; the same text is kept in a data-quality record
    (:attr:`Volume.notes`, ``data_quality`` of a member's ``summary.json``).
    """


class DicomInputError(ValueError):
    """Bad imaging input; the message names the patient and the file.

    Parameters
    ----------
    message : str
        What is wrong.
    patient : str, optional
        The manifest's pseudonymous patient id.
    path : path, optional
        The file (or study folder) concerned.
    """

    def __init__(self, message: str, *, patient: str | None = None, path: str | os.PathLike | None = None):
        self.patient = patient
        self.path = Path(path) if path is not None else None
        self.reason = message
        where = f"patient {patient if patient is not None else '(unknown)'}"
        if self.path is not None:
            where += f", {self.path}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Series:
    """The files of one DICOM series in a study folder.

    Attributes
    ----------
    series_uid : str
        ``(0020,000E) Series Instance UID``.
    files : tuple of Path
        Sorted by path (slice order is decided by :func:`read_series_hu`).
    modality : str
        ``(0008,0060) Modality`` of the first file.
    description : str
        ``(0008,103E) Series Description`` (may be empty).
    protocol : str
        ``(0018,1030) Protocol Name`` (may be empty).
    series_number : int or None
        ``(0020,0011) Series Number``.
    """

    series_uid: str
    files: tuple[Path, ...]
    modality: str = ""
    description: str = ""
    protocol: str = ""
    series_number: int | None = None

    def describe(self) -> str:
        """One line for error messages (no patient-identifying values)."""
        number = f"#{self.series_number} " if self.series_number is not None else ""
        return (
            f"{number}{self.series_uid} ({len(self.files)} files, {self.modality or 'no modality'}, "
            f"description {self.description!r}, protocol {self.protocol!r})"
        )


@dataclass
class Volume:
    """A CT series in Hounsfield units, in slice order.

    Attributes
    ----------
    hu : ndarray of shape (n_slices, rows, columns), float32
        Slices sorted by ascending position along the slice normal (for an
        axial head-first scan: inferior to superior).
    positions : ndarray of shape (n_slices,), float64
        Position of each slice along the normal, mm, ascending.
    pixel_spacing : tuple of float
        ``(0028,0030) Pixel Spacing``: (between rows, between columns), mm.
    slice_spacing : float
        Median distance between adjacent slices, mm (nan for one slice).
    files : tuple of Path
        The file of each slice, in slice order.
    series_uid : str
        ``(0020,000E) Series Instance UID``.
    notes : tuple of str
        Data-quality notes on legal but degenerate input (e.g. a one-slice
        series), each also issued as a :class:`DataQualityWarning`.
    """

    hu: np.ndarray
    positions: np.ndarray
    pixel_spacing: tuple[float, float]
    slice_spacing: float
    files: tuple[Path, ...]
    series_uid: str
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------
# header values: each validated once, where it is read


def tag_name(keyword: str) -> str:
    """``"(gggg,eeee) Keyword"`` of a DICOM keyword, for messages.

    Examples
    --------
    >>> tag_name("RescaleSlope")
    '(0028,1053) RescaleSlope'
    """
    tag = tag_for_keyword(keyword)
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword}" if tag is not None else keyword


def _shown(value, limit: int = 60) -> str:
    """A header value as text for a message, shortened."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("latin-1")
    if isinstance(value, pydicom.multival.MultiValue):
        value = list(value)
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_TAGS: dict[str, BaseTag] = {}


def _element(ds: pydicom.Dataset, keyword: str, *, path, patient):
    """The value of an element, or None when absent; a value pydicom cannot parse is an error."""
    tag = _TAGS.get(keyword)
    if tag is None:
        tag = _TAGS[keyword] = BaseTag(tag_for_keyword(keyword))
    try:
        # by tag, not keyword: one dictionary look-up, no keyword translation per call
        if tag not in ds._dict:
            return None
        return ds[tag].value
    except Exception as err:  # pydicom raises many types on malformed values
        try:
            raw = _shown(ds.get_item(keyword).value)
        except Exception:  # pragma: no cover - get_item only reads the stored bytes
            raw = "(unreadable)"
        raise DicomInputError(f"{tag_name(keyword)} cannot be parsed ({type(err).__name__}: {err}); value {raw}",
                              patient=patient, path=path) from err


def _number(item, *, integer: bool) -> float | int | None:
    """One value of a DS / IS / binary numeric element as a number, or None if it is not one."""
    if isinstance(item, (bytes, bytearray)):
        item = bytes(item).decode("latin-1")
    if isinstance(item, str):
        text = item.strip(" \x00")
        if not (_IS_TEXT if integer else _DS_TEXT).match(text):
            return None
        return int(text) if integer else float(text)
    if isinstance(item, (bool, np.bool_)):
        return None
    if isinstance(item, (int, np.integer)):
        return int(item)
    if isinstance(item, (float, np.floating)):
        value = float(item)
        if integer:
            return int(value) if value.is_integer() else None
        return value
    return None


def header_numbers(ds: pydicom.Dataset, keyword: str, *, path=None, patient=None, count: int | None = 1,
                   integer: bool = False, required: bool = False, low: float = -math.inf,
                   high: float = math.inf, nonzero: bool = False, why: str = "") -> list | None:
    """The validated numbers of a header element.

    Parameters
    ----------
    ds : pydicom.Dataset
    keyword : str
        DICOM keyword, e.g. ``"RescaleSlope"``.
    path, patient : optional
        For messages.
    count : int or None, default 1
        Required number of values (value multiplicity); None accepts any.
    integer : bool, default False
        Values must be integers (IS, US, SS); otherwise decimals (DS, FD).
    required : bool, default False
        An absent or empty element is an error (otherwise None is returned).
    low, high : float
        Inclusive range of each value.
    nonzero : bool, default False
        Zero is not allowed.
    why : str
        Appended to the "has no ..." message (e.g. ", needed to stack the slices").

    Returns
    -------
    values : list of float (int with ``integer``), or None when absent and not required.

    Raises
    ------
    DicomInputError
        Naming the patient, the file, the tag with its keyword and the bad
        value, when the text is not a number (malformed IS/DS), a value is
        not finite (NaN, infinity), outside ``[low, high]`` or zero, or the
        number of values is wrong.
    """
    value = _element(ds, keyword, path=path, patient=patient)
    if value is None:
        items = []
    elif isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        items = list(value)
    elif isinstance(value, (bytes, bytearray)):
        items = [value] if bytes(value).strip(b" \x00") else []
    elif isinstance(value, str):
        items = [value] if value.strip(" \x00") else []
    else:
        items = [value]
    if not items:
        if required:
            raise DicomInputError(f"has no {tag_name(keyword)}{why}", patient=patient, path=path)
        return None
    if count is not None and len(items) != count:
        raise DicomInputError(f"{tag_name(keyword)} has {len(items)} values, expected {count}: {_shown(value)}",
                              patient=patient, path=path)
    numbers = []
    for item in items:
        number = _number(item, integer=integer)
        kind = "an integer" if integer else "a number"
        if number is None:
            raise DicomInputError(f"{tag_name(keyword)} value {_shown(item)} is not {kind} (value {_shown(value)})",
                                  patient=patient, path=path)
        if not math.isfinite(number):
            raise DicomInputError(f"{tag_name(keyword)} value {_shown(item)} is not finite (value {_shown(value)})",
                                  patient=patient, path=path)
        if not low <= number <= high:
            raise DicomInputError(f"{tag_name(keyword)} value {number!r} is outside [{low:g}, {high:g}]",
                                  patient=patient, path=path)
        if nonzero and number == 0:
            raise DicomInputError(f"{tag_name(keyword)} is 0", patient=patient, path=path)
        numbers.append(number)
    return numbers


def _header_text(ds: pydicom.Dataset, keyword: str, *, path, patient) -> str:
    """A text element (UI, CS, LO, ...) stripped, ``""`` when absent."""
    value = _element(ds, keyword, path=path, patient=patient)
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value).strip()


# --------------------------------------------------------------------------
# finding series


def _has_preamble(path: Path, *, patient: str | None = None) -> bool:
    """True when ``path`` has the 128-byte preamble and ``DICM`` prefix (PS3.10 7.1)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError as err:
        raise DicomInputError(f"the file cannot be read ({type(err).__name__}: {err.strerror or err}); "
                              "a series would silently lose it", patient=patient, path=path) from err
    return len(head) == 132 and head[128:] == b"DICM"


def _header_if_dicom(path: Path, *, patient: str | None) -> pydicom.Dataset | None:
    """The header (up to the pixel data) of a file with the PS3.10 preamble, or None without one.

    :func:`_has_preamble` and :func:`_read` on one open file: the file is
    opened once.
    """
    try:
        f = open(path, "rb")
    except OSError as err:
        raise DicomInputError(f"the file cannot be read ({type(err).__name__}: {err.strerror or err}); "
                              "a series would silently lose it", patient=patient, path=path) from err
    with f:
        try:
            head = f.read(132)
        except OSError as err:
            raise DicomInputError(f"the file cannot be read ({type(err).__name__}: {err.strerror or err}); "
                                  "a series would silently lose it", patient=patient, path=path) from err
        if not (len(head) == 132 and head[128:] == b"DICM"):
            return None
        f.seek(0)
        return _read(path, patient=patient, stop_before_pixels=True, source=f)


def _read(path: Path, *, patient: str | None, stop_before_pixels: bool, source=None) -> pydicom.Dataset:
    """dcmread that turns pydicom's tolerance of truncated files into an error.

    ``source``: the file's bytes, or the file opened for reading, to parse
    instead of opening ``path`` (which then names the file in messages).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path if source is None else source, stop_before_pixels=stop_before_pixels)
        except Exception as err:  # pydicom raises many types on corrupt input
            raise DicomInputError(f"cannot be read as DICOM ({type(err).__name__}: {err})",
                                  patient=patient, path=path) from err
    for w in caught:
        text = str(w.message)
        if "end of file" in text.lower():
            raise DicomInputError(f"the file is truncated ({text})", patient=patient, path=path)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ds


_FILE_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def study_files(study_dir: str | os.PathLike, *, patient: str | None = None) -> list[Path]:
    """Every regular file under a study folder, sorted by path.

    Symbolic links are followed when their target lies inside the study
    folder (after resolving links; the study folder itself may be a link), so
    a slice reached through a linked folder is read; each real folder is
    visited once, so a link loop ends.

    Parameters
    ----------
    study_dir : path
    patient : str, optional
        For messages.

    Returns
    -------
    files : list of Path
        Paths under ``study_dir`` (not resolved), sorted.

    Raises
    ------
    DicomInputError
        Naming the entry, for a folder that cannot be listed or an entry that
        cannot be inspected; a broken symbolic link; a link whose target is
        outside the study folder (never followed); or an entry that is
        neither a regular file nor a folder (named pipe, socket, device).
        Nothing under the study folder is skipped without an error.
    """
    study_dir = Path(study_dir)
    root = Path(os.path.realpath(study_dir))
    visited = {root}
    files: list[Path] = []

    def visit(folder: Path) -> None:
        try:
            with os.scandir(folder) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as err:
            raise DicomInputError(f"the folder cannot be read ({type(err).__name__}: {err.strerror or err}); "
                                  "its files would silently be missing from their series",
                                  patient=patient, path=folder) from err
        for name in names:
            path = folder / name
            is_link = path.is_symlink()
            if is_link:
                target = Path(os.path.realpath(path))
                if not target.exists():
                    raise DicomInputError(f"is a broken symbolic link (to {os.readlink(path)})",
                                          patient=patient, path=path)
                if target != root and root not in target.parents:
                    raise DicomInputError(
                        f"is a symbolic link to {target}, outside the study folder {root}; pdlib follows links "
                        "only within the study folder. Copy the files into the study folder instead.",
                        patient=patient, path=path)
            try:
                mode = path.stat().st_mode
            except OSError as err:
                raise DicomInputError(f"cannot be inspected ({type(err).__name__}: {err.strerror or err})",
                                      patient=patient, path=path) from err
            if stat.S_ISDIR(mode):
                real = Path(os.path.realpath(path))
                if real in visited:  # a link loop, or a second link to a folder already read
                    continue
                visited.add(real)
                visit(path)
            elif stat.S_ISREG(mode):
                files.append(path)
            else:
                kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
                raise DicomInputError(f"is {kind}, not a file or folder; remove it from the study folder",
                                      patient=patient, path=path)

    visit(study_dir)
    return sorted(files)


#: File name extensions of DICOM files: one without the preamble is truncated, not skipped.
DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ".ima"})


def _check_skipped(study_dir: Path, skipped: list[str], groups: dict[str, list[Path]], *, patient) -> None:
    """A file without preamble that is named like the DICOM files beside it is a damaged slice, not a README."""
    named_like = {(p.parent, p.suffix.lower()) for files in groups.values() for p in files}
    for name in skipped:
        path = study_dir / name
        if path.suffix.lower() in DICOM_SUFFIXES or (path.parent, path.suffix.lower()) in named_like:
            size = path.stat().st_size
            raise DicomInputError(
                f"has no DICOM preamble (DICM at byte 128; the file has {size} bytes) although it is named like "
                "the DICOM files beside it: a truncated or damaged slice would silently be missing from its "
                "series. Restore the file, or remove it if it is not an image.", patient=patient, path=path)


def find_series(study_dir: str | os.PathLike, *, patient: str | None = None) -> list[Series]:
    """Group the DICOM files under a study folder into series.

    Parameters
    ----------
    study_dir : path
        Folder of one CT study; searched recursively (:func:`study_files`).
    patient : str, optional
        Pseudonymous patient id, for error messages.

    Returns
    -------
    series : list of Series
        Ordered by series number, then UID. Files are grouped by
        ``(0020,000E) Series Instance UID`` only, so two series are never
        merged (and one series split over folders is kept whole).

    Raises
    ------
    DicomInputError
        If the folder does not exist, holds no DICOM series, holds a DICOM
        file that cannot be read, has no Series Instance UID or a malformed
        ``(0020,0011) Series Number``, or holds anything :func:`study_files`
        refuses (unreadable folders and files, links out of the study,
        broken links, pipes).

    Notes
    -----
    A file is DICOM when it has the PS3.10 preamble (``DICM`` at byte 128);
    other files are skipped, with a warning listing them (or listed in the
    error if no series is found). A file without the preamble whose name
    has a DICOM extension (:data:`DICOM_SUFFIXES`), or the extension (or
    none) of DICOM files in its folder, is an error instead: a truncated
    slice. ``DICOMDIR`` files (Media Storage Directory Storage) are skipped.
    """
    study_dir = Path(study_dir)
    try:
        is_dir = study_dir.is_dir()
    except (OSError, ValueError) as err:  # e.g. a name too long for the file system
        raise DicomInputError(f"study folder cannot be inspected ({type(err).__name__}: "
                              f"{getattr(err, 'strerror', None) or err})", patient=patient, path=study_dir) from err
    if not is_dir:
        raise DicomInputError("study folder does not exist", patient=patient, path=study_dir)
    groups: dict[str, list[Path]] = {}
    numbers: dict[str, int | None] = {}
    headers: dict[str, pydicom.Dataset] = {}
    skipped: list[str] = []
    for path in study_files(study_dir, patient=patient):
        ds = _header_if_dicom(path, patient=patient)
        if ds is None:
            skipped.append(path.relative_to(study_dir).as_posix())
            continue
        try:
            sop_class = (_header_text(ds, "SOPClassUID", path=path, patient=patient)
                         or str(ds.file_meta.get("MediaStorageSOPClassUID", "")).strip())
            if sop_class == MEDIA_STORAGE_DIRECTORY:
                continue
            uid = _header_text(ds, "SeriesInstanceUID", path=path, patient=patient)
            if not uid:
                raise DicomInputError(
                    "has no (0020,000E) Series Instance UID, so it cannot be assigned to a series "
                    "(is the file truncated?)", patient=patient, path=path,
                )
            number = header_numbers(ds, "SeriesNumber", path=path, patient=patient, integer=True)
            if uid not in headers:
                headers[uid] = ds
                numbers[uid] = number[0] if number else None
                # the texts shown in messages, read now so that a bad value is reported with its file
                for keyword in ("Modality", "SeriesDescription", "ProtocolName"):
                    _header_text(ds, keyword, path=path, patient=patient)
        except DicomInputError:
            raise
        except Exception as err:  # a header value pydicom cannot convert
            raise DicomInputError(f"the header cannot be read ({type(err).__name__}: {err})",
                                  patient=patient, path=path) from err
        groups.setdefault(uid, []).append(path)
    listed = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
    if not groups:
        detail = f"; skipped {len(skipped)} file(s) without a DICOM preamble: {listed}" if skipped else ""
        raise DicomInputError(f"no DICOM series found in the study folder{detail}", patient=patient, path=study_dir)
    _check_skipped(study_dir, skipped, groups, patient=patient)
    if skipped:
        warnings.warn(f"patient {patient}, {study_dir}: skipped {len(skipped)} file(s) without a DICOM preamble "
                      f"(not images): {listed}", UserWarning, stacklevel=2)
    series = []
    for uid, files in groups.items():
        ds, first = headers[uid], files[0]
        series.append(
            Series(
                series_uid=uid,
                files=tuple(files),
                modality=_header_text(ds, "Modality", path=first, patient=patient),
                description=_header_text(ds, "SeriesDescription", path=first, patient=patient),
                protocol=_header_text(ds, "ProtocolName", path=first, patient=patient),
                series_number=numbers[uid],
            )
        )
    series.sort(key=lambda s: (s.series_number is None, s.series_number or 0, s.series_uid))
    return series


# --------------------------------------------------------------------------
# choosing the portal-venous series


def is_portal_venous(text: str) -> bool:
    """Whether a series description or protocol name reads as portal-venous.

    True when ``text`` has a word of :data:`PORTAL_VENOUS_WORDS` (or a
    phrase of :data:`PORTAL_VENOUS_CJK`) and none of
    :data:`NOT_PORTAL_VENOUS_WORDS` / :data:`NOT_PORTAL_VENOUS_CJK`.
    Letters and digits are split apart, so ``"PVP5mm"`` has the word ``pvp``.

    Examples
    --------
    >>> is_portal_venous("ABD PVP 5.0 B31f"), is_portal_venous("Arterial phase")
    (True, False)
    >>> is_portal_venous("Delayed venous")
    False
    """
    text = text.lower()
    words = set(_WORDS.findall(text))
    if words & NOT_PORTAL_VENOUS_WORDS or any(w in text for w in NOT_PORTAL_VENOUS_CJK):
        return False
    return bool(words & PORTAL_VENOUS_WORDS) or any(w in text for w in PORTAL_VENOUS_CJK)


def _study_folder(series_list: list[Series]) -> Path | None:
    files = [str(f) for s in series_list for f in s.files]
    return Path(os.path.commonpath(files)) if files else None


def choose_pvp(series_list: list[Series], *, override_uid: str | None = None, patient: str | None = None) -> Series:
    """Pick the portal-venous series of a study.

    Parameters
    ----------
    series_list : list of Series
        From :func:`find_series`.
    override_uid : str, optional
        The manifest's ``pvp_series_uid``; when given it wins over naming.
    patient : str, optional
        Pseudonymous patient id, for error messages.

    Returns
    -------
    series : Series

    Raises
    ------
    DicomInputError
        If ``override_uid`` is not among the series, if no CT series reads as
        portal-venous (:func:`is_portal_venous` on the description and the
        protocol name), if the only ones that do are not CT, or if several
        CT series do (ambiguous). The message lists the series found and says
        how to set ``pvp_series_uid``.
    """
    folder = _study_folder(series_list)
    listing = "".join(f"\n    {s.describe()}" for s in series_list)
    advice = "set pvp_series_uid for this patient in patients.csv to the UID of the portal-venous series"
    if override_uid:
        for series in series_list:
            if series.series_uid == override_uid:
                return series
        raise DicomInputError(
            f"pvp_series_uid {override_uid} from the manifest is not among the series found:{listing}",
            patient=patient, path=folder,
        )
    named = [s for s in series_list if is_portal_venous(s.description) or is_portal_venous(s.protocol)]
    ct_named = [s for s in named if s.modality == "CT"]
    if len(ct_named) == 1:
        return ct_named[0]
    if not named:
        raise DicomInputError(f"no portal-venous series: no series description or protocol name reads as PVP; "
                              f"{advice}. Series found:{listing}", patient=patient, path=folder)
    if not ct_named:
        first = named[0]
        raise DicomInputError(
            f"the portal-venous series has modality {first.modality or '(none)'}, not CT; only CT is supported. "
            f"Series found:{listing}", patient=patient, path=first.files[0],
        )
    raise DicomInputError(
        f"ambiguous portal-venous series: {len(ct_named)} CT series read as PVP; {advice}. "
        f"Candidates:" + "".join(f"\n    {s.describe()}" for s in ct_named),
        patient=patient, path=folder,
    )


# --------------------------------------------------------------------------
# decoding and HU


@functools.lru_cache(maxsize=None)
def _unsupported(ts: str) -> str | None:
    """Why pdlib does not accept a transfer syntax, or None; computed once per syntax."""
    ts = UID(ts)
    if ts not in SUPPORTED_TRANSFER_SYNTAXES:
        supported = ", ".join(f"{UID(u).name}" for u in SUPPORTED_TRANSFER_SYNTAXES)
        return (f"transfer syntax {ts.name} ({ts}) is not supported; supported are: {supported}. "
                "Re-encode the series (e.g. uncompressed) before use.")
    return None


def _transfer_syntax_problem(ts: str) -> str | None:
    """Why a transfer syntax cannot be decoded here, or None (whether its decoder is installed is asked each time)."""
    problem = _unsupported(ts)
    if problem is not None:
        return problem
    ts = UID(ts)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:  # pragma: no cover - every supported syntax has a pydicom decoder
        return f"pydicom has no decoder for {ts.name} ({ts})"
    if not decoder.is_available:
        package = SUPPORTED_TRANSFER_SYNTAXES[ts] or "pydicom"
        return f"transfer syntax {ts.name} ({ts}) needs a decoder that is not installed: pip install pylibjpeg {package}"
    return None


def _check_decodable(ds: pydicom.Dataset, *, path, patient) -> str:
    """The file's ``(0002,0010) Transfer Syntax UID``, after checking pdlib can decode it."""
    ts = ds.file_meta.get("TransferSyntaxUID")
    if ts is None:
        raise DicomInputError("has no (0002,0010) Transfer Syntax UID in its file meta information",
                              patient=patient, path=path)
    ts = str(ts)
    problem = _transfer_syntax_problem(ts)
    if problem is not None:
        raise DicomInputError(problem, patient=patient, path=path)
    return ts


def _modality_lut(stored: np.ndarray, ds: pydicom.Dataset, *, path, patient) -> np.ndarray:
    """HU through a ``(0028,3000) Modality LUT Sequence``, via pydicom's ``apply_modality_lut``."""
    sequence = _element(ds, "ModalityLUTSequence", path=path, patient=patient)
    where = tag_name("ModalityLUTSequence")
    if len(sequence) != 1:
        raise DicomInputError(f"{where} has {len(sequence)} items, expected 1", patient=patient, path=path)
    item = sequence[0]
    lut_type = _header_text(item, "ModalityLUTType", path=path, patient=patient)
    if lut_type != "HU":
        raise DicomInputError(
            f"{where} maps stored values to {tag_name('ModalityLUTType')} {lut_type or '(missing)'!r}, not HU; "
            "pdlib needs Hounsfield units. Export the series with (0028,1053) Rescale Slope and (0028,1052) "
            "Rescale Intercept instead.", patient=patient, path=path)
    entries, _, bits = header_numbers(item, "LUTDescriptor", path=path, patient=patient, count=3, integer=True,
                                      required=True, low=-(2**15), high=2**16 - 1)
    entries = entries or 2**16
    if bits not in (8, 16):
        raise DicomInputError(f"{tag_name('LUTDescriptor')} gives {bits} bits per LUT entry, expected 8 or 16",
                              patient=patient, path=path)
    data = _element(item, "LUTData", path=path, patient=patient)
    n_data = len(data) // 2 if isinstance(data, (bytes, bytearray)) else len(data) if data is not None else 0
    if n_data != entries:
        raise DicomInputError(f"{tag_name('LUTData')} has {n_data} entries; {tag_name('LUTDescriptor')} "
                              f"announces {entries}", patient=patient, path=path)
    try:
        return np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    except Exception as err:  # pydicom raises many types on a malformed LUT
        raise DicomInputError(f"{where} cannot be applied ({type(err).__name__}: {err})",
                              patient=patient, path=path) from err


def _rescaled(stored: np.ndarray, slope: float, intercept: float, *, scratch: np.ndarray | None = None) -> np.ndarray:
    """``slope x stored + intercept`` in float64 (into ``scratch`` when given).

    Modality LUT, PS3.3 C.11.1.1.2: HU = (0028,1053) Rescale Slope x stored
    value + (0028,1052) Rescale Intercept; computed in float64 as pydicom's
    apply_modality_lut does (in place: the same two roundings per value as
    the expression, without temporaries).
    """
    if scratch is None or scratch.shape != stored.shape:
        hu = stored.astype(np.float64)
    else:
        hu = scratch
        np.copyto(hu, stored, casting="safe")  # exact: every 8-32 bit integer is a float64
    hu *= slope
    hu += intercept
    return hu


def _padding_range(ds: pydicom.Dataset, dtype: np.dtype, *, path, patient) -> tuple | None:
    """The stored values marked as padding, ``(low, high)`` inclusive in ``dtype``, or None.

    (0028,0120) Pixel Padding Value, with (0028,0121) Pixel Padding Range
    Limit when present, marks stored values outside the scanned body (PS3.3
    C.7.5.1.1.2); they become air instead of e.g. -3024 HU. Cast to the
    stored type, so that a value written with the other signedness (US 63536
    for SS -2000) still matches.
    """
    padding = header_numbers(ds, "PixelPaddingValue", path=path, patient=patient, integer=True,
                             low=-(2**31), high=2**32 - 1)
    if padding is None:
        return None
    limit = header_numbers(ds, "PixelPaddingRangeLimit", path=path, patient=patient, integer=True,
                           low=-(2**31), high=2**32 - 1) or padding
    bounds = np.array([padding[0], limit[0]], dtype=np.int64).astype(dtype)
    return bounds.min(), bounds.max()


@functools.lru_cache(maxsize=64)
def _hu_table(dtype: str, slope: float, intercept: float, padding: tuple | None) -> tuple[np.ndarray, bool]:
    """float32 HU of every value of an 8/16-bit stored type, indexed by its bits; and whether all are finite.

    Each entry is computed exactly as for an array (:func:`_rescaled`, then
    padding to :data:`AIR_HU`, then float32), so a look-up gives the same
    bits. Cached: the slices of a series share slope, intercept and padding.
    """
    dtype = np.dtype(dtype)
    values = np.arange(2 ** (8 * dtype.itemsize), dtype=np.uint8 if dtype.itemsize == 1 else np.uint16).view(dtype)
    hu = _rescaled(values, slope, intercept)
    if padding is not None:
        hu[(values >= padding[0]) & (values <= padding[1])] = AIR_HU
    with np.errstate(over="ignore", invalid="ignore"):
        table = hu.astype(np.float32)
    table.flags.writeable = False
    return table, bool(np.isfinite(table).all())


def _hu_from_stored(stored: np.ndarray, ds: pydicom.Dataset, *, path=None, patient=None,
                    out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """HU of stored values, and whether the rescale tags (and a Modality LUT) were missing.

    ``out``: a float32 array of the slice's shape to write the result into
    (e.g. a slice of the volume), instead of a new array; ``scratch``: a
    float64 array of that shape for the intermediate values (reused from
    slice to slice of a series).
    """
    slope = header_numbers(ds, "RescaleSlope", path=path, patient=patient, nonzero=True)
    intercept = header_numbers(ds, "RescaleIntercept", path=path, patient=patient)
    has_lut = _element(ds, "ModalityLUTSequence", path=path, patient=patient) not in (None, [])
    if has_lut and (slope is not None or intercept is not None):
        raise DicomInputError(
            f"has both a {tag_name('ModalityLUTSequence')} and rescale tags; PS3.3 C.11.1 allows one or the "
            "other, so the Hounsfield units are ambiguous", patient=patient, path=path)
    if (slope is None) != (intercept is None):
        have, lack = (("RescaleSlope", "RescaleIntercept") if intercept is None
                      else ("RescaleIntercept", "RescaleSlope"))
        raise DicomInputError(f"has {tag_name(have)} but no {tag_name(lack)}; the Hounsfield units are unknown",
                              patient=patient, path=path)
    missing = slope is None and not has_lut
    if not has_lut and stored.dtype.kind in "iu" and stored.dtype.itemsize <= 2:
        # 8/16-bit stored values: the HU of each of the 2^8 / 2^16 possible
        # values, computed as below and looked up (one pass per slice).
        padding = _padding_range(ds, stored.dtype, path=path, patient=patient)
        table, finite = _hu_table(stored.dtype.str, 1.0 if slope is None else slope[0],
                                  0.0 if intercept is None else intercept[0], padding)
        index = stored.view(np.uint8 if stored.dtype.itemsize == 1 else np.uint16)
        hu = np.take(table, index, mode="wrap", out=out)  # every index is in range: "wrap" only avoids a buffer
        if not finite and not np.isfinite(hu).all():
            raise DicomInputError("Hounsfield units are not finite in float32 (rescale slope and intercept too "
                                  "large)", patient=patient, path=path)
        return hu, missing
    if has_lut:
        hu = _modality_lut(stored, ds, path=path, patient=patient)
    else:
        hu = _rescaled(stored, 1.0 if slope is None else slope[0], 0.0 if intercept is None else intercept[0],
                       scratch=scratch)
    padding = _padding_range(ds, stored.dtype, path=path, patient=patient)
    if padding is not None:
        hu[(stored >= padding[0]) & (stored <= padding[1])] = AIR_HU
    with np.errstate(over="ignore", invalid="ignore"):
        if out is None:
            hu = hu.astype(np.float32)
        else:
            np.copyto(out, hu, casting="same_kind")
            hu = out
    if not np.isfinite(hu).all():
        raise DicomInputError("Hounsfield units are not finite in float32 (rescale slope and intercept too large)",
                              patient=patient, path=path)
    return hu, missing


def _check_ct_image(ds: pydicom.Dataset, *, path, patient) -> None:
    sop_class = _header_text(ds, "SOPClassUID", path=path, patient=patient)
    frames = header_numbers(ds, "NumberOfFrames", path=path, patient=patient, integer=True, low=1)
    if sop_class == ENHANCED_CT_IMAGE_STORAGE or (frames is not None and frames[0] > 1):
        raise DicomInputError(
            f"enhanced or multi-frame CT ({frames[0] if frames else 'n'} frames in one file) is not supported; "
            f"pdlib reads classic CT Image Storage ({CT_IMAGE_STORAGE}), one slice per file. Convert the series to "
            "single-frame files first (for example with dcm4che's emf2sf).",
            patient=patient, path=path,
        )
    modality = _header_text(ds, "Modality", path=path, patient=patient)
    if modality != "CT":
        raise DicomInputError(f"modality is {modality or '(missing)'}, not CT; only CT series are supported",
                              patient=patient, path=path)
    if sop_class != CT_IMAGE_STORAGE:
        name = UID(sop_class).name if sop_class else "(missing)"
        raise DicomInputError(f"SOP class {name} ({sop_class}) is not CT Image Storage ({CT_IMAGE_STORAGE})",
                              patient=patient, path=path)
    samples = header_numbers(ds, "SamplesPerPixel", path=path, patient=patient, integer=True)
    if samples is not None and samples[0] != 1:
        raise DicomInputError("has more than one sample per pixel; CT slices are greyscale", patient=patient, path=path)
    if "PixelData" not in ds:
        raise DicomInputError("has no (7FE0,0010) Pixel Data: the file is truncated or not an image",
                              patient=patient, path=path)
    tilt = header_numbers(ds, "GantryDetectorTilt", path=path, patient=patient)
    if tilt is not None and abs(tilt[0]) > MAX_GANTRY_TILT_DEG:
        raise DicomInputError(
            f"{tag_name('GantryDetectorTilt')} is {tilt[0]:g} degrees: the slices of a tilted acquisition lie on a "
            "sheared grid, which pdlib does not resample. Reconstruct the series without tilt (or resample it to "
            "an orthogonal grid) before use.", patient=patient, path=path)


#: Uncompressed little-endian transfer syntaxes (PS3.5 A.1, A.2), whose
#: (7FE0,0010) Pixel Data :func:`_native_stored` reads without pydicom's
#: decoder machinery.
_NATIVE_LITTLE_ENDIAN = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
_PIXEL_DATA = 0x7FE00010
#: (0028,0100) Bits Allocated, (0028,0101) Bits Stored, (0028,0103) Pixel
#: Representation, (0028,0002) Samples per Pixel, (0028,0004) Photometric
#: Interpretation, (0028,0008) Number of Frames.
_NATIVE_TAGS = tuple(BaseTag(t) for t in (0x00280100, 0x00280101, 0x00280103, 0x00280002, 0x00280004, 0x00280008))


def _native_stored(ds: pydicom.Dataset, ts: str, rows: int, columns: int) -> np.ndarray | None:
    """Stored values of the common uncompressed CT slice, or None (then pydicom decodes it).

    Only for one frame of 16-bit greyscale samples in a little-endian
    transfer syntax whose Pixel Data holds exactly ``rows x columns`` values
    (PS3.5 8.1.1). The result equals ``ds.pixel_array`` bit for bit: the
    same dtype (``(0028,0103) Pixel Representation`` 0: uint16, 1: int16)
    and, when ``(0028,0101) Bits Stored`` is below ``(0028,0100) Bits
    Allocated``, the same shift that drops the unused high bits and extends
    the sign. Anything else (other sizes, multi-sample, odd lengths) goes
    through pydicom, which validates and reports it.
    """
    if ts not in _NATIVE_LITTLE_ENDIAN or _PIXEL_DATA not in ds._dict:
        return None
    try:
        values = [ds[tag].value if tag in ds._dict else None for tag in _NATIVE_TAGS]
    except Exception:  # a malformed value: pydicom's decoder reports it
        return None
    allocated, stored_bits, representation, samples, photometric, frames = values
    if (allocated != 16 or not isinstance(stored_bits, int) or not 1 <= stored_bits <= 16
            or representation not in (0, 1) or samples != 1 or frames not in (None, 1, "1")
            or photometric not in ("MONOCHROME1", "MONOCHROME2")):
        return None
    element = ds[_PIXEL_DATA]
    if element.VR not in ("OW", "OB", "OB or OW") or element.is_undefined_length:
        return None
    data = element.value
    if not isinstance(data, (bytes, bytearray)) or len(data) != rows * columns * 2:
        return None
    arr = np.frombuffer(data, dtype="<i2" if representation else "<u2").reshape(rows, columns)
    if stored_bits < 16 or not arr.dtype.isnative:
        arr = arr.astype(np.int16 if representation else np.uint16)  # a writeable copy in native byte order
        shift = 16 - stored_bits
        np.left_shift(arr, shift, out=arr)
        np.right_shift(arr, shift, out=arr)
    return arr  # read-only when a view of the Pixel Data: pdlib only reads it


def _decode_hu(ds: pydicom.Dataset, *, path, patient, size: tuple[int, int] | None = None,
               out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Check the transfer syntax, decode one slice, convert to HU.

    ``size``: (Rows, Columns) when already read and checked; ``out``: where to
    write the HU and ``scratch`` (see :func:`_hu_from_stored`).
    """
    ts = _check_decodable(ds, path=path, patient=patient)
    if size is None:
        rows = header_numbers(ds, "Rows", path=path, patient=patient, integer=True, required=True, low=1)[0]
        columns = header_numbers(ds, "Columns", path=path, patient=patient, integer=True, required=True, low=1)[0]
    else:
        rows, columns = size
    try:
        stored = _native_stored(ds, ts, rows, columns)
        if stored is None:
            stored = ds.pixel_array
    except Exception as err:  # decoders raise many types on corrupt data
        raise DicomInputError(f"pixel data cannot be decoded ({type(err).__name__}: {err}); the file may be truncated",
                              patient=patient, path=path) from err
    if stored.shape != (rows, columns):
        raise DicomInputError(f"pixel data has shape {stored.shape}; expected one slice of {(rows, columns)}",
                              patient=patient, path=path)
    return _hu_from_stored(stored, ds, path=path, patient=patient, out=out,
                           scratch=scratch if scratch is not None and stored.dtype.itemsize <= 4
                           and stored.dtype.kind in "iu" else None)


def to_hu(ds: pydicom.Dataset, *, patient: str | None = None, path: str | os.PathLike | None = None) -> np.ndarray:
    """Decode one single-frame slice and convert it to Hounsfield units.

    Parameters
    ----------
    ds : pydicom.Dataset
        A dataset read with its pixel data.
    patient, path : optional
        For messages.

    Returns
    -------
    hu : ndarray of shape (rows, columns), float32
        ``(0028,1053) Rescale Slope * stored + (0028,1052) Rescale Intercept``
        (the modality LUT of PS3.3 C.11.1.1.2), or the ``(0028,3000)
        Modality LUT Sequence`` when its ``(0028,3004) Modality LUT Type`` is
        HU; equal to ``pydicom.pixels.apply_modality_lut`` except that pixels
        flagged by ``(0028,0120) Pixel Padding Value`` are set to
        :data:`AIR_HU`. With neither rescale tags nor a Modality LUT, slope 1
        and intercept 0 are used (as pydicom does) and a warning names the
        file.

    Raises
    ------
    DicomInputError
        If the transfer syntax is not supported or its decoder is missing
        (the message names the package to install), or decoding fails; if a
        rescale value, pixel padding value, Rows or Columns is malformed, not
        finite, out of range or has the wrong number of values; if only one
        of slope and intercept is present, or a Modality LUT Sequence is
        present with them, or maps to another unit than HU, or is malformed.
    """
    path = path if path is not None else getattr(ds, "filename", None)
    hu, missing = _decode_hu(ds, path=path, patient=patient)
    if missing:
        warnings.warn(
            f"patient {patient}, {path}: no (0028,1053) Rescale Slope / (0028,1052) Rescale Intercept; "
            "using slope 1, intercept 0",
            UserWarning, stacklevel=2,
        )
    return hu


# --------------------------------------------------------------------------
# stacking


def _geometry(ds: pydicom.Dataset, *, path, patient) -> dict:
    """Validated geometry of one slice."""
    why = ", needed to stack the slices"
    position = header_numbers(ds, "ImagePositionPatient", path=path, patient=patient, count=3, required=True,
                              low=-MAX_POSITION_MM, high=MAX_POSITION_MM, why=why)
    orientation = header_numbers(ds, "ImageOrientationPatient", path=path, patient=patient, count=6,
                                 required=True, low=-1 - DIRECTION_TOLERANCE, high=1 + DIRECTION_TOLERANCE, why=why)
    spacing = header_numbers(ds, "PixelSpacing", path=path, patient=patient, count=2, required=True,
                             low=0, high=MAX_PIXEL_SPACING_MM, nonzero=True, why=why)
    rows = header_numbers(ds, "Rows", path=path, patient=patient, integer=True, required=True, low=1)[0]
    columns = header_numbers(ds, "Columns", path=path, patient=patient, integer=True, required=True, low=1)[0]
    orientation = np.array(orientation, dtype=np.float64)
    row_dir, col_dir = orientation[:3], orientation[3:]
    lengths = (float(np.linalg.norm(row_dir)), float(np.linalg.norm(col_dir)))
    if max(abs(n - 1) for n in lengths) > DIRECTION_TOLERANCE:
        raise DicomInputError(
            f"{tag_name('ImageOrientationPatient')} {orientation.tolist()}: the row and column direction cosines "
            f"have lengths {lengths[0]:.6g} and {lengths[1]:.6g}, not 1 (tolerance {DIRECTION_TOLERANCE:g})",
            patient=patient, path=path)
    dot = float(row_dir @ col_dir)
    if abs(dot) > DIRECTION_TOLERANCE:
        raise DicomInputError(
            f"{tag_name('ImageOrientationPatient')} {orientation.tolist()}: the row and column directions are not "
            f"orthogonal (dot product {dot:.6g}, tolerance {DIRECTION_TOLERANCE:g})", patient=patient, path=path)
    return {
        "size": (rows, columns),
        "orientation": orientation,
        "spacing": np.array(spacing, dtype=np.float64),
        "frame_of_reference": _header_text(ds, "FrameOfReferenceUID", path=path, patient=patient),
        "position": np.array(position, dtype=np.float64),
        "instance": _header_text(ds, "SOPInstanceUID", path=path, patient=patient),
    }


def _allclose(a: np.ndarray, b: np.ndarray, *, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """``np.allclose(a, b, rtol, atol)`` for short vectors of finite values, without numpy's per-call cost."""
    return all(abs(x - y) <= atol + rtol * abs(y) for x, y in zip(a.tolist(), b.tolist(), strict=True))


def _check_same_stack(first: dict, other: dict, *, first_path, path, patient, series_uid) -> None:
    def mixed(what):
        raise DicomInputError(
            f"{what} differs from {first_path.name}: two series mixed under one (0020,000E) Series Instance UID "
            f"{series_uid}", patient=patient, path=path,
        )

    if other["size"] != first["size"]:
        mixed(f"(0028,0010)/(0028,0011) image size {other['size']}")
    if not _allclose(other["orientation"], first["orientation"], atol=1e-4):
        mixed(f"(0020,0037) Image Orientation Patient {other['orientation'].tolist()}")
    if not _allclose(other["spacing"], first["spacing"], rtol=1e-4, atol=1e-6):
        mixed(f"(0028,0030) Pixel Spacing {other['spacing'].tolist()}")
    if other["frame_of_reference"] != first["frame_of_reference"]:
        mixed("(0020,0052) Frame of Reference UID")


def _read_slice(path: Path, *, patient, first: dict | None, first_path, series_uid,
                data: bytes | None = None) -> tuple[pydicom.Dataset, dict]:
    """Read one file of a series and check its header (CT image, geometry, same stack as the first file).

    ``data``: the file's bytes when already read, parsed instead of reading the file again.
    """
    ds = _read(path, patient=patient, stop_before_pixels=False, source=data)
    try:
        _check_ct_image(ds, path=path, patient=patient)
        geo = _geometry(ds, path=path, patient=patient)
        if first is not None:
            _check_same_stack(first, geo, first_path=first_path, path=path, patient=patient, series_uid=series_uid)
    except DicomInputError:
        raise
    except Exception as err:  # a header value pydicom cannot convert, found while using it
        raise DicomInputError(f"the header cannot be read ({type(err).__name__}: {err})",
                              patient=patient, path=path) from err
    return ds, geo


def _decode_slice(ds: pydicom.Dataset, geo: dict, *, path, patient, out: np.ndarray, scratch: np.ndarray) -> bool:
    """Decode a slice read by :func:`_read_slice` into ``out``; whether its rescale tags were missing."""
    try:
        return _decode_hu(ds, path=path, patient=patient, size=geo["size"], out=out, scratch=scratch)[1]
    except DicomInputError:
        raise
    except Exception as err:  # a header value pydicom cannot convert, found while using it
        raise DicomInputError(f"the header cannot be read ({type(err).__name__}: {err})",
                              patient=patient, path=path) from err


def read_series_hu(series: Series, *, patient: str | None = None, contents: Mapping | None = None) -> Volume:
    """Decode a CT series into an HU volume sorted along the slice normal.

    Parameters
    ----------
    series : Series
        From :func:`find_series` / :func:`choose_pvp`.
    patient : str, optional
        Pseudonymous patient id, for messages.
    contents : mapping, optional
        The bytes of files of the series already read (path as in
        ``series.files`` to bytes), e.g. those :mod:`pdlib.cohort_index`
        hashed: parsed instead of reading those files again, so the HU come
        from the very bytes whose sha256 keys the cache.

    Returns
    -------
    volume : Volume
        Slices sorted by ascending ``n . p`` where ``p`` is ``(0020,0032)
        Image Position Patient`` and ``n`` the cross product of the row and
        column direction cosines of ``(0020,0037) Image Orientation Patient``.

    Raises
    ------
    DicomInputError
        Naming the patient and the file, when a file is truncated or
        unreadable; is not CT; is an enhanced multi-frame CT; has an
        unsupported transfer syntax or a missing decoder; has a header value
        that is malformed, not finite, out of range or has the wrong number of
        values (with the tag, keyword and value); has direction cosines that
        are not unit length or not orthogonal; has a gantry tilt (see below);
        differs from the others in size, orientation, pixel spacing or frame
        of reference (two series mixed under one UID); or when two slices
        share a position (a duplicate if their pixels are equal, mixed series
        otherwise), a gap exceeds :data:`MAX_GAP_FACTOR` times the median
        spacing (missing slices), or the slices are not stacked along their
        normal (sheared or shifted stack).

    Warns
    -----
    UserWarning
        Once per series, naming the first file, when rescale tags are missing.
    DataQualityWarning
        For a series of one slice (no spacing, no gap check); the text is
        also in :attr:`Volume.notes`.

    Notes
    -----
    Gantry tilt is rejected, not corrected: a ``(0018,1120) Gantry/Detector
    Tilt`` beyond :data:`MAX_GANTRY_TILT_DEG`, or slice positions that move
    within the image plane by more than :data:`SHEAR_MM` +
    :data:`SHEAR_RATIO` x their distance along the normal (the sheared grid a
    tilted acquisition produces even when the tilt tag is absent).
    Resampling the shear would change every HU value of such a series, and
    the study's scans were axial.
    """
    if not series.files:
        raise DicomInputError(f"series {series.series_uid} has no files", patient=patient)
    # 1. read every file and check its header; 2. sort by position; 3. decode
    # each slice straight into its place in the volume (no copy to reorder).
    datasets, geometry = [], []
    for path in series.files:
        ds, geo = _read_slice(path, patient=patient, first=geometry[0] if geometry else None,
                              first_path=series.files[0], series_uid=series.series_uid,
                              data=contents.get(path) if contents else None)
        datasets.append(ds)
        geometry.append(geo)

    orientation = geometry[0]["orientation"]
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([float(g["position"] @ normal) for g in geometry])
    order = np.argsort(positions, kind="stable")  # files are sorted by path, so ties stay deterministic
    positions = positions[order]
    files = tuple(series.files[i] for i in order)

    hu = np.empty((len(files), *geometry[0]["size"]), dtype=np.float32)
    missing = np.zeros(len(files), dtype=bool)  # in file order
    scratch = np.empty(geometry[0]["size"], dtype=np.float64)
    for k, i in enumerate(order):
        missing[i] = _decode_slice(datasets[i], geometry[i], path=series.files[i], patient=patient, out=hu[k],
                                   scratch=scratch)
        datasets[i] = None  # release the file's bytes
    if missing.any():
        warnings.warn(
            f"patient {patient}, {series.files[int(np.argmax(missing))]}: no (0028,1053) Rescale Slope / "
            f"(0028,1052) Rescale Intercept in {int(missing.sum())} of {len(series.files)} file(s) of series "
            f"{series.series_uid}; using slope 1, intercept 0",
            UserWarning, stacklevel=2,
        )

    diffs = np.diff(positions)
    same = np.flatnonzero(diffs < SAME_POSITION_MM)
    if same.size:
        k = int(same[0])
        a, b = order[k], order[k + 1]
        where = f"{files[k].name} and {files[k + 1].name} are both at {positions[k]:.3f} mm along the slice normal"
        same_instance = geometry[a]["instance"] != "" and geometry[a]["instance"] == geometry[b]["instance"]
        if same_instance or np.array_equal(hu[k], hu[k + 1]):
            raise DicomInputError(f"duplicate slice: {where} with the same content", patient=patient, path=files[k + 1])
        raise DicomInputError(
            f"{where} with different pixels: two series mixed under one (0020,000E) Series Instance UID "
            f"{series.series_uid}",
            patient=patient, path=files[k + 1],
        )
    _check_not_sheared(geometry, order, normal, files=files, patient=patient)
    spacing = float(np.median(diffs)) if len(diffs) else float("nan")
    gaps = np.flatnonzero(diffs > MAX_GAP_FACTOR * spacing)
    if gaps.size:
        k = int(gaps[0])
        raise DicomInputError(
            f"missing slice(s): gap of {diffs[k]:.2f} mm between {files[k].name} ({positions[k]:.2f} mm) and "
            f"{files[k + 1].name} ({positions[k + 1]:.2f} mm), more than {MAX_GAP_FACTOR} x the median spacing "
            f"{spacing:.2f} mm", patient=patient, path=files[k + 1],
        )
    notes = []
    if len(files) == 1:
        notes.append(f"patient {patient}, {files[0]}: series {series.series_uid} has one slice; its slice spacing "
                     "is unknown and no gap check was possible")
    for note in notes:
        warnings.warn(note, DataQualityWarning, stacklevel=2)
    return Volume(
        hu=hu,
        positions=positions,
        pixel_spacing=(float(geometry[0]["spacing"][0]), float(geometry[0]["spacing"][1])),
        slice_spacing=spacing,
        files=files,
        series_uid=series.series_uid,
        notes=tuple(notes),
    )


def _check_not_sheared(geometry: list[dict], order: np.ndarray, normal: np.ndarray, *, files, patient) -> None:
    """Reject slices that are not stacked along their normal (gantry tilt, shifted field of view)."""
    origin = geometry[order[0]]["position"]
    for k, i in enumerate(order[1:], start=1):
        offset = geometry[i]["position"] - origin
        along = float(offset @ normal)
        in_plane = float(np.linalg.norm(offset - along * normal))
        if in_plane > SHEAR_MM + SHEAR_RATIO * abs(along):
            raise DicomInputError(
                f"the slices are not stacked along their normal: {files[k].name} lies {in_plane:.2f} mm within the "
                f"image plane from {files[0].name}, {abs(along):.2f} mm away along the normal (a sheared stack, "
                "as from a gantry tilt, or a shifted field of view). pdlib does not resample sheared series; "
                "reconstruct the series without tilt first.", patient=patient, path=files[k])


def load_study_hu(study_dir: str | os.PathLike, *, patient: str, pvp_series_uid: str | None = None) -> Volume:
    """The portal-venous HU volume of one study folder.

    :func:`find_series`, then :func:`choose_pvp` (``pvp_series_uid`` first),
    then :func:`read_series_hu`.

    Parameters
    ----------
    study_dir : path
        Folder of the CT study.
    patient : str
        Pseudonymous patient id, for messages.
    pvp_series_uid : str, optional
        Manifest override of the series choice.

    Returns
    -------
    volume : Volume
    """
    series = find_series(study_dir, patient=patient)
    chosen = choose_pvp(series, override_uid=pvp_series_uid or None, patient=patient)
    return read_series_hu(chosen, patient=patient)
