"""Losses, the training step and the iteration of Progressive Distill (pdlib.distill)."""

import numpy as np
import pytest
import torch

from pdlib import arms, distill, models
from pdlib.train import make_optimizer, train_batch

torch.set_num_threads(1)


# ----------------------------------------------------------------- naive references


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _smoothed_targets(y, k, beta):
    """Equation 3 written out: 1 - beta on the true class, beta / (K - 1) elsewhere."""
    q = np.full((len(y), k), beta / (k - 1))
    q[np.arange(len(y)), y] = 1 - beta
    return q


def _ce_by_hand(logits, y, beta):
    q = _smoothed_targets(y, logits.shape[1], beta)
    return float(np.mean(-(q * np.log(_softmax(logits))).sum(axis=1)))


def _equation_1_by_hand(student, teacher, y, *, kd_weight, temperature, beta):
    p_t = _softmax(teacher / temperature)
    p_s = _softmax(student / temperature)
    kl = float(np.mean((p_t * (np.log(p_t) - np.log(p_s))).sum(axis=1)))
    return kd_weight * temperature**2 * kl + (1 - kd_weight) * _ce_by_hand(student, y, beta)


# ----------------------------------------------------------------- equations


@pytest.mark.parametrize("k", [2, 5])
@pytest.mark.parametrize("beta", [0.0, 0.1, 0.3])
def test_label_smoothing_is_equation_3(k, beta):
    rng = np.random.default_rng(k)
    logits = rng.normal(size=(16, k)) * 3
    y = rng.integers(0, k, size=16)
    got = distill.smoothed_cross_entropy(torch.tensor(logits), torch.tensor(y), beta=beta)
    assert float(got) == pytest.approx(_ce_by_hand(logits, y, beta), rel=1e-6)


def test_smoothing_epsilon_converts_beta_to_pytorch():
    assert distill.smoothing_epsilon(0.1, 2) == pytest.approx(0.2)
    assert distill.smoothing_epsilon(0.3, 4) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="beta"):
        distill.smoothing_epsilon(0.6, 2)  # the wrong class would outweigh the true one
    with pytest.raises(ValueError, match="beta"):
        distill.smoothing_epsilon(-0.1, 2)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0, 7.5])
@pytest.mark.parametrize("kd_weight", [0.0, 0.3, 0.7, 1.0])
def test_student_loss_is_equation_1(temperature, kd_weight):
    rng = np.random.default_rng(int(temperature * 10 + kd_weight * 100))
    student, teacher = rng.normal(size=(12, 2)) * 4, rng.normal(size=(12, 2)) * 4
    y = rng.integers(0, 2, size=12)
    got = distill.student_loss(torch.tensor(student), torch.tensor(teacher), torch.tensor(y),
                               kd_weight=kd_weight, temperature=temperature, beta=0.1)
    expected = _equation_1_by_hand(student, teacher, y, kd_weight=kd_weight, temperature=temperature, beta=0.1)
    assert float(got["loss"]) == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert float(got["task_loss"]) == pytest.approx(_ce_by_hand(student, y, 0.1), rel=1e-6)


def test_distillation_loss_vanishes_when_student_matches_teacher():
    logits = torch.randn(8, 2)
    assert float(distill.distillation_loss(logits, logits.clone(), temperature=3.0)) == pytest.approx(0, abs=1e-6)


# ----------------------------------------------------------------- the step


def _pair(seed=0):
    torch.manual_seed(seed)
    teacher = models.create_model("efficientnet_b0_smoke")
    student = models.create_model("efficientnet_b3_smoke", drop_rate=0.5, drop_path_rate=0.2)
    return teacher, student


def test_step_has_one_interface_for_teacher_and_student():
    teacher, student = _pair()
    x, y = torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 0, 1])
    alone = distill.TrainStep(teacher)
    with_teacher = distill.TrainStep(student, teacher)
    assert (alone.mode, with_teacher.mode) == ("none", "kd")
    a, b = alone(x, y), with_teacher(x, y)
    assert set(a) == set(b) == {"loss", "task_loss", "kd_loss", "output"}
    assert float(a["kd_loss"]) == 0 and torch.equal(a["loss"], a["task_loss"])
    assert float(b["kd_loss"].detach()) > 0


def test_gradients_reach_only_the_student_and_teacher_statistics_do_not_move():
    teacher, student = _pair()
    frozen = {k: v.clone() for k, v in teacher.state_dict().items()}
    step = distill.TrainStep(student, teacher, kd_weight=0.7, temperature=4.0)
    step.train()
    assert step.model.training and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    optimizer = make_optimizer(student, name="adamw", lr=1e-2, weight_decay=0.05)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    for i in range(4):  # a short "epoch"
        x, y = torch.rand(8, 1, 32, 32), torch.randint(0, 2, (8,))
        out = train_batch(step, optimizer, x, y, lr=1e-2)
        assert out["loss"].requires_grad
        assert all(p.grad is None for p in teacher.parameters())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    for key, value in teacher.state_dict().items():  # weights and BatchNorm running statistics
        assert torch.equal(value, frozen[key]), key
    moved = [k for k, v in student.state_dict().items() if "running_mean" in k and not torch.equal(v, before[k])]
    assert moved  # the student's own statistics did update


def test_checkpoint_state_holds_the_student_only():
    teacher, student = _pair()
    step = distill.TrainStep(student, teacher)
    assert list(step.checkpoint_state()) == list(student.state_dict())
    assert not any(k.startswith("teacher") for k in step.checkpoint_state())


def test_step_validates_its_weights():
    teacher, student = _pair()
    with pytest.raises(ValueError, match="kd_weight"):
        distill.TrainStep(student, teacher, kd_weight=1.5)
    with pytest.raises(ValueError, match="temperature"):
        distill.TrainStep(student, teacher, temperature=0)


# ----------------------------------------------------------------- iteration (the arms: tests/test_arms.py)


def test_progressive_distill_hands_each_student_to_the_next_member():
    calls = []

    def fit(index, member, teacher):
        model = models.create_model(models.arch_for_profile(member.arch, profile="smoke"))
        calls.append((index, member, teacher))
        return model

    arm = arms.progressive("efficientnet_b0", "efficientnet_b3", "efficientnet_b7")
    final = distill.progressive_distill(arm.members, fit=fit)
    assert [c[0] for c in calls] == [0, 1, 2]
    assert calls[0][2] is None
    assert calls[1][2] is not None and calls[2][2] is not calls[1][2]
    assert final.pdlib_args["arch"] == "efficientnet_b7_smoke"
    assert calls[2][2].pdlib_args["arch"] == "efficientnet_b3_smoke"  # B3 student teaches B7
