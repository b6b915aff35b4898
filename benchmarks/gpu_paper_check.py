"""The paper profile on one GPU: step throughput, distillation cost, memory, a PD chain, one results file.

Four checks, in the order they run, each written into one JSON file
(``--out``, atomically, rewritten after every check so that a timeout keeps
what was measured; a failed check's entry holds its error):

1. ``throughput``: training-step throughput of pdlib (:func:`pdlib.train.train_batch`
   on a teacher-less :class:`pdlib.distill.TrainStep`, ImageNet-weight model
   with its input normalisation) against a bare timm loop (same timm model,
   same batch, ``F.cross_entropy``, AdamW), both under bfloat16 autocast with
   channels_last, for EfficientNet-B0/B3/B7 at the paper's batch (32) and
   crop (224). Goal: ratio pdlib / bare >= 0.95.
2. ``kd_step``: a KD student step against a plain student step plus one
   teacher forward pass (B7 -> B7, B7 -> B3). Goal: time ratio <= 1.05.
3. ``pd_chain``: the B7 PD chain (teacher and two noisy students) trained for
   two epochs with the paper profile on a digital twin at 256 -> 224, each
   teacher reloaded from disk as the pipeline does; for every member the
   reloaded model must score the test slices exactly as the trained one.
4. ``memory``: peak GPU memory of two training steps of every paper
   architecture at the paper's batch (3D arm: ``volume_batch_size`` volumes
   of ``volume_depth`` slices), and of the KD B7 step.

The machine is assumed offline: unless ``PDLIB_WEIGHTS`` names a folder of
real ImageNet weight files (``python -m pdlib fetch-weights``), random weights
in timm's ImageNet layout are written to ``--work/weights`` and used through
the same loading code (the results file says which). ``--tiny`` runs every
check at smoke scale on the CPU in seconds (for tests); ``--dry-run`` only
writes the plan.

Usage::

    python benchmarks/gpu_paper_check.py --out gpu_paper_check.json [--work DIR] [--twin DIR]
    python benchmarks/gpu_paper_check.py --tiny --device cpu --out /tmp/check.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F
from _steps import fastest_per_step

#: Goals of the issue (ratios).
THROUGHPUT_GOAL, KD_GOAL = 0.95, 1.05


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_paper_check.json"), help="results file (JSON)")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/out/gpu_paper_check"),
                        help="scratch folder: weights, twin, member folders")
    parser.add_argument("--twin", type=Path, default=None,
                        help="digital twin folder for the PD chain (default: data/twin if present, else one is "
                             "generated into --work)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="smoke-scale models, tiny twin, one round (CPU test)")
    parser.add_argument("--dry-run", action="store_true", help="write the plan only")
    parser.add_argument("--checks", default="throughput,kd_step,pd_chain,memory",
                        help="comma-separated subset of the checks")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each PD member")
    args = parser.parse_args(argv)
    args.checks = [c.strip() for c in args.checks.split(",") if c.strip()]
    unknown = sorted(set(args.checks) - {"throughput", "kd_step", "pd_chain", "memory"})
    if unknown:
        parser.error(f"unknown check(s) {unknown}")
    if args.tiny:
        args.rounds, args.steps = args.rounds or 1, args.steps or 1
    else:
        args.rounds, args.steps = args.rounds or 5, args.steps or 10
    return args


def plan(args) -> dict:
    """What the run does, recorded at the top of the results file."""
    from pdlib.config import resolve_config

    paper = resolve_config("paper")
    return {
        "scale": "smoke" if args.tiny else "paper",
        "size": 32 if args.tiny else paper.crop,
        "resize": 40 if args.tiny else paper.resize,
        "batch": 4 if args.tiny else paper.batch_size,
        "volume_batch": 2 if args.tiny else paper.volume_batch_size,
        "volume_depth": 8 if args.tiny else paper.volume_depth,
        "amp": not args.tiny, "channels_last": not args.tiny,
        "rounds": args.rounds, "steps": args.steps, "epochs": 1 if args.tiny else args.epochs,
        "checks": args.checks, "device": args.device,
    }


def _arch(name: str, p: dict) -> str:
    from pdlib import models

    return models.arch_for_profile(name, profile="smoke" if p["scale"] == "smoke" else "paper")


def _prepare_weights(work: Path, p: dict) -> str:
    """A PDLIB_WEIGHTS folder: the user's, or random ImageNet-layout weights written here."""
    from pdlib import models

    if os.environ.get(models.WEIGHTS_ENV) or p["scale"] == "smoke":
        return "PDLIB_WEIGHTS (given)" if os.environ.get(models.WEIGHTS_ENV) else "none (smoke scale)"
    import timm
    from safetensors.torch import save_file

    folder = work / "weights"
    folder.mkdir(parents=True, exist_ok=True)
    for hub_name in models.profile_weights("paper"):
        path = folder / models.weights_file_name(hub_name)
        if not path.is_file():
            torch.manual_seed(0)
            state = timm.create_model(hub_name, pretrained=False).state_dict()
            save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    os.environ[models.WEIGHTS_ENV] = str(folder)
    return "random, ImageNet layout (no network)"


