"""Training profiles: every hyper-parameter of a run, in one frozen dataclass.

Three profiles share one code path and differ only in numbers:

``smoke``
    Tiny models, 32 px crops, 2 epochs: seconds per run. Tests and CI.
``demo``
    Every arm of the study with scaled-down members of each model family
    (:mod:`pdlib.models`), 64 px slices cropped to 56 px, a few epochs and a
    random subset of slices per patient per epoch. The whole study (about 27
    trainings once shared members are reused) is meant to fit in about 20
    minutes on 2 CPU cores.
``paper``
    The architectures of Han et al. 2025 at 256 px resized to 224 px crops,
    ImageNet weights, on a GPU with mixed precision and channels-last memory.

Han et al. 2025 report neither epochs, batch size, optimiser nor learning
rate ("parameters gleaned from internal evaluation"); the values below are
our choices and are marked so. The values the paper does report (resize 256,
crop 224, top-10 patient score, cosine decay per batch after warmup, label
smoothing, KD with temperature, dropout and stochastic depth as model noise)
are cited where they are set.

This module imports nothing heavy so that notebooks and the command line can
resolve a profile without loading torch. A configuration object stops at the
edge: library functions receive its fields as keyword arguments or the object
itself at one public entry (:func:`pdlib.train.train_member`), never deeper.

References
----------
Han et al. 2025, "Deep learning progressive distill for predicting clinical
response to conversion therapy from preoperative CT images of advanced
gastric cancer patients", Scientific Reports.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

#: Profile names, from smallest to largest.
PROFILES = ("smoke", "demo", "paper")

#: Fields that change how a run is displayed, not what it computes; they are
#: ignored when deciding whether a finished run matches a requested one.
NON_RESULT_FIELDS = frozenset({"progress"})


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run (one member of an arm).

    Attributes
    ----------
    profile : str
        ``"smoke"``, ``"demo"`` or ``"paper"``; selects the model scale
        (:data:`pdlib.models.ARCHS`).
    seed : int
        Master seed; model initialisation, slice sampling, augmentation and
        dropout of every member derive from it and the member's name.
    resize : int
        Side in pixels of the stored slices (``load_cohort(resize=...)``):
        256 in the paper (Han et al. 2025, "CT imaging and data preprocessing").
    crop : int
        Side of the random (training) or centred (evaluation) crop: 224 in the
        paper (same section).
    slices_per_patient : int or None
        Training slices drawn at random per patient per epoch (without
        replacement, all slices when a patient has fewer). ``None`` uses every
        slice every epoch, as the paper does; the demo subsamples to fit its
        time budget.
    augment : bool
        Random flips, rotations, scaling and shifts on training slices
        (:class:`pdlib.slices.Augment`, the paper's augmentation).
    volume_depth : int
        Number of slices the 3D arm resamples each patient's stack to (not
        reported by the paper; our choice).
    epochs : int
        Fixed number of epochs; no model selection on any held-out data.
    batch_size : int
        Slices per training batch (2D arms).
    volume_batch_size : int
        Volumes per training batch (3D arm).
    optimizer : str
        ``"adamw"`` or ``"sgd"`` (our choice; not reported by the paper).
    lr : float
        Peak learning rate (eta of equation 2) reached after warmup.
    weight_decay : float
        Decoupled weight decay (AdamW) or L2 penalty (SGD).
    momentum : float
        SGD momentum; unused by AdamW.
    warmup_epochs : float
        Linear warmup length in epochs before the cosine decay of equation 2
        (the paper decays "excluding warmup stages").
    label_smoothing_beta : float
        beta of equation 3: probability moved from the true class, spread as
        beta / (K - 1) over the K - 1 other classes (value not reported; 0.1).
    kd_weight : float
        Weight of the distillation term in the student loss (see
        :func:`pdlib.distill.student_loss` for its relation to the paper's
        alpha).
    temperature : float
        Softmax temperature T of equation 1 (value not reported; 4.0).
    noise_drop_rate : float
        Dropout before the classifier of noisy students ("model noise";
        0.5 as in Noisy Student training, Xie et al. 2020).
    noise_drop_path_rate : float
        Stochastic-depth rate of noisy students (0.2, Xie et al. 2020; a
        survival probability of 0.8 at the last block).
    pretrained : bool
        Start from ImageNet weights where a model has them (Han et al. 2025,
        "PD algorithm development and training").
    pretrain_twin : str or None
        Folder of an independent digital twin. When set, every 2D member
        starts from weights pretrained on that twin's tumour-slice task
        (:mod:`pdlib.pretrain`), the offline stand-in for ImageNet weights of
        the scaled-down demo models. ``None`` (default) starts from scratch
        (or from the hub with ``pretrained``).
    pretrain_epochs : int
        Epochs of that pretext training.
    pretrain_slices_per_patient : int or None
        Slices of each pretext pseudo-patient (a patient's tumour slices, or
        its other slices) drawn per pretext epoch, as ``slices_per_patient``
        draws them for a member; ``None`` (default) uses every slice every
        epoch. The demo draws 10 to fit its time budget.
    pretrain_seed : int or None
        Seed of that pretext training; ``None`` (default) uses ``seed``.
        Fixing it lets every training seed start from the same pretext
        weights, as every seed of the paper starts from the same ImageNet
        weights (the verdict study does this).
    top_k : int
        Patient score = mean of the ``top_k`` highest slice probabilities
        (10 in the paper, "Model testing and statistical analysis").
    eval_batch_size : int
        Slices per inference batch.
    val_fraction : float
        Fraction of training patients (stratified, seeded) held out to
        monitor loss and accuracy per epoch; 0 disables it. Never used to
        select a model.
    oof_folds : int
        k of a stratified k-fold over training patients: the whole arm is
        re-trained on each fold's training part and scores the held-out fold,
        giving out-of-fold scores for every training patient (used to
        pre-specify a threshold). 0 disables it.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
    amp : bool
        bfloat16 autocast on CUDA (ignored on CPU).
    channels_last : bool
        Channels-last memory format for 2D models and inputs on CUDA.
    num_workers : int
        DataLoader worker processes (0 = load in the training process).
    num_threads : int or None
        CPU threads for torch during the run (``None`` leaves torch's choice).
        The CPU profiles use 1: the study runs two trainings side by side on
        2 cores (``make study JOBS=2``), and on a shared machine one thread
        per training is many times faster than two threads competing.
    deterministic : bool
        Ask torch for deterministic algorithms (always on CPU profiles: same
        seed, same numbers).
    progress : str
        ``"auto"`` (tqdm bars on a terminal, plain log lines otherwise),
        ``"bar"``, ``"log"`` or ``"none"``.
    """

    profile: str
    seed: int = 0
    # data
    resize: int = 256
    crop: int = 224
    slices_per_patient: int | None = None
    augment: bool = True
    volume_depth: int = 64
    # optimisation (not reported by Han et al. 2025: our choices)
    epochs: int = 30
    batch_size: int = 32
    volume_batch_size: int = 4
    optimizer: str = "adamw"
    lr: float = 1e-4
    weight_decay: float = 0.05
    momentum: float = 0.9
    warmup_epochs: float = 1.0
    # losses (equations 1 and 3)
    label_smoothing_beta: float = 0.1
    kd_weight: float = 0.7
    temperature: float = 4.0
    # model noise of PD students
    noise_drop_rate: float = 0.5
    noise_drop_path_rate: float = 0.2
    # models
    pretrained: bool = False
    pretrain_twin: str | None = None
    pretrain_epochs: int = 4
    pretrain_slices_per_patient: int | None = None
    pretrain_seed: int | None = None
    # evaluation
    top_k: int = 10
    eval_batch_size: int = 128
    val_fraction: float = 0.0
    oof_folds: int = 0
    # hardware
    device: str = "cpu"
    amp: bool = False
    channels_last: bool = False
    num_workers: int = 0
    num_threads: int | None = None
    deterministic: bool = True
    progress: str = "auto"

    def __post_init__(self) -> None:
        problems = []
        if self.profile not in PROFILES:
            problems.append(f"profile must be one of {PROFILES}, got {self.profile!r}")
        for name in ("resize", "crop", "volume_depth", "epochs", "batch_size", "volume_batch_size",
                     "top_k", "eval_batch_size", "pretrain_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.crop, int) and isinstance(self.resize, int) and self.crop > self.resize:
            problems.append(f"crop ({self.crop}) must not exceed resize ({self.resize})")
        for name in ("slices_per_patient", "pretrain_slices_per_patient"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                problems.append(f"{name} must be None or a positive integer, got {value!r}")
        if self.optimizer not in ("adamw", "sgd"):
            problems.append(f"optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0 or self.momentum < 0 or self.warmup_epochs < 0:
            problems.append("weight_decay, momentum and warmup_epochs must be >= 0")
        if not 0.0 <= self.label_smoothing_beta < 1.0:
            problems.append(f"label_smoothing_beta must be in [0, 1), got {self.label_smoothing_beta!r}")
        if not 0.0 <= self.kd_weight <= 1.0:
            problems.append(f"kd_weight must be in [0, 1], got {self.kd_weight!r}")
        if not self.temperature > 0:
            problems.append(f"temperature must be > 0, got {self.temperature!r}")
        for name in ("noise_drop_rate", "noise_drop_path_rate", "val_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not isinstance(self.oof_folds, int) or self.oof_folds < 0 or self.oof_folds == 1:
            problems.append(f"oof_folds must be 0 (off) or an integer >= 2, got {self.oof_folds!r}")
        if self.device not in ("cpu", "cuda", "auto") and not str(self.device).startswith("cuda:"):
            problems.append(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}")
        if self.pretrain_twin is not None and (not isinstance(self.pretrain_twin, str) or not self.pretrain_twin):
            problems.append(f"pretrain_twin must be None or a folder path, got {self.pretrain_twin!r}")
        if self.pretrain_twin is not None and self.pretrained:
            problems.append("pretrained (hub weights) and pretrain_twin (twin pretext weights) exclude each other")
        if self.pretrain_seed is not None and (not isinstance(self.pretrain_seed, int)
                                               or isinstance(self.pretrain_seed, bool) or self.pretrain_seed < 0):
            problems.append(f"pretrain_seed must be None or a non-negative integer, got {self.pretrain_seed!r}")
        if self.num_workers < 0:
            problems.append(f"num_workers must be >= 0, got {self.num_workers!r}")
        if self.num_threads is not None and self.num_threads < 1:
            problems.append(f"num_threads must be None or >= 1, got {self.num_threads!r}")
        if self.progress not in ("auto", "bar", "log", "none"):
            problems.append(f"progress must be 'auto', 'bar', 'log' or 'none', got {self.progress!r}")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict:
        """Plain ``dict`` of every field (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def result_dict(self) -> dict:
        """Fields that influence results (``to_dict`` minus :data:`NON_RESULT_FIELDS`)."""
        return {k: v for k, v in self.to_dict().items() if k not in NON_RESULT_FIELDS}


_PROFILE_DEFAULTS: dict[str, dict] = {
    "smoke": dict(
        resize=40, crop=32, slices_per_patient=None, volume_depth=8,
        epochs=2, batch_size=16, volume_batch_size=4, lr=2e-3, warmup_epochs=0.5,
        eval_batch_size=256, pretrained=False, device="cpu", num_threads=1,
    ),
    "demo": dict(
        resize=64, crop=56, slices_per_patient=10, volume_depth=16,
        epochs=6, batch_size=32, volume_batch_size=8, lr=2e-3, warmup_epochs=1.0,
        eval_batch_size=256, pretrained=False, device="cpu", num_threads=1,
    ),
    "paper": dict(
        resize=256, crop=224, slices_per_patient=None, volume_depth=64,
        epochs=30, batch_size=32, volume_batch_size=4, lr=1e-4, warmup_epochs=1.0,
        eval_batch_size=128, pretrained=True, device="auto", amp=True, channels_last=True,
        num_workers=4, deterministic=False,
    ),
}


def resolve_config(profile: str, **overrides) -> TrainConfig:
    """The configuration of ``profile`` with ``overrides`` applied.

    Parameters
    ----------
    profile : {"smoke", "demo", "paper"}
        Starting point.
    **overrides
        Any :class:`TrainConfig` field, e.g. ``epochs=3`` (papermill
        parameters pass straight through). Values given as strings are
        converted to the field's type (see :func:`parse_value`).

    Returns
    -------
    TrainConfig

    Raises
    ------
    ValueError
        For an unknown profile, an unknown field name or an invalid value.

    Examples
    --------
    >>> resolve_config("smoke", epochs=1).epochs
    1
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {unknown}; valid fields: {sorted(names - {'profile'})}")
    if "profile" in overrides:
        raise ValueError("choose the profile with the first argument, not as an override")
    values = dict(_PROFILE_DEFAULTS[profile])
    for key, value in overrides.items():
        values[key] = parse_value(key, value) if isinstance(value, str) else value
    return TrainConfig(profile=profile, **values)


def parse_value(field: str, text: str):
    """Convert ``text`` to the type of :class:`TrainConfig` field ``field``.

    ``"none"``/``"null"`` give ``None`` where the field allows it; booleans
    accept ``true/false/1/0/yes/no``.
    """
    hints = typing.get_type_hints(TrainConfig)
    if field not in hints:
        raise ValueError(f"unknown TrainConfig field {field!r}")
    hint = hints[field]
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    lowered = text.strip().lower()
    if optional and lowered in ("none", "null", ""):
        return None
    if base is bool:
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"{field} expects a boolean, got {text!r}")
    try:
        return base(text.strip())
    except ValueError as exc:
        raise ValueError(f"{field} expects {base.__name__}, got {text!r}") from exc


def parse_overrides(items: list[str]) -> dict:
    """Parse command-line ``key=value`` strings into typed overrides."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}")
        overrides[key.strip()] = parse_value(key.strip(), value)
    return overrides
