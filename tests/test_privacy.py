"""No identifier from a DICOM header reaches the book.

The digital twin plants fake but realistic identifiers in every DICOM header
(names, MRNs, birth dates, accession numbers, institution, referring
physician) and lists them in ``identifiers.csv``. On the smoke study built by
``tests/test_pipeline.py`` (same session, built once), none of them may
appear in any executed notebook, in any file of the built HTML book, or in
any run folder's tables and logs. A control test checks that the search finds
them where they are, in the DICOM files themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from test_pipeline import smoke_study

#: Header keywords the twin plants that identify a person or a place.
IDENTIFYING = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "InstitutionName",
               "ReferringPhysicianName")

#: Files of the built book and of the run folders that are read as text.
TEXT_SUFFIXES = {".html", ".js", ".txt", ".ipynb", ".json", ".csv", ".md", ".log", ".yaml"}


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> dict:
    return smoke_study(tmp_path_factory.getbasetemp() / "smoke-study")


def identifier_patterns(identifiers: pd.DataFrame) -> dict[str, re.Pattern]:
    """One regular expression per planted value (and its spelled-out variants).

    Numbers (IDs, dates) must not be part of a longer number to match; a date
    also matches as ``YYYY-MM-DD`` and ``YYYY/MM/DD``; a person name matches
    as written (``FAMILY^GIVEN=...``), per representation (alphabetic,
    ideographic) and with its components separated by a space in either
    order. Matching ignores case.
    """
    patterns = {}
    for _, row in identifiers[identifiers["keyword"].isin(IDENTIFYING)].iterrows():
        value = str(row["value"]).strip()
        if not value:
            continue
        variants = {value}
        if row["keyword"].endswith("Name"):
            for group in value.split("="):
                parts = [p for p in group.split("^") if p]
                variants |= {group, " ".join(parts), " ".join(reversed(parts))}
        if row["keyword"] == "PatientBirthDate" and re.fullmatch(r"\d{8}", value):
            variants |= {f"{value[:4]}-{value[4:6]}-{value[6:]}", f"{value[:4]}/{value[4:6]}/{value[6:]}"}
        alternatives = []
        for variant in sorted(v for v in variants if len(v) >= 4):
            escaped = re.escape(variant)
            if variant[0].isdigit():
                escaped = r"(?<![0-9])" + escaped
            if variant[-1].isdigit():
                escaped += r"(?![0-9])"
            alternatives.append(escaped)
        patterns[f"{row['patient_id']} {row['keyword']}={value}"] = re.compile("|".join(alternatives), re.I)
    return patterns


def leaks(folder: Path, patterns: dict[str, re.Pattern]) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in TEXT_SUFFIXES and "identifiers.csv" != path.name:
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [f"{path}: {name}" for name, pattern in patterns.items() if pattern.search(text)]
    return found


@pytest.fixture(scope="session")
def patterns(study) -> dict[str, re.Pattern]:
    identifiers = pd.read_csv(Path(study["base"]) / "twin" / "identifiers.csv", dtype=str)
    found = identifier_patterns(identifiers)
    assert {k.split()[1].split("=")[0] for k in found} == set(IDENTIFYING)
    return found


def test_the_search_finds_planted_identifiers_in_the_dicom_headers(study, patterns):
    dicom = Path(study["base"]) / "twin" / "dicom"
    first = next(p for p in sorted(dicom.rglob("*")) if p.is_file() and p.read_bytes()[128:132] == b"DICM")
    header = first.read_bytes().decode("latin-1")
    assert any(pattern.search(header) for pattern in patterns.values())
    institution = [p for name, p in patterns.items() if "InstitutionName" in name]
    assert any(p.search(header) for p in institution)


@pytest.mark.slow
def test_no_identifier_in_executed_notebooks(study, patterns):
    runs = Path(study["config"]["book_runs"])
    notebooks = list(runs.rglob("*.ipynb"))
    assert len(notebooks) >= 12
    assert leaks(runs, patterns) == []


@pytest.mark.slow
def test_no_identifier_in_the_html_book(study, patterns):
    html = Path(study["html"])
    assert (html / "runs" / "01_cohort.html").is_file()
    assert leaks(html, patterns) == []


@pytest.mark.slow
def test_no_identifier_in_run_folders(study, patterns):
    results = Path(study["config"]["results"])
    assert any(results.rglob("patient_predictions.csv"))
    assert leaks(results, patterns) == []
