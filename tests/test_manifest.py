"""The cohort manifest (pdlib.manifest): schema checks, loading, CLI."""

import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from pdlib import manifest as pm
from pdlib import provenance

HEADER = ",".join(pm.PATIENT_COLUMNS)
CLINICAL = "M,intestinal,normal,normal,T3,N0-N1,M0"

#: A patients.csv with one valid row and one or two problems on every other
#: line; (line, column) of each expected problem.
BAD_PATIENTS = textwrap.dedent(f"""\
    {HEADER}
    P01,train,GR,PR,66,{CLINICAL},s01,,,
    P02,train,GR,SD,66,{CLINICAL},s02,,,
    P03,train,XX,PR,66,{CLINICAL},s03,,,
    P04,train,PR,PD,sixty,{CLINICAL},s04,,,
    P05,test,PR,PD,150,{CLINICAL},s05,,,
    P01,test,GR,CR,66,{CLINICAL},s07,,,
    P08,test,GR,CR,66,{CLINICAL},s01,,,
    P09,train,GR,CR,66,{CLINICAL},s09,,10,5
    P10,train,GR,CR,66,{CLINICAL},missing,,,
    P11,train,GR,CR,66,X,mixed,normal,normal,T3,N0-N1,M0,s11,,,
    P12,train,GR,CR,66,{CLINICAL},s12,abc,,
    P02,train,GR,CR,66,{CLINICAL},s13,,,

    P15,test,PR,SD,66,{CLINICAL},s15,,-1,
    """)
BAD_PATIENT_PROBLEMS = {
    (3, "response"), (4, "response"), (5, "age"), (6, "age"), (7, "patient_id"), (8, "study_dir"),
    (9, "first_slice"), (10, "study_dir"), (11, "sex"), (11, "lauren"), (12, "pvp_series_uid"),
    (13, "patient_id"), (15, "first_slice"),
}
BAD_READERS = textwrap.dedent("""\
    patient_id,reader,call
    P05,C3,GR
    P99,C3,GR
    P04,C3,GR
    P05,C3,PR
    P05,C20,maybe
    P15,,GR
    """)
BAD_READER_PROBLEMS = {(3, "patient_id"), (4, "patient_id"), (5, ""), (6, "call"), (7, "reader")}


@pytest.fixture
def bad_manifest(tmp_path):
    folder = tmp_path / "manifest"
    folder.mkdir()
    (folder / "manifest.yaml").write_text("name: bad\ndata_root: ../dicom\n")
    (folder / "patients.csv").write_text(BAD_PATIENTS)
    (folder / "readers.csv").write_text(BAD_READERS)
    for study in ("s01", "s02", "s03", "s04", "s05", "s07", "s09", "s11", "s12", "s13", "s15"):
        (tmp_path / "dicom" / study).mkdir(parents=True)
    return folder


def test_every_problem_is_reported_with_its_line_and_column(bad_manifest):
    # The study folders are empty: the DICOM checks (tested in test_hostile_input.py) are off here.
    problems = pm.check_manifest(bad_manifest, check_dicom=False)
    found = {(p.file, p.row, p.column) for p in problems}
    expected = {("patients.csv", r, c) for r, c in BAD_PATIENT_PROBLEMS} | {
        ("readers.csv", r, c) for r, c in BAD_READER_PROBLEMS
    }
    assert found == expected
    assert len(problems) == len(expected)
    by_place = {(p.file, p.row, p.column): p.message for p in problems}
    assert "disagrees with RECIST SD" in by_place["patients.csv", 3, "response"]
    assert "both splits" in by_place["patients.csv", 7, "patient_id"]
    assert "both splits" in by_place["patients.csv", 8, "study_dir"]
    assert "also patient P01" in by_place["patients.csv", 8, "study_dir"]
    assert "duplicate patient id P02 (also line 3)" in by_place["patients.csv", 13, "patient_id"]
    assert "first_slice 10 > last_slice 5" in by_place["patients.csv", 9, "first_slice"]
    assert "does not exist" in by_place["patients.csv", 10, "study_dir"]
    assert "unknown patient" in by_place["readers.csv", 3, "patient_id"]
    assert "test patients only" in by_place["readers.csv", 4, "patient_id"]
    assert "duplicate call of reader C3 on patient P05" in by_place["readers.csv", 5, ""]
    # Problems come sorted by file and line.
    assert problems == sorted(problems, key=lambda p: (p.file, p.row))


