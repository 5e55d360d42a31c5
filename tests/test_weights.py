"""zoo.models.weights, every road without a download: torchvision's ResNet-18 file under its own
name in a temporary torch hub cache, a timm model in a temporary Hugging Face cache, the course's
BERT zip (written by d2l 0.17.6's own BERTModel: tests/fixtures, scripts/make_d2l_bert_fixture.py)
and its unpacked folder, each missing file's one line (at once, offline), and damaged files."""

from __future__ import annotations

import json
import shutil
import socket
import time
import zipfile
from pathlib import Path

import pytest
import torch

from datamodules.text import read_bert_vocab
from zoo.core.checkpoint import CheckpointError
from zoo.models import weights
from zoo.models.bert import BERTModel, from_course
from zoo.models.fcn import fcn_resnet18
from zoo.models.finetune import finetune

FIXTURES = Path(__file__).parent / "fixtures"
COURSE_ZIP = FIXTURES / "d2l_bert_tiny.torch.zip"
COURSE_OUTPUTS = FIXTURES / "d2l_bert_tiny_outputs.pt"
RESNET18 = "resnet18-f37072fd.pth"  # torchvision's file name for ResNet18_Weights.IMAGENET1K_V1


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache: ``$TORCH_HOME/hub/checkpoints``."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def test_a_torchvision_name_is_the_file_in_torch_hubs_cache(torch_home):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    source = resnet18(weights=None)  # torchvision's own key names, random values
    torch.save(source.state_dict(), torch_home / RESNET18)
    assert weights.resolve("IMAGENET1K_V1", "resnet18") == torch_home / RESNET18
    assert weights.resolve("ResNet18_Weights.DEFAULT", "resnet18") == torch_home / RESNET18
    fcn = fcn_resnet18(backbone="torchvision", weights="IMAGENET1K_V1")  # configs/fcn_voc.yaml's
    assert torch.equal(fcn.backbone[0].weight, source.conv1.weight)  # the course's children()[:-2]
    tuned = finetune(num_classes=5, backbone="resnet18", weights="IMAGENET1K_V1")  # timm's ResNet: the same keys
    assert torch.equal(tuned.backbone.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    with pytest.raises(ValueError, match="ResNet18_Weights has IMAGENET1K_V1, DEFAULT"):
        weights.resolve("IMAGENET1K_V9", "resnet18")


def test_a_missing_torchvision_file_offline_is_one_line_at_once(torch_home, offline):
    start = time.perf_counter()
    with pytest.raises(weights.MissingWeights) as e:
        fcn_resnet18(backbone="torchvision", weights="IMAGENET1K_V1")
    assert time.perf_counter() - start < 2
    assert str(e.value) == (
        f"weights='IMAGENET1K_V1' for torchvision's resnet18: {RESNET18} is not in torch hub's cache {torch_home} "
        "(the one folder torchvision looks in: $TORCH_HOME/hub/checkpoints) and this machine is offline; on a "
        f"machine with internet run `curl -L --create-dirs -o {torch_home / RESNET18} "
        f"https://download.pytorch.org/models/{RESNET18}` and copy the file to the same place here (or pass its path "
        "as weights)"
    )


def test_an_unresolvable_host_counts_as_offline_within_the_probe(torch_home, monkeypatch):
    def hang(*args, **kwargs):  # an offline resolver: it answers after a minute
        time.sleep(60)

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    monkeypatch.setattr(weights, "PROBE_SECONDS", 0.2)
    start = time.perf_counter()
    with pytest.raises(weights.MissingWeights, match="this machine is offline"):
        weights.load("COCO_V1", "ssdlite320_mobilenet_v3_large")
    assert time.perf_counter() - start < 2


def _hf_cache(root: Path, repo: str, files: dict[str, object]) -> Path:
    """Hugging Face's cache layout: ``models--<org>--<name>/{refs/main, snapshots/<rev>/<file>}``."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision)
    for name, state in files.items():
        from safetensors.torch import save_file

        save_file(state, snapshot / name)
    return snapshot


def test_timm_weights_from_the_hugging_face_cache(tmp_path, monkeypatch, offline):
    import huggingface_hub.constants
    import timm

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    torch.manual_seed(0)
    source = timm.create_model("test_resnet", pretrained=False)  # timm's tiny test network
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    snapshot = _hf_cache(tmp_path / "hub", "timm/test_resnet.r160_in1k", {"model.safetensors": state})
    assert weights.find_timm("timm/test_resnet") == snapshot / "model.safetensors"
    tuned = finetune(num_classes=3, backbone="test_resnet", pretrained=True)
    assert all(torch.equal(v, state[k]) for k, v in tuned.backbone.state_dict().items())
    from zoo.models.registry import create_model  # the competitions' form: arch timm/<name>, pretrained: true

    grey = create_model("timm/test_resnet", pretrained=True, num_classes=4, in_channels=1)
    assert grey.conv1[0].weight.shape[1] == 1 and grey.get_classifier().out_features == 4
    from zoo.tasks import Classification  # the loaded weights are never re-initialised

    with pytest.raises(ValueError, match="init='xavier' overwrites the loaded weights of 'timm/test_resnet'"):
        Classification(arch="timm/test_resnet", num_classes=2, init="xavier", arch_kwargs={"pretrained": True})


def test_course_bert_zip_matches_d2l_0176_outputs():
    """The course's layout written by d2l 0.17.6's BERTModel (tiny sizes, random weights): the
    zoo's BERT gives its encoder, MLM and NSP outputs in eval mode."""
    expected = torch.load(COURSE_OUTPUTS, weights_only=True)
    state, sizes = from_course(weights.load(COURSE_ZIP), COURSE_ZIP.name, num_heads=expected["num_heads"])
    assert sizes == {"vocab_size": 40, "num_hiddens": 16, "ffn_num_hiddens": 32, "num_heads": 2, "num_layers": 2,
                     "max_len": 24, "attention_bias": True}  # fmt: skip
    model = BERTModel(**sizes).eval()
    model.load_state_dict(state)  # strict: every tensor has its place, none is left at random
    x = [expected[k] for k in ("tokens", "segments", "valid_lens")]
    with torch.no_grad():
        encoded = model.encoder(*x)
        mlm, nsp = model(*x, expected["pred_positions"])
    for name, value in (("encoded", encoded), ("mlm", mlm), ("nsp", nsp)):
        assert value.shape == expected[name].shape
        assert (value - expected[name]).abs().max() < 1e-5, name
    vocab = read_bert_vocab(COURSE_ZIP)
    assert vocab.idx_to_token[:5] == ["<unk>", "<pad>", "<mask>", "<cls>", "<sep>"] and len(vocab) == 40


def test_course_bert_folder_and_its_vocabulary(tmp_path):
    with zipfile.ZipFile(COURSE_ZIP) as z:
        z.extractall(tmp_path)
    folder = tmp_path / "d2l_bert_tiny.torch"
    assert sorted(p.name for p in folder.iterdir()) == ["pretrained.params", "vocab.json"]
    assert weights.course_bundle(folder) and weights.course_bundle(COURSE_ZIP)
    assert weights.load(folder).keys() == weights.load(COURSE_ZIP).keys()
    assert read_bert_vocab(folder).idx_to_token == json.loads((folder / "vocab.json").read_text())
    with pytest.raises(ValueError, match="do not record their heads; pass arch_kwargs num_heads"):
        from_course(weights.load(folder), folder.name)


def test_damaged_course_files_are_one_line(tmp_path):
    data = COURSE_ZIP.read_bytes()
    small = tmp_path / "bert.small.torch.zip"  # the course's name: its SHA-1 is checked first
    small.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"^{small}: SHA-1 [0-9a-f]{{40}} is not the course's "
                       r"c72329e68a732bef0452e4b96a1c341c8910f81f for bert.small.torch.zip \(15,016 bytes: a truncated "
                       r"or changed download\); fetch it again on a machine with internet: `curl -L -o "
                       r"bert.small.torch.zip http://d2l-data.s3-accelerate.amazonaws.com/bert.small.torch.zip`$"):
        weights.load(small)
    other = tmp_path / "mine.torch.zip"
    other.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"^{other}: not a readable zip archive \(.*\): truncated or another format$"):
        read_bert_vocab(other)
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "pretrained.params").write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match=rf"{folder}/pretrained.params: not a readable PyTorch checkpoint"):
        weights.load(folder)


def test_weights_of_another_architecture_name_the_first_three(tmp_path):
    from torchvision.models import resnet18, resnet34

    path = tmp_path / "resnet34.pth"
    torch.save(resnet34(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"resnet34.pth: not weights of this ResNet: \d+ unexpected "
                       r"\(layer1.2.conv1.weight, layer1.2.bn1.weight, layer1.2.bn1.bias \(\+\d+ more\)\)"):
        weights.load_into(resnet18(weights=None), path)
    text = tmp_path / "notes.pth"  # a download that saved the server's error page
    text.write_text("<html><body>403 Forbidden</body></html>\n")
    with pytest.raises(CheckpointError, match=rf"{text}: not a readable PyTorch checkpoint"):
        weights.load_into(resnet18(weights=None), text)


def test_a_copied_cache_file_is_found_by_path_too(torch_home, tmp_path):
    from torchvision.models import resnet18

    torch.save(resnet18(weights=None).state_dict(), torch_home / RESNET18)
    copy = shutil.copy(torch_home / RESNET18, tmp_path / "mine.pth")
    assert weights.load(copy).keys() == weights.load("IMAGENET1K_V1", "resnet18").keys()
