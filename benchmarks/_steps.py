"""Shared by the step benchmarks: interleaved timing rounds and their command-line options.

Not a benchmark itself (the ``bench_*.py`` glob of ``make bench`` skips it).
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Mapping

import torch


def fastest_per_step(candidates: Mapping[str, Callable[[int], object]], *, rounds: int, steps: int,
                     device: str, warmup: int = 3) -> dict[str, float]:
    """Seconds per step of each candidate: fastest of ``rounds`` rounds of ``steps`` calls.

    Candidates run interleaved round by round in one process, so load from
    other processes hits them alike. Each is called with the global step
    number ``round * steps + i``; CUDA is synchronised around every round.
    """
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for k in range(warmup):
        for run in candidates.values():
            run(k)
    times = {name: [] for name in candidates}
    for r in range(rounds):
        for name, run in candidates.items():
            sync()
            started = time.perf_counter()
            for i in range(steps):
                run(r * steps + i)
            sync()
            times[name].append(time.perf_counter() - started)
    return {name: min(values) / steps for name, values in times.items()}


def add_step_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--size --batch --rounds --steps --device --threads`` of the step benchmarks."""
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared machine)")
    return parser
