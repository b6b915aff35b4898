"""The cohort manifest: which patients, which CT study, which label.

A manifest is a folder (``data_manifest/`` by default) holding

``manifest.yaml``
    ``name`` (cohort label), ``data_root`` (folder of DICOM studies, relative
    to the manifest folder or absolute), ``patients`` (default
    ``patients.csv``), ``readers`` (default ``readers.csv``) and
    ``positive_class`` (default ``PR``).
``patients.csv``
    one row per patient; the columns are :data:`PATIENT_COLUMNS`.
``readers.csv``
    optional, long format ``patient_id, reader, call``: the clinicians' calls
    on the test patients.

The schema is documented for users in ``data_manifest/README.md``; the checks
here are its executable form. :func:`check_manifest` returns *every* problem
with its file, line and column, so that a user fixing a hand-written manifest
sees them all at once; :func:`load_manifest` raises :class:`ManifestError`
listing them, or returns a validated :class:`Manifest`.

This module reads only text files: it never imports torch or pydicom, so
``python -m pdlib check-manifest`` is fast.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePath

import pandas as pd
import yaml

from pdlib import paths, provenance

#: Splits of the study: 112 training and 28 test patients (Han et al. 2025,
#: "Data sets and study cohorts").
SPLITS = ("train", "test")

#: RECIST 1.1 category -> response group. GR (good response) = complete or
#: partial response; PR (poor response) = stable or progressive disease
#: (Han et al. 2025, "Conversion therapy protocols and response assessment").
RECIST_TO_RESPONSE = {"CR": "GR", "PR": "GR", "SD": "PR", "PD": "PR"}

#: Response groups; either may be declared the positive class.
RESPONSES = ("GR", "PR")

#: Allowed values of the categorical columns of ``patients.csv``. The clinical
#: variables are those of Han et al. 2025, Table 1 (CEA <= 5.0 ng/ml and
#: CA19-9 <= 35 U/ml are normal; stages of the 8th AJCC TNM system).
CATEGORIES = {
    "split": SPLITS,
    "response": RESPONSES,
    "recist": tuple(RECIST_TO_RESPONSE),
    "sex": ("F", "M"),
    "lauren": ("intestinal", "diffuse_mixed", "undifferentiated"),
    "cea": ("normal", "elevated"),
    "ca199": ("normal", "elevated"),
    "ct_stage": ("T3", "T4a", "T4b"),
    "cn_stage": ("N0-N1", "N2-N3"),
    "cm_stage": ("M0", "M1"),
}

#: Columns every ``patients.csv`` must have, in the documented order.
REQUIRED_COLUMNS = (
    "patient_id", "split", "response", "recist", "age", "sex", "lauren",
    "cea", "ca199", "ct_stage", "cn_stage", "cm_stage", "study_dir",
)
#: Columns that may be absent or left empty.
OPTIONAL_COLUMNS = ("pvp_series_uid", "first_slice", "last_slice")
PATIENT_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

#: Columns of ``readers.csv``.
READER_COLUMNS = ("patient_id", "reader", "call")

#: Plausible ages in years; anything outside is a data-entry error.
AGE_RANGE = (0, 120)

#: Keys of ``manifest.yaml`` and their defaults (``None``: required).
MANIFEST_KEYS = {
    "name": None,
    "data_root": None,
    "patients": "patients.csv",
    "readers": "readers.csv",
    "positive_class": "PR",
}

#: Patient ids end up in file names and tables: letters, digits, ``-_.`` only.
_PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: A DICOM UID: dot-separated numbers, at most 64 characters (PS3.5 9.1).
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_INT = re.compile(r"^[+-]?[0-9]+$")

MANIFEST_FILE = "manifest.yaml"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a manifest.

    Attributes
    ----------
    row : int
        Line number in ``file`` (the CSV header is line 1); 0 for a problem
        with the whole file.
    column : str
        Column (or ``manifest.yaml`` key) concerned; ``""`` for the whole row.
    message : str
        What is wrong, in words.
    file : str
        ``"patients.csv"``, ``"readers.csv"`` or ``"manifest.yaml"``.
    """

    row: int
    column: str
    message: str
    file: str = "patients.csv"

    def __str__(self) -> str:
        where = self.file + (f" line {self.row}" if self.row else "")
        where += f", column {self.column}" if self.column else ""
        return f"{where}: {self.message}"


