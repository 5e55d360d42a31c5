"""GloVe/fastText vectors from a local text file (zoo.ops.embeddings), on files written here."""

from __future__ import annotations

import gzip
import zipfile

import pytest
import torch

from zoo.core.problems import DataError
from zoo.ops.embeddings import load_token_embedding

GLOVE = "the 0.1 0.2 0.3\nchip -1.5 2 3e-1\nintel 4 5 6\n"


def test_glove_file_vectors_in_token_order_and_unknown_tokens_zero(tmp_path):
    path = tmp_path / "glove.6B.3d.txt"
    path.write_text(GLOVE, encoding="utf-8")
    vectors, found = load_token_embedding(path, ["<unk>", "intel", "chip", "nowhere", "chip"])
    assert found == 3  # intel and chip twice
    assert vectors.dtype == torch.float32 and vectors.shape == (5, 3)
    expected = [[0, 0, 0], [4, 5, 6], [-1.5, 2, 0.3], [0, 0, 0], [-1.5, 2, 0.3]]
    torch.testing.assert_close(vectors, torch.tensor(expected))


def test_fasttext_header_trailing_spaces_gzip_and_zip(tmp_path):
    text = "2 3\nchip 1 2 3 \nintel 4 5 6 \n"  # fastText's .vec: a count/dim header, lines end in a space
    gz = tmp_path / "wiki.vec.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    archive = tmp_path / "glove.6B.100d.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("glove.6B.100d/vec.txt", GLOVE)
    vectors, found = load_token_embedding(gz, ["intel", "chip"])
    assert found == 2
    torch.testing.assert_close(vectors, torch.tensor([[4.0, 5, 6], [1, 2, 3]]))
    vectors, found = load_token_embedding(str(archive), ["chip"])
    assert found == 1
    torch.testing.assert_close(vectors, torch.tensor([[-1.5, 2, 0.3]]))


def test_bad_lines_named_with_file_and_line(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_text("the 0.1 0.2 0.3\nchip 1 2\nintel 4 x 6\nok 1 2 3\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_token_embedding(path, ["intel"])
    message = str(e.value)
    assert str(path) in message
    assert "expected a token and 3 numbers on line: 2" in message
    assert "numbers that do not parse on line: 3" in message


def test_not_utf8_named_with_line(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_bytes(b"the 1 2\ncaf\xe9 3 4\n")
    with pytest.raises(ValueError, match=r"vec\.txt: not UTF-8 text \(line 2"):
        load_token_embedding(path, ["the"])


def test_zip_with_several_files_asks_for_one(tmp_path):
    archive = tmp_path / "glove.6B.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("glove.6B.50d.txt", GLOVE)
        z.writestr("glove.6B.100d.txt", GLOVE)
    with pytest.raises(ValueError, match="expected one vector file inside the zip, found 2"):
        load_token_embedding(archive, ["chip"])


def test_missing_file_says_where_to_get_glove(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        load_token_embedding(tmp_path / "glove.6B.100d.txt", ["chip"])
    message = str(e.value)
    assert "\n" not in message
    assert "glove.6B.100d.txt not found" in message
    assert "https://nlp.stanford.edu/projects/glove/" in message and "data/glove.6B.100d.txt" in message
