"""Token classification (named entities): word-piece label alignment, windows for long sentences, training and
prediction.

Alignment: a word's tag goes on its *first* piece; its other pieces and the special tokens get -100 (ignored by
the loss), so the model is trained and read out once per word::

    words    Empire      State  Building  =   ESB
    pieces   [CLS] em ##pire state building = es ##b [SEP]
    labels   -100  B  -100   I     I        O  B  -100 -100

Which piece belongs to which word comes from the tokenizer's word ids, not from a spelling rule such as
WordPiece's "##", so the same code aligns RoBERTa's byte-level BPE (``<s> ĠEmp ire ĠState ...``, each word read
with the space in front) and ALBERT's unigram pieces (``[CLS] ▁emp ire ▁state ...``).

A sentence with more pieces than fit in ``max_seq_len`` is split, between words, into consecutive windows that do
not overlap: every word (and its label) is in exactly one window, and nothing is cut off. A word whose pieces
alone exceed a window keeps its first ``max_seq_len - 2`` pieces. Words that produce no piece at all (e.g. a lone
zero-width space) are read as the unknown token so that they too get a prediction.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from bert.data.rows import describe
from bert.errors import BertError
from bert.finetune.batching import Feature, iterate_batches
from bert.finetune.config import FinetuneConfig, choose_metric
from bert.finetune.conll import Sentence
from bert.finetune.metrics import entity_scores, get_entities
from bert.finetune.tagged import read_sentences
from bert.finetune.task import (
    input_limit,
    start_model,
    train,
)
from bert.heads import IGNORE_INDEX
from bert.pretrained import PreTrainedModel
from bert.tokenizer.fast import FastTokenizer


def word_pieces(tokenizer: FastTokenizer, words: list[str]) -> list[list[int]]:
    """The piece ids of each word [W][pieces] (by the tokenizer's word ids); a word with no pieces becomes the
    unknown token."""
    if not words:
        return []
    encoding = tokenizer.encode_words(words)
    pieces: list[list[int]] = [[] for _ in words]
    for token_id, word in zip(encoding.ids, encoding.word_ids, strict=True):
        if word is not None:
            pieces[word].append(token_id)
    for piece_ids in pieces:
        if not piece_ids:
            piece_ids.append(tokenizer.unk_token_id)
    return pieces


def encode_sentence(tokenizer: FastTokenizer, words: list[str], tag_ids: list[int] | None, max_seq_len: int,
                    sentence_index: int = 0) -> list[Feature]:
    """The windows of one sentence, each a feature with ``input_ids``, ``token_type_ids`` (where the model reads
    them), ``labels`` (when ``tag_ids`` is given) and ``word_positions``: ``(token position, word index)`` of each
    word's first piece."""
    capacity = max_seq_len - tokenizer.num_special_tokens_to_add()
    if capacity < 1:
        raise BertError(f"max-seq-len {max_seq_len} cannot hold the {tokenizer.num_special_tokens_to_add()} special "
                        "tokens and a word piece")
    pieces = [p[:capacity] for p in word_pieces(tokenizer, words)]
    windows: list[list[int]] = []  # word indices per window
    used = capacity + 1
    for index, piece_ids in enumerate(pieces):
        if used + len(piece_ids) > capacity:
            windows.append([])
            used = 0
        windows[-1].append(index)
        used += len(piece_ids)
    features = []
    for window in windows:
        content, content_labels, starts = [], [], []
        for index in window:
            starts.append(len(content))
            content.extend(pieces[index])
            first = tag_ids[index] if tag_ids is not None else IGNORE_INDEX
            content_labels.extend([first] + [IGNORE_INDEX] * (len(pieces[index]) - 1))
        ids = tokenizer.build_inputs_with_special_tokens(content)
        # Where the content landed between the special tokens ([CLS] ... [SEP], <s> ... </s>).
        at = [i for i, special in enumerate(tokenizer.get_special_tokens_mask(content)) if not special]
        labels = [IGNORE_INDEX] * len(ids)
        for position, label in zip(at, content_labels, strict=True):
            labels[position] = label
        feature: Feature = {"input_ids": ids, "word_positions": [(at[start], index)
                                                                 for start, index in zip(starts, window, strict=True)],
                            "sentence": sentence_index}
        if "token_type_ids" in tokenizer.model_input_names:
            feature["token_type_ids"] = tokenizer.create_token_type_ids_from_sequences(content)
        if tag_ids is not None:
            feature["labels"] = labels
        features.append(feature)
    return features


def encode_sentences(tokenizer: FastTokenizer, sentences: list[Sentence], label2id: dict[str, int] | None,
                     max_seq_len: int, path: str | Path = "data") -> list[Feature]:
    """Features of every sentence (windows in order); unknown tags are a BertError when ``label2id`` is given."""
    features = []
    for number, sentence in enumerate(sentences):
        tag_ids = None
        if label2id is not None and sentence.tags is not None:
            unknown = [t for t in sentence.tags if t not in label2id]
            if unknown:
                raise BertError(f"{path}: sentence {number + 1} has tag {unknown[0]!r}, which the model does not "
                                f"know (its tags: {', '.join(label2id)})")
            tag_ids = [label2id[t] for t in sentence.tags]
        features.extend(encode_sentence(tokenizer, sentence.words, tag_ids, max_seq_len, number))
    return features


def tag_order(tags: set[str]) -> list[str]:
    """"O" first, then by entity type, B- before I- (a stable, readable label order)."""
    def key(tag: str) -> tuple:
        if tag == "O":
            return (0, "", "")
        prefix, _, type_ = tag.partition("-")
        return (1, type_, prefix)
    return sorted(tags, key=key)


@torch.no_grad()
def predict_tag_ids(model: PreTrainedModel, features: list[Feature], n_sentences: list[int],
                    pad_token_id: int, batch_size: int = 64, progress: bool = False
                    ) -> tuple[list[list[int]], list[list[list[float]]]]:
    """Tag id and probabilities of every word of every sentence ([S][W], [S][W][C]), read at first pieces.

    ``n_sentences[s]`` is the number of words of sentence s.
    """
    device = next(model.parameters()).device
    tag_ids = [[0] * n for n in n_sentences]
    probabilities: list[list[list[float]]] = [[[] for _ in range(n)] for n in n_sentences]
    for indices, batch in iterate_batches(features, batch_size, pad_token_id, progress):
        batch.pop("labels", None)
        probs = model(**{k: v.to(device) for k, v in batch.items()}).logits.float().softmax(-1).cpu()  # [B, T, C]
        for row, index in enumerate(indices):
            sentence = features[index]["sentence"]
            for position, word in features[index]["word_positions"]:
                tag_ids[sentence][word] = int(probs[row, position].argmax())
                probabilities[sentence][word] = probs[row, position].tolist()
    return tag_ids, probabilities


METRIC_NAMES = ("f1", "precision", "recall", "accuracy")  # what ner_metrics reports, as numbers


def ner_metrics(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, Any]:
    """Entity precision/recall/f1 (micro) + ``per_type`` + token accuracy."""
    scores = entity_scores(gold, predicted)
    pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)]
    token_accuracy = sum(g == p for g, p in pairs) / len(pairs) if pairs else 0.0
    return {"precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
            "accuracy": token_accuracy, "per_type": scores["per_type"]}


