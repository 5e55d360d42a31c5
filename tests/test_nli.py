"""NLI: BERT fine-tuned from a pretraining checkpoint of ours (its encoder arrives unchanged, the
fine-tuned checkpoint stands alone), decomposable attention from scratch or from GloVe vectors,
``zoo nli``, and a two-process DDP run whose logged test accuracy is the whole test split's."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch
from ddp import fit_in_subprocess
from test_snli import SUBJECTS, VERBS, write_snli

from datamodules import SNLI
from datamodules.text import Vocab
from zoo.cli.fit import main as fit
from zoo.cli.fit import make_cli
from zoo.cli.nli import main as nli
from zoo.core.checkpoint import CheckpointError, load_checkpoint, load_task
from zoo.models import weights
from zoo.models.bert import from_course
from zoo.tasks.nli import NLI

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / "configs"
TINY_BERT = "{num_hiddens: 16, ffn_num_hiddens: 32, num_heads: 2, num_layers: 1, dropout: 0.0}"
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def write_wiki_of_snli_words(folder: Path, paragraphs: int = 60) -> Path:
    """``valid.txt`` and ``test.txt`` (pytorch/examples' names) of sentences in the SNLI files' words."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("valid.txt", "test.txt"):
        lines = [" = Title = ", ""]
        for _ in range(paragraphs):
            sentences = [f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)}" for _ in range(rng.randint(2, 4))]
            lines += [" " + " . ".join(sentences) + " . ", ""]
        (folder / name).write_text("\n".join(lines), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bert")
    fit(["--config", str(CONFIGS / "bert_pretrain_wikitext2.yaml"), "--data.init_args.data_dir",
         str(write_wiki_of_snli_words(root / "wiki")), "--data.init_args.batch_size", "16",
         "--data.init_args.max_len", "24", "--data.init_args.min_freq", "1", "--data.init_args.download", "false",
         "--model.init_args.arch_kwargs", TINY_BERT, "--trainer.max_steps", "4", "--trainer.val_check_interval", "2",
         "--trainer.default_root_dir", str(root), "--name", "pre", *QUIET])  # fmt: skip
    return root / "pre" / "version_0" / "checkpoints" / "last.ckpt"


def test_the_pretrained_encoder_arrives_unchanged(pretrained):
    ckpt = load_checkpoint(pretrained)
    assert ckpt["vocab"]["idx_to_token"][:5] == ["<unk>", "<pad>", "<mask>", "<cls>", "<sep>"]
    task = NLI(arch="bert_classifier", pretrained=str(pretrained), arch_kwargs={"dropout": 0.1})
    own = task.model.state_dict()
    parts = [k for k in own if k.startswith(("encoder.", "hidden."))]
    assert len(parts) > 10 and all(torch.equal(own[k], ckpt["state_dict"][f"model.{k}"]) for k in parts)
    assert "model.head.weight" not in ckpt["state_dict"] and own["head.weight"].shape == (3, 16)
    assert task.hparams.pretrained is None and task.hparams.vocab_size == len(ckpt["vocab"]["idx_to_token"])
    assert task.hparams.arch_kwargs == {"num_hiddens": 16, "ffn_num_hiddens": 32, "num_heads": 2, "num_layers": 1,
                                        "dropout": 0.1}  # fmt: skip
    with pytest.raises(ValueError, match=r"\['num_hiddens'\] differ from the pretrained"):
        NLI(arch="bert_classifier", pretrained=str(pretrained), arch_kwargs={"num_hiddens": 32})
    torch.save({"state_dict": {}, "hyper_parameters": {}}, pretrained.parent / "other.ckpt")
    with pytest.raises(CheckpointError, match="holds no vocabulary"):
        NLI(arch="bert_classifier", pretrained=str(pretrained.parent / "other.ckpt"))


def test_reset_pooler_loads_the_encoder_only(pretrained):
    state = load_checkpoint(pretrained)["state_dict"]
    own = NLI(arch="bert_classifier", pretrained=str(pretrained), reset_pooler=True).model.state_dict()
    assert all(torch.equal(own[k], state[f"model.{k}"]) for k in own if k.startswith("encoder."))
    assert not torch.equal(own["hidden.0.weight"], state["model.hidden.0.weight"])
    assert not torch.equal(own["hidden.0.bias"], state["model.hidden.0.bias"])


def test_bert_fine_tuning_and_the_nli_command(pretrained, tmp_path, capsys):
    data = write_snli(tmp_path / "snli", {"dev": 60, "test": 30})
    summary = fit(["--config", str(CONFIGS / "bert_snli.yaml"), "--model.init_args.pretrained", str(pretrained),
                   "--data.init_args.vocab_from", str(pretrained), "--data.init_args.data_dir", str(data),
                   "--data.init_args.download", "false", "--data.init_args.batch_size", "16",
                   "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path), "--name", "ft",
                   *QUIET])  # fmt: skip
    assert 0 <= summary["test"]["test/acc"] <= 1 and summary["test"]["test/loss"] > 0
    ckpt = tmp_path / "ft" / "version_0" / "checkpoints" / "last.ckpt"
    saved = load_checkpoint(ckpt)
    assert saved["input_format"] == "bert" and saved["max_len"] == 128
    moved = shutil.move(pretrained, pretrained.with_suffix(".moved"))  # the fine-tuned checkpoint stands alone
    try:
        capsys.readouterr()
        result = nli(["--ckpt_path", str(ckpt), "A man runs.", "A woman sleeps!", "--all"])
    finally:
        shutil.move(moved, pretrained)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{result.label} {result.probability:.3f}" and len(out) == 4
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.probability == max(result.probabilities.values())
    other = tmp_path / "other_vocab.ckpt"
    torch.save({"vocab": Vocab(reserved_tokens=("<pad>", "<mask>", "<cls>", "<sep>", "man")).to_dict()}, other)
    with pytest.raises(ValueError, match="not the pretrained model's"):  # data tokenised with another vocabulary
        fit(["--config", str(CONFIGS / "bert_snli.yaml"), "--model.init_args.pretrained", str(pretrained),
             "--data.init_args.vocab_from", str(other), "--data.init_args.data_dir", str(data),
             "--trainer.fast_dev_run", "1", "--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip


def test_fine_tuning_from_the_courses_bert_zip_with_one_option(tmp_path):
    """d2l 0.17.6's layout (tests/fixtures): weights and vocabulary from --model.init_args.pretrained."""
    course = Path(__file__).parent / "fixtures" / "d2l_bert_tiny.torch.zip"
    data = write_snli(tmp_path / "snli", {"dev": 40, "test": 10})
    cli = make_cli(["--config", str(CONFIGS / "bert_snli.yaml"), "--model.init_args.pretrained", str(course),
                    "--model.init_args.arch_kwargs", "{num_heads: 2, dropout: 0.1}", "--data.init_args.data_dir",
                    str(data), "--data.init_args.download", "false", "--data.init_args.max_len", "24",
                    "--trainer.default_root_dir", str(tmp_path), *QUIET])  # fmt: skip
    assert cli.datamodule.vocab.idx_to_token == cli.model.vocab.idx_to_token and len(cli.model.vocab) == 40
    state, _ = from_course(weights.load(course), course.name, num_heads=2)
    own = cli.model.model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items() if k.startswith(("encoder.", "hidden.")))
    assert cli.model.hparams.arch_kwargs["attention_bias"] is True
    summary = fit(["--config", str(CONFIGS / "bert_snli.yaml"), "--model.init_args.pretrained", str(course),
                   "--model.init_args.arch_kwargs", "{num_heads: 2}", "--data.init_args.data_dir", str(data),
                   "--data.init_args.download", "false", "--data.init_args.max_len", "24", "--trainer.max_epochs", "1",
                   "--trainer.default_root_dir", str(tmp_path), "--name", "course", *QUIET])  # fmt: skip
    assert 0 <= summary["test"]["test/acc"] <= 1


def test_a_damaged_course_zip_is_its_sha1_line_before_the_data_reads_it(tmp_path):
    bad = tmp_path / "bert.small.torch.zip"
    bad.write_bytes((Path(__file__).parent / "fixtures" / "d2l_bert_tiny.torch.zip").read_bytes()[:1000])
    data = write_snli(tmp_path / "snli", {"dev": 10, "test": 10})
    with pytest.raises(CheckpointError, match=r"bert.small.torch.zip: SHA-1 \w+ is not the course's c72329e6"):
        make_cli(["--config", str(CONFIGS / "bert_snli.yaml"), "--model.init_args.pretrained", str(bad),
                  "--data.init_args.data_dir", str(data), "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip


def test_decomposable_attention_from_glove_vectors(tmp_path):
    data = write_snli(tmp_path / "snli", {"dev": 40, "test": 10})
    glove = tmp_path / "glove.txt"
    glove.write_text("man 1 2 3 4\nruns -1 0.5 0 2\nzebra 9 9 9 9\n", encoding="utf-8")
    dm = SNLI(data_dir=str(data), train_split="dev", val_fraction=0.2, min_freq=1, download=False)
    task = NLI(vocab_size=dm.vocab_size, arch_kwargs={"embed_size": 4, "num_hiddens": 8}, embedding=str(glove))
    # max_steps=0: the setup hooks run (and read the vectors), no training step
    L.Trainer(max_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False).fit(task, dm)  # fmt: skip
    table = task.model.embedding.weight
    assert table[dm.vocab["man"]].tolist() == [1, 2, 3, 4] and table[dm.vocab["runs"]].tolist() == [-1, 0.5, 0, 2]
    assert table[dm.vocab["woman"]].abs().sum() == 0  # not in the file: zeros, as the course
    with pytest.raises(SystemExit, match=r"error: word vectors .*nope\.txt not found: get glove\.6B\.100d"):
        fit(["--config", str(CONFIGS / "decomposable_attention_snli.yaml"), "--data.init_args.data_dir", str(data),
             "--model.init_args.embedding", str(tmp_path / "nope.txt"), "--trainer.fast_dev_run", "1",
             "--trainer.default_root_dir", str(tmp_path), *QUIET], one_line_errors=True)  # fmt: skip


def _accuracy(task: NLI, dm: SNLI, indices: list[int]) -> float:
    *inputs, y = dm._test.__getitems__(indices)
    with torch.no_grad():
        return float((task.model(*inputs).argmax(-1) == y).float().mean())


def test_two_process_ddp_logs_the_global_test_accuracy(tmp_path):
    data = write_snli(tmp_path / "snli", {"dev": 84, "test": 42}, dashes=2)  # 40 test pairs: no padding
    args = ["--config", str(CONFIGS / "decomposable_attention_snli.yaml"), "--data.init_args.data_dir", str(data),
            "--data.init_args.download", "false", "--data.init_args.min_freq", "1", "--data.init_args.max_len", "8",
            "--data.init_args.batch_size", "8", "--model.init_args.arch_kwargs", "{embed_size: 8, num_hiddens: 16}",
            "--model.init_args.lr", "0.01", "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path),
            "--name", "ddp", "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "2",
            *QUIET]  # fmt: skip
    metrics = fit_in_subprocess(args, tmp_path / "ddp" / "version_0", timeout=180)
    task = load_task(metrics["best_checkpoint"], NLI).eval()
    dm = SNLI(data_dir=str(data), train_split="dev", val_fraction=0.1, min_freq=1, max_len=8, download=False)
    dm.setup()
    assert len(dm._test) == 40 and task.vocab == dm.vocab
    whole = _accuracy(task, dm, list(range(40)))
    assert metrics["test"]["test/acc"] == pytest.approx(whole, abs=1e-6)
    halves = [_accuracy(task, dm, list(range(r, 40, 2))) for r in (0, 1)]  # DistributedSampler's split
    assert halves[0] != halves[1]  # so a rank's own accuracy would not have passed


def test_validation_predictions_go_to_wandb(tmp_path, monkeypatch):
    import zoo.tasks.nli as nli_task

    tables = []
    monkeypatch.setattr(nli_task, "log_table", lambda trainer, *args: tables.append(args))
    dm = SNLI(data_dir=str(write_snli(tmp_path, {"dev": 40, "test": 10})), train_split="dev", val_fraction=0.2,
              min_freq=1, batch_size=8, download=False)  # fmt: skip
    task = NLI(vocab_size=dm.vocab_size, arch_kwargs={"embed_size": 4, "num_hiddens": 8}, num_samples=3)
    quiet = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    L.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0, **quiet).fit(task, dm)
    ((key, columns, rows),) = tables
    assert key == "val/predictions" and columns[:4] == ["premise", "hypothesis", "label", "predicted"]
    premise, hypothesis, label = dm.examples()["val"][0]
    assert rows[0][:3] == [" ".join(premise), " ".join(hypothesis), ["entailment", "contradiction", "neutral"][label]]
    assert len(rows) == 3 and all(1 / 3 <= r[4] <= 1 for r in rows)
