"""The model factory (pdlib.models): every arm builds, trains a step, and loads weights."""

import time
import warnings

import pytest
import torch

from pdlib import models

torch.set_num_threads(1)


def _input(arch, *, batch=2, size=32, depth=8):
    if models.is_volumetric(arch):
        return torch.rand(batch, 1, depth, size, size)
    return torch.rand(batch, 1, size, size)


def _forward_backward(model, x):
    model.train()
    logits = model(x)
    assert logits.shape == (x.shape[0], 2)
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.arange(x.shape[0]) % 2).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("arch", models.ARCHS["smoke"] + models.ARCHS["demo"])
def test_scaled_models_train_a_step(arch):
    torch.manual_seed(0)
    model = models.create_model(arch)
    size = 56 if arch.endswith("_demo") else 32
    _forward_backward(model, _input(arch, size=size, depth=8))


@pytest.mark.slow
@pytest.mark.parametrize("arch", models.ARCHS["paper"])
def test_paper_models_train_a_step_on_tiny_input(arch):
    torch.manual_seed(0)
    model = models.create_model(arch)
    assert model.pdlib_args["arch"] == arch
    _forward_backward(model, _input(arch, size=32, depth=8))


@pytest.mark.parametrize("profile", ["smoke", "demo"])
def test_scaled_families_keep_the_paper_order_of_capacity(profile):
    n = {name: models.count_parameters(models.create_model(models.arch_for_profile(name, profile=profile)))
         for name in models.PAPER_ARCHS}
    assert n["efficientnet_b0"] < n["efficientnet_b3"] < n["efficientnet_b7"]
    assert n["resnet50"] < n["resnet101"]
    assert n["densenet121"] < n["densenet201"]
    assert n["vgg11"] < n["vgg16"]
    # the demo members are much smaller than the paper's (b7 has 63.8 M parameters)
    assert n["efficientnet_b7"] < 2_000_000


def test_names_per_profile():
    assert models.arch_for_profile("efficientnet_b7", profile="demo") == "efficientnet_b7_demo"
    assert models.arch_for_profile("efficientnet_b7", profile="paper") == "efficientnet_b7"
    assert models.split_arch("resnet50_3d_smoke") == ("resnet50_3d", "smoke")
    assert models.is_volumetric("resnet50_3d_demo") and not models.is_volumetric("resnet50_demo")
    with pytest.raises(ValueError, match="unknown arch"):
        models.create_model("efficientnet_b9")
    with pytest.raises(ValueError, match="num_classes"):
        models.create_model("efficientnet_b0_smoke", num_classes=1)
    with pytest.raises(ValueError, match="drop_rate"):
        models.create_model("efficientnet_b0_smoke", drop_rate=1.5)


def test_single_channel_stem():
    model = models.create_model("efficientnet_b0_smoke")
    assert model.conv_stem.weight.shape[1] == 1


def test_pdlib_args_rebuild_the_same_model():
    torch.manual_seed(0)
    model = models.create_model("hybrid_efficientnet_b7_smoke", drop_rate=0.1, img_size=32).eval()
    rebuilt = models.model_from_args(model.pdlib_args)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt.eval()(x))


def test_model_noise_dropout_and_stochastic_depth():
    torch.manual_seed(0)
    model = models.create_model("efficientnet_b3_smoke", drop_rate=0.5, drop_path_rate=0.2)
    rates = [m.drop_prob for m in model.modules() if type(m).__name__ == "DropPath"]
    assert rates and 0 < max(rates) <= 0.2  # timm raises the rate linearly with block depth
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))  # noise on
        model.eval()
        assert torch.equal(model(x), model(x))  # noise off


@pytest.mark.parametrize("arch", ["densenet121_smoke", "vgg11_smoke", "resnet50_3d_smoke"])
def test_drop_path_without_stochastic_depth_warns_and_is_ignored(arch):
    with pytest.warns(UserWarning, match="no stochastic depth"):
        model = models.create_model(arch, drop_rate=0.3, drop_path_rate=0.2)
    assert model.pdlib_args["drop_path_rate"] == 0.0
    assert model.pdlib_args["drop_rate"] == 0.3


