"""One factory for the model of every arm of the study (Han et al. 2025, Table 2).

``create_model(arch, ...)`` builds the 2D CNNs of the paper through
``timm`` (ResNet-50/101, ResNeXt-101 32x8d, DenseNet-121/201, VGG-11/16,
EfficientNet-B0/B3/B7), the exploratory 3D ResNet-50 over the slice stack
through MONAI, and the exploratory hybrid: EfficientNet-B7 features followed
by Transformer encoder layers over the feature-map tokens ("global-local
fusion", same paper, "Performance of PD").

Names and scales
----------------
Every architecture exists at three scales, one per profile of
:mod:`pdlib.config` (:data:`ARCHS`):

``<name>``
    the paper's architecture (``efficientnet_b7``, ``resnet50_3d``, ...);
``<name>_demo``
    the same family with a quarter of the channels and a quarter of the
    blocks per stage (at least one), for the CPU demo;
``<name>_smoke``
    an eighth of the channels and of the blocks, for tests.

EfficientNets are scaled with the compound coefficients of Tan & Le (2019)
that define B0/B3/B7 (width x depth multipliers 1.0 x 1.0, 1.2 x 1.4,
2.0 x 3.1), multiplied by the scale's width and depth fractions, so the
order B0 < B3 < B7 in capacity holds at every scale. Parameter counts with
``in_chans=1, num_classes=2`` (see :func:`count_parameters`):

======================  =========  =========  =========
arch                    paper      demo       smoke
======================  =========  =========  =========
efficientnet_b0         4.01 M     0.12 M     0.04 M
efficientnet_b3         10.70 M    0.24 M     0.05 M
efficientnet_b7         63.79 M    1.07 M     0.20 M
resnet50                23.51 M    0.58 M     0.13 M
resnet101               42.50 M    0.86 M     0.17 M
resnext101_32x8d        86.74 M    1.56 M     0.29 M
densenet121             6.95 M     0.06 M     0.007 M
densenet201             18.09 M    0.12 M     0.013 M
vgg11                   128.77 M   3.24 M     0.62 M
vgg16                   134.27 M   3.59 M     0.71 M
resnet50_3d             46.16 M    1.05 M     0.23 M
hybrid_efficientnet_b7  65.51 M    1.15 M     0.22 M
======================  =========  =========  =========

Within each family the order of the paper is kept (B0 < B3 < B7,
ResNet-50 < ResNet-101, DenseNet-121 < DenseNet-201, VGG-11 < VGG-16); the
demo members are 1/30 to 1/120 of the paper's size.

Single-channel input
--------------------
CT slices are grey, so every model takes ``in_chans=1``. With ImageNet
weights, timm adapts the RGB stem by summing its three kernels over the
colour axis; a convolution is linear, so this gives exactly the output the
RGB stem would give on the grey slice replicated to three channels, at a
third of the stem's input memory and compute. Replicating to three channels
would cost more and change nothing.

Input normalisation
-------------------
The normalisation follows the weights (:func:`input_normalisation`). ImageNet
weights were trained on ``(rgb - mean_c) / std_c``; the summed stem reads the
grey slice as the same value in the three colour channels, so the matching
single-channel normalisation is ``(x - mean) / std`` with the channel averages
of the weights' timm ``pretrained_cfg`` (0.449 and 0.226 for the ImageNet
constants). Every other start (random initialisation, the demo's pretext
weights, a local ``weights_path``) keeps the identity: those weights were
learnt on the windowed [0, 1] slices as they are. The normalisation is part of
the model (a forward pre-hook, :func:`attach_normalisation`), so training,
scoring and Grad-CAM all see the same input, and it is recorded in
``model.pdlib_args["input_norm"]`` and so in every checkpoint.

Pretrained weights
------------------
``pretrained=True`` loads ImageNet-1k weights through timm's Hugging Face
hub path (:data:`PRETRAINED_WEIGHTS`). ``efficientnet_b7`` has no weights in
timm under that name: it maps to ``tf_efficientnet_b7.ra_in1k`` (the
TensorFlow-ported B7, "same" padding), and B0/B3 map to their
``tf_efficientnet`` counterparts too, so the three members of a PD chain
share one implementation. The classical CNNs use their torchvision
ImageNet weights (``.tv_in1k``). The 3D ResNet and the demo/smoke scales have
no hub weights; pass ``weights_path`` instead. Without network access and
without the weights in the local cache, asking for them raises
:class:`PretrainedWeightsUnavailable` at once instead of retrying.

Offline: ``python -m pdlib fetch-weights --profile paper DIR`` (on a connected
machine, :func:`fetch_weights`) stores one file per weight set,
``DIR/<timm name>.safetensors``; with ``PDLIB_WEIGHTS=DIR`` in the
environment, ``pretrained=True`` loads from that folder through timm's own
loading code (RGB stem summed, ImageNet head dropped) and never touches the
network. A missing file raises :class:`PretrainedWeightsUnavailable` naming
the file and the command.

Round trip
----------
Whatever the factory decided is recorded in ``model.pdlib_args`` (and so in
every checkpoint) and rebuilt exactly by :func:`model_from_args`: the timm
model actually built (``tf_efficientnet_b7`` with TensorFlow "same" padding
and BatchNorm eps 1e-3 when pretrained, ``efficientnet_b7`` otherwise; the
hybrid's backbone alike), a description of padding, normalisation eps and
stem (:func:`describe_build`, checked after rebuilding) and the input
normalisation.

Every new classifier head is initialised with small weights (std 0.01)
and zero bias, so all architectures start training near chance
(:func:`_reset_head`).

Model noise
-----------
``drop_rate`` is the dropout before the classifier and ``drop_path_rate``
the stochastic-depth rate of residual blocks (timm's EfficientNet and ResNet
families; Huang et al. 2016). The noisy students of PD use both (Han et al.
2025, "Model Noise"). DenseNet, VGG and MONAI's 3D ResNet have no stochastic
depth: they get dropout only and a warning when ``drop_path_rate > 0``.

References
----------
Han et al. 2025, Scientific Reports (Table 2; "PD algorithm development and
training"). Tan M, Le QV. EfficientNet: rethinking model scaling for CNNs.
ICML 2019. Huang G et al. Deep networks with stochastic depth. ECCV 2016.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import socket
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from pdlib import atomic

#: Architectures of the paper (Table 2), the names a profile's scale suffix is added to.
PAPER_ARCHS = (
    "resnet50",
    "resnet101",
    "resnext101_32x8d",
    "densenet121",
    "densenet201",
    "vgg11",
    "vgg16",
    "efficientnet_b0",
    "efficientnet_b3",
    "efficientnet_b7",
    "resnet50_3d",
    "hybrid_efficientnet_b7",
)


@dataclass(frozen=True)
class _Scale:
    """Fractions of the paper's channels (width) and blocks per stage (depth)."""

    width: float
    depth: float


