"""word2vec's data and loss: subsampling, windows, negative sampling by unigram^0.75 and the
masked loss, measured on generated corpora written as PTB files."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from datamodules.word2vec import (
    PTBWord2Vec,
    centers_and_contexts,
    keep_probabilities,
    negatives,
    noise_weights,
    subsample,
)
from zoo.models.registry import create_model
from zoo.tasks.word2vec import example_loss


def write_ptb(folder: Path, n_train: int = 400, n_other: int = 40, vocab: int = 30, seed: int = 0) -> Path:
    """``ptb.{train,valid,test}.txt`` of Zipf-distributed words ``w0``.. (``w0`` the most frequent),
    one sentence of 1-12 words a line, with PTB's leading space and some ``<unk>``."""
    rng = random.Random(seed)
    words, weights = [f"w{i}" for i in range(vocab)], [1 / (i + 1) for i in range(vocab)]

    def lines(n: int) -> str:
        return "".join(" " + " ".join(rng.choices([*words, "<unk>"], [*weights, 0.05], k=rng.randint(1, 12))) + " \n"
                       for _ in range(n))  # fmt: skip

    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("valid", n_other), ("test", n_other)):
        (folder / f"ptb.{name}.txt").write_text(lines(n), encoding="utf-8")
    return folder


def test_noise_words_follow_unigram_to_the_075_and_avoid_contexts(tmp_path):
    dm = PTBWord2Vec(data_dir=str(write_ptb(tmp_path, n_train=2000)), min_freq=1, download=False)
    counts = dm.counts()  # from the file, through the data module's reading
    V, K = len(counts), 5
    assert counts[dm.vocab.unk] == 0 and (counts[1:] > 0).all()
    rare = V - 1  # every row's one context word: never drawn as noise
    contexts = torch.full((20000, 10), -1)
    contexts[:, 0] = rare
    noise = negatives(contexts, torch.ones(20000, dtype=torch.long), noise_weights(counts), K,
                      torch.Generator().manual_seed(0))[:, :K]  # fmt: skip
    drawn = torch.bincount(noise.flatten(), minlength=V).double()
    assert drawn[dm.vocab.unk] == 0 and drawn[rare] == 0
    expected = counts.double() ** 0.75
    expected[[dm.vocab.unk, rare]] = 0
    expected = expected / expected.sum() * noise.numel()
    sigma = expected.sqrt().clamp(min=1)
    assert ((drawn - expected).abs() / sigma).max() < 5  # every word within 5 standard deviations
    # and the test can tell the power apart: plain unigram frequencies (power 1) are far off
    unigram = counts.double().clone()
    unigram[[dm.vocab.unk, rare]] = 0
    unigram = unigram / unigram.sum() * noise.numel()
    assert ((drawn - unigram).abs() / sigma).max() > 10


def test_subsampling_keeps_a_word_with_probability_sqrt_t_over_f():
    counts = torch.tensor([0, 500000, 50000, 10, 1])  # <unk>, a very frequent word, ..., rare words
    keep = keep_probabilities(counts, t=1e-4)
    f = counts[1:].double() / counts.sum()
    torch.testing.assert_close(keep[1:].double(), (1e-4 / f).sqrt().clamp(max=1), rtol=1e-6, atol=0)
    assert keep[3] == keep[4] == 1  # rare words are always kept
    ids = torch.tensor([1] * 100000 + [2] * 100000 + [4] * 1000)
    kept, sent = subsample(ids, torch.zeros_like(ids), keep, torch.Generator().manual_seed(0))
    for word in (1, 2, 4):
        share = float((kept == word).sum()) / float((ids == word).sum())
        assert share == pytest.approx(float(keep[word]), rel=0.1)
    assert len(sent) == len(kept)


