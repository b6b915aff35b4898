"""The digital twin: a synthetic cohort of DICOM CT studies shaped like the study's.

The hospital cohort of Han et al. (2025) is private. The twin stands in for it:

* a cohort table whose counts reproduce the paper's Table 1 exactly at 140
  patients (per split and response group: sex, Lauren type, CEA, CA19-9, cT,
  cN, cM, ages with the reported mean and range), with the paper's impossible
  cells corrected (:data:`TABLE1_CORRECTIONS`, ``pdlib/data/table1.yaml``);
* the three clinicians' calls on the 28 test patients, reproducing Table 3
  exactly (:func:`make_reader_calls`);
* one contrast-enhanced CT study per patient, written as real DICOM files
  (CT Image Storage, Explicit VR Little Endian): arterial, portal-venous,
  delayed and sometimes noncontrast series, with the naming, storage, ordering
  and folder-layout variety of real exports (:func:`generate_twin`);
* an image signal of known strength: the gastric tumour's bulk (thickness,
  extent, length, outward growth), necrotic fraction, enhancement
  heterogeneity and enhancement depend on a latent poor-response score
  ``latent = signal_strength * [response == PR] + N(0, 1)``, while the
  tumour's baseline size and position, body habitus, contrast timing and
  noise vary independently of the response. ``signal_strength`` is an effect size
  (d'): the best possible AUC from the generating variables ("oracle AUC")
  is ``Phi(signal_strength / sqrt(2))`` in expectation; the twin reports it
  empirically per split.

Everything is a deterministic function of the seed: the same seed gives the
same tables and byte-identical DICOM files (fixed UIDs derived from the seed,
fixed dates), whatever ``n_jobs``.

Layout of a twin folder (see :func:`generate_twin`)::

    dicom/<study_dir>/...          DICOM studies, one folder per patient
    manifest/manifest.yaml         cohort manifest (data_root: ../dicom)
    manifest/patients.csv
    manifest/readers.csv
    truth.csv                      generating variables per patient (no identifiers)
    masks/<patient_id>.npz         tumour mask aligned with the sorted PVP series
    identifiers.csv                the fake identifiers planted in the headers
    twin.json                      parameters, oracle AUCs, counts (written last)

References
----------
Han et al. 2025, "Deep learning progressive distill for predicting clinical
response to conversion therapy from preoperative CT images of advanced gastric
cancer patients", Scientific Reports. Cohort: "Data sets and study cohorts",
Table 1; readers: Table 3; PVP and the abdomen-to-liver slice range: "CT
imaging and data preprocessing".
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import os
import shutil
import struct
import time
import uuid
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydicom.charset import convert_encodings
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr, write_data_element
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian
from scipy.special import ndtr

from pdlib import atomic, paper, paths, phantom, provenance, stats
from pdlib.vocab import RESPONSE_GROUPS, SPLITS, recist_of_group

# --------------------------------------------------------------------------
# paper numbers and defaults


_TABLE1_FILE = paper.load_table1_reading()

#: Table 1 of Han et al. 2025 per ``"split/response"`` cell: ``n``, ``age``
#: (``mean``, ``min``, ``max``) and the counts of every covariate, spelled as
#: in the manifest schema, after :data:`TABLE1_CORRECTIONS`.
TABLE1: dict = _TABLE1_FILE["cells"]

#: The paper's impossible printed values and the reading used instead, each
#: with its reason (``table``, ``cell``, ``row``, ``printed``, ``used``,
#: ``reason``). Includes the Table 3 specificity of C20.
TABLE1_CORRECTIONS: tuple = tuple(_TABLE1_FILE["corrections"])

#: Table 3 of Han et al. 2025: per clinician, the PR (positive class)
#: patients called PR (``true_pr``) and the GR patients called GR
#: (``true_gr``), out of 14 each.
READER_COUNTS: dict = _TABLE1_FILE["readers"]

#: Assumed split of each response group into RECIST categories (the paper
#: gives none).
RECIST_SHARES: dict = _TABLE1_FILE["recist_shares"]

#: Cells of Table 1 in a fixed order.
CELLS = tuple(f"{split}/{group}" for split in SPLITS for group in RESPONSE_GROUPS)

#: Covariates of Table 1; in each tuple the categories are ordered along the
#: latent variable that draws them (see :func:`make_cohort_table`): the
#: values of :data:`pdlib.vocab.COVARIATE_CATEGORIES`, in another order.
CATEGORY_ORDER = {
    "sex": ("M", "F"),
    "lauren": ("intestinal", "undifferentiated", "diffuse_mixed"),
    "cea": ("normal", "elevated"),
    "ca199": ("normal", "elevated"),
    "ct_stage": ("T3", "T4a", "T4b"),
    "cn_stage": ("N0-N1", "N2-N3"),
    "cm_stage": ("M0", "M1"),
}

#: Columns of ``patients.csv`` (ARCHITECTURE.md, manifest schema).
PATIENT_COLUMNS = (
    "patient_id", "split", "response", "recist", "age", "sex", "lauren", "cea", "ca199",
    "ct_stage", "cn_stage", "cm_stage", "study_dir", "pvp_series_uid", "first_slice", "last_slice",
)
READER_COLUMNS = ("patient_id", "reader", "call")

DEFAULT_N_PATIENTS = 140
#: In-plane matrix of the default twin: 192 x 192 over a 320-480 mm field of
#: view (about 2 mm pixels) keeps the 140-patient twin under 1 GB.
DEFAULT_MATRIX = 192
#: Portal-venous slices per study: 52 x 5 mm = 260 mm, from the lung bases
#: to the lower abdomen.
DEFAULT_N_SLICES = 52
#: Effect size giving an expected oracle AUC of Phi(1.8 / sqrt(2)) = 0.90.
DEFAULT_SIGNAL = 1.8
DEFAULT_SEED = 2025
MATRIX_RANGE = (64, 512)
N_SLICES_RANGE = (12, 400)
#: Smallest patient count per split and response group in a scaled-down twin.
MIN_PER_CELL = 2
#: Length covered by the portal-venous series (mm); slice spacing is
#: ``COVERAGE_MM / n_slices`` (5 mm at the default 52 slices).
COVERAGE_MM = 260.0
#: Softness of the readers' preference for misreading ambiguous patients
#: (in units of the latent score's noise SD).
READER_AMBIGUITY_SCALE = 0.5

_GENERATOR = "pdlib.twin"
#: Namespace of the twin's name-based UUIDs (fixed; any UUID would do).
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "pd-study digital twin")
# independent random streams
_S_COHORT, _S_LATENT, _S_NUISANCE, _S_READERS, _S_RENDER, _S_EXPORT, _S_IDENTITY = range(1, 8)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def _uid(seed: int, *parts) -> str:
    """A fixed DICOM UID derived from the seed and ``parts``.

    A UUID-derived UID, ``2.25.<UUID as integer>`` (PS3.5 B.2), with a
    name-based (SHA-1, version 5) UUID so that it is reproducible.
    ``pydicom.uid.generate_uid(prefix=None, ...)`` would ignore its entropy
    sources and return a random UUID.
    """
    name = "\x1f".join([f"seed={int(seed)}", *map(str, parts)])
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


# --------------------------------------------------------------------------
# cohort table


def _largest_remainder(ideal: dict, total: int, minimum: int = 0) -> dict:
    """Integer counts summing to ``total``, close to ``ideal``, each >= ``minimum``."""
    keys = list(ideal)
    counts = {k: max(minimum, int(math.floor(ideal[k]))) for k in keys}
    while sum(counts.values()) < total:
        k = max(keys, key=lambda k: (ideal[k] - counts[k], -keys.index(k)))
        counts[k] += 1
    while sum(counts.values()) > total:
        k = max((k for k in keys if counts[k] > minimum), key=lambda k: (counts[k] - ideal[k], -keys.index(k)))
        counts[k] -= 1
    return counts


def cell_sizes(n_patients: int) -> dict:
    """Patients per ``"split/response"`` cell for a twin of ``n_patients``.

    Exactly Table 1 (73, 39, 14, 14) at 140; otherwise proportional, with at
    least :data:`MIN_PER_CELL` per cell.
    """
    base = {c: int(TABLE1[c]["n"]) for c in CELLS}
    total = sum(base.values())
    if n_patients == total:
        return base
    return _largest_remainder({c: base[c] * n_patients / total for c in CELLS}, n_patients, MIN_PER_CELL)


def _draw_ages(n: int, *, mean: float, low: int, high: int, rng: np.random.Generator) -> np.ndarray:
    """Integer ages in [low, high], including both ends when n >= 2, summing to round(mean * n)."""
    if n == 1:
        return np.array([int(np.clip(round(mean), low, high))])
    middle = np.clip(np.rint(rng.normal(mean, 9.0, size=n - 2)), low, high).astype(int)
    ages = np.concatenate([[low, high], middle]).astype(int)
    target = int(round(mean * n))
    while ages.sum() != target and n > 2:
        step = 1 if ages.sum() < target else -1
        movable = np.flatnonzero((ages[2:] + step >= low) & (ages[2:] + step <= high)) + 2
        if movable.size == 0:
            break
        ages[rng.choice(movable)] += step
    return ages


def _assign_by_rank(latent: np.ndarray, counts: dict, order: tuple) -> np.ndarray:
    """Categories with exact ``counts``: the lowest latent values get ``order[0]``."""
    values = np.repeat(np.array(order, dtype=object), [counts[c] for c in order])
    out = np.empty(latent.size, dtype=object)
    out[np.argsort(latent, kind="stable")] = values
    return out


def _latent_noise(n: int, seed: int) -> np.ndarray:
    """The latent score's noise, one value per patient in patient_id order."""
    return _rng(seed, _S_LATENT).standard_normal(n)


