"""Language-model data (datamodules/language_model.py) on small files in the real formats,
and the LanguageModel task's state handling."""

import hashlib
import zipfile

import pytest
import torch

from datamodules.language_model import LMBatches, PennTreebank, TimeMachine, WikiText2
from zoo.tasks.language_model import LanguageModel

BOOK = (
    "The Time Machine, by H. G. Wells [1898]\n\n\n\n\nI\n\n\n"
    "The Time Traveller (for so it will be convenient to speak of him)\n"
    "was expounding a recondite matter to us. His grey eyes shone and\n"
    "twinkled, and his usually pale face was flushed and animated.\n"
) * 20


def _epochs(ds, n):
    return [list(ds) for _ in range(n)]


def test_sequential_partitioning_continues_each_row_in_the_next_batch():
    corpus = torch.arange(1000)  # a token's value is its position
    ds = LMBatches(corpus, batch_size=4, num_steps=7, sampling="sequential", shuffle=True, seed=1)
    for batches in _epochs(ds, 5):
        assert len(batches) == len(ds) > 3
        assert [reset for _, _, reset in batches] == [True] + [False] * (len(batches) - 1)
        for (x0, _, _), (x1, _, _) in zip(batches, batches[1:], strict=False):
            assert torch.equal(x1[:, 0], x0[:, -1] + 1)  # row r goes on where it stopped
        for x, y, _ in batches:
            assert x.shape == y.shape == (4, 7)
            assert torch.equal(y, x + 1)
            assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(4, 6, dtype=torch.long))


def test_random_sampling_covers_the_corpus_once_per_epoch_and_resets_every_batch():
    T, B = 5, 3
    corpus = torch.arange(T * B * 10 + T)  # 10 batches whatever the offset
    ds = LMBatches(corpus, batch_size=B, num_steps=T, sampling="random", shuffle=True, seed=0)
    offsets, orders = set(), set()
    for batches in _epochs(ds, 20):
        assert all(reset for _, _, reset in batches)
        x = torch.cat([b[0] for b in batches])  # (windows, T)
        y = torch.cat([b[1] for b in batches])
        assert torch.equal(y, x + 1)
        starts = x[:, 0]
        seen = torch.sort(x.flatten()).values
        offset = int(seen[0])
        assert 0 <= offset < T
        # every position of [offset, offset + windows * T) exactly once: no overlap, no gap
        assert torch.equal(seen, torch.arange(offset, offset + len(x) * T))
        offsets.add(offset)
        orders.add(tuple(starts.tolist()))
    assert len(offsets) > 1 and len(orders) > 10  # a new offset and order per epoch
    # over the epochs every token of the corpus (bar the last, a target only) is an input
    covered = torch.unique(torch.cat([torch.cat([b[0] for b in e]).flatten() for e in _epochs(ds, 30)]))
    assert len(covered) >= len(corpus) - T


def test_evaluation_batches_are_fixed_and_seeds_reproduce():
    corpus = torch.arange(500)
    val = LMBatches(corpus, 4, 6, "sequential", shuffle=False)
    a, b = _epochs(val, 2)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a, b, strict=True))
    assert int(a[0][0][0, 0]) == 0
    r1 = list(LMBatches(corpus, 4, 6, "random", shuffle=True, seed=3))
    r2 = list(LMBatches(corpus, 4, 6, "random", shuffle=True, seed=3))
    assert all(torch.equal(p[0], q[0]) for p, q in zip(r1, r2, strict=True))


def test_too_short_corpus_and_bad_sampling_are_explained():
    with pytest.raises(ValueError, match="too short"):
        LMBatches(torch.arange(50), batch_size=8, num_steps=10, sampling="sequential", shuffle=False)
    with pytest.raises(ValueError, match="sampling"):
        LMBatches(torch.arange(500), 2, 3, "shuffled", shuffle=False)


