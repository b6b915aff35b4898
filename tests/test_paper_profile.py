"""The paper profile: a checkpoint round trip is the identity, weights load offline, numerics as recommended.

Every architecture of every profile is built through its pretrained code
path (ImageNet weights for the paper's 2D models and the hybrid's backbone,
from a local folder of random weights in timm's ImageNet layout through
``PDLIB_WEIGHTS``; a local weights file for everything else, as the demo's
pretext weights), saved as a member checkpoint, reloaded with
:func:`pdlib.infer.load_member` and must give bit-identical fp32 logits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pdlib import atomic, config, distill, infer, models, train

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


def _random_imagenet_file(hub_name: str, folder: Path) -> Path:
    """``folder/<hub_name>.safetensors``: random weights of the RGB, 1000-class timm model (ImageNet layout)."""
    import timm
    from safetensors.torch import save_file

    path = folder / models.weights_file_name(hub_name)
    if not path.is_file():
        torch.manual_seed(len(hub_name))
        model = timm.create_model(hub_name, pretrained=False)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    """A PDLIB_WEIGHTS folder with a random-weights file for every weight set of the paper profile."""
    folder = tmp_path_factory.mktemp("imagenet-weights")
    for hub_name in models.profile_weights("paper"):
        _random_imagenet_file(hub_name, folder)
    return folder


def _input(arch: str, *, size: int = 32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    shape = (1, 1, 8, size, size) if models.is_volumetric(arch) else (1, 1, size, size)
    return torch.rand(shape, generator=generator)


def _extra(arch: str) -> dict:
    return {"img_size": 224} if models.split_arch(arch)[0].startswith("hybrid") else {}


def _build_pretrained(arch: str, tmp_path: Path, **options) -> torch.nn.Module:
    """``arch`` as the training code builds it when starting from weights (see the module docstring)."""
    torch.manual_seed(0)
    if models.has_pretrained(arch):
        return models.create_model(arch, pretrained=True, **_extra(arch), **options)
    source = models.create_model(arch, **_extra(arch))
    path = tmp_path / f"{arch}-init.pt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(1)
    return models.create_model(arch, weights_path=path, **_extra(arch), **options)


def _save_member(model: torch.nn.Module, member_dir: Path) -> Path:
    """The two entries of ``train``'s checkpoint that :func:`pdlib.infer.load_member` reads."""
    member_dir.mkdir(parents=True, exist_ok=True)
    atomic.save_torch(member_dir / "checkpoint.pt",
                            {"state_dict": model.state_dict(), "model_args": model.pdlib_args})
    return member_dir


