"""Where the time of a study run goes: one table per stage, from the run's own records.

    .venv/bin/python tools/stage_times.py results/demo [--cores 2]

Reads the Snakemake benchmark tables every rule writes
(``<results>/benchmarks/**.tsv``: wall and CPU seconds of each job) and the
``summary.json`` of every trained member and pretext run (seconds spent
training and scoring inside the job), and prints a Markdown table:

- pretext runs (inside the first member job of each 2D architecture);
- member trainings (training and scoring, without the pretext);
- member job overhead (process start, imports, cohort load, teacher load):
  job wall time minus the two above;
- fold members, sweep twins, sweep members, chapters (one papermill kernel
  each), gathering of out-of-fold scores.

Job times add up over the jobs that ran; with ``-j 2`` the run's wall time
is about half their sum. CPU seconds (user + system, the benchmark's
``cpu_time``) do not grow when other work shares the cores, so they compare
runs on a busy machine better than wall seconds do.

Below the table, the span of the jobs (first start to last end; a table's
end is its modification time, its start that minus its wall seconds) and how
busy ``--cores`` cores were over it: the sum of the jobs' wall seconds over
span x cores. A fraction well under 1 means the scheduler left cores idle
(a long chain at the end, say). Copying the results folder resets the
modification times and so the span.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def _benchmark(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one job's benchmark table (its last row; CPU 0 when not measured)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    row = rows[-1] if rows else {}
    try:
        cpu = max(0.0, float(row.get("cpu_time") or 0.0))
    except ValueError:  # "NA" when the benchmark could not measure it
        cpu = 0.0
    return float(row.get("s") or 0.0), cpu


def _seconds(summary: Path) -> float:
    try:
        return float(json.loads(summary.read_text()).get("seconds") or 0.0)
    except (OSError, ValueError):
        return 0.0


def _stage(rel: str) -> str:
    if rel.startswith("runs/"):
        return "chapters (papermill, one kernel each)"
    if rel.startswith("warm/"):
        return "cohorts decoded into the cache (warm_cache, every core)"
    if rel.startswith("sweep/") and rel.endswith("/twin.tsv"):
        return "sweep twins"
    if rel.startswith("sweep/"):
        return "sweep member jobs"
    if "/oof/" in rel:
        return "fold member jobs"
    return "member jobs"


def job_table(results: Path) -> list[tuple[str, str, float, float, float]]:
    """``(benchmark table, stage, wall seconds, CPU seconds, end time)`` of every job that wrote a benchmark table.

    A table is written when its job ends, so its modification time is the job's end.
    """
    bench = results / "benchmarks"
    jobs = []
    for path in sorted(bench.rglob("*.tsv")):
        rel = path.relative_to(bench).as_posix()
        jobs.append((rel, _stage(rel), *_benchmark(path), path.stat().st_mtime))
    return jobs


def occupancy(jobs, *, cores: int) -> tuple[float, float, float]:
    """``(span, job seconds, busy fraction)`` of :func:`job_table` rows: first start to last end, the jobs' wall seconds, their share of span x cores."""
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    if not jobs:
        return 0.0, 0.0, float("nan")
    total = sum(wall for _, _, wall, _, _ in jobs)
    span = max(end for *_, end in jobs) - min(end - wall for _, _, wall, _, end in jobs)
    return span, total, (total / (span * cores) if span > 0 else float("nan"))


def stage_times(results: Path, jobs=None) -> list[tuple[str, int, float, float | None]]:
    """``(stage, number of jobs or runs, wall seconds, CPU seconds or None)`` rows (``jobs``: :func:`job_table`'s)."""
    groups: dict[str, list[tuple[float, float]]] = {}
    member_jobs = 0.0
    for _, stage, wall, cpu, _ in (job_table(results) if jobs is None else jobs):
        if stage == "member jobs":
            member_jobs += wall
        groups.setdefault(stage, []).append((wall, cpu))
    pretext = [_seconds(p) for p in sorted(results.glob("seed*/pretrain/*/summary.json"))]
    training = [_seconds(p) for p in sorted(results.glob("seed*/*/summary.json")) if p.parent.name != "pretrain"]
    rows = [("pretext runs (inside member jobs)", len(pretext), sum(pretext), None),
            ("member training and scoring", len(training), sum(training), None),
            ("member job overhead (start, imports, cohort and teacher loads)", len(training),
             max(0.0, member_jobs - sum(pretext) - sum(training)), None),
            ("member jobs (the three rows above)", len(groups.get("member jobs", [])),
             member_jobs, sum(cpu for _, cpu in groups.get("member jobs", [])))]
    rows += [(stage, len(jobs), sum(w for w, _ in jobs), sum(c for _, c in jobs))
             for stage, jobs in groups.items() if stage != "member jobs"]
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a study's results folder (results/demo)")
    parser.add_argument("--cores", type=int, default=2, help="cores the run was given (snakemake -j)")
    args = parser.parse_args(argv)
    if not (args.results / "benchmarks").is_dir():
        parser.error(f"{args.results}: no benchmarks folder (not a study's results folder, or nothing ran yet)")
    jobs = job_table(args.results)
    rows = stage_times(args.results, jobs)
    print("| stage | jobs | wall seconds (sum over jobs) | CPU seconds (sum over jobs) |\n|---|---|---|---|")
    for stage, n, wall, cpu in rows:
        print(f"| {stage} | {n} | {wall:.0f} | {'' if cpu is None else f'{cpu:.0f}'} |")
    print(f"| all jobs | {len(jobs)} | {sum(j[2] for j in jobs):.0f} | {sum(j[3] for j in jobs):.0f} |")
    span, total, busy = occupancy(jobs, cores=args.cores)
    print(f"\nSpan of the jobs {span:.0f} s; {total:.0f} s of jobs kept {args.cores} cores {100 * busy:.0f}% busy.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
