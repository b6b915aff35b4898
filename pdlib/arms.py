"""The arms of the study and their lineage: what is trained, under which name.

An arm is a chain of members (:class:`Arm`): one member is a baseline, two
members without noise are knowledge distillation (KD), and a chain whose
students carry model noise is progressive distill (PD). :data:`ARMS` names
every row of Table 2 and Table 4 of Han et al. 2025 and the iteration curves
of Fig. 6.

Every arm states what the chapters need as attributes (:attr:`Arm.group`,
:attr:`Arm.family`, :attr:`Arm.model`, :attr:`Arm.step`,
:attr:`Arm.iterations`, :attr:`Arm.teacher_arch`), so no caller parses an
arm's name.

Lineage
-------
Members are identified by their lineage key (:meth:`Arm.member_keys`):
``"b7--b7mn"`` is an EfficientNet-B7 teacher and a noisy B7 student. Equal
keys mean equal training, so an arm that is a prefix of another shares its
trained members: the first noisy student of the PD B7 chain *is* the
"+KD+MN" arm of Table 4, and PD B7 with two iterations *is* point 2 of
Fig. 6. :func:`members_of_key` and :func:`parent_key` read a key back.

This module imports nothing heavy (no torch): the pipeline plans a study
from it without loading a model.

References
----------
Han et al. 2025, Scientific Reports: Algorithm 1, Tables 2 and 4, Fig. 6.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

#: Architectures of the paper: short name in member keys (folder names),
#: family (``2d`` slice model, ``3d`` volume model, ``hybrid`` CNN-Transformer)
#: and the name the paper prints.
ARCHITECTURES: dict[str, tuple[str, str, str]] = {
    "resnet50": ("r50", "2d", "ResNet-50"),
    "resnet101": ("r101", "2d", "ResNet-101"),
    "resnext101_32x8d": ("rx101", "2d", "ResNext-101"),
    "densenet121": ("d121", "2d", "DenseNet-121"),
    "densenet201": ("d201", "2d", "DenseNet-201"),
    "vgg11": ("vgg11", "2d", "Vgg-11"),
    "vgg16": ("vgg16", "2d", "Vgg-16"),
    "efficientnet_b0": ("b0", "2d", "EfficientNet-B0"),
    "efficientnet_b3": ("b3", "2d", "EfficientNet-B3"),
    "efficientnet_b7": ("b7", "2d", "EfficientNet-B7"),
    "resnet50_3d": ("r50_3d", "3d", "3DResNet-50"),
    "hybrid_efficientnet_b7": ("hybrid_b7", "hybrid", "Hybrid Model"),
}

#: Short names of the architectures in member keys (folder names).
SHORT_NAMES = {arch: short for arch, (short, _, _) in ARCHITECTURES.items()}

#: Chapter groups of arms: Table 2 (baseline, kd, pd), Fig. 6 (iteration),
#: Table 4 (ablation), and the controls of the verdict study (not in the
#: paper: they separate distillation from regularisation and compute).
GROUPS = ("baseline", "kd", "pd", "iteration", "ablation", "control")

#: Suffix of a noisy student in a member key.
NOISE_SUFFIX = "mn"

#: Separator of the members of a lineage key.
KEY_SEPARATOR = "--"

#: Prefix of a member's epoch multiplier in its key (``b7x3``: three times the profile's epochs).
EPOCHS_PREFIX = "x"

#: What may follow an architecture's short name in a member key.
_SUFFIX = re.compile(rf"^(?P<noise>{NOISE_SUFFIX})?(?:{EPOCHS_PREFIX}(?P<factor>[1-9][0-9]*))?$")


@dataclass(frozen=True)
class Member:
    """One model of a chain.

    Attributes
    ----------
    arch : str
        Paper architecture name (:data:`ARCHITECTURES`); the profile picks
        its scale.
    noise : bool
        Train with model noise (dropout and stochastic depth; Han et al.
        2025, "Model Noise"). Teachers of a chain never carry noise; a
        single noisy member without teacher is the "noisy student without
        teacher" control.
    epochs_factor : int
        Train for this many times the profile's epochs (1 for every arm of
        the paper; the compute-matched control trains one model as long as a
        whole chain).
    """

    arch: str
    noise: bool = False
    epochs_factor: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.epochs_factor, int) or isinstance(self.epochs_factor, bool) or self.epochs_factor < 1:
            raise ValueError(f"epochs_factor must be a positive integer, got {self.epochs_factor!r}")

    @property
    def short(self) -> str:
        """This member's part of a lineage key (``b7``, ``b7mn``, ``b7x3``)."""
        return (SHORT_NAMES[self.arch] + (NOISE_SUFFIX if self.noise else "")
                + (f"{EPOCHS_PREFIX}{self.epochs_factor}" if self.epochs_factor != 1 else ""))


