"""From HU volumes to the slices a 2D model sees.

Order of operations (the study's "CT imaging and data preprocessing"):

1. keep the portal-venous series and the abdomen-to-liver slice range;
2. window to [-215, 285] HU and map linearly to [0, 1];
3. resize each slice to ``resize`` x ``resize`` pixels (256 in the study);
4. crop ``crop`` x ``crop`` pixels (224 in the study): random for training,
   centred for evaluation;
5. augment training slices with flips, rotations, scaling and shifts.

Steps 1-3 are deterministic and cached per series; steps 4-5 happen per epoch
in :class:`SliceDataset`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Window of the study, in HU: level 35, width 500 (Han et al. 2025,
#: "CT imaging and data preprocessing").
HU_WINDOW = (-215.0, 285.0)


@dataclass
class PatientSlices:
    """Preprocessed slices of one patient.

    Attributes
    ----------
    patient_id : str
        Pseudonymous id from the manifest.
    label : int
        1 for the positive class (default PR, poor response), 0 otherwise.
    slices : ndarray of shape (n_slices, H, W), float32
        Windowed to [0, 1], resized, not cropped.
    recist : str
        RECIST category (CR, PR, SD, PD); used for reporting only.
    split : str
        ``"train"`` or ``"test"``.
    """

    patient_id: str
    label: int
    slices: np.ndarray
    recist: str = ""
    split: str = ""


def window(hu: np.ndarray, *, low: float = HU_WINDOW[0], high: float = HU_WINDOW[1]) -> np.ndarray:
    """Clip HU to ``[low, high]`` and map linearly to ``[0, 1]`` (float32)."""
    if not high > low:
        raise ValueError(f"window needs high > low, got [{low}, {high}]")
    hu = np.asarray(hu, dtype=np.float32)
    return ((np.clip(hu, low, high) - low) / (high - low)).astype(np.float32)


@dataclass(frozen=True)
class Augment:
    """Random geometric augmentation of training slices (study: flipping,
    rotation, scaling, shifting). ``Augment.none()`` switches it off."""

    hflip: float = 0.5
    vflip: float = 0.0
    degrees: float = 15.0
    scale: tuple[float, float] = (0.9, 1.1)
    translate: float = 0.05

    @classmethod
    def none(cls) -> "Augment":
        return cls(hflip=0.0, vflip=0.0, degrees=0.0, scale=(1.0, 1.0), translate=0.0)


def make_transform(*, crop: int, train: bool, augment: Augment | None = None):
    """torchvision v2 transform for one slice tensor ``[1, H, W]`` in [0, 1].

    Training: random affine (rotation, scale, shift), flips, random crop.
    Evaluation: centre crop only.
    """
    from torchvision.transforms import v2

    if not train:
        return v2.CenterCrop(crop)
    augment = Augment() if augment is None else augment
    steps = []
    if augment.degrees or augment.translate or augment.scale != (1.0, 1.0):
        steps.append(
            v2.RandomAffine(
                degrees=augment.degrees,
                translate=(augment.translate, augment.translate),
                scale=augment.scale,
            )
        )
    if augment.hflip:
        steps.append(v2.RandomHorizontalFlip(augment.hflip))
    if augment.vflip:
        steps.append(v2.RandomVerticalFlip(augment.vflip))
    steps.append(v2.RandomCrop(crop))
    return v2.Compose(steps)


class SliceDataset:
    """Every slice of every patient as one sample: ``(x, y, patient_index)``.

    Parameters
    ----------
    patients : list of PatientSlices
    crop : int
        Output size (square); must not exceed the stored slice size.
    train : bool
        Random crop and augmentation when True, centre crop when False.
    augment : Augment, optional
        Augmentation strengths for training; default :class:`Augment()`.
    """

    def __init__(self, patients, *, crop: int, train: bool, augment: Augment | None = None):
        import torch

        self.patients = list(patients)
        self.crop = int(crop)
        self.train = bool(train)
        self.transform = make_transform(crop=self.crop, train=self.train, augment=augment)
        index = [(p, s) for p, pat in enumerate(self.patients) for s in range(len(pat.slices))]
        self._index = torch.tensor(index, dtype=torch.long).reshape(-1, 2)
        for pat in self.patients:
            if min(pat.slices.shape[1:]) < self.crop:
                raise ValueError(
                    f"patient {pat.patient_id}: slices of {pat.slices.shape[1:]} px are smaller than crop {self.crop}"
                )

    def __len__(self) -> int:
        return int(self._index.shape[0])

    def __getitem__(self, i: int):
        import torch

        p, s = (int(v) for v in self._index[i])
        pat = self.patients[p]
        x = torch.from_numpy(np.ascontiguousarray(pat.slices[s], dtype=np.float32))[None]
        return self.transform(x), int(pat.label), p