def finetune_ner(model: str | Path, train_file: Any, eval_file: Any, out: str | Path,
                 config: FinetuneConfig | None = None, label_names: Any = None, **settings: Any) -> dict[str, Any]:
    """Fine-tune the token classifier of ``model``'s type (BertForTokenClassification, RobertaFor..., ...) on CoNLL
    files or rows of tokens and tags (files or tables in memory; ``label_names`` for integer tags: see
    :mod:`~bert.finetune.tagged`); the best model (entity F1, or ``config.metric``) goes to ``out``."""
    config = config or FinetuneConfig(**settings)
    config.validate()
    train_sentences = read_sentences(train_file, label_names)
    eval_sentences = read_sentences(eval_file, label_names) if eval_file is not None else []
    tags = {t for s in train_sentences + eval_sentences for t in s.tags or []}
    label2id = {tag: i for i, tag in enumerate(tag_order(tags))}
    metric = choose_metric(config, "f1", METRIC_NAMES, bool(eval_sentences))
    net, tokenizer = start_model(model, "token_classification", config, out, num_labels=len(label2id),
                                 id2label={i: t for t, i in label2id.items()}, label2id=label2id)
    train_features = encode_sentences(tokenizer, train_sentences, label2id, config.max_seq_len,
                                      describe(train_file))
    evaluate = None
    if eval_sentences:
        eval_features = encode_sentences(tokenizer, eval_sentences, label2id, config.max_seq_len,
                                         describe(eval_file))
        id2label = {i: t for t, i in label2id.items()}

        def evaluate(m: PreTrainedModel) -> dict[str, Any]:
            ids, _ = predict_tag_ids(m, eval_features, [len(s.words) for s in eval_sentences],
                                     tokenizer.pad_token_id, config.eval_batch_size)
            return ner_metrics([s.tags for s in eval_sentences], [[id2label[i] for i in row] for row in ids])

    info = {"task": "ner", "model": str(model), "train_file": describe(train_file),
            "eval_file": describe(eval_file) if eval_file is not None else None, "labels": list(label2id),
            "train_sentences": len(train_sentences), "eval_sentences": len(eval_sentences)}
    return train(net, tokenizer, train_features, out, config, evaluate, main_metric=metric, info=info)


