"""Sequence classification (single sentences or pairs) and regression: data, training and prediction.

    result = finetune_classifier("all-MiniLM-L6-v2", "train.tsv", "dev.tsv", "runs/sst2", epochs=1)
    predict_classifier("runs/sst2", ["a gripping film"])  # [{"label": "1", "probabilities": {...}}]

The data is a table file (CSV, TSV, JSONL, JSON, Parquet, ``.gz`` too) or a table held in memory (a list of dicts, a
pandas DataFrame, a ``datasets.Dataset``): see :mod:`~bert.finetune.tables`.

Labels: strings are mapped to ids in sorted order (GLUE's order for entailment/not_entailment and for
contradiction/entailment/neutral), non-negative integers are their own ids, and floats make it a regression
(one output, MSE loss). The map is stored in config.json (``id2label``/``label2id``) so that the saved model
answers with label names, in our classes and in transformers alike.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bert.data.rows import describe
from bert.errors import BertError
from bert.finetune.batching import Feature, iterate_batches
from bert.finetune.config import FinetuneConfig, choose_metric
from bert.finetune.metrics import accuracy, binary_f1, macro_f1, pearson, spearman
from bert.finetune.tables import read_table, resolve_label_column, resolve_text_columns
from bert.finetune.task import (
    input_limit,
    start_model,
    train,
)
from bert.hub import resolve_model_folder
from bert.pretrained import PreTrainedModel
from bert.tokenizer.fast import FastTokenizer

# Label sets with a conventional order (GLUE's), used when the data's labels are exactly one of these.
KNOWN_LABEL_ORDERS = (("entailment", "not_entailment"), ("contradiction", "entailment", "neutral"),
                      ("negative", "positive"), ("neg", "pos"))
MAX_INTEGER_LABEL = 1000


@dataclass
class TextExamples:
    """Rows of a classification file: texts [N], optional second texts [N], optional raw labels [N]."""

    texts: list[str]
    pairs: list[str] | None
    labels: list[Any] | None
    columns: list[str]


def read_examples(source: Any, text_columns: list[str] | None = None, label_column: str | None = None,
                  require_labels: bool = True) -> TextExamples:
    """Read texts (and labels) from a table (a file, or rows in memory: see :func:`~bert.finetune.tables.read_table`);
    columns by name or by the usual defaults."""
    rows = read_table(source)
    path = describe(source)
    columns = resolve_text_columns(rows, path, text_columns)
    label_key = resolve_label_column(rows, path, label_column, required=require_labels)
    data: dict[str, list] = {c: [] for c in columns}
    labels: list[Any] = []
    for number, row in enumerate(rows, 1):
        for column in columns:
            value = row.get(column)
            if not isinstance(value, str):
                raise BertError(f"{path}: row {number} has no text in column {column!r}")
            data[column].append(value)
        if label_key is not None:
            value = row.get(label_key)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise BertError(f"{path}: row {number} has no label in column {label_key!r}")
            labels.append(value.strip() if isinstance(value, str) else value)
    return TextExamples(data[columns[0]], data[columns[1]] if len(columns) == 2 else None,
                        labels if label_key is not None else None, columns)


def _parse(value: Any) -> int | float | str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return value
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
        return number if math.isfinite(number) else str(value)
    except ValueError:
        return str(value)


def infer_label_map(raw_labels: list[Any], existing: dict[str, int] | None = None) -> dict[str, int] | None:
    """label name → id for classification, or None for regression (every label a number, some not integers).

    ``existing`` (a fine-tuned model's label2id) is kept when it covers every label.
    """
    parsed = [_parse(v) for v in raw_labels]
    if all(isinstance(v, (int, float)) for v in parsed) and any(isinstance(v, float) for v in parsed):
        return None
    names = {str(v) for v in parsed}
    if existing and names <= set(existing):
        return dict(existing)
    if all(isinstance(v, int) for v in parsed) and min(parsed) >= 0 and max(parsed) < MAX_INTEGER_LABEL:
        return {str(i): i for i in range(max(parsed) + 1)}
    for order in KNOWN_LABEL_ORDERS:
        if names == set(order) or (len(order) == 2 and names < set(order)):
            return {name: i for i, name in enumerate(order)}
    if all(isinstance(v, int) for v in parsed):
        return {str(v): i for i, v in enumerate(sorted({int(v) for v in parsed}))}
    return {name: i for i, name in enumerate(sorted(names))}


def label_ids(raw_labels: list[Any], label2id: dict[str, int] | None, path: str | Path) -> list[int] | list[float]:
    """Targets for the model: ids via ``label2id``, or floats for regression; unknown labels are a BertError."""
    if label2id is None:
        values = [_parse(v) for v in raw_labels]
        bad = [v for v in values if not isinstance(v, (int, float))]
        if bad:
            raise BertError(f"{path}: label {bad[0]!r} is not a number, but the model is a regressor")
        return [float(v) for v in values]
    ids = []
    for number, value in enumerate(raw_labels, 1):
        name = str(_parse(value))
        if name not in label2id:
            raise BertError(f"{path}: row {number} has label {name!r}, which the model does not know "
                            f"(its labels: {', '.join(label2id)})")
        ids.append(label2id[name])
    return ids


def encode_examples(tokenizer: FastTokenizer, examples: TextExamples, max_seq_len: int,
                    targets: list[int] | list[float] | None = None) -> list[Feature]:
    """Token ids (and segment ids, where the model reads them) of each text or pair, truncated to
    ``max_seq_len`` by the tokenizer's pair rule, with its target."""
    encoded = tokenizer(examples.texts, examples.pairs, truncation=True, max_length=max_seq_len)
    keys = [key for key in ("input_ids", "token_type_ids") if key in encoded]
    features = []
    for i in range(len(examples.texts)):
        feature: Feature = {key: encoded[key][i] for key in keys}
        if targets is not None:
            feature["labels"] = targets[i]
        features.append(feature)
    return features


@torch.no_grad()
def classifier_logits(model: PreTrainedModel, features: list[Feature], pad_token_id: int,
                      batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """Logits [N, C] in the order of ``features`` (C = 1 for regression); ``progress``: a bar over the batches."""
    device = next(model.parameters()).device
    result = torch.empty(len(features), model.config.num_labels)
    for indices, batch in iterate_batches(features, batch_size, pad_token_id, progress):
        batch.pop("labels", None)
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
        result[indices] = logits.float().cpu()
    return result


def metric_names(label2id: dict[str, int] | None) -> tuple[str, ...]:
    """The names :func:`classification_metrics` reports for this label map (None: regression)."""
    if label2id is None:
        return ("pearson", "spearman", "mse")
    return ("accuracy", "f1", "binary_f1") if len(label2id) == 2 else ("accuracy", "f1")


def classification_metrics(logits: torch.Tensor, targets: list[int] | list[float]) -> dict[str, float]:
    """accuracy + f1 (macro) (+ binary_f1 of class 1 for two classes), or pearson + spearman + mse for regression."""
    if logits.shape[1] == 1:
        predicted = logits[:, 0].tolist()
        mse = sum((p - t) ** 2 for p, t in zip(predicted, targets, strict=True)) / len(targets)
        return {"pearson": pearson(predicted, targets), "spearman": spearman(predicted, targets), "mse": mse}
    predicted = logits.argmax(-1).tolist()
    metrics = {"accuracy": accuracy(targets, predicted), "f1": macro_f1(targets, predicted)}
    if logits.shape[1] == 2:
        metrics["binary_f1"] = binary_f1(targets, predicted)
    return metrics


def finetune_classifier(model: str | Path, train_file: Any, eval_file: Any, out: str | Path,
                        text_columns: list[str] | None = None, label_column: str | None = None,
                        config: FinetuneConfig | None = None, **settings: Any) -> dict[str, Any]:
    """Fine-tune the sequence classifier of ``model``'s type (BertForSequenceClassification,
    RobertaForSequenceClassification, ...) from ``model`` (a folder or name); the best model goes to ``out``.
    ``train_file``/``eval_file`` (or None): table files or tables in memory (see :func:`read_examples`).

    ``settings`` are :class:`FinetuneConfig` fields (epochs=1, lr=3e-5, ...). Returns metrics.json's content.
    """
    config = config or FinetuneConfig(**settings)
    config.validate()
    train_examples = read_examples(train_file, text_columns, label_column)
    eval_examples = read_examples(eval_file, text_columns, label_column) if eval_file is not None else None
    existing = _trained_label2id(model)
    all_labels = train_examples.labels + (eval_examples.labels if eval_examples else [])
    label2id = infer_label_map(all_labels, existing)
    metric = choose_metric(config, "accuracy" if label2id is not None else "pearson", metric_names(label2id),
                           eval_examples is not None)
    if label2id is None:
        net, tokenizer = start_model(model, "sequence_classification", config, out, num_labels=1)
        net.config.id2label, net.config.label2id = {0: "score"}, {"score": 0}
    else:
        id2label = {i: name for name, i in label2id.items()}
        net, tokenizer = start_model(model, "sequence_classification", config, out, num_labels=len(label2id),
                                     id2label=id2label, label2id=label2id)
    train_features = encode_examples(tokenizer, train_examples, config.max_seq_len,
                                     label_ids(train_examples.labels, label2id, describe(train_file)))
    evaluate = None
    if eval_examples is not None:
        eval_targets = label_ids(eval_examples.labels, label2id, describe(eval_file))
        eval_features = encode_examples(tokenizer, eval_examples, config.max_seq_len, eval_targets)

        def evaluate(m: PreTrainedModel) -> dict[str, Any]:
            logits = classifier_logits(m, eval_features, tokenizer.pad_token_id, config.eval_batch_size)
            return classification_metrics(logits, eval_targets)

    info = {"task": "classify" if label2id is not None else "regression", "model": str(model),
            "train_file": describe(train_file), "eval_file": describe(eval_file) if eval_file is not None else None,
            "text_columns": train_examples.columns, "labels": list(label2id) if label2id else None,
            "eval_examples": len(eval_examples.texts) if eval_examples else 0}
    return train(net, tokenizer, train_features, out, config, evaluate, main_metric=metric, info=info)


def _trained_label2id(model: str | Path) -> dict[str, int] | None:
    """The label map of an already fine-tuned classifier (names other than transformers' LABEL_i), else None."""
    from bert.config import read_config_json

    id2label = read_config_json(resolve_model_folder(model) / "config.json").get("id2label")  # of any model type
    if not isinstance(id2label, dict) or not id2label or all(str(v) == f"LABEL_{k}" for k, v in id2label.items()):
        return None
    return {str(v): int(k) for k, v in id2label.items()}


def load_classifier(model_dir: str | Path) -> tuple[PreTrainedModel, FastTokenizer]:
    """A fine-tuned classifier of any model type and its tokenizer, in eval mode (the head must be trained)."""
    from bert.inference.pipelines import load

    return load("sequence_classification", model_dir)


def predict_classifier(model: str | Path | tuple[PreTrainedModel, FastTokenizer],
                       texts: list[str], pairs: list[str] | None = None, max_seq_len: int = 512,
                       batch_size: int = 64, progress: bool = False) -> list[dict[str, Any]]:
    """One dict per text: ``{"label", "probabilities": {label: p}}``, or ``{"score"}`` for a regressor.
    ``progress``: a tqdm bar over the batches on stderr."""
    net, tokenizer = load_classifier(model) if isinstance(model, (str, Path)) else model
    if pairs is not None and len(pairs) != len(texts):
        raise BertError(f"{len(texts)} texts but {len(pairs)} second texts")
    features = encode_examples(tokenizer, TextExamples(texts, pairs, None, []), input_limit(net, max_seq_len))
    logits = classifier_logits(net, features, tokenizer.pad_token_id, batch_size, progress)
    if net.config.num_labels == 1:
        return [{"score": float(row[0])} for row in logits]
    id2label = net.config.id2label or {i: f"LABEL_{i}" for i in range(net.config.num_labels)}
    results = []
    for row in logits.softmax(-1):
        best = int(row.argmax())
        results.append({"label": id2label[best],
                        "probabilities": {id2label[i]: round(float(p), 6) for i, p in enumerate(row)}})
    return results


def predict_classifier_file(model: str | Path | tuple[PreTrainedModel, FastTokenizer], path: Any,
                            text_columns: list[str] | None = None, label_column: str | None = None,
                            max_seq_len: int = 512) -> tuple[list[dict[str, Any]], dict[str, float] | None]:
    """Predictions for every row of a table (a file or rows in memory, with its text), and metrics when it has
    labels. ``model``: a folder, or a loaded (model, tokenizer) as :func:`load_classifier` returns."""
    net, tokenizer = load_classifier(model) if isinstance(model, (str, Path)) else model
    examples = read_examples(path, text_columns, label_column, require_labels=label_column is not None)
    predictions = predict_classifier((net, tokenizer), examples.texts, examples.pairs, max_seq_len,
                                     progress=sys.stderr.isatty())
    for i, prediction in enumerate(predictions):
        prediction["text"] = examples.texts[i]
        if examples.pairs is not None:
            prediction["text_pair"] = examples.pairs[i]
    metrics = None
    if examples.labels is not None:
        label2id = None if net.config.num_labels == 1 else (net.config.label2id or {})
        targets = label_ids(examples.labels, label2id, describe(path))
        for prediction, target in zip(predictions, examples.labels, strict=True):
            prediction["gold"] = target
        if label2id is None:
            predicted = torch.tensor([[p["score"]] for p in predictions])
        else:
            predicted = torch.zeros(len(predictions), net.config.num_labels)
            for row, prediction in enumerate(predictions):
                predicted[row, label2id[prediction["label"]]] = 1.0
        metrics = classification_metrics(predicted, targets)
    return predictions, metrics
