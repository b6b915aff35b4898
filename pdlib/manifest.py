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
import collections
import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePath

import pandas as pd
import yaml

from pdlib import paths, provenance
from pdlib.vocab import CATEGORIES, RECIST_TO_RESPONSE, RESPONSE_GROUPS, SPLITS

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
#: A reader label: starts with a letter; letters, digits, ``_`` or ``-``; at most 32 characters.
_READER = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")

#: Slices averaged into a patient's score by the study (top 10); a shorter
#: slice range is legal but is noted, since the score is then not the paper's.
TOP_K_SLICES = 10

#: Byte-order marks and the encodings they announce (longest first).
_BOMS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xef\xbb\xbf", "utf-8-sig"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"),
)

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


def decode_text(data: bytes) -> tuple[str | None, str]:
    """Text of a file's bytes and the encoding used, or ``(None, reason)``.

    UTF-8 (with or without a byte-order mark), and UTF-16 / UTF-32 with a
    byte-order mark, are read; so is UTF-16 without one when every other byte
    of an ASCII-range text is 0. Anything else (Latin-1, Windows-1252,
    binary) is *not* guessed: the reason names the first byte that is not
    UTF-8, with its line, and how Latin-1 would read it.

    Examples
    --------
    >>> decode_text("patient_id\\n".encode("utf-16"))
    ('patient_id\\n', 'utf-16-le')
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(encoding.removesuffix("-sig"))
            except UnicodeDecodeError as err:
                return None, f"starts with a {encoding} byte-order mark but is not {encoding} ({err.reason} at byte {err.start + len(bom)})"
            return (text, encoding) if "\x00" not in text else (None, "holds NUL characters: not a text table")
    if len(data) >= 4 and len(data) % 2 == 0:
        for encoding, zeros in (("utf-16-le", data[1::2]), ("utf-16-be", data[0::2])):
            if not zeros.strip(b"\x00"):
                text = data.decode(encoding, errors="replace")
                if "\x00" not in text and "\ufffd" not in text:
                    return text, encoding
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        if b"\x00" in data:
            return None, f"is not a text file (NUL bytes; first byte that is not UTF-8: 0x{data[err.start]:02x} on line {line})"
        latin = data[err.start:err.start + 1].decode("latin-1")
        return None, (f"is not UTF-8: byte 0x{data[err.start]:02x} on line {line} (Latin-1 would read it as "
                      f"{latin!r}); save the file as UTF-8")
    if "\x00" in text:
        return None, "holds NUL characters: not a text table"
    return text, "utf-8"


def _read_csv(path: Path, problems: list[Problem] | None = None,
              label: str | None = None) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(line number, row)`` pairs of a CSV; blank lines skipped, cells stripped.

    A file that cannot be read or decoded (see :func:`decode_text`), or that
    the CSV parser rejects, adds a :class:`Problem` to ``problems`` (raises
    ``ValueError`` without it) and gives no rows.
    """
    label = label or path.name

    def fail(line, message):
        if problems is None:
            raise ValueError(f"{label} line {line}: {message}")
        problems.append(Problem(line, "", message, label))
        return [], []

    try:
        data = path.read_bytes()
    except OSError as err:
        return fail(0, f"cannot be read ({type(err).__name__}: {err.strerror or err})")
    text, encoding = decode_text(data)
    if text is None:
        return fail(0, encoding)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
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
    except csv.Error as err:
        return fail(reader.line_num, f"is not a valid CSV table ({err})")
    return header, rows


def _yaml_lines(text: str) -> dict[str, int]:
    """Line (1-based) of each top-level key of a YAML mapping, for messages; {} if not a mapping."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    lines: dict[str, int] = {}
    for key, _ in node.value:
        lines.setdefault(str(key.value), key.start_mark.line + 1)
    return lines


def _duplicate_yaml_keys(text: str) -> list[tuple[str, int, int]]:
    """``(key, first line, repeated line)`` of top-level keys given twice (YAML keeps the last silently)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(node, yaml.MappingNode):
        return []
    seen: dict[str, int] = {}
    repeated = []
    for key, _ in node.value:
        name, line = str(key.value), key.start_mark.line + 1
        if name in seen:
            repeated.append((name, seen[name], line))
        else:
            seen[name] = line
    return repeated