def test_hybrid_interpolates_its_position_embedding():
    model = models.create_model("hybrid_efficientnet_b7_smoke", img_size=64).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 64, 64)).shape == (1, 2)
        assert model(torch.rand(1, 1, 96, 96)).shape == (1, 2)


def test_imagenet_style_file_loads_into_a_grey_two_class_model(tmp_path):
    torch.manual_seed(0)
    rgb = models.create_model("efficientnet_b0_smoke", in_chans=3, num_classes=1000).eval()
    path = tmp_path / "imagenet_like.pth"
    torch.save(rgb.state_dict(), path)
    with pytest.warns(UserWarning, match="new head"):
        grey = models.create_model("efficientnet_b0_smoke", weights_path=path).eval()
    assert torch.equal(grey.conv_stem.weight, rgb.conv_stem.weight.sum(dim=1, keepdim=True))
    assert grey.classifier.weight.shape == (2, grey.num_features)
    # summing the RGB stem equals feeding the grey slice replicated to three channels
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(grey.forward_features(x), rgb.forward_features(x.repeat(1, 3, 1, 1)),
                                   rtol=1e-4, atol=1e-5)
    assert grey.pdlib_args["weights_path"] == str(path)


def test_own_state_dict_and_checkpoint_load_exactly(tmp_path):
    torch.manual_seed(1)
    model = models.create_model("resnet50_smoke").eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pt")
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = model(x)
        for name in ("w.pt", "checkpoint.pt"):
            torch.manual_seed(99)  # a different initialisation, overwritten by the file
            loaded = models.create_model("resnet50_smoke", weights_path=tmp_path / name).eval()
            assert torch.equal(loaded(x), expected)


def test_weights_of_another_architecture_are_refused(tmp_path):
    torch.save(models.create_model("resnet50_smoke").state_dict(), tmp_path / "r50.pt")
    with pytest.raises(ValueError, match="r50.pt does not fit"):
        models.create_model("efficientnet_b0_smoke", weights_path=tmp_path / "r50.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        models.create_model("efficientnet_b0_smoke", weights_path=tmp_path / "missing.pt")


def test_pretrained_offline_fails_fast_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv(models.WEIGHTS_ENV, raising=False)  # the hub path, not a weights folder
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.PretrainedWeightsUnavailable, match="tf_efficientnet_b7.ra_in1k.*HF_HUB_OFFLINE"):
        models.create_model("efficientnet_b7", pretrained=True)


def test_pretrained_with_unreachable_hub_fails_fast(tmp_path, monkeypatch):
    monkeypatch.delenv(models.WEIGHTS_ENV, raising=False)  # the hub path, not a weights folder
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    started = time.monotonic()
    with pytest.raises(models.PretrainedWeightsUnavailable, match="unreachable.*weights_path"):
        models.create_model("resnet50", pretrained=True)
    # informative only (no timing assertion): the probe is bounded by HUB_PROBE_TIMEOUT_S
    print(f"offline failure after {time.monotonic() - started:.2f}s")


def test_pretrained_is_refused_where_no_hub_weights_exist(tmp_path):
    with pytest.raises(ValueError, match="no pretrained hub weights"):
        models.create_model("efficientnet_b7_demo", pretrained=True)
    with pytest.raises(ValueError, match="no pretrained hub weights"):
        models.create_model("resnet50_3d", pretrained=True)
    with pytest.raises(ValueError, match="either pretrained"):
        models.create_model("efficientnet_b0", pretrained=True, weights_path=tmp_path / "x.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert models.has_pretrained("efficientnet_b7") and not models.has_pretrained("resnet50_3d")


def test_a_rebuild_that_differs_from_the_record_is_refused():
    model = models.create_model("efficientnet_b0_smoke")
    assert model.pdlib_args["build"] == {"timm_name": None, "padding": "symmetric", "norm_eps": [1e-05],
                                         "stem_in_chans": 1}
    args = {**model.pdlib_args, "build": {**model.pdlib_args["build"], "padding": "tf_same"}}
    with pytest.raises(ValueError, match="differs from the recorded one"):
        models.model_from_args(args)
    # records written before builds were recorded rebuild as before, with the identity normalisation
    legacy = {k: v for k, v in model.pdlib_args.items() if k not in ("build", "input_norm")}
    rebuilt = models.model_from_args(legacy)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), model.eval()(x))