ALL_ARCHS = [arch for profile in config.PROFILES for arch in models.ARCHS[profile]]


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_checkpoint_round_trip_is_the_identity(arch, weights_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(models.WEIGHTS_ENV, str(weights_dir))
    model = _build_pretrained(arch, tmp_path, drop_rate=0.5,
                              drop_path_rate=0.2 if models.supports_drop_path(arch) else 0.0).eval()
    reloaded = infer.load_member(_save_member(model, tmp_path / "member"))
    assert reloaded.pdlib_args == model.pdlib_args
    x = _input(arch)
    with torch.no_grad():
        expected, got = model(x), reloaded(x)
    assert expected.dtype == got.dtype == torch.float32
    assert torch.equal(expected, got), f"{arch}: logits differ after the round trip"
    build = model.pdlib_args["build"]
    if models.split_arch(arch)[0] in ("efficientnet_b0", "efficientnet_b3", "efficientnet_b7",
                                      "hybrid_efficientnet_b7") and models.has_pretrained(arch):
        assert build["timm_name"].startswith("tf_efficientnet") and build["padding"] == "tf_same"
        assert 1e-3 in build["norm_eps"]


def test_pretrained_b7_is_not_the_native_b7(weights_dir, tmp_path, monkeypatch):
    """The defect the recorded build fixes: same keys, another network."""
    monkeypatch.setenv(models.WEIGHTS_ENV, str(weights_dir))
    model = models.create_model("efficientnet_b7", pretrained=True).eval()
    native = models.create_model("efficientnet_b7").eval()
    native.load_state_dict(model.state_dict())  # strict: the keys are identical
    assert native.pdlib_args["build"]["padding"] == "symmetric"
    x = _input("efficientnet_b7", size=64)
    with torch.no_grad():  # pooled features: the new head's small weights make logits near zero for both
        a, b = native.forward_head(native.forward_features(x), pre_logits=True), model.forward_head(
            model.forward_features(x), pre_logits=True)
    assert (a - b).abs().max() > 0.1 * b.abs().max()


def test_kd_step_from_the_reloaded_teacher_equals_the_in_memory_one(weights_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(models.WEIGHTS_ENV, str(weights_dir))
    torch.manual_seed(0)
    teacher = models.create_model("efficientnet_b7", pretrained=True).eval()
    reloaded = infer.load_member(_save_member(teacher, tmp_path / "b7"))
    x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    target = torch.tensor([0, 1])
    results = []
    for t in (teacher, reloaded):
        torch.manual_seed(7)
        student = models.create_model("efficientnet_b7", pretrained=True, drop_rate=0.5, drop_path_rate=0.2)
        step = distill.TrainStep(student, t, beta=0.1, kd_weight=0.7, temperature=4.0).train()
        optimizer = train.make_optimizer(student, name="adamw", lr=1e-4, weight_decay=0.05)
        torch.manual_seed(11)  # dropout and stochastic depth draw the same
        out = train.train_batch(step, optimizer, x, target, lr=1e-4)
        results.append((out["loss"].detach(), out["kd_loss"].detach(), student.state_dict()))
    (loss_a, kd_a, state_a), (loss_b, kd_b, state_b) = results
    assert float(kd_a) > 0
    assert torch.equal(loss_a, loss_b) and torch.equal(kd_a, kd_b)
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


# --------------------------------------------------------------------------- normalisation


def test_pretrained_weights_bring_their_normalisation(weights_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(models.WEIGHTS_ENV, str(weights_dir))
    torch.manual_seed(0)
    model = models.create_model("resnet50", pretrained=True).eval()
    norm = model.pdlib_args["input_norm"]
    # ImageNet mean and std of timm's pretrained_cfg, averaged over the colour channels as the summed stem is
    assert norm["source"] == "resnet50.tv_in1k"
    assert norm["mean"] == pytest.approx((0.485 + 0.456 + 0.406) / 3)
    assert norm["std"] == pytest.approx((0.229 + 0.224 + 0.225) / 3)
    x = _input("resnet50")
    bare = models.create_model("resnet50").eval()  # the same network without the hook
    bare.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(model(x), bare((x - norm["mean"]) / norm["std"]))
    # every other start keeps the windowed slices as they are (the demo's pretext weights included)
    path = tmp_path / "w.pt"
    torch.save(models.create_model("resnet50_demo").state_dict(), path)
    for other in (models.create_model("resnet50_demo", weights_path=path), models.create_model("resnet50")):
        assert other.pdlib_args["input_norm"] == models.IDENTITY_NORM
        assert not other._forward_pre_hooks


def test_gradcam_sees_the_normalised_input(weights_dir, monkeypatch):
    from pdlib import explain

    monkeypatch.setenv(models.WEIGHTS_ENV, str(weights_dir))
    torch.manual_seed(0)
    model = models.create_model("resnet50", pretrained=True).eval()
    bare = models.create_model("resnet50").eval()
    bare.load_state_dict(model.state_dict())
    norm = model.pdlib_args["input_norm"]
    images = torch.rand(2, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    cams = explain.gradcam(model, images)
    expected = explain.gradcam(bare, (images - norm["mean"]) / norm["std"])
    assert cams.shape == (2, 64, 64)
    assert abs(cams - expected).max() < 1e-5


# --------------------------------------------------------------------------- numerics


def test_autocast_covers_the_forward_pass_only():
    torch.manual_seed(0)
    model = models.create_model("efficientnet_b0_smoke")
    step = distill.TrainStep(model).train()
    optimizer = train.make_optimizer(model, name="adamw", lr=1e-3, weight_decay=0.05)
    seen = {"backward": [], "step": []}
    for p in model.parameters():
        p.register_hook(lambda grad: seen["backward"].append(torch.is_autocast_enabled("cpu")) or grad)
    optimizer.register_step_pre_hook(lambda *a: seen["step"].append(torch.is_autocast_enabled("cpu")))
    out = train.train_batch(step, optimizer, torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 0, 1]), lr=1e-3, amp=True)
    assert out["output"].dtype == torch.bfloat16  # the forward pass ran under autocast
    assert seen["backward"] and not any(seen["backward"])
    assert seen["step"] == [False]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_no_weight_decay_on_biases_norms_position_embedding_and_class_token():
    model = models.create_model("hybrid_efficientnet_b7_smoke", img_size=32)
    optimizer = train.make_optimizer(model, name="adamw", lr=1e-3, weight_decay=0.05)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    skipped = {names[id(p)] for p in no_decay["params"]}
    assert {"pos_embed", "cls_token", "head.bias", "norm.weight"} <= skipped
    assert all(p.ndim > 1 for p in decay["params"])
    assert not {names[id(p)] for p in decay["params"]} & {"pos_embed", "cls_token"}
    # a CNN keeps its groups: every matrix decays, every vector does not
    cnn = models.create_model("efficientnet_b0_smoke")
    groups = train.make_optimizer(cnn, name="sgd", lr=1e-3, weight_decay=0.05).param_groups
    assert [len(g["params"]) for g in groups] == [sum(p.ndim > 1 for p in cnn.parameters()),
                                                   sum(p.ndim <= 1 for p in cnn.parameters())]


# --------------------------------------------------------------------------- offline weights


def test_missing_weight_file_names_the_file_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv(models.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(models.PretrainedWeightsUnavailable) as info:
        models.create_model("efficientnet_b3", pretrained=True)
    message = str(info.value)
    assert str(tmp_path / "tf_efficientnet_b3.in1k.safetensors") in message
    assert "python -m pdlib fetch-weights --profile paper" in message


def _fetch(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pdlib", "fetch-weights", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300, cwd=ROOT)


def test_fetch_weights_from_the_hub_cache_then_offline_use(weights_dir, tmp_path, monkeypatch):
    """fetch-weights through huggingface_hub (here offline, from a populated hub cache), then PDLIB_WEIGHTS."""
    hub_name = "tf_efficientnet_b0.in1k"
    cache = tmp_path / "hf-cache"
    repo = cache / "models--timm--tf_efficientnet_b0.in1k"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "model.safetensors").symlink_to(weights_dir / f"{hub_name}.safetensors")
    out = tmp_path / "weights"
    run = _fetch("--profile", "paper", "--arch", "efficientnet_b0", "--arch", "resnet50_3d", str(out),
                 env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)})
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{hub_name}.safetensors"]
    assert models.weights_fingerprint(out / f"{hub_name}.safetensors") == models.weights_fingerprint(
        weights_dir / f"{hub_name}.safetensors")
    # the folder is all the paper profile's B0 needs: no network, no hub cache
    monkeypatch.setenv(models.WEIGHTS_ENV, str(out))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    model = models.create_model("efficientnet_b0", pretrained=True)
    stem = models.read_state_dict(out / f"{hub_name}.safetensors")["conv_stem.weight"]
    assert torch.equal(model.conv_stem.weight, stem.sum(dim=1, keepdim=True))  # timm's RGB -> grey stem
    # a weight set the cache lacks fails with its name
    run = _fetch("--profile", "paper", "--arch", "efficientnet_b3", str(out),
                 env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)})
    assert run.returncode == 1 and "tf_efficientnet_b3.in1k" in run.stderr


