"""Attention (zoo/models/attention.py): the course's versions against PyTorch's, and the seq2seq
models' incremental decoding against their teacher-forced forward pass."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zoo.models.attention import (
    AdditiveAttention,
    DotProductAttention,
    MultiHeadAttention,
    PositionalEncoding,
    attention_mask,
    masked_softmax,
)
from zoo.models.registry import create_model


def test_masked_softmax_weights_only_the_valid_keys():
    X = torch.randn(2, 3, 5)
    w = masked_softmax(X, torch.tensor([2, 4]))
    assert torch.allclose(w.sum(-1), torch.ones(2, 3))
    assert (w[0, :, 2:] == 0).all() and (w[1, :, 4:] == 0).all() and (w[1, :, :4] > 0).all()
    per_query = masked_softmax(X, torch.tensor([[1, 2, 3], [5, 5, 1]]))
    assert (per_query[0, 0, 1:] == 0).all() and (per_query[0, 2, 3:] == 0).all() and (per_query[1, 2, 1:] == 0).all()
    assert torch.allclose(masked_softmax(X, None), F.softmax(X, -1))


def test_course_dot_product_attention_equals_pytorch():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 4, 8), torch.randn(3, 6, 8), torch.randn(3, 6, 5)
    for lens in (None, torch.tensor([6, 2, 1]), torch.tensor([[1, 2, 3, 4], [6, 6, 1, 2], [5, 4, 3, 2]])):
        course = DotProductAttention().eval()(q, k, v, lens)
        mask = attention_mask(lens, 4, 6)
        fast = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, 0])
        assert torch.allclose(course, fast, atol=1e-6)


def _mha_pair(num_hiddens=16, heads=4):
    ours = MultiHeadAttention(num_hiddens, heads).eval()
    torch_mha = nn.MultiheadAttention(num_hiddens, heads, bias=False, batch_first=True).eval()
    with torch.no_grad():  # PyTorch keeps the three input projections in one matrix
        torch_mha.in_proj_weight.copy_(torch.cat([ours.W_q.weight, ours.W_k.weight, ours.W_v.weight]))
        torch_mha.out_proj.weight.copy_(ours.W_o.weight)
    return ours, torch_mha


def test_multi_head_attention_equals_nn_multihead_attention_and_the_course():
    torch.manual_seed(0)
    ours, torch_mha = _mha_pair()
    q, kv = torch.randn(3, 5, 16), torch.randn(3, 7, 16)
    lens = torch.tensor([7, 3, 1])
    padding = torch.arange(7) >= lens[:, None]  # PyTorch's key_padding_mask: True = ignore
    expected = torch_mha(q, kv, kv, key_padding_mask=padding, need_weights=False)[0]
    assert torch.allclose(ours(q, kv, kv, lens), expected, atol=1e-5)
    ours.fast = False  # the course's masked softmax and DotProductAttention
    assert torch.allclose(ours(q, kv, kv, lens), expected, atol=1e-5)
    # causal self-attention, the course's per-query valid lengths written as causal=True
    x = torch.randn(2, 6, 16)
    causal = torch.triu(torch.ones(6, 6, dtype=torch.bool), 1)
    expected = torch_mha(x, x, x, attn_mask=causal, need_weights=False)[0]
    for fast in (True, False):
        ours.fast = fast
        assert torch.allclose(ours(x, x, x, causal=True), expected, atol=1e-5)
    assert torch.allclose(ours(x, x, x, torch.arange(1, 7).repeat(2, 1)), expected, atol=1e-5)


def test_attention_weights_and_additive_attention_masks():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2).eval()
    x, kv = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    out, w = mha.attend(x, mha.project_kv(kv, kv), attention_mask(torch.tensor([4, 2]), 1, 4), need_weights=True)
    assert out.shape == (2, 3, 8) and w.shape == (2, 2, 3, 4) and (w[1, :, :, 2:] == 0).all()
    add = AdditiveAttention(key_size=6, query_size=5, num_hiddens=7).eval()
    out = add(torch.randn(2, 1, 5), torch.randn(2, 4, 6), torch.randn(2, 4, 3), torch.tensor([2, 4]))
    assert out.shape == (2, 1, 3) and (add.attention_weights[0, :, 2:] == 0).all()
    with pytest.raises(ValueError, match="multiple of num_heads"):
        MultiHeadAttention(10, 4)


def test_positional_encoding_values_and_start():
    pe = PositionalEncoding(4, dropout=0.0, max_len=50)  # frequencies 1 and 1 / 10000^(2/4)
    assert torch.allclose(pe.P[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    three = torch.tensor(3.0)
    assert torch.allclose(pe.P[3], torch.stack([three.sin(), three.cos(), (three / 100).sin(), (three / 100).cos()]))
    x = torch.zeros(1, 10, 4)
    assert torch.allclose(pe(x[:, :2], start=7), pe(x)[:, 7:9])
    with pytest.raises(ValueError, match="max_len"):
        pe(x, start=45)


@pytest.mark.parametrize("arch", ["seq2seq", "bahdanau", "transformer"])
def test_incremental_decoding_equals_teacher_forcing(arch):
    torch.manual_seed(0)
    model = create_model(arch, vocab_size=(11, 13), num_hiddens=16).eval()
    src, lens = torch.randint(4, 11, (3, 7)), torch.tensor([7, 4, 2])
    tgt_in = torch.randint(4, 13, (3, 6))
    full = model(src, tgt_in, lens)  # (B, T, V)
    state = model.init_state(src, lens)
    for t in range(tgt_in.shape[1]):
        logits, state = model.decode_step(tgt_in[:, t], state)
        assert torch.allclose(logits, full[:, t], atol=1e-5), f"step {t}"  # each step at its own position
    # and a source decodes the same alone as inside a padded batch
    alone = model(src[1:2, :4], tgt_in[1:2], lens[1:2])
    assert torch.allclose(alone, full[1:2], atol=1e-5)


def test_cross_attention_weights_for_the_heat_map():
    torch.manual_seed(0)
    for arch in ("bahdanau", "transformer"):
        model = create_model(arch, vocab_size=(11, 13), num_hiddens=8).eval()
        logits, weights = model(torch.randint(4, 11, (2, 5)), torch.randint(4, 13, (2, 3)), torch.tensor([5, 2]),
                                return_attention=True)  # fmt: skip
        assert weights.shape == (2, 3, 5) and torch.allclose(weights.sum(-1), torch.ones(2, 3), atol=1e-5)
        assert (weights[1, :, 2:] == 0).all()
