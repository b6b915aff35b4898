"""Training runs: one member per folder.

The story of one run (:func:`train_member`), top to bottom:

1. If ``out/<member>/`` holds a complete run with the same configuration,
   reuse it. Otherwise resume from its last checkpoint when that checkpoint
   belongs to the same configuration, or start afresh.
2. Build the model (:func:`pdlib.models.create_model`) with a seed derived
   from the master seed and the member's name; wrap it with its teacher in a
   :class:`pdlib.distill.TrainStep`.
3. For a fixed number of epochs (no model selection): reseed from
   (seed, member, epoch), draw the epoch's slices (:class:`EpochData`), and
   for every batch set the learning rate of equation 2 (:func:`lr_at`),
   compute the step's losses, back-propagate and update
   (:func:`train_epoch`, :func:`train_batch`). After each epoch write
   ``metrics.csv`` and an atomic ``checkpoint.pt``.
4. Score every slice of every training and test patient (centre crop) and
   every patient (mean of the 10 highest slice probabilities,
   :mod:`pdlib.infer`); write ``slice_predictions.csv``,
   ``patient_predictions.csv`` and, last, ``summary.json``.

Steps 2-4 read top to bottom in :func:`_train`, which takes explicit
settings: :func:`train_member` is the edge where a
:class:`pdlib.config.TrainConfig` is recorded and unpacked. The folder's
bookkeeping (resume, checkpoints, metrics, results, log) lives in
:class:`_RunFolder`, outside the loop.

An arm's chain of members and its out-of-fold runs are trained by
:mod:`pdlib.runs` (one process) or by the study pipeline
(:mod:`pdlib.pipeline`, one member per job); both resolve a member's
starting weights (:func:`pdlib.pretrain.starting_weights`) and pass them in.

Same seed, same numbers on CPU: every epoch reseeds torch (augmentation,
dropout, stochastic depth), numpy (slice sampling) and the DataLoader's
generator from (seed, member, epoch), torch runs with deterministic
algorithms, and data loading defaults to the training process. A run killed
after epoch ``e`` and restarted therefore continues exactly as if it had
not been interrupted.

References
----------
Han et al. 2025, Scientific Reports: Algorithm 1, equation 2 ("Cosine
Learning Rate Decay"), "Model testing and statistical analysis".
Loshchilov I, Hutter F. SGDR: stochastic gradient descent with warm
restarts. ICLR 2017.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import os
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

import pdlib
from pdlib import atomic, distill, infer, models, provenance
from pdlib.config import TrainConfig
from pdlib.dicom import DataQualityWarning
from pdlib.slices import Augment, SliceDataset, resample_depth

#: Files of a finished member folder; ``summary.json`` is written last.
RUN_FILES = ("config.json", "metrics.csv", "checkpoint.pt", "slice_predictions.csv",
             "patient_predictions.csv", "summary.json")

#: Version of the checkpoint layout.
CHECKPOINT_FORMAT = 1

#: Configuration fields that belong to an arm, not to one member's training.
_ARM_LEVEL_FIELDS = frozenset({"oof_folds"})


# --------------------------------------------------------------------------- equation 2


def lr_at(step: int, *, base_lr: float, total_steps: int, warmup_steps: int = 0) -> float:
    """Learning rate of batch ``step`` (0-based): linear warmup, then cosine decay.

    After warmup, equation 2 of Han et al. 2025 (cosine annealing of
    Loshchilov & Hutter 2017, one cycle, no restart)::

        eta_t = 0.5 * (1 + cos(pi * t / T)) * eta,   t = step - warmup_steps,
                                                      T = total_steps - warmup_steps

    so the first batch after warmup uses ``eta`` and the rate approaches 0 at
    the last batch. During warmup the rate rises linearly,
    ``eta * (step + 1) / warmup_steps``, reaching ``eta`` on the first
    post-warmup batch. A pure function of the step: resuming needs no
    scheduler state.

    Parameters
    ----------
    step : int
        Batch counter over the whole run, ``0 <= step < total_steps``.
    base_lr : float
        eta, the peak rate.
    total_steps : int
        Batches in the run (epochs x batches per epoch).
    warmup_steps : int
        Batches of linear warmup (``< total_steps``).

    Returns
    -------
    float

    Examples
    --------
    >>> lr_at(5, base_lr=1.0, total_steps=10)
    0.5
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps), got {warmup_steps} of {total_steps}")
    if not 0 <= step < total_steps:
        raise ValueError(f"step must be in [0, {total_steps}), got {step}")
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    t, period = step - warmup_steps, total_steps - warmup_steps
    return 0.5 * (1.0 + math.cos(math.pi * t / period)) * base_lr


# --------------------------------------------------------------------------- one batch