class ManifestError(ValueError):
    """A manifest with problems; ``problems`` lists all of them."""

    def __init__(self, folder: str | Path, problems: list[Problem]):
        self.folder = Path(folder)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"manifest {self.folder} has {len(self.problems)} problem(s):\n{lines}")


@dataclass
class Manifest:
    """A validated cohort manifest.

    Attributes
    ----------
    folder : Path
        The manifest folder.
    name : str
        Cohort label shown in the book.
    data_root : Path
        Resolved folder holding one sub-folder per CT study.
    patients : DataFrame
        One row per patient, columns :data:`PATIENT_COLUMNS`, in file order.
        ``age`` is int; ``first_slice``/``last_slice`` are nullable ``Int64``;
        an empty ``pvp_series_uid`` is ``""``.
    readers : DataFrame
        Columns :data:`READER_COLUMNS` (empty when there is no reader study).
    positive_class : str
        ``"PR"`` or ``"GR"``: the class a score of 1 predicts.
    """

    folder: Path
    name: str
    data_root: Path
    patients: pd.DataFrame
    readers: pd.DataFrame
    positive_class: str = "PR"

    def patient(self, patient_id: str) -> pd.Series:
        """The ``patients.csv`` row of ``patient_id`` (KeyError naming it if unknown)."""
        hits = self.patients.index[self.patients["patient_id"] == patient_id]
        if len(hits) != 1:
            raise KeyError(f"patient {patient_id!r} is not in manifest {self.folder}")
        return self.patients.loc[hits[0]]

    def study_path(self, patient_id: str) -> Path:
        """Folder of the patient's CT study: ``data_root / study_dir``."""
        return self.data_root / self.patient(patient_id)["study_dir"]

    def labels(self, split: str | None = None) -> pd.Series:
        """Binary labels indexed by ``patient_id``: 1 for :attr:`positive_class`.

        Parameters
        ----------
        split : {"train", "test"}, optional
            Restrict to one split; all patients when None.

        Returns
        -------
        labels : Series of int, name ``"label"``
        """
        table = self.patients
        if split is not None:
            if split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
            table = table[table["split"] == split]
        labels = (table["response"] == self.positive_class).astype(int)
        labels.index = pd.Index(table["patient_id"], name="patient_id")
        return labels.rename("label")

    def content_hash(self) -> str:
        """Hash of ``manifest.yaml`` and the CSV tables (see :func:`pdlib.provenance.manifest_hash`)."""
        return provenance.manifest_hash(self.folder)


# --------------------------------------------------------------------------
# reading


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(line number, row)`` pairs of a CSV; blank lines skipped, cells stripped."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        rows = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            cells = [c.strip() for c in cells] + [""] * max(0, len(header) - len(cells))
            row = dict(zip(header, cells))
            if len(cells) > len(header):
                row[None] = cells[len(header):]  # too many cells, reported by the caller
            rows.append((reader.line_num, row))
    return header, rows


def _read_yaml(folder: Path, problems: list[Problem]) -> dict:
    path = folder / MANIFEST_FILE

    def problem(column, message):
        problems.append(Problem(0, column, message, MANIFEST_FILE))

    if not path.is_file():
        problem("", f"{path} does not exist")
        return {}
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        problem("", f"not valid YAML: {err}")
        return {}
    if not isinstance(config, dict):
        problem("", "must be a mapping of keys to values")
        return {}
    for key in sorted(set(config) - set(MANIFEST_KEYS), key=str):
        problem(str(key), f"unknown key (known: {', '.join(MANIFEST_KEYS)})")
    resolved = {}
    for key, default in MANIFEST_KEYS.items():
        value = config.get(key, default)
        if value is None:
            problem(key, "is required")
        elif not isinstance(value, str) or not value.strip():
            problem(key, f"must be a non-empty string, got {value!r}")
        else:
            resolved[key] = value.strip()
    positive = resolved.get("positive_class")
    if positive is not None and positive not in RESPONSES:
        problem("positive_class", f"must be one of {', '.join(RESPONSES)}, got {positive!r}")
    for key in ("patients", "readers"):
        name = resolved.get(key)
        if name is not None and (PurePath(name).name != name or name in {".", ".."}):
            problem(key, f"must be a file name inside the manifest folder, got {name!r}")
            resolved.pop(key)
    return resolved