def _clinical_table(n_patients: int, seed: int) -> pd.DataFrame:
    """Table 1 columns (without the imaging columns), sorted by patient_id."""
    rng = _rng(seed, _S_COHORT)
    sizes = cell_sizes(n_patients)
    frames = []
    for cell in CELLS:
        n, spec = sizes[cell], TABLE1[cell]
        split, response = cell.split("/")
        scale = n / spec["n"]
        age = _draw_ages(n, mean=spec["age"]["mean"], low=spec["age"]["min"], high=spec["age"]["max"], rng=rng)
        z_age = (age - spec["age"]["mean"]) / 9.0
        burden = rng.standard_normal(n)  # shared disease burden: stages and markers co-vary
        e = rng.standard_normal((n, 8))

        def counts(name):
            margin = spec[name]
            if scale == 1.0:
                return {k: int(v) for k, v in margin.items()}
            return _largest_remainder({k: v * scale for k, v in margin.items()}, n)

        sex = _assign_by_rank(-0.5 * z_age + e[:, 0], counts("sex"), CATEGORY_ORDER["sex"])
        female = (sex == "F").astype(float)
        frame = pd.DataFrame({
            "split": split, "response": response, "age": age, "sex": sex,
            # diffuse-type cancers are commoner in younger patients and in women
            "lauren": _assign_by_rank(0.7 * female - 0.4 * z_age + e[:, 1], counts("lauren"), CATEGORY_ORDER["lauren"]),
            "cea": _assign_by_rank(0.5 * burden + 0.8 * e[:, 2], counts("cea"), CATEGORY_ORDER["cea"]),
            "ca199": _assign_by_rank(0.4 * burden + 0.4 * e[:, 2] + 0.8 * e[:, 3], counts("ca199"),
                                     CATEGORY_ORDER["ca199"]),
            "ct_stage": _assign_by_rank(0.7 * burden + 0.7 * e[:, 4], counts("ct_stage"), CATEGORY_ORDER["ct_stage"]),
            "cn_stage": _assign_by_rank(0.6 * burden + 0.8 * e[:, 5], counts("cn_stage"), CATEGORY_ORDER["cn_stage"]),
            "cm_stage": _assign_by_rank(0.6 * burden + 0.8 * e[:, 6], counts("cm_stage"), CATEGORY_ORDER["cm_stage"]),
        })
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    width = max(3, len(str(n_patients)))
    ids = [f"TW{i:0{width}d}" for i in range(1, n_patients + 1)]
    table.insert(0, "patient_id", np.array(ids, dtype=object)[rng.permutation(n_patients)])
    table = table.sort_values("patient_id", kind="stable").reset_index(drop=True)
    # RECIST within each group; the most extreme latent scores get CR (best) and PD (worst)
    noise = _latent_noise(n_patients, seed)
    recist = np.empty(n_patients, dtype=object)
    for cell in CELLS:
        split, response = cell.split("/")
        members = np.flatnonzero((table["split"] == split).to_numpy() & (table["response"] == response).to_numpy())
        shares = RECIST_SHARES[response]
        cats = tuple(shares)
        cnt = _largest_remainder({k: shares[k] * members.size for k in cats}, members.size)
        if split == "test" and members.size >= len(cats):  # every category in the test split
            for k in cats:
                if cnt[k] == 0:
                    other = max(cats, key=lambda c: cnt[c])
                    cnt[k], cnt[other] = 1, cnt[other] - 1
        order = recist_of_group(response)
        recist[members] = _assign_by_rank(noise[members] + 0.7 * rng.standard_normal(members.size), cnt, order)
    table.insert(3, "recist", recist)
    return table


def _nuisance_table(clinical: pd.DataFrame, *, n_slices: int, seed: int, bulk=None) -> pd.DataFrame:
    """Anatomy, tumour geometry and scan geometry per patient.

    None of it depends on the response, except through ``bulk`` (the
    poor-response probability ``p`` of :func:`make_truth_table`, one per
    patient): when given, the tumour's size is scaled by
    :func:`tumour_bulk` before it is placed along the stomach.
    """
    n = len(clinical)
    rng = _rng(seed, _S_NUISANCE)
    female = (clinical["sex"] == "F").to_numpy(dtype=float)
    stage = clinical["ct_stage"].map({"T3": 0, "T4a": 1, "T4b": 2}).to_numpy(dtype=float)
    size = rng.standard_normal(n)
    e = rng.standard_normal((n, 24))
    u = rng.uniform(size=(n, 12))
    slice_mm = COVERAGE_MM / n_slices
    t = {}
    t["half_width_mm"] = np.clip(160 + 14 * size - 8 * female, 125, 195)
    t["half_depth_mm"] = np.clip(112 + 11 * size + 5 * e[:, 0] - 5 * female, 88, 145)
    t["fat_mm"] = np.clip(18 + 7 * size + 4 * e[:, 1] + 4 * female, 6, 42)
    t["muscle_mm"] = np.clip(11 + 1.5 * e[:, 2] - 1.5 * female, 7, 15)
    t["body_x_mm"] = 6 * e[:, 3]
    t["body_y_mm"] = 8 * e[:, 4]
    t["trunk_mm"] = COVERAGE_MM * np.clip(1 + 0.05 * e[:, 5] - 0.03 * female, 0.88, 1.12)
    t["liver_top"] = np.clip(0.12 + 0.02 * e[:, 6], 0.08, 0.17)
    t["liver_bottom"] = np.clip(0.62 + 0.04 * e[:, 7], 0.52, 0.74)
    t["liver_size"] = np.clip(1 + 0.07 * e[:, 8], 0.85, 1.15)
    t["spleen_size"] = np.clip(1 + 0.15 * e[:, 9], 0.7, 1.3)
    t["stomach_size"] = 0.85 + 0.35 * u[:, 0]
    t["stomach_air"] = 0.1 + 0.35 * u[:, 1]
    t["kidney_shift"] = np.clip(0.02 * e[:, 10], -0.05, 0.05)
    t["gallbladder"] = (u[:, 2] < 0.85).astype(float)
    t["liver_nc_hu"] = np.clip(56 + 6 * e[:, 11], 35, 70)
    t["contrast_timing"] = 0.85 + 0.3 * u[:, 3]
    t["noise_hu"] = np.clip(12 + 2 * size + 1.5 * e[:, 12], 8, 18)
    # tumour geometry: larger with higher cT stage, independent of the response
    t["tumour_thickness_mm"] = np.clip((12 + 4 * stage) * np.exp(0.2 * e[:, 13]), 8, 32)
    t["tumour_half_extent_mm"] = 18 + 12 * u[:, 4] + 3 * stage
    t["tumour_half_length_mm"] = np.maximum(15 + 15 * u[:, 5] + 3 * stage, 0.8 * slice_mm)
    t["tumour_angle_deg"] = 360 * u[:, 6]
    t["tumour_outward_mm"] = np.array([0.0, 3.0, 7.0])[stage.astype(int)]
    if bulk is not None:
        for name, value in tumour_bulk(np.asarray(bulk, dtype=float), t, slice_mm=slice_mm).items():
            t[name] = value
    half = t["tumour_half_length_mm"] / t["trunk_mm"]
    lo = t["liver_top"] + 0.06 + half
    hi = t["liver_bottom"] - 0.08 - half
    t["tumour_d"] = np.where(hi > lo, lo + (hi - lo) * u[:, 7], 0.5 * (t["liver_top"] + t["liver_bottom"]))
    # scan geometry
    t["slice_mm"] = np.full(n, slice_mm)
    t["scan_top_z_mm"] = np.round(-80 + 140 * u[:, 8], 1)
    # the scan starts at or above the anatomy's top, so lung bases show above the liver
    t["top_z_mm"] = t["scan_top_z_mm"] + np.clip(6 * e[:, 14] - 6, -20, 0)
    t["fov_mm"] = np.clip(np.round(2 * t["half_width_mm"] + 50 + 40 * u[:, 9]), 320, 480)
    t["recon_x_mm"] = np.round(t["body_x_mm"] + 5 * e[:, 15], 1)
    t["recon_y_mm"] = np.round(t["body_y_mm"] + 5 * e[:, 16], 1)
    frame = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in t.items()})
    frame.insert(0, "patient_id", clinical["patient_id"].to_numpy())
    return frame