def test_windows_stay_in_their_sentence_and_are_uniform_up_to_5():
    ids = torch.arange(1000) + 1  # distinct ids: a context id tells its position
    sent = torch.cat([torch.zeros(1, dtype=torch.long), torch.ones(999, dtype=torch.long)])  # a one-word sentence
    centers, contexts, n_context = centers_and_contexts(ids, sent, 5, torch.Generator().manual_seed(0))
    assert 1 not in centers.tolist()  # the one-word sentence has no pairs
    assert len(centers) == 999 and (n_context >= 1).all() and (n_context <= 10).all()
    for c, row, n in zip(centers.tolist(), contexts.tolist(), n_context.tolist(), strict=True):
        ctx = row[:n]
        assert all(v == -1 for v in row[n:])
        assert ctx == sorted(ctx) and c not in ctx and 1 not in ctx  # in order, not itself, same sentence
        w = max(abs(v - c) for v in ctx)
        assert w <= 5 and set(ctx) == {v for v in range(c - w, c + w + 1) if 2 <= v <= 1000} - {c}
    interior = (centers > 7) & (centers < 995)  # far from both ends: 2 * window contexts
    sizes = torch.bincount(n_context[interior], minlength=11)[[2, 4, 6, 8, 10]].double()
    assert sizes.sum() == interior.sum() and (sizes / sizes.sum() - 0.2).abs().max() < 0.05


def test_loss_leaves_the_padding_out():
    scores = torch.tensor([[2.0, -1.0, 0.5, 100.0], [0.3, -0.2, -50.0, 7.0]])
    label = torch.tensor([[1.0, 0, 0, 0], [1, 0, 0, 0]])
    mask = torch.tensor([[1.0, 1, 1, 0], [1, 1, 0, 0]])
    loss = example_loss(scores, label, mask)
    by_hand = [F.binary_cross_entropy_with_logits(scores[0, :3], label[0, :3]),
               F.binary_cross_entropy_with_logits(scores[1, :2], label[1, :2])]  # fmt: skip
    torch.testing.assert_close(loss, torch.stack(by_hand))
    garbage = scores.clone()
    garbage[mask == 0] = torch.tensor([-3e3, 9e3, 1e4])
    torch.testing.assert_close(example_loss(garbage, label, mask), loss)
    # the course's scale: SigmoidBCELoss (a masked mean over all L positions) / mask.sum(1) * L
    course = F.binary_cross_entropy_with_logits(scores, label, weight=mask, reduction="none").mean(1)
    torch.testing.assert_close(course / mask.sum(1) * mask.shape[1], loss)


def test_data_module_batches(tmp_path):
    dm = PTBWord2Vec(data_dir=str(write_ptb(tmp_path)), batch_size=16, min_freq=5, download=False)
    dm.setup()
    vocab = dm.vocab
    assert vocab.idx_to_token[0] == "<unk>" and dm.vocab_size == len(vocab)
    assert all(f >= 5 for t, f in vocab.token_freqs if t in vocab and t != "<unk>")
    for center, cn, mask, label in dm.train_dataloader():
        B, L = cn.shape
        assert center.shape == (B, 1) and mask.shape == label.shape == (B, L) and B <= 16
        assert (center != vocab.unk).all()
        n_ctx = label.sum(1)
        assert (mask.sum(1) == 6 * n_ctx).all() and mask[:, -1].sum() > 0  # K=5 noise words per context word
        assert ((label == 1) <= (mask == 1)).all() and (cn[mask == 0] == 0).all()
        for row, m, lab in zip(cn, mask, label, strict=True):
            ctx, noise = set(row[lab == 1].tolist()), row[(m == 1) & (lab == 0)]
            assert vocab.unk not in ctx and not (set(noise.tolist()) & ctx) and (noise != vocab.unk).all()
            assert (lab[: len(ctx)] == 1).all()  # contexts first
    model = create_model("word2vec", vocab_size=dm.vocab_size, embed_size=8)
    assert example_loss(model(center, cn), label, mask).shape == (len(center),)


def test_data_module_is_seeded(tmp_path):
    data = str(write_ptb(tmp_path))

    def examples(seed: int) -> torch.Tensor:
        dm = PTBWord2Vec(data_dir=data, min_freq=1, seed=seed, download=False)
        dm.setup()
        return torch.cat([dm._train.tensors[0], dm._train.tensors[1].flatten()])

    assert torch.equal(examples(0), examples(0)) and not torch.equal(examples(0), examples(1))
