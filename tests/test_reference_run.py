"""The committed reference run (``book/runs/``) is current and renders.

A fresh clone renders the whole study with ``jupyter-book build book``
because the executed notebooks of the demo profile are committed. These
tests keep that promise honest in CI:

- every chapter the demo configuration produces is committed, and nothing a
  rerun would redo is pending (:func:`pdlib.pipeline.committed_run_staleness`):
  each chapter's own code scope, manifest, template and parameters, and the
  training code its members were trained by. The failure names exactly what
  is stale: a figure change lists chapters only; a change to the training
  code lists the members and every chapter;
- the committed book, results chapters included, builds with ``-W -n``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pdlib import pipeline

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _demo_notebooks():
    study = pipeline.load_study({"profile": "demo"})
    targets = pipeline.plan(study)
    return [t for t in targets.values() if t.kind == "notebook"]


def test_every_demo_chapter_is_committed_and_current():
    assert len(_demo_notebooks()) >= 11
    stale = pipeline.committed_run_staleness(pipeline.load_study({"profile": "demo"}))
    members = [tid for tid in stale if tid.startswith("member/")]
    chapters = [tid for tid in stale if not tid.startswith("member/")]
    lines = []
    if members:
        lines.append(f"{len(members)} members to retrain ({stale[members[0]][0]})")
    lines += [f"{tid}: {'; '.join(reasons)}" for tid, reasons in stale.items() if tid in chapters]
    assert not stale, ("stale reference run; `make book` reruns exactly this:\n" + "\n".join(lines))


@pytest.mark.slow
def test_the_committed_book_builds_without_warnings(tmp_path):
    book = tmp_path / "book"
    shutil.copytree(ROOT / "book", book, symlinks=False, ignore=shutil.ignore_patterns("_build"))
    build = subprocess.run([str(BIN / "jupyter-book"), "build", str(book), "-W", "-n", "--keep-going"],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, (build.stdout + build.stderr)[-6000:]
    html = book / "_build" / "html"
    for target in _demo_notebooks():
        rel = Path(target.output).relative_to("book") if not Path(target.output).is_absolute() else None
        if rel is not None:
            assert (html / rel.with_suffix(".html")).is_file(), rel


def test_the_verdict_chapter_is_committed_and_current():
    study = pipeline.load_study({"profile": "verdict"})
    chapter = pipeline.plan(study)["runs/12_verdict"]
    assert Path(chapter.output).is_file(), f"{chapter.output}: run `make verdict` and commit it"
    stale = pipeline.committed_run_staleness(study)
    members = [tid for tid in stale if not tid.startswith("runs/")]
    lines = ([f"{len(members)} members or scorings to redo ({stale[members[0]][0]})"] if members else []) + [
        f"{tid}: {'; '.join(reasons)}" for tid, reasons in stale.items() if tid.startswith("runs/")]
    assert not stale, "stale verdict run; `make verdict` reruns exactly this:\n" + "\n".join(lines)


def _glued(notebook: Path) -> dict[str, str]:
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    out = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            data = output.get("data", {})
            if name:
                out[name] = data.get("application/papermill.record/text/markdown") or data.get(
                    "application/papermill.record/text/plain", "")
    return out


def test_the_pages_say_where_thresholds_came_from_as_the_run_did():
    """The prose that names a threshold's source is generated, and agrees with the study's folds."""
    from pdlib.arms import ARMS

    for config, chapter, key in (("demo", "runs/06_results", "threshold_text"),
                                 ("verdict", "runs/12_verdict", "run_statement")):
        study = pipeline.load_study({"profile": config})
        target = pipeline.plan(study)[chapter]
        text = _glued(Path(target.output))[key]
        shown = [a for a in target.parameters["arms"]]
        with_folds = [a for a in shown if study.oof and a in study.oof["arms"]]
        without = [a for a in shown if a not in with_folds]
        if with_folds:
            assert "out-of-fold" in text, (chapter, text)
            assert all(ARMS[a].label in text for a in with_folds) or "for every arm" in text, (chapter, text)
        if without:
            assert "resubstitution" in text, (chapter, text)
        if not with_folds:
            assert "out-of-fold scores of the training patients for" not in text, (chapter, text)
    # the hand-written pages never claim one source for every arm
    for page in ("intro.md", "methods.md"):
        prose = " ".join((ROOT / "book" / page).read_text(encoding="utf-8").split())
        assert "on out-of-fold predictions where the study trains folds" in prose or "Which arms have folds" in prose
