"""RoBERTa's byte-level BPE, ALBERT's unigram and DistilBERT's WordPiece tokenizers (bert.variants.tokenizers) give
transformers' ids, offsets, segment ids and special-token layout: for single texts, pairs, padded batches and
truncated inputs, on tokenizers trained here and saved by transformers."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import transformers
from support import TOKENIZER_FILES, train_albert_tokenizer, train_roberta_tokenizer

import bert
from bert.inference.pipelines import DEMO_MODEL
from bert.variants.tokenizers import AlbertTokenizer, DistilBertTokenizer, RobertaTokenizer

TEXTS = [
    "The capital of France is Paris.",
    "Café crème brûlée, naïve RÉSUMÉ!",
    "東京は日本の首都です。 and 京都",
    "Emoji 😀 and 🎉 at the party 🧑‍🚀",
    "  extra   spaces  here ",
    "Don't stop: it's 42°C -- isn't it?",
    "unseen zxqvbn words Ωmega",
    "",
    "a",
]
PAIRS = list(zip(TEXTS, reversed(TEXTS), strict=True))
OURS = {"roberta": RobertaTokenizer, "albert": AlbertTokenizer, "distilbert": DistilBertTokenizer}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """variant → (its tokenizer folder, transformers' tokenizer for it)."""
    made = {}
    for variant, train in (("roberta", train_roberta_tokenizer), ("albert", train_albert_tokenizer)):
        folder = tmp_path_factory.mktemp(variant)
        made[variant] = folder, train(folder)
    folder = tmp_path_factory.mktemp("distilbert")
    for name in TOKENIZER_FILES:
        shutil.copy(DEMO_MODEL / name, folder / name)
    made["distilbert"] = folder, transformers.DistilBertTokenizerFast.from_pretrained(folder)
    return made


def reference(tokenizer, *args, **kwargs) -> dict:
    """transformers' encoding as plain lists, with the same optional keys as ours."""
    got = tokenizer(*args, **kwargs, return_offsets_mapping=True, return_special_tokens_mask=True)
    return {key: [list(map(tuple, row)) if key == "offset_mapping" else list(row) for row in value]
            if value and isinstance(value[0], list) else
            ([tuple(o) for o in value] if key == "offset_mapping" else list(value))
            for key, value in got.items()}


def ours_(tokenizer, *args, **kwargs) -> dict:
    return tokenizer(*args, **kwargs, return_offsets_mapping=True, return_special_tokens_mask=True)


def reference_keys(variant: str) -> dict:
    # transformers 5's RoBERTa and ALBERT tokenizers leave token_type_ids out unless asked; ours return them (all 0
    # for RoBERTa, 0/1 for ALBERT, whose model has two segments), as BERT's does.
    return {"return_token_type_ids": True} if variant in ("roberta", "albert") else {}


@pytest.mark.parametrize("variant", OURS)
def test_single_texts_and_pairs_match_transformers_ids_offsets_and_layout(folders, variant):
    folder, theirs = folders[variant]
    ours = OURS[variant].from_pretrained(folder)
    extra = reference_keys(variant)
    for text in TEXTS:
        assert ours_(ours, text) == reference(theirs, text, **extra), repr(text)
    for a, b in PAIRS:
        if b:  # transformers reads a lone empty text_pair as no pair at all; ours keeps the pair (batches agree)
            assert ours_(ours, a, b) == reference(theirs, a, b, **extra), (a, b)
    assert ours_(ours, TEXTS, padding=True) == reference(theirs, TEXTS, padding=True, **extra)
    a, b = map(list, zip(*PAIRS, strict=True))
    assert ours_(ours, a, b, padding="max_length", max_length=60) == reference(
        theirs, a, b, padding="max_length", max_length=60, **extra)


@pytest.mark.parametrize("variant", ["roberta", "albert"])
@pytest.mark.parametrize("strategy", ["longest_first", "only_second"])
def test_truncation_matches_transformers_for_every_length(folders, variant, strategy):
    folder, theirs = folders[variant]
    ours = OURS[variant].from_pretrained(folder)
    extra = reference_keys(variant)
    long_a, long_b = " ".join(TEXTS[:4]), " ".join(TEXTS[3:7])
    for max_length in range(6, 40, 3):
        for a, b in ((long_a, long_b), (long_b, long_a), (TEXTS[0], long_b), (long_a, long_a)):
            try:
                expected = reference(theirs, a, b, truncation=strategy, max_length=max_length, **extra)
            except Exception:  # only_second cannot cut enough: transformers raises, and so do we
                with pytest.raises(bert.BertError, match="only_second"):
                    ours_(ours, a, b, truncation=strategy, max_length=max_length)
                continue
            assert ours_(ours, a, b, truncation=strategy, max_length=max_length) == expected, (max_length, a, b)
        single = ours_(ours, long_a, truncation=True, max_length=max_length)
        assert single == reference(theirs, long_a, truncation=True, max_length=max_length, **extra)


def test_roberta_layout_specials_and_mask_that_takes_the_space_before_it(folders):
    folder, theirs = folders["roberta"]
    ours = RobertaTokenizer.from_pretrained(folder)
    assert (ours.bos_token, ours.eos_token, ours.cls_token, ours.sep_token, ours.pad_token, ours.unk_token,
            ours.mask_token) == ("<s>", "</s>", "<s>", "</s>", "<pad>", "<unk>", "<mask>")
    assert ours.all_special_tokens == theirs.all_special_tokens and ours.all_special_ids == theirs.all_special_ids
    pair = ours("one", "two")
    tokens = ours.convert_ids_to_tokens(pair["input_ids"])
    assert tokens[0] == "<s>" and tokens[-1] == "</s>" and tokens.count("</s>") == 3
    assert tokens[tokens.index("</s>") + 1] == "</s>" and set(pair["token_type_ids"]) == {0}
    masked = ours("The capital of France is <mask>.")["input_ids"]
    assert masked == theirs("The capital of France is <mask>.")["input_ids"]
    assert ours.convert_ids_to_tokens(masked[-3]) != "Ġ"  # the space went into <mask>, not a token of its own
    assert masked.count(ours.mask_token_id) == 1


def test_roberta_loads_the_original_vocab_json_and_merges_txt_alike(folders, tmp_path):
    folder, theirs = folders["roberta"]
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(folder / name, tmp_path / name)
    from_files = RobertaTokenizer.from_pretrained(tmp_path)
    from_json = RobertaTokenizer.from_pretrained(folder)
    a, b = map(list, zip(*PAIRS, strict=True))
    assert ours_(from_files, a, b, padding=True) == ours_(from_json, a, b, padding=True)
    assert from_files("is <mask>.")["input_ids"] == theirs("is <mask>.")["input_ids"]


def test_albert_lower_cases_strips_accents_and_segments_pairs(folders):
    folder, theirs = folders["albert"]
    ours = AlbertTokenizer.from_pretrained(folder)
    assert ours.do_lower_case and ours.tokenize("Café WORLD") == theirs.tokenize("Café WORLD")
    assert ours.tokenize("Café") == ours.tokenize("cafe")
    assert (ours.cls_token, ours.sep_token, ours.pad_token, ours.unk_token, ours.mask_token) == (
        "[CLS]", "[SEP]", "<pad>", "<unk>", "[MASK]")
    assert ours.all_special_tokens == theirs.all_special_tokens and ours.all_special_ids == theirs.all_special_ids
    pair = ours("one two", "three")
    tokens = ours.convert_ids_to_tokens(pair["input_ids"])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and tokens.count("[SEP]") == 2
    first_sep = tokens.index("[SEP]")
    assert pair["token_type_ids"] == [0] * (first_sep + 1) + [1] * (len(tokens) - first_sep - 1)
    assert ours("a [MASK] here")["input_ids"].count(ours.mask_token_id) == 1


def test_distilbert_returns_no_token_type_ids(folders):
    folder, _ = folders["distilbert"]
    batch = DistilBertTokenizer.from_pretrained(folder)(["one", "two three"], padding=True, return_tensors="pt")
    assert set(batch) == {"input_ids", "attention_mask"} and batch["input_ids"].dtype == torch.long


@pytest.mark.parametrize("variant", OURS)
def test_decode_and_lookups_match_transformers(folders, variant):
    folder, theirs = folders[variant]
    ours = OURS[variant].from_pretrained(folder)
    for text in TEXTS:
        ids = theirs(text)["input_ids"]
        assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True), repr(text)
        assert ours.decode(ids, skip_special_tokens=False) == theirs.decode(ids), repr(text)
        assert ours.convert_ids_to_tokens(ids) == theirs.convert_ids_to_tokens(ids)
        assert ours.convert_tokens_to_ids(ours.convert_ids_to_tokens(ids)) == ids
    assert ours.vocab_size == len(theirs) and ours.get_vocab() == theirs.get_vocab()


