"""WordPiece vocabulary training."""

from __future__ import annotations

import pytest

from bert.data import train_tokenizer
from bert.errors import BertError
from bert.tokenizer.wordpiece import BertTokenizer

TEXT = "The quick brown fox jumps over the lazy dog. Ünïcode Café naïve.\n" * 50 + "\nAnother document here.\n" * 20


def test_trained_vocab_has_specials_first_and_loads_back(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    tok = train_tokenizer([corpus], 200, tmp_path / "tok")
    vocab = (tmp_path / "tok/vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert {"vocab.txt", "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in (tmp_path / "tok").iterdir()}
    assert len(vocab) == tok.vocab_size <= 200 and any(t.startswith("##") for t in vocab)
    loaded = BertTokenizer.from_pretrained(tmp_path / "tok")
    assert loaded.pad_token_id == 0 and loaded.mask_token_id == 4 and loaded.do_lower_case
    enc = loaded("The quick fox", "lazy dog")
    assert enc["input_ids"][0] == 2 and enc["input_ids"][-1] == 3 and set(enc["token_type_ids"]) == {0, 1}
    assert loaded.decode(loaded.encode("the quick brown fox")) == "the quick brown fox"
    assert "cafe" in loaded.decode(loaded.encode("Café"))  # uncased: accents stripped


def test_cased_vocab(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    tok = train_tokenizer([corpus], 300, tmp_path / "tok", cased=True, min_frequency=1)
    assert not tok.do_lower_case and "The" in tok.get_vocab()
    assert BertTokenizer.from_pretrained(tmp_path / "tok").decode(tok.encode("Café")) == "Café"


def test_errors(tmp_path):
    empty = tmp_path / "e.txt"
    empty.write_text("\n\n")
    with pytest.raises(BertError, match="no text"):
        train_tokenizer([empty], 100, tmp_path / "tok")
    with pytest.raises(BertError, match="not found"):
        train_tokenizer([tmp_path / "missing.txt"], 100, tmp_path / "tok")
    with pytest.raises(BertError, match="vocab-size"):
        train_tokenizer([empty], 3, tmp_path / "tok")
