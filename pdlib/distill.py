"""Progressive Distill (PD): Algorithm 1 of Han et al. 2025, top to bottom.

Algorithm 1 in this module
--------------------------
* lines 6 and 19, equation 3: :func:`smoothed_cross_entropy`, the label-
  smoothed cross entropy of teachers and of the students' hard term;
* line 18, equation 1: :func:`distillation_loss`, the temperature-scaled
  Kullback-Leibler divergence from the teacher's soft labels;
* line 20, equation 1: :func:`student_loss`, their weighted sum;
* lines 5-7 and 16-21: :class:`TrainStep`, one forward pass and its losses,
  the same object for a teacher (``mode="none"``) and a student
  (``mode="kd"``): baseline, KD and PD differ in parameters, not in code;
* line 27: :func:`progressive_distill`, the iteration: member 0 is trained
  as a teacher, each later member is trained against the previous one and
  becomes the next teacher.

The epoch and batch loops with the cosine learning rate (lines 3-4, 8, 10,
14-15, 22, 24) are :func:`pdlib.train.train_member`.

Arms
----
The chains of members that make the study's arms, and their lineage keys,
are :mod:`pdlib.arms`.

References
----------
Han et al. 2025, Scientific Reports: Algorithm 1, equations 1 and 3, Tables
2 and 4, Fig. 6. Hinton G, Vinyals O, Dean J. Distilling the knowledge in a
neural network. arXiv:1503.02531 (2015). Xie Q et al. Self-training with
Noisy Student improves ImageNet classification. CVPR 2020.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pdlib.arms import Member

#: Default beta of equation 3. Han et al. 2025 do not report it; 0.1 is the
#: usual magnitude (Szegedy et al. 2016 smooth with 0.1).
DEFAULT_BETA = 0.1

#: Default weight of the distillation term (see :func:`student_loss`). Not
#: reported by Han et al. 2025. Hinton et al. (2015) found the best results
#: with a considerably lower weight on the hard-label term, and the noisy
#: students of PD learn mainly from the teacher's soft labels (Xie et al.
#: 2020), so the soft term gets the larger share.
DEFAULT_KD_WEIGHT = 0.7

#: Default temperature T of equation 1 (not reported; Hinton et al. 2015
#: report temperatures of 2.5 to 4 working well for small students).
DEFAULT_TEMPERATURE = 4.0


# --------------------------------------------------------------------------- equation 3


def smoothing_epsilon(beta: float, num_classes: int) -> float:
    """PyTorch's ``label_smoothing`` that realises the paper's ``beta``.

    Equation 3 of Han et al. 2025 gives the true class ``1 - beta`` and each
    of the ``K - 1`` other classes ``beta / (K - 1)``. PyTorch's
    ``cross_entropy(label_smoothing=eps)`` mixes the one-hot target with the
    uniform distribution: ``(1 - eps)`` plus ``eps / K`` on the true class,
    ``eps / K`` on the others. Both agree when ``eps / K = beta / (K - 1)``,
    i.e. ``eps = beta * K / (K - 1)`` (``eps = 2 beta`` for two classes).

    Raises
    ------
    ValueError
        Unless ``0 <= beta <= (K - 1) / K`` (beyond that the true class would
        get less mass than a wrong one).
    """
    if num_classes < 2:
        raise ValueError(f"label smoothing needs at least 2 classes, got {num_classes}")
    limit = (num_classes - 1) / num_classes
    if not 0.0 <= beta <= limit:
        raise ValueError(f"beta must be in [0, {limit:.3g}] for {num_classes} classes, got {beta}")
    return beta * num_classes / (num_classes - 1)


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, beta: float = DEFAULT_BETA) -> torch.Tensor:
    """Cross entropy against the smoothed targets of equation 3, batch mean.

    Parameters
    ----------
    logits : Tensor of shape (B, K)
    target : Tensor of shape (B,), int64 class indices
    beta : float
        Mass moved from the true class (equation 3), see :func:`smoothing_epsilon`.

    Returns
    -------
    Tensor, scalar
        ``mean_b  - sum_i q_i log softmax(logits_b)_i``.
    """
    eps = smoothing_epsilon(beta, logits.shape[-1])
    return F.cross_entropy(logits.float(), target, label_smoothing=eps)


# --------------------------------------------------------------------------- equation 1


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                      temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """``T^2 * KL(softmax(r / T) || softmax(z / T))``, batch mean.

    ``z`` are the student's logits and ``r`` the teacher's (equation 1;
    "KLDivLoss" of Algorithm 1, line 18). The factor ``T^2`` keeps the
    gradient of the soft term comparable across temperatures (Hinton et al.
    2015).

    Parameters
    ----------
    student_logits, teacher_logits : Tensor of shape (B, K)
    temperature : float
        T > 0.

    Returns
    -------
    Tensor, scalar
    """
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


def student_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor, *,
                 kd_weight: float = DEFAULT_KD_WEIGHT, temperature: float = DEFAULT_TEMPERATURE,
                 beta: float = DEFAULT_BETA) -> dict[str, torch.Tensor]:
    """Loss of a student (equation 1 with equation 3's smoothed targets).

    ``loss = kd_weight * T^2 KL(teacher || student) + (1 - kd_weight) * CE_beta(student, y)``

    The paper names the weight alpha but puts it on different terms in two
    places: equation 1 gives alpha to the cross entropy and ``1 - alpha`` to
    the distillation term, while Algorithm 1, line 20, gives alpha to the soft
    (distillation) term. ``kd_weight`` is always the weight of the
    distillation term: ``kd_weight = 1 - alpha`` of equation 1 ``= alpha`` of
    Algorithm 1. ``kd_weight = 0`` is plain training with label smoothing.

    Returns
    -------
    dict
        ``loss`` (to minimise), ``task_loss`` (the cross entropy) and
        ``kd_loss`` (the ``T^2``-scaled divergence), all scalars.
    """
    task = smoothed_cross_entropy(student_logits, target, beta=beta)
    kd = distillation_loss(student_logits, teacher_logits, temperature=temperature)
    return {"loss": kd_weight * kd + (1.0 - kd_weight) * task, "task_loss": task, "kd_loss": kd}


# --------------------------------------------------------------------------- one step


class TrainStep(nn.Module):
    """Forward pass and losses of one training batch, for teachers and students.

    ``TrainStep(model)`` trains a teacher or a baseline (Algorithm 1, lines
    5-6: label-smoothed cross entropy only, ``mode == "none"``).
    ``TrainStep(model, teacher)`` trains a student (lines 16-20,
    ``mode == "kd"``): the teacher sees the same augmented batch, in
    evaluation mode (dropout and stochastic depth off, BatchNorm statistics
    frozen), with ``requires_grad`` off and under ``torch.no_grad()``, so no
    gradient or statistic of the teacher ever changes. The teacher is held
    for the forward pass only: :meth:`checkpoint_state` returns the student's
    weights alone.

    Parameters
    ----------
    model : nn.Module
        The network being trained.
    teacher : nn.Module, optional
        The previous member of the chain; ``None`` for a teacher or baseline.
    beta : float
        Equation 3's smoothing (:func:`smoothed_cross_entropy`).
    kd_weight : float
        Weight of the distillation term (:func:`student_loss`); unused without
        a teacher.
    temperature : float
        T of equation 1; unused without a teacher.

    Notes
    -----
    Calling the step returns ``{"loss", "task_loss", "kd_loss", "output"}``
    whatever the mode (``kd_loss`` is 0 without a teacher), so the training
    loop never branches on the method. This follows timm's
    ``LogitDistillationTask`` (same KL term) without reusing it: timm's task
    needs timm ``pretrained_cfg`` normalisation constants (absent on the MONAI
    3D ResNet and the hybrid) to re-normalise inputs for the teacher, which
    here sees the very same windowed slices; it has no teacher-less mode; and
    ``timm.task`` exists only in recent timm releases.
    """

    def __init__(self, model: nn.Module, teacher: nn.Module | None = None, *, beta: float = DEFAULT_BETA,
                 kd_weight: float = DEFAULT_KD_WEIGHT, temperature: float = DEFAULT_TEMPERATURE):
        super().__init__()
        if not 0.0 <= kd_weight <= 1.0:
            raise ValueError(f"kd_weight must be in [0, 1], got {kd_weight}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        self.model = model
        self.teacher = teacher
        self.beta = float(beta)
        self.kd_weight = float(kd_weight)
        self.temperature = float(temperature)
        if teacher is not None:
            teacher.eval()
            teacher.requires_grad_(False)

    @property
    def mode(self) -> str:
        """``"none"`` (teacher or baseline training) or ``"kd"`` (student)."""
        return "none" if self.teacher is None else "kd"

    def train(self, mode: bool = True) -> "TrainStep":
        """Set the trained model's mode; the teacher stays in evaluation mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses of one batch.

        Parameters
        ----------
        x : Tensor of shape (B, C, H, W) or (B, C, D, H, W)
        target : Tensor of shape (B,), class indices

        Returns
        -------
        dict
            ``loss`` (scalar, to back-propagate), ``task_loss``, ``kd_loss``
            (scalars) and ``output`` (the model's logits, ``[B, K]``).
        """
        logits = self.model(x)
        if self.teacher is None:
            task = smoothed_cross_entropy(logits, target, beta=self.beta)
            return {"loss": task, "task_loss": task, "kd_loss": torch.zeros((), device=task.device),
                    "output": logits}
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        losses = student_loss(logits, teacher_logits, target, kd_weight=self.kd_weight,
                              temperature=self.temperature, beta=self.beta)
        return {**losses, "output": logits}

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """``state_dict`` of the trained model only (never the teacher's)."""
        return self.model.state_dict()


# --------------------------------------------------------------------------- iteration


def progressive_distill(members: Sequence[Member], *, fit: Callable[[int, Member, nn.Module | None], nn.Module]):
    """Train a chain: Algorithm 1 of Han et al. 2025.

    ``fit(0, members[0], None)`` trains the teacher (TEACHER_TRAIN); then for
    each later member ``fit(i, members[i], teacher)`` trains a student against
    the current teacher (STUDENT_TRAIN) and the student becomes the teacher of
    the next iteration (line 27). Students may be equal to, larger or smaller
    than their teacher.

    Parameters
    ----------
    members : sequence of Member
        The chain (:attr:`pdlib.arms.Arm.members`).
    fit : callable
        ``fit(index, member, teacher) -> trained model``; it owns the epochs,
        the data and the run folder (:func:`pdlib.train.train_member`).

    Returns
    -------
    nn.Module
        The last member, trained.
    """
    if not members:
        raise ValueError("progressive_distill needs at least one member")
    teacher = fit(0, members[0], None)  # TEACHER_TRAIN (lines 2-12)
    for index, member in enumerate(members[1:], start=1):
        student = fit(index, member, teacher)  # STUDENT_TRAIN (lines 13-26)
        teacher = student  # line 27: the student becomes the teacher
    return teacher