def _model(arch: str, **options):
    from pdlib import models

    return models.create_model(arch, pretrained=models.has_pretrained(arch), **options)


def _batch(arch: str, p: dict, device: str):
    from pdlib import models

    if models.is_volumetric(arch):
        shape = (p["volume_batch"], 1, p["volume_depth"], p["size"], p["size"])
    else:
        shape = (p["batch"], 1, p["size"], p["size"])
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(shape, generator=g), torch.randint(0, 2, (shape[0],), generator=g)
    x = x.to(device)
    if p["channels_last"] and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device)


def _place(model, p, device):
    model = model.to(device)
    if p["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    return model


def check_throughput(p: dict, device: str) -> dict:
    """pdlib's step against the bare timm loop, per EfficientNet."""
    import timm

    from pdlib import distill, train

    out = {}
    for name in ("efficientnet_b0", "efficientnet_b3", "efficientnet_b7"):
        arch = _arch(name, p)
        torch.manual_seed(0)
        mine = _place(_model(arch), p, device)
        built = mine.pdlib_args["build"]["timm_name"]
        if built:  # the same timm model, built bare (timm's own stem adaptation and head)
            bare = timm.create_model(built.split(".")[0], pretrained=False, in_chans=1, num_classes=2)
            bare.load_state_dict(mine.state_dict())
        else:
            bare = copy.deepcopy(mine)
            bare._forward_pre_hooks.clear()
        bare = _place(bare, p, device).train()
        norm = mine.pdlib_args["input_norm"]
        x, y = _batch(arch, p, device)
        x_bare = (x - norm["mean"]) / norm["std"]  # a bare loop normalises in its data pipeline
        bare_opt = torch.optim.AdamW(bare.parameters(), lr=1e-4, weight_decay=0.05)
        mine_opt = train.make_optimizer(mine, name="adamw", lr=1e-4, weight_decay=0.05)
        step = distill.TrainStep(mine, beta=0.1).train()
        eps = distill.smoothing_epsilon(0.1, 2)
        amp = p["amp"]

        def bare_step(_):
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(bare(x_bare), y, label_smoothing=eps)
            bare_opt.zero_grad(set_to_none=True)
            loss.backward()
            bare_opt.step()

        def pdlib_step(k):
            train.train_batch(step, mine_opt, x, y, lr=1e-4, amp=amp)

        per_step = fastest_per_step({"bare": bare_step, "pdlib": pdlib_step}, rounds=p["rounds"], steps=p["steps"],
                                    device=device)
        ratio = per_step["bare"] / per_step["pdlib"]
        out[name] = {"arch": arch, "timm_name": built, "bare_img_s": x.shape[0] / per_step["bare"],
                     "pdlib_img_s": x.shape[0] / per_step["pdlib"], "ratio": ratio, "goal": THROUGHPUT_GOAL,
                     "met": ratio >= THROUGHPUT_GOAL}
        del mine, bare, mine_opt, bare_opt, step
        _empty(device)
    return out


def check_kd_step(p: dict, device: str) -> dict:
    """KD student step against student step + teacher forward."""
    from pdlib import distill, train

    out = {}
    for teacher_name, student_name in (("efficientnet_b7", "efficientnet_b7"), ("efficientnet_b7", "efficientnet_b3")):
        teacher_arch, student_arch = _arch(teacher_name, p), _arch(student_name, p)
        torch.manual_seed(0)
        teacher = _place(_model(teacher_arch), p, device).eval().requires_grad_(False)
        student = _place(_model(student_arch, drop_rate=0.5, drop_path_rate=0.2), p, device)
        plain_student, kd_student = student, copy.deepcopy(student)
        plain = distill.TrainStep(plain_student).train()
        kd = distill.TrainStep(kd_student, teacher, kd_weight=0.7, temperature=4.0).train()
        plain_opt = train.make_optimizer(plain_student, name="adamw", lr=1e-4, weight_decay=0.05)
        kd_opt = train.make_optimizer(kd_student, name="adamw", lr=1e-4, weight_decay=0.05)
        x, y = _batch(student_arch, p, device)
        amp = p["amp"]

        def parts(_):
            with torch.no_grad(), torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16,
                                                 enabled=amp):
                teacher(x)
            train.train_batch(plain, plain_opt, x, y, lr=1e-4, amp=amp)

        per_step = fastest_per_step({"parts": parts, "kd": lambda _: train.train_batch(kd, kd_opt, x, y, lr=1e-4,
                                                                                        amp=amp)},
                                    rounds=p["rounds"], steps=p["steps"], device=device)
        ratio = per_step["kd"] / per_step["parts"]
        out[f"{teacher_name}->{student_name}"] = {
            "parts_ms": per_step["parts"] * 1e3, "kd_ms": per_step["kd"] * 1e3, "ratio": ratio, "goal": KD_GOAL,
            "met": ratio <= KD_GOAL}
        del teacher, student, plain_student, kd_student, plain, kd, plain_opt, kd_opt
        _empty(device)
    return out