def _read_yaml(folder: Path, problems: list[Problem]) -> dict:
    path = folder / MANIFEST_FILE
    lines: dict[str, int] = {}

    def problem(column, message, line=None):
        problems.append(Problem(lines.get(column, 0) if line is None else line, column, message, MANIFEST_FILE))

    why = _probe(path, "file")
    if why is not None:
        problem("", f"{path} {why}")
        return {}
    try:
        data = path.read_bytes()
    except OSError as err:
        problem("", f"cannot be read ({type(err).__name__}: {err.strerror or err})")
        return {}
    text, encoding = decode_text(data)
    if text is None:
        problem("", encoding)
        return {}
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = mark.line + 1 if mark is not None else 0
        reason = " ".join(str(part) for part in (getattr(err, "context", None), getattr(err, "problem", None)) if part)
        problem("", f"not valid YAML: {reason or err}", line=line)
        return {}
    if not isinstance(config, dict):
        problem("", "must be a mapping of keys to values")
        return {}
    lines = _yaml_lines(text)
    for key, first, line in _duplicate_yaml_keys(text):
        problem(key, f"is given twice (also line {first}); YAML would silently keep the last", line=line)
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
    if positive is not None and positive not in RESPONSE_GROUPS:
        problem("positive_class", f"must be one of {', '.join(RESPONSE_GROUPS)}, got {positive!r}")
    for key in ("patients", "readers"):
        name = resolved.get(key)
        if name is not None and (PurePath(name).name != name or name in {".", ".."}):
            problem(key, f"must be a file name inside the manifest folder, got {name!r}")
            resolved.pop(key)
    resolved["_lines"] = lines
    return resolved


def _data_root(folder: Path, value: str) -> Path:
    root = Path(value).expanduser()
    return (root if root.is_absolute() else folder / root).resolve()


def _probe(path: Path, kind: str) -> str | None:
    """None when ``path`` is a folder (``kind="dir"``) or a regular file (``"file"``); else why not, in words."""
    try:
        found = path.is_dir() if kind == "dir" else path.is_file()
    except (OSError, ValueError) as err:  # e.g. a name too long for the file system
        return f"cannot be inspected ({type(err).__name__}: {getattr(err, 'strerror', None) or err})"
    return None if found else "does not exist"


# --------------------------------------------------------------------------
# checks


def _check_patients(header, rows, problems, *, data_root: Path | None) -> list[tuple[int, str, dict, Path]]:
    """Problems of patients.csv; returns ``(line, patient, row, folder)`` of the study folders found."""

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
    real_folders: dict[Path, tuple[int, str]] = {}
    located: list[tuple[int, str, dict, Path]] = []  # rows whose study folder is checked for DICOM
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
        if recist in RECIST_TO_RESPONSE and response in RESPONSE_GROUPS and RECIST_TO_RESPONSE[recist] != response:
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
        if normalised == ".":
            problem(line, "study_dir", f"{study!r} is data_root itself; each study needs its own folder under data_root")
            continue
        if normalised in studies:
            other_line, other_pid, other_split = studies[normalised]
            if other_split != split and {other_split, split} <= set(SPLITS):
                problem(line, "study_dir",
                        f"{study} is in both splits (also patient {other_pid}, line {other_line}, {other_split})")
            else:
                problem(line, "study_dir", f"{study} is also the study of patient {other_pid} (line {other_line})")
            continue
        studies[normalised] = (line, pid, split)
        if data_root is None:
            continue
        folder = data_root / study
        why = _probe(folder, "dir")
        if why is not None:
            problem(line, "study_dir", f"folder {folder} {why}")
            continue
        real = Path(os.path.realpath(folder))
        if real == data_root or data_root not in real.parents:
            problem(line, "study_dir", f"folder {folder} leads outside data_root {data_root} through a symbolic link "
                                       f"(to {real}); study folders must lie inside data_root")
            continue
        if real in real_folders:
            other_line, other_pid = real_folders[real]
            problem(line, "study_dir", f"folder {folder} is, through a symbolic link, the study folder of patient "
                                       f"{other_pid} (line {other_line})")
            continue
        real_folders[real] = (line, pid)
        if pid and ids.get(pid, (None,))[0] == line:
            located.append((line, pid, row, folder))
    for real, (line, pid) in real_folders.items():
        outer = next((parent for parent in real.parents if parent in real_folders), None)
        if outer is not None:
            other_line, other_pid = real_folders[outer]
            problem(line, "study_dir", f"folder {real} lies inside the study folder of patient {other_pid} (line "
                                       f"{other_line}), whose series would then include these files")
            located[:] = [entry for entry in located if entry[0] not in (line, other_line)]
    return located