def _data_root(folder: Path, value: str) -> Path:
    root = Path(value).expanduser()
    return (root if root.is_absolute() else folder / root).resolve()


# --------------------------------------------------------------------------
# checks


def _check_patients(header, rows, problems, *, data_root: Path | None) -> None:
    def problem(line, column, message):
        problems.append(Problem(line, column, message, "patients.csv"))

    for column in REQUIRED_COLUMNS:
        if column not in header:
            problem(1, column, "required column is missing")
    for column in header:
        if column not in PATIENT_COLUMNS:
            problem(1, column, f"unknown column (known: {', '.join(PATIENT_COLUMNS)})")
    if len(set(header)) != len(header):
        problem(1, "", "a column name is repeated")
    if not rows:
        problem(1, "", "no patients")

    ids: dict[str, tuple[int, str]] = {}
    studies: dict[str, tuple[int, str, str]] = {}
    for line, row in rows:
        if None in row:
            problem(line, "", f"{len(header) + len(row[None])} cells for {len(header)} columns")
        pid = row.get("patient_id", "")
        if "patient_id" in header:
            if not pid:
                problem(line, "patient_id", "is empty")
            elif not _PATIENT_ID.match(pid):
                problem(line, "patient_id", f"{pid!r} must use only letters, digits, '.', '_' or '-'")
        for column, allowed in CATEGORIES.items():
            if column in header and row.get(column, "") not in allowed:
                problem(line, column, f"{row.get(column, '')!r} is not one of {', '.join(allowed)}")
        if "age" in header:
            age = row.get("age", "")
            if not _INT.match(age):
                problem(line, "age", f"{age!r} is not an integer number of years")
            elif not AGE_RANGE[0] <= int(age) <= AGE_RANGE[1]:
                problem(line, "age", f"{age} is outside {AGE_RANGE[0]}-{AGE_RANGE[1]} years")
        recist, response = row.get("recist", ""), row.get("response", "")
        if recist in RECIST_TO_RESPONSE and response in RESPONSES and RECIST_TO_RESPONSE[recist] != response:
            expected = RECIST_TO_RESPONSE[recist]
            problem(line, "response", f"{response} disagrees with RECIST {recist} (which is {expected})")
        bounds = {}
        for column in ("first_slice", "last_slice"):
            value = row.get(column, "")
            if value == "":
                continue
            if not _INT.match(value) or int(value) < 0:
                problem(line, column, f"{value!r} is not a non-negative integer slice index")
            else:
                bounds[column] = int(value)
        if len(bounds) == 2 and bounds["first_slice"] > bounds["last_slice"]:
            problem(line, "first_slice", f"first_slice {bounds['first_slice']} > last_slice {bounds['last_slice']}")
        uid = row.get("pvp_series_uid", "")
        if uid and (len(uid) > 64 or not _UID.match(uid)):
            problem(line, "pvp_series_uid", f"{uid!r} is not a DICOM UID (digits and dots, at most 64 characters)")

        split = row.get("split", "")
        if pid:
            if pid in ids:
                first_line, first_split = ids[pid]
                if first_split != split and {first_split, split} <= set(SPLITS):
                    problem(line, "patient_id", f"{pid} is in both splits (also line {first_line}, {first_split})")
                else:
                    problem(line, "patient_id", f"duplicate patient id {pid} (also line {first_line})")
            else:
                ids[pid] = (line, split)

        study = row.get("study_dir", "")
        if "study_dir" not in header:
            continue
        if not study:
            problem(line, "study_dir", "is empty")
            continue
        normalised = os.path.normpath(study)
        if PurePath(study).is_absolute() or normalised == ".." or normalised.startswith(".." + os.sep):
            problem(line, "study_dir", f"{study!r} must be a path inside data_root")
            continue
        if normalised in studies:
            other_line, other_pid, other_split = studies[normalised]
            if other_split != split and {other_split, split} <= set(SPLITS):
                problem(line, "study_dir",
                        f"{study} is in both splits (also patient {other_pid}, line {other_line}, {other_split})")
            else:
                problem(line, "study_dir", f"{study} is also the study of patient {other_pid} (line {other_line})")
        else:
            studies[normalised] = (line, pid, split)
        if data_root is not None and not (data_root / study).is_dir():
            problem(line, "study_dir", f"folder {data_root / study} does not exist")


