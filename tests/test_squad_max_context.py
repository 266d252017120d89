"""SQuAD decoding's max-context rule (google-research/bert run_squad.py ``_check_is_max_context``), on hand-made
windows: which window owns each context piece, the tie rules, an answer that only its max-context window finds,
and ``max_context=False`` (``--no-max-context``) giving the old decoding back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import make_tiny_model

from bert.cli import main
from bert.finetune import squad
from bert.finetune.squad import QAExample, decode_answers, encode_example, max_context_positions
from bert.heads import BertForQuestionAnswering
from bert.tokenizer.wordpiece import BertTokenizer

QUESTION = 2  # question pieces in every hand-made window: [CLS] q q [SEP] context... [SEP]
CONTEXT = " ".join(f"w{i}" for i in range(10))  # ten one-piece words: piece i is "w{i}"
PIECES = [m.span() for m in re.finditer(r"\S+", CONTEXT)]


def window(first: int, length: int) -> dict:
    """A window over context pieces [first, first + length) of CONTEXT, laid out as encode_example lays it out."""
    offsets = [None] * (1 + QUESTION + 1) + PIECES[first:first + length] + [None]
    return {"input_ids": list(range(len(offsets))), "offsets": offsets, "example": 0, "context_start": first}


def position(piece: int, win: dict) -> int:
    """The token position of context piece ``piece`` inside ``win``."""
    return 1 + QUESTION + 1 + piece - win["context_start"]


def owned_pieces(windows: list[dict]) -> list[list[int]]:
    return [sorted(w["context_start"] + p - (1 + QUESTION + 1) for p in positions)
            for w, positions in zip(windows, max_context_positions(windows), strict=True)]


# Pieces 0-5, 3-8 and 6-9. Context of piece p in a window = min(left, right) + 0.01 × window length:
#   3: 2.06 | 0.06        → first      5: 0.06 | 2.06   → second    8: 0.06 | 1.04 → third
#   4: 1.06 | 1.06 (tie)  → first      7: 1.06 | 1.04   → second (the longer window)
WINDOWS = [window(0, 6), window(3, 6), window(6, 4)]


def test_each_piece_is_owned_by_the_window_where_it_has_the_most_context():
    assert owned_pieces(WINDOWS) == [[0, 1, 2, 3, 4], [5, 6, 7], [8, 9]]


def test_equal_context_goes_to_the_earlier_window_and_window_length_breaks_near_ties():
    # Piece 4 has 1 piece of context on its short side in both six-piece windows: the earlier one keeps it.
    assert owned_pieces([window(0, 6), window(3, 6)]) == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]
    # Piece 7: 1 piece of context in both windows, but 1 + 0.06 (six pieces) beats 1 + 0.04 (four pieces).
    assert 7 in owned_pieces(WINDOWS)[1]
    # One window: it owns everything, edges included.
    assert owned_pieces([window(0, 10)]) == [list(range(10))]


def logits_with(win: dict, starts: dict[int, float], ends: dict[int, float]) -> tuple[list[float], list[float]]:
    """Start and end logits of ``win``: 0 everywhere but the given context pieces."""
    n = len(win["input_ids"])
    start_logits, end_logits = [0.0] * n, [0.0] * n
    for piece, value in starts.items():
        start_logits[position(piece, win)] = value
    for piece, value in ends.items():
        end_logits[position(piece, win)] = value
    return start_logits, end_logits


def decode(windows: list[dict], logits: list[tuple[list[float], list[float]]], **options) -> dict:
    example = QAExample("q", "Which?", CONTEXT)
    [answer] = decode_answers([example], windows, [s for s, _ in logits], [e for _, e in logits], **options)
    return answer


def edge_and_centre() -> tuple[list[dict], list[tuple[list[float], list[float]]]]:
    """Window 0-5 scores "w5" (at its right edge, no context after it) 20; window 3-8, where w5 has two pieces of
    context on either side, scores "w5 w6" 12."""
    first, second = window(0, 6), window(3, 6)
    return [first, second], [logits_with(first, {5: 10.0}, {5: 10.0}), logits_with(second, {5: 6.0}, {6: 6.0})]


def test_an_answer_is_taken_only_from_the_window_where_its_start_has_the_most_context():
    windows, logits = edge_and_centre()
    answer = decode(windows, logits)
    assert answer == {"text": "w5 w6", "score": 12.0, "start": CONTEXT.index("w5")}


def test_without_max_context_every_window_proposes_every_start_as_before():
    windows, logits = edge_and_centre()
    assert decode(windows, logits, max_context=False) == {"text": "w5", "score": 20.0, "start": CONTEXT.index("w5")}
    # The rule only removes starts: an answer whose start its own window owns is found either way.
    first, second = windows
    owned = [logits_with(first, {2: 9.0}, {3: 9.0}), logits_with(second, {6: 1.0}, {6: 1.0})]
    assert decode(windows, owned) == decode(windows, owned, max_context=False)
    assert decode(windows, owned)["text"] == "w2 w3"


@pytest.fixture(scope="module")
def tokenizer(minilm_dir: Path) -> BertTokenizer:
    return BertTokenizer.from_pretrained(minilm_dir)


def test_real_windows_record_where_their_context_starts_and_every_piece_has_one_owner(tokenizer):
    context = ("Ada Lovelace wrote the first published algorithm in 1843, notes on Babbage's Analytical Engine. "
               "Her translation of Menabrea's article, with notes three times as long, appeared in Taylor's "
               "Scientific Memoirs.")
    pieces = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    windows = encode_example(tokenizer, QAExample("q", "Who wrote it?", context), 0, max_seq_len=24, doc_stride=5,
                             max_query_len=8, with_labels=False)
    assert len(windows) > 3
    owners: dict[int, int] = {}
    for w, (win, positions) in enumerate(zip(windows, max_context_positions(windows), strict=True)):
        context_positions = [p for p, o in enumerate(win["offsets"]) if o is not None]
        for i, p in enumerate(context_positions):
            assert tuple(pieces[win["context_start"] + i]) == win["offsets"][p]
            if p in positions:
                assert win["context_start"] + i not in owners
                owners[win["context_start"] + i] = w
    assert sorted(owners) == list(range(len(pieces)))


def test_oracle_logits_decode_every_answer_when_windows_leave_room_around_it(tokenizer):
    """With (room − stride) / 2 ≥ the answer's length, the window that owns an answer's first piece holds all of
    it, so logits peaking at the gold labels give the gold answer for answers at every place in the context."""
    context = " ".join(f"word{i}" for i in range(60))
    examples = [QAExample(f"q{i}", "Which?", context, [f"word{i} word{i + 1}"], [context.index(f"word{i} ")])
                for i in range(58)]
    features = [f for i, e in enumerate(examples)
                for f in encode_example(tokenizer, e, i, max_seq_len=40, doc_stride=6, max_query_len=4)]
    starts = [[10.0 if i == f["start_positions"] and i else 0.0 for i in range(len(f["input_ids"]))]
              for f in features]
    ends = [[10.0 if i == f["end_positions"] and i else 0.0 for i in range(len(f["input_ids"]))] for f in features]
    for example, answer in zip(examples, decode_answers(examples, features, starts, ends), strict=True):
        assert answer["text"] == example.answers[0]


def test_no_max_context_reaches_the_decoder_from_finetune_and_predict_and_the_rule_is_on_by_default(
        tmp_path, monkeypatch):
    model = make_tiny_model(tmp_path / "qa", cls=BertForQuestionAnswering)
    context = "Ada Lovelace wrote the notes in 1843 about the engine of Charles Babbage."
    squad_json = tmp_path / "squad.json"
    squad_json.write_text(json.dumps({"data": [{"paragraphs": [{"context": context, "qas": [
        {"id": "a", "question": "Who wrote the notes?", "answers": [{"text": "Ada Lovelace", "answer_start": 0}]},
        {"id": "b", "question": "When?", "answers": [{"text": "1843", "answer_start": context.index("1843")}]},
    ]}]}]}))
    seen = []

    def recording_decode(*args, **kwargs):
        seen.append(kwargs["max_context"])
        return decode_answers(*args, **kwargs)

    monkeypatch.setattr(squad, "decode_answers", recording_decode)
    finetune = ["finetune", "qa", "--model", str(model), "--train", str(squad_json), "--eval", str(squad_json),
                "--max-steps", "1", "--batch-size", "2", "--max-seq-len", "24", "--doc-stride", "4", "--no-progress"]
    for number, switch in enumerate(([], ["--no-max-context"])):
        assert main([*finetune, "--out", str(tmp_path / f"run{number}"), *switch]) == 0
    assert seen and set(seen[:len(seen) // 2]) == {True} and set(seen[len(seen) // 2:]) == {False}
    seen.clear()
    question = ["predict", "qa", "--model", str(model), "--question", "Who?", "--context", context]
    assert main(question) == 0
    assert main([*question, "--no-max-context"]) == 0
    assert seen == [True, False]
