"""Grad-CAM heat maps of the slice classifiers (Fig. 5 of Han et al. 2025).

Han et al. (2025) show, for one patient per RECIST category, which image
regions the PD model relies on, using gradient-weighted class activation
mapping (Grad-CAM; Selvaraju et al. 2017): the feature maps of a late
convolutional layer are weighted by the spatially averaged gradient of the
class score, summed, rectified and upsampled to the input size.

The computation is delegated to the ``pytorch-grad-cam`` package (import name
``pytorch_grad_cam``). This module adds what a study needs around it:

* :func:`target_layer` picks the layer for each architecture of the study;
* :func:`gradcam` leaves the model exactly as it found it (train/eval mode of
  every sub-module, ``requires_grad`` flags, accumulated gradients, no hooks)
  and works under ``torch.no_grad()``;
* :func:`cam_mass_inside` and :func:`cam_mass_chance` check a heat map
  against a tumour mask (the digital twin knows where its tumours are);
* :func:`tumour_masks`, :func:`heatmap_panels` and :func:`tumour_attention`
  make Fig. 5 and its check against the masks for the heat-map chapter.

References
----------
Han et al. (2025). Deep learning progressive distill for predicting clinical
response to conversion therapy from preoperative CT images of advanced
gastric cancer patients.

Selvaraju, R. R. et al. (2017). Grad-CAM: visual explanations from deep
networks via gradient-based localization. ICCV, 618-626.
https://doi.org/10.1109/ICCV.2017.74
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pytorch_grad_cam import GradCAM
from torch import nn

from pdlib.infer import centre_crop
from pdlib.slices import resize_slices
from pdlib.vocab import RECIST_CATEGORIES

__all__ = ["HeatmapPanels", "cam_mass_chance", "cam_mass_inside", "gradcam", "heatmap_panels", "target_layer",
           "tumour_attention", "tumour_masks"]


# --------------------------------------------------------------------------
# target layers
# --------------------------------------------------------------------------


def _loaded_class(module_name: str, class_name: str) -> type | None:
    """A class from an already imported module, else None.

    A model of a library's class implies that the library is imported, so
    type checks never need to import timm or MONAI themselves.
    """
    module = sys.modules.get(module_name)
    found = getattr(module, class_name, None) if module is not None else None
    return found if isinstance(found, type) else None


def _is_instance(model: nn.Module, *classes: tuple[str, str]) -> bool:
    loaded = tuple(c for c in (_loaded_class(m, n) for m, n in classes) if c is not None)
    return bool(loaded) and isinstance(model, loaded)


def _last_block(container) -> nn.Module | None:
    if isinstance(container, (nn.Sequential, nn.ModuleList)) and len(container) > 0:
        return container[-1]
    return None


def _efficientnet_layer(model: nn.Module) -> nn.Module | None:
    # timm EfficientNet: conv_head -> bn2 (BatchNormAct2d: norm + activation)
    # is the final feature map that the classifier pools. The features-only
    # variant stops after the last block.
    bn2 = getattr(model, "bn2", None)
    if isinstance(getattr(model, "conv_head", None), nn.Conv2d) and isinstance(bn2, nn.Module):
        return bn2
    return _last_block(getattr(model, "blocks", None))


def _vgg_layer(features: nn.Sequential) -> nn.Module | None:
    # The rectified output of the last convolution: its activation when one
    # follows the convolution, else the convolution itself.
    convs = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    if not convs:
        return None
    last = convs[-1]
    after = list(features)[last + 1 :]
    for module in after:
        if isinstance(module, (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU)):
            return module
        if not isinstance(module, (nn.BatchNorm2d,)):
            break
    return features[last]


def target_layer(model: nn.Module) -> nn.Module:
    """The layer whose activations Grad-CAM weighs, for the study's architectures.

    The family is recognised by class (timm, MONAI) or, for wrappers such as
    timm's ``features_only`` models, by structure; never by the model's name.

    =====================================  =====================================
    family                                 target layer
    =====================================  =====================================
    hybrid CNN + Transformer               ``target_layer(model.backbone)``
    timm EfficientNet (B0, B3, B7, ...)    ``bn2`` (after ``conv_head``); for
                                           features-only models ``blocks[-1]``
    timm ResNet, ResNeXt; MONAI 3D ResNet  ``layer4[-1]``
    timm DenseNet                          ``features.norm5``
    timm VGG                               the activation after the last
                                           convolution in ``features``
    =====================================  =====================================

    The hybrid model (EfficientNet-B7 with Transformer encoder layers, Han et
    al. 2025, "Performance of PD") is recognised by its CNN under the
    attribute ``backbone``; the backbone's last feature map must feed the
    Transformer.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier built by ``pdlib.models.create_model`` or timm/MONAI.

    Returns
    -------
    layer : torch.nn.Module
        A sub-module of ``model``.

    Raises
    ------
    TypeError
        ``model`` is not a ``torch.nn.Module``.
    ValueError
        No rule matches; pass ``layer=`` to :func:`gradcam` instead.

    Examples
    --------
    >>> import timm
    >>> model = timm.create_model("resnet18", num_classes=2, in_chans=1)
    >>> target_layer(model) is model.layer4[-1]
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"target_layer: model must be a torch.nn.Module, got {type(model).__name__}")
    layer = _find_target_layer(model)
    if layer is None:
        raise ValueError(
            f"target_layer: no Grad-CAM target layer is known for a {type(model).__module__}."
            f"{type(model).__qualname__}; known families are timm EfficientNet, ResNet/ResNeXt, "
            "DenseNet and VGG, MONAI ResNet and models exposing a CNN as `backbone`. "
            "Pass layer=<the last convolutional block> to gradcam()."
        )
    return layer