#: Scale of each profile (``None``: the paper's architecture unchanged).
SCALES: dict[str, _Scale | None] = {
    "paper": None,
    "demo": _Scale(width=1 / 4, depth=1 / 4),
    "smoke": _Scale(width=1 / 8, depth=1 / 8),
}

#: Model names per profile of :mod:`pdlib.config`.
ARCHS: dict[str, tuple[str, ...]] = {
    profile: tuple(name if scale is None else f"{name}_{profile}" for name in PAPER_ARCHS)
    for profile, scale in SCALES.items()
}

#: ImageNet-1k weights on the timm hub for each paper architecture.
PRETRAINED_WEIGHTS = {
    "resnet50": "resnet50.tv_in1k",
    "resnet101": "resnet101.tv_in1k",
    "resnext101_32x8d": "resnext101_32x8d.tv_in1k",
    "densenet121": "densenet121.tv_in1k",
    "densenet201": "densenet201.tv_in1k",
    "vgg11": "vgg11.tv_in1k",
    "vgg16": "vgg16.tv_in1k",
    "efficientnet_b0": "tf_efficientnet_b0.in1k",
    "efficientnet_b3": "tf_efficientnet_b3.in1k",
    "efficientnet_b7": "tf_efficientnet_b7.ra_in1k",
    "hybrid_efficientnet_b7": "tf_efficientnet_b7.ra_in1k",  # backbone only
}

#: EfficientNet compound-scaling multipliers (width, depth) of Tan & Le (2019).
_EFFICIENTNET_MULTIPLIERS = {"efficientnet_b0": (1.0, 1.0), "efficientnet_b3": (1.2, 1.4), "efficientnet_b7": (2.0, 3.1)}

#: Blocks per stage of the ResNet/DenseNet families (He et al. 2016; Huang et al. 2017).
_RESNET_LAYERS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnext101_32x8d": (3, 4, 23, 3)}
_DENSENET_BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet201": (6, 12, 48, 32)}

#: VGG configurations A (VGG-11) and D (VGG-16) of Simonyan & Zisserman (2015); "M" is a max-pool.
_VGG_CFGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}

#: Transformer part of the hybrid per scale: (embedding width, layers, heads).
_HYBRID_TRANSFORMER = {"paper": (256, 2, 8), "demo": (64, 1, 4), "smoke": (32, 1, 2)}

#: Seconds allowed to reach the model hub before concluding that we are offline.
HUB_PROBE_TIMEOUT_S = 3.0

#: Environment variable naming a folder of weight files written by ``python -m pdlib fetch-weights``.
WEIGHTS_ENV = "PDLIB_WEIGHTS"

#: File endings a weights folder may hold, in order of preference.
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".bin")

#: Input normalisation of weights learnt on the windowed slices as they are.
IDENTITY_NORM = {"mean": 0.0, "std": 1.0, "source": "identity"}


class PretrainedWeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for but cannot be obtained (offline, not cached)."""


def split_arch(arch: str) -> tuple[str, str]:
    """``"efficientnet_b7_demo"`` -> ``("efficientnet_b7", "demo")``; validates the name."""
    for profile, names in ARCHS.items():
        if arch in names:
            if profile == "paper":
                return arch, "paper"
            return arch[: -len(profile) - 1], profile
    known = ", ".join(n for names in ARCHS.values() for n in names)
    raise ValueError(f"unknown arch {arch!r}; known: {known}")


def arch_for_profile(name: str, *, profile: str) -> str:
    """Model name of paper architecture ``name`` at the scale of ``profile``."""
    if name not in PAPER_ARCHS:
        raise ValueError(f"unknown paper architecture {name!r}; known: {PAPER_ARCHS}")
    if profile not in SCALES:
        raise ValueError(f"unknown profile {profile!r}; known: {tuple(SCALES)}")
    return name if SCALES[profile] is None else f"{name}_{profile}"


def is_volumetric(arch: str) -> bool:
    """True for the 3D arm (input ``[B, 1, D, H, W]``), False for 2D slice models."""
    return split_arch(arch)[0] == "resnet50_3d"


def supports_drop_path(arch: str) -> bool:
    """Whether ``arch`` has stochastic depth (EfficientNet, ResNet, ResNeXt, hybrid)."""
    name = split_arch(arch)[0]
    return name.startswith(("efficientnet", "resnet", "resnext", "hybrid")) and name != "resnet50_3d"


def has_pretrained(arch: str) -> bool:
    """Whether ``pretrained=True`` is available for ``arch`` (paper scale, 2D or hybrid)."""
    name, profile = split_arch(arch)
    return profile == "paper" and name in PRETRAINED_WEIGHTS


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def create_model(
    arch: str,
    *,
    num_classes: int = 2,
    in_chans: int = 1,
    pretrained: bool = False,
    weights_path: str | os.PathLike | None = None,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    **kwargs,
) -> nn.Module:
    """Build the model of one arm.

    Parameters
    ----------
    arch : str
        A name of :data:`ARCHS` (paper, ``_demo`` or ``_smoke`` scale).
    num_classes : int, default 2
        Output logits (GR and PR).
    in_chans : int, default 1
        Input channels; 1 for CT (see the module notes on single-channel input).
    pretrained : bool, default False
        Load ImageNet-1k weights from the timm hub (paper-scale 2D models and
        the hybrid's backbone only; :data:`PRETRAINED_WEIGHTS`).
    weights_path : path, optional
        A local ``state_dict`` file (``torch.save`` or ``.safetensors``; our own
        ``checkpoint.pt`` works too) loaded after construction by
        :func:`load_weights`. Exclusive with ``pretrained``.
    drop_rate : float, default 0
        Dropout before the classifier (model noise).
    drop_path_rate : float, default 0
        Stochastic-depth rate (model noise); ignored with a warning by
        architectures without residual stochastic depth.
    **kwargs
        Passed to the underlying constructor (timm model keywords; for the
        hybrid ``img_size``, ``embed_dim``, ``depth``, ``num_heads``, ``pool``).

    Returns
    -------
    torch.nn.Module
        Maps ``[B, in_chans, H, W]`` (3D arm: ``[B, in_chans, D, H, W]``) to
        logits ``[B, num_classes]``. ``model.pdlib_args`` holds the arguments
        that rebuild it (:func:`model_from_args`).

    Raises
    ------
    ValueError
        Unknown arch, invalid rates, or pretrained weights asked for where
        none exist.
    PretrainedWeightsUnavailable
        ``pretrained=True`` while offline and the weights are not cached.

    Examples
    --------
    >>> model = create_model("efficientnet_b0_smoke")
    >>> model(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 2])
    """
    name, profile = split_arch(arch)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(f"in_chans must be a positive integer, got {in_chans!r}")
    for label, rate in (("drop_rate", drop_rate), ("drop_path_rate", drop_path_rate)):
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"{label} must be in [0, 1), got {rate!r}")
    if pretrained and weights_path is not None:
        raise ValueError("pass either pretrained=True (hub weights) or weights_path (a local file), not both")
    if pretrained and not has_pretrained(arch):
        raise ValueError(
            f"no pretrained hub weights for {arch!r} (only paper-scale 2D models and the hybrid's backbone "
            "have them); pass weights_path=<local state_dict> instead"
        )
    if drop_path_rate and not supports_drop_path(arch):
        warnings.warn(
            f"{arch} has no stochastic depth; drop_path_rate={drop_path_rate} is ignored (dropout only)",
            UserWarning,
            stacklevel=2,
        )
        drop_path_rate = 0.0
    hub_name = PRETRAINED_WEIGHTS[name] if pretrained else None
    load = pretrained_source(hub_name, arch=arch) if pretrained else {}
    model = _build(name, profile, timm_name=hub_name or _default_timm_name(name, profile), load=load,
                   num_classes=num_classes, in_chans=in_chans, drop_rate=float(drop_rate),
                   drop_path_rate=drop_path_rate, **kwargs)
    if not (pretrained and num_classes == 1000):  # a new head, not ImageNet's own
        _reset_head(model)
    if weights_path is not None:
        load_weights(model, weights_path)
    norm = input_normalisation(hub_name)
    attach_normalisation(model, norm)
    model.pdlib_args = dict(
        arch=arch,
        num_classes=num_classes,
        in_chans=in_chans,
        pretrained=bool(pretrained),
        weights_path=None if weights_path is None else str(weights_path),
        drop_rate=float(drop_rate),
        drop_path_rate=float(drop_path_rate),
        **kwargs,
        build=describe_build(model, timm_name=hub_name or _default_timm_name(name, profile)),
        input_norm=norm,
    )
    return model


#: Keys of ``pdlib_args`` that are not constructor keywords.
_RECORD_KEYS = ("arch", "pretrained", "weights_path", "build", "input_norm")


def model_from_args(args: dict) -> nn.Module:
    """Rebuild an untrained model from ``model.pdlib_args`` (no weights loaded).

    Pretrained or file weights are not fetched again: a checkpoint's
    ``state_dict`` is loaded on top by the caller. The recorded build (the
    timm model actually built, e.g. ``tf_efficientnet_b7`` rather than
    ``efficientnet_b7``) and input normalisation are reproduced, and the
    rebuilt model's :func:`describe_build` must equal the recorded one.
    Records written before these were kept (no ``build`` key) rebuild as
    before: the plain timm name, identity normalisation.

    Raises
    ------
    ValueError
        When the rebuilt model differs from the recorded description (e.g. a
        timm release that changed the architecture's defaults).
    """
    args = dict(args)
    arch = args["arch"]
    recorded, norm = args.get("build"), args.get("input_norm") or IDENTITY_NORM
    options = {k: v for k, v in args.items() if k not in _RECORD_KEYS}
    name, profile = split_arch(arch)
    timm_name = recorded["timm_name"] if recorded else _default_timm_name(name, profile)
    drop_path_rate = options.pop("drop_path_rate", 0.0)
    if drop_path_rate and not supports_drop_path(arch):
        drop_path_rate = 0.0
    options.setdefault("num_classes", 2)
    options.setdefault("in_chans", 1)
    options["drop_rate"] = float(options.get("drop_rate", 0.0))
    model = _build(name, profile, timm_name=timm_name, load={}, drop_path_rate=float(drop_path_rate), **options)
    attach_normalisation(model, norm)
    if recorded:
        rebuilt = describe_build(model, timm_name=timm_name)
        if rebuilt != recorded:
            raise ValueError(f"{arch}: the rebuilt model differs from the recorded one: recorded {recorded}, "
                             f"rebuilt {rebuilt} (another timm version?)")
    model.pdlib_args = args
    return model


def _default_timm_name(name: str, profile: str) -> str | None:
    """timm name of a paper-scale architecture built without hub weights (``None``: not a timm model)."""
    if SCALES[profile] is not None or name in ("resnet50_3d",):
        return None
    return "efficientnet_b7" if name == "hybrid_efficientnet_b7" else name


def _build(name: str, profile: str, *, timm_name: str | None, load: dict, num_classes: int, in_chans: int,
           drop_rate: float, drop_path_rate: float, **kwargs) -> nn.Module:
    """The network of ``name`` at ``profile``'s scale; ``timm_name``/``load`` choose the timm model and weights."""
    common = dict(num_classes=num_classes, in_chans=in_chans, drop_rate=float(drop_rate))
    scale = SCALES[profile]
    if name.startswith("efficientnet"):
        return _efficientnet(name, scale, timm_name=timm_name, load=load,
                             drop_path_rate=drop_path_rate, **common, **kwargs)
    if name in _RESNET_LAYERS:
        return _resnet(name, scale, timm_name=timm_name, load=load, drop_path_rate=drop_path_rate, **common, **kwargs)
    if name in _DENSENET_BLOCKS:
        return _densenet(name, scale, timm_name=timm_name, load=load, **common, **kwargs)
    if name in _VGG_CFGS:
        return _vgg(name, scale, timm_name=timm_name, load=load, **common, **kwargs)
    if name == "resnet50_3d":
        return _resnet3d(scale, **common, **kwargs)
    if name == "hybrid_efficientnet_b7":
        backbone = _efficientnet("efficientnet_b7", scale, timm_name=timm_name, load=load,
                                 drop_path_rate=drop_path_rate, num_classes=0, in_chans=in_chans,
                                 drop_rate=0.0, global_pool="")
        embed_dim, depth, num_heads = _HYBRID_TRANSFORMER[profile]
        options = dict(embed_dim=embed_dim, depth=depth, num_heads=num_heads)
        options.update(kwargs)
        return _finish(HybridEfficientNetTransformer(backbone, num_classes=num_classes, drop_rate=float(drop_rate),
                                                     **options), "head")
    raise ValueError(f"unknown arch {name!r}")  # pragma: no cover - split_arch already rejected it


def describe_build(model: nn.Module, *, timm_name: str | None) -> dict:
    """What distinguishes builds of one architecture whose ``state_dict`` keys are identical.

    ``timm_name`` (the timm model built, ``None`` for pdlib's scaled members
    and MONAI), ``padding`` (``"tf_same"`` when TensorFlow "same" padding
    layers are present, else ``"symmetric"``), ``norm_eps`` (the distinct eps
    of the normalisation layers) and ``stem_in_chans``.
    """
    classes = {type(m).__name__ for m in model.modules()}
    padding = "tf_same" if any(c.endswith("Same") or c.endswith("SameExport") for c in classes) else "symmetric"
    eps = sorted({float(m.eps) for m in model.modules()
                  if isinstance(m, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm))})
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))), None)
    return {"timm_name": timm_name, "padding": padding, "norm_eps": eps,
            "stem_in_chans": None if first is None else int(first.in_channels)}