def tumour_bulk(p: np.ndarray, geometry: dict, *, slice_mm: float) -> dict:
    """Tumour size as a function of the poor-response probability ``p``.

    Bulky, deeply infiltrating gastric tumours respond less often to
    chemotherapy than small ones; the twin makes size the most visible part
    of its response signal. With ``p`` in [0, 1]: thickness times ``3 p -
    0.5`` (8 to 60 mm), in-plane half-extent times ``0.2 + 1.6 p`` (at least
    18 mm), length along the stomach times ``0.4 + 1.2 p`` (at least one
    slice spacing), and ``30 p`` mm more growth outward
    through the wall. A good responder (small ``p``) has a thin, short wall
    thickening; a poor responder a mass several centimetres across. Chosen so
    that demo-scale models pretrained on an independent twin pick the signal
    up but stay far from the oracle (see ``book/data.md``).

    Parameters
    ----------
    p : ndarray of shape (n_patients,)
    geometry : dict of arrays
        ``tumour_thickness_mm``, ``tumour_half_extent_mm``,
        ``tumour_half_length_mm`` and ``tumour_outward_mm`` drawn
        independently of the response.
    slice_mm : float
        Slice spacing. The floors are the smallest sizes of the response-free
        draw, so even the smallest tumour shows on a slice of the coarsest
        twin (matrix 64).

    Returns
    -------
    dict of arrays
        The four geometry entries, scaled.
    """
    return {
        "tumour_thickness_mm": np.clip(geometry["tumour_thickness_mm"] * (3.0 * p - 0.5), 8.0, 60.0),
        "tumour_half_extent_mm": np.maximum(geometry["tumour_half_extent_mm"] * (0.2 + 1.6 * p), 18.0),
        "tumour_half_length_mm": np.maximum(geometry["tumour_half_length_mm"] * (0.4 + 1.2 * p), slice_mm),
        "tumour_outward_mm": geometry["tumour_outward_mm"] + 30.0 * p,
    }


def pvp_positions(truth_row, *, n_slices: int) -> np.ndarray:
    """Patient z (mm) of the portal-venous slices, ascending (inferior to superior)."""
    top, step = float(truth_row["scan_top_z_mm"]), float(truth_row["slice_mm"])
    return np.round(top - step * np.arange(n_slices - 1, -1, -1), 4)


def _anatomy(row) -> phantom.PatientAnatomy:
    base = phantom.PatientAnatomy()
    values = {f: (row[f] if f in row else getattr(base, f)) for f in base.__dataclass_fields__}
    return phantom.PatientAnatomy.from_mapping(values)


