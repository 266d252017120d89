"""The everyday jobs of a pretrained BERT: fill in masked words, judge whether B follows A, and embed text.

Each function takes a model and a tokenizer, so it works with any checkpoint, and returns plain Python values
(or tensors for vectors). :func:`load` builds both from a name, with the bundled demo model as the fallback when
the default ``bert-base-uncased`` cannot be found or downloaded, on the device asked for. The answers have the shapes
of transformers' ``pipeline("fill-mask")`` and sentence-transformers' ``encode`` (docs/guides/inference.md lists
what differs).

    model, tokenizer = load(BertForMaskedLM, "bert-base-uncased", device="auto")
    fill_mask(model, tokenizer, "The capital of France is [MASK].")[0][0]   # {'score': ..., 'token': 3000,
                                                                            #  'token_str': 'paris', 'sequence': ...}
    encode(model, tokenizer, ["A man is eating.", "Someone eats."], normalize=True)   # float32 [2, H], on the CPU
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
import torch.nn.functional as F

from bert.devices import pick_device
from bert.errors import BertError, kind_of
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
         precision: str | None = None, device: str | torch.device = "cpu") -> tuple[Model, FastTokenizer]:
    """Model and its tokenizer from one checkpoint folder, in eval mode, on ``device``.

    ``cls``: a model class, or a head ("base", "masked_lm", ... see :data:`bert.variants.auto.HEADS`) whose class
    is picked from config.json's model_type (RobertaForMaskedLM for a RoBERTa checkpoint); the tokenizer is always
    the checkpoint's own kind (see :func:`bert.variants.auto_tokenizer`). The model is chosen by
    :func:`choose_model` (a note on stderr when the demo model stands in for ``bert-base-uncased``);
    ``model.name_or_path`` holds the name to show for it. A checkpoint that lacks the weights of the head the class
    needs (e.g. the MLM head for fill-mask in a bare encoder such as all-MiniLM-L6-v2) is refused: a random head
    would answer nonsense. ``device``: "cpu" (the default), "auto", "cuda", "cuda:N" or "mps"
    (:func:`bert.devices.pick_device`). ``precision`` ("float32", "int8", "bf16", "fp16") readies the model for
    inference in that type (:func:`bert.precision.set_precision`: on the CPU float32 through oneDNN, int8 and bf16
    by layer swaps; on a GPU fp16 and bf16 cast the model); a precision the device cannot run is refused before the
    weights load (:func:`bert.precision.check_precision`). None leaves the model as loaded (trainable, exportable).
    """
    from bert.precision import check_precision, set_precision
    from bert.variants.auto import auto_class, auto_tokenizer

    target = pick_device(device)
    if precision is not None:
        check_precision(precision, target)
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
    move_model(model, target)
    if precision is not None:
        set_precision(model, precision)
    return model, auto_tokenizer(choice.folder)


def model_device(model: PreTrainedModel) -> torch.device:
    """The device ``model``'s weights are on."""
    return next(model.parameters()).device


def move_model(model: PreTrainedModel, device: str | torch.device) -> PreTrainedModel:
    """``model`` moved to ``device`` (:func:`bert.devices.pick_device` names it), in place; a one-line BertError for
    a model holding CPU-only layers (:func:`bert.precision.runs_on_cpu_only`: readied by ``--int8``/``--bf16``/
    float32 through oneDNN, or an int8 checkpoint) asked to go elsewhere."""
    from bert.precision import runs_on_cpu_only

    target = pick_device(device)
    if target != model_device(model):
        if target.type != "cpu" and runs_on_cpu_only(model):
            raise BertError(f"this model runs CPU-only layers (int8, or bert.precision's oneDNN / bfloat16 swaps), "
                            f"so it cannot move to {target}: load the float32 checkpoint with device={str(target)!r} "
                            "(--device), or run it on the CPU")
        model.to(target)
    return model


