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


def test_training_twice_on_the_same_corpus_gives_the_same_vocabulary_file(tmp_path):
    # tokenizers' trainer numbers the "##" pieces in hash-map order, which changes from one training to the next
    # (huggingface/tokenizers#1794), and it breaks ties between equally frequent merges by those numbers: without
    # a fixed order the ids (and so a model's embedding rows) would differ between two trainings in one process.
    words = ["".join(chr(ord("a") + (7 * i + 3 * j) % 26) for j in range(3 + i % 5)) for i in range(300)]
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(words[k:k + 12]) for k in range(0, 300, 12)) * 4, encoding="utf-8")
    files = [train_tokenizer([corpus], 150, tmp_path / f"tok{k}", min_frequency=1) for k in range(3)]
    vocabularies = [(tmp_path / f"tok{k}/vocab.txt").read_text(encoding="utf-8") for k in range(3)]
    assert vocabularies[0] == vocabularies[1] == vocabularies[2]
    vocab = vocabularies[0].splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(vocab) == 150
    singles = [t for t in vocab[5:] if len(t.removeprefix("##")) == 1]  # then the longer pieces, as learned
    assert vocab[5:5 + len(singles)] == singles == sorted(singles, key=lambda t: (t.startswith("##"), t))
    assert files[0].all_special_tokens == ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]  # "##a" is not special
    assert files[0].decode(files[0].encode("ad ehk"), skip_special_tokens=True) == "ad ehk"
    text = " ".join(words[:40])
    assert files[0].tokenize(text) == files[1].tokenize(text)  # the same pieces, by the same ids
    assert files[0](text)["input_ids"] == files[1](text)["input_ids"]


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
