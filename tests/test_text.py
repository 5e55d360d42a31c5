"""Tokenizers and the vocabulary (datamodules/text.py)."""

import json

import pytest
import torch

from datamodules.text import Tokenizer, Vocab, letters_only, tokenize


def test_tokenize_levels_and_bad_level():
    assert tokenize(["ab c", ""], "char") == [["a", "b", " ", "c"], []]
    assert tokenize(["the  time\tmachine ", ""], "word") == [["the", "time", "machine"], []]
    with pytest.raises(ValueError, match="'char' or 'word'"):
        tokenize(["x"], "byte")


def test_letters_only_is_the_course_normalisation():
    assert letters_only("The Time Machine, by H. G. Wells [1898]\n\nI") == "the time machine by h g wells i"


def test_tokenizer_char_word_eos_and_round_trip():
    char = Tokenizer("char", letters_only=True)
    assert char("Time--Traveller!") == list("time traveller ")
    assert char.detokenize(char("time traveller")) == "time traveller"
    word = Tokenizer("word", eos="<eos>")
    assert word(" a b\n c\n") == ["a", "b", "<eos>", "c", "<eos>"]  # PTB: one <eos> a line
    assert Tokenizer.from_dict(json.loads(json.dumps(word.to_dict()))) == word
    with pytest.raises(ValueError, match="level"):
        Tokenizer("byte")


def test_vocab_order_unk_reserved_and_min_freq():
    tokens = [["b", "a", "c", "a"], ["b", "a", "d", "<pad>"]]  # a:3 b:2 c:1 d:1
    v = Vocab(tokens, min_freq=1, reserved_tokens=["<pad>", "<bos>"])
    assert v.idx_to_token == ["<unk>", "<pad>", "<bos>", "a", "b", "c", "d"]  # ties alphabetical
    assert v.token_freqs[:2] == [("a", 3), ("b", 2)]
    v2 = Vocab(tokens, min_freq=2)
    assert v2.idx_to_token == ["<unk>", "a", "b"]
    assert v2["c"] == v2.unk == 0 and v2["never seen"] == 0
    assert "a" in v2 and "c" not in v2


def test_vocab_round_trip_and_batches_of_indices():
    v = Vocab(list("the time machine"))
    text = list("time the")
    idx = v[text]
    assert all(isinstance(i, int) for i in idx)
    assert v.to_tokens(idx) == text
    assert v.to_tokens(torch.tensor(idx)) == text and v.to_tokens(torch.tensor(idx[0])) == "t"
    assert v[[["t", "h"], ["e"]]] == [[v["t"], v["h"]], [v["e"]]]
    assert v.to_tokens(v["z"]) == "<unk>"


def test_vocab_unk_in_the_corpus_is_not_duplicated():
    v = Vocab("a <unk> b <unk>".split())  # PTB's text already holds <unk>
    assert v.idx_to_token.count("<unk>") == 1 and v["<unk>"] == 0


def test_vocab_to_dict_is_plain_and_from_dict_restores_it():
    v = Vocab("a b b c c c".split(), reserved_tokens=["<pad>"])
    d = json.loads(json.dumps(v.to_dict()))  # survives JSON, i.e. holds only lists and strings
    w = Vocab.from_dict(d)
    assert w == v and w.idx_to_token == v.idx_to_token and w["c"] == v["c"] and w.unk == v.unk
    with pytest.raises(ValueError, match="idx_to_token"):
        Vocab.from_dict({"tokens": []})
    with pytest.raises(ValueError, match="unk token"):
        Vocab.from_dict({"idx_to_token": ["a"], "unk": "<unk>"})


def test_vocab_rejects_repeated_reserved_tokens():
    with pytest.raises(ValueError, match="reserved_tokens"):
        Vocab(["a"], reserved_tokens=["<pad>", "<pad>"])
    with pytest.raises(ValueError, match="reserved_tokens"):
        Vocab(["a"], reserved_tokens=["<unk>"])
