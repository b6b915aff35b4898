"""Where the time of a study run goes: one table per stage, from the run's own records.

    .venv/bin/python tools/stage_times.py results/demo

Reads the Snakemake benchmark tables every rule writes
(``<results>/benchmarks/**.tsv``: wall seconds of each job) and the
``summary.json`` of every trained member and pretext run (seconds spent
training and scoring inside the job), and prints a Markdown table:

- pretext runs (inside the first member job of each 2D architecture);
- member trainings (training and scoring, without the pretext);
- member job overhead (process start, imports, cohort load, teacher load):
  job wall time minus the two above;
- fold members, sweep twins, sweep members, chapters (one papermill kernel
  each), gathering of out-of-fold scores.

Job times add up over the jobs that ran; with ``-j 2`` the run's wall time
is about half their sum.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def _wall(path: Path) -> float:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return float(rows[-1]["s"]) if rows else 0.0


def _seconds(summary: Path) -> float:
    try:
        return float(json.loads(summary.read_text()).get("seconds") or 0.0)
    except (OSError, ValueError):
        return 0.0


def stage_times(results: Path) -> list[tuple[str, int, float]]:
    """``(stage, number of jobs or runs, seconds)`` rows."""
    bench = results / "benchmarks"
    groups: dict[str, list[float]] = {}
    member_jobs = 0.0
    for path in sorted(bench.rglob("*.tsv")):
        rel = path.relative_to(bench).as_posix()
        if rel.startswith("runs/"):
            stage = "chapters (papermill, one kernel each)"
        elif rel.startswith("warm/"):
            stage = "cohorts decoded into the cache (warm_cache, every core)"
        elif rel.startswith("sweep/") and rel.endswith("/twin.tsv"):
            stage = "sweep twins"
        elif rel.startswith("sweep/"):
            stage = "sweep member jobs"
        elif "/oof/" in rel:
            stage = "fold member jobs"
        else:
            stage = "member jobs"
            member_jobs += _wall(path)
        groups.setdefault(stage, []).append(_wall(path))
    pretext = [_seconds(p) for p in sorted(results.glob("seed*/pretrain/*/summary.json"))]
    training = [_seconds(p) for p in sorted(results.glob("seed*/*/summary.json")) if p.parent.name != "pretrain"]
    rows = [("pretext runs (inside member jobs)", len(pretext), sum(pretext)),
            ("member training and scoring", len(training), sum(training)),
            ("member job overhead (start, imports, cohort and teacher loads)", len(training),
             max(0.0, member_jobs - sum(pretext) - sum(training)))]
    rows += [(stage, len(walls), sum(walls)) for stage, walls in groups.items() if stage != "member jobs"]
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    rows = stage_times(Path(argv[0]))
    print("| stage | jobs | seconds (sum over jobs) |\n|---|---|---|")
    for stage, n, seconds in rows:
        print(f"| {stage} | {n} | {seconds:.0f} |")
    print(f"| all jobs | {sum(n for s, n, _ in rows if 'overhead' not in s and 'training' not in s)} | "
          f"{sum(s for _, _, s in rows):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