def test_load_manifest_raises_listing_all_problems(bad_manifest):
    with pytest.raises(pm.ManifestError) as info:
        pm.load_manifest(bad_manifest)
    assert len(info.value.problems) == len(BAD_PATIENT_PROBLEMS) + len(BAD_READER_PROBLEMS)
    text = str(info.value)
    assert "patients.csv line 5, column age: 'sixty' is not an integer" in text
    assert "readers.csv line 6, column call" in text


def test_check_files_false_skips_folder_checks_only(bad_manifest):
    found = {(p.row, p.column) for p in pm.check_manifest(bad_manifest, check_files=False) if p.file == "patients.csv"}
    assert found == BAD_PATIENT_PROBLEMS - {(10, "study_dir")}


def test_missing_and_unknown_columns(tmp_path, write_manifest):
    columns = [c for c in pm.PATIENT_COLUMNS if c not in ("age", "recist")] + ["hospital_number"]
    folder = write_manifest(tmp_path, [{"patient_id": "P1", "hospital_number": "123"}], columns=columns)
    problems = pm.check_manifest(folder, check_files=False)
    assert {(p.row, p.column) for p in problems} == {(1, "age"), (1, "recist"), (1, "hospital_number")}
    assert all(p.file == "patients.csv" for p in problems)


def test_manifest_yaml_problems(tmp_path, write_manifest):
    folder = write_manifest(tmp_path, [{"patient_id": "P1"}])
    (folder / "manifest.yaml").write_text("name: x\npositive_class: SD\ndataroot: typo\npatients: ../elsewhere.csv\n")
    problems = pm.check_manifest(folder)
    assert {(p.file, p.column) for p in problems} == {
        ("manifest.yaml", "data_root"), ("manifest.yaml", "positive_class"),
        ("manifest.yaml", "dataroot"), ("manifest.yaml", "patients"),
    }


def test_missing_data_root_is_one_problem(tmp_path, write_manifest):
    folder = write_manifest(tmp_path / "m", [{"patient_id": "P1"}, {"patient_id": "P2"}], data_root="nowhere")
    problems = pm.check_manifest(folder)
    assert [(p.file, p.column) for p in problems] == [("manifest.yaml", "data_root")]


def test_valid_manifest_loads(tiny_cohort):
    m = pm.load_manifest(tiny_cohort)
    assert m.name == "test cohort"
    assert m.data_root == (tiny_cohort.parent / "dicom").resolve()
    assert list(m.patients.columns) == list(pm.PATIENT_COLUMNS)
    assert list(m.patients["patient_id"]) == ["P001", "P002", "P003", "P004", "P005"]
    assert m.patients["age"].dtype.kind == "i"
    assert str(m.patients["first_slice"].dtype) == "Int64"
    assert m.patients["first_slice"].tolist() == [1] * 5
    assert m.study_path("P002") == m.data_root / "P002"
    assert m.study_path("P002").is_dir()
    assert m.readers.shape == (4, 3)
    assert m.positive_class == "PR"
    with pytest.raises(KeyError, match="P999"):
        m.study_path("P999")


def test_labels_follow_positive_class(tiny_cohort, write_manifest):
    m = pm.load_manifest(tiny_cohort)
    labels = m.labels()
    assert labels.to_dict() == {"P001": 0, "P002": 1, "P003": 0, "P004": 1, "P005": 0}
    assert m.labels("test").to_dict() == {"P004": 1, "P005": 0}
    (tiny_cohort / "manifest.yaml").write_text("name: test cohort\ndata_root: ../dicom\npositive_class: GR\n")
    flipped = pm.load_manifest(tiny_cohort).labels()
    assert (flipped == 1 - labels).all()
    with pytest.raises(ValueError, match="split"):
        m.labels("validation")


def test_optional_columns_may_be_absent_and_readers_file_optional(tmp_path, write_manifest):
    columns = [c for c in pm.PATIENT_COLUMNS if c not in pm.OPTIONAL_COLUMNS]
    folder = write_manifest(tmp_path, [{"patient_id": "P1"}, {"patient_id": "P2", "split": "test"}], columns=columns)
    m = pm.load_manifest(folder, check_files=False)
    assert m.patients["pvp_series_uid"].tolist() == ["", ""]
    assert m.patients["last_slice"].isna().all()
    assert m.readers.empty and list(m.readers.columns) == list(pm.READER_COLUMNS)