def _check_studies(located, problems, notes: list[str] | None) -> None:
    """What loading would find in each study folder: series, portal-venous choice, slice range.

    Reads the DICOM headers (not the pixels) with :func:`pdlib.dicom.find_series`
    and :func:`pdlib.dicom.choose_pvp`; pydicom is imported only here.
    """
    from pdlib import dicom

    def problem(line, column, message):
        problems.append(Problem(line, column, message, "patients.csv"))

    for line, pid, row, folder in located:
        uid = row.get("pvp_series_uid", "")
        try:
            found = dicom.find_series(folder, patient=pid)
        except dicom.DicomInputError as err:
            problem(line, "study_dir", str(err))
            continue
        try:
            chosen = dicom.choose_pvp(found, override_uid=uid or None, patient=pid)
        except dicom.DicomInputError as err:
            problem(line, "pvp_series_uid" if uid else "study_dir", str(err))
            continue
        n = len(chosen.files)
        bounds = {}
        for column in ("first_slice", "last_slice"):
            value = row.get(column, "")
            if _INT.match(value) and int(value) >= 0:
                bounds[column] = int(value)
                if int(value) >= n:
                    problem(line, column, f"{column} {value} is beyond the portal-venous series "
                                          f"{chosen.series_uid} of {n} slice(s) (valid: 0..{n - 1})")
        lo, hi = bounds.get("first_slice", 0), min(bounds.get("last_slice", n - 1), n - 1)
        kept = hi - lo + 1
        if notes is not None and 0 < kept < TOP_K_SLICES:
            notes.append(f"patients.csv line {line}: patient {pid} keeps {kept} slice(s) of series "
                         f"{chosen.series_uid}, fewer than the {TOP_K_SLICES} averaged into the patient score; "
                         "the score is then not the one the paper computed")


def _check_readers(header, rows, problems, *, splits: dict[str, str] | None, duplicated: set[str]) -> None:
    """Problems of readers.csv; ``splits`` None when patients.csv could not be read (no patient checks)."""

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
        if None in row:
            problem(line, "", f"{len(header) + len(row[None])} cells for {len(header)} columns")
        if splits is None:
            pass
        elif pid not in splits:
            problem(line, "patient_id", f"unknown patient {pid!r} (not in patients.csv)")
        elif pid in duplicated:
            pass  # its repeated row is reported in patients.csv; which split holds is unknown
        elif splits[pid] != "test":
            problem(line, "patient_id",
                    f"patient {pid} is in the {splits[pid]} split; reader calls are for test patients only")
        if not reader:
            problem(line, "reader", "is empty")
        elif reader in RESPONSE_GROUPS or reader in (splits or {}):
            what = "a call" if reader in RESPONSE_GROUPS else "a patient id"
            problem(line, "reader", f"{reader!r} is {what}, not a reader label (are the columns in the order "
                                    f"{', '.join(READER_COLUMNS)}?)")
        elif not _READER.match(reader):
            problem(line, "reader", f"{reader!r} is not a reader label (a letter, then letters, digits, '_' or '-', "
                                    "at most 32 characters, e.g. C3)")
        if call not in RESPONSE_GROUPS:
            problem(line, "call", f"{call!r} is not one of {', '.join(RESPONSE_GROUPS)}")
        if (pid, reader) in seen:
            problem(line, "", f"duplicate call of reader {reader} on patient {pid} (also line {seen[pid, reader]})")
        else:
            seen[pid, reader] = line


