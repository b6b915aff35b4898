"""Stamps cover the code a result depends on, no more and no less (pdlib.provenance, pdlib.pipeline).

A figure change must rerun chapters only; a change to the training code must
rerun the members (and, downstream, the chapters). The checks edit a copy of
the package and ask the real staleness code which results that copy would
make stale: on small synthetic packages, on the real ``pdlib``, and on the
smoke study's real stamps (:func:`tests.test_pipeline.smoke_study`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import pdlib
from pdlib import pipeline, provenance

ROOT = Path(__file__).resolve().parents[1]
MEMBER = "pdlib.pipeline:run_member"


def _copy_package(tmp_path: Path) -> Path:
    dst = tmp_path / "pdlib"
    shutil.copytree(Path(pdlib.__file__).parent, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def _chapter_scope(template: str, package_dir=None) -> dict:
    return provenance.module_code_digests(provenance.notebook_modules(ROOT / "notebooks" / template), package_dir)


# --------------------------------------------------------------------------- the closure on synthetic packages


def test_closure_follows_function_local_relative_and_submodule_imports(tmp_path):
    pkg = tmp_path / "pdlib"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "data").mkdir()
    (pkg / "__init__.py").write_text("__version__ = '1'\n")
    (pkg / "a.py").write_text("def f():\n    from pdlib import b\n    return b.g()\n")
    (pkg / "b.py").write_text("from .sub import c\n\ndef g():\n    return c.h()\n")
    (pkg / "sub" / "__init__.py").write_text("X = 1\n")
    (pkg / "sub" / "c.py").write_text("import yaml\n\ndef h():\n    return open('table.yaml')\n")
    (pkg / "lonely.py").write_text("import pdlib.a\n")
    (pkg / "data" / "table.yaml").write_text("a: 1\n")
    (pkg / "data" / "other.yaml").write_text("b: 1\n")
    digests = provenance.module_code_digests(["pdlib.a"], pkg)
    assert list(digests) == ["pdlib/a.py", "pdlib/b.py", "pdlib/data/table.yaml", "pdlib/sub/__init__.py",
                             "pdlib/sub/c.py"]
    # a module that imports a.py is not in a.py's scope; the version-holding __init__ never is
    assert "pdlib/lonely.py" not in digests and "pdlib/__init__.py" not in digests


def test_a_function_scope_is_the_function_its_callees_and_what_they_import(tmp_path):
    pkg = tmp_path / "pdlib"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fig.py").write_text("def draw():\n    return 1\n")
    (pkg / "fit.py").write_text("def step():\n    return 2\n")
    (pkg / "run.py").write_text(
        "from pdlib import fig, fit\n\n"
        "def helper():\n    return fit.step()\n\n"
        "def train():\n    \"\"\"Doc.\"\"\"\n    return helper()\n\n"
        "def plot():\n    return fig.draw()\n")
    scope = provenance.function_code_digests("pdlib.run:train", pkg)
    assert set(scope) == {"pdlib/fit.py", "pdlib/run.py::helper", "pdlib/run.py::train"}
    before = dict(scope)
    # editing an unrelated function of the same module or a module it does not reach changes nothing
    (pkg / "run.py").write_text((pkg / "run.py").read_text().replace("return fig.draw()", "return fig.draw() + 1"))
    (pkg / "fig.py").write_text("def draw():\n    return 3\n")
    provenance._MEMO.clear()
    assert provenance.function_code_digests("pdlib.run:train", pkg) == before
    # a docstring is not code; a callee's body is
    (pkg / "run.py").write_text((pkg / "run.py").read_text().replace('"""Doc."""', '"""Other words."""'))
    assert provenance.function_code_digests("pdlib.run:train", pkg) == before
    (pkg / "fit.py").write_text("def step():\n    return 4\n")
    after = provenance.function_code_digests("pdlib.run:train", pkg)
    assert provenance.code_changes(before, after) == ["pdlib/fit.py"]


def test_stale_reasons_name_the_changed_files(tmp_path):
    (tmp_path / "manifest.yaml").write_text("name: x\n")
    code = {"pdlib/a.py": "1", "pdlib/b.py": "2"}
    stamp = provenance.make_stamp(manifest_dir=tmp_path, code=code, parameters={"seed": 0})
    assert provenance.stale_reasons(stamp, manifest_dir=tmp_path, code=code, parameters={"seed": 0}) == []
    reasons = provenance.stale_reasons(stamp, manifest_dir=tmp_path, code={**code, "pdlib/b.py": "3"})
    assert reasons == ["code changed: pdlib/b.py"]
    old = {k: v for k, v in stamp.items() if k != "code"}  # a stamp from before per-file scopes
    assert provenance.stale_reasons(old, manifest_dir=tmp_path, code=code)[0].startswith("code changed")


# --------------------------------------------------------------------------- the real package


def test_figure_and_report_code_are_outside_the_training_scope():
    scope = provenance.function_code_digests(MEMBER)
    files = {k.split("::")[0] for k in scope}
    for module in ("figures.py", "stats.py", "audit.py", "explain.py", "provenance.py", "cli.py"):
        assert f"pdlib/{module}" not in files, module
    for module in ("train.py", "distill.py", "models.py", "slices.py", "dicom.py", "infer.py"):
        assert f"pdlib/{module}" in files, module
    # the pipeline's planning and bookkeeping are not training code either
    assert "pdlib/pipeline.py::run_member" in scope and "pdlib/pipeline.py" not in scope
    assert not any(k.endswith(("::plan", "::make_target_stamp", "::stale_targets")) for k in scope)


def test_editing_a_figure_function_changes_chapters_only(tmp_path):
    pkg = _copy_package(tmp_path)
    member_before = provenance.function_code_digests(MEMBER, pkg)
    chapter_before = _chapter_scope("06_results.ipynb", pkg)
    _append(pkg / "figures.py", "FIGURE_DPI_TWEAK = 1")
    assert provenance.function_code_digests(MEMBER, pkg) == member_before
    assert provenance.code_changes(chapter_before, _chapter_scope("06_results.ipynb", pkg)) == ["pdlib/figures.py"]


def test_editing_the_distillation_code_changes_the_members(tmp_path):
    pkg = _copy_package(tmp_path)
    before = provenance.function_code_digests(MEMBER, pkg)
    _append(pkg / "distill.py", "DISTILL_TWEAK = 1")
    assert provenance.code_changes(before, provenance.function_code_digests(MEMBER, pkg)) == ["pdlib/distill.py"]


def test_planning_code_and_docstrings_do_not_retrain(tmp_path):
    pkg = _copy_package(tmp_path)
    before = provenance.function_code_digests(MEMBER, pkg)
    _append(pkg / "pipeline.py", "def a_new_planning_helper():\n    return plan")
    text = (pkg / "train.py").read_text()
    (pkg / "train.py").write_text(text.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n")
    assert provenance.function_code_digests(MEMBER, pkg) == before


# --------------------------------------------------------------------------- the smoke study's real stamps


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from test_pipeline import smoke_study

    return smoke_study(tmp_path_factory.getbasetemp() / "smoke-study")


@pytest.mark.slow
def test_a_figure_change_makes_chapters_stale_and_no_member(smoke, tmp_path):
    study = pipeline.load_study(smoke["config"])
    assert pipeline.stale_targets(study) == {}
    pkg = _copy_package(tmp_path)
    _append(pkg / "figures.py", "FIGURE_DPI_TWEAK = 1")
    stale = pipeline.stale_targets(study, package_dir=pkg)
    targets = pipeline.plan(study)
    figure_chapters = {tid for tid, t in targets.items() if t.kind == "notebook"
                       and "pdlib/figures.py" in pipeline.code_scope(t)}
    assert figure_chapters and set(stale) == figure_chapters
    assert all("code changed: pdlib/figures.py" in reasons for reasons in stale.values())
    assert set(pipeline.committed_run_staleness(study, package_dir=pkg)) == figure_chapters


@pytest.mark.slow
def test_a_training_change_makes_every_member_and_chapter_stale(smoke, tmp_path):
    study = pipeline.load_study(smoke["config"])
    pkg = _copy_package(tmp_path)
    _append(pkg / "distill.py", "DISTILL_TWEAK = 1")
    targets = pipeline.plan(study)
    members = {tid for tid, t in targets.items() if t.kind == "member"}
    readers = {tid for tid, t in targets.items() if t.kind == "notebook" and t.inputs}
    stale = pipeline.stale_targets(study, package_dir=pkg)
    assert members <= set(stale) and readers <= set(stale)
    assert all(stale[m][0] == "code changed: pdlib/distill.py" for m in members)
    committed = pipeline.committed_run_staleness(study, package_dir=pkg)
    assert members | readers <= set(committed)
    assert committed[next(iter(members))] == ["training code changed: pdlib/distill.py"]