def test_content_hash_tracks_tables(tiny_cohort):
    m = pm.load_manifest(tiny_cohort)
    before = m.content_hash()
    assert before == provenance.manifest_hash(tiny_cohort)
    text = (tiny_cohort / "patients.csv").read_text()
    (tiny_cohort / "patients.csv").write_text(text.replace("P005,test,GR,PR,66", "P005,test,GR,PR,67"))
    assert pm.load_manifest(tiny_cohort).content_hash() != before


def test_recist_mapping_matches_paper():
    # Han et al. 2025: GR = complete or partial response, PR = stable or progressive disease.
    assert {r for r, g in pm.RECIST_TO_RESPONSE.items() if g == "GR"} == {"CR", "PR"}
    assert {r for r, g in pm.RECIST_TO_RESPONSE.items() if g == "PR"} == {"SD", "PD"}


def test_cli_ok_summary(tiny_cohort, capsys):
    assert pm.main([str(tiny_cohort)]) == 0
    *notes, out = capsys.readouterr().out.strip().splitlines()
    assert out == "OK test cohort: 5 patients; train 3 (GR 2, PR 1); test 2 (GR 1, PR 1); 2 readers, 4 calls"
    # Slices 1..4 of each 6-slice series: fewer than the 10 of the patient score, noted but legal.
    assert len(notes) == 5 and all(n.startswith("note: patients.csv line") and "keeps 4 slice(s)" in n for n in notes)


def test_cli_lists_problems_and_fails(bad_manifest, capsys):
    assert pm.main([str(bad_manifest), "--no-dicom"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(BAD_PATIENT_PROBLEMS) + len(BAD_READER_PROBLEMS) + 1
    assert "patients.csv line 10, column study_dir: folder" in "\n".join(lines)
    assert pm.main([str(bad_manifest), "--no-files"]) == 1
    assert len(capsys.readouterr().out.strip().splitlines()) == len(lines) - 1


def test_cli_through_python_m_pdlib(tiny_cohort):
    done = subprocess.run(
        [sys.executable, "-m", "pdlib", "check-manifest", str(tiny_cohort), "--no-files"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK test cohort: 5 patients")
    # check-manifest must stay light: no torch, no pydicom.
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, pdlib.manifest; print('torch' in sys.modules, 'pydicom' in sys.modules)"],
        capture_output=True, text=True, timeout=120,
    )
    assert probe.stdout.split() == ["False", "False"]


def test_dataframe_is_independent_of_file_order_quirks(tmp_path, write_manifest):
    # Cells are stripped, a UTF-8 byte-order mark is ignored, "NA" is a valid id, not a missing value.
    folder = write_manifest(tmp_path, [{"patient_id": "NA"}], data_root=".")
    text = (folder / "patients.csv").read_text().replace("NA,train", " NA , train ")
    (folder / "patients.csv").write_text("\ufeff" + text)
    m = pm.load_manifest(folder, check_files=False)
    assert m.patients["patient_id"].tolist() == ["NA"]
    assert isinstance(m.patients, pd.DataFrame)


def test_readme_documents_the_schema_in_force():
    from pdlib import paths

    readme = (paths.manifest_dir() / "README.md").read_text(encoding="utf-8")
    for column in pm.PATIENT_COLUMNS + pm.READER_COLUMNS:
        assert f"| `{column}` |" in readme, column
    for key in pm.MANIFEST_KEYS:
        assert f"| `{key}` |" in readme, key
    for column, values in pm.CATEGORIES.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{column}` |"))
        assert all(f"`{v}`" in row for v in values), column
    assert "python -m pdlib check-manifest" in readme


def test_row_with_too_many_cells(tmp_path, write_manifest):
    folder = write_manifest(tmp_path, [{"patient_id": "P1"}, {"patient_id": "P2"}])
    lines = (folder / "patients.csv").read_text().splitlines()
    lines[2] += ",surplus"
    (folder / "patients.csv").write_text("\n".join(lines) + "\n")
    problems = pm.check_manifest(folder, check_files=False)
    assert [(p.row, p.column, p.message) for p in problems] == [(3, "", "17 cells for 16 columns")]