def train_batch(step: distill.TrainStep, optimizer: torch.optim.Optimizer, x: torch.Tensor, target: torch.Tensor,
                *, lr: float, amp: bool = False) -> dict[str, torch.Tensor]:
    """One update (Algorithm 1, lines 5-8 / 16-22): losses, backward, optimiser step.

    With ``amp``, the forward pass and the losses (teacher included) run under
    bfloat16 autocast on ``x``'s device; ``backward()`` and the optimiser step
    run outside it, as PyTorch's AMP recipe prescribes.

    Returns the step's dict (``loss``, ``task_loss``, ``kd_loss``, ``output``).
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    with (torch.autocast(device_type=x.device.type, dtype=torch.bfloat16) if amp else contextlib.nullcontext()):
        out = step(x, target)
    optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    optimizer.step()
    return out


def make_optimizer(model: nn.Module, *, name: str, lr: float, weight_decay: float,
                   momentum: float = 0.9) -> torch.optim.Optimizer:
    """AdamW or SGD; weight decay on weights only.

    As in timm: no decay on biases and normalisation scales (parameters with
    at most one dimension) nor on the parameters a module names in its
    ``no_weight_decay()`` (the hybrid's position embedding and class token),
    whatever their shape.
    """
    skip = set()
    for prefix, module in model.named_modules():
        if callable(getattr(module, "no_weight_decay", None)):
            skip |= {f"{prefix}.{n}" if prefix else n for n in module.no_weight_decay()}
    decay, no_decay = [], []
    for param_name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 or param_name in skip else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {name!r}")


# --------------------------------------------------------------------------- seeds and data


def derive_seed(seed: int, *parts) -> int:
    """A 32-bit seed from the master seed and labels (member name, epoch, ...)."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(p).encode()) for p in parts]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def _seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a DataLoader worker from its torch seed."""
    import random

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def epoch_sample(lengths: Sequence[int], *, per_patient: int | None, rng: np.random.Generator) -> np.ndarray:
    """Dataset indices of the slices drawn for one epoch.

    Slices are numbered patient by patient (as :class:`pdlib.slices.SliceDataset`
    enumerates them). ``per_patient=None`` keeps every slice; otherwise up to
    ``per_patient`` slices per patient are drawn without replacement.
    """
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    if per_patient is None:
        return np.arange(int(np.sum(lengths)), dtype=np.int64)
    chosen = [offset + np.sort(rng.choice(n, size=min(n, per_patient), replace=False))
              for offset, n in zip(offsets, lengths) if n > 0]
    return np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)


class VolumeDataset(torch.utils.data.Dataset):
    """Each patient's slice stack resampled to ``depth`` slices, for the 3D arm.

    Items are ``(x [1, depth, crop, crop] float32, label, patient_index)``.
    Training: random in-plane crop and random left-right flip; evaluation:
    centre crop.
    """

    def __init__(self, patients, *, depth: int, crop: int, train: bool):
        self.patients = list(patients)
        self.crop, self.train = int(crop), bool(train)
        self.volumes = [resample_depth(p.slices, depth) for p in self.patients]
        for patient, volume in zip(self.patients, self.volumes):
            if min(volume.shape[1:]) < self.crop:
                raise ValueError(f"patient {patient.patient_id}: slices of {volume.shape[1:]} px are smaller "
                                 f"than crop {self.crop}")

    def __len__(self) -> int:
        return len(self.patients)

    def __getitem__(self, i: int):
        volume = torch.from_numpy(self.volumes[i])
        if self.train:
            h, w = volume.shape[1:]
            top = int(torch.randint(0, h - self.crop + 1, ()))
            left = int(torch.randint(0, w - self.crop + 1, ()))
            volume = volume[:, top:top + self.crop, left:left + self.crop]
            if bool(torch.rand(()) < 0.5):
                volume = volume.flip(-1)
        else:
            volume = torch.from_numpy(np.ascontiguousarray(infer.centre_crop(self.volumes[i], self.crop)))
        return volume[None].contiguous(), int(self.patients[i].label), i


def _check_patients(patients, what: str) -> None:
    if not patients:
        raise ValueError(f"{what}: no patients")
    seen = set()
    for p in patients:
        if p.patient_id in seen:
            raise ValueError(f"{what}: patient {p.patient_id} appears twice")
        seen.add(p.patient_id)
        if p.label not in (0, 1):
            raise ValueError(f"{what}: patient {p.patient_id} has label {p.label!r}, expected 0 or 1")
        if getattr(p.slices, "ndim", 0) != 3 or len(p.slices) == 0:
            raise ValueError(f"{what}: patient {p.patient_id} has slices of shape "
                             f"{getattr(p.slices, 'shape', None)}, expected [n >= 1, H, W]")
        if not np.isfinite(p.slices).all():
            raise ValueError(f"{what}: patient {p.patient_id} has non-finite pixel values")


