"""The study pipeline end to end: twin -> Snakemake + papermill -> Jupyter Book.

The smoke study (``workflow/config/smoke.yaml``: five tiny trainings, every
chapter) runs once per test session on a 14-patient twin in a temporary
folder, with a temporary copy of the book's sources (:func:`smoke_study`,
shared with ``tests/test_privacy.py``). Then:

* every chapter is executed, stamped and rendered by
  ``jupyter-book build -W -n --keep-going``;
* a second Snakemake run has nothing to do and nothing is stale;
* changing one parameter makes exactly the chapters that use it stale, and a
  dry run of Snakemake plans exactly those;
* ``python -m pdlib.pipeline check-stale`` fails in CI on a stale result and
  only warns otherwise.

The rest are quick checks of :mod:`pdlib.pipeline` on its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import run_process_group

from pdlib import pipeline

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: Size of the twin of the smoke study: enough patients for every RECIST
#: category and both response groups in the test split.
TWIN_SIZE = dict(n_patients=14, matrix=64, n_slices=12, signal_strength=3.0)


def _snakemake(folder: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    command = [str(BIN / "snakemake"), "--snakefile", str(ROOT / "workflow" / "Snakefile"),
               "--directory", str(folder), "-j", "2", "--rerun-triggers", "mtime", "params",
               *extra, "--config", *[f"{k}={v}" for k, v in config.items()]]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return run_process_group(command, env=env, timeout=900)


def smoke_study(base: Path) -> dict:
    """Build (once per folder) the smoke study into ``base``; return its folders and config.

    ``base/twin`` holds the twin, ``base/book`` a copy of the book sources
    whose ``runs/`` the pipeline fills, ``base/results`` the run folders.
    """
    done = base / "built.json"
    if done.is_file():
        return json.loads(done.read_text())
    from pdlib.twin import generate_twin

    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    generate_twin(base / "twin", **TWIN_SIZE)
    book = base / "book"
    book.mkdir()
    for path in [*ROOT.joinpath("book").glob("*.md"), ROOT / "book" / "references.bib",
                 ROOT / "_config.yml", ROOT / "_toc.yml"]:
        shutil.copy(path.resolve(), book / path.name)
    # the verdict study's committed chapter is a book source like the prose pages (its own run)
    shutil.copytree(ROOT / "book" / "verdict", book / "verdict")
    config = {"profile": "smoke", "manifest": str(base / "twin" / "manifest"), "twin": str(base / "twin"),
              "results": str(base / "results"), "book_runs": str(book / "runs"), "cache": str(base / "cache")}
    run = _snakemake(base, config)
    assert run.returncode == 0, f"snakemake failed:\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}"
    build = subprocess.run([str(BIN / "jupyter-book"), "build", str(book), "-W", "-n", "--keep-going"],
                           capture_output=True, text=True, timeout=600)
    info = {"base": str(base), "config": config, "book": str(book), "html": str(book / "_build" / "html"),
            "snakemake_log": run.stderr[-20000:], "book_returncode": build.returncode,
            "book_log": (build.stdout + build.stderr)[-8000:]}
    done.write_text(json.dumps(info))
    return info


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> dict:
    return smoke_study(tmp_path_factory.getbasetemp() / "smoke-study")


# --------------------------------------------------------------------------- the whole pipeline


@pytest.mark.slow
def test_smoke_study_executes_every_chapter_and_the_book_builds(study):
    assert study["book_returncode"] == 0, f"jupyter-book build failed:\n{study['book_log']}"
    targets = pipeline.plan(pipeline.load_study(study["config"]))
    notebooks = [t for t in targets.values() if t.kind == "notebook"]
    chapters = {Path(t.output).stem for t in notebooks}
    # every chapter but the verdict's, which needs an external set (tests/test_verdict_study.py runs it)
    assert set(pipeline.CHAPTER_NAMES) - {"02_baseline", *pipeline.EXTERNAL_CHAPTERS} <= chapters
    assert {"10_efficientnet_b7", "09_efficientnet_b3"} <= chapters  # one page per baseline arm, in Table 2 order
    html = Path(study["html"])
    for target in notebooks:
        nb = nbformat.read(str(target.output), as_version=4)
        stamp = nb.metadata[pipeline.METADATA_KEY]
        assert stamp["parameters"]["profile"] == "smoke" and stamp["parameters"] == json.loads(
            json.dumps(target.parameters, sort_keys=True))
        code = [c for c in nb.cells if c.cell_type == "code"]
        # code is folded; a cell that shows nothing is removed (no empty "show code" toggle)
        assert all("hide-input" in c.metadata.get("tags", []) or ("remove-cell" in c.metadata.get("tags", [])
                   and not c.get("outputs")) for c in code), target.id
        # the template's defaults were replaced: only papermill's injected values are shown
        tags = [t for c in code for t in c.metadata.get("tags", [])]
        assert tags.count("injected-parameters") == 1 and "parameters" not in tags, target.id
        errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{target.id}: {errors[0]}"
        page = html / Path(target.output).relative_to(study["book"]).with_suffix(".html")
        text = page.read_text(encoding="utf-8")
        # the run statement, generated from the parameters, names the profile and the cohort
        assert re.search(r"training profile <strong>smoke</strong>", text), page
    members = [t for t in targets.values() if t.kind == "member"]
    main = [t.id for t in members if t.id.startswith("member/")]
    # b7, b3, b7--b7, b7--b7mn, b7--b7mn--b7mn: arms that share members train them once
    assert sorted(main) == sorted(f"member/seed0/{k}" for k in ("b7", "b3", "b7--b7", "b7--b7mn", "b7--b7mn--b7mn"))
    # the signal sweep: one B3 baseline on each of two twins
    assert sorted(t.id for t in members if t.id.startswith("sweep/")) == [
        "sweep/signal0_n12/seed0/b3", "sweep/signal3_n12/seed0/b3"]
    for member in members:
        assert (Path(member.output).parent / "patient_predictions.csv").is_file()
    sweep_page = (html / "runs" / "11_sweep.html").read_text(encoding="utf-8")
    assert "The sweep trained 1 arm with 1 seed on 2 twins" in sweep_page
    # numbers in the prose come from the run: the glued test AUC of the results page is its table's
    results_page = (html / "runs" / "06_results.html").read_text(encoding="utf-8")
    assert "reaches a test AUC of" in results_page and "{glue" not in results_page
    # multiplicity is stated: each arm against chance and the best arm against the others, Holm-adjusted
    assert "after Holm" in results_page and "Holm p-value" in results_page


@pytest.mark.slow
def test_second_run_has_nothing_to_do(study):
    assert pipeline.stale_targets(pipeline.load_study(study["config"])) == {}
    again = _snakemake(Path(study["base"]), study["config"], "-n")
    assert again.returncode == 0, again.stderr[-4000:]
    assert "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_the_cohort_is_decoded_once_before_the_members_start(study, tmp_path):
    import numpy as np

    from pdlib.manifest import load_manifest
    from pdlib.slices import load_cohort

    warm = json.loads((Path(study["config"]["results"]) / "warm" / "study.json").read_text())
    assert warm["patients"] == TWIN_SIZE["n_patients"] and warm["resize"] == 40
    # the same ingestion in two processes fills a cache that a member's load then reads without rewriting it
    summary = pipeline.warm_cache(study["config"]["manifest"], resize=40, cache_dir=tmp_path / "warm", n_jobs=2)
    assert summary["patients"] == TWIN_SIZE["n_patients"]
    entries = sorted((tmp_path / "warm" / "slices").glob("*.npy"))
    assert len(entries) == TWIN_SIZE["n_patients"]
    written = {p: p.stat().st_mtime_ns for p in entries}
    manifest = load_manifest(study["config"]["manifest"])
    warmed = load_cohort(manifest, split=None, resize=40, cache_dir=tmp_path / "warm")
    assert {p: p.stat().st_mtime_ns for p in entries} == written
    cold = load_cohort(manifest, split=None, resize=40, cache_dir=tmp_path / "cold")
    assert [p.patient_id for p in warmed] == [p.patient_id for p in cold]
    assert all(np.array_equal(a.slices, b.slices) for a, b in zip(warmed, cold))
    with pytest.raises(ValueError, match="n_jobs"):
        pipeline.warm_cache(study["config"]["manifest"], resize=40, cache_dir=tmp_path / "warm", n_jobs=0)


def _planned_jobs(dry_run_output: str) -> dict[str, int]:
    """Rule -> number of jobs in the job-stats table of a Snakemake dry run."""
    table = re.search(r"Job stats:\n(.*?)\n\n", dry_run_output, re.S)
    if table is None:
        return {}
    jobs = {}
    for line in table.group(1).splitlines()[2:]:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            jobs[parts[0]] = int(parts[1])
    return jobs


@pytest.mark.slow
def test_changing_one_parameter_makes_exactly_its_chapters_stale(study):
    changed = {**study["config"], "best_arm": "kd_b7"}
    stale = pipeline.stale_targets(pipeline.load_study(changed))
    assert set(stale) == {"runs/06_results", "runs/07_clinicians", "runs/08_heatmaps", "runs/10_checklist"}
    assert all(any("parameters changed: best_arm" in r for r in reasons) for reasons in stale.values())
    dry = _snakemake(Path(study["base"]), changed, "-n")
    assert dry.returncode == 0, dry.stderr[-4000:]
    assert _planned_jobs(dry.stdout + dry.stderr) == {"all": 1, "chapter": 4}
    for chapter in ("06_results", "07_clinicians", "08_heatmaps", "10_checklist"):
        assert f"chapter={chapter}" in dry.stdout + dry.stderr


@pytest.mark.slow
def test_changing_the_sweep_twins_geometry_reruns_them(study):
    base = pipeline.load_study(study["config"])
    changed = {**study["config"], "signal_sweep": {**base.signal_sweep, "slices": 14}}
    stale = pipeline.stale_targets(pipeline.load_study(changed))
    assert set(stale) == {"runs/11_sweep"}  # the members follow once their regenerated twins differ
    dry = _snakemake(Path(study["base"]), changed, "-n")
    assert dry.returncode == 0, dry.stderr[-4000:]
    jobs = _planned_jobs(dry.stdout + dry.stderr)
    assert jobs.get("sweep_twin") == 2 and jobs.get("train_sweep_member") == 2, jobs


@pytest.mark.slow
def test_check_stale_fails_in_ci_and_warns_otherwise(study):
    def check(config, *, ci):
        args = [f"{k}={v}" for k, v in config.items()]
        env = {**os.environ, "CI": "true" if ci else "false"}
        return subprocess.run([sys.executable, "-m", "pdlib.pipeline", "check-stale", "--config", *args],
                              capture_output=True, text=True, env=env, timeout=300)

    current = check(study["config"], ci=True)
    assert current.returncode == 0 and "is current" in current.stderr
    changed = {**study["config"], "best_arm": "kd_b7"}
    failing = check(changed, ci=True)
    assert failing.returncode == 1
    assert "ERROR" in failing.stderr and "runs/07_clinicians" in failing.stderr
    warning = check(changed, ci=False)
    assert warning.returncode == 0 and "WARNING" in warning.stderr and "runs/08_heatmaps" in warning.stderr


@pytest.mark.slow
def test_a_changed_template_or_rerun_input_is_stale(study, tmp_path):
    targets = pipeline.plan(pipeline.load_study(study["config"]))
    target = targets["runs/09_audit"]
    template = tmp_path / "09_audit.ipynb"
    nb = nbformat.read(str(target.template), as_version=4)
    nbformat.write(nb, str(template))
    same = pipeline.Target(**{**target.__dict__, "template": template})
    assert pipeline.own_stale_reasons(same, targets) == []
    nb.cells[0].source += "\n\nA new sentence."
    nbformat.write(nb, str(template))
    assert pipeline.own_stale_reasons(same, targets) == ["template 09_audit.ipynb changed"]
    # a chapter that read a member's results is stale once that member's stamp changes
    chapter = targets["runs/07_clinicians"]
    member = targets["member/seed0/b7--b7mn--b7mn"]
    reasons_before = pipeline.own_stale_reasons(chapter, targets)
    stamp_file = Path(member.output)
    original = stamp_file.read_text()
    try:
        stamp_file.write_text(original.replace('"pdlib_version"', '"note": "retrained",\n  "pdlib_version"', 1))
        reasons = pipeline.own_stale_reasons(chapter, targets)
    finally:
        stamp_file.write_text(original)
    assert reasons_before == []
    assert reasons == ["input member/seed0/b7--b7mn--b7mn was produced again after this result"]


# --------------------------------------------------------------------------- pdlib.pipeline on its own


def test_configurations_inherit_and_validate(tmp_path):
    (tmp_path / "smoke.yaml").write_text("profile: smoke\narms: [efficientnet_b3]\nbest_arm: efficientnet_b3\n")
    (tmp_path / "many_seeds.yaml").write_text("profile: smoke\nseeds: [0, 1, 2]\n")
    study = pipeline.load_study({"profile": "many_seeds", "results": "out"}, config_dir=tmp_path)
    assert (study.profile, study.name, study.seeds, study.arms, study.results) == (
        "smoke", "many_seeds", (0, 1, 2), ("efficientnet_b3",), "out")
    ids = list(pipeline.plan(study))
    assert ids[:3] == ["member/seed0/b3", "member/seed1/b3", "member/seed2/b3"]
    with pytest.raises(ValueError, match=r"unknown arm\(s\) \['pd_b9'\]"):
        pipeline.load_study({"profile": "smoke", "arms": ["pd_b9"]}, config_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown key"):
        pipeline.load_study({"profile": "smoke", "book": "x"}, config_dir=tmp_path)
    with pytest.raises(ValueError, match="epochs"):
        pipeline.load_study({"profile": "smoke", "overrides": {"epochs": 0}}, config_dir=tmp_path)
    with pytest.raises(ValueError, match="best_arm"):
        pipeline.load_study({"profile": "smoke", "best_arm": "pd_b7"}, config_dir=tmp_path)


def test_shipped_configurations_load():
    for path in sorted((ROOT / "workflow" / "config").glob("*.yaml")):
        study = pipeline.load_study({"profile": path.stem})
        assert study.name == path.stem and study.arms, path
        assert pipeline.plan(study), path
