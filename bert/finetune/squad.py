"""Extractive question answering on SQuAD v1.1: reading the JSON, windows over long contexts, start/end labels,
decoding answers back to the exact context substring, training and prediction.

Each question becomes one or more *windows*::

    [CLS] question pieces (≤ max_query_len) [SEP] context pieces [start, start + room) [SEP]     ≤ max_seq_len

(framed by each model's own special tokens: RoBERTa's ``<s> question </s></s> context </s>``)

Successive windows start ``doc_stride`` context pieces apart (the original BERT run_squad.py meaning of the word),
so with 384 / 128 a context piece appears in up to three windows and an answer cut by one window's edge is whole
in the next. The labels of a window are the positions of the answer's first and last piece, or 0 (the [CLS]) for
both when the answer is not entirely inside it. Character offsets of the context pieces (from the tokenizer) map
any predicted span back to ``context[char_start:char_end]``, the exact original text.

Where windows overlap, a piece's start score counts only in the window where it has the most context on both
sides (the *max-context* rule of run_squad.py; see :func:`max_context_positions`): near a window's edge the model
sees half a sentence, and its scores there are less reliable than in the window centred on the piece.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bert.data.rows import describe, find_column, table_format
from bert.data.sources import is_path
from bert.errors import BertError, with_article
from bert.finetune.batching import Feature, iterate_batches
from bert.finetune.config import FinetuneConfig, choose_metric
from bert.finetune.metrics import squad_scores
from bert.finetune.tables import read_table, read_text
from bert.finetune.task import (
    input_limit,
    start_model,
    train,
)
from bert.pretrained import PreTrainedModel
from bert.tokenizer.fast import FastTokenizer

N_BEST = 20
MAX_ANSWER_LEN = 30


@dataclass
class QAExample:
    """One question on one context, with its gold answers (texts and character starts; empty when unknown)."""

    id: str
    question: str
    context: str
    answers: list[str] = field(default_factory=list)
    answer_starts: list[int] = field(default_factory=list)


def parse_slice(text: str | None) -> slice:
    """"0:38" → slice(0, 38); "38:" → slice(38, None); None or "" → everything."""
    if not text:
        return slice(None)
    try:
        start, _, stop = text.partition(":")
        return slice(int(start) if start.strip() else None, int(stop) if stop.strip() else None)
    except ValueError:
        raise BertError(f"article range {text!r} must look like START:STOP, e.g. 0:38") from None


def read_squad(path: str | Path, articles: slice | str | None = None) -> list[QAExample]:
    """The questions of a SQuAD v1.1 JSON file (``data[*].paragraphs[*].qas[*]``), of the articles in ``articles``."""
    path = Path(path)
    text = read_text(path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BertError(f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise BertError(f"{path}: not a SQuAD file: expected an object with a \"data\" list of articles")
    selected = document["data"][articles if isinstance(articles, slice) else parse_slice(articles)]
    offset = range(len(document["data"]))[articles if isinstance(articles, slice) else parse_slice(articles)]
    examples = []
    for a, article in zip(offset, selected, strict=True):
        paragraphs = _field(article, "paragraphs", list, path, f"data[{a}]")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, path, where)
            for q, qa in enumerate(_field(paragraph, "qas", list, path, where)):
                here = f"{where}.qas[{q}]"
                question = _field(qa, "question", str, path, here)
                qid = str(qa.get("id", f"{a}-{p}-{q}")) if isinstance(qa, dict) else ""
                answers = qa.get("answers", [])
                if not isinstance(answers, list):
                    raise BertError(f"{path}: {here}.answers must be a list")
                texts, starts = [], []
                for n, answer in enumerate(answers):
                    texts.append(_field(answer, "text", str, path, f"{here}.answers[{n}]"))
                    start = _field(answer, "answer_start", int, path, f"{here}.answers[{n}]")
                    if not 0 <= start <= len(context):
                        raise BertError(f"{path}: {here}.answers[{n}].answer_start {start} is outside the context")
                    starts.append(start)
                examples.append(QAExample(qid, question, context, texts, starts))
    if not examples:
        raise BertError(f"{path}: no questions in the selected articles")
    return examples


def _field(obj: Any, key: str, kind: type, path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise BertError(f"{path}: not a SQuAD file: {where} has no {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BertError(f"{path}: not a SQuAD file: {where}.{key} should be {with_article(kind.__name__)}, "
                        f"not {type(value).__name__}")
    return value


def answer_token_span(offsets: list[tuple[int, int]], char_start: int, char_end: int) -> tuple[int, int] | None:
    """First and last context piece overlapping the characters [char_start, char_end), or None."""
    first = next((i for i, (s, e) in enumerate(offsets) if e > char_start), None)
    last = next((i for i in range(len(offsets) - 1, -1, -1) if offsets[i][0] < char_end), None)
    if first is None or last is None or last < first:
        return None
    return first, last


def encode_example(tokenizer: FastTokenizer, example: QAExample, example_index: int, max_seq_len: int = 384,
                   doc_stride: int = 128, max_query_len: int = 64, with_labels: bool = True) -> list[Feature]:
    """The windows of one question. Each feature: input_ids, token_type_ids (where the model reads them),
    ``offsets`` (a (start, end) per token, None outside the context), ``example`` (index), ``context_start`` (the
    index of its first context piece among the context's pieces), and with labels
    ``start_positions``/``end_positions``."""
    question = tokenizer(example.question, add_special_tokens=False)["input_ids"][:max_query_len]
    # The tokenizer's character offsets, whatever its kind: BPE's "Ġparis" and unigram's "▁par" map to "Paris".
    context = tokenizer(example.context, add_special_tokens=False, return_offsets_mapping=True)
    context_ids, context_offsets = context["input_ids"], [tuple(o) for o in context["offset_mapping"]]
    room = max_seq_len - len(question) - tokenizer.num_special_tokens_to_add(pair=True)
    if room < 1:
        raise BertError(f"max-seq-len {max_seq_len} leaves no room for the context after a {len(question)}-piece "
                        "question; raise max-seq-len or lower max-query-len")
    if doc_stride < 1:
        raise BertError(f"doc-stride must be at least 1, got {doc_stride}")
    span = None
    if with_labels and example.answers:
        start_char = example.answer_starts[0]
        span = answer_token_span(context_offsets, start_char, start_char + len(example.answers[0]))
    features = []
    start = 0
    while True:
        length = min(room, len(context_ids) - start)
        window = context_ids[start:start + length]
        ids = tokenizer.build_inputs_with_special_tokens(question, window)
        # The context's positions: the tokens after the question's that are not special.
        at = [i for i, special in enumerate(tokenizer.get_special_tokens_mask(question, window))
              if not special][len(question):]
        offsets: list[tuple[int, int] | None] = [None] * len(ids)
        for position, offset in zip(at, context_offsets[start:start + length], strict=True):
            offsets[position] = offset
        feature: Feature = {"input_ids": ids, "offsets": offsets, "example": example_index, "context_start": start}
        if "token_type_ids" in tokenizer.model_input_names:
            feature["token_type_ids"] = tokenizer.create_token_type_ids_from_sequences(question, window)
        if with_labels:
            inside = span is not None and span[0] >= start and span[1] < start + length
            feature["start_positions"] = at[span[0] - start] if inside else 0
            feature["end_positions"] = at[span[1] - start] if inside else 0
        features.append(feature)
        if start + length >= len(context_ids):
            break
        start += min(length, doc_stride)
    return features


def encode_examples(tokenizer: FastTokenizer, examples: list[QAExample], max_seq_len: int = 384,
                    doc_stride: int = 128, max_query_len: int = 64, with_labels: bool = True) -> list[Feature]:
    return [feature for index, example in enumerate(examples)
            for feature in encode_example(tokenizer, example, index, max_seq_len, doc_stride, max_query_len,
                                          with_labels)]


def max_context_positions(windows: list[Feature]) -> list[set[int]]:
    """For each window of one example, the token positions whose context piece has its *max context* there.

    A piece's context in a window is min(pieces to its left, pieces to its right) in that window, plus 0.01 × the
    window's context length; the piece belongs to the window where that score is highest, the earliest one on a
    tie (google-research/bert run_squad.py, ``_check_is_max_context``). Windows need ``offsets`` and
    ``context_start`` (see :func:`encode_example`).
    """
    spans = []  # per window: the token positions of its context pieces, and the index of the first piece
    for window in windows:
        positions = [p for p, offset in enumerate(window["offsets"]) if offset is not None]
        spans.append((positions, window["context_start"]))
    best: dict[int, tuple[float, int]] = {}  # context piece → (score, window)
    for w, (positions, first) in enumerate(spans):
        length = len(positions)
        for i in range(length):
            score = min(i, length - 1 - i) + 0.01 * length
            if first + i not in best or score > best[first + i][0]:
                best[first + i] = (score, w)
    return [{p for i, p in enumerate(positions) if best[first + i][1] == w}
            for w, (positions, first) in enumerate(spans)]


def decode_answers(examples: list[QAExample], features: list[Feature], start_logits: list[list[float]],
                   end_logits: list[list[float]], n_best: int = N_BEST, max_answer_len: int = MAX_ANSWER_LEN,
                   max_context: bool = True) -> list[dict[str, Any]]:
    """The best answer of each example over all its windows: ``{"text", "score", "start"}`` (start = character).

    In each window the ``n_best`` highest start and end logits are paired; a pair counts if both are context
    pieces, end ≥ start and it spans ≤ ``max_answer_len`` pieces, and (with ``max_context``, the default) its start
    piece has its max context in this window (:func:`max_context_positions`); its score is start + end logit. No
    valid pair at all gives the empty answer. ``max_context=False`` lets every window propose every start.
    """
    allowed: list[set[int] | None] = [None] * len(features)
    if max_context:
        by_example: dict[int, list[int]] = {}
        for index, feature in enumerate(features):
            by_example.setdefault(feature["example"], []).append(index)
        for indices in by_example.values():
            for index, positions in zip(indices, max_context_positions([features[i] for i in indices]),
                                        strict=True):
                allowed[index] = positions
    best: list[dict[str, Any]] = [{"text": "", "score": float("-inf"), "start": -1} for _ in examples]
    for feature, starts, ends, starts_allowed in zip(features, start_logits, end_logits, allowed, strict=True):
        offsets = feature["offsets"]
        top_starts = sorted(range(len(starts)), key=lambda i: -starts[i])[:n_best]
        top_ends = sorted(range(len(ends)), key=lambda i: -ends[i])[:n_best]
        candidate = best[feature["example"]]
        for s in top_starts:
            if s >= len(offsets) or offsets[s] is None or (starts_allowed is not None and s not in starts_allowed):
                continue
            for e in top_ends:
                if e >= len(offsets) or offsets[e] is None or e < s or e - s + 1 > max_answer_len:
                    continue
                score = starts[s] + ends[e]
                if score > candidate["score"]:
                    context = examples[feature["example"]].context
                    candidate.update(text=context[offsets[s][0]:offsets[e][1]], score=score, start=offsets[s][0])
    for candidate in best:
        if candidate["start"] < 0:
            candidate["score"] = 0.0
    return best


@torch.no_grad()
def qa_logits(model: PreTrainedModel, features: list[Feature], pad_token_id: int, batch_size: int = 64,
              progress: bool = False) -> tuple[list[list[float]], list[list[float]]]:
    """Start and end logits of every feature, unpadded, in feature order."""
    device = next(model.parameters()).device
    starts: list[list[float]] = [[] for _ in features]
    ends: list[list[float]] = [[] for _ in features]
    for indices, batch in iterate_batches(features, batch_size, pad_token_id, progress):
        for key in ("start_positions", "end_positions"):
            batch.pop(key, None)
        out = model(**{k: v.to(device) for k, v in batch.items()})
        for row, index in enumerate(indices):
            length = len(features[index]["input_ids"])
            starts[index] = out.start_logits[row, :length].float().tolist()
            ends[index] = out.end_logits[row, :length].float().tolist()
    return starts, ends


def qa_metrics(examples: list[QAExample], answers: list[dict[str, Any]]) -> dict[str, float]:
    gold = {e.id: e.answers for e in examples if e.answers}
    return squad_scores({e.id: a["text"] for e, a in zip(examples, answers, strict=True)}, gold)


def finetune_qa(model: str | Path, train_file: Any, eval_file: Any, out: str | Path,
                train_articles: str | None = None, eval_articles: str | None = None, doc_stride: int = 128,
                max_query_len: int = 64, config: FinetuneConfig | None = None, max_context: bool = True,
                **settings: Any) -> dict[str, Any]:
    """Fine-tune the span extractor of ``model``'s type (BertForQuestionAnswering, RobertaFor..., ...) on SQuAD v1.1
    JSON or rows of questions (files or tables in memory: see :func:`read_questions`); the best model (F1) goes to
    ``out``.

    ``train_articles``/``eval_articles`` ("0:38") slice the files' article lists, so one file can give both.
    ``max_context`` is the evaluation's decoding rule (see :func:`decode_answers`).
    """
    settings.setdefault("max_seq_len", 384)
    config = config or FinetuneConfig(**settings)
    config.validate()
    train_examples = [e for e in read_questions(train_file, train_articles) if e.answers]
    if not train_examples:
        raise BertError(f"{describe(train_file)}: no question with an answer to train on")
    eval_examples = read_questions(eval_file, eval_articles) if eval_file is not None else []
    metric = choose_metric(config, "f1", ("f1", "exact_match"), bool(eval_examples))
    net, tokenizer = start_model(model, "question_answering", config, out)
    train_features = encode_examples(tokenizer, train_examples, config.max_seq_len, doc_stride, max_query_len)
    evaluate = None
    if eval_examples:
        eval_features = encode_examples(tokenizer, eval_examples, config.max_seq_len, doc_stride, max_query_len,
                                        with_labels=False)

        def evaluate(m: PreTrainedModel) -> dict[str, Any]:
            starts, ends = qa_logits(m, eval_features, tokenizer.pad_token_id, config.eval_batch_size)
            return qa_metrics(eval_examples, decode_answers(eval_examples, eval_features, starts, ends,
                                                            max_context=max_context))

    info = {"task": "qa", "model": str(model), "train_file": describe(train_file),
            "eval_file": describe(eval_file) if eval_file is not None else None, "train_articles": train_articles,
            "eval_articles": eval_articles, "train_questions": len(train_examples),
            "train_windows": len(train_features), "eval_questions": len(eval_examples),
            "doc_stride": doc_stride, "max_query_len": max_query_len, "max_context": max_context}
    return train(net, tokenizer, train_features, out, config, evaluate, main_metric=metric, info=info)


def load_reader(model_dir: str | Path) -> tuple[PreTrainedModel, FastTokenizer]:
    from bert.inference.pipelines import load

    return load("question_answering", model_dir)


def predict_qa(model: str | Path | tuple[PreTrainedModel, FastTokenizer],
               examples: list[QAExample] | list[tuple[str, str]], max_seq_len: int = 384, doc_stride: int = 128,
               max_query_len: int = 64, batch_size: int = 64, max_context: bool = True, progress: bool = False
               ) -> list[dict[str, Any]]:
    """Answers to questions, given as QAExample or (question, context) pairs: ``{"id", "question", "answer",
    "score", "start"}`` per question (start = character offset of the answer in the context, -1 for none).
    ``max_context=False`` turns off the max-context rule (see :func:`decode_answers`); ``progress``: a tqdm bar over
    the batches on stderr."""
    net, tokenizer = load_reader(model) if isinstance(model, (str, Path)) else model
    items = [e if isinstance(e, QAExample) else QAExample(str(i), e[0], e[1]) for i, e in enumerate(examples)]
    features = encode_examples(tokenizer, items, input_limit(net, max_seq_len), doc_stride, max_query_len,
                               with_labels=False)
    starts, ends = qa_logits(net, features, tokenizer.pad_token_id, batch_size, progress)
    answers = decode_answers(items, features, starts, ends, max_context=max_context)
    return [{"id": e.id, "question": e.question, "answer": a["text"], "score": a["score"], "start": a["start"]}
            for e, a in zip(items, answers, strict=True)]


def read_questions(source: Any, articles: str | None = None) -> list[QAExample]:
    """Questions from SQuAD v1.1 JSON (a file holding one object with a ``data`` list; ``articles`` slices them), or
    from the rows of a table (a JSONL, JSON-array or Parquet file, ``.gz`` too, or a table in memory: see
    :func:`~bert.finetune.tables.read_table`) with ``question``, ``context`` and optional ``id`` and ``answers``:
    Hugging Face's squad shape ``{"text": [...], "answer_start": [...]}`` or a list of ``{"text", "answer_start"}``."""
    if is_path(source) and _is_squad_json(Path(source)):
        return read_squad(source, articles)
    name = describe(source)
    if articles:
        raise BertError(f"{name}: an article range slices a SQuAD JSON file's articles; this data is rows")
    rows = read_table(source)
    question_key = find_column(rows[0], "question", name)
    context_key = find_column(rows[0], "context", name)
    examples = []
    for number, row in enumerate(rows, 1):
        question, context = row.get(question_key), row.get(context_key)
        if not isinstance(question, str) or not isinstance(context, str):
            raise BertError(f"{name}: row {number}: question and context must be strings")
        texts, starts = _row_answers(row.get("answers"), len(context), f"{name}: row {number}")
        examples.append(QAExample(str(row.get("id", number - 1)), question, context, texts, starts))
    return examples


def _is_squad_json(path: Path) -> bool:
    """Whether a file is SQuAD JSON rather than rows: not a table file, or a ``.json`` one that is neither an array
    nor JSON lines of questions."""
    if table_format(path) != "json":
        return table_format(path) is None
    text = read_text(path).lstrip()
    if text.startswith("["):
        return False
    try:
        first = json.loads(text.split("\n", 1)[0])
    except json.JSONDecodeError:
        return True  # a pretty-printed object: read_squad says what is wrong if it is not SQuAD
    return not (isinstance(first, dict) and "question" in first)


def _row_answers(answers: Any, context_chars: int, where: str) -> tuple[list[str], list[int]]:
    """The texts and character starts of a row's answers (none when absent)."""
    if answers is None:
        return [], []
    texts = starts = None
    if isinstance(answers, dict):  # Hugging Face's squad: {"text": [...], "answer_start": [...]}
        texts, starts = _as_list(answers.get("text")), _as_list(answers.get("answer_start"))
    elif isinstance(answers, list) and all(isinstance(a, dict) for a in answers):
        texts, starts = [a.get("text") for a in answers], [a.get("answer_start") for a in answers]
    if not isinstance(texts, list) or not isinstance(starts, list):
        raise BertError(f"{where}: answers must be {{\"text\": [...], \"answer_start\": [...]}} or a list of "
                        "{\"text\", \"answer_start\"} objects")
    if len(texts) != len(starts) or not all(isinstance(t, str) for t in texts) or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= context_chars for n in starts):
        raise BertError(f"{where}: each answer needs a text and an answer_start inside the context")
    return texts, starts


def _as_list(value: Any) -> Any:
    """A numpy array (what a DataFrame's cell holds) as a list; anything else as it is."""
    return value.tolist() if hasattr(value, "tolist") else value


def predict_qa_file(model: str | Path | tuple[PreTrainedModel, FastTokenizer], path: Any,
                    articles: str | None = None, max_seq_len: int = 384, doc_stride: int = 128,
                    max_query_len: int = 64, max_context: bool = True
                    ) -> tuple[list[dict[str, Any]], dict[str, float] | None]:
    """Predictions for every question of SQuAD JSON or rows (see :func:`read_questions`), and EM/F1 when it has gold
    answers."""
    examples = read_questions(path, articles)
    predictions = predict_qa(model, examples, max_seq_len, doc_stride, max_query_len,
                             max_context=max_context, progress=sys.stderr.isatty())
    metrics = None
    if any(e.answers for e in examples):
        metrics = qa_metrics(examples, [{"text": p["answer"]} for p in predictions])
    return predictions, metrics
