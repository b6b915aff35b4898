"""Speed and size of the digital twin generator (pdlib.twin).

Generates the default twin (140 patients, matrix 192, 52 PVP slices) and a
small one (10 patients, matrix 64, 16 slices) into a scratch folder under
``benchmarks/out/``, prints the wall time and disk size of each and the ratio
of time per patient (default / small), then deletes both.

Usage::

    python benchmarks/bench_twin.py [--jobs N] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from pdlib import twin


def _size_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def _run(out: Path, *, jobs: int, **sizes) -> tuple[float, float, dict]:
    start = time.perf_counter()
    summary = twin.generate_twin(out, n_jobs=jobs, overwrite=True, **sizes)
    return time.perf_counter() - start, _size_mb(out), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the generated twins")
    args = parser.parse_args()
    scratch_root = Path(__file__).resolve().parent / "out"
    scratch_root.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench_twin_", dir=scratch_root))
    try:
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
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
