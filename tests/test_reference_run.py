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
