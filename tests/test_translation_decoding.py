"""Greedy and beam search (zoo/ops/decoding.py) on the zoo's models and on a hand-built decoder."""

import math

import pytest
import torch

from zoo.models.registry import create_model
from zoo.ops.decoding import beam_search, greedy_search, map_state

BOS, EOS, A, B = 1, 2, 3, 4


class ToyDecoder:
    """A decoder whose next-token probabilities depend only on the last token: ``table[last]``
    maps next tokens to probabilities (the rest get 1e-9)."""

    def __init__(self, table):
        p = torch.full((5, 5), 1e-9)
        for last, nexts in table.items():
            for token, prob in nexts.items():
                p[last, token] = prob
        p[EOS, EOS] = 1.0
        self.logp = p.log()

    def init_state(self, src, src_valid_len=None):
        return {"steps": torch.zeros(src.shape[0], dtype=torch.long)}  # batch first, as every state

    def decode_step(self, tokens, state):
        return self.logp[tokens], {"steps": state["steps"] + 1}


def test_beam_search_finds_the_best_sequence_where_greedy_does_not():
    # greedy takes A then <eos> (p = 0.6 * 0.5 = 0.30); the best sequence is B <eos> (0.4 * 0.9 = 0.36)
    toy = ToyDecoder({BOS: {A: 0.6, B: 0.4}, A: {EOS: 0.5, A: 0.25, B: 0.25}, B: {EOS: 0.9, A: 0.1}})
    src = torch.zeros(2, 3, dtype=torch.long)
    assert greedy_search(toy, src, None, BOS, EOS, max_len=5) == [[A], [A]]
    assert beam_search(toy, src, None, BOS, EOS, max_len=5, beam_size=2) == [[B], [B]]
    assert beam_search(toy, src, None, BOS, EOS, max_len=5, beam_size=1) == [[A], [A]]
    assert beam_search(toy, src, None, BOS, EOS, max_len=1, beam_size=2) == [[A], [A]]  # live ones at max_len
    assert greedy_search(toy, src, None, BOS, EOS, max_len=0) == [[], []]


def test_length_penalty_divides_the_log_probability_by_length():
    # "<eos>" at once: log 0.55 = -0.60 (L = 1); "A <eos>": log(0.45 * 0.99) = -0.81 (L = 2)
    toy = ToyDecoder({BOS: {EOS: 0.55, A: 0.45}, A: {EOS: 0.99}})
    src = torch.zeros(1, 1, dtype=torch.long)
    assert beam_search(toy, src, None, BOS, EOS, max_len=4, beam_size=2, length_penalty=0.0) == [[]]
    assert math.log(0.45 * 0.99) / 2**1.0 > math.log(0.55)
    assert beam_search(toy, src, None, BOS, EOS, max_len=4, beam_size=2, length_penalty=1.0) == [[A]]
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(toy, src, None, BOS, EOS, max_len=5, beam_size=0)


@pytest.mark.parametrize("arch", ["seq2seq", "transformer"])
def test_beam_one_is_greedy_and_a_batch_decodes_as_its_sources_alone(arch):
    torch.manual_seed(1)
    model = create_model(arch, vocab_size=(12, 9), num_hiddens=16).eval()
    src, lens = torch.randint(4, 12, (5, 6)), torch.tensor([6, 5, 3, 2, 1])
    greedy = greedy_search(model, src, lens, BOS, EOS, max_len=8)
    assert beam_search(model, src, lens, BOS, EOS, max_len=8, beam_size=1) == greedy
    beams = beam_search(model, src, lens, BOS, EOS, max_len=8, beam_size=3)
    for i in range(5):
        one = src[i : i + 1, : int(lens[i])]
        assert greedy_search(model, one, lens[i : i + 1], BOS, EOS, max_len=8) == greedy[i : i + 1]
        assert beam_search(model, one, lens[i : i + 1], BOS, EOS, max_len=8, beam_size=3) == beams[i : i + 1]
    assert all(EOS not in row and len(row) <= 8 for row in beams)


def test_map_state_reaches_every_tensor_and_keeps_the_rest():
    state = {"a": torch.arange(3), "kv": [(torch.ones(3, 2), torch.zeros(3))], "step": 4, "mask": None}
    out = map_state(state, lambda t: t[:1])
    assert out["a"].tolist() == [0] and out["kv"][0][0].shape == (1, 2) and out["step"] == 4 and out["mask"] is None