def _check(folder: Path, *, check_files: bool, check_dicom: bool = False, notes: list[str] | None = None):
    """All problems, plus what was read (for :func:`load_manifest`)."""
    problems: list[Problem] = []
    config = _read_yaml(folder, problems)
    lines = config.pop("_lines", {})
    data_root = None
    if "data_root" in config:
        try:
            data_root = _data_root(folder, config["data_root"])
        except (OSError, ValueError, RuntimeError) as err:
            problems.append(Problem(lines.get("data_root", 0), "data_root",
                                    f"{config['data_root']!r} is not a usable path ({err})", MANIFEST_FILE))
    rows_root = data_root if check_files else None  # where study folders are checked
    why = _probe(data_root, "dir") if check_files and data_root is not None else None
    if why is not None:
        problems.append(Problem(lines.get("data_root", 0), "data_root", f"folder {data_root} {why}", MANIFEST_FILE))
        rows_root = None  # one problem, not one per patient

    patient_header, patient_rows = [], []
    patients_file = config.get("patients")
    located = []
    patients_read = False  # without patients.csv, reader rows cannot be checked against it
    if patients_file is not None:
        path = folder / patients_file
        why = _probe(path, "file")
        if why is not None:
            problems.append(Problem(lines.get("patients", 0), "patients", f"{path} {why}", MANIFEST_FILE))
        else:
            before = len(problems)
            patient_header, patient_rows = _read_csv(path, problems, "patients.csv")
            patients_read = len(problems) == before
            if patients_read:
                located = _check_patients(patient_header, patient_rows, problems, data_root=rows_root)

    reader_header, reader_rows = list(READER_COLUMNS), []
    readers_file = config.get("readers")
    if readers_file is not None:
        path = folder / readers_file
        why = _probe(path, "file")
        if why is None:
            before = len(problems)
            reader_header, reader_rows = _read_csv(path, problems, "readers.csv")
            if len(problems) == before:
                splits: dict[str, str] = {}
                for _, row in patient_rows:
                    splits.setdefault(row.get("patient_id", ""), row.get("split", ""))
                counts = collections.Counter(row.get("patient_id", "") for _, row in patient_rows)
                duplicated = {pid for pid, count in counts.items() if count > 1}
                _check_readers(reader_header, reader_rows, problems, splits=splits if patients_read else None,
                               duplicated=duplicated)
        elif readers_file != MANIFEST_KEYS["readers"] or why != "does not exist":  # expected, or unreadable
            problems.append(Problem(lines.get("readers", 0), "readers", f"{path} {why}", MANIFEST_FILE))

    if check_files and check_dicom and located:
        _check_studies(located, problems, notes)
    problems.sort(key=lambda p: (p.file != MANIFEST_FILE, p.file, p.row))
    read = (config, data_root, patient_header, patient_rows, reader_rows)
    return problems, read