@dataclass(frozen=True)
class Arm:
    """A chain of members: baseline (1 member), KD or PD (2 or more).

    Attributes
    ----------
    members : tuple of Member
        ``members[0]`` is trained alone; ``members[i]`` learns from
        ``members[i - 1]``. The number of distillation iterations is
        ``len(members) - 1``.
    label : str
        How the paper names the arm (row label).
    group : str
        The chapter that shows it (:data:`GROUPS`).
    step : str
        Table 4 only: the ablation step (``base``, ``+KD``, ``+KD +MN``,
        ``+KD +MN +MI``); empty otherwise.
    """

    members: tuple[Member, ...]
    label: str = ""
    group: str = "baseline"
    step: str = ""

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("an arm needs at least one member")
        unknown = [m.arch for m in self.members if m.arch not in ARCHITECTURES]
        if unknown:
            raise ValueError(f"unknown architecture(s) {unknown}; known: {sorted(ARCHITECTURES)}")
        if self.members[0].noise and (len(self.members) > 1 or self.group != "control"):
            raise ValueError("member 0 is a teacher trained without model noise "
                             "(a single noisy member is only allowed as a control)")
        if self.group not in GROUPS:
            raise ValueError(f"unknown group {self.group!r}; known: {GROUPS}")

    @property
    def iterations(self) -> int:
        """Number of teacher -> student distillations."""
        return len(self.members) - 1

    @property
    def teacher_arch(self) -> str:
        """Architecture of the chain's first member (the teacher, or the model of a baseline)."""
        return self.members[0].arch

    @property
    def family(self) -> str:
        """``2d``, ``3d`` or ``hybrid``: the family of the arm's final model."""
        return ARCHITECTURES[self.members[-1].arch][1]

    @property
    def model(self) -> str:
        """Printed name of the arm's final model (``EfficientNet-B7``)."""
        return ARCHITECTURES[self.members[-1].arch][2]

    def member_keys(self) -> list[str]:
        """Lineage names, e.g. ``["b7", "b7--b7mn", "b7--b7mn--b7mn"]``.

        Each key names the member and all its ancestors (``mn`` marks model
        noise), so equal keys mean equal training and arms share folders.
        """
        keys, parts = [], []
        for member in self.members:
            parts.append(member.short)
            keys.append(KEY_SEPARATOR.join(parts))
        return keys

    @property
    def final_key(self) -> str:
        """Key of the member whose predictions are the arm's."""
        return self.member_keys()[-1]


def baseline(arch: str, label: str = "", *, group: str = "baseline", step: str = "") -> Arm:
    """One model trained with label-smoothed cross entropy only."""
    return Arm((Member(arch),), label, group, step)


def knowledge_distillation(teacher: str, student: str, label: str = "", *, group: str = "kd",
                           step: str = "") -> Arm:
    """Conventional KD: one student without noise."""
    return Arm((Member(teacher), Member(student)), label, group, step)


def progressive(*archs: str, noise: bool = True, label: str = "", group: str = "pd", step: str = "") -> Arm:
    """PD: ``archs[0]`` is the teacher; every later member is a (noisy) student."""
    return Arm((Member(archs[0]),) + tuple(Member(a, noise=noise) for a in archs[1:]), label, group, step)