def input_normalisation(hub_name: str | None) -> dict:
    """``{"mean", "std", "source"}`` of the single-channel input the weights expect.

    ``None`` (no hub weights): :data:`IDENTITY_NORM`. Hub weights: the averages
    over the colour channels of timm's ``pretrained_cfg`` mean and std (see
    the module notes on input normalisation).
    """
    if hub_name is None:
        return dict(IDENTITY_NORM)
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(hub_name)
    if cfg is None or not cfg.mean or not cfg.std:
        raise ValueError(f"timm has no normalisation constants for {hub_name!r}")
    return {"mean": float(sum(cfg.mean) / len(cfg.mean)), "std": float(sum(cfg.std) / len(cfg.std)),
            "source": hub_name}


class _Normalise:
    """Forward pre-hook: ``x -> (x - mean) / std`` on the model's input."""

    def __init__(self, mean: float, std: float):
        self.mean, self.std = float(mean), float(std)

    def __call__(self, module, args):
        return ((args[0] - self.mean) / self.std, *args[1:])


def attach_normalisation(model: nn.Module, norm: dict) -> nn.Module:
    """Make ``model`` normalise its input as ``norm`` says (nothing for the identity)."""
    if not float(norm["std"]) > 0:
        raise ValueError(f"input normalisation needs std > 0, got {norm}")
    if (float(norm["mean"]), float(norm["std"])) != (0.0, 1.0):
        model.register_forward_pre_hook(_Normalise(norm["mean"], norm["std"]))
    return model


