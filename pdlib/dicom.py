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
3. :func:`read_series_hu` decodes the slices, converts stored values to
   Hounsfield units and stacks them in order along the slice normal, after
   checking that the files form one regular stack.

Every bad input raises :class:`DicomInputError` naming the patient (the
manifest's pseudonymous id) and the file. No value from a DICOM header that
identifies a patient (name, id, birth date, accession number) is ever put in
a message or a result.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import get_decoder
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
    """

    hu: np.ndarray
    positions: np.ndarray
    pixel_spacing: tuple[float, float]
    slice_spacing: float
    files: tuple[Path, ...]
    series_uid: str


# --------------------------------------------------------------------------
# finding series


def _has_preamble(path: Path) -> bool:
    """True when ``path`` has the 128-byte preamble and ``DICM`` prefix (PS3.10 7.1)."""
    with open(path, "rb") as f:
        head = f.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def _read(path: Path, *, patient: str | None, stop_before_pixels: bool) -> pydicom.Dataset:
    """dcmread that turns pydicom's tolerance of truncated files into an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
        except Exception as err:  # pydicom raises many types on corrupt input
            raise DicomInputError(f"cannot be read as DICOM ({type(err).__name__}: {err})",
                                  patient=patient, path=path) from err
    for w in caught:
        text = str(w.message)
        if "end of file" in text.lower():
            raise DicomInputError(f"the file is truncated ({text})", patient=patient, path=path)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return ds


def find_series(study_dir: str | os.PathLike, *, patient: str | None = None) -> list[Series]:
    """Group the DICOM files under a study folder into series.

    Parameters
    ----------
    study_dir : path
        Folder of one CT study; searched recursively.
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
        If the folder does not exist, holds no DICOM series, or holds a DICOM
        file that cannot be read or has no Series Instance UID.

    Notes
    -----
    A file is DICOM when it has the PS3.10 preamble (``DICM`` at byte 128);
    other files are skipped and listed in the error if no series is found.
    ``DICOMDIR`` files (Media Storage Directory Storage) are skipped.
    """
    study_dir = Path(study_dir)
    if not study_dir.is_dir():
        raise DicomInputError("study folder does not exist", patient=patient, path=study_dir)
    groups: dict[str, list[Path]] = {}
    headers: dict[str, pydicom.Dataset] = {}
    skipped: list[str] = []
    for path in sorted(p for p in study_dir.rglob("*") if p.is_file()):
        if not _has_preamble(path):
            skipped.append(path.relative_to(study_dir).as_posix())
            continue
        ds = _read(path, patient=patient, stop_before_pixels=True)
        sop_class = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
        if sop_class == MEDIA_STORAGE_DIRECTORY:
            continue
        uid = str(ds.get("SeriesInstanceUID", "")).strip()
        if not uid:
            raise DicomInputError(
                "has no (0020,000E) Series Instance UID, so it cannot be assigned to a series (is the file truncated?)",
                patient=patient, path=path,
            )
        groups.setdefault(uid, []).append(path)
        headers.setdefault(uid, ds)
    if not groups:
        listed = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        detail = f"; skipped {len(skipped)} file(s) without a DICOM preamble: {listed}" if skipped else ""
        raise DicomInputError(f"no DICOM series found in the study folder{detail}", patient=patient, path=study_dir)
    series = []
    for uid, files in groups.items():
        ds = headers[uid]
        number = ds.get("SeriesNumber")
        series.append(
            Series(
                series_uid=uid,
                files=tuple(files),
                modality=str(ds.get("Modality", "")).strip(),
                description=str(ds.get("SeriesDescription", "")).strip(),
                protocol=str(ds.get("ProtocolName", "")).strip(),
                series_number=int(number) if number not in (None, "") else None,
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


def _check_decodable(ds: pydicom.Dataset, *, path, patient) -> None:
    ts = ds.file_meta.get("TransferSyntaxUID")
    if ts is None:
        raise DicomInputError("has no (0002,0010) Transfer Syntax UID in its file meta information",
                              patient=patient, path=path)
    ts = UID(str(ts))
    supported = ", ".join(f"{UID(u).name}" for u in SUPPORTED_TRANSFER_SYNTAXES)
    if ts not in SUPPORTED_TRANSFER_SYNTAXES:
        raise DicomInputError(
            f"transfer syntax {ts.name} ({ts}) is not supported; supported are: {supported}. "
            "Re-encode the series (e.g. uncompressed) before use.",
            patient=patient, path=path,
        )
    try:
        decoder = get_decoder(ts)
    except NotImplementedError as err:  # pragma: no cover - every supported syntax has a pydicom decoder
        raise DicomInputError(f"pydicom has no decoder for {ts.name} ({ts})", patient=patient, path=path) from err
    if not decoder.is_available:
        package = SUPPORTED_TRANSFER_SYNTAXES[ts] or "pydicom"
        raise DicomInputError(
            f"transfer syntax {ts.name} ({ts}) needs a decoder that is not installed: pip install pylibjpeg {package}",
            patient=patient, path=path,
        )


def _hu_from_stored(stored: np.ndarray, ds: pydicom.Dataset) -> tuple[np.ndarray, bool]:
    """HU of stored values, and whether the rescale tags were missing."""
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    missing = slope is None or intercept is None
    slope = 1.0 if missing else float(slope)
    intercept = 0.0 if missing else float(intercept)
    # Modality LUT, PS3.3 C.11.1.1.2: HU = (0028,1053) Rescale Slope x stored
    # value + (0028,1052) Rescale Intercept; computed in float64 as pydicom's
    # apply_modality_lut does, then stored as float32.
    hu = stored.astype(np.float64) * slope + intercept
    padding = ds.get("PixelPaddingValue")
    if padding is not None:
        # (0028,0120) Pixel Padding Value, with (0028,0121) Pixel Padding
        # Range Limit when present, marks stored values outside the scanned
        # body (PS3.3 C.7.5.1.1.2); they become air instead of e.g. -3024 HU.
        # Cast to the stored type, so that a value written with the other
        # signedness (US 63536 for SS -2000) still matches.
        limit = ds.get("PixelPaddingRangeLimit", padding)
        bounds = np.array([int(padding), int(limit)], dtype=np.int64).astype(stored.dtype)
        hu[(stored >= bounds.min()) & (stored <= bounds.max())] = AIR_HU
    return hu.astype(np.float32), missing


def _check_ct_image(ds: pydicom.Dataset, *, path, patient) -> None:
    sop_class = str(ds.get("SOPClassUID", ""))
    frames = ds.get("NumberOfFrames")
    if sop_class == ENHANCED_CT_IMAGE_STORAGE or (frames not in (None, "") and int(frames) > 1):
        raise DicomInputError(
            f"enhanced or multi-frame CT ({frames or 'n'} frames in one file) is not supported; pdlib reads "
            f"classic CT Image Storage ({CT_IMAGE_STORAGE}), one slice per file. Convert the series to "
            "single-frame files first (for example with dcm4che's emf2sf).",
            patient=patient, path=path,
        )
    modality = str(ds.get("Modality", "")).strip()
    if modality != "CT":
        raise DicomInputError(f"modality is {modality or '(missing)'}, not CT; only CT series are supported",
                              patient=patient, path=path)
    if sop_class != CT_IMAGE_STORAGE:
        name = UID(sop_class).name if sop_class else "(missing)"
        raise DicomInputError(f"SOP class {name} ({sop_class}) is not CT Image Storage ({CT_IMAGE_STORAGE})",
                              patient=patient, path=path)
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise DicomInputError("has more than one sample per pixel; CT slices are greyscale", patient=patient, path=path)
    if "PixelData" not in ds:
        raise DicomInputError("has no (7FE0,0010) Pixel Data: the file is truncated or not an image",
                              patient=patient, path=path)
    required = (("ImagePositionPatient", "(0020,0032)"), ("ImageOrientationPatient", "(0020,0037)"),
                ("PixelSpacing", "(0028,0030)"))
    for (keyword, tag), n_values in zip(required, (3, 6, 2)):
        if keyword not in ds or ds[keyword].value in (None, ""):
            raise DicomInputError(f"has no {tag} {keyword}, needed to stack the slices", patient=patient, path=path)
        if len(_values(ds, keyword)) != n_values:
            raise DicomInputError(f"{tag} {keyword} has {len(_values(ds, keyword))} values, expected {n_values}",
                                  patient=patient, path=path)


def _decode_hu(ds: pydicom.Dataset, *, path, patient) -> tuple[np.ndarray, bool]:
    """Check the transfer syntax, decode one slice, convert to HU."""
    _check_decodable(ds, path=path, patient=patient)
    try:
        stored = ds.pixel_array
    except Exception as err:  # decoders raise many types on corrupt data
        raise DicomInputError(f"pixel data cannot be decoded ({type(err).__name__}: {err}); the file may be truncated",
                              patient=patient, path=path) from err
    expected = (int(ds.get("Rows", 0)), int(ds.get("Columns", 0)))
    if stored.shape != expected:
        raise DicomInputError(f"pixel data has shape {stored.shape}; expected one slice of {expected}",
                              patient=patient, path=path)
    return _hu_from_stored(stored, ds)


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
        (the modality LUT of PS3.3 C.11.1.1.2), equal to
        ``pydicom.pixels.apply_modality_lut`` except that pixels flagged by
        ``(0028,0120) Pixel Padding Value`` are set to :data:`AIR_HU`. With
        the rescale tags missing, slope 1 and intercept 0 are used and a
        warning names the file.

    Raises
    ------
    DicomInputError
        If the transfer syntax is not supported or its decoder is missing
        (the message names the package to install), or decoding fails.
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


def _values(ds: pydicom.Dataset, keyword: str) -> list:
    """The values of a multi-valued element as a list (pydicom gives a bare value when VM is 1)."""
    value = ds[keyword].value
    return list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]


def _geometry(ds: pydicom.Dataset) -> dict:
    return {
        "size": (int(ds.Rows), int(ds.Columns)),
        "orientation": np.array([float(v) for v in _values(ds, "ImageOrientationPatient")], dtype=np.float64),
        "spacing": np.array([float(v) for v in _values(ds, "PixelSpacing")], dtype=np.float64),
        "frame_of_reference": str(ds.get("FrameOfReferenceUID", "")),
        "position": np.array([float(v) for v in _values(ds, "ImagePositionPatient")], dtype=np.float64),
        "instance": str(ds.get("SOPInstanceUID", "")),
    }


def _check_same_stack(first: dict, other: dict, *, first_path, path, patient, series_uid) -> None:
    def mixed(what):
        raise DicomInputError(
            f"{what} differs from {first_path.name}: two series mixed under one (0020,000E) Series Instance UID "
            f"{series_uid}", patient=patient, path=path,
        )

    if other["size"] != first["size"]:
        mixed(f"(0028,0010)/(0028,0011) image size {other['size']}")
    if not np.allclose(other["orientation"], first["orientation"], atol=1e-4):
        mixed(f"(0020,0037) Image Orientation Patient {other['orientation'].tolist()}")
    if not np.allclose(other["spacing"], first["spacing"], rtol=1e-4, atol=1e-6):
        mixed(f"(0028,0030) Pixel Spacing {other['spacing'].tolist()}")
    if other["frame_of_reference"] != first["frame_of_reference"]:
        mixed("(0020,0052) Frame of Reference UID")


def read_series_hu(series: Series, *, patient: str | None = None) -> Volume:
    """Decode a CT series into an HU volume sorted along the slice normal.

    Parameters
    ----------
    series : Series
        From :func:`find_series` / :func:`choose_pvp`.
    patient : str, optional
        Pseudonymous patient id, for messages.

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
        unsupported transfer syntax or a missing decoder; differs from the
        others in size, orientation, pixel spacing or frame of reference
        (two series mixed under one UID); or when two slices share a
        position (a duplicate if their pixels are equal, mixed series
        otherwise) or a gap exceeds :data:`MAX_GAP_FACTOR` times the median
        spacing (missing slices).

    Warns
    -----
    UserWarning
        Once per series, naming the first file, when rescale tags are missing.
    """
    if not series.files:
        raise DicomInputError(f"series {series.series_uid} has no files", patient=patient)
    slices, geometry, no_rescale = [], [], []
    for path in series.files:
        ds = _read(path, patient=patient, stop_before_pixels=False)
        _check_ct_image(ds, path=path, patient=patient)
        geo = _geometry(ds)
        if geometry:
            _check_same_stack(geometry[0], geo, first_path=series.files[0], path=path, patient=patient,
                              series_uid=series.series_uid)
        hu, missing = _decode_hu(ds, path=path, patient=patient)
        if missing:
            no_rescale.append(path)
        slices.append(hu)
        geometry.append(geo)
    if no_rescale:
        warnings.warn(
            f"patient {patient}, {no_rescale[0]}: no (0028,1053) Rescale Slope / (0028,1052) Rescale Intercept in "
            f"{len(no_rescale)} of {len(series.files)} file(s) of series {series.series_uid}; "
            "using slope 1, intercept 0",
            UserWarning, stacklevel=2,
        )

    orientation = geometry[0]["orientation"]
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([float(g["position"] @ normal) for g in geometry])
    order = np.argsort(positions, kind="stable")  # files are sorted by path, so ties stay deterministic
    positions = positions[order]
    files = tuple(series.files[i] for i in order)

    diffs = np.diff(positions)
    same = np.flatnonzero(diffs < SAME_POSITION_MM)
    if same.size:
        k = int(same[0])
        a, b = order[k], order[k + 1]
        where = f"{files[k].name} and {files[k + 1].name} are both at {positions[k]:.3f} mm along the slice normal"
        same_instance = geometry[a]["instance"] != "" and geometry[a]["instance"] == geometry[b]["instance"]
        if same_instance or np.array_equal(slices[a], slices[b]):
            raise DicomInputError(f"duplicate slice: {where} with the same content", patient=patient, path=files[k + 1])
        raise DicomInputError(
            f"{where} with different pixels: two series mixed under one (0020,000E) Series Instance UID "
            f"{series.series_uid}",
            patient=patient, path=files[k + 1],
        )
    spacing = float(np.median(diffs)) if len(diffs) else float("nan")
    gaps = np.flatnonzero(diffs > MAX_GAP_FACTOR * spacing)
    if gaps.size:
        k = int(gaps[0])
        raise DicomInputError(
            f"missing slice(s): gap of {diffs[k]:.2f} mm between {files[k].name} ({positions[k]:.2f} mm) and "
            f"{files[k + 1].name} ({positions[k + 1]:.2f} mm), more than {MAX_GAP_FACTOR} x the median spacing "
            f"{spacing:.2f} mm", patient=patient, path=files[k + 1],
        )
    hu = np.stack([slices[i] for i in order]).astype(np.float32, copy=False)
    return Volume(
        hu=hu,
        positions=positions,
        pixel_spacing=(float(geometry[0]["spacing"][0]), float(geometry[0]["spacing"][1])),
        slice_spacing=spacing,
        files=files,
        series_uid=series.series_uid,
    )


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
