"""Translation end to end on a tiny fra.txt: zoo.fit with the recipes, the checkpoint's
vocabularies, zoo translate, and the course's BLEU on hand-computed pairs."""

import random
from pathlib import Path

import pytest
import torch

from zoo.cli.fit import main as fit
from zoo.cli.translate import main as translate
from zoo.ops.bleu import course_bleu

CONFIGS = Path(__file__).parents[1] / "configs"
EN = "one two three four five six seven eight nine ten".split()
FR = "un deux trois quatre cinq six sept huit neuf dix".split()


def write_counting_pairs(folder: Path, n: int = 240, seed: int = 0) -> Path:
    """``fra.txt`` of ``n`` distinct pairs "One three." -> "Un trois !": a word-for-word code a
    tiny model learns in a few epochs."""
    rng = random.Random(seed)
    lines: set[str] = set()
    while len(lines) < n:
        idx = [rng.randrange(10) for _ in range(rng.randint(1, 4))]
        lines.add(" ".join(EN[i] for i in idx).capitalize() + ".\t" + " ".join(FR[i] for i in idx).capitalize() + " !")
    folder.mkdir(parents=True, exist_ok=True)
    ordered = sorted(lines)
    rng.shuffle(ordered)  # held-out pairs of every length, not only the longest
    (folder / "fra.txt").write_text("\n".join(ordered) + "\n", encoding="utf-8")
    return folder


