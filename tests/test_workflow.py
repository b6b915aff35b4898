"""workflow/Snakefile on a small part of the smoke study: quoting and benchmark tables.

:func:`small_study` runs two trainings of the smoke profile (EfficientNet-B3
and -B7 baselines) and chapter 2 (one page per arm and its index) on a
14-patient twin, through Snakemake with any extra arguments (the SLURM test,
``tests/test_slurm.py``, reuses it with the SLURM executor). Here it runs
from a folder whose name holds a space and a command substitution, which an
unquoted path in a shell command would split or execute.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import run_process_group

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: The twin of the smoke study (tests/test_pipeline.py).
TWIN_SIZE = dict(n_patients=14, matrix=64, n_slices=12, signal_strength=3.0)

#: Members trained by :func:`small_study`, and its chapter.
MEMBERS = ("b3", "b7")
ARMS = ("efficientnet_b3", "efficientnet_b7")
CHAPTER = "02_baseline"


def make_twin(folder: Path) -> Path:
    from pdlib.twin import generate_twin

    generate_twin(folder, **TWIN_SIZE)
    return folder


def small_study(base: Path, twin: Path, *extra: str, env: dict | None = None,
                timeout: int = 600) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the small study into ``base`` (results, book runs, cache) from ``twin``; return the run and config."""
    base.mkdir(parents=True, exist_ok=True)
    config = {"profile": "smoke", "manifest": str(twin / "manifest"), "twin": str(twin),
              "results": str(base / "results"), "book_runs": str(base / "book" / "runs"),
              "cache": str(base / "cache"), "arms": list(ARMS), "best_arm": ARMS[0],
              "chapters": [CHAPTER], "signal_sweep": None, "oof": None}
    configfile = base / "study.yaml"
    configfile.write_text(yaml.safe_dump(config))
    command = [str(BIN / "snakemake"), "--snakefile", str(ROOT / "workflow" / "Snakefile"),
               "--directory", str(base), "-j", "2", *extra,  # before the options that take several values
               "--rerun-triggers", "mtime", "params", "--configfile", str(configfile)]
    run_env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    return run_process_group(command, env=run_env, timeout=timeout), config


def baseline_pages(book_runs: Path) -> set[str]:
    """The arms of the baseline pages of chapter 2 (file names ``<position>_<arm>.ipynb``)."""
    return {re.sub(r"^\d\d_", "", p.stem) for p in (book_runs / "baselines").glob("*.ipynb")}


def predictions(results: Path) -> dict[str, bytes]:
    """The patient predictions of every member, by member."""
    return {m: (results / "seed0" / m / "patient_predictions.csv").read_bytes() for m in MEMBERS}


@pytest.mark.slow
def test_study_runs_from_a_folder_with_a_space_and_a_command_substitution(tmp_path):
    parent = tmp_path / "parent"
    base = parent / "a b$(touch stray)"
    twin = make_twin(base / "twin")
    before = set(os.listdir(tmp_path)), set(os.listdir(parent))
    run, config = small_study(base, twin)
    assert run.returncode == 0, f"snakemake failed:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    # No word of a split path and no file made by the substitution, anywhere.
    assert (set(os.listdir(tmp_path)), set(os.listdir(parent))) == before
    assert not list(tmp_path.rglob("stray")) and not (Path.cwd() / "stray").exists()
    results = base / "results"
    assert all(len(v) > 0 for v in predictions(results).values())
    for member in MEMBERS:
        log = results / "logs" / "seed0" / f"{member}.log"
        assert log.is_file()  # the quoted redirect wrote the log where it belongs
    assert baseline_pages(base / "book" / "runs") == set(ARMS)
    # Every rule wrote its benchmark table under <results>/benchmarks.
    tables = sorted((results / "benchmarks").rglob("*.tsv"))
    names = sorted(re.sub(r"baselines/\d\d_", "baselines/", p.relative_to(results / "benchmarks").as_posix())
                   for p in tables)
    assert names == ["runs/02_baselines.tsv", "runs/baselines/efficientnet_b3.tsv",
                     "runs/baselines/efficientnet_b7.tsv", "seed0/b3.tsv", "seed0/b7.tsv", "warm/study.tsv"]
    seconds = pd.concat([pd.read_csv(t, sep="\t") for t in tables])["s"]
    assert (seconds >= 0).all() and seconds.sum() > 0
    # tools/stage_times.py tabulates the same tables (the README's per-stage table is its output).
    table = subprocess.run([sys.executable, str(ROOT / "tools" / "stage_times.py"), str(results), "--cores", "2"],
                           capture_output=True, text=True, check=True).stdout
    rows = {line.split(" | ")[0].lstrip("| "): line.strip(" |").split(" | ")[1:] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("| stage")}
    assert rows["member jobs (the three rows above)"][0] == "2"
    assert rows["chapters (papermill, one kernel each)"][0] == "3"
    assert rows["all jobs"][0] == str(len(tables))
    assert abs(float(rows["all jobs"][1]) - seconds.sum()) <= 1
    span = re.search(r"Span of the jobs (\d+) s; (\d+) s of jobs kept 2 cores (\d+)% busy", table)
    assert span and 0 < int(span.group(3)) <= 100 and int(span.group(1)) >= max(seconds) - 1, table
    # A second run has nothing to do (benchmark tables do not make jobs rerun).
    again, _ = small_study(base, twin, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr, again.stderr[-3000:]


def test_a_timed_out_study_leaves_no_job_behind(tmp_path):
    """A run that times out is killed with every process it started (its jobs would load later tests)."""
    import time

    marker = tmp_path / "alive"
    # a background job that keeps touching the marker, as a Snakemake job keeps training
    script = f'(while true; do touch "{marker}"; sleep 0.1; done) & wait'
    with pytest.raises(subprocess.TimeoutExpired):
        run_process_group(["bash", "-c", script], timeout=1.5)
    assert marker.exists()  # the job ran
    time.sleep(0.3)
    marker.unlink()
    time.sleep(0.6)
    assert not marker.exists(), "a job of the timed-out run is still running"
