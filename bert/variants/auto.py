"""Pick the model and tokenizer classes from a checkpoint's ``config.json`` (its ``model_type``), as transformers'
``AutoModel*`` / ``AutoTokenizer`` do, and the published configurations that ``bert info --config`` describes.

    cls = auto_class("path/to/roberta-checkpoint", "masked_lm")        # RobertaForMaskedLM
    model, tokenizer = cls.from_pretrained(folder), auto_tokenizer(folder)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from bert import heads, model
from bert.config import CLASS_PREFIXES, MODEL_TYPES, BertConfig, read_config_json
from bert.errors import BertError
from bert.pretrained import PreTrainedModel
from bert.tokenizer.fast import FastTokenizer
from bert.tokenizer.files import TOKENIZER_CONFIG_FILE
from bert.tokenizer.wordpiece import BertTokenizer
from bert.variants import albert, distilbert, megatron_bert, roberta
from bert.variants.tokenizers import AlbertTokenizer, DistilBertTokenizer, RobertaTokenizer

# head → the suffix of its class name (BertForMaskedLM, RobertaForMaskedLM, ...).
HEADS = {
    "base": "Model",
    "masked_lm": "ForMaskedLM",
    "sequence_classification": "ForSequenceClassification",
    "token_classification": "ForTokenClassification",
    "question_answering": "ForQuestionAnswering",
    "pretraining": "ForPreTraining",
    "next_sentence": "ForNextSentencePrediction",
}
# Why a model type has no next-sentence head: the one-line answer to `bert nsp` and the explorer's NSP view.
NO_NEXT_SENTENCE = {
    "roberta": "it was pretrained with masked-language modelling alone (no next-sentence prediction)",
    "distilbert": "it was distilled with masked-language modelling alone (no next-sentence prediction)",
    "albert": "its sentence-order head (SOP) judges whether two segments are in their original order or swapped, "
              "which is not next-sentence prediction",
}
MODULES: dict[str, tuple[ModuleType, ...]] = {
    "bert": (model, heads), "roberta": (roberta,), "albert": (albert,), "distilbert": (distilbert,),
    "megatron-bert": (megatron_bert,)}
TOKENIZERS: dict[str, type[FastTokenizer]] = {
    "bert": BertTokenizer, "roberta": RobertaTokenizer, "albert": AlbertTokenizer, "distilbert": DistilBertTokenizer,
    "megatron-bert": BertTokenizer}

# config.json of the published checkpoints (the fields that differ from each config class's defaults), so that
# `bert info --config NAME` needs no download.
RELEASED_CONFIGS: dict[str, dict[str, Any]] = {
    "bert-base-uncased": {"model_type": "bert"},
    "bert-large-uncased": {"model_type": "bert", "hidden_size": 1024, "num_hidden_layers": 24,
                           "num_attention_heads": 16, "intermediate_size": 4096},
    "roberta-base": {"model_type": "roberta", "max_position_embeddings": 514, "type_vocab_size": 1,
                     "layer_norm_eps": 1e-5},
    "roberta-large": {"model_type": "roberta", "hidden_size": 1024, "num_hidden_layers": 24,
                      "num_attention_heads": 16, "intermediate_size": 4096, "max_position_embeddings": 514,
                      "type_vocab_size": 1, "layer_norm_eps": 1e-5},
    "albert-base-v2": {"model_type": "albert", "hidden_size": 768, "num_attention_heads": 12,
                       "intermediate_size": 3072, "embedding_size": 128},
    "albert-large-v2": {"model_type": "albert", "hidden_size": 1024, "num_hidden_layers": 24,
                        "num_attention_heads": 16, "intermediate_size": 4096, "embedding_size": 128},
    "distilbert-base-uncased": {"model_type": "distilbert"},
}


def model_type_of(folder_or_config: str | os.PathLike | BertConfig | dict[str, Any]) -> str:
    """The model_type of a config object, a config.json dict, or a checkpoint folder (its config.json); "bert"
    when config.json does not say (the original BERT checkpoints predate the field)."""
    if isinstance(folder_or_config, BertConfig):
        model_type = folder_or_config.model_type
    elif isinstance(folder_or_config, dict):
        model_type = folder_or_config.get("model_type", "bert")
    else:
        path = Path(folder_or_config).expanduser()
        model_type = read_config_json(path / "config.json" if path.is_dir() else path).get("model_type", "bert")
    if model_type not in MODEL_TYPES:
        raise BertError(f"config: model_type {model_type!r} is not supported; this package loads "
                        f"{', '.join(map(repr, MODEL_TYPES))} checkpoints only")
    return model_type


def auto_class(folder_or_config: str | os.PathLike | BertConfig | dict[str, Any],
               head: str) -> type[PreTrainedModel]:
    """The class with ``head`` (one of :data:`HEADS`) of the model type that ``folder_or_config`` names, e.g.
    ("a RoBERTa folder", "masked_lm") → RobertaForMaskedLM."""
    if head not in HEADS:
        raise BertError(f"unknown head {head!r}; choose one of {', '.join(HEADS)}")
    model_type = model_type_of(folder_or_config)
    if (cls := class_named(model_type, CLASS_PREFIXES[model_type] + HEADS[head])) is not None:
        return cls
    if head == "next_sentence" and model_type in NO_NEXT_SENTENCE:
        raise BertError(no_next_sentence_head(model_type))
    have = [h for h, suffix in HEADS.items() if class_named(model_type, CLASS_PREFIXES[model_type] + suffix)]
    raise BertError(f"{MODEL_TYPES[model_type]} has no {head} model in this package (it has: {', '.join(have)})")


def class_named(model_type: str, name: str) -> type[PreTrainedModel] | None:
    """The class called ``name`` (e.g. "RobertaForMaskedLM") among a model type's modules, or None."""
    return next((getattr(module, name) for module in MODULES[model_type] if hasattr(module, name)), None)


def no_next_sentence_head(model_type: str) -> str:
    """The message that a model type has no next-sentence head, and why."""
    return (f"this {MODEL_TYPES[model_type]} model has no next-sentence head: {NO_NEXT_SENTENCE[model_type]}; "
            "next-sentence prediction needs a BERT checkpoint")


def auto_tokenizer(folder: str | os.PathLike) -> FastTokenizer:
    """The tokenizer of a checkpoint folder, of the class its config.json's model_type calls for (without a
    config.json: what tokenizer_config.json's tokenizer_class says, else BERT's)."""
    path = Path(folder).expanduser()
    if (path / "config.json").is_file():
        cls = TOKENIZERS[model_type_of(path)]
    else:
        named = ""
        if (path / TOKENIZER_CONFIG_FILE).is_file():
            try:
                named = str(json.loads((path / TOKENIZER_CONFIG_FILE).read_text(encoding="utf-8"))
                            .get("tokenizer_class") or "")
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
                named = ""
        by_name = {c.__name__: c for c in TOKENIZERS.values()}
        cls = by_name.get(named.removesuffix("Fast"), BertTokenizer)
    return cls.from_pretrained(path)


def released_config(name: str) -> BertConfig:
    """The configuration of a published checkpoint by name (see :data:`RELEASED_CONFIGS`), without a download."""
    if name not in RELEASED_CONFIGS:
        raise BertError(f"unknown config {name!r}; choose one of {', '.join(RELEASED_CONFIGS)}")
    data = RELEASED_CONFIGS[name]
    return auto_class(data, "base").config_class.from_dict(data)