# --------------------------------------------------------------------------- families


def _scaled(value: float, fraction: float, *, minimum: int = 1) -> int:
    return max(minimum, int(math.ceil(value * fraction)))


def _reset_head(model: nn.Module) -> None:
    """Initialise the classifier with N(0, 0.01^2) weights and zero bias.

    timm's EfficientNet draws its classifier uniformly from
    +-1/sqrt(num_classes), a range meant for 1000 classes: with 2 classes the
    untrained model starts with logits of standard deviation 3-4 and a loss
    three times that of chance. A small head makes every architecture start
    near chance (loss ln 2).
    """
    head = model.get_submodule(model.pdlib_classifier)
    nn.init.normal_(head.weight, std=0.01)
    if head.bias is not None:
        nn.init.zeros_(head.bias)


def _timm_load(load: dict) -> dict:
    """timm keywords of a weights source (:func:`pretrained_source`); none: no weights."""
    return dict(load) if load else {"pretrained": False, "cache_dir": None}


def _finish(model: nn.Module, classifier: str) -> nn.Module:
    model.pdlib_classifier = classifier  # parameter prefix of the (re-initialised) head
    return model


def _efficientnet(name, scale, *, timm_name, load, num_classes, in_chans, drop_rate, drop_path_rate, **kwargs):
    import timm

    if scale is None:
        model = timm.create_model(
            timm_name or name, **_timm_load(load), num_classes=num_classes,
            in_chans=in_chans, drop_rate=drop_rate, drop_path_rate=drop_path_rate, **kwargs,
        )
        return _finish(model, "classifier")
    # timm's efficientnet_bX entry points fix the multipliers, so the scaled
    # members are built by timm's generator with the multipliers scaled down.
    from timm.models.efficientnet import _gen_efficientnet

    width, depth = _EFFICIENTNET_MULTIPLIERS[name]
    model = _gen_efficientnet(
        "efficientnet_b0", channel_multiplier=width * scale.width, depth_multiplier=depth * scale.depth,
        pretrained=False, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate,
        drop_path_rate=drop_path_rate, **kwargs,
    )
    return _finish(model, "classifier")


def _resnet(name, scale, *, timm_name, load, num_classes, in_chans, drop_rate, drop_path_rate, **kwargs):
    import timm

    options = dict(num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, drop_path_rate=drop_path_rate)
    if scale is not None:
        options.update(
            layers=tuple(_scaled(n, scale.depth) for n in _RESNET_LAYERS[name]),
            channels=tuple(_scaled(c, scale.width) for c in (64, 128, 256, 512)),
            stem_width=_scaled(64, scale.width),
        )
    options.update(kwargs)
    model = timm.create_model(timm_name or name, **_timm_load(load), **options)
    return _finish(model, "fc")