def test_fetch_weights_from_a_folder_covers_the_profile(weights_dir, tmp_path):
    out = tmp_path / "weights"
    names = models.profile_weights("paper")
    assert "tf_efficientnet_b7.ra_in1k" in names and len(names) == 10  # B7 and the hybrid share one
    run = _fetch("--profile", "paper", "--arch", "efficientnet_b7", "--arch", "hybrid_efficientnet_b7",
                 "--arch", "vgg11", "--source", str(weights_dir), str(out))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["tf_efficientnet_b7.ra_in1k.safetensors",
                                                     "vgg11.tv_in1k.safetensors"]
    run = _fetch("--profile", "smoke", str(out))
    assert run.returncode == 0 and "nothing to fetch" in run.stderr


def test_one_weights_fingerprint_for_models_mappings_and_files(tmp_path):
    from pdlib import pretrain

    model = models.create_model("efficientnet_b0_smoke")
    torch.save(model.state_dict(), tmp_path / "w.pt")
    digest = models.weights_fingerprint(model)
    assert digest == models.weights_fingerprint(tmp_path / "w.pt") == models.weights_fingerprint(model.state_dict())
    # the one fingerprint: no other module keeps a copy of it
    assert not hasattr(train, "weights_fingerprint") and not hasattr(pretrain, "weights_file_fingerprint")
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    assert models.weights_fingerprint(model) != digest


