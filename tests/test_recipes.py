"""Every recipe in configs/ parses and builds its task, data module and trainer, and the
course's settings in the foundation recipes are the ones the course uses."""

from pathlib import Path

import pytest
import torch

from zoo.cli.fit import make_cli

RESNET18 = "resnet18-f37072fd.pth"

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("recipe", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_recipe_builds(recipe, tmp_path, monkeypatch):
    # text data modules read their corpus when built (the vocabulary size is linked into the
    # model): give them a small one where they look by default, ./data
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "timemachine.txt").write_text("The Time Machine, by H. G. Wells\n" * 50)
    if "fra_eng" in recipe.stem:  # the translation recipes hold out pairs beyond their training pairs
        (tmp_path / "data" / "fra.txt").write_text("".join(f"Go {i}.\tVa {i} !\n" for i in range(160_000)))
    if "ptb" in recipe.stem:  # Penn Treebank's three files, one sentence a line
        for name in ("train", "valid", "test"):
            (tmp_path / "data" / f"ptb.{name}.txt").write_text(" the cat sat on the mat \n" * 50)
    if "wikitext2" in recipe.stem:  # WikiText-2's valid and test files: paragraphs of two sentences
        for name in ("valid.txt", "test.txt"):
            (tmp_path / "data" / name).write_text(" = Title = \n\n" + " the cat sat . the dog ran . \n\n" * 100)
    if "snli" in recipe.stem:  # SNLI's jsonl dev and test files
        row = '{"gold_label": "neutral", "sentence1": "A man runs.", "sentence2": "A man sleeps."}\n'
        (tmp_path / "data" / "snli_1.0").mkdir()
        for name in ("dev", "test"):
            (tmp_path / "data" / "snli_1.0" / f"snli_1.0_{name}.jsonl").write_text(row * 20)
    if recipe.stem == "fcn_voc":  # IMAGENET1K_V1: torchvision's file under its own name in torch hub's cache
        from torchvision.models import resnet18

        monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
        (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
        torch.save(resnet18(weights=None).state_dict(), tmp_path / "torch" / "hub" / "checkpoints" / RESNET18)
    monkeypatch.chdir(tmp_path)
    cli = make_cli(["--config", str(recipe), "--trainer.default_root_dir", str(tmp_path)])
    assert cli.trainer.max_epochs >= 1
    assert sum(p.numel() for p in cli.model.parameters()) > 0


@pytest.mark.parametrize(
    ("recipe", "expected"),
    [
        ("lenet_fashion_mnist", {"lr": 0.9, "batch_size": 256, "epochs": 10, "init": "xavier"}),
        ("softmax_regression_fashion_mnist", {"lr": 0.1, "batch_size": 256, "epochs": 10}),
        ("mlp_fashion_mnist", {"lr": 0.1, "batch_size": 256, "epochs": 10}),
        ("dropout_mlp_fashion_mnist", {"lr": 0.5, "batch_size": 256, "epochs": 10}),
    ],
)
def test_course_settings(recipe, expected, tmp_path):
    cli = make_cli(["--config", str(CONFIGS[0].parent / f"{recipe}.yaml"), "--trainer.default_root_dir", str(tmp_path)])
    hp = cli.model.hparams
    assert hp.lr == expected["lr"] and hp.optimizer == "sgd"
    assert cli.datamodule.batch_size == expected["batch_size"]
    assert cli.trainer.max_epochs == expected["epochs"]
    if "init" in expected:
        assert hp.init == expected["init"]


def test_dropout_recipe_has_the_course_rates(tmp_path):
    import torch

    cli = make_cli(["--config", str(CONFIGS[0].parent / "dropout_mlp_fashion_mnist.yaml"),
                    "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip
    assert [m.p for m in cli.model.modules() if isinstance(m, torch.nn.Dropout)] == [0.2, 0.5]


def test_weight_decay_spares_biases(tmp_path):
    cli = make_cli(["--config", str(CONFIGS[0].parent / "weight_decay.yaml"),
                    "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip
    assert cli.datamodule.in_features == 200
    groups = cli.model.configure_optimizers().param_groups
    decay = {tuple(p.shape): g["weight_decay"] for g in groups for p in g["params"]}
    assert decay == {(1, 200): 3.0, (1,): 0.0}
