"""Lesson 1, exercises: greedy WordPiece for one word; a vector for a word split into several pieces."""

import torch

from bert import BertModel, BertTokenizer
from bert.inference.pipelines import DEMO_MODEL
from bert.inference.study import first_available


def wordpiece(word: str, vocab: dict[str, int], unknown: str = "[UNK]") -> list[str]:
    """Longest match first: take the longest prefix in the vocabulary, then the longest '##' continuation of the
    rest, and so on; a word that cannot be spelled this way is one [UNK]."""
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:
            return [unknown]
        pieces.append(piece)
        start = end
    return pieces


def get_word_embedding(model: BertModel, tokenizer: BertTokenizer, word: str) -> torch.Tensor:
    """The input (static) vector of a word [H]: its row of the word-embedding table, or the mean of its pieces'
    rows when WordPiece splits it."""
    ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word))
    return model.embeddings.word_embeddings.weight[ids].mean(0)


if __name__ == "__main__":
    model_dir = first_available("bert-base-uncased", DEMO_MODEL)
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir)
    vocab = tokenizer.get_vocab()
    for word in ["hello", "tokenization", "unbelievably", "hyperparameterized", "bert", "embeddings"]:
        assert wordpiece(word, vocab) == tokenizer.tokenize(word), word
        print(f"{word:20} {wordpiece(word, vocab)}")
    table = model.embeddings.word_embeddings.weight
    assert torch.equal(get_word_embedding(model, tokenizer, "hello"), table[vocab["hello"]])  # one piece: its row
    pieces = tokenizer.tokenize("hyperparameterized")
    vector = get_word_embedding(model, tokenizer, "hyperparameterized")
    assert vector.shape == (model.config.hidden_size,) and len(pieces) > 1
    assert torch.allclose(vector, torch.stack([table[vocab[p]] for p in pieces]).mean(0))
    print("get_word_embedding: one row for 'hello', the mean of", len(pieces), "rows for 'hyperparameterized'")