def model_inputs(tokenizer: FastTokenizer, model: PreTrainedModel, text: str | list[str],
                 text_pair: str | list[str] | None = None, truncate: bool = False,
                 keep_masks: bool = False) -> dict[str, torch.Tensor]:
    """Tokenize into model-ready tensors [B, T] on the model's device. Input longer than the model's positions is an
    error, or with
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
    device = model_device(model)
    return {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "token_type_ids", "attention_mask")}


def fill_mask(model: PreTrainedModel, tokenizer: FastTokenizer, text: str | Sequence[str], top_k: int = 5,
              truncate: bool = True) -> list:
    """Predict every mask token (``[MASK]``; RoBERTa's ``<mask>``) in ``text``: one list per mask, in order, each
    the ``top_k`` candidates as transformers' fill-mask pipeline gives them, ``{"score", "token", "token_str",
    "sequence"}``: the softmax probability, the vocabulary id, its text (``tokenizer.decode([token])``, special
    tokens kept: ``paris``, RoBERTa's `` paris`` with its leading space) and the text with the candidate in the mask
    (decoded as transformers does: with one mask without special tokens; with several, the others left as masks and
    [CLS]/[SEP] shown). Each
    mask is predicted independently, as BERT was trained (it sees the other masks as masks). A list of texts gives a
    list of those answers, one per text.

    Unlike transformers' pipeline, a text with one mask also gets a list per mask (``[[...]]``, not ``[...]``), so
    the shape of the answer never depends on how many masks a text has.

    Text longer than the model's positions is cut at the end with a warning, unless that would cut off a
    mask (an error then), or ``truncate=False`` (always an error)."""
    if top_k < 1:
        raise BertError(f"top_k must be at least 1, got {top_k}")
    if isinstance(text, str):
        return _fill_masks(model, tokenizer, text, top_k, truncate)
    texts = list(text)
    if not texts:
        raise BertError("no texts to fill: give a text, or a list of texts, with a mask in each")
    if not all(isinstance(t, str) for t in texts):
        raise BertError(f"fill_mask takes a string or a list of strings, got {kind_of(text)} holding "
                        f"{next(kind_of(t) for t in texts if not isinstance(t, str))}")
    return [_fill_masks(model, tokenizer, t, top_k, truncate) for t in texts]


@torch.no_grad()
def _fill_masks(model: PreTrainedModel, tokenizer: FastTokenizer, text: str, top_k: int,
                truncate: bool) -> list[list[dict]]:
    """:func:`fill_mask` for one text: one forward pass over [1, T]."""
    batch = model_inputs(tokenizer, model, text, truncate=truncate, keep_masks=True)
    ids = batch["input_ids"][0].tolist()  # one text: no padding
    positions = [i for i, token in enumerate(ids) if token == tokenizer.mask_token_id]
    if not positions:
        case = "in capitals" if tokenizer.mask_token.isupper() else "in lower case"
        hint = (f" ({tokenizer.mask_token} is written {case})"
                if tokenizer.mask_token.lower() in text.lower() else "")
        raise BertError(f"no {tokenizer.mask_token} in the text{hint}: write {tokenizer.mask_token} where a word "
                        f"should be predicted, e.g. 'The capital of France is {tokenizer.mask_token}.'")
    output = model(**batch)
    logits = output.prediction_logits if hasattr(output, "prediction_logits") else output.logits  # [1, T, V]
    probabilities = logits[0, positions].float().softmax(dim=-1)  # [masks, V]; float32 also for a float16 model
    scores, best = probabilities.topk(min(top_k, probabilities.shape[-1]), dim=-1)
    answers = []
    for position, row_scores, row_ids in zip(positions, scores.tolist(), best.tolist(), strict=True):
        candidates = []
        for score, token in zip(row_scores, row_ids, strict=True):
            filled = ids[:position] + [token] + ids[position + 1:]
            candidates.append({"score": score, "token": token,
                               "token_str": tokenizer.decode([token], skip_special_tokens=False),
                               "sequence": tokenizer.decode(filled, skip_special_tokens=len(positions) == 1)})
        answers.append(candidates)
    return answers


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
    output = model(**model_inputs(tokenizer, model, sentence_a, sentence_b, truncate=truncate))
    logits = output.seq_relationship_logits if hasattr(output, "seq_relationship_logits") else output.logits
    logits = logits.float()  # a float16 model's too
    probabilities = logits[0].softmax(dim=-1)
    return {"is_next": float(probabilities[0]), "not_next": float(probabilities[1]),
            "logits": [float(x) for x in logits[0]]}


def encoder_of(model: PreTrainedModel) -> PreTrainedModel:
    """The encoder inside a head class (BertModel, RobertaModel, ...), or the model itself when it is one."""
    return model.base_model


@torch.no_grad()
def encode(model: PreTrainedModel, tokenizer: FastTokenizer, texts: str | Sequence[str], batch_size: int = 32,
           normalize: bool = False, device: str | torch.device | None = None, progress: bool | None = None,
           pooling: str = "mean", truncate: bool = True) -> torch.Tensor:
    """One vector per text: float32 [N, H] on the CPU (``.numpy()`` makes it sentence-transformers' numpy array),
    row i for ``texts[i]``; a single string gives [1, H].

    Shaped after sentence-transformers' ``model.encode(sentences, batch_size, normalize_embeddings, device,
    show_progress_bar)``. ``pooling``: ``mean`` averages the real tokens' final vectors (what sentence-transformers
    models such as all-MiniLM-L6-v2 are trained for), ``cls`` takes the [CLS] vector, ``pooler`` the tanh pooler
    output (trained by NSP, a weak similarity signal in plain BERT). ``normalize`` scales each vector to length 1,
    so that a dot product is the cosine. Texts go through the model ``batch_size`` at a time, so memory stays
    bounded however many there are. ``device``: where to run, the model moved there (as sentence-transformers
    does; :func:`move_model`); None: where the model is. ``progress``: a tqdm bar over the texts on stderr; None
    shows one when stderr is a terminal and there is more than one batch. Long texts are truncated with a warning
    (``truncate=False``: an error); an empty text gets the vector of ``[CLS] [SEP]``."""
    if pooling not in POOLINGS:
        raise BertError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise BertError("no texts to embed")
    if not all(isinstance(text, str) for text in texts):
        raise BertError("the texts to embed must be strings")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise BertError(f"batch_size must be a positive integer, got {batch_size!r}")
    if device is not None:
        move_model(model, device)
    if progress is None:
        progress = len(texts) > batch_size and sys.stderr.isatty()
    from tqdm import tqdm

    encoder = encoder_of(model)
    vectors = []
    with tqdm(total=len(texts), desc="embedding", unit="text", disable=not progress, leave=False,
              file=sys.stderr, dynamic_ncols=True) as bar:
        for start in range(0, len(texts), batch_size):
            batch = model_inputs(tokenizer, model, texts[start:start + batch_size], truncate=truncate)
            output = encoder(**batch)
            if pooling == "pooler":
                if output.pooler_output is None:
                    raise BertError("this model has no pooler; use pooling 'mean' or 'cls'")
                pooled = output.pooler_output
            elif pooling == "cls":
                pooled = output.last_hidden_state[:, 0]
            else:
                hidden = output.last_hidden_state.float()  # sums in float32, also for a float16 model
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            vectors.append(pooled.float().cpu())
            bar.update(len(pooled))
    result = torch.cat(vectors)
    return F.normalize(result, dim=-1) if normalize else result


@torch.no_grad()
def token_vectors(model: PreTrainedModel, tokenizer: FastTokenizer, text: str) -> tuple[list[str], torch.Tensor]:
    """The word pieces of ``text`` (with [CLS]/[SEP]) and their contextual vectors [T, H]."""
    batch = model_inputs(tokenizer, model, text, truncate=True)
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
