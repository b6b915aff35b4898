"""Grad-CAM heat maps (pdlib.explain) on tiny real timm / MONAI models."""

import warnings

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from torch import nn

from pdlib import explain
from pdlib.manifest import load_manifest
from pdlib.slices import PatientSlices

#: Two single-channel 64-pixel "slices" in [0, 1].
SLICES = np.random.default_rng(0).random((2, 64, 64), dtype=np.float32)


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _timm(name, **kwargs):
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=2, in_chans=1, **kwargs)


def _hooks(model):
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
        for m in model.modules()
    )


# vgg11 with a 64-wide pre-logits MLP instead of 4096 (timm's mlp_ratio): the
# same VGG class and `features`, a fraction of the parameters.
FAMILIES = [
    ("efficientnet_b0", {}, lambda m: m.bn2),
    ("resnet18", {}, lambda m: m.layer4[-1]),
    ("resnext50_32x4d", {}, lambda m: m.layer4[-1]),
    ("densenet121", {}, lambda m: m.features.norm5),
    ("vgg11", {"mlp_ratio": 1 / 64}, lambda m: m.features[19]),
]


def _positive_evidence_for_class_one(model):
    """Make class 1's classifier weights non-negative.

    A randomly initialised head may weigh every position of the feature map
    negatively, which gives an all-zero (degenerate) Grad-CAM; with these
    weights class 1 gains from any active feature, as a trained model's
    class gains from its evidence.
    """
    with torch.no_grad():
        model.get_classifier().weight[1].abs_()
    return model


def _reference_gradcam(model, layer, images, target_class):
    """Naive Grad-CAM (Selvaraju et al. 2017) written out with autograd:
    weights = spatial mean of d score / d activation, map = ReLU(sum_k w_k A_k),
    min-max scaled, bilinear upsampling (half-pixel centres), scaled again."""
    store = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: store.update(a=output))
    model.eval()
    x = torch.from_numpy(images).unsqueeze(1).requires_grad_(True)
    scores = model(x)
    handle.remove()
    (grad,) = torch.autograd.grad(scores[:, target_class].sum(), store["a"])
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * store["a"]).sum(dim=1, keepdim=True))

    def scale(c):
        c = c - c.amin(dim=(2, 3), keepdim=True)
        return c / (1e-7 + c.amax(dim=(2, 3), keepdim=True))

    cam = nn.functional.interpolate(scale(cam), size=images.shape[-2:], mode="bilinear", align_corners=False)
    return scale(cam)[:, 0].detach().numpy()


