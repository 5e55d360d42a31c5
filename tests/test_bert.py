"""BERT: the masking of the pretraining data (proportions, the 80/10/10 split, fresh masks per
batch), next-sentence pairs, the WikiText-2 files read by the data module, and the model's shapes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from datamodules import WikiText2BERT
from datamodules.text import Vocab
from datamodules.wikitext_bert import RESERVED, mask_tokens, nsp_pairs, read_paragraphs
from zoo.models.registry import create_model


def write_wiki(folder: Path, paragraphs: int = 120, seed: int = 0, names=("wiki.valid.tokens", "wiki.test.tokens"),
               words: int = 40) -> Path:  # fmt: skip
    """WikiText-2 files as the original zip lays them out (headings, blank lines, lines that
    start with a space); sentence ``i`` of paragraph ``p`` starts with the word ``s<p>_<i>``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(names):
        lines = [" = Article = ", ""]
        for p in range(paragraphs):
            sentences = [" ".join([f"s{n}x{p}_{i}"] + [f"w{rng.randrange(words)}" for _ in range(rng.randint(3, 9))])
                         for i in range(rng.randint(2, 5))]  # fmt: skip
            lines += [" " + " . ".join(sentences) + " . ", ""]
            if p % 20 == 19:
                lines += [" = = Section = = ", ""]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_masking_proportions_and_the_80_10_10_split():
    vocab = Vocab([f"w{i}" for i in range(5000)], reserved_tokens=RESERVED)
    gen = torch.Generator().manual_seed(0)
    n, T = 2000, 64
    valid_lens = torch.randint(8, T + 1, (n,))
    tokens = torch.randint(len(RESERVED) + 1, len(vocab), (n, T))
    tokens[:, 0] = vocab["<cls>"]
    sep = valid_lens // 2
    tokens[torch.arange(n), sep] = vocab["<sep>"]
    tokens[torch.arange(n), valid_lens - 1] = vocab["<sep>"]
    tokens[torch.arange(T) >= valid_lens[:, None]] = vocab["<pad>"]
    masked, positions, weights, labels = mask_tokens(tokens, valid_lens, vocab, round(0.15 * T), gen)

    counts = weights.sum(1).long()
    assert torch.equal(counts, torch.round(valid_lens * 0.15).long().clamp(min=1))  # 15% of each pair
    take = weights.bool()
    rows = torch.arange(n)[:, None].expand_as(positions)[take]
    chosen = positions[take]
    assert (chosen < valid_lens[rows]).all() and (chosen > 0).all()  # never <cls> nor padding
    assert not torch.isin(tokens[rows, chosen], torch.tensor(vocab[["<sep>", "<cls>"]])).any()
    assert torch.equal(labels[take], tokens[rows, chosen])
    gaps = positions[:, 1:] - positions[:, :-1]
    assert (gaps[take[:, 1:]] > 0).all()  # ascending, each position once
    assert (positions[~take] == 0).all() and (labels[~take] == 0).all()

    new = masked[rows, chosen]
    to_mask = (new == vocab["<mask>"]).float().mean()
    kept = (new == tokens[rows, chosen]).float().mean()
    randomised = 1 - to_mask - kept
    assert to_mask == pytest.approx(0.8, abs=0.01)
    assert kept == pytest.approx(0.1, abs=0.01) and randomised == pytest.approx(0.1, abs=0.01)
    assert (masked[rows, chosen][new != vocab["<mask>"]] > len(RESERVED)).all()  # ordinary words only
    untouched = torch.ones_like(tokens, dtype=torch.bool)
    untouched[rows, chosen] = False
    assert torch.equal(masked[untouched], tokens[untouched])