def test_time_machine_reads_the_real_format_char_and_word(tmp_path):
    (tmp_path / "timemachine.txt").write_text(BOOK)
    dm = TimeMachine(data_dir=str(tmp_path), batch_size=2, num_steps=5, val_fraction=0.1, test_fraction=0.1)
    tokens = dm.tokens()
    text = "".join(tokens["train"] + tokens["val"] + tokens["test"])
    assert text.startswith("the time machine by h g wells i the time traveller for so it")
    assert set(dm.vocab.idx_to_token) <= set("abcdefghijklmnopqrstuvwxyz ") | {"<unk>"}
    assert dm.vocab_size == len(dm.vocab) and dm.vocab.idx_to_token[1] == " "  # most frequent
    assert abs(len(tokens["val"]) - 0.1 * len(text)) <= 1
    dm.setup()
    x, y, reset = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 5) and reset is True
    assert "".join(dm.vocab.to_tokens(x[0].tolist())) in "".join(tokens["train"])  # indices decode back
    words = TimeMachine(data_dir=str(tmp_path), level="word", max_tokens=30)
    train_words = words.tokens()["train"]
    assert train_words[:4] == ["the", "time", "machine", "by"] and len(train_words) == 30


def test_time_machine_missing_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so the project's ../shared copy is not found
    with pytest.raises(FileNotFoundError, match=r"timemachine\.txt.*download=False"):
        TimeMachine(data_dir=str(tmp_path / "nowhere"), download=False).tokens()