@pytest.mark.parametrize("name, kwargs, expected", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_target_layer_and_cam_for_each_timm_family(name, kwargs, expected):
    model = _positive_evidence_for_class_one(_timm(name, **kwargs))
    layer = explain.target_layer(model)
    assert layer is expected(model)

    cams = explain.gradcam(model, SLICES)
    assert cams.shape == (2, 64, 64)
    assert cams.dtype == np.float32
    assert cams.min() >= 0.0 and cams.max() <= 1.0
    # Each map is scaled to [0, 1] and reaches 1 somewhere (not degenerate).
    np.testing.assert_allclose(cams.reshape(2, -1).max(axis=1), 1.0, atol=1e-5)
    # Same numbers as Grad-CAM written out by hand.
    reference = _reference_gradcam(model, layer, SLICES, target_class=1)
    np.testing.assert_allclose(cams, reference, atol=1e-4)


def test_vgg_target_is_the_activation_of_the_last_convolution():
    model = _timm("vgg11", mlp_ratio=1 / 64)
    layer = explain.target_layer(model)
    convs = [i for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
    assert isinstance(layer, nn.ReLU)
    assert model.features[convs[-1] + 1] is layer


def test_target_layer_of_features_only_wrappers():
    effnet = timm.create_model("efficientnet_b0", features_only=True, in_chans=1)
    assert explain.target_layer(effnet) is effnet.blocks[-1]
    resnet = timm.create_model("resnet18", features_only=True, in_chans=1)
    assert explain.target_layer(resnet) is resnet.layer4[-1]
    densenet = timm.create_model("densenet121", features_only=True, in_chans=1)
    assert explain.target_layer(densenet) is densenet.features_norm5


class _HybridLike(nn.Module):
    """EfficientNet feature map -> tokens -> Transformer encoder -> logits.

    The layout of the study's hybrid model: its CNN sits under `backbone`.
    """

    def __init__(self):
        super().__init__()
        self.backbone = timm.create_model("efficientnet_b0", num_classes=0, global_pool="", in_chans=1)
        self.project = nn.Conv2d(self.backbone.num_features, 32, kernel_size=1)
        layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1)
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        tokens = self.project(self.backbone(x)).flatten(2).transpose(1, 2)
        return self.head(self.encoder(tokens).mean(dim=1))


def test_hybrid_uses_its_backbone_feature_map():
    torch.manual_seed(0)
    model = _HybridLike()
    assert explain.target_layer(model) is model.backbone.bn2
    cams = explain.gradcam(model, SLICES)
    assert cams.shape == (2, 64, 64)
    assert 0.0 <= cams.min() and cams.max() <= 1.0


def test_monai_3d_resnet_gives_volume_maps():
    from monai.networks.nets import resnet10

    torch.manual_seed(0)
    model = resnet10(spatial_dims=3, n_input_channels=1, num_classes=2)
    assert explain.target_layer(model) is model.layer4[-1]
    volume = np.random.default_rng(1).random((1, 1, 32, 32, 32), dtype=np.float32)
    cams = explain.gradcam(model, volume)
    assert cams.shape == (1, 32, 32, 32)
    assert cams.min() >= 0.0 and cams.max() == pytest.approx(1.0, abs=1e-5)


def test_unknown_model_needs_an_explicit_layer():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="layer="):
        explain.target_layer(model)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        explain.target_layer("resnet18")
    cams = explain.gradcam(model, SLICES, layer=model[1])
    assert cams.shape == (2, 64, 64)