def test_next_sentence_pairs_are_half_positive(tmp_path):
    text = (write_wiki(tmp_path, paragraphs=1500) / "wiki.valid.tokens").read_text()
    paragraphs = read_paragraphs(text)
    assert all(len(p) >= 2 for p in paragraphs) and not any(w.startswith("=") for p in paragraphs for s in p for w in s)
    pairs = nsp_pairs(paragraphs, 64, random.Random(0))
    labels = torch.tensor([is_next for *_, is_next in pairs]).float()
    assert len(pairs) > 2500 and labels.mean() == pytest.approx(0.5, abs=0.025)
    for tokens, segments, is_next in pairs:
        cut = tokens.index("<sep>")
        a, b = tokens[1:cut], tokens[cut + 1 : -1]
        assert tokens[0] == "<cls>" and tokens[-1] == "<sep>" and len(tokens) <= 64
        assert segments == [0] * (cut + 1) + [1] * (len(b) + 1)
        para, i = a[0].split("_")
        if is_next:
            assert b[0] == f"{para}_{int(i) + 1}"


def test_data_module_reads_wikitext_files_and_draws_fresh_masks(tmp_path):
    write_wiki(tmp_path / "wikitext-2")
    dm = WikiText2BERT(data_dir=str(tmp_path), train_on="valid+test", batch_size=8, max_len=24, min_freq=1,
                       download=False)  # fmt: skip
    dm.setup()
    assert dm.vocab.idx_to_token[:5] == ["<unk>", "<pad>", "<mask>", "<cls>", "<sep>"]
    assert dm.vocab_size == len(dm.vocab) and "w3" in dm.vocab
    paragraphs = dm.paragraphs()
    assert len(paragraphs["val"]) == len(paragraphs["test"]) == int(0.05 * 240)
    assert sum(map(len, paragraphs.values())) == 240  # every paragraph of both files, each once
    batch = dm._train.__getitems__(list(range(8)))
    tokens, segments, valid_lens, positions, weights, labels, nsp = batch
    assert tokens.shape == segments.shape == (8, int(valid_lens.max())) and tokens.shape[1] <= 24
    assert positions.shape == weights.shape == labels.shape == (8, round(0.15 * 24)) and nsp.shape == (8,)
    assert (tokens[:, 0] == dm.vocab["<cls>"]).all()
    again = dm._train.__getitems__(list(range(8)))
    assert not torch.equal(batch[3], again[3]) or not torch.equal(batch[0], again[0])  # fresh training masks
    val = [dm._val.__getitems__([0, 1, 2]) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*val, strict=True))  # fixed validation masks


def test_data_module_names_the_missing_training_file(tmp_path):
    write_wiki(tmp_path / "wikitext-2")
    with pytest.raises(FileNotFoundError, match=r"missing train\.txt.*train_on valid\+test"):
        WikiText2BERT(data_dir=str(tmp_path), download=False).paths()


def test_bert_forward_shapes_and_padding_masked():
    torch.manual_seed(0)
    model = create_model("bert", vocab_size=30, num_hiddens=16, ffn_num_hiddens=32, num_heads=2).eval()
    tokens, segments = torch.randint(5, 30, (3, 9)), torch.tensor([[0] * 5 + [1] * 4] * 3)
    valid_lens, positions = torch.tensor([9, 6, 4]), torch.tensor([[1, 2], [1, 3], [2, 0]])
    mlm, nsp = model(tokens, segments, valid_lens, positions)
    assert mlm.shape == (3, 2, 30) and nsp.shape == (3, 2)
    assert create_model("bert", vocab_size=30, num_hiddens=16)(tokens)[0].shape == (3, 9, 30)  # every position
    padded = tokens.clone()
    padded[1, 6:] = 0
    assert torch.allclose(model(padded, segments, valid_lens, positions)[0], mlm, atol=1e-5)  # padding unseen
    classifier = create_model("bert_classifier", vocab_size=30, num_hiddens=16, num_heads=2)
    assert classifier(tokens, segments, valid_lens).shape == (3, 3)
    with pytest.raises(ValueError, match="exceed max_len=8"):
        create_model("bert", vocab_size=30, num_hiddens=16, max_len=8)(tokens)


