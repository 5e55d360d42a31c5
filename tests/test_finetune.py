"""Fine-tuning from a local weights file, the offline error, and the training options: the
head's own learning rate through warm-up and decay, frozen backbones, label smoothing,
channels_last."""

from __future__ import annotations

import os

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from zoo.core.checkpoint import CheckpointError
from zoo.models.finetune import finetune
from zoo.models.registry import create_model
from zoo.tasks import Classification

BACKBONE = "test_resnet"  # timm's tiny test network: 0.4M parameters, 96 features


def _saved_backbone(tmp_path, wrap=None):
    """A timm model with its own 1000-class classifier, saved as a plain state_dict."""
    torch.manual_seed(1)
    source = create_model(f"timm/{BACKBONE}")
    state = source.state_dict()
    path = tmp_path / "backbone.pth"
    torch.save(wrap(state) if wrap else state, path)
    return source, path


@pytest.mark.parametrize(
    "wrap",
    [None, lambda s: {"state_dict": {f"model.backbone.{k}": v for k, v in s.items()}, "epoch": 3}],
    ids=["state_dict", "lightning_checkpoint"],
)
def test_backbone_from_local_file_gets_a_new_head(tmp_path, wrap) -> None:
    source, path = _saved_backbone(tmp_path, wrap)
    model = finetune(num_classes=3, backbone=BACKBONE, weights=str(path))
    loaded = model.backbone.state_dict()
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in loaded.items())
    assert "fc.weight" not in loaded  # the old classifier is gone
    assert isinstance(model.head, torch.nn.Linear) and model.head.out_features == 3
    source.eval(), model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = source.forward_head(source.forward_features(x), pre_logits=True)
        assert torch.allclose(model.backbone(x), features)
        assert model(x).shape == (2, 3)


def test_rgb_weights_adapt_to_grey_inputs(tmp_path) -> None:
    source, path = _saved_backbone(tmp_path)
    model = finetune(num_classes=10, in_channels=1, backbone=BACKBONE, weights=str(path))
    stem = next(k for k, v in source.state_dict().items() if v.ndim == 4)
    grey = model.backbone.state_dict()[stem]
    assert grey.shape[1] == 1 and torch.allclose(grey, source.state_dict()[stem].sum(1, keepdim=True))
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_weights_of_another_architecture_are_refused(tmp_path) -> None:
    torch.save(create_model("resnet18").state_dict(), tmp_path / "zoo_resnet.pth")
    with pytest.raises(CheckpointError, match=r"zoo_resnet.pth: not weights of this ResNet: \d+ of its \d+ tensors "
                       r"missing \(conv1.0.weight, conv1.1.weight, conv1.1.bias \(\+\d+ more\)\); \d+ unexpected"):
        finetune(backbone=BACKBONE, weights=str(tmp_path / "zoo_resnet.pth"))
    with pytest.raises(CheckpointError, match="no such file"):
        finetune(backbone=BACKBONE, weights=str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="not both"):
        finetune(backbone=BACKBONE, pretrained=True, weights=str(tmp_path / "zoo_resnet.pth"))


class _Payload:
    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))  # runs if the file is unpickled without weights_only


def test_weights_that_would_run_code_are_refused(tmp_path) -> None:
    evil = tmp_path / "backbone.pth"
    torch.save({"conv1.weight": torch.zeros(1), "x": _Payload(tmp_path / "pwned")}, evil)
    with pytest.raises(CheckpointError, match=f"{evil}: refused to load: it asks for posix.mkdir"):
        finetune(backbone=BACKBONE, weights=str(evil))
    assert not (tmp_path / "pwned").exists()


def test_offline_pretrained_request_fails_at_once_with_the_offline_route(monkeypatch, tmp_path) -> None:
    import time

    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network here anyway: no probe either
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # and no cached copy
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"weights for timm/test_resnet: no model.safetensors or "
                       r"pytorch_model.bin of timm/test_resnet.r160_in1k in the Hugging Face cache .*hub/"
                       r"models--timm--test_resnet.r160_in1k/snapshots/\*/ .* run `hf download "
                       r"timm/test_resnet.r160_in1k model.safetensors`"):  # fmt: skip
        finetune(backbone=BACKBONE, pretrained=True)
    assert time.perf_counter() - start < 5


def _task(**kw) -> Classification:
    kw.setdefault("arch_kwargs", {"backbone": BACKBONE})
    return Classification(arch="finetune", num_classes=2, in_channels=3, **kw)


def test_head_gets_its_own_learning_rate_and_decay_only_on_weights() -> None:
    task = _task(lr=0.01, head_lr_mult=10, weight_decay=1e-3)
    opt = task.configure_optimizers()
    head = {id(p) for p in task.model.head.parameters()}
    for group in opt.param_groups:
        is_head = {id(p) in head for p in group["params"]}
        assert len(is_head) == 1
        assert group["lr"] == pytest.approx(0.1 if is_head.pop() else 0.01)
        assert group["weight_decay"] == (1e-3 if all(p.ndim > 1 for p in group["params"]) else 0.0)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(task.model.parameters()))


