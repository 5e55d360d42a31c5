"""The decomposable attention model: shapes, padding masked out (unlike the course's), gradients,
and an embedding table that GloVe vectors load into."""

from __future__ import annotations

import torch
from torch import nn

from zoo.models.registry import create_model
from zoo.ops.embeddings import load_token_embedding

PAD = 1


def small(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    return create_model("decomposable_attention", vocab_size=20, embed_size=6, num_hiddens=8, **kwargs)


def test_shapes_and_classes():
    premises, hypotheses = torch.randint(2, 20, (4, 7)), torch.randint(2, 20, (4, 3))
    assert small()(premises, hypotheses).shape == (4, 3)
    assert small(num_classes=5)(premises, hypotheses).shape == (4, 5)
    assert isinstance(small().embedding, nn.Embedding)


def test_padding_changes_nothing_and_a_pair_does_not_depend_on_its_batch():
    model = small().eval()
    p, h = torch.tensor([[5, 6, 7]]), torch.tensor([[8, 9]])
    alone = model(p, h)
    padded = model(torch.tensor([[5, 6, 7, PAD, PAD]]), torch.tensor([[8, 9, PAD, PAD]]))
    torch.testing.assert_close(padded, alone)
    batch = model(torch.tensor([[5, 6, 7, PAD, PAD], [2, 3, 4, 10, 11]]), torch.tensor([[8, 9, PAD], [12, 13, 14]]))
    torch.testing.assert_close(batch[:1], alone)
    # the course's model (no mask) is moved by its padding: the test can tell
    course = small(pad_index=None).eval()
    assert not torch.allclose(course(torch.tensor([[5, 6, 7, PAD, PAD]]), h), course(p, h))


def test_every_parameter_learns_and_the_pad_embedding_gets_no_gradient():
    model = small()
    premises = torch.tensor([[5, 6, 7, PAD], [2, 3, 4, 10]])
    hypotheses = torch.tensor([[8, PAD, PAD], [12, 13, 14]])
    nn.functional.cross_entropy(model(premises, hypotheses), torch.tensor([0, 2])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    grad = model.embedding.weight.grad
    assert grad[PAD].abs().max() == 0 and grad[5].abs().max() > 0


def test_glove_vectors_load_into_the_embedding(tmp_path):
    glove = tmp_path / "glove.6B.6d.txt"
    glove.write_text("cat 1 2 3 4 5 6\ndog 6 5 4 3 2 1\n", encoding="utf-8")
    tokens = ["<unk>", "<pad>", "cat", "bird", "dog", *[f"t{i}" for i in range(15)]]
    vectors, found = load_token_embedding(glove, tokens)
    model = small()
    model.embedding.weight.data.copy_(vectors)
    assert found == 2 and model.embedding.weight[2].tolist() == [1, 2, 3, 4, 5, 6]
    assert model.embedding.weight[3].abs().sum() == 0  # not in the file: zeros, as the course