@pytest.mark.parametrize("variant", OURS)
def test_save_pretrained_round_trips_and_loads_in_transformers(folders, variant, tmp_path):
    folder, theirs = folders[variant]
    OURS[variant].from_pretrained(folder).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == OURS[variant].__name__
    reloaded = transformers.AutoTokenizer.from_pretrained(tmp_path)
    again = OURS[variant].from_pretrained(tmp_path)
    a, b = map(list, zip(*PAIRS, strict=True))
    extra = reference_keys(variant)
    assert reference(reloaded, a, b, padding=True, **extra) == reference(theirs, a, b, padding=True, **extra)
    assert ours_(again, a, b, padding=True) == reference(theirs, a, b, padding=True, **extra)


def test_a_tokenizer_of_another_family_or_missing_files_is_a_one_line_error(folders, tmp_path):
    with pytest.raises(bert.BertError, match="holds a Unigram model, not the BPE model of RoBERTa") as error:
        RobertaTokenizer.from_pretrained(folders["albert"][0])
    assert "\n" not in str(error.value)
    shutil.copy(DEMO_MODEL / "vocab.txt", tmp_path / "vocab.txt")
    with pytest.raises(bert.BertError, match="no tokenizer.json in"):
        AlbertTokenizer.from_pretrained(tmp_path)
    with pytest.raises(bert.BertError, match=r"no tokenizer.json or vocab.json \+ merges.txt in"):
        RobertaTokenizer.from_pretrained(tmp_path)
