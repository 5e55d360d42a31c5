"""A checkpoint written before the zoo's modules moved keeps loading: ``fixtures/
gru_time_machine_dd542b7.ckpt`` is a 16-unit GRU (``configs/gru_time_machine.yaml``, one epoch of
two batches) that ``zoo.fit`` wrote at commit dd542b7, with its class path, hyperparameters,
vocabulary and loop state. Its generations below were printed by that commit's ``zoo generate``."""

from __future__ import annotations

from pathlib import Path

import torch

from zoo.cli.generate import main as generate
from zoo.core.checkpoint import load_checkpoint, load_task
from zoo.tasks import LanguageModel

FIXTURE = Path(__file__).parent / "fixtures" / "gru_time_machine_dd542b7.ckpt"


def test_the_old_checkpoint_loads_as_the_same_task_with_its_vocabulary():
    ckpt = load_checkpoint(FIXTURE, require=("state_dict",))
    assert ckpt["hyper_parameters"]["_class_path"] == "zoo.tasks.LanguageModel" and ckpt["global_step"] == 2
    task = load_task(FIXTURE, LanguageModel)
    assert isinstance(task, LanguageModel) and task.hparams.arch == "gru"
    assert len(task.vocab) == task.hparams.vocab_size == 28
    saved = {k: v for k, v in ckpt["state_dict"].items() if torch.is_tensor(v)}
    assert all(torch.equal(task.state_dict()[k], v) for k, v in saved.items())


def test_the_old_checkpoint_generates_what_it_generated_then(capsys):
    args = ["--ckpt_path", str(FIXTURE), "--prefix", "time traveller", "--num_tokens", "30"]
    assert generate(args) == "time traveller   llxl    llxl    llxl    llx"
    sampled = "time traveller<unk>av afktvvgfgugtqgnl<unk>ugspjbh j"
    assert generate([*args, "--temperature", "0.8", "--seed", "3"]) == sampled
