"""Property tests (hypothesis): the tokenizer on any text, the masking collator on any batch, the checkpoint name
map on any mix of name variants, and the streaming corpus reader on any split of its input."""

from __future__ import annotations

import io
import math
import string
import unicodedata

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support import perturb

import bert
from bert.data.corpus import DocumentPart, _bounded_lines
from bert.data.masking import IGNORE_INDEX, MaskingCollator
from bert.data.tokenized import tokenize_documents
from bert.tokenizer.wordpiece import BertTokenizer
from bert.weights import load_into

SETTINGS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tokenizer(minilm_dir) -> BertTokenizer:
    return BertTokenizer.from_pretrained(minilm_dir)  # bert-base-uncased's vocabulary


# ---- tokenizer ------------------------------------------------------------------------------------------------------

@SETTINGS
@given(text=st.text(max_size=200), other=st.text(max_size=50))
def test_any_unicode_encodes_with_offsets_inside_the_text_and_in_order(tokenizer, text, other):
    for encoding, sources in ((tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True), None),
                              (tokenizer(text, other, return_offsets_mapping=True, return_special_tokens_mask=True),
                               (text, other))):
        ids, offsets, special = encoding["input_ids"], encoding["offset_mapping"], encoding["special_tokens_mask"]
        assert all(0 <= i < tokenizer.vocab_size for i in ids)
        types = encoding["token_type_ids"]
        previous = {0: (0, 0), 1: (0, 0)}
        for (start, end), is_special, segment in zip(offsets, special, types, strict=True):
            if is_special:
                assert (start, end) == (0, 0)
                continue
            source = text if sources is None else sources[segment]
            assert 0 <= start < end <= len(source), (start, end, source)
            assert (start, end) >= previous[segment]  # tokens follow the text: starts (then ends) never go back
            previous[segment] = (start, end)
    tokenizer.decode(tokenizer.encode(text, other))  # and back, without an error


# Characters of bert-base-uncased's vocabulary (so that [UNK] stays rare), plus the ones its normaliser removes.
IN_VOCABULARY = (string.ascii_letters + string.digits + string.punctuation + "éèêëàâçñöüïîôûÉÀÇÑÖÜ"
                 + "αβγδεζηθλμπσω" + "абвгдежзиклмнопрст" + "中文日本語人大" + "ßøåæ")
REMOVED = "\x00\x01\x07\x1b\x7f\u200b\u200d\ufeff\u00ad\ufffd"
WHITESPACE = " \t\n\r\u00a0\u3000"


def bert_normalised(text: str) -> str:
    """BERT's uncased normalisation, written out: drop NUL, U+FFFD and control/format characters, lower-case, strip
    accents (NFD, then drop combining marks). Whitespace is left out of the comparison, so not normalised here."""
    kept = []
    for char in text:
        if char in "\t\n\r":
            kept.append(" ")
        elif ord(char) in (0, 0xFFFD) or unicodedata.category(char) in ("Cc", "Cf"):
            continue
        else:
            kept.append(char)
    lowered = "".join(kept).lower()
    return "".join(c for c in unicodedata.normalize("NFD", lowered) if unicodedata.category(c) != "Mn")


