"""Cost of a distillation step against its parts.

A KD/PD student step (:class:`pdlib.distill.TrainStep` with a teacher, run
by :func:`pdlib.train.train_batch`) must cost no more than a plain student
step plus one teacher forward pass under ``torch.no_grad()``: the KL term
and the frozen teacher add no hidden work. Same student, teacher and batch
on both sides, interleaved in one process.

Goal: time ratio KD step / (student step + teacher forward) <= 1.05.

Usage::

    python benchmarks/bench_kd_step.py [--teacher efficientnet_b7_demo] [--student efficientnet_b7_demo]
"""

from __future__ import annotations

import argparse
import copy

import torch
from _steps import add_step_options, fastest_per_step

from pdlib import distill, models, train


def compare(*, teacher_arch: str, student_arch: str, size: int, batch: int, rounds: int, steps: int,
            device: str) -> float:
    torch.manual_seed(0)
    teacher = models.create_model(teacher_arch).to(device).eval().requires_grad_(False)
    student = models.create_model(student_arch, drop_rate=0.5, drop_path_rate=0.2).to(device)
    plain_student, kd_student = student, copy.deepcopy(student)
    plain = distill.TrainStep(plain_student).train()
    kd = distill.TrainStep(kd_student, teacher, kd_weight=0.7, temperature=4.0).train()
    plain_opt = train.make_optimizer(plain_student, name="adamw", lr=1e-3, weight_decay=0.05)
    kd_opt = train.make_optimizer(kd_student, name="adamw", lr=1e-3, weight_decay=0.05)
    x, y = torch.rand(batch, 1, size, size, device=device), torch.randint(0, 2, (batch,), device=device)

    def parts(_):
        with torch.no_grad():
            teacher(x)
        train.train_batch(plain, plain_opt, x, y, lr=1e-3)

    per_step = fastest_per_step({"parts": parts, "kd": lambda _: train.train_batch(kd, kd_opt, x, y, lr=1e-3)},
                                rounds=rounds, steps=steps, device=device)
    sum_of_parts, kd_step = per_step["parts"], per_step["kd"]
    ratio = kd_step / sum_of_parts
    print(f"{teacher_arch} -> {student_arch}, batch {batch} at {size}px on {device}: "
          f"student step + teacher forward {sum_of_parts * 1e3:.1f} ms, KD step {kd_step * 1e3:.1f} ms, "
          f"time ratio = {ratio:.3f} (goal <= 1.05)")
    return ratio


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="efficientnet_b7_demo")
    parser.add_argument("--student", default="efficientnet_b7_demo")
    add_step_options(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    compare(teacher_arch=args.teacher, student_arch=args.student, size=args.size, batch=args.batch,
            rounds=args.rounds, steps=args.steps, device=args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
