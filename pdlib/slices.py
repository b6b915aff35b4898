"""From HU volumes to the slices a 2D model sees.

Order of operations (Han et al. 2025, "CT imaging and data preprocessing"):

1. keep the portal-venous series (:mod:`pdlib.dicom`) and the
   abdomen-to-liver slice range (``first_slice``..``last_slice`` of the
   manifest, inclusive, in slice order along the normal);
2. window to [-215, 285] HU and map linearly to [0, 1];
3. resize each slice to ``resize`` x ``resize`` pixels (256 in the study),
   bilinear with antialiasing;
4. crop ``crop`` x ``crop`` pixels (224 in the study): random for training,
   centred for evaluation;
5. augment training slices with flips, rotations, scaling and shifts.

Windowing comes before resizing, as in the study, so the interpolation mixes
windowed intensities only and values far outside the window (bone, air,
padding) cannot bleed into soft tissue.

Steps 1-3 are deterministic and cached: :func:`load_patient_slices` stores
its result as a ``.npy`` file under :func:`pdlib.paths.cache_dir` (written
atomically), named by a sha256 over the bytes of the series' files, the
preprocessing parameters and :func:`cache_version` (the digest of the
ingestion code itself, so a change to decoding or to steps 1-3 misses every
old entry without anyone remembering to bump a number). A series is therefore
decoded once; a later epoch or run with the same files and parameters reads
the array, and changing a file or a parameter misses the cache. Which files
form the series and the sha256 of their bytes come from the study folder's
index (:mod:`pdlib.cohort_index`), so a warm load opens no DICOM file: it
stats the folder's files, reads the index and the cached array; a file whose
size, modification time, ctime or inode changed is read and hashed again
(the guarantee is stated in :mod:`pdlib.cohort_index`). The cache holds no
DICOM header value and may be deleted at any time. Steps 4-5 happen
per item in :class:`SliceDataset`, which holds everything in memory and does
no file I/O.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pdlib import atomic, paths, provenance
from pdlib.cohort_index import file_sha256, pvp_series
from pdlib.dicom import AIR_HU, DicomInputError, read_series_hu
from pdlib.vocab import SPLITS

#: Window of the study, in HU: level 35, width 500 (Han et al. 2025,
#: "CT imaging and data preprocessing").
HU_WINDOW = (-215.0, 285.0)

#: In-plane size of the stored slices before cropping (Han et al. 2025).
RESIZE = 256

#: Digest of the code that fills the cache, computed once per process (:func:`cache_version`).
_CACHE_VERSION: str | None = None

#: Slices resized per call, to bound memory on long series.
_RESIZE_CHUNK = 64


@dataclass
class PatientSlices:
    """Preprocessed slices of one patient.

    Attributes
    ----------
    patient_id : str
        Pseudonymous id from the manifest.
    label : int
        1 for the positive class (default PR, poor response), 0 otherwise.
    slices : ndarray of shape (n_slices, H, W), float32
        Windowed to [0, 1], resized, not cropped.
    recist : str
        RECIST category (CR, PR, SD, PD); used for reporting only.
    split : str
        ``"train"`` or ``"test"``.
    """

    patient_id: str
    label: int
    slices: np.ndarray = field(repr=False)
    recist: str = ""
    split: str = ""


# --------------------------------------------------------------------------
# steps 1-3 on arrays


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_stack(x, name: str = "volume") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3 or 0 in x.shape:
        raise ValueError(f"{name} must have shape (n_slices, rows, columns) with no empty axis, got {x.shape}")
    return x


def select_range(volume: np.ndarray, first: int | None = None, last: int | None = None) -> np.ndarray:
    """Slices ``first`` to ``last`` of a stack, both inclusive.

    Parameters
    ----------
    volume : ndarray of shape (n_slices, rows, columns)
        Slices in order along the slice normal (:class:`pdlib.dicom.Volume`).
    first, last : int, optional
        0-based inclusive indices: the manifest's ``first_slice`` and
        ``last_slice``, i.e. the abdomen-to-liver range of Han et al. 2025.
        None means the first / last slice.

    Returns
    -------
    selected : ndarray of shape (last - first + 1, rows, columns)
        A view of ``volume``.

    Raises
    ------
    ValueError
        If an index is negative, past the end, or ``first > last``.
    """
    volume = _check_stack(volume)
    n = volume.shape[0]
    lo = 0 if first is None else int(first)
    hi = n - 1 if last is None else int(last)
    if not 0 <= lo <= hi < n:
        raise ValueError(f"slice range first={first}, last={last} does not fit a series of {n} slices "
                         f"(valid: 0..{n - 1}, first <= last)")
    return volume[lo : hi + 1]


def window(hu: np.ndarray, *, low: float = HU_WINDOW[0], high: float = HU_WINDOW[1]) -> np.ndarray:
    """Clip HU to ``[low, high]`` and map linearly to ``[0, 1]`` (float32).

    The default is the study's window :data:`HU_WINDOW`.
    """
    if not high > low:
        raise ValueError(f"window needs high > low, got [{low}, {high}]")
    hu = np.asarray(hu, dtype=np.float32)
    # (clip(hu) - low) / (high - low) in float32, in place in one new array:
    # the same operations on the same values as the three-temporary
    # expression, so the same bits, several times faster on a 512 px series.
    out = np.clip(hu, low, high)
    np.subtract(out, low, out=out)
    np.divide(out, high - low, out=out)
    return out


def resize_slices(x: np.ndarray, size: int) -> np.ndarray:
    """Resize every slice to ``size`` x ``size``, bilinear with antialiasing.

    Parameters
    ----------
    x : ndarray of shape (n_slices, rows, columns)
    size : int
        Output side in pixels. Non-square slices are stretched to a square,
        as in the study ("resizing to 256 x 256 pixels").

    Returns
    -------
    resized : ndarray of shape (n_slices, size, size), float32
        Computed by ``torch.nn.functional.interpolate(mode="bilinear",
        antialias=True, align_corners=False)`` on CPU, which gives the same
        numbers on every run. When downsizing, antialiasing widens the
        triangle filter to the scale factor, so thin structures are averaged
        rather than skipped. A copy of ``x`` when it already has that size.
    """
    import torch
    import torch.nn.functional as F

    x = _check_stack(x, "x")
    size = _positive_int(size, "size")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[1:] == (size, size):
        return x.copy()
    source = torch.from_numpy(x)[:, None]
    out = np.empty((x.shape[0], size, size), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, x.shape[0], _RESIZE_CHUNK):
            chunk = source[start : start + _RESIZE_CHUNK]
            resized = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            out[start : start + len(chunk)] = resized[:, 0].numpy()
    return out


def resample_depth(x: np.ndarray, depth: int) -> np.ndarray:
    """Linearly resample a stack along the slice axis to ``depth`` slices.

    Parameters
    ----------
    x : ndarray of shape (n_slices, H, W)
    depth : int

    Returns
    -------
    resampled : ndarray of shape (depth, H, W), float32
        Output slice ``j`` lies at input position ``j * (n - 1) / (depth - 1)``,
        so the first and last slices are kept exactly; a single input slice is
        repeated.
    """
    x = _check_stack(x, "x").astype(np.float32, copy=False)
    depth = _positive_int(depth, "depth")
    n = x.shape[0]
    if n == 1:
        return np.repeat(x, depth, axis=0)
    where = np.linspace(0.0, n - 1.0, depth)
    below = np.clip(np.floor(where).astype(np.int64), 0, n - 2)
    weight = (where - below).astype(np.float32)[:, None, None]
    return ((1.0 - weight) * x[below] + weight * x[below + 1]).astype(np.float32)


def preprocess_volume(
    hu: np.ndarray, *, first: int | None = None, last: int | None = None, resize: int = RESIZE
) -> np.ndarray:
    """Steps 1-3: slice range, window, resize.

    Parameters
    ----------
    hu : ndarray of shape (n_slices, rows, columns)
        HU volume in slice order (:attr:`pdlib.dicom.Volume.hu`).
    first, last : int, optional
        Inclusive slice range (see :func:`select_range`).
    resize : int, default 256
        Output side in pixels.

    Returns
    -------
    slices : ndarray of shape (last - first + 1, resize, resize), float32
        In [0, 1]: :func:`select_range`, then :func:`window` with
        :data:`HU_WINDOW`, then :func:`resize_slices`.
    """
    selected = select_range(hu, first, last)
    windowed = window(selected)
    return np.clip(resize_slices(windowed, resize), 0.0, 1.0)


# --------------------------------------------------------------------------
# the cache


def cache_version() -> str:
    """What a cached array holds: the digest of this module's import closure.

    :func:`pdlib.provenance.module_code_digests` of ``pdlib.slices`` covers
    the DICOM decoding (:mod:`pdlib.dicom`), the series grouping and file
    digests (:mod:`pdlib.cohort_index`) and steps 1-3 here, by the meaning of
    their source (syntax trees without comments or docstrings). Any change
    to that code misses every old entry, so a cached array is always the one
    the current code would compute. Conservative: a change elsewhere in
    those modules (the augmentation of step 5, say) also misses, and costs
    one decode per series.
    """
    global _CACHE_VERSION
    if _CACHE_VERSION is None:
        _CACHE_VERSION = provenance.combine(provenance.module_code_digests([__name__]))
    return _CACHE_VERSION


def cache_key(files, **parameters) -> str:
    """Cache entry name for the given series files and preprocessing parameters.

    Parameters
    ----------
    files : sequence of path
        The files of one series; only their contents matter (not their names
        or order), so moving the data does not invalidate the cache.
    **parameters
        JSON-serialisable preprocessing parameters.

    Returns
    -------
    key : str
        Hex sha256 of :func:`cache_version`, the parameters and the sorted
        sha256 digests of the files' bytes.
    """
    return cache_key_from_digests([file_sha256(f) for f in files], **parameters)


def cache_key_from_digests(digests, **parameters) -> str:
    """:func:`cache_key` from the files' sha256 digests (hex), e.g. those of :mod:`pdlib.cohort_index`."""
    payload = {
        "version": cache_version(),
        "parameters": parameters,
        "files": sorted(str(d) for d in digests),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _read_cached(path: Path, *, size: int, patient: str) -> np.ndarray | None:
    """The cached slices, or None when absent or unusable (then rebuilt by the caller)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError):  # not cached yet
        return None
    except (OSError, ValueError, EOFError) as err:
        warnings.warn(f"patient {patient}: unreadable cache entry {path} ({err}); rebuilding it",
                      UserWarning, stacklevel=3)
        return None
    if array.dtype != np.float32 or array.ndim != 3 or array.shape[1:] != (size, size):
        warnings.warn(f"patient {patient}: cache entry {path} holds {array.dtype} {array.shape}; rebuilding it",
                      UserWarning, stacklevel=3)
        return None
    return array


def _optional_index(value) -> int | None:
    """A manifest slice index (nullable ``Int64``) as int or None."""
    import pandas as pd

    return None if value is None or pd.isna(value) else int(value)


# --------------------------------------------------------------------------
# patients and cohorts


def load_patient_slices(
    manifest, patient_id: str, *, resize: int = RESIZE, cache_dir: str | os.PathLike | None = None
) -> PatientSlices:
    """Steps 1-3 for one patient of a manifest, through the cache.

    Parameters
    ----------
    manifest : pdlib.manifest.Manifest
    patient_id : str
    resize : int, default 256
        Side of the stored slices.
    cache_dir : path, optional
        Default :func:`pdlib.paths.cache_dir`.

    Returns
    -------
    patient : PatientSlices
        ``label`` is 1 when the patient's response is
        ``manifest.positive_class``.

    Raises
    ------
    DicomInputError
        Naming the patient and the file, for any bad imaging input (see
        :func:`pdlib.dicom.read_series_hu`), or when the manifest's slice
        range does not fit the series.
    KeyError
        If ``patient_id`` is not in the manifest.
    """
    resize = _positive_int(resize, "resize")
    return _load_row(manifest, manifest.patient(patient_id), resize=resize, cache_dir=cache_dir)


def _load_row(manifest, row, *, resize: int, cache_dir) -> PatientSlices:
    """:func:`load_patient_slices` for a row of ``manifest.patients`` (a Series or a record dict)."""
    patient_id = row["patient_id"]
    slices = _patient_slices(manifest, patient_id, row, resize=resize, cache_dir=cache_dir)
    return PatientSlices(
        patient_id=str(patient_id),
        label=int(row["response"] == manifest.positive_class),
        slices=slices,
        recist=str(row["recist"]),
        split=str(row["split"]),
    )


def _patient_slices(manifest, patient_id, row, *, resize, cache_dir) -> np.ndarray:
    study = manifest.data_root / row["study_dir"]  # Manifest.study_path, without a second look-up of the row
    cache = Path(cache_dir if cache_dir is not None else paths.cache_dir())
    pvp = pvp_series(study, cache_dir=cache, patient=patient_id, override_uid=row.get("pvp_series_uid") or None)
    first, last = _optional_index(row.get("first_slice")), _optional_index(row.get("last_slice"))
    key = cache_key_from_digests(pvp.digests, first=first, last=last, resize=resize, window=list(HU_WINDOW),
                                 air_hu=AIR_HU)
    path = cache / "slices" / f"{key}.npy"
    cached = _read_cached(path, size=resize, patient=patient_id)
    if cached is not None:
        return cached
    volume = read_series_hu(pvp.series(), patient=patient_id, contents=pvp.contents)
    pvp.contents.clear()
    try:
        slices = preprocess_volume(volume.hu, first=first, last=last, resize=resize)
    except ValueError as err:
        raise DicomInputError(f"first_slice/last_slice from the manifest: {err}",
                              patient=patient_id, path=study) from err
    atomic.save_npy(path, slices)
    return slices


def load_cohort(
    manifest, *, split: str | None, resize: int = RESIZE, cache_dir: str | os.PathLike | None = None
) -> list[PatientSlices]:
    """:func:`load_patient_slices` for every patient of a split, in manifest order.

    Parameters
    ----------
    manifest : pdlib.manifest.Manifest
    split : {"train", "test"} or None
        None loads every patient.
    resize : int, default 256
    cache_dir : path, optional

    Returns
    -------
    patients : list of PatientSlices
    """
    table = manifest.patients
    if split is not None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        table = table[table["split"] == split]
    resize = _positive_int(resize, "resize")
    # one pass over the table's records: no per-patient look-up in the DataFrame
    return [_load_row(manifest, row, resize=resize, cache_dir=cache_dir) for row in table.to_dict("records")]


def load_patient_volume(
    manifest, patient_id: str, *, depth: int, size: int, cache_dir: str | os.PathLike | None = None
) -> np.ndarray:
    """The patient's preprocessed stack at a fixed depth, for the 3D arm.

    Parameters
    ----------
    manifest : pdlib.manifest.Manifest
    patient_id : str
    depth : int
        Number of slices of the output.
    size : int
        In-plane side of the output.
    cache_dir : path, optional

    Returns
    -------
    volume : ndarray of shape (depth, size, size), float32
        :func:`load_patient_slices` with ``resize=size`` (cached), then
        :func:`resample_depth`.
    """
    depth = _positive_int(depth, "depth")
    slices = load_patient_slices(manifest, patient_id, resize=size, cache_dir=cache_dir).slices
    return resample_depth(slices, depth)


# --------------------------------------------------------------------------
# steps 4-5: per item, in memory


@dataclass(frozen=True)
class Augment:
    """Random geometric augmentation of training slices (study: flipping,
    rotation, scaling, shifting). ``Augment.none()`` switches it off."""

    hflip: float = 0.5
    vflip: float = 0.0
    degrees: float = 15.0
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.05

    @classmethod
    def none(cls) -> "Augment":
        return cls(hflip=0.0, vflip=0.0, degrees=0.0, scale=(1.0, 1.0), translate=0.0)


def make_transform(*, crop: int, train: bool, augment: Augment | None = None):
    """torchvision v2 transform for one slice tensor ``[1, H, W]`` in [0, 1].

    Training: random affine (rotation, scale, shift), flips, random crop.
    Evaluation: centre crop only.
    """
    from torchvision.transforms import v2

    if not train:
        return v2.CenterCrop(crop)
    augment = Augment() if augment is None else augment
    steps = []
    if augment.degrees or augment.translate or augment.scale != (1.0, 1.0):
        steps.append(
            v2.RandomAffine(
                degrees=augment.degrees,
                translate=(augment.translate, augment.translate),
                scale=augment.scale,
            )
        )
    if augment.hflip:
        steps.append(v2.RandomHorizontalFlip(augment.hflip))
    if augment.vflip:
        steps.append(v2.RandomVerticalFlip(augment.vflip))
    steps.append(v2.RandomCrop(crop))
    return v2.Compose(steps)


class SliceDataset:
    """Every slice of every patient as one sample: ``(x, y, patient_index)``.

    All slices are held in memory as tensors built once here; an item is a
    lookup, a copy of one slice and the transform, with no decoding and no
    file I/O.

    Parameters
    ----------
    patients : list of PatientSlices
    crop : int
        Output size (square); must not exceed the stored slice size.
    train : bool
        Random crop and augmentation when True, centre crop when False.
    augment : Augment, optional
        Augmentation strengths for training; default :class:`Augment()`.

    Notes
    -----
    Items are ``(x, y, patient_index)`` with ``x`` a float32 tensor of shape
    ``(1, crop, crop)``, ``y`` the patient's label and ``patient_index`` the
    position of the patient in ``patients``. Random transforms draw from
    torch's global generator, so seeding torch fixes them.
    """

    def __init__(self, patients, *, crop: int, train: bool, augment: Augment | None = None):
        import torch

        self.patients = list(patients)
        self.crop = _positive_int(crop, "crop")
        self.train = bool(train)
        self.transform = make_transform(crop=self.crop, train=self.train, augment=augment)
        for pat in self.patients:
            shape = np.shape(pat.slices)
            if len(shape) != 3:
                raise ValueError(f"patient {pat.patient_id}: slices must have shape (n_slices, H, W), got {shape}")
            if min(shape[1:]) < self.crop:
                raise ValueError(
                    f"patient {pat.patient_id}: slices of {shape[1:]} px are smaller than crop {self.crop}"
                )
        # One tensor per patient, sharing memory with float32 arrays.
        self._tensors = [torch.from_numpy(np.ascontiguousarray(pat.slices, dtype=np.float32)) for pat in self.patients]
        counts = [int(t.shape[0]) for t in self._tensors]
        self._patient_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        self._slice_of = np.concatenate([np.arange(c, dtype=np.int64) for c in counts] or [np.zeros(0, np.int64)])
        self._labels = [int(pat.label) for pat in self.patients]

    def __len__(self) -> int:
        return int(self._patient_of.shape[0])

    def __getitem__(self, i: int):
        p, s = int(self._patient_of[i]), int(self._slice_of[i])
        # clone: the transform may return a view, and the stored slices must stay untouched
        x = self._tensors[p][s][None].clone()
        return self.transform(x), self._labels[p], p
