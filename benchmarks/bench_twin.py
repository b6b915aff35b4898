"""Speed and size of the digital twin generator (pdlib.twin).

Generates the default twin (140 patients, matrix 192, 52 PVP slices) and a
small one (10 patients, matrix 64, 16 slices) into a scratch folder under
``benchmarks/out/``, prints the wall time and disk size of each and the ratio
of time per patient (default / small), then deletes both.

``--stages N`` instead generates N default-size patients in this process
under cProfile and prints the time per patient and its split into stages
(phantom labels, tumour texture, HU, blur and noise, DICOM encoding, file
writing, ...), then the load average of the machine (other processes share
the cores).

Usage::

    python benchmarks/bench_twin.py [--jobs N] [--keep]
    python benchmarks/bench_twin.py --stages 10
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path

from pdlib import phantom, twin

#: (label, module file, function name) of the stages reported by ``--stages``.
STAGES = (
    ("phantom labels", phantom.__file__, "render_labels"),
    ("tumour texture", phantom.__file__, "tumour_texture"),
    ("phase HU", phantom.__file__, "phase_hu"),
    ("blur + noise", phantom.__file__, "add_noise"),
    ("render total", twin.__file__, "_render"),
    ("stored values", twin.__file__, "_to_stored"),
    ("series encoders", twin.__file__, "__init__"),
    ("DICOM encode", twin.__file__, "encode"),
    ("file writes", twin.__file__, "_write_new_file"),
    ("mask npz", twin.__file__, "_save_npz"),
    ("per patient total", twin.__file__, "_write_patient"),
)


def _size_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def _run(out: Path, *, jobs: int, **sizes) -> tuple[float, float, dict]:
    start = time.perf_counter()
    summary = twin.generate_twin(out, n_jobs=jobs, overwrite=True, **sizes)
    return time.perf_counter() - start, _size_mb(out), summary


def _stages(scratch: Path, n_patients: int) -> None:
    """Generate ``n_patients`` default-size patients in this process and print the time per stage."""
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    twin.generate_twin(scratch / "stages", n_patients=n_patients, n_jobs=1, overwrite=True)
    profile.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profile).stats
    print(f"{n_patients} patients, 1 process: {wall:.2f} s under cProfile "
          f"(profiling adds overhead; per-stage seconds per patient)")
    for label, path, name in STAGES:
        total = sum(v[3] for (file, _, func), v in stats.items()
                    if func == name and os.path.realpath(file) == os.path.realpath(path))
        print(f"  {label:18s} {total / n_patients:7.3f} s")
    start = time.perf_counter()
    twin.generate_twin(scratch / "plain", n_patients=n_patients, n_jobs=1, overwrite=True)
    wall = time.perf_counter() - start
    print(f"without cProfile: {wall:.2f} s, {wall / n_patients:.3f} s/patient (incl. tables and code hash)")
    print(f"load average (1, 5, 15 min): {os.getloadavg()}, cpus {os.cpu_count()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the generated twins")
    parser.add_argument("--stages", type=int, default=0, metavar="N",
                        help="only profile N default-size patients in one process, per stage")
    args = parser.parse_args()
    scratch_root = Path(__file__).resolve().parent / "out"
    scratch_root.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench_twin_", dir=scratch_root))
    try:
        if args.stages:
            _stages(scratch, args.stages)
            return
        small = dict(n_patients=10, matrix=64, n_slices=16)
        default = dict(n_patients=twin.DEFAULT_N_PATIENTS, matrix=twin.DEFAULT_MATRIX, n_slices=twin.DEFAULT_N_SLICES)
        t_small, mb_small, _ = _run(scratch / "small", jobs=args.jobs, **small)
        t_default, mb_default, summary = _run(scratch / "default", jobs=args.jobs, **default)
        per_small = t_small / small["n_patients"]
        per_default = t_default / default["n_patients"]
        print(f"jobs={args.jobs}")
        print(f"small twin   {small}: {t_small:7.1f} s, {mb_small:7.1f} MB, {per_small:.3f} s/patient")
        print(f"default twin {default}: {t_default:7.1f} s, {mb_default:7.1f} MB, {per_default:.3f} s/patient, "
              f"{summary['n_files']} files")
        print(f"per-patient time ratio default/small: {per_default / per_small:.1f}")
        auc = summary["oracle_auc"]
        print(f"default oracle AUC: all {auc['all']:.3f}, train {auc['train']:.3f}, test {auc['test']:.3f} "
              f"(expected {summary['expected_oracle_auc']:.3f})")
        print(f"load average (1, 5, 15 min): {os.getloadavg()}, cpus {os.cpu_count()}")
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