@SETTINGS
@given(text=st.text(alphabet=IN_VOCABULARY + REMOVED + WHITESPACE, max_size=80))
def test_decoding_the_ids_gives_the_bert_normalised_text_up_to_whitespace(tokenizer, text):
    """decode(encode(text)) joins word pieces and puts spaces between words (and removes some before punctuation):
    with the whitespace taken out, it is exactly the lower-cased, accent-stripped, cleaned text."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    assume(tokenizer.unk_token_id not in ids)  # a word the vocabulary cannot spell, or one over 100 characters
    assume("[" not in text)  # "[MASK]" and friends written in the text are tokens of their own
    decoded = tokenizer.decode(ids)
    assert "".join(decoded.split()) == "".join(bert_normalised(text).split())


# ---- masking collator ------------------------------------------------------------------------------------------------

VOCAB, PAD, UNK, CLS, SEP, MASK = 40, 0, 1, 2, 3, 4


@st.composite
def masking_cases(draw):
    batch, length = draw(st.integers(1, 4)), draw(st.integers(3, 40))
    rows, masks = [], []
    for _ in range(batch):
        real = draw(st.integers(2, length))
        body = draw(st.lists(st.integers(UNK, VOCAB - 1), min_size=real - 2, max_size=real - 2))
        separators = draw(st.lists(st.integers(0, max(0, real - 3)), max_size=2))
        for position in separators:  # a second [SEP] inside, [MASK]s already in the input
            if body:
                body[position % len(body)] = draw(st.sampled_from([SEP, MASK, CLS]))
        rows.append([CLS, *body, SEP] + [PAD] * (length - real))
        masks.append([1] * real + [0] * (length - real))
    return {
        "input_ids": torch.tensor(rows),
        "attention_mask": torch.tensor(masks),
        "mlm_probability": draw(st.sampled_from([0.05, 0.15, 0.5, 1.0])),
        "max_predictions": draw(st.one_of(st.none(), st.integers(1, 12))),
        "whole_word": draw(st.booleans()),
        "continuation": torch.tensor(draw(st.lists(st.booleans(), min_size=VOCAB, max_size=VOCAB))),
        "seed": draw(st.integers(0, 2**31)),
    }


@SETTINGS
@given(case=masking_cases())
def test_masking_never_touches_specials_or_padding_and_labels_exactly_the_selected_positions(case):
    collator = MaskingCollator(
        vocab_size=VOCAB, mask_token_id=MASK, cls_token_id=CLS, sep_token_id=SEP, pad_token_id=PAD,
        is_continuation=case["continuation"], whole_word_masking=case["whole_word"],
        mlm_probability=case["mlm_probability"], max_predictions_per_seq=case["max_predictions"], seed=case["seed"])
    ids, attention = case["input_ids"], case["attention_mask"]
    out = collator({"input_ids": ids, "attention_mask": attention, "token_type_ids": torch.zeros_like(ids)})
    masked, labels = out["input_ids"], out["labels"]
    selected = labels != IGNORE_INDEX
    protected = torch.isin(ids, torch.tensor([PAD, CLS, SEP, MASK])) | (attention == 0)

    assert not (selected & protected).any()  # never a special token or padding
    assert torch.equal(labels[selected], ids[selected])  # labels hold the original ids where selected ...
    assert torch.equal(masked[~selected], ids[~selected])  # ... and -100 exactly where the input is untouched
    replaced = masked[selected]
    assert bool(((replaced == MASK) | (replaced == ids[selected]) | ~torch.isin(replaced, torch.tensor(
        [PAD, CLS, SEP, MASK]))).all())  # [MASK], the original, or a random ordinary token
    cap = case["max_predictions"] or math.ceil(round(case["mlm_probability"] * ids.shape[1], 9))
    counts = selected.sum(1)
    assert bool((counts <= cap).all())  # max_predictions_per_seq (or its default) holds
    if not case["whole_word"]:
        assert bool((counts[(~protected).sum(1) > 0] >= 1).all())  # every sequence that can be masked is
    else:  # a word (a token and the ## pieces after it) is selected whole or not at all
        continues = case["continuation"][ids] & ~protected
        continues[:, 0] = False
        inside_word = continues & ~protected.roll(1, dims=1)  # a ## piece right after another candidate
        assert torch.equal(selected[inside_word], selected.roll(1, dims=1)[inside_word])


# ---- checkpoint name map ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = bert.BertForPreTraining(bert.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2,
                                                    num_attention_heads=2, intermediate_size=16,
                                                    max_position_embeddings=12))
    model.init_weights()  # the tied decoder is stored once, as the word embeddings, as in HF's files
    # LayerNorms and biases distinct in every layer (fresh, they are 1 and 0 everywhere, as in the model loaded into,
    # so a tensor loaded into another's place, or not loaded at all, would go unseen)
    perturb(model)
    state = {name: tensor.clone() for name, tensor in model.state_dict().items() if name not in model.tied_weights}
    fresh = bert.BertForPreTraining(model.config).state_dict()
    for name, tensor in state.items():
        assert not torch.equal(tensor, fresh[name]), name  # no tensor keeps the value a fresh model has
        assert not any(torch.equal(tensor, other) for n, other in state.items() if n != name and other.shape ==
                       tensor.shape), name  # nor equals another tensor of its shape
    return state


@st.composite
def checkpoint_layouts(draw, names: list[str]):
    """Per tensor: with or without the bert. prefix, gamma/beta or weight/bias; per file: position_ids and
    token_type_ids buffers, decoder.bias and/or predictions.bias, the tied decoder stored or not; any order."""
    choices = {name: (draw(st.booleans()), draw(st.booleans())) for name in names}
    extras = {
        "position_ids": draw(st.sampled_from(["none", "bert.embeddings.position_ids", "embeddings.position_ids"])),
        "token_type_ids": draw(st.sampled_from(["none", "bert.embeddings.token_type_ids"])),
        "mlm_bias": draw(st.sampled_from(["predictions", "decoder", "both"])),
        "decoder_weight": draw(st.booleans()),
    }
    order = draw(st.permutations(range(len(names) + 4)))
    return choices, extras, order


def build_layout(reference: dict[str, torch.Tensor], choices, extras, order) -> dict[str, torch.Tensor]:
    items = []
    for name, tensor in reference.items():
        drop_prefix, legacy_norm = choices[name]
        if name == "cls.predictions.bias":
            names = {"predictions": [name], "decoder": ["cls.predictions.decoder.bias"],
                     "both": [name, "cls.predictions.decoder.bias"]}[extras["mlm_bias"]]
            items += [(n, tensor.clone()) for n in names]
            continue
        if drop_prefix:
            name = name.removeprefix("bert.")
        if legacy_norm and "LayerNorm" in name:
            name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        items.append((name, tensor.clone()))
    length = reference["bert.embeddings.position_embeddings.weight"].shape[0]
    if extras["position_ids"] != "none":
        items.append((extras["position_ids"], torch.arange(length)[None]))
    if extras["token_type_ids"] != "none":
        items.append((extras["token_type_ids"], torch.zeros(1, length, dtype=torch.long)))
    if extras["decoder_weight"]:
        items.append(("cls.predictions.decoder.weight", reference["bert.embeddings.word_embeddings.weight"].clone()))
    ranked = sorted(range(len(items)), key=lambda i: order[i] if i < len(order) else i)
    return dict(items[i] for i in ranked)


def test_every_mix_of_checkpoint_name_variants_loads_the_identical_tensors(reference):
    config = bert.BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=16, max_position_embeddings=12)

    @SETTINGS
    @given(layout=checkpoint_layouts(sorted(reference)))
    def check(layout):
        state = build_layout(reference, *layout)
        torch.manual_seed(1)
        model = bert.BertForPreTraining(config)  # different random weights until loaded
        report = load_into(model, state)
        assert report.missing == [] and report.unexpected == []
        loaded = model.state_dict()
        for name, tensor in reference.items():
            assert torch.equal(loaded[name], tensor), name
        embeddings = reference["bert.embeddings.word_embeddings.weight"]
        assert torch.equal(loaded["cls.predictions.decoder.weight"], embeddings)
        encoder = bert.BertModel(config)
        load_into(encoder, state)
        for name, tensor in encoder.state_dict().items():
            assert torch.equal(tensor, reference["bert." + name]), name

    check()


# ---- the streaming corpus reader -------------------------------------------------------------------------------------

@SETTINGS
@given(content=st.one_of(st.binary(max_size=400), st.text(max_size=200).map(lambda t: t.encode("utf-8"))),
       limit=st.integers(1, 40))
def test_lines_read_in_bounded_pieces_rejoin_to_the_exact_bytes(content, limit):
    pieces = list(_bounded_lines(io.BytesIO(content), limit=limit))
    assert b"".join(piece for piece, _ in pieces) == content
    assert all(piece for piece, _ in pieces)  # no empty piece (it would read as a blank line)
    assert all(len(piece) <= 2 * limit + 3 for piece, _ in pieces)
    assert sum(ends for _, ends in pieces) == content.count(b"\n") + (not content.endswith(b"\n") and bool(content))
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return
    for piece, _ in pieces:  # valid text is never cut inside a character
        piece.decode("utf-8")


SENTENCES = st.text(alphabet="abc xyz.,!é中\x00\u200b", min_size=0, max_size=30)


@SETTINGS
@given(documents=st.lists(st.lists(SENTENCES, max_size=6), max_size=8), data=st.data())
def test_tokenizing_in_batches_and_parts_gives_the_same_corpus_as_all_at_once(tokenizer, documents, data):
    whole = tokenize_documents(documents, tokenizer.backend, batch_sentences=10**9, batch_chars=10**12)
    parts = []
    for document in documents:
        cuts = sorted(data.draw(st.lists(st.integers(0, len(document)), max_size=3)))
        bounds = [0, *cuts, len(document)]
        pieces = [document[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        parts += [DocumentPart(piece) for piece in pieces[:-1]] + [pieces[-1]]
    streamed = tokenize_documents(parts, tokenizer.backend, batch_sentences=data.draw(st.integers(1, 5)),
                                  batch_chars=data.draw(st.integers(1, 60)))
    assert streamed.tokens.tolist() == whole.tokens.tolist()
    assert streamed.segment_offsets.tolist() == whole.segment_offsets.tolist()
    assert streamed.document_offsets.tolist() == whole.document_offsets.tolist()
    assert streamed.empty_documents == whole.empty_documents
