"""Data handling of fine-tuning: file readers and their errors, label maps, word-piece label alignment and NER
windows, SQuAD windows/offsets/decoding. Uses only the real bert-base-uncased vocabulary (from the MiniLM folder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bert.errors import BertError
from bert.finetune.classification import infer_label_map, label_ids, read_examples
from bert.finetune.conll import read_conll
from bert.finetune.metrics import squad_scores
from bert.finetune.ner import encode_sentence, word_pieces
from bert.finetune.squad import QAExample, decode_answers, encode_example, read_squad
from bert.finetune.tables import read_table
from bert.heads import IGNORE_INDEX
from bert.tokenizer.wordpiece import BertTokenizer


@pytest.fixture(scope="module")
def tokenizer(minilm_dir: Path) -> BertTokenizer:
    return BertTokenizer.from_pretrained(minilm_dir)


# ---- tables and labels -----------------------------------------------------------------------------------------

def test_tables_formats_and_default_columns(tmp_path: Path) -> None:
    tsv = tmp_path / "mrpc.tsv"  # GLUE style: BOM, quotes taken literally
    tsv.write_text('\ufeffQuality\t#1 String\t#2 String\n1\tHe said " hi\tShe said "bye"\n', encoding="utf-8")
    examples = read_examples(tsv)
    assert examples.columns == ["#1 String", "#2 String"]
    assert examples.texts == ['He said " hi'] and examples.pairs == ['She said "bye"'] and examples.labels == ["1"]
    csv_file = tmp_path / "data.csv"
    csv_file.write_text('text,label\n"hello, world",pos\n', encoding="utf-8")
    assert read_examples(csv_file).texts == ["hello, world"]
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text('{"question": "q?", "sentence": "s.", "label": "entailment"}\n\n', encoding="utf-8")
    assert read_examples(jsonl).pairs == ["s."]
    assert read_examples(jsonl, ["sentence"]).pairs is None


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.tsv", "  \n", "empty"),
    ("header.tsv", "sentence\tlabel\n", "no data rows"),
    ("ragged.tsv", "sentence\tlabel\na\t1\nb\n", "ragged.tsv:3: 1 columns but the header has 2"),
    ("bad.jsonl", '{"text": "a", "label": 1}\n{"text": \n', "bad.jsonl:2: not valid JSON"),
    ("list.jsonl", '["a", 1]\n', "expected a JSON object"),
])
def test_table_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BertError, match=message):
        read_table(path)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("review\tstars\ngood\t5\n", encoding="utf-8")
    with pytest.raises(BertError, match="no text column found.*the columns are: review, stars"):
        read_examples(path)
    with pytest.raises(BertError, match="no label column found.*the columns are: review, stars"):
        read_examples(path, ["review"])
    with pytest.raises(BertError, match="no text column 'body'; the columns are: review, stars"):
        read_examples(path, ["body"], "stars")
    assert read_examples(path, ["review"], "stars").labels == ["5"]


def test_label_maps() -> None:
    assert infer_label_map(["pos", "neg", "pos"]) == {"neg": 0, "pos": 1}
    assert infer_label_map(["not_entailment", "entailment"]) == {"entailment": 0, "not_entailment": 1}
    assert infer_label_map(["neutral", "contradiction", "entailment"]) == {
        "contradiction": 0, "entailment": 1, "neutral": 2}
    assert infer_label_map(["1", "0", 2]) == {"0": 0, "1": 1, "2": 2}
    assert infer_label_map([-1, 1]) == {"-1": 0, "1": 1}
    assert infer_label_map(["0.5", "3.2", "1"]) is None  # floats: regression
    assert infer_label_map(["b", "a"], existing={"b": 0, "a": 1, "c": 2}) == {"b": 0, "a": 1, "c": 2}
    assert label_ids(["pos", "neg"], {"neg": 0, "pos": 1}, "f") == [1, 0]
    assert label_ids(["1.5", 2], None, "f") == [1.5, 2.0]
    with pytest.raises(BertError, match="row 2 has label 'meh', which the model does not know"):
        label_ids(["pos", "meh"], {"neg": 0, "pos": 1}, "f")


# ---- CoNLL and NER alignment -----------------------------------------------------------------------------------

def test_conll_reader(tmp_path: Path) -> None:
    path = tmp_path / "a.conll"
    path.write_text("-DOCSTART- O\n\nEmpire\tB-loc\nState\tI-loc\n\t\nis\tO\n \nbig\tO\n", encoding="utf-8")
    sentences = read_conll(path)
    assert [s.words for s in sentences] == [["Empire", "State"], ["is"], ["big"]]
    assert sentences[0].tags == ["B-loc", "I-loc"]
    spaced = tmp_path / "b.conll"
    spaced.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n", encoding="utf-8")
    assert read_conll(spaced)[0].tags == ["B-ORG", "O"]
    tokens_only = tmp_path / "c.conll"
    tokens_only.write_text("hello\nworld\n", encoding="utf-8")
    assert read_conll(tokens_only, require_tags=False)[0].tags is None
    with pytest.raises(BertError, match="one column only"):
        read_conll(tokens_only)


def test_conll_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.conll"
    path.write_text("a\tO\nb\tNN\tO\n", encoding="utf-8")
    with pytest.raises(BertError, match="bad.conll:2: 3 columns, but line 1 has 2"):
        read_conll(path)
    empty = tmp_path / "empty.conll"
    empty.write_text("-DOCSTART- O\n\n", encoding="utf-8")
    with pytest.raises(BertError, match="no sentences"):
        read_conll(empty)


def test_first_piece_alignment(tokenizer: BertTokenizer) -> None:
    words = ["Empire", "unaffable", "\u200b", "x"]
    pieces = word_pieces(tokenizer, words)
    assert tokenizer.convert_ids_to_tokens(pieces[1]) == ["una", "##ffa", "##ble"]
    assert pieces[2] == [tokenizer.unk_token_id]  # a word with no pieces still gets a position
    [feature] = encode_sentence(tokenizer, words, [1, 2, 3, 4], max_seq_len=32)
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert tokens == ["[CLS]", "empire", "una", "##ffa", "##ble", "[UNK]", "x", "[SEP]"]
    assert feature["labels"] == [IGNORE_INDEX, 1, 2, IGNORE_INDEX, IGNORE_INDEX, 3, 4, IGNORE_INDEX]
    assert feature["word_positions"] == [(1, 0), (2, 1), (5, 2), (6, 3)]


def test_long_sentences_split_into_windows_keeping_every_label_once(tokenizer: BertTokenizer) -> None:
    words = ["unaffable", "tokenization", "a", "b", "Empire", "state", "building", "unbelievably", "x"] * 3
    tags = list(range(len(words)))
    features = encode_sentence(tokenizer, words, tags, max_seq_len=8)
    assert len(features) > 3
    labelled = [label for f in features for label in f["labels"] if label != IGNORE_INDEX]
    assert labelled == tags  # every word's label exactly once, in order
    assert [w for f in features for _, w in f["word_positions"]] == list(range(len(words)))
    for feature in features:
        assert len(feature["input_ids"]) <= 8
        assert feature["input_ids"][0] == tokenizer.cls_token_id and feature["input_ids"][-1] == tokenizer.sep_token_id
        for position, word in feature["word_positions"]:  # a word is never cut across windows
            assert feature["input_ids"][position:position + len(word_pieces(tokenizer, [words[word]])[0])] == \
                word_pieces(tokenizer, [words[word]])[0]
    # a single word longer than a window keeps its first pieces and its label
    [feature] = encode_sentence(tokenizer, ["unaffableunaffable"], [7], max_seq_len=4)
    assert len(feature["input_ids"]) == 4 and feature["labels"][1] == 7


# ---- SQuAD -------------------------------------------------------------------------------------------------------

TRICKY_CONTEXTS = [
    "Zürich  is   the largest city in Switzerland; its café culture dates to 1890.",
    "  Leading spaces,\ttabs\nand newlines — em dashes… and “quotes” around Ōsaka’s 東京 towers.  ",
    "Der Café-Besitzer sagte: naïve résumé façades cost $1,000,000 (approx.) in 2019!",
]


def _word_spans(context: str) -> list[tuple[int, int]]:
    """Character spans of every run of 1-3 consecutive whitespace-separated words."""
    import re

    words = [m.span() for m in re.finditer(r"\S+", context)]
    return [(words[i][0], words[j][1]) for i in range(len(words)) for j in range(i, min(i + 3, len(words)))]


def _labelled_windows(features: list[dict]) -> list[dict]:
    return [f for f in features if f["start_positions"] != 0]


@pytest.mark.parametrize("context", TRICKY_CONTEXTS)
def test_squad_offsets_round_trip_at_every_position(tokenizer: BertTokenizer, context: str) -> None:
    """Every answer, at every place in the context (so also at window edges and across window boundaries), is
    labelled in the windows that hold it whole, and decodes from those labels to its exact text."""
    for start, end in _word_spans(context):
        answer = context[start:end]
        example = QAExample("q", "Where?", context, [answer], [start])
        features = encode_example(tokenizer, example, 0, max_seq_len=16, doc_stride=4, max_query_len=4)
        assert len(features) > 1
        pieces = len(tokenizer.tokenize(answer))
        room = 16 - 3 - len(tokenizer.tokenize("Where?"))
        if pieces <= room - 4 + 1:  # short enough to be whole in some window, whatever its position
            assert _labelled_windows(features), f"{answer!r} is whole in no window"
        for feature in features:
            s, e = feature["start_positions"], feature["end_positions"]
            assert len(feature["input_ids"]) <= 16
            if s == 0:
                assert e == 0
                continue
            text = context[feature["offsets"][s][0]:feature["offsets"][e][1]]
            assert text == answer


def test_answers_spanning_a_window_boundary(tokenizer: BertTokenizer) -> None:
    """Shifting the answer along the context puts it across window edges: windows with part of it are labelled
    [CLS], windows with all of it point at exactly its text."""
    holds_part = holds_whole = 0
    for shift in range(8):
        context = " ".join(f"w{i}" for i in range(30 + shift)) + " Ada Lovelace wrote " + "xxx " * 20
        start = context.index("Ada Lovelace")
        example = QAExample("q", "Who?", context, ["Ada Lovelace"], [start])
        features = encode_example(tokenizer, example, 0, max_seq_len=24, doc_stride=6, max_query_len=8)
        for feature in features:
            spans = [o for o in feature["offsets"] if o is not None]
            covers_start = any(o[0] <= start < o[1] for o in spans)
            covers_end = any(o[0] < start + 12 <= o[1] for o in spans)
            if covers_start and covers_end:
                holds_whole += 1
                s, e = feature["start_positions"], feature["end_positions"]
                assert context[feature["offsets"][s][0]:feature["offsets"][e][1]] == "Ada Lovelace"
            elif covers_start or covers_end:
                holds_part += 1
                assert feature["start_positions"] == feature["end_positions"] == 0  # partial answer → [CLS]
    assert holds_part >= 1 and holds_whole >= 8


def test_oracle_logits_give_perfect_scores(tokenizer: BertTokenizer) -> None:
    """Logits peaking at the gold labels decode to the gold answers: EM = F1 = 100."""
    examples = []
    for number, context in enumerate(TRICKY_CONTEXTS * 2):
        spans = _word_spans(context)
        start, end = spans[(7 * number) % len(spans)]
        examples.append(QAExample(f"q{number}", "What is it?", context, [context[start:end]], [start]))
    features = [f for i, e in enumerate(examples)
                for f in encode_example(tokenizer, e, i, max_seq_len=20, doc_stride=5, max_query_len=5)]
    starts = [[10.0 if i == f["start_positions"] and i else 0.0 for i in range(len(f["input_ids"]))]
              for f in features]
    ends = [[10.0 if i == f["end_positions"] and i else 0.0 for i in range(len(f["input_ids"]))] for f in features]
    answers = decode_answers(examples, features, starts, ends)
    for example, answer in zip(examples, answers, strict=True):
        assert answer["start"] == example.answer_starts[0]
    scores = squad_scores({e.id: a["text"] for e, a in zip(examples, answers, strict=True)},
                          {e.id: e.answers for e in examples})
    assert scores == {"exact_match": 100.0, "f1": 100.0}


def test_decoding_respects_max_answer_length_and_context(tokenizer: BertTokenizer) -> None:
    context = "one two three four five six seven eight"
    example = QAExample("q", "Which?", context)
    [feature] = encode_example(tokenizer, example, 0, max_seq_len=64, with_labels=False)
    n = len(feature["input_ids"])
    starts = [0.0] * n
    ends = [0.0] * n
    starts[0] = ends[0] = 100.0  # [CLS] is not a valid answer
    first_context = feature["offsets"].index((0, 3))
    starts[first_context] = 5.0
    ends[first_context + 7] = 9.0  # "one ... eight": 8 pieces, over max_answer_len=3
    ends[first_context + 2] = 4.0
    [answer] = decode_answers([example], [feature], [starts], [ends], max_answer_len=3)
    assert answer["text"] == "one two three" and answer["start"] == 0 and answer["score"] == 9.0


def test_squad_structure_errors(tmp_path: Path) -> None:
    def write(content: str) -> Path:
        path = tmp_path / "s.json"
        path.write_text(content, encoding="utf-8")
        return path

    with pytest.raises(BertError, match="not valid JSON"):
        read_squad(write('{"data": ['))
    with pytest.raises(BertError, match='expected an object with a "data" list'):
        read_squad(write('{"version": "1.1"}'))
    with pytest.raises(BertError, match=r"data\[0\].paragraphs\[0\] has no 'context'"):
        read_squad(write(json.dumps({"data": [{"paragraphs": [{"qas": []}]}]})))
    with pytest.raises(BertError, match="answer_start should be an int"):
        read_squad(write(json.dumps({"data": [{"paragraphs": [{"context": "c", "qas": [
            {"id": "1", "question": "q", "answers": [{"text": "c", "answer_start": "0"}]}]}]}]})))
    with pytest.raises(BertError, match="empty"):
        read_squad(write(""))
    good = {"data": [{"title": f"t{a}", "paragraphs": [{"context": "ctx", "qas": [
        {"id": f"{a}", "question": "q", "answers": [{"text": "ctx", "answer_start": 0}]}]}]} for a in range(5)]}
    path = write(json.dumps(good))
    assert [e.id for e in read_squad(path, "1:3")] == ["1", "2"]
    assert [e.id for e in read_squad(path, "3:")] == ["3", "4"]
