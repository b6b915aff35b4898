"""The committed reference run (``book/runs/``) is current and renders.

A fresh clone renders the whole study with ``jupyter-book build book``
because the executed notebooks of the demo profile are committed. These
tests keep that promise honest in CI:

- every chapter the demo configuration produces is committed, and its stamp
  (``pdlib.provenance``) matches the current code, manifest, template and
  parameters: a change to what pdlib computes, to ``data_manifest/``, to a
  template or to the demo configuration fails here until the reference run is
  redone (``make book``);
- the committed book, results chapters included, builds with ``-W -n``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from pdlib import pipeline, provenance

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _demo_notebooks():
    study = pipeline.load_study({"profile": "demo"})
    targets = pipeline.plan(study)
    return [t for t in targets.values() if t.kind == "notebook"]


def test_every_demo_chapter_is_committed_and_current():
    code, manifest = provenance.code_hash(), provenance.manifest_hash(ROOT / "data_manifest")
    problems = []
    notebooks = _demo_notebooks()
    assert len(notebooks) >= 11
    for target in notebooks:
        path = ROOT / target.output if not Path(target.output).is_absolute() else Path(target.output)
        if not path.is_file():
            problems.append(f"{target.id}: not committed ({path})")
            continue
        stamp = nbformat.read(str(path), as_version=4).metadata.get(pipeline.METADATA_KEY)
        if not stamp:
            problems.append(f"{target.id}: no provenance stamp")
            continue
        if stamp["code_hash"] != code:
            problems.append(f"{target.id}: made by code {stamp['code_hash']}, code is now {code}")
        if stamp["manifest_hash"] != manifest:
            problems.append(f"{target.id}: made from manifest {stamp['manifest_hash']}, now {manifest}")
        if stamp.get("template_hash") != pipeline.template_hash(ROOT / target.template):
            problems.append(f"{target.id}: its template {target.template} changed")
        if stamp["parameters"] != json.loads(json.dumps(target.parameters, sort_keys=True, default=str)):
            problems.append(f"{target.id}: its parameters changed")
    assert not problems, "stale reference run; redo it with `make book`:\n" + "\n".join(problems)


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
