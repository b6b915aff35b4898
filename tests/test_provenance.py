"""Provenance stamps and staleness (pdlib.provenance)."""

import shutil
from pathlib import Path

import pdlib
from pdlib import provenance


def _copy_package(tmp_path: Path) -> Path:
    dst = tmp_path / "pkg"
    shutil.copytree(Path(pdlib.__file__).parent, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_code_hash_ignores_docstrings_and_comments_but_not_code(tmp_path):
    pkg = _copy_package(tmp_path)
    before = provenance.code_hash(pkg)
    target = pkg / "slices.py"
    text = target.read_text()
    # A comment, a blank line and a docstring edit change nothing.
    target.write_text(text.replace('"""From HU volumes', '"""Reworded: from HU volumes', 1) + "\n# a comment\n")
    assert provenance.code_hash(pkg) == before
    # A changed constant is a changed result.
    target.write_text(text.replace("HU_WINDOW = (-215.0, 285.0)", "HU_WINDOW = (-200.0, 285.0)"))
    assert provenance.code_hash(pkg) != before


def test_manifest_hash_tracks_content(tmp_path):
    (tmp_path / "manifest.yaml").write_text("name: x\n")
    (tmp_path / "patients.csv").write_text("patient_id\nA\n")
    h1 = provenance.manifest_hash(tmp_path)
    (tmp_path / "patients.csv").write_text("patient_id\nB\n")
    assert provenance.manifest_hash(tmp_path) != h1


def test_stale_reasons_name_what_changed(tmp_path):
    (tmp_path / "manifest.yaml").write_text("name: x\n")
    code = provenance.module_code_digests(["pdlib.slices"])
    stamp = provenance.make_stamp(manifest_dir=tmp_path, code=code, parameters={"arm": "b7", "seed": 0})
    assert stamp["pdlib_version"] == pdlib.__version__ and stamp["code_hash"] == provenance.combine(code)
    assert provenance.stale_reasons(stamp, manifest_dir=tmp_path, code=code, parameters={"arm": "b7", "seed": 0}) == []
    reasons = provenance.stale_reasons(stamp, manifest_dir=tmp_path, code=code, parameters={"arm": "b7", "seed": 1})
    assert reasons == ["parameters changed: seed"]
    (tmp_path / "manifest.yaml").write_text("name: y\n")
    assert any(r.startswith("manifest changed")
               for r in provenance.stale_reasons(stamp, manifest_dir=tmp_path, code=code))
    changed = {**code, "pdlib/slices.py": "0" * 16}
    assert "code changed: pdlib/slices.py" in provenance.stale_reasons(stamp, manifest_dir=tmp_path, code=changed)