# --------------------------------------------------------------------------- CPU rehearsal


@pytest.mark.slow
def test_cpu_rehearsal_of_the_paper_profile(tmp_path, monkeypatch):
    """``workflow/config/paper_rehearsal.yaml`` through Snakemake and papermill, on a tiny twin.

    Paper architectures at 256 -> 224 from (random) ImageNet-layout weights
    in a PDLIB_WEIGHTS folder: B7, the 3D ResNet-50 and the hybrid as
    baselines, KD B7 and the three members of PD B7, whose teachers the
    pipeline reloads from disk; the chapters that load members run too.
    """
    import json
    import time

    import nbformat
    import pandas as pd
    from test_pipeline import _snakemake

    from pdlib import pipeline
    from pdlib.manifest import load_manifest
    from pdlib.slices import load_cohort
    from pdlib.twin import generate_twin

    generate_twin(tmp_path / "twin", n_patients=8, matrix=64, n_slices=12, signal_strength=3.0)
    weights = tmp_path / "weights"
    weights.mkdir()
    _random_imagenet_file("tf_efficientnet_b7.ra_in1k", weights)
    monkeypatch.setenv(models.WEIGHTS_ENV, str(weights))
    study = {"profile": "paper_rehearsal", "manifest": str(tmp_path / "twin" / "manifest"),
             "twin": str(tmp_path / "twin"), "results": str(tmp_path / "results"),
             "book_runs": str(tmp_path / "book_runs"), "cache": str(tmp_path / "cache")}
    started = time.perf_counter()
    run = _snakemake(tmp_path, study)
    print(f"paper rehearsal: snakemake wall time {time.perf_counter() - started:.0f} s")
    assert run.returncode == 0, f"snakemake failed:\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}"

    targets = pipeline.plan(pipeline.load_study(study))
    members = sorted(t.id.rsplit("/", 1)[-1] for t in targets.values() if t.kind == "member")
    assert members == ["b7", "b7--b7", "b7--b7mn", "b7--b7mn--b7mn", "hybrid_b7", "r50_3d"]
    results = tmp_path / "results" / "seed0"
    for key in members:
        summary = json.loads((results / key / "summary.json").read_text())
        assert summary["status"] == "complete", key
        checkpoint = torch.load(results / key / "checkpoint.pt", map_location="cpu", weights_only=True)
        args = checkpoint["model_args"]
        if key != "r50_3d":  # ImageNet weights: the TF-ported EfficientNet and its normalisation
            assert args["pretrained"] and args["build"]["timm_name"] == "tf_efficientnet_b7.ra_in1k"
            assert args["input_norm"]["source"] == "tf_efficientnet_b7.ra_in1k"
        else:
            assert not args["pretrained"] and args["input_norm"] == models.IDENTITY_NORM
    # the teacher a student learnt from is the trained member, as reloaded from disk
    for student, teacher in (("b7--b7", "b7"), ("b7--b7mn--b7mn", "b7--b7mn")):
        recorded = json.loads((results / student / "config.json").read_text())["teacher_weights"]
        assert recorded == models.weights_fingerprint(infer.load_member(results / teacher))
    # and a reloaded member scores every patient exactly as it did when trained
    manifest = load_manifest(tmp_path / "twin" / "manifest")
    patients = [p for split in ("train", "test")
                for p in load_cohort(manifest, split=split, resize=256, cache_dir=tmp_path / "cache")]
    _, table = infer.predict_patients(infer.load_member(results / "b7--b7mn--b7mn"), patients,
                                      arch="efficientnet_b7", crop=224, batch_size=32)
    saved = pd.read_csv(results / "b7--b7mn--b7mn" / "patient_predictions.csv", dtype={"patient_id": str},
                        float_precision="round_trip")
    assert table["score"].tolist() == saved["score"].tolist()
    for target in (t for t in targets.values() if t.kind == "notebook"):
        nb = nbformat.read(str(target.output), as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, f"{target.id}: {errors[0]}"


# --------------------------------------------------------------------------- the GPU script, CPU-safe parts


def _gpu_check(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_paper_check.py"), "--work",
                           str(tmp_path / "work"), *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT / "benchmarks")


def test_gpu_paper_check_plans_and_refuses_unknown_checks(tmp_path):
    import json

    run = _gpu_check(tmp_path, "--dry-run", "--out", str(tmp_path / "plan.json"))
    assert run.returncode == 0, run.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())["plan"]
    assert plan["scale"] == "paper" and (plan["size"], plan["resize"], plan["batch"]) == (224, 256, 32)
    assert plan["amp"] and plan["channels_last"] and plan["epochs"] == 2
    assert plan["checks"] == ["throughput", "kd_step", "pd_chain", "memory"]
    run = _gpu_check(tmp_path, "--dry-run", "--checks", "throughput,speed")
    assert run.returncode == 2 and "unknown check" in run.stderr


def test_gpu_paper_check_runs_tiny_on_the_cpu_and_writes_one_results_file(tmp_path):
    import json

    out = tmp_path / "check.json"
    run = _gpu_check(tmp_path, "--tiny", "--device", "cpu", "--out", str(out))
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    results = json.loads(out.read_text())
    checks = results["checks"]
    assert set(checks) == {"throughput", "kd_step", "memory", "pd_chain"}
    assert not [name for name, c in checks.items() if "error" in c]
    for name in ("efficientnet_b0", "efficientnet_b3", "efficientnet_b7"):
        entry = checks["throughput"]["result"][name]
        assert entry["ratio"] > 0 and entry["goal"] == 0.95
    assert set(checks["kd_step"]["result"]) == {"efficientnet_b7->efficientnet_b7", "efficientnet_b7->efficientnet_b3"}
    assert len(checks["memory"]["result"]) == len(models.PAPER_ARCHS) + 1
    assert not [k for k, v in checks["memory"]["result"].items() if "error" in v]
    chain = checks["pd_chain"]["result"]
    assert [m["member"] for m in chain["members"]] == ["b7", "b7--b7mn", "b7--b7mn--b7mn"]
    assert chain["round_trip_ok"]