def fit_args(recipe: str, data: Path, root: Path, *extra: str) -> list[str]:
    return ["--config", str(CONFIGS / f"{recipe}.yaml"), "--data.init_args.data_dir", str(data),
            "--data.init_args.num_examples", "200", "--data.init_args.val_size", "20",
            "--data.init_args.test_size", "20", "--data.init_args.batch_size", "16",
            "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("nmt")
    data = write_counting_pairs(root / "data")
    summary = fit(fit_args("bahdanau_fra_eng", data, root, "--trainer.max_epochs", "10",
                           "--trainer.check_val_every_n_epoch", "5", "--data.init_args.batch_size", "32",
                           "--model.init_args.lr", "0.02", "--model.init_args.arch_kwargs",
                           "{embed_size: 16, num_hiddens: 32, num_layers: 1, dropout: 0.0}",
                           "--name", "tiny"))  # fmt: skip
    return root / "tiny" / "version_0" / "checkpoints" / "last.ckpt", summary


@pytest.mark.parametrize("recipe", ["seq2seq_fra_eng", "transformer_fra_eng"])
def test_fast_dev_run(recipe, tmp_path):
    summary = fit(fit_args(recipe, write_counting_pairs(tmp_path / "data"), tmp_path, "--trainer.fast_dev_run", "1"))
    assert summary["test"]["test/loss"] > 0 and 0 <= summary["test"]["test/bleu"] <= 100


def test_fit_learns_and_keeps_the_vocabularies(trained):
    ckpt_path, summary = trained
    assert summary["test"]["test/bleu"] > 10  # held-out sentences
    # the course's recipes have no meaningful validation: the lowest training loss picks the checkpoint,
    # which is saved at an epoch's end (not only every check_val_every_n_epoch), and metrics.json keeps it
    assert summary["best_val"] == {} and summary["best_train"]["train/loss"] <= summary["final_train"]["train/loss"]
    assert Path(summary["best_checkpoint"]).name.startswith("best-") and summary["final_train"]["train/loss"] > 0
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    src, tgt = ckpt["src_vocab"]["idx_to_token"], ckpt["tgt_vocab"]["idx_to_token"]
    assert list(ckpt["hyper_parameters"]["vocab_size"]) == [len(src), len(tgt)]  # linked from the data
    assert src[:4] == tgt[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"] and "seven" in src and "sept" in tgt


def test_translate_prints_translations_bleu_and_attention(trained, tmp_path, capsys):
    ckpt_path, _ = trained
    png = tmp_path / "attention.png"
    results = translate(["--ckpt_path", str(ckpt_path), "One two.", "Seven zebra.", "--beam", "2",
                         "--references", "Un deux !", "Sept !", "--attention_png", str(png)])  # fmt: skip
    out, err = capsys.readouterr()
    assert [r.source for r in results] == ["one two .", "seven zebra ."]
    assert out.splitlines()[0].startswith("one two . => ") and ", bleu " in out
    assert "read as <unk>: zebra" in err
    assert all(0.0 <= r.bleu <= 1.0 for r in results)
    assert results[0].attention.shape == (len(results[0].translation.split()) + 1, 4)
    assert png.read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "in.txt").write_text("One two.\nSeven zebra.\n")
    again = translate(["--ckpt_path", str(ckpt_path), "--file", str(tmp_path / "in.txt"), "--beam", "2"])
    assert [r.translation for r in again] == [r.translation for r in results]


def test_translate_refuses_bad_input(trained, tmp_path):
    ckpt = str(trained[0])
    with pytest.raises(ValueError, match="sentence 2 is empty"):
        translate(["--ckpt_path", ckpt, "go .", "  "])
    (tmp_path / "in.txt").write_text("go .\n\ni lost .\n")
    with pytest.raises(ValueError, match="sentence 2 is empty"):
        translate(["--ckpt_path", ckpt, "--file", str(tmp_path / "in.txt")])
    with pytest.raises(ValueError, match="1 references for 2 sentences"):
        translate(["--ckpt_path", ckpt, "go .", "hi .", "--references", "va !"])
    with pytest.raises(ValueError, match="arguments or --file"):
        translate(["--ckpt_path", ckpt])
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.ckpt: (refused to load|not a readable)"):
        translate(["--ckpt_path", str(tmp_path / "bad.ckpt"), "go ."])


def test_course_bleu_on_hand_computed_pairs():
    assert course_bleu("va !", "va !") == 1.0
    # the course's own printed example: "he's calm . => il est riche ., bleu 0.658"
    # p1 = 3/4, p2 = 1/3: (3/4) ** (1/2) * (1/3) ** (1/4)
    assert course_bleu("il est riche .", "il est calme .") == pytest.approx(0.658, abs=5e-4)
    # too short: brevity exp(1 - 5/3); p1 = 3/3, p2 = 1/2
    expected = torch.tensor(1 - 5 / 3).exp().item() * 0.5**0.25
    assert course_bleu("je suis .", "je suis chez moi .") == pytest.approx(expected)
    # each reference n-gram matches once: p1 = 1/3 ("!" once), p2 = 0
    assert course_bleu("! ! !", "va !") == 0.0
    assert course_bleu("! ! !", "va !", k=1) == pytest.approx(1 / 3 ** 0.5)
    assert course_bleu("", "va !") == 0.0 and course_bleu("va", "va !") == 0.0  # the course divides by 0


@pytest.mark.parametrize(("recipe", "epochs"), [("seq2seq_fra_eng", 300), ("bahdanau_fra_eng", 250),
                                                ("transformer_fra_eng", 200)])  # fmt: skip
def test_recipes_carry_the_course_settings(recipe, epochs, tmp_path):
    from zoo.cli.fit import make_cli

    data = write_counting_pairs(tmp_path / "data", n=1000)
    cli = make_cli(["--config", str(CONFIGS / f"{recipe}.yaml"), "--data.init_args.data_dir", str(data),
                    "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip
    hp, dm, trainer = cli.model.hparams, cli.datamodule, cli.trainer
    assert (hp.optimizer, hp.lr, hp.init, trainer.max_epochs, trainer.gradient_clip_val) == ("adam", 0.005, "xavier",
                                                                                             epochs, 1.0)  # fmt: skip
    assert (dm.batch_size, dm.num_steps, dm.num_examples, dm.min_freq) == (64, 10, 600, 2)
    sizes = {"num_hiddens": 32, "num_layers": 2, "dropout": 0.1}
    sizes.update({"ffn_num_hiddens": 64, "num_heads": 4} if hp.arch == "transformer" else {"embed_size": 32})
    assert hp.arch_kwargs == sizes and hp.select_by == "train/loss"