def data_fingerprint(patients) -> str:
    """Hash of patient ids, labels, splits and pixel data (to tell cohorts apart)."""
    digest = hashlib.sha256()
    for p in patients:
        digest.update(f"{p.patient_id}|{p.label}|{p.split}|{p.recist}|{p.slices.shape}".encode())
        digest.update(np.ascontiguousarray(p.slices, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _stratified_split(labels: np.ndarray, *, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of a stratified random ``fraction`` of the patients."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        n = int(round(fraction * len(members)))
        mask[rng.choice(members, size=n, replace=False)] = True
    return mask


# --------------------------------------------------------------------------- run environment


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


@contextlib.contextmanager
def run_environment(*, deterministic: bool, num_threads: int | None, device: torch.device):
    """Isolate a run's global torch state: RNG, determinism flag, thread count.

    The caller's random state and settings are restored on exit.
    """
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_threads = torch.get_num_threads()
    previous_benchmark = torch.backends.cudnn.benchmark
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            torch.use_deterministic_algorithms(deterministic, warn_only=device.type == "cuda")
            if device.type == "cuda":
                torch.backends.cudnn.benchmark = not deterministic
            if num_threads is not None:
                torch.set_num_threads(num_threads)
            yield
        finally:
            torch.use_deterministic_algorithms(previous_deterministic)
            torch.set_num_threads(previous_threads)
            torch.backends.cudnn.benchmark = previous_benchmark


class _Progress:
    """tqdm bars on a terminal, one plain line per epoch otherwise (papermill logs)."""

    def __init__(self, mode: str, name: str):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode, self.name = mode, name

    def batches(self, iterable, *, epoch: int, epochs: int, total: int):
        if self.mode != "bar":
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=f"{self.name} {epoch}/{epochs}", leave=False)

    def log(self, message: str) -> None:
        if self.mode in ("bar", "log"):
            print(f"[pdlib.train] {self.name}: {message}", flush=True)


#: A lock file that cannot be parsed (its writer was killed between creating
#: and filling it) is stale once older than this, seconds.
_UNREADABLE_LOCK_S = 60.0


def _lock_owner(lock: Path) -> dict | None:
    """The identity in a lock file (:func:`pdlib.atomic.process_identity`), or None if unreadable.

    An older lock holding a bare PID gives ``{"pid": pid}`` (judged by PID alone).
    """
    try:
        text = lock.read_text().strip()
    except OSError:
        return None
    if text.isdigit():
        return {"pid": int(text)}
    try:
        owner = json.loads(text)
    except ValueError:
        return None
    return owner if isinstance(owner, dict) and str(owner.get("pid", "")).isdigit() else None


@contextlib.contextmanager
def _member_lock(member_dir: Path, *, progress: _Progress, poll_s: float = 5.0):
    """Exclusive use of a member folder across processes (parallel arms share members).

    The lock file ``.lock`` holds the owner's host, PID and process start
    time (:func:`pdlib.atomic.process_identity`). A lock whose owner no
    longer runs (:func:`pdlib.atomic.owner_alive`: its PID is gone, or now
    belongs to a process started at another time) is removed, and so is an
    unreadable lock older than a minute. A lock of another host is waited for.
    """
    member_dir.mkdir(parents=True, exist_ok=True)
    lock = member_dir / ".lock"
    announced = False
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner is None:
                try:
                    stale = time.time() - lock.stat().st_mtime > _UNREADABLE_LOCK_S
                except FileNotFoundError:
                    continue
            else:
                stale = not atomic.owner_alive(owner)
            if stale:
                progress.log(f"removing the stale lock {lock} ({'unreadable' if owner is None else owner})")
                lock.unlink(missing_ok=True)
                continue
            if not announced:
                who = f"process {owner['pid']}" + (f" on {owner['host']}" if owner.get("host") else "")
                progress.log(f"waiting for {who} that is training this member (lock {lock})")
                announced = True
            time.sleep(poll_s)
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(atomic.process_identity()))
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _set_aside(path: Path, reason: str, *, progress: _Progress) -> Path:
    """Rename an unusable checkpoint to ``<name>.corrupt`` and warn, naming both files."""
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    reason = (reason.strip().splitlines() or [""])[0]
    reason = reason if len(reason) <= 160 else reason[:157] + "..."
    message = (f"{path} cannot be used ({reason}); set aside as {aside.name}, training this member from scratch")
    progress.log(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return aside


def _checkpoint_problem(checkpoint, model: nn.Module, *, epochs: int) -> str | None:
    """Why a loaded checkpoint of this configuration cannot be resumed from, or None."""
    if not isinstance(checkpoint, dict):
        return f"holds a {type(checkpoint).__name__}, not a checkpoint"
    missing = [k for k in ("epoch", "state_dict", "history", "rng") if k not in checkpoint]
    if missing:
        return f"lacks {', '.join(missing)}"
    epoch = checkpoint["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= epochs:
        return f"epoch {epoch!r} is not in 1..{epochs}"
    if not isinstance(checkpoint["history"], list) or len(checkpoint["history"]) != epoch:
        return f"history does not have {epoch} epochs"
    rng = checkpoint["rng"]
    if not isinstance(rng, dict) or not isinstance(rng.get("torch"), torch.Tensor) or rng["torch"].dtype != torch.uint8:
        return "random number generator state is missing or malformed"
    state, expected = checkpoint["state_dict"], model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        return "its weights do not match the model's parameters"
    for name, tensor in expected.items():
        value = state[name]
        if not isinstance(value, torch.Tensor) or value.shape != tensor.shape:
            return f"weight {name} has the wrong shape"
        if value.is_floating_point() and not torch.isfinite(value).all():
            return f"weight {name} is not finite"
    return None


def _data_quality(patients, *, top_k: int, volumetric: bool, progress: _Progress) -> list[str]:
    """Notes on legal but degenerate input: patients with fewer slices than the top-k score averages.

    Each note is logged to the member's log and issued as a
    :class:`pdlib.dicom.DataQualityWarning`; ``summary.json`` keeps them
    under ``data_quality``.
    """
    if volumetric:
        return []
    notes = []
    for patient in patients:
        n = len(patient.slices)
        if n < top_k:
            notes.append(f"patient {patient.patient_id} ({patient.split}) has {n} slice(s), fewer than the "
                         f"{top_k} averaged into the patient score: its score is the mean of all {n}, "
                         "not what the paper computed")
    for note in notes:
        progress.log(f"data quality: {note}")
        warnings.warn(note, DataQualityWarning, stacklevel=3)
    return notes


# --------------------------------------------------------------------------- one member


def _run_record(*, member_key, arch, config, noise, drop_rate, drop_path_rate, pretrained, teacher_key,
                teacher, train_patients, test_patients, val_mask, positive_class, init_weights=None) -> dict:
    """Everything that determines a member's results (``config.json`` minus provenance)."""
    train_config = {k: v for k, v in config.result_dict().items() if k not in _ARM_LEVEL_FIELDS}
    return {
        "member": member_key,
        "arch": arch,
        "profile": config.profile,
        "seed": config.seed,
        "noise": bool(noise),
        "drop_rate": drop_rate,
        "drop_path_rate": drop_path_rate,
        "pretrained": bool(pretrained),
        "init_weights": None if init_weights is None else _init_weights_record(init_weights),
        "teacher": teacher_key,
        "teacher_weights": None if teacher is None else models.weights_fingerprint(teacher),
        "train_config": train_config,
        "data": {
            "fingerprint": data_fingerprint(list(train_patients) + list(test_patients)),
            "n_train_patients": int(len(train_patients) - int(val_mask.sum())),
            "n_val_patients": int(val_mask.sum()),
            "n_test_patients": len(test_patients),
            "positive_class": positive_class,
        },
    }


def _init_weights_record(path: Path) -> dict:
    return {"file": path.name, "fingerprint": models.weights_fingerprint(path)}


def _provenance() -> dict:
    return {"pdlib_version": pdlib.__version__, "code_hash": provenance.training_code_hash(),
            "git_commit": provenance.git_commit()}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def is_complete(member_dir: str | os.PathLike, record: dict) -> bool:
    """Whether ``member_dir`` holds a finished run of exactly ``record``."""
    member_dir = Path(member_dir)
    if not all((member_dir / name).is_file() for name in RUN_FILES):
        return False
    summary = _read_json(member_dir / "summary.json") or {}
    saved = _read_json(member_dir / "config.json") or {}
    saved.pop("provenance", None)
    return summary.get("status") == "complete" and saved == json.loads(json.dumps(record))


def train_member(
    member_dir: str | os.PathLike,
    *,
    arch: str,
    train_patients: Sequence,
    test_patients: Sequence,
    config: TrainConfig,
    teacher: nn.Module | None = None,
    noise: bool = False,
    member_key: str | None = None,
    teacher_key: str | None = None,
    positive_class: str = "PR",
    init_weights: str | os.PathLike | None = None,
    stop_after_epoch: int | None = None,
    force: bool = False,
) -> nn.Module | None:
    """Train one model (a teacher, a baseline or a student) into its own folder.

    Parameters
    ----------
    member_dir : path
        Run folder; receives :data:`RUN_FILES`.
    arch : str
        Model name at the profile's scale (:data:`pdlib.models.ARCHS`).
    train_patients, test_patients : list of PatientSlices
        Training patients (the only ones the model learns from) and patients
        that are only scored.
    config : TrainConfig
        Resolved profile (:func:`pdlib.config.resolve_config`).
    teacher : nn.Module, optional
        The trained previous member; the model is then a student trained with
        equation 1 (:class:`pdlib.distill.TrainStep`).
    noise : bool
        Train with model noise (``config.noise_drop_rate`` dropout and
        ``config.noise_drop_path_rate`` stochastic depth).
    member_key : str, optional
        Name of the member (seeds derive from it); default the folder name.
    teacher_key : str, optional
        Name of the teacher, recorded in ``config.json``.
    positive_class : str
        Manifest class that label 1 stands for; recorded.
    init_weights : path, optional
        A weights file to start from instead of the profile's initialisation
        (:func:`pdlib.models.load_weights`: the head is initialised afresh);
        the caller resolves it, e.g. :func:`pdlib.pretrain.starting_weights`.
        Its fingerprint is recorded, so new weights make the member stale.
    stop_after_epoch : int, optional
        Stop after this many epochs as if the process had been killed (the
        checkpoint is kept, no predictions are written); for tests of resuming.
    force : bool
        Retrain even if a complete run with the same configuration exists.

    Returns
    -------
    nn.Module or None
        The trained model in evaluation mode (``None`` when stopped early).

    Raises
    ------
    ValueError
        Invalid patients (named) or arguments.

    Notes
    -----
    Files written to ``member_dir`` (all atomically):

    ``config.json``
        What determines the results (member, arch, profile, seed, noise,
        teacher and a hash of its weights, every training setting, a hash of
        the data) plus provenance (pdlib version, code hash, git commit).
    ``metrics.csv``
        Per epoch: ``epoch, loss, task_loss, kd_loss, lr`` (of the epoch's
        last batch), ``train_accuracy`` (slice level, augmented, train
        mode), ``n_samples``, optionally ``val_loss, val_accuracy``, and
        ``seconds``.
    ``checkpoint.pt``
        ``state_dict`` (the trained model only), optimiser state (dropped once
        the last epoch is done), ``epoch``, the torch RNG state and the epoch
        seed, the metric history, the run record and ``model_args``; read with
        ``torch.load(..., weights_only=True)`` (:func:`pdlib.infer.load_member`).
    ``slice_predictions.csv``
        ``patient_id, split, slice_index, prob``.
    ``patient_predictions.csv``
        ``patient_id, split, recist, label, score`` for training (``split``
        ``train``, or ``val`` when held out for monitoring) and test patients.
    ``summary.json``
        Written last; ``status: complete`` marks a finished run.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig (see pdlib.config.resolve_config), got {type(config).__name__}")
    models.split_arch(arch)
    _check_patients(train_patients, "training patients")
    if test_patients:
        _check_patients(test_patients, "test patients")
    overlap = {p.patient_id for p in train_patients} & {p.patient_id for p in test_patients}
    if overlap:
        raise ValueError(f"patients in both training and test sets: {sorted(overlap)[:5]}")
    if stop_after_epoch is not None and not 1 <= stop_after_epoch <= config.epochs:
        raise ValueError(f"stop_after_epoch must be in [1, {config.epochs}], got {stop_after_epoch}")
    member_dir = Path(member_dir)
    member_key = member_key or member_dir.name
    train_patients, test_patients = list(train_patients), list(test_patients)
    drop_rate = config.noise_drop_rate if noise else 0.0
    drop_path_rate = config.noise_drop_path_rate if noise and models.supports_drop_path(arch) else 0.0
    pretrained = config.pretrained and models.has_pretrained(arch)
    init_weights = Path(init_weights) if init_weights is not None else None
    labels = np.array([p.label for p in train_patients])
    val_mask = (_stratified_split(labels, fraction=config.val_fraction, seed=derive_seed(config.seed, "val"))
                if config.val_fraction > 0 else np.zeros(len(train_patients), dtype=bool))
    record = _run_record(
        member_key=member_key, arch=arch, config=config, noise=noise, drop_rate=drop_rate,
        drop_path_rate=drop_path_rate, pretrained=pretrained, teacher_key=teacher_key, teacher=teacher,
        train_patients=train_patients, test_patients=test_patients, val_mask=val_mask,
        positive_class=positive_class, init_weights=init_weights,
    )
    progress = _Progress(config.progress, member_key)
    device = resolve_device(config.device)

    with _member_lock(member_dir, progress=progress):
        if not force and is_complete(member_dir, record):
            progress.log("complete with the same configuration; reused")
            return infer.load_member(member_dir, device=device)
        with run_environment(deterministic=config.deterministic, num_threads=config.num_threads, device=device):
            return _fit(_RunFolder(member_dir, record=record, progress=progress), arch=arch, config=config,
                        teacher=teacher, train_patients=[p for p, v in zip(train_patients, val_mask) if not v],
                        val_patients=[p for p, v in zip(train_patients, val_mask) if v],
                        test_patients=test_patients, drop_rate=drop_rate, drop_path_rate=drop_path_rate,
                        pretrained=pretrained, init_weights=init_weights, device=device,
                        stop_after_epoch=stop_after_epoch, force=force)


def scoring_options(config: TrainConfig) -> dict:
    """How a member scores patients (:func:`pdlib.infer.predict_patients` keywords), from its configuration."""
    return dict(crop=config.crop, top_k=config.top_k, volume_depth=config.volume_depth,
                batch_size=config.eval_batch_size, volume_batch_size=config.volume_batch_size)


class EmptyEpoch(ValueError):
    """An epoch drew no batch (too few slices for one batch)."""


class EpochData:
    """What one epoch of Algorithm 1 iterates over: a fresh draw of the training slices.

    2D members draw up to ``per_patient`` slices of every patient (all of
    them when None); the 3D member sees each patient's volume once. The draw
    and the batch order depend only on the epoch's seed
    (:meth:`loader`), so a resumed run continues as if never interrupted.

    With ``num_workers > 0`` (the paper profile) the worker processes persist
    across epochs (one :class:`torch.utils.data.DataLoader` with
    ``persistent_workers``, closed by :meth:`close`) and each epoch still gets
    exactly the batches, order and worker seeds that a fresh per-epoch loader
    would give (:class:`_EpochBatches`), so persistence changes no number.
    With ``num_workers == 0`` every epoch builds its loader in the training
    process (nothing to keep alive).
    """

    def __init__(self, dataset, lengths: Sequence[int], *, per_patient: int | None, batch_size: int,
                 num_workers: int = 0, pin_memory: bool = False):
        self.dataset, self.lengths, self.per_patient = dataset, list(lengths), per_patient
        self.batch_size, self.num_workers, self.pin_memory = int(batch_size), int(num_workers), bool(pin_memory)
        samples = sum(self.lengths) if per_patient is None else sum(min(n, per_patient) for n in self.lengths)
        self.drop_last = samples > self.batch_size  # a batch of one breaks BatchNorm
        self.steps_per_epoch = samples // self.batch_size if self.drop_last else 1
        self._batches = _EpochBatches(batch_size=self.batch_size, drop_last=self.drop_last)
        self._persistent = None

    def loader(self, epoch_seed: int) -> torch.utils.data.DataLoader:
        """The epoch's batches: slices drawn and shuffled from ``epoch_seed``."""
        indices = epoch_sample(self.lengths, per_patient=self.per_patient, rng=np.random.default_rng(epoch_seed))
        if self.num_workers == 0:
            return torch.utils.data.DataLoader(
                torch.utils.data.Subset(self.dataset, indices.tolist()), batch_size=self.batch_size, shuffle=True,
                drop_last=self.drop_last, num_workers=0, generator=torch.Generator().manual_seed(epoch_seed),
                pin_memory=self.pin_memory,
            )
        self._batches.set_epoch(indices, epoch_seed)
        if self._persistent is None:
            self._persistent = torch.utils.data.DataLoader(
                _ReseededItems(self.dataset), batch_sampler=self._batches, num_workers=self.num_workers,
                persistent_workers=True, pin_memory=self.pin_memory,
                # the loader's own draw of a base seed must not touch the training process's generator
                generator=torch.Generator().manual_seed(0),
            )
        return self._persistent

    def close(self) -> None:
        """Stop the persistent worker processes, if any."""
        loader, self._persistent = self._persistent, None
        if loader is not None and getattr(loader, "_iterator", None) is not None:
            loader._iterator._shutdown_workers()


class _EpochBatches(torch.utils.data.Sampler):
    """Batch sampler of a persistent loader: one epoch's batches, as a fresh ``DataLoader`` would draw them.

    A fresh loader with ``shuffle=True`` and ``generator=Generator(epoch_seed)``
    first draws its workers' base seed from that generator
    (``torch.utils.data.dataloader._BaseDataLoaderIter``), then shuffles with
    ``torch.randperm`` from the same generator (``RandomSampler``). The same
    two draws are made here, and every item carries the base seed, so the
    workers reseed themselves as fresh workers would (:class:`_ReseededItems`).
    """

    def __init__(self, *, batch_size: int, drop_last: bool):
        self.batch_size, self.drop_last = batch_size, drop_last
        self._batches: list[list[tuple[int, int]]] = []

    def set_epoch(self, indices: np.ndarray, epoch_seed: int) -> None:
        generator = torch.Generator().manual_seed(epoch_seed)
        base_seed = int(torch.empty((), dtype=torch.int64).random_(generator=generator).item())
        order = [int(indices[i]) for i in torch.randperm(len(indices), generator=generator).tolist()]
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        self._batches = [[(base_seed, i) for i in order[k:k + self.batch_size]]
                         for k in range(0, stop, self.batch_size)]

    def __iter__(self):
        return iter(self._batches)

    def __len__(self) -> int:
        return len(self._batches)


class _ReseededItems(torch.utils.data.Dataset):
    """Items ``(base_seed, index)`` of a dataset; a worker reseeds when the base seed changes (a new epoch).

    The seeds are those ``torch.utils.data._utils.worker._worker_loop`` gives
    a fresh worker (``torch.manual_seed(base_seed + worker_id)``), followed by
    :func:`_seed_worker` for numpy and random.
    """

    def __init__(self, dataset):
        self.dataset, self._seed = dataset, None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        base_seed, index = item
        if base_seed != self._seed:
            worker = torch.utils.data.get_worker_info()
            if worker is None:
                raise RuntimeError("_ReseededItems is for DataLoader worker processes only")
            torch.manual_seed(base_seed + worker.id)
            _seed_worker(worker.id)
            self._seed = base_seed
        return self.dataset[index]


def train_epoch(step: distill.TrainStep, optimizer: torch.optim.Optimizer, batches, *, first_step: int,
                lr_schedule, device: torch.device, amp: bool = False, channels_last: bool = False) -> dict:
    """One epoch of Algorithm 1 (lines 3-11 for the teacher, 14-25 for a student).

    For every batch: set the learning rate of equation 2 for the global step
    (``lr_schedule(step)``, :func:`lr_at`), compute the losses of the
    member's :class:`pdlib.distill.TrainStep` (equation 1 for a student),
    back-propagate and update (:func:`train_batch`).

    Returns
    -------
    dict
        Sample-weighted means of ``loss``, ``task_loss``, ``kd_loss``, the
        slice-level ``train_accuracy`` (augmented, train mode), the last
        ``lr`` and ``n_samples``.
    """
    step.train()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, task, kd, correct
    seen, lr = 0, lr_schedule(first_step)
    for i, (x, y, _) in enumerate(batches):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        lr = lr_schedule(first_step + i)
        out = train_batch(step, optimizer, x, y, lr=lr, amp=amp)  # autocast on the forward pass only
        n = y.shape[0]
        with torch.no_grad():
            sums += torch.stack([out["loss"].detach().double() * n, out["task_loss"].detach().double() * n,
                                 out["kd_loss"].detach().double() * n, (out["output"].argmax(-1) == y).sum().double()])
        seen += n
    if seen == 0:
        raise EmptyEpoch("no training batch in the epoch")
    totals = (sums / seen).tolist()
    return {"loss": totals[0], "task_loss": totals[1], "kd_loss": totals[2], "lr": lr,
            "train_accuracy": totals[3], "n_samples": seen}


class _RunFolder:
    """A member folder's bookkeeping: resume, checkpoints, metrics, results, log.

    Everything the training loop does not need to know: where files go, how
    a killed run resumes (:meth:`resume`), what a checkpoint holds
    (:meth:`save_epoch`) and how a run is marked complete (:meth:`finish`).
    Every file is written atomically.
    """

    def __init__(self, member_dir: Path, *, record: dict, progress: _Progress):
        self.dir, self.record, self.progress = member_dir, record, progress
        self.checkpoint = member_dir / "checkpoint.pt"

    def resume(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, epochs: int,
               force: bool) -> tuple[int, list[dict]]:
        """Load the last checkpoint of this configuration; ``(epochs done, history)``, or ``(0, [])``.

        A checkpoint that cannot be read or does not fit is set aside
        (``checkpoint.pt.corrupt``) with a warning naming it, and the run
        starts from scratch. Starting afresh removes the folder's earlier
        results, then ``config.json`` is written.
        """
        start_epoch, history = 0, []
        atomic.remove_stale_temporaries(self.dir)  # of writes killed mid-way
        if self.checkpoint.is_file() and not force:
            start_epoch, history = self._load(model, optimizer, epochs=epochs)
        if start_epoch == 0:
            for name in RUN_FILES:
                (self.dir / name).unlink(missing_ok=True)
            (self.dir / "oof_predictions.csv").unlink(missing_ok=True)
        atomic.write_json(self.dir / "config.json", {**self.record, "provenance": _provenance()})
        (self.dir / "summary.json").unlink(missing_ok=True)
        return start_epoch, history

    def _load(self, model, optimizer, *, epochs: int) -> tuple[int, list[dict]]:
        progress = self.progress
        try:
            checkpoint = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated or corrupt files raise many types
            _set_aside(self.checkpoint, f"{type(err).__name__}: {err}", progress=progress)
            return 0, []
        if not (isinstance(checkpoint, dict) and checkpoint.get("format") == CHECKPOINT_FORMAT
                and checkpoint.get("record") == json.loads(json.dumps(self.record))):
            progress.log("checkpoint belongs to another configuration; training afresh")
            return 0, []
        problem = _checkpoint_problem(checkpoint, model, epochs=epochs)
        if problem is not None:
            _set_aside(self.checkpoint, problem, progress=progress)
            return 0, []
        initial = ({k: v.detach().clone() for k, v in model.state_dict().items()},
                   optimizer.state_dict(), torch.get_rng_state())
        try:
            model.load_state_dict(checkpoint["state_dict"])
            if checkpoint.get("optimizer") is not None:
                optimizer.load_state_dict(checkpoint["optimizer"])
            torch.set_rng_state(checkpoint["rng"]["torch"])
        except Exception as err:  # parts that pass the checks above but still do not load
            model.load_state_dict(initial[0])
            optimizer.load_state_dict(initial[1])
            torch.set_rng_state(initial[2])
            _set_aside(self.checkpoint, f"{type(err).__name__}: {err}", progress=progress)
            return 0, []
        progress.log(f"resuming after epoch {int(checkpoint['epoch'])}")
        return int(checkpoint["epoch"]), list(checkpoint["history"])

    def save_epoch(self, *, epoch: int, epochs: int, step: distill.TrainStep, optimizer, epoch_seed: int,
                   history: list[dict], model_args: dict) -> None:
        """The checkpoint after ``epoch`` of ``epochs`` and ``metrics.csv``.

        A finished run needs no optimiser state: it is dropped to save space.
        """
        atomic.save_torch(self.checkpoint, {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "state_dict": step.checkpoint_state(),
            "optimizer": None if epoch == epochs else optimizer.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "epoch_seed": epoch_seed},
            "history": history,
            "record": self.record,
            "model_args": model_args,
        })
        _write_metrics(self.dir / "metrics.csv", history)
        row = history[-1]
        self.progress.log(f"epoch {epoch}/{epochs} loss {row['loss']:.4f} task {row['task_loss']:.4f} "
                          f"kd {row['kd_loss']:.4f} acc {row['train_accuracy']:.3f} lr {row['lr']:.2e} "
                          f"({row['seconds']:.1f}s)")

    def finish(self, slice_table, patient_table, summary: dict) -> None:
        """Predictions, then ``summary.json`` (written last: ``status: complete``)."""
        atomic.write_csv(self.dir / "slice_predictions.csv", slice_table)
        atomic.write_csv(self.dir / "patient_predictions.csv", patient_table)
        atomic.write_json(self.dir / "summary.json", {"status": "complete", **summary})
        self.progress.log(f"done in {summary['seconds']:.1f}s")


def _fit(run: _RunFolder, *, arch: str, config: TrainConfig, teacher, train_patients, val_patients, test_patients,
         drop_rate: float, drop_path_rate: float, pretrained: bool, init_weights, device: torch.device,
         stop_after_epoch: int | None, force: bool):
    """Unpack the run's settings (the last place :class:`TrainConfig` is read) and train (:func:`_train`)."""
    volumetric = models.is_volumetric(arch)
    data_quality = _data_quality(list(train_patients) + list(val_patients) + list(test_patients),
                                 top_k=config.top_k, volumetric=volumetric, progress=run.progress)
    if volumetric:
        data = EpochData(VolumeDataset(train_patients, depth=config.volume_depth, crop=config.crop, train=True),
                         [1] * len(train_patients), per_patient=None, batch_size=config.volume_batch_size,
                         num_workers=config.num_workers, pin_memory=device.type == "cuda")
    else:
        data = EpochData(SliceDataset(train_patients, crop=config.crop, train=True,
                                      augment=Augment() if config.augment else Augment.none()),
                         [len(p.slices) for p in train_patients], per_patient=config.slices_per_patient,
                         batch_size=config.batch_size, num_workers=config.num_workers,
                         pin_memory=device.type == "cuda")
    scoring = scoring_options(config)
    try:
        return _train(
            run, arch=arch, teacher=teacher, data=data, val_patients=val_patients,
            scored=list(train_patients) + [dataclasses.replace(p, split="val") for p in val_patients] + list(test_patients),
            seed=config.seed, epochs=config.epochs, init=dict(pretrained=pretrained, weights_path=init_weights,
                                                              drop_rate=drop_rate, drop_path_rate=drop_path_rate,
                                                              **({"img_size": config.crop} if models.split_arch(arch)[0].startswith("hybrid") else {})),
            losses=dict(beta=config.label_smoothing_beta, kd_weight=config.kd_weight, temperature=config.temperature),
            optimiser=dict(name=config.optimizer, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum),
            warmup_epochs=config.warmup_epochs, scoring=scoring, device=device,
            amp=config.amp and device.type == "cuda",
            channels_last=config.channels_last and device.type == "cuda" and not volumetric,
            stop_after_epoch=stop_after_epoch, force=force, data_quality=data_quality,
        )
    finally:
        data.close()  # persistent DataLoader workers, if any


def _train(run: _RunFolder, *, arch: str, teacher, data: EpochData, val_patients, scored, seed: int, epochs: int,
           init: dict, losses: dict, optimiser: dict, warmup_epochs: float, scoring: dict, device: torch.device,
           amp: bool, channels_last: bool, stop_after_epoch: int | None, force: bool, data_quality: list[str]):
    """Algorithm 1 for one member, top to bottom; the run folder keeps the books.

    1. Build the model (seeded from the member's name) and wrap it with its
       frozen teacher in a :class:`pdlib.distill.TrainStep` (line 1 / 12-13).
    2. Resume from the last checkpoint of this configuration, if any.
    3. For every remaining epoch: reseed from (seed, member, epoch), draw the
       epoch's slices and train on them (:func:`train_epoch`); checkpoint.
    4. Score every patient (mean of the ``top_k`` highest slice probabilities)
       and mark the run complete.
    """
    key = run.record["member"]
    started = time.perf_counter()
    # 1. model, teacher, optimiser (Algorithm 1, line 1)
    torch.manual_seed(derive_seed(seed, key, "init"))
    model = models.create_model(arch, **init)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if teacher is not None:
        teacher.to(device)
        if channels_last:
            teacher.to(memory_format=torch.channels_last)
    step = distill.TrainStep(model, teacher, **losses)
    optimizer = make_optimizer(model, **optimiser)
    total_steps = data.steps_per_epoch * epochs
    warmup_steps = min(int(round(warmup_epochs * data.steps_per_epoch)), total_steps - 1)
    schedule = functools.partial(lr_at, base_lr=optimiser["lr"], total_steps=total_steps, warmup_steps=warmup_steps)

    # 2. resume or start
    start_epoch, history = run.resume(model, optimizer, epochs=epochs, force=force)

    # 3. epochs (Algorithm 1, lines 3-11 and 14-25)
    for epoch in range(start_epoch, epochs):
        epoch_started = time.perf_counter()
        epoch_seed = derive_seed(seed, key, "epoch", epoch)
        torch.manual_seed(epoch_seed)
        batches = run.progress.batches(data.loader(epoch_seed), epoch=epoch + 1, epochs=epochs,
                                       total=data.steps_per_epoch)
        try:
            row = {"epoch": epoch + 1, **train_epoch(step, optimizer, batches, first_step=epoch * data.steps_per_epoch,
                                                     lr_schedule=schedule, device=device, amp=amp,
                                                     channels_last=channels_last)}
        except EmptyEpoch:
            raise ValueError(f"member {key}: no training batch in epoch {epoch + 1}") from None
        if val_patients:
            row.update(_validation_metrics(model, val_patients, arch=arch, device=device, **scoring))
        row["seconds"] = time.perf_counter() - epoch_started
        history.append(row)
        final = epoch + 1 == epochs
        run.save_epoch(epoch=epoch + 1, epochs=epochs, step=step, optimizer=optimizer, epoch_seed=epoch_seed,
                       history=history, model_args=model.pdlib_args)
        if stop_after_epoch is not None and epoch + 1 == stop_after_epoch and not final:
            run.progress.log(f"stopped after epoch {epoch + 1} (stop_after_epoch)")
            return None
    if start_epoch == epochs:
        _write_metrics(run.dir / "metrics.csv", history)

    # 4. patient scores (Han et al. 2025, "Model testing"), in fp32: bfloat16 logits tie patients
    model.eval()
    slice_table, patient_table = infer.predict_patients(model, scored, arch=arch, device=device,
                                                        channels_last=channels_last, **scoring)
    run.finish(slice_table, patient_table, {
        "member": key,
        "arch": arch,
        "teacher": run.record["teacher"],
        "n_parameters": models.count_parameters(model),
        "epochs": epochs,
        "steps": total_steps,
        "final_epoch": history[-1] if history else None,
        "seconds": time.perf_counter() - started,
        "resumed_from_epoch": start_epoch,
        "device": str(device),
        "data_quality": data_quality,
    })
    return model


def _write_metrics(path: Path, history: list[dict]) -> None:
    import pandas as pd

    atomic.write_csv(path, pd.DataFrame(history))


def _validation_metrics(model, patients, *, arch, device, **scoring) -> dict:
    """Slice-level loss and accuracy on the validation patients (monitoring only)."""
    _, table = infer.predict_patients(model, patients, arch=arch, device=device, **scoring)
    model.train()
    labels, scores = table["label"].to_numpy(), np.clip(table["score"].to_numpy(), 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(scores) + (1 - labels) * np.log(1 - scores))
    return {"val_loss": float(loss), "val_accuracy": float(np.mean((scores >= 0.5) == labels))}