_B0, _B3, _B7 = "efficientnet_b0", "efficientnet_b3", "efficientnet_b7"

#: Every arm of the study, by name. Table 2 rows first, then Table 4 and Fig. 6
#: (several of those are the same chains under a second name; their members
#: are trained once).
ARMS: dict[str, Arm] = {
    # Table 2: baselines
    "resnet50": baseline("resnet50", "ResNet-50"),
    "resnet101": baseline("resnet101", "ResNet-101"),
    "resnext101": baseline("resnext101_32x8d", "ResNext-101"),
    "densenet121": baseline("densenet121", "DenseNet-121"),
    "densenet201": baseline("densenet201", "DenseNet-201"),
    "vgg11": baseline("vgg11", "Vgg-11"),
    "vgg16": baseline("vgg16", "Vgg-16"),
    "efficientnet_b0": baseline(_B0, "EfficientNet-B0"),
    "efficientnet_b3": baseline(_B3, "EfficientNet-B3"),
    "efficientnet_b7": baseline(_B7, "EfficientNet-B7"),
    "resnet50_3d": baseline("resnet50_3d", "3DResNet-50"),
    "hybrid": baseline("hybrid_efficientnet_b7", "Hybrid Model"),
    # Table 2: knowledge distillation (one student, no noise)
    "kd_b0": knowledge_distillation(_B0, _B0, "Knowledge Distillation (EfficientNet-B0)"),
    "kd_b3": knowledge_distillation(_B3, _B3, "Knowledge Distillation (EfficientNet-B3)"),
    "kd_b7": knowledge_distillation(_B7, _B7, "Knowledge Distillation (EfficientNet-B7)"),
    "kd_b7_b3": knowledge_distillation(_B7, _B3, "Knowledge Distillation (EfficientNetB7-B3)"),
    # Table 2: progressive distill (noisy students, two iterations; "the best
    # results were achieved after two iterations"). PD B7-B3 goes through the
    # B7 noisy student of PD B7's first iteration (the paper reports B7 at
    # AUC 0.78 before the B3 student, the +KD+MN value of Table 4).
    "pd_b0_b3_b7": progressive(_B0, _B3, _B7, label="Progressive Distill (EfficientNetB0-B3-B7)"),
    "pd_b7_b3": progressive(_B7, _B7, _B3, label="Progressive Distill (EfficientNetB7-B3)"),
    "pd_b3": progressive(_B3, _B3, _B3, label="Progressive Distill (EfficientNet-B3)"),
    "pd_b7": progressive(_B7, _B7, _B7, label="Progressive Distill (EfficientNet-B7)"),
}
# Table 4: ablation on B7 and B3 (base, +KD, +KD+MN, +KD+MN+MI).
for _short, _arch, _name in (("b7", _B7, "EfficientNetB7"), ("b3", _B3, "EfficientNetB3")):
    ARMS[f"ablation_{_short}_base"] = baseline(_arch, _name, group="ablation", step="base")
    ARMS[f"ablation_{_short}_kd"] = knowledge_distillation(_arch, _arch, f"{_name} +KD", group="ablation",
                                                           step="+KD")
    ARMS[f"ablation_{_short}_kd_mn"] = progressive(_arch, _arch, label=f"{_name} +KD +MN", group="ablation",
                                                   step="+KD +MN")
    ARMS[f"ablation_{_short}_kd_mn_mi"] = progressive(_arch, _arch, _arch, label=f"{_name} +KD +MN +MI",
                                                      group="ablation", step="+KD +MN +MI")
# Fig. 6: PD with equal models, iterations 0 to 4.
for _short, _arch in (("b7", _B7), ("b3", _B3)):
    for _it in range(5):
        ARMS[f"pd_{_short}_iter{_it}"] = progressive(*([_arch] * (_it + 1)), label=f"PD {_short.upper()} iteration {_it}",
                                                     group="iteration")
del _short, _arch, _name, _it