def test_frozen_backbone_trains_the_head_only() -> None:
    task = _task(arch_kwargs={"backbone": BACKBONE, "freeze_backbone": True})
    opt = task.configure_optimizers()
    trained = {id(p) for g in opt.param_groups for p in g["params"]}
    assert trained == {id(p) for p in task.model.head.parameters()}
    task.train()
    assert not task.model.backbone.training and task.model.head.training  # BN statistics stay put


def test_pretrained_weights_survive_task_init() -> None:
    with pytest.raises(ValueError, match="init='xavier' overwrites the loaded weights"):
        _task(init="xavier")


class _LRs(L.Callback):
    def __init__(self) -> None:
        self.seen: list[list[float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append([g["lr"] for g in trainer.optimizers[0].param_groups])


def _fit(task: Classification, epochs: int, steps_per_epoch: int = 4, **trainer_kw) -> _LRs:
    torch.manual_seed(0)
    n = steps_per_epoch * 2
    data = TensorDataset(torch.randn(n, 3, 16, 16), torch.randint(0, 2, (n,)))
    lrs = _LRs()
    trainer = L.Trainer(
        max_epochs=epochs, callbacks=[lrs], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, **trainer_kw,
    )  # fmt: skip
    trainer.fit(task, DataLoader(data, batch_size=2))
    return lrs


@pytest.mark.parametrize("scheduler", ["cosine", "step"])
def test_schedules_keep_the_head_multiple_through_warmup_and_decay(scheduler: str) -> None:
    task = _task(lr=0.1, head_lr_mult=10, scheduler=scheduler, warmup_epochs=1, step_size=1, gamma=0.5)
    seen = _fit(task, epochs=3).seen
    heads = {id(p) for p in task.model.head.parameters()}
    is_head = [id(g["params"][0]) in heads for g in task.optimizers().optimizer.param_groups]
    base = [next(lr for lr, h in zip(step, is_head, strict=True) if not h) for step in seen]
    for step in seen:
        for lr, h in zip(step, is_head, strict=True):
            assert lr == pytest.approx(base[seen.index(step)] * (10 if h else 1))
    assert base[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # linear warm-up over epoch 1
    if scheduler == "step":
        assert base[4:] == pytest.approx([0.05] * 4 + [0.025] * 4)
    else:
        assert base[4] == pytest.approx(0.1) and all(b > a for a, b in zip(base[5:], base[4:], strict=False))


def test_label_smoothing_changes_the_loss() -> None:
    x, y = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 0, 1])
    losses = []
    for smoothing in (0.0, 0.2):
        torch.manual_seed(0)
        task = _task(label_smoothing=smoothing)
        losses.append(task.training_step((x, y), 0).item())
        logits = task.model(x)
    # same seed, same model: the difference is the smoothing alone
    expected = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.2).item()
    assert losses[1] == pytest.approx(expected, rel=1e-5) and losses[0] != pytest.approx(losses[1])


def test_channels_last_option_trains() -> None:
    task = Classification(arch="resnet18", num_classes=2, in_channels=3, channels_last=True,
                          arch_kwargs={"width": 4})  # fmt: skip
    assert task.model.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    task.model.features[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    task.model(torch.randn(2, 3, 16, 16))  # a plain NCHW batch reaches the first conv as NHWC
    assert seen[0].is_contiguous(memory_format=torch.channels_last)
    _fit(task, epochs=1, steps_per_epoch=2)
    assert task.hparams.channels_last is True


@pytest.mark.parametrize(("arch", "device", "nhwc"), [("resnet18", "cuda", True), ("resnet18", "cpu", False),
                                                      ("mlp", "cuda", False)])  # fmt: skip
def test_channels_last_unset_means_on_a_gpu_for_a_convolutional_model(arch, device, nhwc) -> None:
    kwargs = {"width": 4} if arch == "resnet18" else {}
    task = Classification(arch=arch, num_classes=2, in_channels=3 if arch == "resnet18" else 12, arch_kwargs=kwargs)
    strategy = type("S", (), {"root_device": torch.device(device)})()
    task.trainer = type("T", (), {"strategy": strategy, "datamodule": None})()
    for stage in ("fit", "test"):  # setup runs once per stage: the hook is added once
        task.setup(stage)
    convs = [m for m in task.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs) is (nhwc or not convs)
    assert task.channels_last is (True if nhwc else None)
    assert len(task.model._forward_pre_hooks) == (1 if nhwc else 0)


def test_precision_unset_is_bf16_autocast_on_a_cuda_gpu_with_bf16(monkeypatch) -> None:
    from zoo.cli.fit import default_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert default_precision("auto") == default_precision(None) == default_precision("gpu") == "bf16-mixed"
    assert default_precision("cpu") is None  # a CPU run on a GPU machine stays float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert default_precision("auto") is None  # no bf16 (before Ampere): float32, not float16's loss scaling
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_precision("auto") is None