def test_time_machine_download_verifies_the_checksum(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "mirror" / "timemachine.txt"
    src.parent.mkdir()
    src.write_text(BOOK)
    monkeypatch.setattr(TimeMachine, "URL", src.as_uri())
    monkeypatch.setattr(TimeMachine, "SHA256", hashlib.sha256(BOOK.encode()).hexdigest())
    dm = TimeMachine(data_dir=str(tmp_path / "data"))
    assert dm.vocab_size > 20
    assert (tmp_path / "data" / "time_machine" / "timemachine.txt").read_text() == BOOK
    monkeypatch.setattr(TimeMachine, "SHA256", "0" * 64)
    with pytest.raises(FileNotFoundError, match="checksum mismatch"):
        TimeMachine(data_dir=str(tmp_path / "other")).tokens()
    assert not (tmp_path / "other" / "time_machine" / "timemachine.txt").exists()


PTB = {
    "train": " the cat sat on the mat \n the <unk> sat N times \n" * 30,
    "valid": " the dog sat \n a cat <unk> \n" * 20,
    "test": " the mat sat \n zebra cat \n" * 20,
}


def _write_ptb(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in PTB.items():
        (folder / f"ptb.{split}.txt").write_text(text)


def test_penn_treebank_words_with_eos_and_unk(tmp_path):
    _write_ptb(tmp_path / "ptb")
    dm = PennTreebank(data_dir=str(tmp_path), batch_size=2, num_steps=4)
    train = dm.tokens()["train"]
    assert train[:7] == ["the", "cat", "sat", "on", "the", "mat", "<eos>"]
    assert train.count("<eos>") == 60
    assert dm.vocab["<unk>"] == dm.vocab.unk and dm.vocab.idx_to_token.count("<unk>") == 1
    assert dm.vocab["zebra"] == dm.vocab.unk  # test-only word
    dm.setup()
    assert min(len(dm.train_dataloader()), len(dm.val_dataloader()), len(dm.test_dataloader())) > 0
    chars = PennTreebank(data_dir=str(tmp_path), level="char")
    assert "\n" in chars.vocab and "<eos>" not in chars.vocab


def test_penn_treebank_download_unpacks_the_zip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    archive = tmp_path / "mirror" / "ptb.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as z:  # d2l's zip holds a top folder ptb/
        for split, text in PTB.items():
            z.writestr(f"ptb/ptb.{split}.txt", text)
    monkeypatch.setattr(PennTreebank, "URL", archive.as_uri())
    monkeypatch.setattr(PennTreebank, "SHA256", hashlib.sha256(archive.read_bytes()).hexdigest())
    dm = PennTreebank(data_dir=str(tmp_path / "data"))
    assert dm.tokens()["val"][:4] == ["the", "dog", "sat", "<eos>"]
    assert (tmp_path / "data" / "ptb" / "ptb" / "ptb.train.txt").is_file()


def test_wikitext2_without_train_needs_train_on_valid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "valid.txt").write_text(" \n = Valkyria = \n \n Senjō no Valkyria 3 : <unk> \n" * 30)
    (tmp_path / "test.txt").write_text(" \n = Robert = \n \n Robert Boulter is an actor \n" * 30)
    with pytest.raises(FileNotFoundError, match="train_on valid"):
        WikiText2(data_dir=str(tmp_path)).tokens()
    dm = WikiText2(data_dir=str(tmp_path), train_on="valid")
    tokens = dm.tokens()
    assert tokens["train"][:5] == ["<eos>", "=", "Valkyria", "=", "<eos>"]
    assert tokens["val"] == tokens["test"] and tokens["val"][2] == "Robert"


class _Recorder(torch.nn.Module):
    """An RNN that records the state it was given."""

    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.RNN(5, 3, batch_first=True)
        self.seen = []

    def forward(self, X, state=None):
        self.seen.append(state)
        out, h = self.rnn(torch.nn.functional.one_hot(X, 5).float(), state)
        return out.repeat(1, 1, 2)[..., :5], h


def test_task_carries_the_detached_state_and_resets_where_the_batch_says():
    task = LanguageModel(arch="rnn", vocab_size=5, arch_kwargs={"num_hiddens": 3})
    task.model = _Recorder()
    X = torch.randint(5, (2, 4))
    task.training_step((X, X, True), 0)
    assert task.model.seen[-1] is None
    task.training_step((X, X, False), 1)
    carried = task.model.seen[-1]
    assert carried is not None and not carried.requires_grad and carried.shape == (1, 2, 3)
    task.training_step((X, X, True), 2)
    assert task.model.seen[-1] is None
    task.validation_step((X, X, False), 0)  # stages keep their own state
    assert task.model.seen[-1] is None


def test_training_batch_generator_is_restored_from_a_checkpoint_state(tmp_path):
    (tmp_path / "timemachine.txt").write_text(BOOK)

    def make() -> TimeMachine:
        dm = TimeMachine(data_dir=str(tmp_path), batch_size=2, num_steps=5, sampling="random")
        dm.setup("fit")
        return dm

    def epoch(dm: TimeMachine) -> torch.Tensor:
        return torch.cat([x for x, _, _ in dm.train_dataloader()])

    run = make()
    epoch(run)  # the first epoch moves the generator on
    state = run.state_dict()
    second = epoch(run)
    resumed = TimeMachine(data_dir=str(tmp_path), batch_size=2, num_steps=5, sampling="random")
    resumed.load_state_dict(state)  # before setup, as a checkpoint may arrive
    resumed.setup("fit")
    assert torch.equal(epoch(resumed), second)
    assert not torch.equal(epoch(make()), second)  # a fresh module would repeat the first epoch


def test_checkpoints_carry_the_generator_and_train_ppl_is_logged(tmp_path):
    import lightning as L
    import torch.nn.functional as F

    seen = []

    class Batches(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(batch)

    (tmp_path / "timemachine.txt").write_text(BOOK)
    dm = TimeMachine(data_dir=str(tmp_path), batch_size=2, num_steps=5, sampling="random")
    # lr 0: the weights stay put, so the epoch's figures can be recomputed from its batches
    task = LanguageModel(arch="gru", vocab_size=dm.vocab_size, arch_kwargs={"num_hiddens": 8}, lr=0.0)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1, logger=False, callbacks=[Batches()],
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(task, datamodule=dm)
    with torch.no_grad():  # random sampling resets the state every batch: each batch stands alone
        losses = [F.cross_entropy(task.model(X, None)[0].flatten(0, 1), Y.flatten()) for X, Y, _ in seen]
    mean = torch.stack(losses).mean()  # equal batches: the mean per token is the mean of the batches
    metrics = trainer.callback_metrics  # the training perplexity is exp of the mean loss per token
    assert float(metrics["train/loss"]) == pytest.approx(float(mean), rel=1e-5)
    assert float(metrics["train/ppl"]) == pytest.approx(float(mean.exp()), rel=1e-5)
    trainer.save_checkpoint(tmp_path / "c.ckpt")
    state = torch.load(tmp_path / "c.ckpt", weights_only=True)["TimeMachine"]["train_generator"]
    assert torch.equal(state, dm._sets["train"].generator.get_state())
