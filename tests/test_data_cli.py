"""`bert train-tokenizer` and `bert prepare` end to end."""

from __future__ import annotations

import json

from bert.cli import main
from bert.data.advice import suggested_vocab_size, vocabulary_advice
from bert.tokenizer import BertTokenizer


def test_train_tokenizer_then_prepare(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    docs = []
    for d in range(12):
        docs.append("\n".join(f"Document {d} has sentence {s}. It is short, isn't it?" for s in range(8)))
    corpus.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    assert main(["train-tokenizer", str(corpus), "--vocab-size", "300", "--out", str(tmp_path / "tok")]) == 0
    vocab = (tmp_path / "tok/vocab.txt").read_text(encoding="utf-8").splitlines()
    printed = capsys.readouterr()
    tokens = sum(len(BertTokenizer.from_pretrained(tmp_path / "tok").tokenize(line))
                 for line in corpus.read_text().splitlines())
    assert printed.out == (f"wrote a {len(vocab)}-token uncased vocabulary to {tmp_path / 'tok'}\n"
                           f"the corpus is {tokens:,} pieces of it, {tokens / len(vocab):.0f} per vocabulary entry\n")
    # a few thousand tokens for 300 pieces: the advice for pretraining from random weights, its smallest size
    assert printed.err == f"bert train-tokenizer: note: {vocabulary_advice(tokens, len(vocab))}\n"
    assert "--vocab-size 2048" in printed.err
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(vocab) == len(set(vocab))
    assert main(["train-tokenizer", str(corpus), "--vocab-size", "60", "--out", str(tmp_path / "small")]) == 0
    small = (tmp_path / "small/vocab.txt").read_text(encoding="utf-8").splitlines()
    assert capsys.readouterr().out.startswith("wrote a 60-token uncased vocabulary")
    assert len(small) == 60 < len(vocab) <= 300  # --vocab-size is the size asked for, not a suggestion
    argv = ["prepare", str(corpus), "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "data"),
            "--max-seq-len", "32", "--eval-fraction", "0.1", "--seed", "7"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "train:" in printed.out and "eval:" in printed.out and "--vocab-size 2048" in printed.err
    meta = json.loads((tmp_path / "data/meta.json").read_text())
    assert meta["max_seq_len"] == 32 and meta["seed"] == 7 and meta["splits"]["eval"]["documents"] == 1
    assert (tmp_path / "data/tokenizer/vocab.txt").exists() and (tmp_path / "data/train/input_ids.npy").exists()
    # The output folder is now taken.
    assert main(argv) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--quiet"]) == 0
    assert main([*argv, "--overwrite", "--quiet", "--sentence-pair-prob", "0.5"]) == 0
    more = json.loads((tmp_path / "data/meta.json").read_text())
    assert more["sentence_pair_prob"] == 0.5
    assert more["splits"]["train"]["examples"] > meta["splits"]["train"]["examples"]
    capsys.readouterr()
    assert main([*argv, "--overwrite", "--sentence-pair-prob", "0.5", "--objective", "mlm"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--sentence-pair-prob" in err and "mlm+nsp" in err


def test_missing_input_is_one_line_error(tmp_path, capsys):
    code = main(["prepare", str(tmp_path / "nope.txt"), "--tokenizer", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("bert prepare: error:") and "nope.txt" in err
    code = main(["train-tokenizer", str(tmp_path / "nope.txt"), "--vocab-size", "100", "--out", str(tmp_path / "t")])
    assert code == 1 and "not found" in capsys.readouterr().err


def test_warnings_are_one_line(tmp_path, capsys):
    corpus = tmp_path / "one.txt"
    corpus.write_bytes(b"One document only. With bad \xff byte.\n" * 30)
    assert main(["train-tokenizer", str(corpus), "--vocab-size", "100", "--out", str(tmp_path / "tok")]) == 0
    capsys.readouterr()
    assert main(["prepare", str(corpus), "--tokenizer", str(tmp_path / "tok"), "--out", str(tmp_path / "d"),
                 "--max-seq-len", "16"]) == 0
    err = capsys.readouterr().err
    assert "bert prepare: warning:" in err and "single document" in err and "U+FFFD" in err


def test_the_vocabulary_advice_asks_for_about_300_tokens_of_text_per_piece():
    assert suggested_vocab_size(2_400_000) == 8192  # WikiText-2: the measured recipe's vocabulary
    assert suggested_vocab_size(10_000) == 2048 and suggested_vocab_size(10**10) == 32768  # the bounds
    assert vocabulary_advice(2_400_000, 8192) is None and vocabulary_advice(2_400_000, 12000) is None
    advice = vocabulary_advice(2_400_000, 30522)  # bert-base-uncased's vocabulary on WikiText-2: 79 per piece
    assert advice is not None and "79 per piece" in advice and "--vocab-size 8192" in advice
    assert "keep its vocabulary" in advice  # continuing a checkpoint is the exception
