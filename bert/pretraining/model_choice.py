"""Which model a pretraining run trains, and on what: the model type and config (a preset or a config.json), its
pretraining class, the objective the data allows, the data's tokenizer as that type's tokenizer."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from bert.config import MODEL_TYPES, VARIANT_PRESET_FIELDS, BertConfig, split_preset
from bert.errors import BertError
from bert.pretrained import PreTrainedModel
from bert.pretraining.loss import SENTENCE_OBJECTIVES, sentence_objectives
from bert.tokenizer.fast import FastTokenizer
from bert.variants.auto import TOKENIZERS, auto_class, model_type_of


def _is_config_file(spec: str) -> bool:
    return spec.endswith(".json") or os.sep in spec or Path(spec).is_file()


def config_model_type(spec: str) -> str:
    """The model type that ``--config`` names: a preset's ("albert-mini" → "albert", "mini" → "bert") or a
    config.json's ``model_type``."""
    return model_type_of(spec) if _is_config_file(spec) else split_preset(spec)[0]


def build_model_config(spec: str, vocab_size: int, pad_token_id: int,
                       overrides: dict[str, Any] | None = None) -> BertConfig:
    """A preset name (BERT's "mini", a variant's "albert-mini") or a config.json path (of any model type), in the
    model type's config class, with the data's vocabulary size and padding id."""
    fields = {"vocab_size": vocab_size, "pad_token_id": pad_token_id}
    if _is_config_file(spec):
        return auto_class(spec, "base").config_class.from_json_file(spec, **fields, **(overrides or {}))
    model_type, size = split_preset(spec)
    config = auto_class({"model_type": model_type}, "base").config_class.preset(
        size, **fields, **VARIANT_PRESET_FIELDS.get(model_type, {}))
    return dataclasses.replace(config, **(overrides or {}))


def pretraining_model_class(model_type: str) -> type[PreTrainedModel]:
    """What ``bert pretrain`` trains for a model type: its ``*ForPreTraining`` (MLM + a sentence head: BERT,
    ALBERT), or where it has none its ``*ForMaskedLM`` (RoBERTa, DistilBERT: MLM only)."""
    try:
        return auto_class({"model_type": model_type}, "pretraining")
    except BertError:
        return auto_class({"model_type": model_type}, "masked_lm")


def training_objective(flag: str | None, data_objective: str, data_dir: Path) -> str:
    """The objective to train: ``--objective`` (None: what the data holds); BertError when the data lacks its
    labels. "mlm" trains on any data (sentence-pair labels are then ignored)."""
    if flag in (None, "mlm", data_objective):
        return flag or data_objective
    if data_objective == "mlm":
        raise BertError(f"{data_dir} holds MLM-only data (no sentence-pair labels); train it with --objective mlm, "
                        f"or prepare sentence pairs with bert prepare --objective {flag}")
    labels = SENTENCE_OBJECTIVES[data_objective].upper()
    raise BertError(f"{data_dir} holds {data_objective} data ({labels} labels), not {flag}; train it with --objective "
                    f"{data_objective} or --objective mlm, or prepare it again with bert prepare --objective {flag}")


def check_model_objective(model_type: str, model_class: type[PreTrainedModel], objective: str) -> None:
    """BertError when the model cannot train the objective's sentence part (RoBERTa has no sentence head, ALBERT's
    learns sentence order only)."""
    wanted, heads = SENTENCE_OBJECTIVES[objective], sentence_objectives(model_class)
    if wanted is None or wanted in heads:
        return
    name = MODEL_TYPES[model_type]
    fix = (f"its sentence head learns {' or '.join(h.upper() for h in heads)} only: prepare the data with "
           f"bert prepare --objective mlm+{heads[0]}, or" if heads else "it has no sentence-pair head:")
    raise BertError(f"{name} cannot train {wanted.upper()} ({objective} data); {fix} pass --objective mlm to train the "
                    "masked LM alone")


def data_tokenizer(model_type: str, tokenizer_dir: Path, data_dir: Path) -> FastTokenizer:
    """The prepared data's tokenizer, as the model type's tokenizer class (so that ``RUN/final`` loads with
    :func:`~bert.variants.auto.auto_tokenizer`); BertError when the data was tokenized for another family."""
    try:
        return TOKENIZERS[model_type].from_pretrained(tokenizer_dir)
    except BertError as error:
        raise BertError(f"{data_dir} was not tokenized for {MODEL_TYPES[model_type]} ({error}); prepare it with "
                        f"{MODEL_TYPES[model_type]}'s tokenizer: bert prepare ... --tokenizer DIR|NAME") from None