def _find_target_layer(model: nn.Module) -> nn.Module | None:
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, nn.Module) and backbone is not model:
        return _find_target_layer(backbone)

    if _is_instance(model, ("timm.models.efficientnet", "EfficientNet"), ("timm.models.efficientnet", "EfficientNetFeatures")):
        return _efficientnet_layer(model)
    if _is_instance(model, ("timm.models.resnet", "ResNet"), ("monai.networks.nets.resnet", "ResNet")):
        return _last_block(model.layer4)
    if _is_instance(model, ("timm.models.densenet", "DenseNet")):
        return model.features.norm5
    if _is_instance(model, ("timm.models.vgg", "VGG")):
        return _vgg_layer(model.features)

    # Structural rules: timm features-only wrappers and look-alikes.
    if isinstance(getattr(model, "conv_stem", None), nn.Conv2d) and isinstance(getattr(model, "blocks", None), nn.Sequential):
        return _efficientnet_layer(model)
    layer4 = _last_block(getattr(model, "layer4", None))
    if layer4 is not None:
        return layer4
    features = getattr(model, "features", None)
    if isinstance(getattr(features, "norm5", None), nn.Module):
        return features.norm5
    if isinstance(getattr(model, "features_norm5", None), nn.Module):
        return model.features_norm5
    if isinstance(features, nn.Sequential) and isinstance(getattr(model, "pre_logits", None), nn.Module):
        return _vgg_layer(features)
    return None


# --------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------


class _ClassScore:
    """Grad-CAM target: the raw score (logit) of one class for one image."""

    def __init__(self, index: int):
        self.index = index

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        n_classes = output.shape[-1]
        if self.index >= n_classes:
            raise ValueError(f"gradcam: target_class={self.index} but the model returns {n_classes} class scores")
        return output[..., self.index]


@contextlib.contextmanager
def _model_left_as_found(model: nn.Module) -> Iterator[None]:
    """Run the body with ``model`` in eval mode and frozen, then restore it.

    Restores each sub-module's ``training`` flag (not just the top one, so a
    deliberately frozen BatchNorm stays in eval), each parameter's
    ``requires_grad`` and its accumulated ``.grad`` (``pytorch_grad_cam``
    calls ``model.zero_grad()``). Parameters are frozen during the body:
    gradients flow to the activations through an input that requires grad,
    so no parameter gradient is computed.
    """
    modes = [(module, module.training) for module in model.modules()]
    parameters = list(model.parameters())
    flags = [p.requires_grad for p in parameters]
    grads = [p.grad for p in parameters]
    try:
        for p in parameters:
            p.requires_grad_(False)
        with torch.enable_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training
        for p, flag, grad in zip(parameters, flags, grads):
            p.requires_grad_(flag)
            p.grad = grad


def _as_batch(images, *, function: str) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        batch = images.detach()
    else:
        array = np.asarray(images)
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ValueError(f"{function}: images must be numeric, got dtype {array.dtype}")
        batch = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if batch.ndim == 3:  # (n, H, W): single-channel slices, as in PatientSlices.slices
        batch = batch.unsqueeze(1)
    if batch.ndim not in (4, 5) or batch.shape[0] == 0:
        raise ValueError(
            f"{function}: images must have shape (n, H, W), (n, C, H, W) or (n, C, D, H, W) with n >= 1; "
            f"got {tuple(batch.shape)}"
        )
    if not torch.isfinite(batch).all():
        raise ValueError(f"{function}: images hold NaN or infinite values")
    return batch