# Controls of the verdict study (not in the paper). A PD-B7 student differs
# from the plain B7 baseline in three ways at once: a teacher's soft labels,
# model noise, and three trainings' worth of compute. These two arms take
# away the teacher (noise and labels only) and match the compute (one B7
# trained for as many epochs as the three members of the PD-B7 chain).
ARMS["noisy_student_b7"] = Arm((Member(_B7, noise=True),), "Noisy student without teacher (EfficientNet-B7)",
                               group="control")
ARMS["compute_matched_b7"] = Arm((Member(_B7, epochs_factor=len(ARMS["pd_b7"].members)),),
                                 "EfficientNet-B7, epochs of the whole PD-B7 chain", group="control")

#: Which arms make each table or figure of the paper, and the arms of the
#: verdict study (``workflow/config/verdict.yaml``): the Table 4 chains on B7
#: and B3, PD B0-B3-B7, KD and PD B7-B3, and the two controls.
ARM_GROUPS: dict[str, tuple[str, ...]] = {
    "table2": tuple(name for name, arm in ARMS.items() if arm.group in ("baseline", "kd", "pd")),
    "table4": tuple(name for name, arm in ARMS.items() if arm.group == "ablation"),
    "fig6": tuple(name for name, arm in ARMS.items() if arm.group == "iteration"),
    "verdict": ("efficientnet_b7", "kd_b7", "ablation_b7_kd_mn", "pd_b7",
                "efficientnet_b3", "kd_b3", "ablation_b3_kd_mn", "pd_b3",
                "pd_b0_b3_b7", "kd_b7_b3", "pd_b7_b3", "noisy_student_b7", "compute_matched_b7"),
}

#: The arms of the paper (every group but the controls): a study's default.
PAPER_ARMS: tuple[str, ...] = tuple(name for name, arm in ARMS.items() if arm.group != "control")


def arm_group(arm: str) -> str:
    """Which chapter shows an arm: ``baseline``, ``kd``, ``pd``, ``iteration`` or ``ablation``."""
    return ARMS[arm].group


def final_member(arm: str) -> str:
    """Key of the member whose predictions are the arm's."""
    return ARMS[arm].final_key


def arm_of_key(key: str) -> str:
    """Name of the first arm of :data:`ARMS` whose final member is ``key``."""
    for name, arm in ARMS.items():
        if arm.final_key == key:
            return name
    raise ValueError(f"no arm ends with member {key!r}")


def teacher_arm(arm: str) -> str:
    """The arm that is ``arm``'s teacher trained alone (the baseline of its first member)."""
    return arm_of_key(ARMS[arm].member_keys()[0])


def study_members(arm_names: Sequence[str] | None = None) -> list[str]:
    """Distinct member keys needed by ``arm_names`` (default: every arm), in training order."""
    seen: dict[str, None] = {}
    for name in ARMS if arm_names is None else arm_names:
        for key in ARMS[name].member_keys():
            seen.setdefault(key, None)
    return list(seen)


def members_of_key(key: str) -> list[Member]:
    """The chain of :class:`Member` named by a lineage key (the inverse of :meth:`Arm.member_keys`).

    Raises
    ------
    ValueError
        Naming the key and the part that names no architecture.
    """
    by_short = {short: arch for arch, short in SHORT_NAMES.items()}
    members = []
    for part in key.split(KEY_SEPARATOR):
        member = None
        for short in sorted(by_short, key=len, reverse=True):
            match = _SUFFIX.match(part[len(short):]) if part.startswith(short) else None
            if match is not None:
                member = Member(by_short[short], noise=bool(match["noise"]),
                                epochs_factor=int(match["factor"] or 1))
                break
        if member is None or member.short != part:
            raise ValueError(f"member key {key!r}: unknown model {part!r}; known: {sorted(by_short)}")
        members.append(member)
    return members


def parent_key(key: str) -> str | None:
    """The teacher's key of a member key (None for a chain's first member)."""
    return key.rsplit(KEY_SEPARATOR, 1)[0] if KEY_SEPARATOR in key else None
