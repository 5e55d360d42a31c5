"""Recurrent language models (zoo/models/rnn.py): shapes, gradients, state handling, and the
scratch RNN against PyTorch's own."""

import pytest
import torch

from zoo.models.registry import create_model, list_models
from zoo.models.rnn import RNNScratch, detach_state

RNNS = ["rnn_scratch", "rnn", "gru", "lstm", "deep_gru", "deep_lstm", "bigru", "bilstm"]
V = 7


def _model(name):
    torch.manual_seed(0)
    return create_model(name, vocab_size=V, num_hiddens=8)


def test_all_registered():
    assert set(RNNS) <= set(list_models())


@pytest.mark.parametrize("name", RNNS)
def test_forward_backward_shapes(name):
    model = _model(name)
    X = torch.randint(V, (3, 5))
    logits, state = model(X)
    assert logits.shape == (3, 5, V) and torch.isfinite(logits).all()
    logits.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient for {missing}"
    states = state if isinstance(state, tuple) else (state,)
    for s in states:
        assert s.shape[-2:] == (3, 8)  # (layers * directions, B, h) or (B, h)


@pytest.mark.parametrize("name", ["rnn_scratch", "rnn", "gru", "lstm", "deep_lstm"])
def test_carried_state_equals_one_long_pass(name):
    """Two halves with the state carried give the same logits as the whole sequence at once:
    what sequential partitioning relies on."""
    model = _model(name).eval()
    X = torch.randint(V, (2, 10))
    with torch.no_grad():
        whole, _ = model(X)
        first, state = model(X[:, :6])
        second, _ = model(X[:, 6:], detach_state(state))
        fresh, _ = model(X[:, 6:])
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-6)
    # the state does carry information (the course's tiny initial weights make it small)
    assert not torch.allclose(fresh[:, 0], whole[:, 6], rtol=1e-3, atol=0)


def test_a_bidirectional_net_sees_the_future():
    """Why bilstm cannot be a language model: its output at step t changes with token t+1."""
    model = _model("bilstm").eval()
    X = torch.randint(V, (1, 6))
    Y = X.clone()
    Y[0, 4] = (X[0, 4] + 1) % V
    with torch.no_grad():
        a, b = model(X)[0], model(Y)[0]
    assert not torch.allclose(a[0, :4], b[0, :4])  # earlier steps moved: they read x_4
    causal = _model("lstm").eval()
    with torch.no_grad():
        assert torch.allclose(causal(X)[0][0, :4], causal(Y)[0][0, :4])


def test_scratch_rnn_matches_torch_rnn_with_the_same_weights():
    torch.manual_seed(0)
    scratch = RNNScratch(V, 6, sigma=0.5)
    ref = torch.nn.RNN(V, 6, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(scratch.W_xh.T)
        ref.weight_hh_l0.copy_(scratch.W_hh.T)
        ref.bias_ih_l0.copy_(scratch.b_h)
        ref.bias_hh_l0.zero_()
    X = torch.randint(V, (4, 9))
    H0 = torch.randn(4, 6)
    logits, H = scratch(X, H0)
    out, h = ref(torch.nn.functional.one_hot(X, V).float(), H0.unsqueeze(0))
    assert torch.allclose(logits, out @ scratch.W_hq + scratch.b_q, atol=1e-5)
    assert torch.allclose(H, h[0], atol=1e-5)


def test_detach_state_handles_tensors_tuples_and_none():
    h = torch.ones(2, requires_grad=True) * 2
    assert detach_state(None) is None
    assert not detach_state(h).requires_grad
    hc = detach_state((h, h + 1))
    assert isinstance(hc, tuple) and not any(s.requires_grad for s in hc)


def test_unknown_cell_is_refused():
    from zoo.models.rnn import RecurrentLM

    with pytest.raises(ValueError, match="cell must be"):
        RecurrentLM(V, cell="transformer")


def test_embedding_inputs_for_word_vocabularies():
    torch.manual_seed(0)
    model = create_model("deep_lstm", vocab_size=50, num_hiddens=8, embed_size=4, dropout=0.1)
    assert model.rnn.input_size == 4
    logits, (h, c) = model(torch.randint(50, (2, 3)))
    assert logits.shape == (2, 3, 50) and h.shape == c.shape == (2, 2, 8)
    logits.sum().backward()
    assert model.embedding.weight.grad is not None
