"""The everyday jobs of a pretrained BERT: fill in masked words, judge whether B follows A, and embed text.

Each function takes a model and a tokenizer, so it works with any checkpoint, and returns plain Python values
(or tensors for vectors). :func:`load` builds both from a name, with the bundled demo model as the fallback when
the default ``bert-base-uncased`` cannot be found or downloaded.

    model, tokenizer = load(BertForMaskedLM, "bert-base-uncased")
    fill_mask(model, tokenizer, "The capital of France is [MASK].")[0][0]   # {'token': 'paris', ...}
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
import torch.nn.functional as F

from bert.errors import BertError
from bert.hub import demo_model_dir, resolve_model_dir
from bert.pretrained import PreTrainedModel
from bert.tokenizer.fast import FastTokenizer

DEFAULT_MODEL = "bert-base-uncased"
DEMO_MODEL = demo_model_dir()
POOLINGS = ("cls", "mean", "pooler")

Model = TypeVar("Model", bound=PreTrainedModel)


@dataclass
class ModelChoice:
    """Which checkpoint answers: its folder, the name to show for it, and a note when it is the demo fallback."""

    folder: Path
    name: str
    note: str | None = None


def choose_model(name_or_path: str | os.PathLike | None = None) -> ModelChoice:
    """Resolve a model name or folder (see :func:`bert.hub.resolve_model_dir`).

    With no name this is ``bert-base-uncased`` when it is local or downloadable, else the bundled demo model, with
    a note that says so. A Hugging Face cache snapshot (``models--org--name/snapshots/<hash>``) is named by its
    repository, a folder by its own name.
    """
    note = None
    if name_or_path is None:
        try:
            location, name = resolve_model_dir(DEFAULT_MODEL), DEFAULT_MODEL
        except BertError as error:
            if not (DEMO_MODEL / "config.json").is_file():
                raise
            location, name = DEMO_MODEL, "bert-demo"
            note = (f"{DEFAULT_MODEL} is not available ({str(error).split(':')[0]}); answering with the bundled demo "
                    f"model {DEMO_MODEL}")
    else:
        location = resolve_model_dir(name_or_path)
        name = "" if Path(name_or_path).expanduser().exists() else str(name_or_path)
    folder = location if location.is_dir() else location.parent
    if not name:
        repo = folder.parent.parent.name if folder.parent.name == "snapshots" else ""
        name = repo.removeprefix("models--").replace("--", "/") if repo.startswith("models--") else folder.name
    return ModelChoice(folder, name, note)


def load(cls: type[Model] | str, name_or_path: str | os.PathLike | None = None,
         precision: str | None = None) -> tuple[Model, FastTokenizer]:
    """Model and its tokenizer from one checkpoint folder, in eval mode.

    ``cls``: a model class, or a head ("base", "masked_lm", ... see :data:`bert.variants.auto.HEADS`) whose class
    is picked from config.json's model_type (RobertaForMaskedLM for a RoBERTa checkpoint); the tokenizer is always
    the checkpoint's own kind (see :func:`bert.variants.auto_tokenizer`). The model is chosen by
    :func:`choose_model` (a note on stderr when the demo model stands in for ``bert-base-uncased``);
    ``model.name_or_path`` holds the name to show for it. A checkpoint that lacks the weights of the head the class
    needs (e.g. the MLM head for fill-mask in a bare encoder such as all-MiniLM-L6-v2) is refused: a random head
    would answer nonsense. ``precision`` ("float32", "int8", "bf16") readies the model for inference in that
    type (:func:`bert.precision.set_precision`: float32 through oneDNN); None leaves it as loaded (trainable,
    exportable).
    """
    from bert.variants.auto import auto_class, auto_tokenizer

    choice = choose_model(name_or_path)
    if choice.note:
        print(f"note: {choice.note}", file=sys.stderr)
    if isinstance(cls, str):
        cls = auto_class(choice.folder, cls)
    model = cls.from_pretrained(choice.folder)
    encoder = model.base_model_prefix + "."  # a head's own weights are the ones outside its encoder
    head_missing = [] if model.base_model is model else [
        name for name in model.load_report.missing if not name.startswith(encoder)]
    if head_missing:
        raise BertError(f"{choice.folder} has no trained weights for {cls.__name__}'s head (missing "
                        f"{', '.join(head_missing[:3])}); use a checkpoint that was trained with that head")
    model.name_or_path = choice.name
    if precision is not None:
        from bert.precision import set_precision

        set_precision(model, precision)
    return model, auto_tokenizer(choice.folder)


def encode(tokenizer: FastTokenizer, model: PreTrainedModel, text: str | list[str],
           text_pair: str | list[str] | None = None, truncate: bool = False,
           keep_masks: bool = False) -> dict[str, torch.Tensor]:
    """Tokenize into model-ready tensors [B, T]. Input longer than the model's positions is an error, or with
    ``truncate`` cut to fit (pairs by BERT's rule: from the longer segment) with a warning. ``keep_masks``: refuse
    to truncate when that would cut off a [MASK] (nothing could be predicted for it)."""
    limit = encoder_of(model).embeddings.max_length()  # RoBERTa's table has pad_token_id + 1 rows more
    batch = tokenizer(text, text_pair, padding=True, return_tensors="pt")
    length = batch["input_ids"].shape[1]
    if length > limit:
        if not truncate:
            raise BertError(f"the input is {length} tokens long but the model reads at most {limit}; shorten the "
                            "text, or allow truncation (truncate=True, --truncate)")
        full = batch
        batch = tokenizer(text, text_pair, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        if keep_masks:
            before = int((full["input_ids"] == tokenizer.mask_token_id).sum())
            after = int((batch["input_ids"] == tokenizer.mask_token_id).sum())
            if after < before:
                raise BertError(f"the input is {length} tokens long but the model reads at most {limit}, and "
                                f"truncating it would cut off {before - after} of its {before} "
                                f"{tokenizer.mask_token} tokens; shorten the text after the last one you need")
        warnings.warn(f"the input is {length} tokens long; truncated to the model's {limit} "
                      "(truncate=False / --no-truncate makes this an error)", stacklevel=3)
    device = next(model.parameters()).device
    return {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "token_type_ids", "attention_mask")}


@torch.no_grad()
def fill_mask(model: PreTrainedModel, tokenizer: FastTokenizer, text: str, top_k: int = 5,
              truncate: bool = True) -> list[list[dict]]:
    """Predict every mask token (``[MASK]``; RoBERTa's ``<mask>``) in ``text``: one list per mask, in order, each
    the ``top_k`` candidates as ``{"token", "token_str", "token_id", "score"}``: the vocabulary entry (a byte-level
    BPE piece such as ``Ġparis`` for RoBERTa), the text it decodes to (``paris``, as transformers' fill-mask
    pipeline names it) and score = softmax probability. Each mask is predicted independently, as BERT was trained
    (it sees the other masks as masks).

    Text longer than the model's positions is cut at the end with a warning, unless that would cut off a
    mask (an error then), or ``truncate=False`` (always an error)."""
    if top_k < 1:
        raise BertError(f"top_k must be at least 1, got {top_k}")
    batch = encode(tokenizer, model, text, truncate=truncate, keep_masks=True)
    positions = (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten()
    if len(positions) == 0:
        case = "in capitals" if tokenizer.mask_token.isupper() else "in lower case"
        hint = (f" ({tokenizer.mask_token} is written {case})"
                if tokenizer.mask_token.lower() in text.lower() else "")
        raise BertError(f"no {tokenizer.mask_token} in the text{hint}: write {tokenizer.mask_token} where a word "
                        f"should be predicted, e.g. 'The capital of France is {tokenizer.mask_token}.'")
    output = model(**batch)
    logits = output.prediction_logits if hasattr(output, "prediction_logits") else output.logits  # [1, T, V]
    probabilities = logits[0, positions].softmax(dim=-1)  # [masks, V]
    scores, ids = probabilities.topk(min(top_k, probabilities.shape[-1]), dim=-1)
    return [[{"token": tokenizer.convert_ids_to_tokens(int(i)), "token_str": tokenizer.decode([int(i)]).strip(),
              "token_id": int(i), "score": float(s)}
             for s, i in zip(row_scores, row_ids, strict=True)]
            for row_scores, row_ids in zip(scores, ids, strict=True)]


@torch.no_grad()
def next_sentence(model: PreTrainedModel, tokenizer: FastTokenizer, sentence_a: str, sentence_b: str,
                  truncate: bool = True) -> dict:
    """How likely ``sentence_b`` follows ``sentence_a``: ``{"is_next": p, "not_next": 1 - p, "logits": [2]}``.
    Index 0 of BERT's NSP head is IsNext, index 1 NotNext (random sentence). A pair longer than the model's
    positions is truncated with a warning (BERT's rule: tokens come off the longer sentence's end), or with
    ``truncate=False`` refused."""
    for name, sentence in (("first", sentence_a), ("second", sentence_b)):
        if not isinstance(sentence, str):
            raise BertError(f"the {name} sentence must be a string, got {type(sentence).__name__}")
        if not sentence.strip():
            raise BertError(f"the {name} sentence is empty")
    output = model(**encode(tokenizer, model, sentence_a, sentence_b, truncate=truncate))
    logits = output.seq_relationship_logits if hasattr(output, "seq_relationship_logits") else output.logits
    probabilities = logits[0].softmax(dim=-1)
    return {"is_next": float(probabilities[0]), "not_next": float(probabilities[1]),
            "logits": [float(x) for x in logits[0]]}


def encoder_of(model: PreTrainedModel) -> PreTrainedModel:
    """The encoder inside a head class (BertModel, RobertaModel, ...), or the model itself when it is one."""
    return model.base_model


@torch.no_grad()
def sentence_embeddings(model: PreTrainedModel, tokenizer: FastTokenizer, texts: str | list[str],
                        pooling: str = "mean", batch_size: int = 32, truncate: bool = True) -> torch.Tensor:
    """One vector per text, [N, H]. ``mean`` averages the real tokens' final vectors (what sentence-transformers
    models such as all-MiniLM-L6-v2 are trained for), ``cls`` takes the [CLS] vector, ``pooler`` the tanh pooler
    output (trained by NSP, a weak similarity signal in plain BERT). Long texts are truncated with a warning
    (``truncate=False``: an error). Texts go through the model ``batch_size`` at a time, so memory stays bounded
    however many there are; an empty text gets the vector of ``[CLS] [SEP]``."""
    if pooling not in POOLINGS:
        raise BertError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if isinstance(texts, str):
        texts = [texts]
    if not texts:
        raise BertError("no texts to embed")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise BertError(f"batch_size must be a positive integer, got {batch_size!r}")
    encoder = encoder_of(model)
    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = encode(tokenizer, model, list(texts[start:start + batch_size]), truncate=truncate)
        output = encoder(**batch)
        if pooling == "pooler":
            if output.pooler_output is None:
                raise BertError("this model has no pooler; use pooling 'mean' or 'cls'")
            vectors.append(output.pooler_output)
        elif pooling == "cls":
            vectors.append(output.last_hidden_state[:, 0])
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(output.last_hidden_state.dtype)  # [B, T, 1]
            vectors.append((output.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1))
    return torch.cat(vectors)


@torch.no_grad()
def token_vectors(model: PreTrainedModel, tokenizer: FastTokenizer, text: str) -> tuple[list[str], torch.Tensor]:
    """The word pieces of ``text`` (with [CLS]/[SEP]) and their contextual vectors [T, H]."""
    batch = encode(tokenizer, model, text, truncate=True)
    hidden = encoder_of(model)(**batch).last_hidden_state[0]
    return tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist()), hidden


def word_vector(model: PreTrainedModel, tokenizer: FastTokenizer, text: str, word: str) -> torch.Tensor:
    """The contextual vector [H] of ``word``'s first occurrence in ``text`` (the mean over its word pieces), e.g.
    "bank" in "we sat on the river bank" vs in "she paid the cash into the bank".

    The word's pieces are looked for as the tokenizer splits a word inside running text (RoBERTa's "Ġbank",
    ALBERT's "▁bank"), then as at the very start of a text (RoBERTa's "bank")."""
    spellings = [tokenizer.encode_words([word]).tokens, tokenizer.tokenize(word)]
    if not spellings[0]:
        raise BertError(f"the word {word!r} has no tokens; give a word that occurs in the text")
    tokens, hidden = token_vectors(model, tokenizer, text)
    for pieces in spellings:
        for start in range(len(tokens) - len(pieces) + 1):
            if tokens[start:start + len(pieces)] == pieces:
                return hidden[start:start + len(pieces)].mean(0)
    raise BertError(f"{word!r} does not occur in {text!r} (as tokens {spellings[0]})")


def cosine_similarity_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """[N, H] → [N, N] cosine similarities."""
    normalised = F.normalize(vectors, dim=-1)
    return normalised @ normalised.T