def gradcam(
    model: nn.Module,
    images,
    *,
    target_class: int = 1,
    layer: nn.Module | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Grad-CAM heat maps of ``target_class`` for a batch of images.

    Each map is the rectified, gradient-weighted sum of the target layer's
    feature maps (Selvaraju et al. 2017), upsampled to the input size and
    scaled to [0, 1] per image by ``pytorch_grad_cam``; it is what Fig. 5 of
    Han et al. (2025) overlays on the CT slices. The model runs in eval mode
    (dropout off, BatchNorm on running statistics), so an image's map does
    not depend on the others in its batch and repeated calls give the same
    numbers.

    The model is left as found: the train/eval mode of every sub-module,
    ``requires_grad`` flags and accumulated gradients are restored and the
    hooks removed, also when an error is raised.

    Parameters
    ----------
    model : torch.nn.Module
        Classifier returning class scores (logits) of shape (n, n_classes).
    images : ndarray or Tensor of shape (n, H, W), (n, C, H, W) or (n, C, D, H, W)
        Inputs as the model expects them (e.g. windowed slices in [0, 1]);
        a 3-d array is read as single-channel 2D slices. They are moved to
        the model's device.
    target_class : int, default 1
        Class whose score is explained; 1 is the positive class (PR, poor
        response, by default).
    layer : torch.nn.Module, optional
        Target layer, a sub-module of ``model``; default
        :func:`target_layer(model) <target_layer>`.
    batch_size : int, default 16
        Images per forward/backward pass (memory only; results do not
        depend on it).

    Returns
    -------
    cams : ndarray of shape (n, H, W), or (n, D, H, W) for 3D inputs, float32
        Heat maps in [0, 1]. A map that is zero everywhere (no positive
        evidence for the class at the target layer, or a target feature map
        of a single position because the input is too small) comes with a
        ``RuntimeWarning``.

    Raises
    ------
    TypeError
        ``model`` or ``layer`` is not a ``torch.nn.Module``.
    ValueError
        Images of the wrong shape or non-finite, ``layer`` not inside
        ``model``, ``target_class`` out of range, or no known target layer.

    Examples
    --------
    >>> import timm
    >>> model = timm.create_model("resnet18", num_classes=2, in_chans=1)
    >>> gradcam(model, np.random.default_rng(0).random((2, 64, 64))).shape
    (2, 64, 64)
    """
    fn = "gradcam"
    if not isinstance(model, nn.Module):
        raise TypeError(f"{fn}: model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(target_class, bool) or not isinstance(target_class, (int, np.integer)) or target_class < 0:
        raise ValueError(f"{fn}: target_class must be a non-negative integer, got {target_class!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{fn}: batch_size must be a positive integer, got {batch_size!r}")
    if layer is None:
        layer = target_layer(model)
    elif not isinstance(layer, nn.Module):
        raise TypeError(f"{fn}: layer must be a torch.nn.Module, got {type(layer).__name__}")
    if not any(module is layer for module in model.modules()):
        raise ValueError(f"{fn}: layer {type(layer).__name__} is not a sub-module of the model")
    batch = _as_batch(images, function=fn)
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None and reference.is_floating_point() else torch.float32

    maps = []
    with _model_left_as_found(model):
        with GradCAM(model=model, target_layers=[layer]) as cam:
            for start in range(0, batch.shape[0], int(batch_size)):
                chunk = batch[start : start + int(batch_size)].to(device=device, dtype=dtype).clone()
                chunk.requires_grad_(True)
                targets = [_ClassScore(int(target_class))] * chunk.shape[0]
                try:
                    maps.append(np.asarray(cam(input_tensor=chunk, targets=targets), dtype=np.float32))
                except IndexError as err:
                    # GradCAM.__exit__ would swallow an IndexError; surface it.
                    raise RuntimeError(f"{fn}: Grad-CAM failed: {err}") from err
    cams = np.clip(np.concatenate(maps, axis=0), 0.0, 1.0)
    empty = np.flatnonzero(cams.reshape(cams.shape[0], -1).max(axis=1) <= 0.0)
    if empty.size:
        warnings.warn(
            f"{fn}: the heat map is zero everywhere for image(s) {empty.tolist()}: the target layer gives no "
            f"positive evidence for class {target_class}, or its feature map has a single position "
            "(input too small for the model)",
            RuntimeWarning,
            stacklevel=2,
        )
    return cams


# --------------------------------------------------------------------------
# heat map versus mask
# --------------------------------------------------------------------------


def _check_mask(mask, *, function: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.size == 0:
        raise ValueError(f"{function}: mask is empty (shape {mask.shape})")
    if mask.dtype != bool:
        if not np.issubdtype(mask.dtype, np.number) or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{function}: mask must be binary (bool or 0/1)")
        mask = mask.astype(bool)
    return mask


def cam_mass_inside(cam, mask) -> float:
    """Share of a heat map's total mass that falls inside a binary mask.

    A sanity check of Grad-CAM against known tumour locations (the digital
    twin's masks): ``sum(cam[mask]) / sum(cam)``. Compare it with
    :func:`cam_mass_chance`, the share a heat map spread evenly over the image
    would give; a map that points at the tumour exceeds it.

    Parameters
    ----------
    cam : array_like of shape (..., H, W)
        Non-negative heat map(s), e.g. from :func:`gradcam`. Several maps
        (a leading axis) are pooled: the share of their summed mass.
    mask : array_like, same shape as ``cam``
        Binary mask (bool or 0/1).

    Returns
    -------
    share : float
        In [0, 1]; ``nan`` (with a ``RuntimeWarning``) when ``cam`` is zero
        everywhere.

    Raises
    ------
    ValueError
        Shapes differ, ``cam`` is negative or not finite, or ``mask`` is not
        binary.

    Examples
    --------
    >>> cam = np.array([[1.0, 3.0], [0.0, 0.0]])
    >>> cam_mass_inside(cam, np.array([[0, 1], [0, 0]]))
    0.75
    """
    fn = "cam_mass_inside"
    cam = np.asarray(cam, dtype=np.float64)
    mask = _check_mask(mask, function=fn)
    if cam.shape != mask.shape:
        raise ValueError(f"{fn}: cam shape {cam.shape} differs from mask shape {mask.shape}")
    if not np.isfinite(cam).all() or (cam < 0).any():
        raise ValueError(f"{fn}: cam must hold finite, non-negative values")
    total = cam.sum()
    if total <= 0.0:
        warnings.warn(f"{fn}: cam is zero everywhere; its share inside the mask is undefined", RuntimeWarning, stacklevel=2)
        return float("nan")
    return float(cam[mask].sum() / total)


def cam_mass_chance(mask) -> float:
    """Share of heat-map mass inside ``mask`` expected by chance.

    A heat map spread evenly over the image puts in the mask a share equal to
    the mask's area fraction; this is the baseline for
    :func:`cam_mass_inside`.

    Parameters
    ----------
    mask : array_like of shape (..., H, W)
        Binary mask (bool or 0/1).

    Returns
    -------
    share : float
        Fraction of pixels inside the mask, in [0, 1].

    Raises
    ------
    ValueError
        ``mask`` is empty or not binary.

    Examples
    --------
    >>> cam_mass_chance(np.array([[0, 1], [0, 0]]))
    0.25
    """
    mask = _check_mask(mask, function="cam_mass_chance")
    return float(mask.mean())


# --------------------------------------------------------------------------
# Fig. 5 and the check against the twin's tumours
# --------------------------------------------------------------------------

#: Warnings of :func:`gradcam` and :func:`cam_mass_inside` that the chapter
#: counts and states itself (zero maps), instead of printing them.
_COUNTED_WARNINGS = ("gradcam: the heat map is zero", "cam_mass_inside: cam is")


@contextlib.contextmanager
def _counted_warnings_quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        for message in _COUNTED_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=RuntimeWarning)
        yield


def _zero_maps(cams: np.ndarray) -> int:
    cams = np.asarray(cams)
    return int((cams.reshape(len(cams), -1).max(axis=1) <= 0).sum())


def tumour_masks(twin_dir: str | os.PathLike | None, manifest, patients: Sequence, *, resize: int,
                 crop: int) -> dict[str, np.ndarray] | None:
    """The twin's tumour masks on each patient's kept slices, resized and cropped like the images.

    Parameters
    ----------
    twin_dir : path or None
        A digital twin (``masks/<patient_id>.npz``, written by
        :func:`pdlib.twin.generate_twin`).
    manifest : pdlib.manifest.Manifest
        The twin's manifest (each patient's ``first_slice``).
    patients : sequence of PatientSlices
        :func:`pdlib.slices.load_cohort` of the same ``resize``.
    resize, crop : int
        The image sizes of the member (:class:`pdlib.config.TrainConfig`).

    Returns
    -------
    dict or None
        ``{patient_id: bool array (n_slices, crop, crop)}``; None when
        ``twin_dir`` is None or has no masks (not a twin).
    """
    mask_dir = Path(twin_dir) / "masks" if twin_dir else None
    if mask_dir is None or not mask_dir.is_dir():
        return None
    masks = {}
    for patient in patients:
        row = manifest.patient(patient.patient_id)
        mask = np.load(mask_dir / f"{patient.patient_id}.npz")["mask"].astype(np.float32)
        first = 0 if pd.isna(row["first_slice"]) else int(row["first_slice"])
        kept = resize_slices(mask[first:first + len(patient.slices)], resize)
        masks[patient.patient_id] = centre_crop(kept, crop) >= 0.5
    return masks


@dataclass(frozen=True)
class HeatmapPanels:
    """The panels of Fig. 5: one test patient per RECIST category.

    Attributes
    ----------
    images, cams : ndarray of shape (n, crop, crop)
        The chosen slice of each patient and its Grad-CAM map.
    masks : ndarray of shape (n, crop, crop) or None
        The tumour mask on that slice (twins only).
    titles : list of str
        ``"<RECIST>, <age> y"``.
    n_zero : int
        Maps that are zero everywhere.
    """

    images: np.ndarray
    cams: np.ndarray
    masks: np.ndarray | None
    titles: list[str]
    n_zero: int


def heatmap_panels(model: nn.Module, patients: Sequence, slice_predictions: pd.DataFrame, *, crop: int,
                   ages: Mapping[str, int], masks: Mapping[str, np.ndarray] | None = None) -> HeatmapPanels:
    """Fig. 5: for each RECIST category, its first test patient and the slice the model scores highest.

    Parameters
    ----------
    model : torch.nn.Module
        The member explained (:func:`pdlib.infer.load_member`).
    patients : sequence of PatientSlices
        Test patients in manifest order.
    slice_predictions : DataFrame
        The member's ``slice_predictions.csv`` (``patient_id, slice_index, prob``).
    crop : int
        Centre crop of the member's images.
    ages : mapping
        Age of each patient, for the titles.
    masks : mapping, optional
        :func:`tumour_masks` of the patients.
    """
    chosen = []
    for category in RECIST_CATEGORIES:
        patient = next((p for p in patients if p.recist == category), None)
        if patient is not None:
            probs = slice_predictions[slice_predictions["patient_id"] == patient.patient_id].sort_values("slice_index")
            best = int(probs["slice_index"].to_numpy()[np.argmax(probs["prob"].to_numpy())])
            chosen.append((category, patient, best))
    images = np.stack([centre_crop(p.slices[k], crop) for _, p, k in chosen])
    with _counted_warnings_quiet():
        cams = gradcam(model, images[:, None])
    shown = np.stack([masks[p.patient_id][k] for _, p, k in chosen]) if masks is not None else None
    titles = [f"{category}, {ages[p.patient_id]} y" for category, p, _ in chosen]
    return HeatmapPanels(images, cams, shown, titles, _zero_maps(cams))


def tumour_attention(model: nn.Module, patients: Sequence, masks: Mapping[str, np.ndarray] | None, *,
                     crop: int) -> pd.DataFrame | None:
    """Share of each patient's heat-map mass inside the tumour, on the slices that show it.

    Returns
    -------
    DataFrame or None
        One row per patient whose kept slices show the tumour: ``patient,
        RECIST, tumour slices, zero maps, CAM mass inside`` (NaN when every
        map is zero) and ``chance`` (:func:`cam_mass_chance`); None without
        masks.
    """
    if masks is None:
        return None
    rows = []
    for patient in patients:
        crops = np.stack([centre_crop(s, crop) for s in patient.slices])
        mask = masks[patient.patient_id]
        on_tumour = mask.reshape(len(mask), -1).any(axis=1)
        if not on_tumour.any():
            continue
        with _counted_warnings_quiet():
            patient_cams = gradcam(model, crops[on_tumour][:, None])
            inside_share = cam_mass_inside(patient_cams, mask[on_tumour])
        rows.append({"patient": patient.patient_id, "RECIST": patient.recist, "tumour slices": int(on_tumour.sum()),
                     "zero maps": _zero_maps(patient_cams), "CAM mass inside": inside_share,
                     "chance": cam_mass_chance(mask[on_tumour])})
    return pd.DataFrame(rows)