def load_tagger(model_dir: str | Path) -> tuple[PreTrainedModel, FastTokenizer]:
    from bert.inference.pipelines import load

    return load("token_classification", model_dir)


def split_words(text: str) -> list[tuple[str, tuple[int, int]]]:
    """Words of raw text as BERT splits them (whitespace and punctuation), with character offsets."""
    from tokenizers.pre_tokenizers import BertPreTokenizer

    return BertPreTokenizer().pre_tokenize_str(text)


def predict_ner(model: str | Path | tuple[PreTrainedModel, FastTokenizer],
                sentences: list[list[str]] | list[str], max_seq_len: int = 512,
                batch_size: int = 64, progress: bool = False) -> list[dict[str, Any]]:
    """Tag sentences given as word lists, or as raw strings (split with BERT's pre-tokenizer); ``progress``: a
    tqdm bar over the batches on stderr.

    One dict per sentence: ``{"tokens", "tags", "entities": [{"type", "start", "end", "text"}]}``; for raw text
    the entities also carry ``char_start``/``char_end`` and ``text`` is the exact substring.
    """
    net, tokenizer = load_tagger(model) if isinstance(model, (str, Path)) else model
    raw = [s if isinstance(s, str) else None for s in sentences]
    split = [split_words(s) if isinstance(s, str) else [(w, (0, 0)) for w in s] for s in sentences]
    words = [[w for w, _ in pieces] for pieces in split]
    features = encode_sentences(tokenizer, [Sentence(w) for w in words], None, input_limit(net, max_seq_len))
    ids, _ = predict_tag_ids(net, features, [len(w) for w in words], tokenizer.pad_token_id, batch_size, progress)
    id2label = net.config.id2label or {}
    results = []
    for s, (sentence_words, row) in enumerate(zip(words, ids, strict=True)):
        tags = [id2label.get(i, f"LABEL_{i}") for i in row]
        entities = []
        for type_, first, last in get_entities(tags):
            entity: dict[str, Any] = {"type": type_, "start": first, "end": last + 1,
                                      "text": " ".join(sentence_words[first:last + 1])}
            if raw[s] is not None:
                start, end = split[s][first][1][0], split[s][last][1][1]
                entity.update(text=raw[s][start:end], char_start=start, char_end=end)
            entities.append(entity)
        results.append({"tokens": sentence_words, "tags": tags, "entities": entities})
    return results


def predict_ner_file(model: str | Path | tuple[PreTrainedModel, FastTokenizer], path: Any,
                     max_seq_len: int = 512, label_names: Any = None
                     ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Predictions for every sentence of NER data (a CoNLL file or rows, see :mod:`~bert.finetune.tagged`; tags
    optional), and metrics when it has tags."""
    net, tokenizer = load_tagger(model) if isinstance(model, (str, Path)) else model
    sentences = read_sentences(path, label_names, require_tags=False)
    predictions = predict_ner((net, tokenizer), [s.words for s in sentences], max_seq_len,
                              progress=sys.stderr.isatty())
    metrics = None
    if sentences[0].tags is not None:
        known = net.config.label2id or {}
        for number, sentence in enumerate(sentences, 1):
            unknown = [t for t in sentence.tags or [] if t not in known]
            if unknown:
                raise BertError(f"{describe(path)}: sentence {number} has tag {unknown[0]!r}, which the model does "
                                f"not know (its tags: {', '.join(known)})")
        for prediction, sentence in zip(predictions, sentences, strict=True):
            prediction["gold"] = sentence.tags
        metrics = ner_metrics([s.tags for s in sentences], [p["tags"] for p in predictions])
    return predictions, metrics