def _densenet(name, scale, *, timm_name, load, num_classes, in_chans, drop_rate, **kwargs):
    import timm

    options = dict(num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)
    if scale is not None:
        options.update(
            growth_rate=_scaled(32, scale.width),
            block_config=tuple(_scaled(n, scale.depth) for n in _DENSENET_BLOCKS[name]),
        )
    options.update(kwargs)
    model = timm.create_model(timm_name or name, **_timm_load(load), **options)
    return _finish(model, "classifier")


def _vgg(name, scale, *, timm_name, load, num_classes, in_chans, drop_rate, **kwargs):
    import timm

    if scale is None:
        model = timm.create_model(timm_name or name, **_timm_load(load),
                                  num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, **kwargs)
        return _finish(model, "head.fc")
    from timm.models.vgg import VGG

    cfg = [v if v == "M" else _scaled(v, scale.width) for v in _VGG_CFGS[name]]
    # timm's VGG head is a 7x7 convolution to 4096 hidden units; mlp_ratio
    # shrinks its hidden width by the square of the width fraction.
    options = dict(mlp_ratio=scale.width**2)
    options.update(kwargs)
    model = VGG(cfg, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, **options)
    return _finish(model, "head.fc")


def _resnet3d(scale, *, num_classes, in_chans, drop_rate, **kwargs):
    from monai.networks.nets import ResNet, resnet50

    if scale is None:
        model = resnet50(spatial_dims=3, n_input_channels=in_chans, num_classes=num_classes, **kwargs)
    else:
        options = dict(
            block="bottleneck",
            layers=[_scaled(n, scale.depth) for n in _RESNET_LAYERS["resnet50"]],
            block_inplanes=[_scaled(c, scale.width) for c in (64, 128, 256, 512)],
            spatial_dims=3,
            n_input_channels=in_chans,
            num_classes=num_classes,
        )
        options.update(kwargs)
        model = ResNet(**options)
    # MONAI's ResNet has no classifier dropout: put it in front of the head.
    model.fc = nn.Sequential(nn.Dropout(drop_rate), model.fc)
    return _finish(model, "fc.1")