def check_memory(p: dict, device: str) -> dict:
    """Peak memory (GiB) of two training steps per paper architecture at the paper batch, and of KD B7."""
    from pdlib import distill, models, train

    out = {}
    cuda = torch.device(device).type == "cuda"
    arms = [(name, None) for name in models.PAPER_ARCHS] + [("efficientnet_b7", "efficientnet_b7")]
    for name, teacher_name in arms:
        label = name if teacher_name is None else f"kd {teacher_name}->{name}"
        _empty(device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        try:
            arch = _arch(name, p)
            extra = {"img_size": p["size"]} if name.startswith("hybrid") else {}
            torch.manual_seed(0)
            model = _model(arch, **extra).to(device)
            if p["channels_last"] and not models.is_volumetric(arch):
                model = model.to(memory_format=torch.channels_last)
            teacher = None
            if teacher_name is not None:
                teacher = _place(_model(_arch(teacher_name, p)), p, device).eval()
            step = distill.TrainStep(model, teacher).train()
            optimizer = train.make_optimizer(model, name="adamw", lr=1e-4, weight_decay=0.05)
            x, y = _batch(arch, p, device)
            for _ in range(2):
                train.train_batch(step, optimizer, x, y, lr=1e-4, amp=p["amp"])
            if cuda:
                torch.cuda.synchronize(device)
            out[label] = {"arch": arch, "batch": int(x.shape[0]),
                          "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None}
            del model, teacher, step, optimizer, x, y
        except Exception as exc:  # noqa: BLE001 - an out-of-memory arm is a result, not a crash
            out[label] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    _empty(device)
    return out


def check_pd_chain(p: dict, device: str, *, work: Path, twin: Path | None, epochs: int) -> dict:
    """B7 PD chain (three members) with the paper profile, teachers reloaded from disk; round trip per member."""
    import numpy as np

    from pdlib import infer, train
    from pdlib.config import resolve_config
    from pdlib.manifest import load_manifest
    from pdlib.slices import load_cohort

    if twin is None:
        default = Path("data/twin")
        twin = default if (default / "manifest").is_dir() and p["scale"] == "paper" else work / "twin"
    if not (twin / "manifest").is_dir():
        from pdlib.twin import generate_twin

        sizes = dict(n_patients=8, matrix=64, n_slices=12) if p["scale"] == "smoke" else {}
        generate_twin(twin, n_jobs=max(1, min(8, (os.cpu_count() or 2) - 1)), **sizes)
    overrides = dict(epochs=epochs, device=device, progress="log")
    if p["scale"] == "smoke":
        overrides.update(resize=p["resize"], crop=p["size"], batch_size=p["batch"], amp=False, channels_last=False,
                         num_workers=0, pretrained=False)
    config = resolve_config("paper", **overrides)
    manifest = load_manifest(twin / "manifest")
    started = time.perf_counter()
    train_patients = load_cohort(manifest, split="train", resize=config.resize, cache_dir=work / "cache")
    test_patients = load_cohort(manifest, split="test", resize=config.resize, cache_dir=work / "cache")
    loading_s = time.perf_counter() - started
    arch = _arch("efficientnet_b7", p)
    keys, noise = ["b7", "b7--b7mn", "b7--b7mn--b7mn"], [False, True, True]
    members, teacher = [], None
    for i, key in enumerate(keys):
        folder = work / "pd_chain" / key
        t = time.perf_counter()
        trained = train.train_member(folder, arch=arch, train_patients=train_patients, test_patients=test_patients,
                                     config=config, teacher=teacher, noise=noise[i], member_key=key,
                                     teacher_key=keys[i - 1] if i else None, force=True)
        seconds = time.perf_counter() - t
        reloaded = infer.load_member(folder, device=device)
        with _deterministic():
            a = infer.predict_slices(trained, test_patients, crop=config.crop, batch_size=config.eval_batch_size,
                                     device=device, channels_last=config.channels_last)[0]
            b = infer.predict_slices(reloaded, test_patients, crop=config.crop, batch_size=config.eval_batch_size,
                                     device=device, channels_last=config.channels_last)[0]
        summary = json.loads((folder / "summary.json").read_text())
        members.append({"member": key, "seconds": seconds, "bit_identical": bool(np.array_equal(a, b)),
                        "max_abs_diff": float(np.max(np.abs(a - b))) if a.size else 0.0,
                        "build": reloaded.pdlib_args.get("build"), "input_norm": reloaded.pdlib_args.get("input_norm"),
                        "final_epoch": summary.get("final_epoch")})
        teacher = reloaded  # as the pipeline does: the next student learns from the member on disk
        del trained
    return {"twin": str(twin), "n_train": len(train_patients), "n_test": len(test_patients),
            "slice_loading_s": loading_s, "config": dataclasses.asdict(config), "members": members,
            "round_trip_ok": all(m["bit_identical"] for m in members)}


class _deterministic:
    """cuDNN deterministic algorithms while two models are compared."""

    def __enter__(self):
        self.saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False

    def __exit__(self, *exc):
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = self.saved


def _empty(device: str) -> None:
    import gc

    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def _environment(device: str) -> dict:
    import timm

    import pdlib

    env = {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
           "pdlib": pdlib.__version__, "host_cpus": os.cpu_count()}
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   gpu_memory_gib=torch.cuda.get_device_properties(device).total_memory / 2**30)
    return env


def _write(path: Path, results: dict) -> None:
    from pdlib import atomic

    atomic.write_bytes(path, (json.dumps(results, indent=2, sort_keys=True, default=str) + "\n").encode())


def main(argv=None) -> int:
    args = parse_args(argv)
    p = plan(args)
    results = {"plan": p, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "checks": {}}
    if args.dry_run:
        results["dry_run"] = True
        _write(args.out, results)
        print(f"plan written to {args.out}")
        return 0
    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --tiny --device cpu for the CPU rehearsal of this script")
    if torch.device(args.device).type == "cpu":
        torch.set_num_threads(1 if args.tiny else min(4, os.cpu_count() or 1))
    results["environment"] = _environment(args.device)
    args.work.mkdir(parents=True, exist_ok=True)
    results["weights"] = _prepare_weights(args.work, p)
    total = time.perf_counter()
    runners = {
        "throughput": lambda: check_throughput(p, args.device),
        "kd_step": lambda: check_kd_step(p, args.device),
        "memory": lambda: check_memory(p, args.device),
        "pd_chain": lambda: check_pd_chain(p, args.device, work=args.work, twin=args.twin, epochs=p["epochs"]),
    }
    failed = False
    for name in args.checks:
        started = time.perf_counter()
        try:
            results["checks"][name] = {"result": runners[name]()}
        except Exception as exc:  # noqa: BLE001 - recorded; the other checks still run
            failed = True
            results["checks"][name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        results["checks"][name]["seconds"] = time.perf_counter() - started
        results["total_seconds"] = time.perf_counter() - total
        _write(args.out, results)  # after every check, so a timeout keeps what was measured
        print(f"{name}: {results['checks'][name].get('error', 'done')} ({results['checks'][name]['seconds']:.0f}s)",
              flush=True)
    print(f"results in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
