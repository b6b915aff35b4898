"""Throughput of pdlib's training step against a bare timm training step.

Both sides train the same architecture from the same initial weights on the
same batch, interleaved round by round in one process so that load from
other processes hits both alike (the fastest round of each side counts):

* bare: ``model(x)``, ``F.cross_entropy(..., label_smoothing)``,
  ``zero_grad``, ``backward``, ``AdamW.step``;
* pdlib: :func:`pdlib.train.lr_at` + :func:`pdlib.train.train_batch` with a
  teacher-less :class:`pdlib.distill.TrainStep` (what every baseline and
  teacher batch runs).

Goal: throughput ratio pdlib / bare >= 0.95.

``--study MANIFEST`` instead trains every arm of the study with the demo
profile on that manifest (into ``benchmarks/out/study``) and prints the wall
time per member and in total: the demo's end-to-end budget is about 20
minutes on 2 CPU cores.

Usage::

    python benchmarks/bench_train_step.py [--arch efficientnet_b7_demo] [--size 56] [--batch 32]
    python benchmarks/bench_train_step.py --study data/twin/manifest
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _steps import add_step_options, fastest_per_step

from pdlib import arms, distill, models, runs, train


def bare_step(model, optimizer, x, y, *, smoothing):
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss


def compare(*, arch: str, size: int, batch: int, rounds: int, steps: int, device: str) -> float:
    torch.manual_seed(0)
    model = models.create_model(arch).to(device)
    bare_model, pdlib_model = model, copy.deepcopy(model)
    bare_opt = torch.optim.AdamW(bare_model.parameters(), lr=1e-3, weight_decay=0.05)
    pdlib_opt = train.make_optimizer(pdlib_model, name="adamw", lr=1e-3, weight_decay=0.05)
    step = distill.TrainStep(pdlib_model, beta=0.1).train()
    bare_model.train()
    shape = (batch, 1, 8, size, size) if models.is_volumetric(arch) else (batch, 1, size, size)
    x, y = torch.rand(shape, device=device), torch.randint(0, 2, (batch,), device=device)
    eps = distill.smoothing_epsilon(0.1, 2)
    total = rounds * steps

    def pdlib_step(k):
        lr = train.lr_at(k, base_lr=1e-3, total_steps=total, warmup_steps=steps)
        return train.train_batch(step, pdlib_opt, x, y, lr=lr)

    per_step = fastest_per_step({"bare": lambda k: bare_step(bare_model, bare_opt, x, y, smoothing=eps),
                                 "pdlib": pdlib_step}, rounds=rounds, steps=steps, device=device)
    bare, mine = per_step["bare"], per_step["pdlib"]
    ratio = bare / mine
    print(f"{arch} batch {batch} at {size}px on {device}: bare {batch / bare:.1f} img/s, "
          f"pdlib {batch / mine:.1f} img/s, throughput ratio pdlib/bare = {ratio:.3f} (goal >= 0.95)")
    return ratio


def study(manifest: Path, *, out: Path) -> None:
    from pdlib.config import resolve_config

    config = resolve_config("demo", progress="log")
    started = time.perf_counter()
    per_arm = {}
    for name in arms.ARMS:
        t = time.perf_counter()
        runs.run_arm_from_manifest(name, manifest_dir=manifest, config=config, out_dir=out)
        per_arm[name] = time.perf_counter() - t
        print(f"arm {name}: {per_arm[name]:.1f}s (cumulative {time.perf_counter() - started:.1f}s)", flush=True)
    total = time.perf_counter() - started
    members = arms.study_members()
    print(f"demo study: {len(arms.ARMS)} arms, {len(members)} distinct members, one process, "
          f"wall time {total / 60:.1f} min")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="efficientnet_b7_demo")
    add_step_options(parser)
    parser.add_argument("--study", type=Path, default=None, help="manifest folder: time the whole demo study")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "study")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.study is not None:
        study(args.study, out=args.out)
        return 0
    compare(arch=args.arch, size=args.size, batch=args.batch, rounds=args.rounds, steps=args.steps,
            device=args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
