"""From a trained model to patient scores (Han et al. 2025, "Model testing").

A 2D model scores every slice of a patient, centre-cropped, with the
softmax probability of the positive class; the patient's score is the mean of
the ``top_k = 10`` highest slice probabilities (all slices when a patient has
fewer). The 3D arm scores the patient's resampled slice stack directly.

The positive class is class index 1, i.e. ``PatientSlices.label == 1``, which
is the manifest's ``positive_class`` (default PR, poor response: the
paper's training sensitivities, e.g. 97.44% = 38/39, are counted on the
39-patient PR group).

It also reads a trained member back (:func:`load_member`), for the
pipeline's teachers, :mod:`pdlib.explain` and the chapters; run folders are
written through :mod:`pdlib.atomic`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from pdlib import models
from pdlib.slices import SliceDataset, resample_depth

#: Patient score = mean of this many highest slice probabilities (Han et al.
#: 2025, "Model testing and statistical analysis").
TOP_K = 10

#: Class index of the positive class in every model's output.
POSITIVE_INDEX = 1


# --------------------------------------------------------------------------- scores


def top_k_mean(probabilities: np.ndarray, *, k: int = TOP_K) -> float:
    """Mean of the ``k`` largest values (all of them when there are fewer).

    Parameters
    ----------
    probabilities : array of shape (n,)
    k : int

    Returns
    -------
    float
        ``nan`` (with a warning) for an empty array.
    """
    values = np.asarray(probabilities, dtype=np.float64).ravel()
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if values.size == 0:
        import warnings

        warnings.warn("top_k_mean of no slices is nan", RuntimeWarning, stacklevel=2)
        return float("nan")
    return float(np.sort(values)[::-1][:k].mean())


def patient_scores(slice_probs: np.ndarray, patient_index: np.ndarray, *, n_patients: int,
                   top_k: int = TOP_K) -> np.ndarray:
    """Per-patient mean of the ``top_k`` highest slice probabilities.

    Parameters
    ----------
    slice_probs : array of shape (n_slices,)
        Positive-class probability of each slice.
    patient_index : array of shape (n_slices,)
        Index of each slice's patient in ``range(n_patients)``.
    n_patients : int
    top_k : int

    Returns
    -------
    ndarray of shape (n_patients,)
        ``nan`` for a patient without slices.
    """
    slice_probs = np.asarray(slice_probs, dtype=np.float64)
    patient_index = np.asarray(patient_index)
    if slice_probs.shape != patient_index.shape:
        raise ValueError(f"slice_probs {slice_probs.shape} and patient_index {patient_index.shape} differ in shape")
    return np.array([top_k_mean(slice_probs[patient_index == p], k=top_k) for p in range(n_patients)])


def predict_slices(model: nn.Module, patients: Sequence, *, crop: int, batch_size: int = 256,
                   device: str | torch.device = "cpu",
                   channels_last: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive-class probability of every slice, centre-cropped, computed in fp32.

    Scores are never computed under bfloat16 autocast: bfloat16 logits keep 8
    bits of mantissa, so close patients would tie and change the ROC curve.

    Parameters
    ----------
    model : nn.Module
        A 2D model returning logits ``[B, K]``; put in evaluation mode here.
    patients : list of PatientSlices
    crop : int
        Centre-crop side (224 in the paper).
    batch_size : int
    device : str or torch.device
    channels_last : bool
        Channels-last input on CUDA.

    Returns
    -------
    probs : ndarray of shape (n_slices,), float64
    patient_index : ndarray of shape (n_slices,), int
        Position of each slice's patient in ``patients``.
    slice_index : ndarray of shape (n_slices,), int
        Position of each slice in its patient's stack.
    """
    device = torch.device(device)
    dataset = SliceDataset(patients, crop=crop, train=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    probs, owners = [], []
    model.eval()
    with torch.inference_mode():
        for x, _, patient in loader:
            x = x.to(device, non_blocking=True)
            if channels_last and device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            logits = model(x).float()
            probs.append(torch.softmax(logits, dim=-1)[:, POSITIVE_INDEX].cpu())
            owners.append(patient)
    probs = torch.cat(probs).double().numpy() if probs else np.zeros(0)
    owners = torch.cat(owners).numpy() if owners else np.zeros(0, dtype=int)
    slice_index = np.concatenate([np.arange(len(p.slices)) for p in patients]) if patients else np.zeros(0, dtype=int)
    return probs, owners, slice_index


def centre_crop(array: np.ndarray, crop: int) -> np.ndarray:
    """Centre ``crop x crop`` window of the last two axes (as torchvision's CenterCrop)."""
    h, w = array.shape[-2:]
    if crop > min(h, w):
        raise ValueError(f"crop {crop} exceeds image size {h}x{w}")
    top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
    return array[..., top:top + crop, left:left + crop]


def predict_volumes(model: nn.Module, patients: Sequence, *, depth: int, crop: int, batch_size: int = 8,
                    device: str | torch.device = "cpu") -> np.ndarray:
    """Positive-class probability of each patient's resampled, centre-cropped stack (3D arm), in fp32.

    Each stack is resampled to ``depth`` slices by
    :func:`pdlib.slices.resample_depth`, then centre-cropped in plane.

    Returns
    -------
    ndarray of shape (n_patients,), float64
    """
    device = torch.device(device)
    model.eval()
    probs = []
    with torch.inference_mode():
        for start in range(0, len(patients), batch_size):
            batch = [centre_crop(resample_depth(p.slices, depth), crop) for p in patients[start:start + batch_size]]
            x = torch.from_numpy(np.stack(batch))[:, None].to(device)
            probs.append(torch.softmax(model(x).float(), dim=-1)[:, POSITIVE_INDEX].cpu())
    return torch.cat(probs).double().numpy() if probs else np.zeros(0)


def predict_patients(model: nn.Module, patients: Sequence, *, arch: str, crop: int, top_k: int = TOP_K,
                     volume_depth: int = 64, batch_size: int = 256, volume_batch_size: int = 8, device: str | torch.device = "cpu",
                     channels_last: bool = False):
    """Slice and patient predictions of ``model`` on ``patients`` as two tables, in fp32.

    Returns
    -------
    slices : pandas.DataFrame
        ``patient_id, split, slice_index, prob`` (3D arm: one row per
        patient with ``slice_index = -1``, the volume).
    patients : pandas.DataFrame
        ``patient_id, split, recist, label, score``.
    """
    import pandas as pd

    if models.is_volumetric(arch):
        probs = predict_volumes(model, patients, depth=volume_depth, crop=crop, batch_size=volume_batch_size,
                                device=device)
        owners, slice_index, scores = np.arange(len(patients)), np.full(len(patients), -1), probs
    else:
        probs, owners, slice_index = predict_slices(model, patients, crop=crop, batch_size=batch_size, device=device,
                                                    channels_last=channels_last)
        scores = patient_scores(probs, owners, n_patients=len(patients), top_k=top_k)
    slice_table = pd.DataFrame({
        "patient_id": [patients[i].patient_id for i in owners],
        "split": [patients[i].split for i in owners],
        "slice_index": slice_index.astype(int),
        "prob": probs,
    })
    patient_table = pd.DataFrame({
        "patient_id": [p.patient_id for p in patients],
        "split": [p.split for p in patients],
        "recist": [p.recist for p in patients],
        "label": [int(p.label) for p in patients],
        "score": scores,
    })
    return slice_table, patient_table


# --------------------------------------------------------------------------- run folders


def load_member(member_dir: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a trained member from its run folder's ``checkpoint.pt``.

    The checkpoint is read with ``torch.load(..., weights_only=True)``; the
    architecture comes from its recorded ``model_args``
    (:func:`pdlib.models.model_from_args`): the timm model that was actually
    built (e.g. ``tf_efficientnet_b7`` for ImageNet weights) and the input
    normalisation that goes with its weights, so the reloaded member computes
    exactly what the trained one did. Returns the model in evaluation mode.
    """
    path = Path(member_dir) / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint.pt in {member_dir}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = models.model_from_args(checkpoint["model_args"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()
