"""BertConfig: every size and switch of the architecture, read from and written to Hugging Face's ``config.json``.

The field names are HF's on purpose, so a ``config.json`` from any BERT checkpoint loads as it is and the one we
write loads in ``transformers``. Presets give the published sizes: bert-base/large and the 24 "small BERTs"
(Turc et al., 2019) of which tiny/mini/small/medium are the usual picks.

RoBERTa, ALBERT and DistilBERT configs (:mod:`bert.variants`) are subclasses: each sets ``model_type``, its own
defaults and fields, and (DistilBERT) the config.json names of the fields it shares with BERT.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from bert.errors import BertError

ACTIVATIONS = ("gelu", "gelu_new", "relu")
# The model_type values of config.json this package loads → their names, and the prefix of their classes.
MODEL_TYPES = {"bert": "BERT", "roberta": "RoBERTa", "albert": "ALBERT", "distilbert": "DistilBERT",
               "megatron-bert": "Megatron-BERT (pre-LN)"}
CLASS_PREFIXES = {"bert": "Bert", "roberta": "Roberta", "albert": "Albert", "distilbert": "DistilBert",
                  "megatron-bert": "MegatronBert"}


def read_config_json(path: str | os.PathLike) -> dict[str, Any]:
    """The fields of a config.json file (a BertError, in one line, for a missing, unreadable or non-object file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BertError(f"no config.json at {path}: a BERT checkpoint folder needs one") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BertError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise BertError(f"{path} must hold a JSON object of config fields")
    return data


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class BertConfig:
    model_type: ClassVar[str] = "bert"
    # For model types whose config.json differs from BERT's (bert.variants): field → its name in config.json,
    # and fields their config.json does not have (read as unknown keys, not written).
    json_names: ClassVar[dict[str, str]] = {}
    json_omitted: ClassVar[tuple[str, ...]] = ()

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    # Task heads. num_labels == 1 makes BertForSequenceClassification a regressor (MSE loss).
    num_labels: int = 2
    classifier_dropout: float | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    # Keys of config.json we do not use, kept so that saving writes them back unchanged.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        try:
            self.validate()
        except BertError as error:  # name the fields as this model type's config.json does (DistilBERT's "dim")
            message = str(error)
            for name, json_name in self.json_names.items():
                message = re.sub(rf"\b{name}\b", json_name, message)
            raise BertError(message) from None

    def validate(self) -> None:
        """Raise BertError on values no BERT can have (they would otherwise fail deep inside a matmul)."""
        positive = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                    "max_position_embeddings", "type_vocab_size", "num_labels")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise BertError(f"config: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise BertError(f"config: hidden_size {self.hidden_size} is not divisible by "
                            f"num_attention_heads {self.num_attention_heads}")
        if self.hidden_act not in ACTIVATIONS:
            raise BertError(f"config: hidden_act {self.hidden_act!r} is not supported "
                            f"(use one of {', '.join(ACTIVATIONS)})")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not _is_number(getattr(self, name)) or not 0.0 <= getattr(self, name) < 1.0:
                raise BertError(f"config: {name} must be in [0, 1), got {getattr(self, name)!r}")
        if not isinstance(self.pad_token_id, int) or not 0 <= self.pad_token_id < self.vocab_size:
            raise BertError(f"config: pad_token_id {self.pad_token_id} is outside the vocabulary "
                            f"(size {self.vocab_size})")
        for name in ("layer_norm_eps", "initializer_range"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value < math.inf:
                raise BertError(f"config: {name} must be a non-negative number, got {value!r}")
        if self.classifier_dropout is not None and (not _is_number(self.classifier_dropout)
                                                    or not 0.0 <= self.classifier_dropout < 1.0):
            raise BertError(f"config: classifier_dropout must be null or in [0, 1), got {self.classifier_dropout!r}")
        if self.label2id is not None and not isinstance(self.label2id, dict):
            raise BertError(f"config: label2id must be an object of label: id, got {self.label2id!r}")
        if self.id2label is not None:
            try:
                self.id2label = {int(k): v for k, v in self.id2label.items()}
            except (AttributeError, TypeError, ValueError):
                raise BertError(f"config: id2label must be an object of id: label with integer ids, "
                                f"got {self.id2label!r}") from None
            self.label2id = {v: k for k, v in self.id2label.items()}
            if len(self.id2label) != self.num_labels:
                raise BertError(f"config: id2label has {len(self.id2label)} labels but num_labels is {self.num_labels}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # ---- presets -------------------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> BertConfig:
        """A published size by name: base, large, tiny, mini, small, medium (``bert-`` prefix optional), in this
        config class (a variant's class gives that variant at BERT's size; see :func:`split_preset`)."""
        key = name.lower().removeprefix("bert-").removesuffix("-uncased").removesuffix("-cased")
        if key not in PRESETS:
            raise BertError(f"unknown config preset {name!r}; choose one of {', '.join(PRESETS)}, or a variant's: "
                            f"{', '.join(f'{t}-mini' for t in VARIANT_PRESET_FIELDS)}, ... (any size)")
        layers, hidden = PRESETS[key]
        return cls(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=hidden // 64,
                   intermediate_size=4 * hidden, **overrides)

    # ---- config.json ---------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> BertConfig:
        fields = {name: field for field, name in cls.json_names.items()}  # config.json name → field
        data, overrides = ({fields.get(k, k): v for k, v in d.items()} for d in (data, overrides))
        data = {**data, **overrides}
        model_type = data.get("model_type", cls.model_type)
        if model_type != cls.model_type:
            prefix = CLASS_PREFIXES.get(model_type)
            advice = (f"load it with {prefix}Model or a {prefix}For* class" if prefix else
                      f"this package loads {', '.join(map(repr, MODEL_TYPES))} checkpoints only")
            raise BertError(f"config: model_type is {model_type!r}, not {cls.model_type!r}; {advice}")
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise BertError(f"config: position_embedding_type {data['position_embedding_type']!r} is not supported "
                            "(only 'absolute', the original BERT's)")
        if data.get("id2label") is not None:
            if not isinstance(data["id2label"], dict):
                raise BertError(f"config: id2label must be an object of id: label, got {data['id2label']!r}")
            if "num_labels" in overrides and overrides["num_labels"] != len(data["id2label"]):
                data.pop("id2label")  # the caller asked for a different head size: the old label names no longer apply
                data.pop("label2id", None)
            else:
                data["num_labels"] = len(data["id2label"])
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", *cls.json_omitted}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        try:
            return cls(**kwargs, extra=extra)
        except TypeError as error:  # e.g. a string where a number belongs
            raise BertError(f"config: invalid value ({error})") from None

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> BertConfig:
        return cls.from_dict(read_config_json(path), **overrides)

    def to_dict(self) -> dict[str, Any]:
        data = {**self.extra}
        for f in dataclasses.fields(self):
            if f.name != "extra" and f.name not in self.json_omitted:
                data[self.json_names.get(f.name, f.name)] = getattr(self, f.name)
        # HF derives num_labels from id2label, so id2label is what carries the head size to transformers.
        id2label = self.id2label or {i: f"LABEL_{i}" for i in range(self.num_labels)}
        data["id2label"] = {str(k): v for k, v in id2label.items()}
        data["label2id"] = {v: k for k, v in id2label.items()}
        if "classifier_dropout" in data and data["classifier_dropout"] is None:
            data.pop("classifier_dropout")
        data["model_type"] = self.model_type
        if "position_embedding_type" not in self.json_omitted:
            data.setdefault("position_embedding_type", "absolute")
        return data

    def save_as(self, path: str | os.PathLike, architecture: str | None = None) -> None:
        """Write a HF ``config.json`` to ``path``; ``architecture`` names the class that transformers should build."""
        data = self.to_dict()
        if architecture:
            data["architectures"] = [architecture]
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# (layers, hidden) of the published BERTs; heads = hidden / 64 and intermediate = 4 * hidden, as in all of them.
PRESETS: dict[str, tuple[int, int]] = {
    "tiny": (2, 128),
    "mini": (4, 256),
    "small": (4, 512),
    "medium": (8, 512),
    "base": (12, 768),
    "large": (24, 1024),
}
# Variant presets ("albert-mini", "roberta-small", ...): a BERT size above in the variant's config class (its own
# defaults: ALBERT's 128-wide embeddings, gelu_new and no dropout), plus these fields of its released configs.
# RoBERTa's 514 positions hold 512 tokens after its padding offset (pad_token_id + 1 rows, for pad_token_id 1).
VARIANT_PRESET_FIELDS: dict[str, dict[str, Any]] = {
    "roberta": {"type_vocab_size": 1, "layer_norm_eps": 1e-5, "max_position_embeddings": 514},
    "albert": {},
    "distilbert": {},
    "megatron-bert": {},
}


def split_preset(name: str) -> tuple[str, str]:
    """The model type and BERT size of a preset name: ("albert", "mini") for "albert-mini", ("megatron-bert",
    "mini") for "megatron-bert-mini", ("bert", name) for BERT's own ("mini", "bert-base-uncased")."""
    model_type, _, size = name.lower().rpartition("-")
    if model_type in VARIANT_PRESET_FIELDS and size:
        return model_type, size
    return "bert", name
