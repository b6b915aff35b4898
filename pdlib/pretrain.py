"""Pretraining on an independent digital twin: does this slice show the tumour?

Han et al. (2025) start every model from ImageNet weights ("PD algorithm
development and training"), and the paper profile does the same through
timm's hub (:mod:`pdlib.models`). The scaled-down demo models have no such
weights, and trained from scratch on 112 patients for a minute on a CPU they
learn nothing from the twin (see ``book/data.md``). The demo therefore starts
every 2D member from weights learned on a pretext task instead: on a second
twin with another seed (other patients, no response labels used), classify
each slice by whether the gastric tumour is on it, using that twin's tumour
masks. It stands in for pretraining, not for the study: the study's twin,
its patients and their responses are never seen here.

The pretext reuses :func:`pdlib.train.train_member` unchanged: each patient
of the pretraining twin is split into a pseudo-patient holding its tumour
slices (label 1) and one holding the others (label 0), so the slice label is
the patient label. The classifier head is dropped from the saved weights;
the study's members get a freshly initialised head
(:func:`pdlib.models.load_weights`). 3D members start from scratch in every
profile (there are no 3D ImageNet weights either).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from pdlib import atomic, models, provenance, train
from pdlib.config import TrainConfig
from pdlib.manifest import load_manifest
from pdlib.slices import PatientSlices, load_cohort

#: Split of the pretraining twin used to learn (the other split is scored).
PRETRAIN_SPLIT = "train"


def tumour_slice_cohort(twin_dir: str | os.PathLike, *, split: str, resize: int,
                        cache_dir: str | os.PathLike | None = None) -> list:
    """The slices of a twin's split as tumour (label 1) and tumour-free (label 0) pseudo-patients.

    Parameters
    ----------
    twin_dir : path
        A folder written by :func:`pdlib.twin.generate_twin` (needs its
        ``masks/`` and ``manifest/``).
    split : {"train", "test"}
    resize : int
        Slice size, as for :func:`pdlib.slices.load_cohort`.
    cache_dir : path, optional
        Preprocessed-slice cache.

    Returns
    -------
    list of PatientSlices
        ``<patient_id>+tumour`` (label 1) and ``<patient_id>-tumour``
        (label 0) for every patient that has such slices in its study range.

    Raises
    ------
    FileNotFoundError
        The folder is not a twin with masks.
    ValueError
        A mask does not match its patient's slices.
    """
    twin_dir = Path(twin_dir)
    if not (twin_dir / "masks").is_dir() or not (twin_dir / "manifest").is_dir():
        raise FileNotFoundError(f"{twin_dir} is not a digital twin with tumour masks (no masks/ or manifest/); "
                                "generate one with `python -m pdlib twin --out DIR --seed N`")
    manifest = load_manifest(twin_dir / "manifest")
    ranges = manifest.patients.set_index("patient_id")
    out = []
    for patient in load_cohort(manifest, split=split, resize=resize, cache_dir=cache_dir):
        mask_file = twin_dir / "masks" / f"{patient.patient_id}.npz"
        with np.load(mask_file) as stored:
            mask = stored["mask"]
        first, last = int(ranges.loc[patient.patient_id, "first_slice"]), int(ranges.loc[patient.patient_id, "last_slice"])
        shown = mask[first:last + 1].reshape(last - first + 1, -1).any(axis=1)
        if shown.size != len(patient.slices):
            raise ValueError(f"patient {patient.patient_id}: {mask_file} covers {shown.size} slices of the study "
                             f"range, the series has {len(patient.slices)}")
        for label, keep, suffix in ((1, shown, "+tumour"), (0, ~shown, "-tumour")):
            if keep.any():
                out.append(PatientSlices(patient.patient_id + suffix, label, patient.slices[keep], "", split))
    return out


def pretext_config(config: TrainConfig) -> TrainConfig:
    """The pretraining run's settings: the member's, with ``pretrain_epochs``, ``pretrain_slices_per_patient`` and ``pretrain_seed``."""
    seed = config.seed if config.pretrain_seed is None else config.pretrain_seed
    return dataclasses.replace(config, seed=seed, epochs=config.pretrain_epochs,
                               slices_per_patient=config.pretrain_slices_per_patient, pretrained=False,
                               pretrain_twin=None, pretrain_seed=None, pretrain_slices_per_patient=None,
                               val_fraction=0.0, oof_folds=0)


def pretrained_weights(twin_dir: str | os.PathLike, *, arch: str, config: TrainConfig,
                       out_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """Backbone weights of ``arch`` pretrained on the tumour-slice task of ``twin_dir``.

    Trains (or reuses, when complete with the same settings and data) the
    pretext member ``out_dir/<arch>/`` with :func:`pdlib.train.train_member`,
    then writes its weights without the classifier head to
    ``out_dir/<arch>.pt`` and a key file ``out_dir/<arch>.json`` (both
    atomically). While the key (the twin's ``twin.json``, the pretext
    settings, the architecture and the pdlib code hash) is unchanged, later
    calls return the file without loading the twin.

    Parameters
    ----------
    twin_dir : path
        An independent digital twin (not the study's cohort).
    arch : str
        A 2D model name of :data:`pdlib.models.ARCHS`.
    config : TrainConfig
        The member's settings; :func:`pretext_config` derives the run's.
    out_dir : path
        Folder of the pretext runs and weight files.
    cache_dir : path, optional
        Preprocessed-slice cache (default ``out_dir/cache``).

    Returns
    -------
    Path
        The weights file, for ``create_model(..., weights_path=...)``.
    """
    if models.is_volumetric(arch):
        raise ValueError(f"{arch} is volumetric: the tumour-slice pretext is for 2D models only")
    out_dir = Path(out_dir)
    run = pretext_config(config)
    twin_json = Path(twin_dir) / "twin.json"
    if not twin_json.is_file():
        raise FileNotFoundError(f"{twin_dir} is not a digital twin (no twin.json); generate one with "
                                "`python -m pdlib twin --out DIR --seed N`")
    key = {"twin": json.loads(twin_json.read_text()), "arch": arch, "pretext": run.result_dict(),
           "code_hash": provenance.training_code_hash()}
    path, key_path = out_dir / f"{arch}.pt", out_dir / f"{arch}.json"
    if path.is_file() and key_path.is_file() and json.loads(key_path.read_text()) == json.loads(json.dumps(key)):
        return path
    cache_dir = out_dir / "cache" if cache_dir is None else cache_dir
    train_set = tumour_slice_cohort(twin_dir, split=PRETRAIN_SPLIT, resize=run.resize, cache_dir=cache_dir)
    scored = tumour_slice_cohort(twin_dir, split="test", resize=run.resize, cache_dir=cache_dir)
    model = train.train_member(out_dir / arch, arch=arch, train_patients=train_set, test_patients=scored,
                               config=run, member_key=f"pretext-{arch}", positive_class="tumour")
    head = getattr(model, "pdlib_classifier", None)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()
             if head is None or not k.startswith(head + ".")}
    atomic.save_torch(path, state)
    atomic.write_json(key_path, key)
    return path


def starting_weights(arch: str, *, config: TrainConfig, out_dir: str | os.PathLike,
                     cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The weights file a study member of ``arch`` starts from, or None for the profile's own start.

    With ``config.pretrain_twin`` set (the demo), a 2D member starts from the
    pretext weights of :func:`pretrained_weights` (trained once into
    ``out_dir`` and shared by every member, fold runs included); 3D members
    and profiles without a pretraining twin start from
    :func:`pdlib.models.create_model`'s own initialisation (random, or
    ImageNet weights when the profile is pretrained). ``cache_dir`` is the
    preprocessed-slice cache the pretraining twin is read through (the
    study's, so that :func:`pdlib.pipeline.warm_cache` fills it once).
    """
    if config.pretrain_twin is None or models.is_volumetric(arch):
        return None
    return pretrained_weights(config.pretrain_twin, arch=arch, config=config, out_dir=out_dir, cache_dir=cache_dir)