class HybridEfficientNetTransformer(nn.Module):
    """EfficientNet features, Transformer encoder over their tokens, linear head.

    The CNN describes each region of the slice (local features); the encoder
    lets every region attend to every other one (global context), the
    "global-local feature fusion" of the exploratory hybrid in Han et al.
    2025 ("Performance of PD").

    Parameters
    ----------
    backbone : nn.Module
        A timm EfficientNet built with ``num_classes=0, global_pool=""`` whose
        ``forward_features`` returns ``[B, C, h, w]``.
    num_classes : int
    embed_dim : int
        Token width after a 1x1 projection of the ``C`` feature channels.
    depth : int
        Number of ``nn.TransformerEncoderLayer`` (pre-norm, GELU).
    num_heads : int
    mlp_ratio : float
        Width of each layer's feed-forward block relative to ``embed_dim``.
    img_size : int
        Input side the learned position embedding is sized for (``img_size /
        32`` tokens per side); other sizes interpolate it bicubically.
    pool : {"cls", "mean"}
        Read out a learned class token or the mean of the patch tokens.
    drop_rate : float
        Dropout inside the encoder and before the head.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        num_classes: int,
        embed_dim: int = 256,
        depth: int = 2,
        num_heads: int = 8,
        mlp_ratio: float = 2.0,
        img_size: int = 224,
        pool: str = "cls",
        drop_rate: float = 0.0,
    ):
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.backbone = backbone
        self.pool = pool
        self.grid = max(1, math.ceil(img_size / 32))  # EfficientNet reduces 32-fold
        self.proj = nn.Conv2d(backbone.num_features, embed_dim, kernel_size=1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, self.grid, self.grid))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        layer = nn.TransformerEncoderLayer(
            embed_dim, num_heads, dim_feedforward=int(embed_dim * mlp_ratio), dropout=drop_rate,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes)

    def no_weight_decay(self) -> set[str]:
        """Parameters kept out of weight decay by name (timm's convention): position embedding, class token."""
        return {"pos_embed", "cls_token"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.proj(self.backbone.forward_features(x))  # [B, D, h, w]
        h, w = features.shape[-2:]
        pos = self.pos_embed
        if (h, w) != (self.grid, self.grid):
            pos = nn.functional.interpolate(pos, size=(h, w), mode="bicubic", align_corners=False)
        tokens = (features + pos).flatten(2).transpose(1, 2)  # [B, h*w, D]
        if self.pool == "cls":
            tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = self.norm(self.encoder(tokens))
        pooled = tokens[:, 0] if self.pool == "cls" else tokens.mean(dim=1)
        return self.head(self.head_drop(pooled))


# --------------------------------------------------------------------------- weights


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a local ``state_dict`` into ``model`` in place.

    Accepts a ``torch.save`` file (read with ``weights_only=True``), a
    ``.safetensors`` file, or a pdlib ``checkpoint.pt`` (its ``state_dict``).
    Two adaptations are made, both of ImageNet files: an RGB stem loaded into
    a single-channel model is summed over its colour axis (see the module
    notes), and a classifier of another shape (e.g. 1000 ImageNet classes) is
    skipped so the model keeps its freshly initialised head. Anything else
    that does not fit raises.

    Returns
    -------
    model : nn.Module
        The same object.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, or keys/shapes that do not match the model.
    """
    path = Path(path)
    state = read_state_dict(path)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    own = model.state_dict()
    head = getattr(model, "pdlib_classifier", None)

    def is_head(key: str) -> bool:
        return head is not None and key.startswith(head + ".")

    adapted, skipped, problems = {}, [], []
    for key, value in state.items():
        if key not in own:
            problems.append(f"unexpected key {key}")
        elif value.shape == own[key].shape:
            adapted[key] = value
        elif (value.ndim >= 4 and value.shape[1] == 3 and own[key].shape[1] == 1
              and value.shape[0] == own[key].shape[0] and value.shape[2:] == own[key].shape[2:]):
            adapted[key] = value.sum(dim=1, keepdim=True)  # RGB stem -> grey stem
        elif is_head(key):
            skipped.append(key)
        else:
            problems.append(f"{key}: file {tuple(value.shape)} vs model {tuple(own[key].shape)}")
    missing = [k for k in own if k not in adapted and not is_head(k)]
    if missing:
        problems.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if problems:
        raise ValueError(f"{path} does not fit {type(model).__name__}: " + "; ".join(problems[:8]))
    model.load_state_dict(adapted, strict=False)
    if skipped:
        warnings.warn(f"{path}: classifier {skipped} has another shape; the model keeps a new head",
                      UserWarning, stacklevel=2)
    return model


def _hf_cache_dir() -> Path:
    """Hugging Face hub cache folder, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _is_cached(hf_hub_id: str, cache_dir: Path) -> bool:
    from huggingface_hub import try_to_load_from_cache

    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(hf_hub_id, filename, cache_dir=str(cache_dir))
        if isinstance(found, str):
            return True
    return False


def _reachable(url: str, *, timeout: float) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds.

    Name resolution has no timeout of its own, so the probe runs in a daemon
    thread that is abandoned when it overruns.
    """
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    result = {"ok": False}

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result["ok"] = True
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return result["ok"]


def require_hub_weights(hub_name: str, *, cache_dir: str | os.PathLike | None = None) -> None:
    """Fail fast unless timm can obtain ``hub_name``'s weights now.

    Passes when the weights are in the local Hugging Face cache, or when the
    hub endpoint (``HF_ENDPOINT``, default huggingface.co) accepts a
    connection within :data:`HUB_PROBE_TIMEOUT_S`; ``HF_HUB_OFFLINE=1`` skips
    the probe.

    Raises
    ------
    PretrainedWeightsUnavailable
        With the model, the cache folder and the ways out.
    """
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(hub_name)
    if cfg is None or not cfg.hf_hub_id:
        raise PretrainedWeightsUnavailable(f"timm has no hub weights registered for {hub_name!r}")
    cache_dir = Path(cache_dir) if cache_dir is not None else _hf_cache_dir()
    if _is_cached(cfg.hf_hub_id, cache_dir):
        return
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if offline or not _reachable(endpoint, timeout=HUB_PROBE_TIMEOUT_S):
        why = "HF_HUB_OFFLINE is set" if offline else f"{endpoint} is unreachable"
        raise PretrainedWeightsUnavailable(
            f"pretrained weights {hub_name} (hub id {cfg.hf_hub_id}) are not in the cache {cache_dir} and {why}. "
            f"On a connected machine run `python -m pdlib fetch-weights --profile paper DIR` and set "
            f"{WEIGHTS_ENV}=DIR here, pass weights_path=<local state_dict>, "
            "or train from scratch with pretrained=False."
        )


def weights_file_name(hub_name: str) -> str:
    """Name of ``hub_name``'s file in a weights folder: ``<timm name>.safetensors``."""
    return f"{hub_name}.safetensors"


def weights_folder() -> Path | None:
    """The folder named by ``PDLIB_WEIGHTS`` (read at call time), or ``None``."""
    value = os.environ.get(WEIGHTS_ENV, "").strip()
    return Path(value).expanduser() if value else None


def find_weights_file(hub_name: str, folder: str | os.PathLike) -> Path | None:
    """``folder/<hub_name>`` with one of :data:`WEIGHT_SUFFIXES`, or ``None``."""
    for suffix in WEIGHT_SUFFIXES:
        path = Path(folder) / f"{hub_name}{suffix}"
        if path.is_file():
            return path
    return None


def pretrained_source(hub_name: str, *, arch: str | None = None) -> dict:
    """timm keywords that load ``hub_name``'s ImageNet weights, checked to be obtainable now.

    With ``PDLIB_WEIGHTS=DIR``: the file ``DIR/<hub_name>.safetensors`` (or
    ``.pth``/``.bin``), through timm's ``pretrained_cfg_overlay`` (timm still
    adapts the stem and drops the ImageNet head); no network. Otherwise the
    Hugging Face hub or its cache (:func:`require_hub_weights`).

    Raises
    ------
    PretrainedWeightsUnavailable
        The folder lacks the file (naming it and the command that fetches it),
        or the hub is unreachable and the weights are not cached.
    """
    folder = weights_folder()
    if folder is not None:
        found = find_weights_file(hub_name, folder)
        if found is None:
            what = f" for {arch}" if arch else ""
            raise PretrainedWeightsUnavailable(
                f"pretrained weights {hub_name}{what}: no file {folder / weights_file_name(hub_name)} "
                f"({WEIGHTS_ENV}={folder}). Fetch every weight file of the profile on a connected machine with "
                f"`python -m pdlib fetch-weights --profile paper {folder}` and copy the folder here, "
                f"or unset {WEIGHTS_ENV} to use the Hugging Face hub."
            )
        return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(found)}}
    cache_dir = _hf_cache_dir()
    require_hub_weights(hub_name, cache_dir=cache_dir)
    return {"pretrained": True, "cache_dir": cache_dir}