@pytest.mark.parametrize("name", ["bert", "bert_classifier"])
def test_every_parameter_learns(name):
    model = create_model(name, vocab_size=7, num_hiddens=8)
    tokens, segments, valid_lens = torch.randint(7, (2, 5)), torch.tensor([[0, 0, 0, 1, 1]] * 2), torch.tensor([5, 3])
    extra = (torch.tensor([[1, 3], [2, 0]]),) if name == "bert" else ()  # MLM positions
    outputs = model(tokens, segments, valid_lens, *extra)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    sum(o.square().mean() for o in outputs).backward()
    assert all(torch.isfinite(o).all() for o in outputs)
    assert not [n for n, p in model.named_parameters() if p.grad is None]


def test_pretraining_shows_masked_predictions_to_wandb(tmp_path, monkeypatch):
    import lightning as L

    import zoo.tasks.bert_pretrain as bert_pretrain
    from zoo.tasks import BERTPretrain

    tables = []
    monkeypatch.setattr(bert_pretrain, "log_table", lambda trainer, *args: tables.append(args))
    write_wiki(tmp_path / "wikitext-2", paragraphs=40)
    dm = WikiText2BERT(data_dir=str(tmp_path), train_on="valid+test", batch_size=8, max_len=24, min_freq=1,
                       download=False)  # fmt: skip
    task = BERTPretrain(vocab_size=dm.vocab_size, arch_kwargs={"num_hiddens": 16, "ffn_num_hiddens": 32},
                        num_samples=3)  # fmt: skip
    quiet = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    L.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=0, **quiet).fit(task, dm)
    ((key, columns, rows),) = tables
    assert key == "val/masked_predictions" and columns == ["input", "masked words", "predicted"] and len(rows) == 3
    first = dm._val.__getitems__([0])
    assert rows[0][0] == " ".join(dm.vocab.to_tokens(first[0][0, : int(first[2][0])].tolist()))
    assert rows[0][1].split() == dm.vocab.to_tokens(first[5][0, : int(first[4][0].sum())].tolist())
    assert all(len(r[1].split()) == len(r[2].split()) >= 1 for r in rows)


def test_nsp_weight_zero_pretrains_on_mlm_alone():
    from zoo.tasks import BERTPretrain

    torch.manual_seed(0)
    tokens, segments = torch.randint(5, 30, (4, 9)), torch.tensor([[0] * 5 + [1] * 4] * 4)
    valid_lens, positions = torch.tensor([9, 8, 7, 6]), torch.tensor([[1, 2], [1, 3], [2, 0], [4, 0]])
    weights, labels = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0], [1.0, 0.0]]), torch.randint(5, 30, (4, 2))
    batch = (tokens, segments, valid_lens, positions, weights, labels, torch.tensor([0, 1, 1, 0]))
    arch_kwargs = {"num_hiddens": 16, "ffn_num_hiddens": 32, "dropout": 0.0}
    losses = {}
    for nsp_weight in (1.0, 0.0):
        torch.manual_seed(1)
        task = BERTPretrain(vocab_size=30, arch_kwargs=arch_kwargs, nsp_weight=nsp_weight)
        losses[nsp_weight] = loss = task._step(batch, "train")
        loss.backward()
    mlm_logits, nsp_logits = task.model(*batch[:4])
    mlm = (torch.nn.functional.cross_entropy(mlm_logits.transpose(1, 2), labels, reduction="none") * weights).sum() / 6
    assert torch.allclose(losses[0.0], mlm)
    assert torch.allclose(losses[1.0] - losses[0.0], torch.nn.functional.cross_entropy(nsp_logits, batch[-1]))
    # the NSP head and its pooler learn nothing; the encoder learns from MLM
    assert not task.model.nsp.weight.grad.any() and not task.model.hidden[0].weight.grad.any()
    assert task.model.encoder.token_embedding.weight.grad.any()
