"""Can the CPU feed the GPU? The training DataLoader at paper scale, in images per second per core.

The paper profile's data path (:mod:`pdlib.config`): slices stored at 256 px
(:func:`pdlib.slices.load_cohort`), random 224 px crops with the study's
augmentation (:class:`pdlib.slices.Augment`: affine rotation, scaling and
shift, horizontal flip), batches of 32, through :class:`pdlib.train.EpochData`
as training uses it (persistent workers when ``num_workers > 0``). The slices are random arrays of
the stored size (the transforms' cost does not depend on the pixels), 20
patients x 60 slices, held in memory as in training.

Printed: images per second of the DataLoader with ``num_workers=0`` (the
transforms in this process, one torch thread: the rate of one core), then
with worker processes; and the cores needed to feed a GPU training step,
from the GPU step rate given with ``--gpu-rate`` (images/s, e.g. from
``benchmarks/bench_train_step.py --device cuda``) or, by default, timm's
published EfficientNet-B7 training rate: 31.4 images/s for
``tf_efficientnet_b7`` at 600 px, batch 8, AMP, on an RTX 3090
(``results/benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv`` of
huggingface/pytorch-image-models), scaled by pixel count to 224 px
(x (600/224)^2 = 7.2, about 225 images/s; an estimate: small images use a
GPU less well, so the true rate is lower, and a newer GPU is faster).

Usage::

    nice python benchmarks/bench_dataloader.py [--epochs 2] [--workers 0 1 2] [--gpu-rate 225]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from pdlib.config import resolve_config
from pdlib.slices import Augment, PatientSlices, SliceDataset
from pdlib.train import EpochData

#: timm's published training rate of tf_efficientnet_b7 (images/s) and the size it was measured at.
TIMM_B7_RATE, TIMM_B7_SIZE = 31.4, 600


def images_per_second(dataset, *, workers: int, epochs: int, batch_size: int, pin_memory: bool) -> float:
    """Images per second over ``epochs`` epochs of :class:`pdlib.train.EpochData` after a first, untimed one.

    The first epoch starts the worker processes; the timed epochs include the
    epoch boundaries, where a loader without persistent workers would start
    its workers again (``EpochData`` keeps them when ``num_workers > 0``).
    """
    data = EpochData(dataset, [60] * (len(dataset) // 60), per_patient=None, batch_size=batch_size,
                     num_workers=workers, pin_memory=pin_memory)
    try:
        for _ in data.loader(1000):
            pass
        started, n = time.perf_counter(), 0
        for epoch in range(epochs):
            for x, _, _ in data.loader(epoch):
                n += x.shape[0]
        return n / (time.perf_counter() - started)
    finally:
        data.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (of 1,200 slices: 37 batches)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--gpu-rate", type=float, default=None, help="GPU training step rate, images/s")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = resolve_config("paper")
    rng = np.random.default_rng(0)
    patients = [PatientSlices(f"P{i:02d}", i % 2, rng.random((60, config.resize, config.resize), dtype=np.float32))
                for i in range(20)]
    dataset = SliceDataset(patients, crop=config.crop, train=True,
                           augment=Augment() if config.augment else Augment.none())
    pin = torch.cuda.is_available()
    gpu_rate = args.gpu_rate or TIMM_B7_RATE * (TIMM_B7_SIZE / config.crop) ** 2
    source = ("given" if args.gpu_rate
              else f"timm's B7 {TIMM_B7_RATE} img/s at {TIMM_B7_SIZE} px, scaled to {config.crop} px")
    print(f"paper profile: {config.resize} px stored, {config.crop} px crops, augmentation "
          f"{'on' if config.augment else 'off'}, batch {config.batch_size}, {os.cpu_count()} CPU cores here")
    per_core = None
    for workers in args.workers:
        rate = images_per_second(dataset, workers=workers, epochs=args.epochs, batch_size=config.batch_size,
                                 pin_memory=pin)
        cores = max(workers, 1)
        if workers == 0:
            per_core = rate
        print(f"  num_workers={workers}: {rate:7.1f} images/s ({rate / cores:6.1f} per core)")
    if per_core:
        print(f"GPU step rate {gpu_rate:.0f} images/s ({source}): {gpu_rate / per_core:.1f} cores of this "
              f"machine's kind keep it fed (paper profile num_workers={config.num_workers})")


if __name__ == "__main__":
    main()