def test_gradcam_leaves_model_as_found():
    model = _timm("resnet18")
    model.train()
    model.bn1.eval()  # a deliberately frozen BatchNorm inside a training model
    for p in model.layer1.parameters():
        p.requires_grad_(False)
    # A real training step leaves gradients behind.
    logits = model(torch.from_numpy(SLICES).unsqueeze(1))
    nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()

    modes = {name: m.training for name, m in model.named_modules()}
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    grads = {name: p.grad for name, p in model.named_parameters()}
    grad_values = {name: None if g is None else g.clone() for name, g in grads.items()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    assert any(g is None for g in grads.values()) and any(g is not None for g in grads.values())

    with torch.no_grad():  # works inside inference code, too
        cams = explain.gradcam(model, SLICES)
    assert cams.max() > 0

    assert {name: m.training for name, m in model.named_modules()} == modes
    assert {name: p.requires_grad for name, p in model.named_parameters()} == flags
    for name, p in model.named_parameters():
        assert p.grad is grads[name]
        if grad_values[name] is not None:
            assert torch.equal(p.grad, grad_values[name])
    # BatchNorm ran on running statistics (eval): nothing was updated.
    for name, b in model.named_buffers():
        assert torch.equal(b, buffers[name]), name
    assert _hooks(model) == 0


def test_gradcam_on_a_frozen_teacher_and_after_an_error():
    model = _timm("efficientnet_b0").eval()
    for p in model.parameters():
        p.requires_grad_(False)  # a distillation teacher
    cams = explain.gradcam(model, SLICES)
    assert cams.shape == (2, 64, 64) and cams.max() > 0
    assert not any(p.requires_grad for p in model.parameters())

    model.train()
    with pytest.raises(ValueError, match="target_class=5"):
        explain.gradcam(model, SLICES, target_class=5)
    assert model.training and all(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    assert _hooks(model) == 0


def test_gradcam_is_deterministic_and_batch_independent():
    model = _timm("resnet18")
    first = explain.gradcam(model, SLICES)
    again = explain.gradcam(model, torch.from_numpy(SLICES).unsqueeze(1))
    assert np.array_equal(first, again)
    one_by_one = explain.gradcam(model, SLICES, batch_size=1)
    np.testing.assert_allclose(one_by_one, first, atol=1e-5)
    other_class = explain.gradcam(model, SLICES, target_class=0)
    assert not np.allclose(other_class, first)


def test_gradcam_rejects_bad_input():
    model = _timm("resnet18")
    with pytest.raises(ValueError, match="shape"):
        explain.gradcam(model, SLICES[0])
    bad = SLICES.copy()
    bad[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        explain.gradcam(model, bad)
    with pytest.raises(ValueError, match="not a sub-module"):
        explain.gradcam(model, SLICES, layer=nn.ReLU())
    with pytest.raises(ValueError, match="target_class"):
        explain.gradcam(model, SLICES, target_class=-1)
    assert _hooks(model) == 0


def test_cam_mass_inside_known_answers():
    cam = np.array([[1.0, 3.0], [0.0, 0.0]])
    mask = np.array([[0, 1], [0, 0]])
    assert explain.cam_mass_inside(cam, mask) == pytest.approx(0.75)
    assert explain.cam_mass_chance(mask) == pytest.approx(0.25)
    assert explain.cam_mass_inside(cam, mask.astype(bool)) == pytest.approx(0.75)

    # A flat map puts exactly the area fraction inside any mask.
    rng = np.random.default_rng(0)
    mask = rng.random((3, 16, 16)) < 0.2
    flat = np.full(mask.shape, 0.4)
    assert explain.cam_mass_inside(flat, mask) == pytest.approx(explain.cam_mass_chance(mask))
    assert explain.cam_mass_chance(mask) == pytest.approx(mask.sum() / mask.size)

    # Several maps pool their mass: 4 of (4 + 4 + 2) inside.
    cams = np.zeros((2, 2, 2))
    cams[0, 0, 0], cams[0, 1, 1], cams[1, 0, 0] = 4.0, 4.0, 2.0
    masks = np.zeros((2, 2, 2), dtype=bool)
    masks[0, 0, 0] = True
    assert explain.cam_mass_inside(cams, masks) == pytest.approx(0.4)


def test_cam_mass_inside_degenerate_and_bad_input():
    mask = np.array([[1, 0], [0, 0]])
    with pytest.warns(RuntimeWarning, match="zero everywhere"):
        assert np.isnan(explain.cam_mass_inside(np.zeros((2, 2)), mask))
    with pytest.raises(ValueError, match="shape"):
        explain.cam_mass_inside(np.ones((2, 3)), mask)
    with pytest.raises(ValueError, match="binary"):
        explain.cam_mass_inside(np.ones((2, 2)), np.array([[0.5, 0], [0, 0]]))
    with pytest.raises(ValueError, match="non-negative"):
        explain.cam_mass_inside(-np.ones((2, 2)), mask)
    with pytest.raises(ValueError, match="empty"):
        explain.cam_mass_chance(np.zeros((0, 4)))


def test_cam_of_a_trained_cnn_points_at_the_deciding_blob():
    """Class 1 iff a bright disc sits at a fixed place: a trained CNN's
    Grad-CAM for class 1 must put far more mass on the disc than chance."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    size, n = 32, 64
    yy, xx = np.mgrid[:size, :size]
    blob = (yy - 10) ** 2 + (xx - 21) ** 2 <= 16
    labels = np.arange(n) % 2
    images = rng.normal(0.3, 0.1, (n, size, size))
    images[labels == 1] += 0.5 * blob
    images = np.clip(images, 0.0, 1.0).astype(np.float32)

    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 2),
    )
    positives = images[labels == 1]
    masks = np.broadcast_to(blob, positives.shape)
    untrained = explain.cam_mass_inside(explain.gradcam(net, positives, target_class=1, layer=net[3]), masks)

    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels)
    for _ in range(60):
        optimiser.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimiser.step()
    with torch.no_grad():
        accuracy = (net(x).argmax(1) == y).float().mean().item()
    assert accuracy == 1.0

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no degenerate (all-zero) map
        cams = explain.gradcam(net, positives, target_class=1, layer=net[3])
    inside = explain.cam_mass_inside(cams, masks)
    chance = explain.cam_mass_chance(masks)
    assert chance == pytest.approx(blob.mean())
    assert inside > 3 * chance
    assert inside > 2 * untrained  # training, not the architecture, put it there


# --------------------------------------------------------------------------- Fig. 5 panels and the mask check


def _heatmap_inputs(tmp_path, write_manifest):
    """Four test patients (one per RECIST category), their masks and slice scores."""
    rng = np.random.default_rng(1)
    categories = ("SD", "CR", "PD", "PR")
    rows = [{"patient_id": f"T{i}", "split": "test", "recist": r, "response": "GR" if r in ("CR", "PR") else "PR",
             "age": str(60 + i), "first_slice": "1", "last_slice": "3"} for i, r in enumerate(categories)]
    manifest = load_manifest(write_manifest(tmp_path / "manifest", rows), check_files=False)
    (tmp_path / "twin" / "masks").mkdir(parents=True)
    patients, probs = [], []
    for i, r in enumerate(categories):
        mask = np.zeros((5, 80, 80), dtype=bool)
        mask[2, 20:60, 20:60] = True  # the tumour shows on the second kept slice only
        np.savez_compressed(tmp_path / "twin" / "masks" / f"T{i}.npz", mask=mask)
        patients.append(PatientSlices(f"T{i}", int(r in ("SD", "PD")), rng.random((3, 80, 80), dtype=np.float32),
                                      r, "test"))
        probs += [{"patient_id": f"T{i}", "slice_index": k, "prob": p} for k, p in enumerate((0.2, 0.9, 0.1))]
    return manifest, patients, pd.DataFrame(probs)


def test_tumour_masks_panels_and_attention(tmp_path, write_manifest):
    manifest, patients, probs = _heatmap_inputs(tmp_path, write_manifest)
    masks = explain.tumour_masks(tmp_path / "twin", manifest, patients, resize=80, crop=64)
    assert set(masks) == {"T0", "T1", "T2", "T3"}
    assert masks["T0"].shape == (3, 64, 64) and masks["T0"].dtype == bool
    # kept slices start at first_slice 1: the tumour is on kept slice 1, inside the centre crop
    assert masks["T0"][1].sum() == 40 * 40 and not masks["T0"][[0, 2]].any()
    assert explain.tumour_masks(None, manifest, patients, resize=80, crop=64) is None
    assert explain.tumour_masks(tmp_path, manifest, patients, resize=80, crop=64) is None  # no masks/

    model = _positive_evidence_for_class_one(_timm("resnet18")).eval()
    panels = explain.heatmap_panels(model, patients, probs, crop=64, ages={"T0": 60, "T1": 61, "T2": 62, "T3": 63},
                                    masks=masks)
    assert panels.titles == ["CR, 61 y", "PR, 63 y", "SD, 60 y", "PD, 62 y"]  # RECIST order, first of each
    np.testing.assert_array_equal(panels.images[0], patients[1].slices[1][8:72, 8:72])  # the best-scored slice
    np.testing.assert_array_equal(panels.masks[0], masks["T1"][1])
    np.testing.assert_allclose(panels.cams, explain.gradcam(model, panels.images[:, None]))
    assert panels.n_zero == int((panels.cams.reshape(4, -1).max(axis=1) <= 0).sum())

    mass = explain.tumour_attention(model, patients, masks, crop=64)
    assert list(mass["patient"]) == ["T0", "T1", "T2", "T3"] and set(mass["tumour slices"]) == {1}
    cams = explain.gradcam(model, patients[0].slices[1:2, None, 8:72, 8:72])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = explain.cam_mass_inside(cams, masks["T0"][1:2])
    np.testing.assert_allclose(mass["CAM mass inside"].iloc[0], expected)
    assert mass["chance"].iloc[0] == pytest.approx(explain.cam_mass_chance(masks["T0"][1:2]))
    assert explain.tumour_attention(model, patients, None, crop=64) is None