def check_manifest(manifest_dir: str | Path, *, check_files: bool = True, check_dicom: bool | None = None,
                   notes: list[str] | None = None) -> list[Problem]:
    """Every problem of a manifest folder, in file and line order.

    Parameters
    ----------
    manifest_dir : path
        Folder holding ``manifest.yaml``.
    check_files : bool, default True
        Also check that ``data_root`` and every ``study_dir`` exist and lie
        inside ``data_root`` after resolving symbolic links. Switch off to
        check the tables on a machine without the images.
    check_dicom : bool, optional
        Also read the DICOM headers of every study folder (default: as
        ``check_files``) and check what loading would: that the folder holds
        readable DICOM series (:func:`pdlib.dicom.find_series`), that the
        portal-venous series is found (:func:`pdlib.dicom.choose_pvp`, with
        ``pvp_series_uid`` when given) and that ``first_slice`` and
        ``last_slice`` lie within it. Pixels are not decoded here.
    notes : list, optional
        Receives data-quality notes on legal input, e.g. a slice range of
        fewer than :data:`TOP_K_SLICES` slices (needs ``check_dicom``).

    Returns
    -------
    problems : list of Problem
        Empty when the manifest is valid. Checked: ``manifest.yaml`` keys
        (with their line numbers; also keys given twice); the encoding of the
        files (:func:`decode_text`); missing or unknown columns; values
        outside the enumerations of :data:`pdlib.vocab.CATEGORIES`; non-integer or
        implausible ages and slice indices; ``first_slice > last_slice``;
        response disagreeing with RECIST (:data:`pdlib.vocab.RECIST_TO_RESPONSE`);
        duplicate patient ids, patients or study folders in both splits;
        ``study_dir`` of ``.``, outside ``data_root`` (also through a
        symbolic link), missing, or nested in another study; the DICOM
        checks above; and, in ``readers.csv``, unknown or non-test patients,
        reader labels that are not labels, bad calls and duplicate reader
        rows. A repeated patient id is reported once, on its repeated row,
        and not again through the reader table.

    Examples
    --------
    >>> for problem in check_manifest("data_manifest"):  # doctest: +SKIP
    ...     print(problem)
    patients.csv line 7, column recist: 'SD ' ...
    """
    check_dicom = check_files if check_dicom is None else check_dicom
    problems, _ = _check(Path(manifest_dir), check_files=check_files, check_dicom=check_dicom, notes=notes)
    return problems


def load_manifest(manifest_dir: str | Path | None = None, *, check_files: bool = True) -> Manifest:
    """Read and validate a manifest folder.

    Parameters
    ----------
    manifest_dir : path, optional
        Default :func:`pdlib.paths.manifest_dir`.
    check_files : bool, default True
        See :func:`check_manifest`. The DICOM headers are not read here (the
        load of each study does that); use :func:`check_manifest` for them.

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
        groups = ", ".join(f"{g} {int((sub['response'] == g).sum())}" for g in RESPONSE_GROUPS)
        parts.append(f"{split} {len(sub)} ({groups})")
    readers = manifest.readers
    reader_text = (
        f"; {readers['reader'].nunique()} readers, {len(readers)} calls" if len(readers) else "; no reader calls"
    )
    return f"OK {manifest.name}: {len(table)} patients; " + "; ".join(parts) + reader_text


def main(argv: list[str] | None = None) -> int:
    """``python -m pdlib check-manifest [folder] [--no-files] [--no-dicom]``.

    Prints every problem (file, line, column, message) and returns 1, or
    prints the data-quality notes (``note: ...``) and a one-line summary
    (patients per split and response group) and returns 0.
    """
    parser = argparse.ArgumentParser(prog="pdlib check-manifest", description="Check a cohort manifest folder.")
    parser.add_argument("folder", nargs="?", default=None, help="manifest folder (default: data_manifest/)")
    parser.add_argument("--no-files", action="store_true", help="do not check that data_root and study folders exist")
    parser.add_argument("--no-dicom", action="store_true",
                        help="check that study folders exist, but do not read their DICOM headers")
    args = parser.parse_args(argv)
    folder = Path(args.folder) if args.folder is not None else paths.manifest_dir()
    notes: list[str] = []
    problems = check_manifest(folder, check_files=not args.no_files,
                              check_dicom=not (args.no_files or args.no_dicom), notes=notes)
    if problems:
        for problem in problems:
            print(problem)
        print(f"{len(problems)} problem(s) in {folder.expanduser().resolve()}")
        return 1
    manifest = load_manifest(folder, check_files=not args.no_files)
    for note in notes:
        print(f"note: {note}")
    print(_summary(manifest))
    return 0