def _check_readers(header, rows, problems, *, splits: dict[str, str]) -> None:
    def problem(line, column, message):
        problems.append(Problem(line, column, message, "readers.csv"))

    missing = [c for c in READER_COLUMNS if c not in header]
    for column in missing:
        problem(1, column, "required column is missing")
    for column in header:
        if column not in READER_COLUMNS:
            problem(1, column, f"unknown column (known: {', '.join(READER_COLUMNS)})")
    if missing:
        return
    seen: dict[tuple[str, str], int] = {}
    for line, row in rows:
        pid, reader, call = row["patient_id"], row["reader"], row["call"]
        if pid not in splits:
            problem(line, "patient_id", f"unknown patient {pid!r} (not in patients.csv)")
        elif splits[pid] != "test":
            problem(line, "patient_id",
                    f"patient {pid} is in the {splits[pid]} split; reader calls are for test patients only")
        if not reader:
            problem(line, "reader", "is empty")
        if call not in RESPONSES:
            problem(line, "call", f"{call!r} is not one of {', '.join(RESPONSES)}")
        if (pid, reader) in seen:
            problem(line, "", f"duplicate call of reader {reader} on patient {pid} (also line {seen[pid, reader]})")
        else:
            seen[pid, reader] = line


def _check(folder: Path, *, check_files: bool):
    """All problems, plus what was read (for :func:`load_manifest`)."""
    problems: list[Problem] = []
    config = _read_yaml(folder, problems)
    data_root = _data_root(folder, config["data_root"]) if "data_root" in config else None
    rows_root = data_root if check_files else None  # where study folders are checked
    if check_files and data_root is not None and not data_root.is_dir():
        problems.append(Problem(0, "data_root", f"folder {data_root} does not exist", MANIFEST_FILE))
        rows_root = None  # one problem, not one per patient

    patient_header, patient_rows = [], []
    patients_file = config.get("patients")
    if patients_file is not None:
        path = folder / patients_file
        if not path.is_file():
            problems.append(Problem(0, "patients", f"{path} does not exist", MANIFEST_FILE))
        else:
            patient_header, patient_rows = _read_csv(path)
            _check_patients(patient_header, patient_rows, problems, data_root=rows_root)

    reader_header, reader_rows = list(READER_COLUMNS), []
    readers_file = config.get("readers")
    if readers_file is not None:
        path = folder / readers_file
        if path.is_file():
            reader_header, reader_rows = _read_csv(path)
            splits = {row.get("patient_id", ""): row.get("split", "") for _, row in patient_rows}
            _check_readers(reader_header, reader_rows, problems, splits=splits)
        elif readers_file != MANIFEST_KEYS["readers"]:  # named explicitly, so expected
            problems.append(Problem(0, "readers", f"{path} does not exist", MANIFEST_FILE))

    problems.sort(key=lambda p: (p.file != MANIFEST_FILE, p.file, p.row))
    read = (config, data_root, patient_header, patient_rows, reader_rows)
    return problems, read


