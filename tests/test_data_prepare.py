"""`prepare`: example invariants, NSP balance, determinism, held-out documents, warnings, errors, storage."""

from __future__ import annotations

import pickle
import random
import warnings

import numpy as np
import pytest
import torch

from bert.data import CorpusWarning, PretrainingDataset, prepare_pretraining_data, train_tokenizer
from bert.data.examples import IS_NEXT, NOT_NEXT, SWAPPED, create_pairs, create_sentence_pairs
from bert.errors import BertError

FRUITS = ["apple", "pear", "plum", "kiwi", "lime", "fig", "date", "grape", "melon", "berry"]


def code(document: int) -> str:
    """Three letters naming a document: every word of the test corpora starts with its document's code."""
    return "".join(chr(97 + int(c)) for c in f"{document:03d}")


def write_corpus(path, num_documents: int, seed: int = 0, sentences=(2, 12), words=(3, 14)):
    rng = random.Random(seed)
    lines = []
    for d in range(num_documents):
        for _ in range(rng.randint(*sentences)):
            lines.append(" ".join(code(d) + rng.choice(FRUITS) for _ in range(rng.randint(*words))) + " .")
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus_and_tokenizer(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep")
    corpus = write_corpus(root / "corpus.txt", 200)
    tokenizer = train_tokenizer([corpus], 400, root / "tok")
    return corpus, tokenizer


@pytest.fixture(scope="module")
def prepared(corpus_and_tokenizer, tmp_path_factory):
    corpus, tokenizer = corpus_and_tokenizer
    out = tmp_path_factory.mktemp("out") / "data"
    meta = prepare_pretraining_data([corpus], tokenizer, out, max_seq_len=64, seed=3, eval_fraction=0.1)
    return out, meta, tokenizer


def words_of(tokenizer, ids) -> list[str]:
    """Join WordPiece continuation pieces back into words; drop the '.' tokens."""
    out: list[str] = []
    for token in tokenizer.convert_ids_to_tokens([int(i) for i in ids]):
        if token.startswith("##") and out:
            out[-1] += token[2:]
        else:
            out.append(token)
    return [w for w in out if w != "." and not w.startswith("##")]  # a truncated word's tail is dropped


def split_example(example, tokenizer):
    ids = example["input_ids"]
    seps = (ids == tokenizer.sep_token_id).nonzero().flatten().tolist()
    return ids, seps


def test_example_invariants(prepared):
    out, meta, tok = prepared
    for split in ("train", "eval"):
        data = PretrainingDataset(out / split)
        assert len(data) == meta["splits"][split]["examples"] > 0
        assert data.input_ids.dtype == np.uint16 and data.max_seq_len == 64
        for i in range(len(data)):
            ex = data[i]
            ids, seps = split_example(ex, tok)
            length = int(ex["attention_mask"].sum())
            assert ids[0] == tok.cls_token_id and (ids == tok.cls_token_id).sum() == 1
            assert len(seps) == 2 and seps[1] == length - 1 and 2 <= seps[0] < seps[1] - 1
            assert length <= 64
            assert ex["attention_mask"].tolist() == [1] * length + [0] * (64 - length)
            assert (ids[length:] == tok.pad_token_id).all() and (ids[:length] != tok.pad_token_id).all()
            expected_types = [0] * (seps[0] + 1) + [1] * (length - seps[0] - 1) + [0] * (64 - length)
            assert ex["token_type_ids"].tolist() == expected_types
            assert ex["next_sentence_label"].item() in (0, 1) and ex["next_sentence_label"].dtype == torch.long


def test_nsp_labels_balanced_and_meaningful(prepared):
    out, meta, tok = prepared
    data = PretrainingDataset(out / "train")
    info = meta["splits"]["train"]
    assert info["is_next"] + info["not_next"] == len(data)
    assert 0.4 < info["not_next_fraction"] < 0.65
    assert info["not_next"] == int(np.asarray(data.nsp_labels).sum())
    mismatched = 0
    for i in range(len(data)):
        ex = data[i]
        ids, seps = split_example(ex, tok)
        docs_a = {w[:3] for w in words_of(tok, ids[1 : seps[0]])}
        docs_b = {w[:3] for w in words_of(tok, ids[seps[0] + 1 : seps[1]])}
        # Truncation may cut a word short of its three-letter document code.
        docs_a, docs_b = {d for d in docs_a if len(d) == 3}, {d for d in docs_b if len(d) == 3}
        if ex["next_sentence_label"] == 0:
            assert docs_a == docs_b and len(docs_a) == 1
        elif docs_a & docs_b:
            mismatched += 1
    assert mismatched <= 0.02 * len(data)  # a truncated piece can look like another document's code


def test_eval_examples_come_from_unseen_documents(prepared):
    out, meta, tok = prepared
    assert meta["splits"]["eval"]["documents"] == 20 and meta["splits"]["train"]["documents"] == 180

    def documents(split):
        data = PretrainingDataset(out / split)
        found = set()
        for i in range(len(data)):
            ids, seps = split_example(data[i], tok)
            for part in (ids[1 : seps[0]], ids[seps[0] + 1 : seps[1]]):
                found |= {w[:3] for w in words_of(tok, part) if len(w) >= 7}
        return found

    train, evaluation = documents("train"), documents("eval")
    assert len(evaluation) == 20 and len(train) == 180 and not train & evaluation


def test_deterministic_for_a_seed(corpus_and_tokenizer, prepared, tmp_path):
    corpus, tokenizer = corpus_and_tokenizer
    out, _, _ = prepared
    same = tmp_path / "same"
    other = tmp_path / "other"
    prepare_pretraining_data([corpus], tokenizer, same, max_seq_len=64, seed=3, eval_fraction=0.1)
    prepare_pretraining_data([corpus], tokenizer, other, max_seq_len=64, seed=4, eval_fraction=0.1)
    for split in ("train", "eval"):
        for name in ("input_ids", "segment_a_lengths", "lengths", "nsp_labels"):
            assert (out / split / f"{name}.npy").read_bytes() == (same / split / f"{name}.npy").read_bytes()
    assert not np.array_equal(np.load(out / "train/input_ids.npy"), np.load(other / "train/input_ids.npy"))
    assert (same / "meta.json").read_text() == (out / "meta.json").read_text()


def test_meta_and_tokenizer_copy(prepared):
    out, meta, tok = prepared
    from bert.tokenizer.wordpiece import BertTokenizer

    assert meta["max_seq_len"] == 64 and meta["vocab_size"] == tok.vocab_size and meta["seed"] == 3
    assert meta["special_token_ids"]["pad"] == 0 and meta["corpus"]["documents"] == 200
    assert len(meta["source_files"]) == 1 and meta["source_files"][0]["path"].endswith("corpus.txt")
    assert BertTokenizer.from_pretrained(out / "tokenizer").get_vocab() == tok.get_vocab()
    assert not list(out.parent.glob(".*tmp*"))


def test_dataset_batch_and_pickle(prepared):
    out, _, _ = prepared
    data = PretrainingDataset(out / "train")
    batch = data.batch([5, 0, 7])
    for key in ("input_ids", "token_type_ids", "attention_mask", "next_sentence_label"):
        assert torch.equal(batch[key], torch.stack([data[i][key] for i in (5, 0, 7)]))
    clone = pickle.loads(pickle.dumps(data))
    assert len(pickle.dumps(data)) < 1000 and torch.equal(clone[3]["input_ids"], data[3]["input_ids"])
    assert isinstance(data.input_ids, np.memmap)
    with pytest.raises(BertError, match="not a prepared data split"):
        PretrainingDataset(out)


def test_eval_fraction_zero_and_two_documents(corpus_and_tokenizer, tmp_path):
    _, tokenizer = corpus_and_tokenizer
    corpus = write_corpus(tmp_path / "two.txt", 2, sentences=(30, 30))
    meta = prepare_pretraining_data([corpus], tokenizer, tmp_path / "zero", max_seq_len=32, eval_fraction=0)
    assert meta["splits"]["eval"]["examples"] == 0 and len(PretrainingDataset(tmp_path / "zero/eval")) == 0
    with pytest.warns(CorpusWarning, match="training split has a single document"):
        meta = prepare_pretraining_data([corpus], tokenizer, tmp_path / "one", max_seq_len=32)
    assert meta["splits"]["eval"]["documents"] == 1 and meta["splits"]["eval"]["examples"] > 0


def test_one_document_corpus_warns_and_still_has_not_next(corpus_and_tokenizer, tmp_path):
    _, tokenizer = corpus_and_tokenizer
    corpus = write_corpus(tmp_path / "one.txt", 1, sentences=(80, 80))
    with pytest.warns(CorpusWarning, match="single document"):
        meta = prepare_pretraining_data([corpus], tokenizer, tmp_path / "out", max_seq_len=32)
    info = meta["splits"]["train"]
    assert info["not_next"] > 0 and info["is_next"] > 0 and meta["splits"]["eval"]["examples"] == 0


def test_bad_input_warns_but_prepares(corpus_and_tokenizer, tmp_path):
    _, tokenizer = corpus_and_tokenizer
    good = write_corpus(tmp_path / "good.txt", 5)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\n\n\n aaaapple \xff\xfe aaapear .\n\n\x07\x07\n\n\n\n bbbplum .\nbbbfig .\n\n")
    with pytest.warns(CorpusWarning) as record:
        meta = prepare_pretraining_data([good, bad], tokenizer, tmp_path / "out", max_seq_len=32, eval_fraction=0)
    messages = " | ".join(str(w.message) for w in record)
    assert "2 byte(s)" in messages and "bad.txt (2)" in messages
    assert "skipped 1 document(s)" in messages
    assert meta["corpus"]["documents"] == 7 and meta["corpus"]["invalid_utf8_bytes"] == 2


def test_errors(corpus_and_tokenizer, tmp_path):
    corpus, tokenizer = corpus_and_tokenizer
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n\n")
    with pytest.raises(BertError, match="corpus is empty"):
        prepare_pretraining_data([empty], tokenizer, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(BertError, match="not found"):
        prepare_pretraining_data([tmp_path / "missing.txt"], tokenizer, tmp_path / "out")
    with pytest.raises(BertError, match="max-seq-len"):
        prepare_pretraining_data([corpus], tokenizer, tmp_path / "out", max_seq_len=4)
    with pytest.raises(BertError, match="eval-fraction"):
        prepare_pretraining_data([corpus], tokenizer, tmp_path / "out", eval_fraction=1.0)
    single = tmp_path / "single.txt"
    single.write_text("aaaapple aaapear .\n")
    with warnings.catch_warnings(), pytest.raises(BertError, match="no training examples"):
        warnings.simplefilter("ignore")
        prepare_pretraining_data([single], tokenizer, tmp_path / "out")


def test_atomic_write_and_overwrite(corpus_and_tokenizer, tmp_path, monkeypatch):
    corpus, tokenizer = corpus_and_tokenizer
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(BertError, match="not empty"):
        prepare_pretraining_data([corpus], tokenizer, out)

    def fail(*args, **kwargs):  # interrupted after the arrays are written, before meta.json
        raise KeyboardInterrupt

    monkeypatch.setattr(tokenizer, "save_pretrained", fail)
    with pytest.raises(KeyboardInterrupt):
        prepare_pretraining_data([corpus], tokenizer, out, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"] and (out / "keep.txt").exists()
    monkeypatch.undo()
    prepare_pretraining_data([corpus], tokenizer, out, overwrite=True)
    assert (out / "meta.json").exists() and not (out / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_wikitext_format_with_real_vocab(minilm_dir, tmp_path):
    from bert.tokenizer.wordpiece import BertTokenizer

    articles = []
    for a in range(6):
        body = " ".join(f"Article {a} sentence {s} talks about <unk> things 1 @,@ 000 times ." for s in range(12))
        articles.append(f" \n = Title {a} = \n \n {body} \n \n = = Section = = \n \n {body} \n")
    path = tmp_path / "wiki.train.tokens"
    path.write_text("".join(articles), encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    meta = prepare_pretraining_data([path], minilm_dir, tmp_path / "out", format="wikitext", eval_fraction=0)
    assert meta["corpus"]["documents"] == 6 and meta["corpus"]["sentences"] == 6 * 24
    ids = np.load(tmp_path / "out/train/input_ids.npy")
    assert ids.dtype == np.uint16 and ids.shape[1] == 128
    assert (ids == tokenizer.unk_token_id).any()  # <unk> -> [UNK], one token
    assert tokenizer.convert_tokens_to_ids("@") not in set(ids.ravel().tolist())
    assert meta["input_format"] == "wikitext" and meta["vocab_size"] == 30522


# ---------------------------------------------------------------- equivalence with google-research/bert


def original_truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng):
    while True:
        total_length = len(tokens_a) + len(tokens_b)
        if total_length <= max_num_tokens:
            break
        trunc_tokens = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        assert len(trunc_tokens) >= 1
        if rng.random() < 0.5:
            del trunc_tokens[0]
        else:
            trunc_tokens.pop()


def original_create_instances_from_document(all_documents, document_index, max_seq_length, short_seq_prob, rng):
    """create_pretraining_data.py's function, verbatim except the masking step (and returning plain tuples)."""
    document = all_documents[document_index]
    max_num_tokens = max_seq_length - 3
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    instances = []
    current_chunk = []
    current_length = 0
    i = 0
    while i < len(document):
        segment = document[i]
        current_chunk.append(segment)
        current_length += len(segment)
        if i == len(document) - 1 or current_length >= target_seq_length:
            if current_chunk:
                a_end = 1
                if len(current_chunk) >= 2:
                    a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a = []
                for j in range(a_end):
                    tokens_a.extend(current_chunk[j])
                tokens_b = []
                is_random_next = False
                if len(current_chunk) == 1 or rng.random() < 0.5:
                    is_random_next = True
                    target_b_length = target_seq_length - len(tokens_a)
                    for _ in range(10):
                        random_document_index = rng.randint(0, len(all_documents) - 1)
                        if random_document_index != document_index:
                            break
                    random_document = all_documents[random_document_index]
                    random_start = rng.randint(0, len(random_document) - 1)
                    for j in range(random_start, len(random_document)):
                        tokens_b.extend(random_document[j])
                        if len(tokens_b) >= target_b_length:
                            break
                    num_unused_segments = len(current_chunk) - a_end
                    i -= num_unused_segments
                else:
                    is_random_next = False
                    for j in range(a_end, len(current_chunk)):
                        tokens_b.extend(current_chunk[j])
                original_truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
                instances.append((tokens_a, tokens_b, int(is_random_next)))
            current_chunk = []
            current_length = 0
        i += 1
    return instances


def albert_sentence_order_instances(all_documents, document_index, max_seq_length, short_seq_prob, rng):
    """ALBERT's create_instances_from_document with random_next_sentence=False (sentence order), draw for draw,
    without the masking step and with one documented difference: a one-sentence chunk, which ALBERT pairs with a
    random other document, yields nothing (a pair never joins two documents)."""
    document = all_documents[document_index]
    max_num_tokens = max_seq_length - 3
    target_seq_length = max_num_tokens
    if rng.random() < short_seq_prob:
        target_seq_length = rng.randint(2, max_num_tokens)
    instances = []
    current_chunk = []
    current_length = 0
    for i, segment in enumerate(document):
        current_chunk.append(segment)
        current_length += len(segment)
        if i == len(document) - 1 or current_length >= target_seq_length:
            if len(current_chunk) >= 2:
                a_end = rng.randint(1, len(current_chunk) - 1)
                tokens_a = [t for seg in current_chunk[:a_end] for t in seg]
                tokens_b = [t for seg in current_chunk[a_end:] for t in seg]
                is_swapped = rng.random() < 0.5
                if is_swapped:
                    tokens_a, tokens_b = tokens_b, tokens_a
                original_truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
                instances.append((tokens_a, tokens_b, int(is_swapped)))
            current_chunk = []
            current_length = 0
    return instances


def random_documents(seed: int):
    """40 documents of 1-15 segments of 1-40 random ids, and their flat (tokens, segment_offsets, ranges) form."""
    rng = random.Random(100 + seed)
    documents = [
        [[rng.randrange(5, 1000) for _ in range(rng.randint(1, 40))] for _ in range(rng.randint(1, 15))]
        for _ in range(40)
    ]
    tokens = np.array([t for doc in documents for seg in doc for t in seg], dtype=np.int32)
    seg_lengths = [len(seg) for doc in documents for seg in doc]
    segment_offsets = np.concatenate([[0], np.cumsum(seg_lengths)]).astype(np.int64)
    doc_bounds = np.concatenate([[0], np.cumsum([len(d) for d in documents])]).tolist()
    return documents, tokens, segment_offsets, list(zip(doc_bounds[:-1], doc_bounds[1:], strict=True))


@pytest.mark.parametrize("sentence_order", [False, True], ids=["nsp-google-research-bert", "sop-albert"])
@pytest.mark.parametrize(("seed", "max_seq_len", "short_seq_prob", "dupe"), [(0, 64, 0.1, 1), (1, 20, 0.5, 2)])
def test_pairs_match_the_original_algorithm(seed, max_seq_len, short_seq_prob, dupe, sentence_order):
    documents, tokens, segment_offsets, ranges = random_documents(seed)
    reference = albert_sentence_order_instances if sentence_order else original_create_instances_from_document
    expected = []
    original_rng = random.Random(seed)
    for _ in range(dupe):
        for index in range(len(documents)):
            expected.extend(reference(documents, index, max_seq_len, short_seq_prob, original_rng))
    original_rng.shuffle(expected)

    spans = create_pairs(segment_offsets, ranges, max_seq_len, short_seq_prob, dupe, random.Random(seed),
                         sentence_order=sentence_order)
    got = [
        (tokens[a0:a1].tolist(), tokens[b0:b1].tolist(), int(label))
        for a0, a1, b0, b1, label in zip(
            spans.a_start, spans.a_end, spans.b_start, spans.b_end, spans.nsp_labels, strict=True
        )
    ]
    assert got == expected
    assert sum(label == (SWAPPED if sentence_order else NOT_NEXT) for *_, label in got) > 0



def test_eval_files_make_the_evaluation_split(corpus_and_tokenizer, tmp_path):
    corpus, tokenizer = corpus_and_tokenizer
    valid = tmp_path / "valid.txt"  # documents 500..504: every word starts with "f", unlike the training corpus
    valid.write_text("\n\n".join("\n".join(" ".join(code(d) + fruit for fruit in FRUITS[s:s + 6]) + " ."
                                            for s in range(4)) for d in range(500, 505)) + "\n", encoding="utf-8")
    meta = prepare_pretraining_data([corpus], tokenizer, tmp_path / "out", max_seq_len=64, eval_files=[valid])
    assert meta["splits"]["eval"]["documents"] == 5 and meta["splits"]["train"]["documents"] == 200
    eval_split = PretrainingDataset(tmp_path / "out" / "eval")
    assert len(eval_split) > 0
    for example in eval_split:
        words = words_of(tokenizer, example["input_ids"][example["attention_mask"].bool()])
        assert all(w.startswith("f") for w in words if not w.startswith("["))


def test_sentence_pairs_are_one_whole_sentence_and_its_next_or_another_documents():
    rng = random.Random(0)
    lengths = [rng.randint(3, 12) for _ in range(600)]
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    bounds = [0, 150, 151, 400, 600]  # document 1 has a single sentence: it can be a random B, never an A
    documents = list(zip(bounds, bounds[1:], strict=False))
    document_of = {s: d for d, (first, last) in enumerate(documents) for s in range(first, last)}
    sentence_at = {int(start): s for s, start in enumerate(offsets[:-1])}
    spans = create_sentence_pairs(offsets, documents, 64, 0.5, random.Random(1))
    eligible = sum(last - first - 1 for first, last in documents)
    assert 0.4 * eligible < len(spans) < 0.6 * eligible
    assert 0.4 < spans.nsp_labels.mean() < 0.6
    for a_start, a_end, b_start, b_end, label in zip(spans.a_start, spans.a_end, spans.b_start, spans.b_end,
                                                     spans.nsp_labels, strict=True):
        a, b = sentence_at[int(a_start)], sentence_at[int(b_start)]  # both start at a sentence (no truncation)
        assert a_end == offsets[a + 1] and b_end == offsets[b + 1]  # ... and are that one whole sentence
        if label == IS_NEXT:
            assert b == a + 1 and document_of[b] == document_of[a]
        else:
            assert label == NOT_NEXT and document_of[b] != document_of[a]
    assert create_sentence_pairs(offsets, documents, 64, 0.0, random.Random(1)).nsp_labels.size == 0
    assert len(create_sentence_pairs(offsets, documents[:1], 64, 1.0, random.Random(1))) == 0  # no other document


def test_sentence_pairs_truncate_to_the_sequence_length():
    offsets = np.array([0, 50, 100, 130, 200])
    spans = create_sentence_pairs(offsets, [(0, 2), (2, 4)], 32, 1.0, random.Random(0))
    assert len(spans) == 2
    assert ((spans.a_end - spans.a_start) + (spans.b_end - spans.b_start) <= 29).all()


def test_sentence_pair_prob_adds_training_pairs_and_keeps_the_evaluation_split(corpus_and_tokenizer, tmp_path):
    corpus, tokenizer = corpus_and_tokenizer
    plain = prepare_pretraining_data([corpus], tokenizer, tmp_path / "plain", max_seq_len=64, seed=3)
    more = prepare_pretraining_data([corpus], tokenizer, tmp_path / "more", max_seq_len=64, seed=3,
                                    sentence_pair_prob=0.3)
    assert more["sentence_pair_prob"] == 0.3 and plain["sentence_pair_prob"] == 0.0
    assert more["splits"]["eval"] == plain["splits"]["eval"]
    files = sorted(path.name for path in (tmp_path / "plain" / "eval").iterdir())
    assert files == ["input_ids.npy", "lengths.npy", "nsp_labels.npy", "segment_a_lengths.npy"]
    assert sorted(path.name for path in (tmp_path / "more" / "eval").iterdir()) == files
    for name in files:  # the whole evaluation split, byte for byte
        assert (tmp_path / "more" / "eval" / name).read_bytes() == (tmp_path / "plain" / "eval" / name).read_bytes()
    added = more["splits"]["train"]["examples"] - plain["splits"]["train"]["examples"]
    sentences = more["corpus"]["sentences"] - more["corpus"]["documents"]  # sentences with a next one
    assert 0.2 * sentences < added < 0.4 * sentences
    data = PretrainingDataset(tmp_path / "more" / "train")
    two_sentence = [data[i] for i in range(len(data))
                    if int((data[i]["input_ids"] == tokenizer.convert_tokens_to_ids(".")).sum()) == 2]
    labels = [int(example["next_sentence_label"]) for example in two_sentence]
    assert len(two_sentence) >= added and 0.35 < np.mean(labels) < 0.65  # short pairs are no longer mostly NotNext


def test_sentence_pair_prob_errors(corpus_and_tokenizer, tmp_path):
    corpus, tokenizer = corpus_and_tokenizer
    with pytest.raises(BertError, match="sentence-pair-prob must be between 0 and 1"):
        prepare_pretraining_data([corpus], tokenizer, tmp_path / "out", sentence_pair_prob=1.5)
    for objective in ("mlm", "mlm+sop"):
        with pytest.raises(BertError, match=r"use it with --objective mlm\+nsp"):
            prepare_pretraining_data([corpus], tokenizer, tmp_path / "out", sentence_pair_prob=0.1,
                                     objective=objective)
    assert not (tmp_path / "out").exists()


def test_mlm_evaluation_files_pack_the_same_sequences_whatever_the_training_files(corpus_and_tokenizer, tmp_path):
    corpus, tokenizer = corpus_and_tokenizer
    valid = tmp_path / "valid.txt"
    valid.write_text("\n\n".join(" ".join(code(d) + fruit for fruit in FRUITS[:6]) + " ." for d in range(500, 540))
                     + "\n", encoding="utf-8")
    shorter = tmp_path / "shorter.txt"  # another training text: the first half of the documents
    documents = corpus.read_text(encoding="utf-8").split("\n\n")
    shorter.write_text("\n\n".join(documents[:len(documents) // 2]), encoding="utf-8")
    evals = []
    for name, train in (("full", corpus), ("half", shorter)):
        prepare_pretraining_data([train], tokenizer, tmp_path / name, max_seq_len=32, eval_files=[valid],
                                 objective="mlm")
        evals.append([example["input_ids"].tolist() for example in PretrainingDataset(tmp_path / name / "eval")])
    assert len(evals[0]) > 2 and evals[0] == evals[1]