def profile_weights(profile: str) -> list[str]:
    """timm names of the hub weights the architectures of ``profile`` start from (sorted, distinct)."""
    if profile not in ARCHS:
        raise ValueError(f"unknown profile {profile!r}; known: {tuple(ARCHS)}")
    return sorted({PRETRAINED_WEIGHTS[split_arch(a)[0]] for a in ARCHS[profile] if has_pretrained(a)})


def fetch_weights(profile: str, out_dir: str | os.PathLike, *, source: str | os.PathLike | None = None,
                  archs: list[str] | None = None) -> list[Path]:
    """Store every weight file ``profile`` needs in ``out_dir`` (for ``PDLIB_WEIGHTS``).

    Parameters
    ----------
    profile : str
        A profile of :data:`ARCHS`; only ``paper`` has hub weights.
    out_dir : path
        Receives ``<timm name>.safetensors`` (or the source's ``.pth``/``.bin``)
        per weight set, each written atomically; files already there are kept.
    source : path, optional
        A folder of such files (e.g. another machine's weights folder) to copy
        from. Default: the Hugging Face hub through ``huggingface_hub``, which
        uses and fills its cache (``HF_HUB_CACHE``; with ``HF_HUB_OFFLINE=1``
        only the cache).
    archs : list of str, optional
        Restrict to these architectures of the profile.

    Returns
    -------
    list of Path
        The files in ``out_dir``, one per weight set.

    Raises
    ------
    PretrainedWeightsUnavailable
        A weight set can be found neither in ``source`` nor on the hub (named).
    """
    names = profile_weights(profile)
    if archs is not None:
        wanted = {PRETRAINED_WEIGHTS[split_arch(a)[0]] for a in archs if has_pretrained(a)}
        names = [n for n in names if n in wanted]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for hub_name in names:
        existing = find_weights_file(hub_name, out_dir)
        if existing is not None:
            written.append(existing)
            continue
        origin = _weights_origin(hub_name, source)
        target = out_dir / f"{hub_name}{origin.suffix if origin.suffix in WEIGHT_SUFFIXES else '.bin'}"
        with atomic.replacing(target, suffix=target.suffix) as tmp:
            shutil.copyfile(origin, tmp)
        written.append(target)
    return written


def _weights_origin(hub_name: str, source) -> Path:
    if source is not None:
        found = find_weights_file(hub_name, source)
        if found is None:
            raise PretrainedWeightsUnavailable(f"no file {Path(source) / weights_file_name(hub_name)} in the source "
                                               f"folder {source}")
        return found
    from huggingface_hub import hf_hub_download
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(hub_name)
    if cfg is None or not cfg.hf_hub_id:
        raise PretrainedWeightsUnavailable(f"timm has no hub weights registered for {hub_name!r}")
    problems = []
    for filename in ("model.safetensors", "pytorch_model.bin"):
        try:
            return Path(hf_hub_download(cfg.hf_hub_id, filename, cache_dir=str(_hf_cache_dir())))
        except Exception as exc:  # noqa: BLE001 - every hub failure ends in the message below
            problems.append(f"{filename}: {type(exc).__name__}: {exc}")
    raise PretrainedWeightsUnavailable(f"could not fetch {hub_name} (hub id {cfg.hf_hub_id}) from the hub or its "
                                       f"cache {_hf_cache_dir()}: " + "; ".join(problems))


def read_state_dict(path: str | os.PathLike) -> dict:
    """The ``name -> tensor`` mapping of a weights file (``torch.save``, ``.safetensors`` or a pdlib checkpoint)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state_dict (name -> tensor)")
    return state


def weights_fingerprint(weights) -> str:
    """Hash of named tensors (names and values, in name order): 16 hex digits.

    ``weights`` is a model (its ``state_dict``), a ``name -> tensor`` mapping
    or a weights file (:func:`read_state_dict`). A model and the file of its
    ``state_dict`` give the same fingerprint. Recorded by members for their
    teacher and their initial weights, so that other weights make them stale.
    """
    if isinstance(weights, nn.Module):
        state = weights.state_dict()
    elif isinstance(weights, dict):
        state = weights
    else:
        state = read_state_dict(weights)
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        value = state[name].detach().cpu().contiguous()
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()[:16]