def check_manifest(manifest_dir: str | Path, *, check_files: bool = True) -> list[Problem]:
    """Every problem of a manifest folder, in file and line order.

    Parameters
    ----------
    manifest_dir : path
        Folder holding ``manifest.yaml``.
    check_files : bool, default True
        Also check that ``data_root`` and every ``study_dir`` exist. Switch
        off to check the tables on a machine without the images.

    Returns
    -------
    problems : list of Problem
        Empty when the manifest is valid. Checked: ``manifest.yaml`` keys;
        missing or unknown columns; values outside the enumerations of
        :data:`CATEGORIES`; non-integer or implausible ages and slice indices;
        ``first_slice > last_slice``; response disagreeing with RECIST
        (:data:`RECIST_TO_RESPONSE`); duplicate patient ids, patients or
        study folders in both splits; missing study folders; and, in
        ``readers.csv``, unknown or non-test patients, bad calls and
        duplicate reader rows.

    Examples
    --------
    >>> for problem in check_manifest("data_manifest"):  # doctest: +SKIP
    ...     print(problem)
    patients.csv line 7, column recist: 'SD ' ...
    """
    problems, _ = _check(Path(manifest_dir), check_files=check_files)
    return problems


def load_manifest(manifest_dir: str | Path | None = None, *, check_files: bool = True) -> Manifest:
    """Read and validate a manifest folder.

    Parameters
    ----------
    manifest_dir : path, optional
        Default :func:`pdlib.paths.manifest_dir`.
    check_files : bool, default True
        See :func:`check_manifest`.

    Returns
    -------
    manifest : Manifest

    Raises
    ------
    ManifestError
        Listing every problem :func:`check_manifest` finds.
    """
    folder = Path(manifest_dir) if manifest_dir is not None else paths.manifest_dir()
    folder = folder.expanduser().resolve()
    problems, (config, data_root, header, rows, reader_rows) = _check(folder, check_files=check_files)
    if problems:
        raise ManifestError(folder, problems)

    table = pd.DataFrame([{c: row.get(c, "") for c in PATIENT_COLUMNS} for _, row in rows],
                         columns=list(PATIENT_COLUMNS))
    table["age"] = table["age"].astype(int)
    for column in ("first_slice", "last_slice"):
        table[column] = pd.array([int(v) if v != "" else pd.NA for v in table[column]], dtype="Int64")
    readers = pd.DataFrame([{c: row[c] for c in READER_COLUMNS} for _, row in reader_rows],
                           columns=list(READER_COLUMNS))
    return Manifest(
        folder=folder,
        name=config["name"],
        data_root=data_root,
        patients=table,
        readers=readers,
        positive_class=config["positive_class"],
    )


# --------------------------------------------------------------------------
# command line


def _summary(manifest: Manifest) -> str:
    table = manifest.patients
    parts = []
    for split in SPLITS:
        sub = table[table["split"] == split]
        groups = ", ".join(f"{g} {int((sub['response'] == g).sum())}" for g in RESPONSES)
        parts.append(f"{split} {len(sub)} ({groups})")
    readers = manifest.readers
    reader_text = (
        f"; {readers['reader'].nunique()} readers, {len(readers)} calls" if len(readers) else "; no reader calls"
    )
    return f"OK {manifest.name}: {len(table)} patients; " + "; ".join(parts) + reader_text


def main(argv: list[str] | None = None) -> int:
    """``python -m pdlib check-manifest [folder] [--no-files]``.

    Prints every problem (file, line, column, message) and returns 1, or
    prints a one-line summary (patients per split and response group) and
    returns 0.
    """
    parser = argparse.ArgumentParser(prog="pdlib check-manifest", description="Check a cohort manifest folder.")
    parser.add_argument("folder", nargs="?", default=None, help="manifest folder (default: data_manifest/)")
    parser.add_argument("--no-files", action="store_true", help="do not check that data_root and study folders exist")
    args = parser.parse_args(argv)
    folder = Path(args.folder) if args.folder is not None else paths.manifest_dir()
    try:
        manifest = load_manifest(folder, check_files=not args.no_files)
    except ManifestError as err:
        for problem in err.problems:
            print(problem)
        print(f"{len(err.problems)} problem(s) in {err.folder}")
        return 1
    print(_summary(manifest))
    return 0