def make_cohort_table(*, n_patients: int = DEFAULT_N_PATIENTS, n_slices: int = DEFAULT_N_SLICES,
                      seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The twin's ``patients.csv``: Table 1 of Han et al. 2025, patient by patient.

    Parameters
    ----------
    n_patients : int, default 140
        At 140 the counts of every covariate per split and response group,
        and each group's age mean (to 0.1 year), minimum and maximum, equal
        Table 1 (with :data:`TABLE1_CORRECTIONS`). Other sizes scale the
        group sizes proportionally (at least :data:`MIN_PER_CELL` each) and
        the covariate margins with them. At least 8.
    n_slices : int, default 52
        Portal-venous slices per study; sets ``first_slice``/``last_slice``.
    seed : int

    Returns
    -------
    patients : DataFrame of shape (n_patients, 16)
        Columns :data:`PATIENT_COLUMNS`, sorted by ``patient_id``
        (``TW001``, ...). Covariates are correlated within the exact margins
        through a Gaussian copula (cT, cN, cM, CEA and CA19-9 share a
        disease-burden factor; women and younger patients more often have
        diffuse-type tumours and women are younger). RECIST categories agree
        with the response group (:data:`RECIST_SHARES`), all four present in
        the test split. ``pvp_series_uid`` is filled for about 40% of the
        patients (the others rely on series naming); ``first_slice`` and
        ``last_slice`` bound the slices showing liver, as 0-based indices
        into the portal-venous series sorted by ascending position.

    Examples
    --------
    >>> cohort = make_cohort_table(n_patients=140, seed=2025)
    >>> cohort.groupby(["split", "response"]).size().to_dict()
    {('test', 'GR'): 14, ('test', 'PR'): 14, ('train', 'GR'): 73, ('train', 'PR'): 39}
    """
    _check_sizes(n_patients=n_patients, n_slices=n_slices)
    _check_seed_signal(seed=seed)
    clinical = _clinical_table(n_patients, seed)
    nuisance = _nuisance_table(clinical, n_slices=n_slices, seed=seed)
    table = clinical.copy()
    table["study_dir"] = table["patient_id"]
    uids, first, last = [], [], []
    for index, (row, nrow) in enumerate(zip(table.itertuples(index=False), nuisance.to_dict("records"))):
        style = _export_style(seed, index)
        uids.append(_uid(seed, row.patient_id, "series", "portal_venous") if style["manifest_uid"] else "")
        lo, hi = phantom.liver_slices(_anatomy(nrow), pvp_positions(nrow, n_slices=n_slices))
        first.append(lo)
        last.append(hi)
    table["pvp_series_uid"] = uids
    table["first_slice"] = first
    table["last_slice"] = last
    return table[list(PATIENT_COLUMNS)]


def _check_sizes(*, n_patients, n_slices, matrix=DEFAULT_MATRIX):
    if not isinstance(n_patients, (int, np.integer)) or n_patients < 4 * MIN_PER_CELL:
        raise ValueError(f"n_patients must be an integer >= {4 * MIN_PER_CELL} "
                         f"({MIN_PER_CELL} per split and response group), got {n_patients!r}")
    if not isinstance(n_slices, (int, np.integer)) or not N_SLICES_RANGE[0] <= n_slices <= N_SLICES_RANGE[1]:
        raise ValueError(f"n_slices must be an integer in {list(N_SLICES_RANGE)}, got {n_slices!r}")
    if not isinstance(matrix, (int, np.integer)) or not MATRIX_RANGE[0] <= matrix <= MATRIX_RANGE[1]:
        raise ValueError(f"matrix must be an integer in {list(MATRIX_RANGE)}, got {matrix!r}")


def _check_seed_signal(*, seed, signal_strength=0.0):
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not isinstance(signal_strength, (int, float, np.number)) or not np.isfinite(signal_strength) \
            or signal_strength < 0:
        raise ValueError(f"signal_strength must be a finite number >= 0, got {signal_strength!r}")


def _check_cohort(cohort: pd.DataFrame) -> pd.DataFrame:
    needed = ("patient_id", "split", "response", "sex", "ct_stage")
    if not isinstance(cohort, pd.DataFrame):
        raise TypeError(f"cohort must be a DataFrame from make_cohort_table, got {type(cohort).__name__}")
    missing = [c for c in needed if c not in cohort.columns]
    if missing:
        raise ValueError(f"cohort lacks column(s) {missing}; make it with make_cohort_table")
    bad = cohort.loc[~cohort["response"].isin(RESPONSE_GROUPS), "patient_id"].tolist()
    if bad:
        raise ValueError(f"patient(s) {bad[:5]}: response must be one of {RESPONSE_GROUPS}")
    return cohort.sort_values("patient_id", kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------
# truth and readers


def make_truth_table(cohort: pd.DataFrame, *, signal_strength: float = DEFAULT_SIGNAL,
                     n_slices: int = DEFAULT_N_SLICES, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Generating variables of every patient's CT appearance.

    Parameters
    ----------
    cohort : DataFrame
        From :func:`make_cohort_table` with the same ``seed`` and ``n_slices``.
    signal_strength : float, default 1.8
        Effect size ``s`` of the response on the latent score
        ``latent_score = s * label + latent_noise`` (``label`` 1 for PR, poor
        response; ``latent_noise`` standard normal). With ``p =
        Phi(latent_score - s / 2)``, the tumour's size follows
        :func:`tumour_bulk` and its ``necrotic_fraction = 0.05 + 0.15 p``,
        ``heterogeneity_hu = 4 + 20 p`` and ``enhancement_hu = 90 - 10 p``:
        poor responders have bulkier, more necrotic, more heterogeneous and
        slightly less enhancing tumours. At 0 the images carry no response
        signal.
    n_slices : int, default 52
    seed : int

    Returns
    -------
    truth : DataFrame, one row per patient (sorted by ``patient_id``)
        ``patient_id, split, response, recist, label, latent_noise,
        latent_score``, the three tumour appearance variables, then the
        nuisance variables (body habitus, organ landmarks, tumour geometry,
        contrast timing, noise, scan geometry; see
        :class:`pdlib.phantom.PatientAnatomy`) and ``first_slice``,
        ``last_slice``. No identifiers.
    """
    cohort = _check_cohort(cohort)
    _check_seed_signal(seed=seed, signal_strength=signal_strength)
    label = (cohort["response"] == "PR").to_numpy(dtype=int)
    noise = _latent_noise(len(cohort), seed)
    latent = signal_strength * label + noise
    p = ndtr(latent - signal_strength / 2)
    truth = pd.DataFrame({
        "patient_id": cohort["patient_id"], "split": cohort["split"], "response": cohort["response"],
        "recist": cohort["recist"] if "recist" in cohort else "",
        "label": label, "latent_noise": noise, "latent_score": latent,
        "necrotic_fraction": 0.05 + 0.15 * p,
        "heterogeneity_hu": 4.0 + 20.0 * p,
        "enhancement_hu": 90.0 - 10.0 * p,
    })
    nuisance = _nuisance_table(cohort, n_slices=n_slices, seed=seed, bulk=p)
    truth = pd.concat([truth, nuisance.drop(columns="patient_id")], axis=1)
    ranges = [phantom.liver_slices(_anatomy(r), pvp_positions(r, n_slices=n_slices)) for r in truth.to_dict("records")]
    truth["first_slice"] = [r[0] for r in ranges]
    truth["last_slice"] = [r[1] for r in ranges]
    return truth


def make_reader_calls(cohort: pd.DataFrame, *, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The clinicians' calls on the test patients (Table 3 of Han et al. 2025).

    Parameters
    ----------
    cohort : DataFrame
        From :func:`make_cohort_table` (same ``seed``).
    seed : int

    Returns
    -------
    readers : DataFrame with columns ``patient_id, reader, call``
        One row per test patient and reader (``C3``, ``C20``, ``C40``),
        ``call`` in ``GR``/``PR``. With PR as the positive class, at 14 + 14
        test patients the counts are those of Table 3: C3 14/14 PR and 12/14
        GR correct, C20 12/14 and 11/14 (the paper's 75.57% specificity is
        read as 78.57%, see :data:`TABLE1_CORRECTIONS`), C40 13/14 and 9/14.
        Smaller test groups keep the error rates (rounded). Which patients a
        reader gets wrong is seeded and leans towards ambiguous ones: a GR
        patient is misread with odds ``exp(latent_noise / 0.5)``, a PR
        patient with odds ``exp(-latent_noise / 0.5)``, so misread patients
        are those whose tumour looks like the other group's.
    """
    cohort = _check_cohort(cohort)
    noise = _latent_noise(len(cohort), seed)
    test = np.flatnonzero((cohort["split"] == "test").to_numpy())
    calls = {}
    for r_index, (reader, spec) in enumerate(READER_COUNTS.items()):
        rng = _rng(seed, _S_READERS, r_index)
        for group, key, other in (("PR", "true_pr", "GR"), ("GR", "true_gr", "PR")):
            members = test[(cohort["response"].to_numpy()[test] == group)]
            full = int(TABLE1[f"test/{group}"]["n"])
            n_right = int(spec[key]) if members.size == full else int(round(spec[key] / full * members.size))
            n_wrong = members.size - n_right
            lean = noise[members] if group == "GR" else -noise[members]
            keys = lean / READER_AMBIGUITY_SCALE + rng.gumbel(size=members.size)
            wrong = set(members[np.argsort(-keys, kind="stable")[:n_wrong]].tolist())
            for m in members:
                calls[(m, reader)] = other if m in wrong else group
    rows = [
        (cohort.at[m, "patient_id"], reader, calls[(m, reader)])
        for m in test for reader in READER_COUNTS
    ]
    return pd.DataFrame(rows, columns=list(READER_COLUMNS))


def oracle_auc(truth: pd.DataFrame) -> dict:
    """AUC of the latent score (the best score from the generating variables).

    The appearance variables are monotone functions of ``latent_score`` and
    the nuisance variables do not depend on the response, so no score built
    from the generating variables beats it in expectation.

    Returns
    -------
    auc : dict
        ``{"all": ..., "train": ..., "test": ...}`` (positive class PR).
    """
    out = {"all": stats.roc_auc(truth["label"], truth["latent_score"])}
    for split in SPLITS:
        part = truth[truth["split"] == split]
        out[split] = stats.roc_auc(part["label"], part["latent_score"]) if len(part) else float("nan")
    return out


def expected_oracle_auc(signal_strength: float) -> float:
    """``Phi(s / sqrt(2))``: the oracle AUC expected for effect size ``s``."""
    return float(ndtr(signal_strength / math.sqrt(2.0)))


# --------------------------------------------------------------------------
# export styles and identifiers

#: How the twin's studies vary, like exports from different scanners. Phase
#: names are templates (``mm``: slice thickness in mm); each study picks one
#: per phase. ``storage``: (pixel representation, bits stored, intercept, HU
#: outside the reconstruction circle or None, pixel padding value or None).
VENDOR_STYLES = (
    {
        "manufacturer": "GE MEDICAL SYSTEMS", "model": "Revolution CT", "kernel": "STANDARD",
        "study_description": "CT ABDOMEN W CONTRAST", "protocol": "5.1 ABDOMEN 3 PHASE",
        "names": {
            "noncontrast": ("PLAIN {mm:g}mm", "NON CON"), "arterial": ("ARTERIAL", "ART {mm:g}mm"),
            "portal_venous": ("PORTAL VENOUS", "PVP {mm:g}mm", "{mm:g}mm PV"),
            "delayed": ("DELAYED 3MIN", "DELAY 180s"),
        },
        "storage": (1, 16, -1024, -3024, -2000), "series_numbers": (2, 3, 4, 5), "files": "uid",
        "folder": "SE{number:04d}", "window": ("40", "400"), "charset": "ISO_IR 100", "spacing_tag": True,
    },
    {
        "manufacturer": "SIEMENS", "model": "SOMATOM Definition AS+", "kernel": "B30f",
        "study_description": "Abdomen^MultiPhase (Adult)", "protocol": "AbdomenMultiPhase",
        "names": {
            "noncontrast": ("ABD NATIVE B30f",), "arterial": ("ABD ARTERIAL B30f", "Arterial {mm:.1f} B31f"),
            "portal_venous": ("ABD VENOUS B30f", "PV {mm:.1f} B31f", "Venous {mm:.1f} B31f"),
            "delayed": ("ABD DELAYED B30f", "Late {mm:.1f} B31f"),
        },
        "storage": (0, 12, -1024, -1024, None), "series_numbers": (2, 4, 6, 8), "files": "im",
        "folder": "SERIES_{number}", "window": (["40", "50"], ["400", "350"]), "charset": "ISO_IR 100",
        "spacing_tag": False,
    },
    {
        "manufacturer": "Philips", "model": "iCT 256", "kernel": "B",
        "study_description": "CT Upper Abdomen Enhanced", "protocol": "Abdomen Enhanced",
        "names": {
            "noncontrast": ("Pre-contrast",), "arterial": ("Arterial", "Arterial Phase"),
            "portal_venous": ("Portal Venous {mm:g}mm", "PVP", "Portal"), "delayed": ("Delayed 3min", "Equilibrium"),
        },
        "storage": (0, 16, -8192, None, None), "series_numbers": (201, 301, 401, 501), "files": "im_",
        "folder": "S{number}", "window": ("50", "350"), "charset": "ISO_IR 100", "spacing_tag": True,
    },
    {
        "manufacturer": "TOSHIBA", "model": "Aquilion ONE", "kernel": "FC08",
        "study_description": "上腹部增强CT", "protocol": "上腹部增强",
        "names": {
            "noncontrast": ("平扫 {mm:.1f}mm",), "arterial": ("动脉期 {mm:.1f}mm",),
            "portal_venous": ("门脉期 {mm:.1f}mm", "门静脉期 {mm:.1f}mm"), "delayed": ("延迟期 {mm:.1f}mm",),
        },
        "storage": (1, 16, 0, -2048, None), "series_numbers": (2, 3, 4, 5), "files": "numbered",
        "folder": "Series{number}", "window": ("40", "350"), "charset": "ISO_IR 192", "spacing_tag": False,
    },
    {
        # the phase only in the protocol name; the description is generic
        "manufacturer": "SIEMENS", "model": "SOMATOM Force", "kernel": "Br40d",
        "study_description": "CT Abdomen", "protocol": None,
        "names": {phase: ("Abdomen {mm:.1f} Br40d",) for phase in phantom.PHASES},
        "protocols": {"noncontrast": "ABD_NATIVE", "arterial": "ABD_ARTERIAL", "portal_venous": "ABD_PORTAL",
                      "delayed": "ABD_DELAYED"},
        "storage": (0, 12, -1024, -1024, None), "series_numbers": (3, 5, 7, 9), "files": "uid",
        "folder": "{number:03d}", "window": ("40", "400"), "charset": "ISO_IR 100", "spacing_tag": True,
    },
)

#: Order of InstanceNumber relative to position: cranio-caudal numbering is
#: the commonest on scanners; some exports are caudo-cranial or unordered.
INSTANCE_ORDERS = ("descending", "ascending", "shuffled")

_SURNAMES = (
    ("WANG", "王"), ("ZHANG", "张"), ("LIU", "刘"), ("CHEN", "陈"), ("YANG", "杨"), ("HUANG", "黄"),
    ("ZHAO", "赵"), ("ZHOU", "周"), ("SUN", "孙"), ("ZHU", "朱"), ("GUO", "郭"), ("LIN", "林"),
    ("GAO", "高"), ("LUO", "罗"), ("ZHENG", "郑"), ("XIE", "谢"), ("TANG", "唐"), ("HAN", "韩"),
    ("FENG", "冯"), ("DENG", "邓"), ("CAO", "曹"), ("PENG", "彭"), ("ZENG", "曾"), ("XIAO", "肖"),
)
_GIVEN_M = (
    ("JIAN", "建"), ("GUO", "国"), ("MING", "明"), ("WEI", "伟"), ("HUA", "华"), ("QIANG", "强"),
    ("JUN", "军"), ("PING", "平"), ("YONG", "勇"), ("HAI", "海"), ("DONG", "东"), ("BIN", "斌"),
    ("LIANG", "亮"), ("ZHI", "志"), ("WEN", "文"), ("XIN", "新"), ("CHENG", "成"), ("FENG", "峰"),
)
_GIVEN_F = (
    ("LI", "丽"), ("FANG", "芳"), ("XIU", "秀"), ("YING", "英"), ("HONG", "红"), ("MEI", "梅"),
    ("JUAN", "娟"), ("LAN", "兰"), ("XIA", "霞"), ("YAN", "燕"), ("QIN", "琴"), ("HUI", "慧"),
)
#: A fictional hospital, spelled as different systems spell it.
_INSTITUTIONS = ("YUNFENG RIVERSIDE HOSPITAL", "Yunfeng Riverside Hospital", "YUNFENG RIVERSIDE HOSP.")
#: Study dates span the recruitment period (Han et al. 2025: September 2017 to November 2022).
STUDY_DATE_RANGE = (dt.date(2017, 9, 1), dt.date(2022, 11, 30))


def _export_style(seed: int, index: int) -> dict:
    """Per-patient export choices; cycles guarantee every variant in small twins."""
    offsets = _rng(seed, _S_EXPORT).integers(0, 60, size=5)
    rng = _rng(seed, _S_EXPORT, index + 1)
    vendor = VENDOR_STYLES[(index + offsets[0]) % len(VENDOR_STYLES)]
    phases = ("arterial", "portal_venous", "delayed")
    if (index + offsets[1]) % 2 == 0:
        phases = ("noncontrast",) + phases
    names = {p: vendor["names"][p][int(rng.integers(len(vendor["names"][p])))] for p in phantom.PHASES}
    orders = {p: INSTANCE_ORDERS[(index + k + offsets[2]) % len(INSTANCE_ORDERS)]
              for k, p in enumerate(phantom.PHASES)}
    return {
        "vendor": vendor, "phases": phases, "names": names, "orders": orders,
        "layout": ("subfolders", "flat")[(index + offsets[3]) % 2],
        "manifest_uid": (index + offsets[4]) % 5 in (0, 2),
        "timing_s": {"noncontrast": -60.0, "arterial": float(rng.uniform(30, 40)),
                     "portal_venous": float(rng.uniform(62, 78)), "delayed": float(rng.uniform(170, 190))},
        "file_seed": int(rng.integers(2**31)),
        "study_time": int(rng.integers(8 * 3600, 17 * 3600)),
    }


def make_identifiers(cohort: pd.DataFrame, *, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Fake but realistic header identifiers, one row per patient.

    Parameters
    ----------
    cohort : DataFrame
        From :func:`make_cohort_table` (uses ``patient_id``, ``age``, ``sex``).
    seed : int

    Returns
    -------
    identifiers : DataFrame
        ``patient_id`` and the values planted in the headers: PatientName
        (Chinese-style, DICOM PN; with an ideographic group where the study
        uses UTF-8), PatientID (fake MRN), PatientBirthDate (consistent with
        the age at the study date), AccessionNumber, StudyDate (September
        2017 to November 2022), InstitutionName,
        ReferringPhysicianName. All differ from the pseudonymous ids. The
        headers' ``(0020,0010) Study ID`` repeats the AccessionNumber.
    """
    cohort = _check_cohort(cohort)
    rng = _rng(seed, _S_IDENTITY)
    days = (STUDY_DATE_RANGE[1] - STUDY_DATE_RANGE[0]).days
    used_names, used_ids, rows = set(), set(), []
    for index, row in enumerate(cohort.itertuples(index=False)):
        style = _export_style(seed, index)
        ideographic = style["vendor"]["charset"] == "ISO_IR 192"

        def person(female: bool):
            while True:
                family = _SURNAMES[rng.integers(len(_SURNAMES))]
                pool = _GIVEN_F if female else _GIVEN_M
                g1, g2 = pool[rng.integers(len(pool))], pool[rng.integers(len(pool))]
                alpha = f"{family[0]}^{g1[0]}{g2[0]}"
                if alpha not in used_names and g1 != g2:
                    used_names.add(alpha)
                    return alpha + (f"={family[1]}^{g1[1]}{g2[1]}" if ideographic else "")

        name = person(row.sex == "F")
        while True:
            mrn = f"00{int(rng.integers(10**7, 10**8))}"
            if mrn not in used_ids:
                used_ids.add(mrn)
                break
        study = STUDY_DATE_RANGE[0] + dt.timedelta(days=int(rng.integers(days + 1)))
        age = int(row.age)
        birth = _birth_date(study, age, int(rng.integers(365)))
        rows.append({
            "patient_id": row.patient_id,
            "PatientName": name,
            "PatientID": mrn,
            "PatientBirthDate": birth.strftime("%Y%m%d"),
            "AccessionNumber": f"CT{study:%y%m%d}{int(rng.integers(1000, 10000))}",
            "StudyDate": study.strftime("%Y%m%d"),
            "InstitutionName": _INSTITUTIONS[int(rng.integers(len(_INSTITUTIONS)))],
            "ReferringPhysicianName": person(bool(rng.integers(2))).split("=")[0],
        })
    return pd.DataFrame(rows)


def _birth_date(study: dt.date, age: int, days_back: int) -> dt.date:
    """A birth date giving exactly ``age`` completed years on ``study``."""
    try:
        anniversary = study.replace(year=study.year - age)
    except ValueError:  # 29 February
        anniversary = study.replace(year=study.year - age, day=28)
    birth = anniversary - dt.timedelta(days=days_back)
    while _age_on(birth, study) != age:
        birth += dt.timedelta(days=1 if _age_on(birth, study) > age else -1)
    return birth


def _age_on(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# --------------------------------------------------------------------------
# rendering and DICOM writing


def _ds(value: float) -> str:
    """A decimal string of at most 16 characters (PS3.5 6.2, VR DS)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text if len(text) <= 16 else f"{value:.9g}"


def _add_seconds(hhmmss: str, seconds: float) -> str:
    base = dt.datetime(2000, 1, 1, int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:6]))
    t = base + dt.timedelta(seconds=round(seconds, 2))
    return t.strftime("%H%M%S") + f".{t.microsecond // 10000:02d}"


def _to_stored(hu: np.ndarray, storage, inside_circle: np.ndarray) -> np.ndarray:
    """HU -> stored values: ``round(HU - (0028,1052) Rescale Intercept)`` (slope 1)."""
    signed, bits, intercept, outside_hu, padding = storage
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    stored = np.clip(np.rint(hu - intercept), lo, hi)
    if outside_hu is not None:
        fill = padding if padding is not None else outside_hu - intercept
        stored = np.where(inside_circle[None], stored, fill)
    return stored.astype(np.int16 if signed else np.uint16)


def _render(truth_row: dict, *, matrix: int, n_slices: int, seed: int, index: int):
    """HU volumes per phase (ascending z), the PVP tumour mask and the grid."""
    anatomy = _anatomy(truth_row)
    rng = _rng(seed, _S_RENDER, index + 1)
    fov = float(truth_row["fov_mm"])
    spacing = float(_ds(fov / matrix))
    x = float(truth_row["recon_x_mm"]) - fov / 2 + spacing / 2 + spacing * np.arange(matrix)
    y = float(truth_row["recon_y_mm"]) - fov / 2 + spacing / 2 + spacing * np.arange(matrix)
    x, y = np.round(x, 4), np.round(y, 4)
    z = pvp_positions(truth_row, n_slices=n_slices)
    slice_mm = float(truth_row["slice_mm"])
    labels = phantom.render_labels(anatomy, x_mm=x, y_mm=y, z_mm=z, rng=rng)
    texture = phantom.tumour_texture(labels, anatomy, spacing_mm=(slice_mm, spacing, spacing), rng=rng)
    mask = np.isin(labels, [phantom.LABELS["tumour"], phantom.LABELS["tumour_necrotic"]])
    liver = np.flatnonzero((labels == phantom.LABELS["liver"]).any(axis=(1, 2)))
    first, last = int(truth_row["first_slice"]), int(truth_row["last_slice"])
    pid = truth_row["patient_id"]
    if liver.size == 0 or (int(liver[0]), int(liver[-1])) != (first, last):
        raise RuntimeError(f"patient {pid}: rendered liver slices {liver[[0, -1]] if liver.size else '(none)'} "
                           f"differ from the manifest range [{first}, {last}]")
    if not mask[first:last + 1].any():
        raise RuntimeError(f"patient {pid}: the tumour is not rendered inside the slice range [{first}, {last}]")
    # other phases: half as many slices, twice as thick, centred on the liver
    m = max(3, n_slices // 4)
    k0 = int(np.clip((first + last) // 2 - m, 0, n_slices - 2 * m))
    volumes = {}
    for phase in phantom.PHASES:
        if phase == "portal_venous":
            hu = phantom.phase_hu(labels, anatomy, phase=phase, texture=texture)
            hu = phantom.add_noise(hu, noise_hu=anatomy.noise_hu, rng=rng)
            volumes[phase] = (hu, z, slice_mm)
        else:
            part = phantom.phase_hu(labels[k0:k0 + 2 * m], anatomy, phase=phase, texture=texture[k0:k0 + 2 * m])
            thick = part.reshape(m, 2, matrix, matrix).mean(axis=1)
            thick = phantom.add_noise(thick, noise_hu=anatomy.noise_hu / math.sqrt(2), rng=rng)
            zz = np.round(z[k0:k0 + 2 * m].reshape(m, 2).mean(axis=1), 4)
            volumes[phase] = (thick, zz, 2 * slice_mm)
    xx, yy = np.meshgrid(x - float(truth_row["recon_x_mm"]), y - float(truth_row["recon_y_mm"]))
    inside_circle = xx**2 + yy**2 <= (fov / 2) ** 2
    return volumes, mask, (x[0], y[0], spacing), inside_circle


def _save_npz(path: Path, arrays: dict) -> None:
    """``np.savez_compressed`` with fixed zip timestamps (byte-reproducible), atomically."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)
    atomic.write_bytes(path, buffer.getvalue())


def _write_patient(job: dict) -> dict:
    """Render one patient and write its study and tumour mask (runs in a worker)."""
    row, truth_row, ident = job["cohort_row"], job["truth_row"], job["identifiers"]
    seed, index, matrix, n_slices = job["seed"], job["index"], job["matrix"], job["n_slices"]
    pid = row["patient_id"]
    style = _export_style(seed, index)
    vendor = style["vendor"]
    volumes, mask, (x0, y0, spacing), inside_circle = _render(truth_row, matrix=matrix, n_slices=n_slices,
                                                                seed=seed, index=index)
    study_root = Path(job["dicom_root"]) / row["study_dir"]
    study_root.mkdir(parents=True, exist_ok=True)
    file_rng = np.random.default_rng(style["file_seed"])
    study_uid = _uid(seed, pid, "study")
    frame_uid = _uid(seed, pid, "frame-of-reference")
    seconds = style["study_time"]
    study_time = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
    signed, bits, intercept, _, padding = vendor["storage"]
    n_files, n_bytes = 0, 0
    series_info = {}
    for p_index, phase in enumerate(phantom.PHASES):
        if phase not in style["phases"]:
            continue
        hu, z, thickness = volumes[phase]
        stored = _to_stored(hu, vendor["storage"], inside_circle)
        number = vendor["series_numbers"][p_index]
        series_uid = _uid(seed, pid, "series", phase)
        description = style["names"][phase].format(mm=round(thickness, 2))
        protocol = vendor["protocols"][phase] if vendor.get("protocols") else vendor["protocol"]
        n = len(z)
        order = style["orders"][phase]
        if order == "ascending":
            instance = np.arange(1, n + 1)
        elif order == "descending":
            instance = np.arange(n, 0, -1)
        else:
            instance = file_rng.permutation(n) + 1
        file_numbers = file_rng.permutation(n)
        folder = study_root / vendor["folder"].format(number=number) if style["layout"] == "subfolders" else study_root
        folder.mkdir(parents=True, exist_ok=True)
        series_time = _add_seconds(study_time, 180 + style["timing_s"][phase])
        common = _common_attributes(vendor=vendor, ident=ident, row=row, phase=phase, description=description,
                                    protocol=protocol, study_uid=study_uid, series_uid=series_uid,
                                    frame_uid=frame_uid, number=number, thickness=thickness,
                                    spacing=spacing, matrix=matrix, series_time=series_time,
                                    study_time=study_time, inject_time=_add_seconds(study_time, 180),
                                    fov=float(truth_row["fov_mm"]))
        writer = SeriesEncoder(common, padding=padding)
        for k in range(n):
            sop_uid = _uid(seed, pid, "image", phase, k)
            name = _file_name(vendor["files"], sop_uid=sop_uid, number=int(file_numbers[k]) + 1, series=number)
            data = writer.encode(sop_uid=sop_uid, instance=int(instance[k]), position=(x0, y0, z[k]),
                                 pixels=stored[k])
            _write_new_file(folder / name, data)
            n_files += 1
            n_bytes += len(data)
        series_info[phase] = series_uid
    pvp_hu = volumes["portal_venous"][0]
    _save_npz(Path(job["mask_root"]) / f"{pid}.npz", {
        "mask": mask, "slice_positions": volumes["portal_venous"][1],
    })
    return {
        "patient_id": pid, "n_files": n_files, "bytes": n_bytes, "n_series": len(series_info),
        "tumour_voxels": int(mask.sum()), "tumour_slices": int(mask.any(axis=(1, 2)).sum()),
        "tumour_mean_hu": float(pvp_hu[mask].mean()),
    }


#: Tags of the elements :meth:`SeriesEncoder.encode` writes per image, ascending.
_IMAGE_TAGS = (0x00080018, 0x00200013, 0x00200032, 0x00201041, 0x7FE00010)


def _element(tag: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    """One data element in Explicit VR Little Endian (PS3.5 7.1.2), value padded to even length."""
    if len(value) % 2:
        value += pad
    if vr in (b"OB", b"OW"):
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def _write_new_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file (mode :data:`pdlib.atomic.FILE_MODE`).

    Not atomic: only for files in the twin's private work folder, which is
    renamed into place once complete (:func:`generate_twin`).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, atomic.FILE_MODE)
    try:
        os.fchmod(fd, atomic.FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


#: Encoded shared elements, by value and encoding context (see :class:`SeriesEncoder`).
_ELEMENT_BYTES: dict = {}


class SeriesEncoder:
    """Encode the images of one series as DICOM files (Part 10), fast.

    The attributes shared by every image, and the file meta elements but
    ``(0002,0003) Media Storage SOP Instance UID``, are encoded once with
    pydicom; per image only ``(0008,0018) SOP Instance UID``, ``(0020,0013)
    Instance Number``, ``(0020,0032) Image Position (Patient)``, ``(0020,1041)
    Slice Location``, ``(7FE0,0010) Pixel Data`` and the file meta's
    ``(0002,0003)`` and group length are encoded (directly: strings padded
    to even length, PS3.5 6.2), and the byte strings are joined in ascending
    tag order (PS3.5 7.1). :meth:`dataset` builds the same image as a
    ``pydicom.Dataset``; ``dataset(...).save_as(buf, enforce_file_format=True)``
    gives the same bytes as :meth:`encode` (checked by the tests).

    Parameters
    ----------
    common : list of (keyword, value)
        Attributes shared by the series (from ``_common_attributes``).
    padding : int or None
        ``(0028,0120) Pixel Padding Value`` (stored value), if any.
    """

    def __init__(self, common, *, padding=None):
        self.common = list(common) + ([("PixelPaddingValue", int(padding))] if padding is not None else [])
        values = dict(self.common)
        charset = values.get("SpecificCharacterSet", "ISO_IR 6")
        self.encodings = convert_encodings(charset)
        self.pixel_vr = "OW"
        # what an element's bytes depend on: its value, the character set and (for the
        # ambiguous (0028,0120)) the pixel representation; series share most elements
        context = (repr(charset), repr(values.get("PixelRepresentation")))
        keys = {keyword: (context, keyword, type(value).__name__, repr(value)) for keyword, value in self.common}
        missing = [(keyword, value) for keyword, value in self.common if keys[keyword] not in _ELEMENT_BYTES]
        if missing:
            base = Dataset()
            for keyword, value in missing:
                setattr(base, keyword, value)
            for keyword in ("SpecificCharacterSet", "PixelRepresentation"):
                if keyword in values and keyword not in base:
                    setattr(base, keyword, values[keyword])
            correct_ambiguous_vr(base, is_little_endian=True)  # (0028,0120) is US or SS by Pixel Representation
            encoded = self._encode_each(base)
            if len(_ELEMENT_BYTES) > 20000:
                _ELEMENT_BYTES.clear()
            for keyword, _ in missing:
                tag = int(tag_for_keyword(keyword))
                _ELEMENT_BYTES[keys[keyword]] = (tag, encoded[tag])
        self.parts = dict(_ELEMENT_BYTES[keys[keyword]] for keyword, _ in self.common)
        if set(self.parts) & set(_IMAGE_TAGS):
            raise ValueError("the common attributes include a per-image attribute")
        # the shared elements between the per-image ones: segments[i] precedes _IMAGE_TAGS[i]
        bounds = (-1,) + _IMAGE_TAGS + (1 << 32,)
        self.segments = [b"".join(self.parts[t] for t in sorted(self.parts) if bounds[i] < t < bounds[i + 1])
                         for i in range(len(bounds) - 1)]
        meta = self._encode_each(self._file_meta("0"))
        self.meta_head = b"".join(meta[t] for t in sorted(meta) if 0x00020000 < t < 0x00020003)
        self.meta_rest = b"".join(meta[t] for t in sorted(meta) if t > 0x00020003)

    def _encode_each(self, ds: Dataset) -> dict:
        parts = {}
        for elem in ds:
            fp = DicomBytesIO()
            fp.is_little_endian, fp.is_implicit_VR = True, False
            write_data_element(fp, elem, self.encodings)
            parts[int(elem.tag)] = fp.getvalue()
        return parts

    def _variable(self, *, sop_uid, instance, position, pixels) -> Dataset:
        ds = Dataset()
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = int(instance)
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.SliceLocation = _ds(position[2])
        ds.add_new(0x7FE00010, self.pixel_vr, np.ascontiguousarray(pixels).tobytes())
        return ds

    @staticmethod
    def _file_meta(sop_uid: str) -> FileMetaDataset:
        meta = FileMetaDataset()
        meta.FileMetaInformationVersion = b"\x00\x01"
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "PDLIB_TWIN"
        return meta

    def dataset(self, *, sop_uid, instance, position, pixels) -> Dataset:
        """The image as a ``pydicom.Dataset`` with its file meta (slow path)."""
        ds = Dataset()
        for keyword, value in self.common:
            setattr(ds, keyword, value)
        for elem in self._variable(sop_uid=sop_uid, instance=instance, position=position, pixels=pixels):
            ds.add(elem)
        ds.file_meta = self._file_meta(sop_uid)
        return ds

    def encode(self, *, sop_uid, instance, position, pixels) -> bytes:
        """Bytes of the Part 10 file: preamble, ``DICM``, file meta, data set."""
        uid = sop_uid.encode("ascii")
        meta = self.meta_head + _element(0x00020003, b"UI", uid, b"\x00") + self.meta_rest
        pixel_bytes = np.ascontiguousarray(pixels).tobytes()
        seg = self.segments
        return b"".join((
            b"\x00" * 128, b"DICM",
            _element(0x00020000, b"UL", struct.pack("<I", len(meta)), b""), meta,
            seg[0], _element(0x00080018, b"UI", uid, b"\x00"),
            seg[1], _element(0x00200013, b"IS", str(int(instance)).encode("ascii"), b" "),
            seg[2], _element(0x00200032, b"DS", "\\".join(_ds(v) for v in position).encode("ascii"), b" "),
            seg[3], _element(0x00201041, b"DS", _ds(position[2]).encode("ascii"), b" "),
            seg[4], _element(0x7FE00010, self.pixel_vr.encode("ascii"), pixel_bytes, b"\x00"),
            seg[5],
        ))


def _file_name(kind: str, *, sop_uid: str, number: int, series: int) -> str:
    """File name of an image; ``number`` is a random permutation index, unrelated to position."""
    if kind == "uid":
        return f"{sop_uid}.dcm"
    if kind == "im":
        return f"IM{series:03d}{number:05d}"
    if kind == "im_":
        return f"IM_{series:04d}_{number:04d}"
    return f"{series:02d}{number:05d}.dcm"


def _common_attributes(*, vendor, ident, row, phase, description, protocol, study_uid, series_uid, frame_uid,
                       number, thickness, spacing, matrix, study_time, series_time, inject_time, fov):
    """(keyword, value) pairs shared by every image of a series (CT Image IOD, PS3.3 A.3)."""
    signed, bits, intercept, _, _ = vendor["storage"]
    age = int(row["age"])
    window_center, window_width = vendor["window"]
    attrs = [
        ("SpecificCharacterSet", vendor["charset"]),
        ("ImageType", ["ORIGINAL", "PRIMARY", "AXIAL"]),
        ("SOPClassUID", CTImageStorage),
        ("StudyDate", ident["StudyDate"]), ("SeriesDate", ident["StudyDate"]),
        ("AcquisitionDate", ident["StudyDate"]), ("ContentDate", ident["StudyDate"]),
        ("StudyTime", study_time), ("SeriesTime", series_time),
        ("AcquisitionTime", series_time), ("ContentTime", series_time),
        ("AccessionNumber", ident["AccessionNumber"]),
        ("Modality", "CT"),
        ("Manufacturer", vendor["manufacturer"]),
        ("InstitutionName", ident["InstitutionName"]),
        ("ReferringPhysicianName", ident["ReferringPhysicianName"]),
        ("StudyDescription", vendor["study_description"]),
        ("SeriesDescription", description),
        ("ManufacturerModelName", vendor["model"]),
        ("PatientName", ident["PatientName"]),
        ("PatientID", ident["PatientID"]),
        ("PatientBirthDate", ident["PatientBirthDate"]),
        ("PatientSex", row["sex"]),
        ("PatientAge", f"{age:03d}Y"),
        ("BodyPartExamined", "ABDOMEN"),
        ("SliceThickness", _ds(thickness)),
        ("KVP", "120"),
        ("ReconstructionDiameter", _ds(fov)),
        ("ConvolutionKernel", vendor["kernel"]),
        ("PatientPosition", "HFS"),
        ("ProtocolName", protocol),
        ("StudyInstanceUID", study_uid),
        ("SeriesInstanceUID", series_uid),
        ("StudyID", ident["AccessionNumber"]),
        ("SeriesNumber", int(number)),
        ("AcquisitionNumber", 1),
        ("ImageOrientationPatient", ["1", "0", "0", "0", "1", "0"]),
        ("FrameOfReferenceUID", frame_uid),
        ("PositionReferenceIndicator", ""),
        ("SamplesPerPixel", 1),
        ("PhotometricInterpretation", "MONOCHROME2"),
        ("Rows", int(matrix)), ("Columns", int(matrix)),
        ("PixelSpacing", [_ds(spacing), _ds(spacing)]),
        ("BitsAllocated", 16), ("BitsStored", int(bits)), ("HighBit", int(bits) - 1),
        ("PixelRepresentation", int(signed)),
        ("WindowCenter", window_center), ("WindowWidth", window_width),
        ("RescaleIntercept", _ds(intercept)), ("RescaleSlope", "1"), ("RescaleType", "HU"),
    ]
    if phase != "noncontrast":
        attrs += [("ContrastBolusAgent", "IOHEXOL 350"), ("ContrastBolusRoute", "IV"),
                  ("ContrastBolusStartTime", inject_time)]
    if vendor["spacing_tag"]:
        attrs.append(("SpacingBetweenSlices", _ds(thickness)))
    return attrs


# --------------------------------------------------------------------------
# tables on disk


def _csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n", float_format="%.6g")


def manifest_yaml(*, name: str, data_root: str) -> str:
    """Text of a ``manifest.yaml`` for the twin (keys of ARCHITECTURE.md)."""
    return (
        "# Cohort manifest generated by pdlib.twin; regenerate rather than edit.\n"
        f"name: {json.dumps(name)}\n"
        f"data_root: {data_root}\n"
        "patients: patients.csv\n"
        "readers: readers.csv\n"
        "positive_class: PR\n"
    )


def twin_name(*, seed: int, signal_strength: float) -> str:
    """The manifest ``name`` of a twin: ``digital twin (seed N, signal S)``."""
    return f"digital twin (seed {seed}, signal {signal_strength:g})"


def write_manifest(manifest_dir, *, patients: pd.DataFrame, readers: pd.DataFrame, name: str, data_root: str) -> None:
    """Write ``manifest.yaml``, ``patients.csv`` and ``readers.csv`` atomically.

    Parameters
    ----------
    manifest_dir : path
        Created if missing.
    patients : DataFrame
        Columns :data:`PATIENT_COLUMNS`.
    readers : DataFrame
        Columns :data:`READER_COLUMNS`.
    name : str
        The manifest's ``name``.
    data_root : str
        Folder of DICOM studies, relative to ``manifest_dir`` or absolute.
    """
    manifest_dir = Path(manifest_dir)
    manifest_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(manifest_dir / "manifest.yaml", manifest_yaml(name=name, data_root=data_root).encode())
    atomic.write_bytes(manifest_dir / "patients.csv", _csv_text(patients[list(PATIENT_COLUMNS)]).encode())
    atomic.write_bytes(manifest_dir / "readers.csv", _csv_text(readers[list(READER_COLUMNS)]).encode())


def make_manifest_tables(*, n_patients: int = DEFAULT_N_PATIENTS, n_slices: int = DEFAULT_N_SLICES,
                         signal_strength: float = DEFAULT_SIGNAL, seed: int = DEFAULT_SEED) -> dict:
    """Every table of a twin, without writing DICOM.

    Returns
    -------
    tables : dict
        ``patients`` (:func:`make_cohort_table`), ``readers``
        (:func:`make_reader_calls`), ``truth`` (:func:`make_truth_table`),
        ``identifiers`` (:func:`make_identifiers`).
    """
    patients = make_cohort_table(n_patients=n_patients, n_slices=n_slices, seed=seed)
    return {
        "patients": patients,
        "readers": make_reader_calls(patients, seed=seed),
        "truth": make_truth_table(patients, signal_strength=signal_strength, n_slices=n_slices, seed=seed),
        "identifiers": make_identifiers(patients, seed=seed),
    }


def code_hash() -> str:
    """Hash of the generator's code: this module's import closure and the package data it reads.

    (:func:`pdlib.provenance.module_code_digests`: the phantom, the paper's
    Table 1 reading, the statistics of the oracle AUC, ...). A twin made by
    other code is stale.
    """
    return provenance.combine(provenance.module_code_digests([__name__]))


def generate_twin(out_dir, *, n_patients: int = DEFAULT_N_PATIENTS, matrix: int = DEFAULT_MATRIX,
                  n_slices: int = DEFAULT_N_SLICES, signal_strength: float = DEFAULT_SIGNAL,
                  seed: int = DEFAULT_SEED, n_jobs: int = 1, overwrite: bool = False) -> dict:
    """Generate a digital twin cohort (DICOM studies, manifest, truth) into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Twin folder (layout in the module docstring). Built in a hidden
        sibling folder and renamed into place at the end, so an interrupted
        run leaves ``out_dir`` as it was. An existing twin there with the same
        parameters and generator code is kept (``reused: True``) unless
        ``overwrite``; one with other parameters is replaced. A folder that is
        not a twin (holds files but no ``twin.json``) is never replaced.
    n_patients : int, default 140
        Table 1 counts exactly at 140 (see :func:`make_cohort_table`).
    matrix : int, default 192
        Rows and columns of every image, 64 to 512.
    n_slices : int, default 52
        Portal-venous slices (spacing ``260 / n_slices`` mm); the arterial,
        delayed and noncontrast series have ``max(3, n_slices // 4)`` slices
        twice as thick, centred on the liver.
    signal_strength : float, default 1.8
        Effect size of the response on the tumour's appearance (see
        :func:`make_truth_table`). 1.8 gives an expected oracle AUC of 0.90;
        0 gives images without response signal (oracle AUC about 0.5).
    seed : int, default 2025
        Same seed and sizes: identical tables and byte-identical files.
    n_jobs : int, default 1
        Worker processes; the output does not depend on it.
    overwrite : bool, default False
        Regenerate even if an identical twin is already there.

    Returns
    -------
    summary : dict
        The content of ``twin.json`` (``parameters``, ``oracle_auc`` per
        split, ``expected_oracle_auc``, ``counts``, ``n_files``, ``bytes``,
        ``code_hash``) plus ``out_dir``, ``reused`` and ``seconds``.

    Raises
    ------
    ValueError
        For sizes out of range.
    FileExistsError
        If ``out_dir`` holds files but no ``twin.json``.

    Notes
    -----
    Per study: series of CT Image Storage (1.2.840.10008.5.1.4.1.1.2) in
    Explicit VR Little Endian, sharing ``(0020,000D) Study Instance UID`` and
    ``(0020,0052) Frame of Reference UID``; axial ``(0020,0037) Image
    Orientation (Patient)`` ``[1, 0, 0, 0, 1, 0]`` with ``(0020,0032) Image
    Position (Patient)`` stepping along +z; stored values ``HU - (0028,1052)
    Rescale Intercept`` with ``(0028,1053) Rescale Slope`` 1 and intercepts
    -1024, -8192 or 0 in uint16/int16 (12 or 16 bits stored); pixels outside
    the reconstruction circle at -1024, -2048 or ``(0028,0120) Pixel Padding
    Value``; ``(0020,0013) Instance Number`` descending, ascending or shuffled
    relative to position; file names unrelated to position; series in
    sub-folders or flat. The phase is named in ``(0008,103E) Series
    Description`` (English or Chinese wording of several vendors) or only in
    ``(0018,1030) Protocol Name``.
    """
    _check_sizes(n_patients=n_patients, n_slices=n_slices, matrix=matrix)
    _check_seed_signal(seed=seed, signal_strength=signal_strength)
    if not isinstance(n_jobs, (int, np.integer)) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an integer >= 1, got {n_jobs!r}")
    started = time.perf_counter()
    out_dir = Path(out_dir).resolve()
    parameters = {"n_patients": int(n_patients), "matrix": int(matrix), "n_slices": int(n_slices),
                  "signal_strength": float(signal_strength), "seed": int(seed)}
    digest = code_hash()
    existing = out_dir / "twin.json"
    if out_dir.exists():
        if existing.is_file():
            previous = json.loads(existing.read_text(encoding="utf-8"))
            if not overwrite and previous.get("parameters") == parameters and previous.get("code_hash") == digest:
                return {**previous, "out_dir": str(out_dir), "reused": True, "seconds": time.perf_counter() - started}
        elif any(p.is_file() or p.is_symlink() for p in out_dir.rglob("*")):
            # empty sub-folders (e.g. made by a workflow manager for the outputs) are fine
            raise FileExistsError(f"{out_dir} exists, holds files and no twin.json: not replacing it")

    tables = make_manifest_tables(n_patients=n_patients, n_slices=n_slices, signal_strength=signal_strength,
                                  seed=seed)
    patients, readers, truth, identifiers = (tables[k] for k in ("patients", "readers", "truth", "identifiers"))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.partial-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not atomic.pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    work = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "dicom").mkdir(parents=True)
    (work / "masks").mkdir()
    try:
        jobs = [{
            "cohort_row": patients.iloc[i].to_dict(), "truth_row": truth.iloc[i].to_dict(),
            "identifiers": identifiers.iloc[i].to_dict(), "seed": int(seed), "index": i,
            "matrix": int(matrix), "n_slices": int(n_slices),
            "dicom_root": str(work / "dicom"), "mask_root": str(work / "masks"),
        } for i in range(n_patients)]
        if n_jobs == 1:
            results = [_write_patient(job) for job in jobs]
        else:
            with ProcessPoolExecutor(max_workers=int(n_jobs)) as pool:
                results = list(pool.map(_write_patient, jobs, chunksize=1))
        rendered = pd.DataFrame(results)
        truth_out = truth.merge(rendered[["patient_id", "tumour_voxels", "tumour_slices", "tumour_mean_hu"]],
                                on="patient_id", how="left")
        write_manifest(work / "manifest", patients=patients, readers=readers,
                       name=twin_name(seed=seed, signal_strength=signal_strength), data_root="../dicom")
        atomic.write_bytes(work / "truth.csv", _csv_text(truth_out).encode())
        id_long = identifiers.melt(id_vars="patient_id", var_name="keyword", value_name="value")
        id_long = id_long.sort_values(["patient_id", "keyword"], kind="stable")
        atomic.write_bytes(work / "identifiers.csv", _csv_text(id_long).encode("utf-8"))
        counts = patients.groupby(["split", "response"]).size()
        summary = {
            "generator": _GENERATOR,
            "code_hash": digest,
            "parameters": parameters,
            "oracle_auc": oracle_auc(truth),
            "expected_oracle_auc": expected_oracle_auc(signal_strength),
            "positive_class": "PR",
            "counts": {f"{s}/{r}": int(v) for (s, r), v in counts.items()},
            "recist": {k: int(v) for k, v in patients["recist"].value_counts().sort_index().items()},
            "n_series": int(rendered["n_series"].sum()),
            "n_files": int(rendered["n_files"].sum()),
            "bytes": int(rendered["bytes"].sum()),
            "table1_corrections": len(TABLE1_CORRECTIONS),
        }
        atomic.write_bytes(work / "twin.json", (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())
        # swap into place
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
        os.replace(work, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {**summary, "out_dir": str(out_dir), "reused": False, "seconds": time.perf_counter() - started}


# --------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``python -m pdlib twin --out data/twin [--n-patients --matrix --slices --signal --seed --jobs --force]``."""
    parser = argparse.ArgumentParser(prog="pdlib twin", description="Generate the digital twin cohort.")
    parser.add_argument("--out", default=str(paths.twin_dir()), help="twin folder (default: %(default)s)")
    parser.add_argument("--n-patients", type=int, default=DEFAULT_N_PATIENTS)
    parser.add_argument("--matrix", type=int, default=DEFAULT_MATRIX)
    parser.add_argument("--slices", type=int, default=DEFAULT_N_SLICES, help="portal-venous slices per study")
    parser.add_argument("--signal", type=float, default=DEFAULT_SIGNAL, help="effect size of the response signal")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--force", action="store_true", help="regenerate even if an identical twin exists")
    args = parser.parse_args(argv)
    try:
        summary = generate_twin(args.out, n_patients=args.n_patients, matrix=args.matrix, n_slices=args.slices,
                                signal_strength=args.signal, seed=args.seed, n_jobs=args.jobs, overwrite=args.force)
    except (ValueError, FileExistsError) as err:
        parser.exit(2, f"pdlib twin: error: {err}\n")
    auc = summary["oracle_auc"]
    verb = "kept existing" if summary["reused"] else "wrote"
    print(f"{verb} twin {summary['out_dir']}: {summary['parameters']['n_patients']} patients, "
          f"{summary['n_files']} files, {summary['bytes'] / 1e6:.0f} MB; oracle AUC all {auc['all']:.3f}, "
          f"train {auc['train']:.3f}, test {auc['test']:.3f} ({summary['seconds']:.1f} s)")
    return 0
