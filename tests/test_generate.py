"""Train a tiny language model through ``zoo.fit`` on a Time-Machine-format file, then generate
from its checkpoint with ``zoo generate`` (greedy and sampled)."""

from pathlib import Path

import pytest

from zoo.cli.fit import main as fit
from zoo.cli.generate import main as generate
from zoo.core.checkpoint import CheckpointError, load_checkpoint

RECIPE = Path(__file__).parents[1] / "configs" / "gru_time_machine.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    (root / "timemachine.txt").write_text("The Time Traveller, ... the Time-Traveller!\n" * 120)
    summary = fit([
        "--config", str(RECIPE), "--data.init_args.data_dir", str(root),
        "--data.init_args.max_tokens", "null", "--data.init_args.batch_size", "4",
        "--data.init_args.num_steps", "10",
        "--model.init_args.arch_kwargs", "{num_hiddens: 32}", "--model.init_args.optimizer", "adam",
        "--model.init_args.lr", "0.02", "--trainer.max_epochs", "4", "--trainer.check_val_every_n_epoch", "1",
        "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false", "--name", "tiny",
    ])  # fmt: skip
    return root / "tiny" / "version_0", summary


def test_fit_links_vocab_size_logs_perplexity_and_saves_the_vocab(trained):
    run, summary = trained
    ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")  # weights_only: the vocabulary is plain data
    vocab = ckpt["vocab"]["idx_to_token"]
    # vocab_size was linked from the data module into the model
    assert ckpt["hyper_parameters"]["vocab_size"] == len(vocab) == 1 + len(set("the time traveller"))
    assert ckpt["tokenizer"] == {"level": "char", "letters_only": True, "eos": None}
    assert 1.0 <= summary["best_val"]["val/ppl"] < 2.0  # a repeated phrase is easy to learn
    assert summary["test"]["test/ppl"] < 2.0


def test_greedy_generation_continues_the_phrase(trained, capsys):
    run, _ = trained
    ckpt = str(run / "checkpoints" / "last.ckpt")
    text = generate(["--ckpt_path", ckpt, "--prefix", "Time Traveller", "--num_tokens", "40"])
    assert text.startswith("time traveller") and len(text) == len("time traveller") + 40
    assert "the time traveller the time" in text
    assert text in capsys.readouterr().out
    assert generate(["--ckpt_path", ckpt, "--num_tokens", "40"]) == text  # greedy is deterministic


def test_temperature_sampling_is_seeded(trained):
    run, _ = trained
    args = ["--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--num_tokens", "60", "--temperature", "3"]
    a, b = generate([*args, "--seed", "1"]), generate([*args, "--seed", "1"])
    c = generate([*args, "--seed", "2"])
    assert a == b and a != c  # a hot temperature wanders from the phrase, differently per seed
    assert set(a.replace("<unk>", "")) <= set("the time traveller")


def test_bad_arguments_are_explained(trained, tmp_path, capsys):
    run, _ = trained
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        generate(["--ckpt_path", str(tmp_path / "missing.ckpt")])
    with pytest.raises(ValueError, match="no tokens"):
        generate(["--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--prefix", ""])
    for option, value in (("--temperature", "-1"), ("--num_tokens", "-5")):  # refused by the parser, one line
        with pytest.raises(SystemExit) as exit_:
            generate(["--ckpt_path", str(run / "checkpoints" / "last.ckpt"), option, value])
        assert exit_.value.code == 2
        assert f"argument {option}: expected" in capsys.readouterr().err


def test_a_prefix_outside_the_vocabulary(trained):
    ckpt = str(trained[0] / "checkpoints" / "last.ckpt")
    with pytest.raises(ValueError, match=r"holds no token of the model's vocabulary \(unknown: 'q', 'x', 'z'; known: "):
        generate(["--ckpt_path", ckpt, "--prefix", "xqz"])
    # lower-cased, "Quiz" is q, u, i, z, and only i is in "the time traveller": a warning, not an error
    with pytest.warns(UserWarning, match=r"outside the vocabulary, read as <unk>: 'q', 'u', 'z'"):
        text = generate(["--ckpt_path", ckpt, "--prefix", "Quiz", "--num_tokens", "5"])
    assert text.startswith("quiz") and len(text) == 9
