"""The built-in configurations of the published checkpoints (`bert info --config NAME`, bert.variants.auto
.released_config) against those checkpoints' own config.json files, written out here, field for field, from the
Hugging Face Hub (https://huggingface.co/<name>/blob/main/config.json, as published; not read from our code), and
their parameter totals against the figures transformers gives for the same files."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers

from bert.cli import main
from bert.variants.auto import auto_class, released_config

# The published config.json files, copied key for key (https://huggingface.co/<name>/blob/main/config.json).
PUBLISHED_CONFIG_JSON: dict[str, dict[str, Any]] = {
    # https://huggingface.co/bert-base-uncased/blob/main/config.json (google-bert/bert-base-uncased)
    "bert-base-uncased": {
        "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
        "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
        "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522},
    # https://huggingface.co/bert-large-uncased/blob/main/config.json (google-bert/bert-large-uncased)
    "bert-large-uncased": {
        "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 1024, "initializer_range": 0.02,
        "intermediate_size": 4096, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 16, "num_hidden_layers": 24, "pad_token_id": 0, "position_embedding_type": "absolute",
        "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522},
    # https://huggingface.co/roberta-base/blob/main/config.json (FacebookAI/roberta-base)
    "roberta-base": {
        "architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
        "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
        "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
        "max_position_embeddings": 514, "model_type": "roberta", "num_attention_heads": 12,
        "num_hidden_layers": 12, "pad_token_id": 1, "type_vocab_size": 1, "vocab_size": 50265},
    # https://huggingface.co/roberta-large/blob/main/config.json (FacebookAI/roberta-large)
    "roberta-large": {
        "architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
        "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 1024,
        "initializer_range": 0.02, "intermediate_size": 4096, "layer_norm_eps": 1e-05,
        "max_position_embeddings": 514, "model_type": "roberta", "num_attention_heads": 16,
        "num_hidden_layers": 24, "pad_token_id": 1, "type_vocab_size": 1, "vocab_size": 50265},
    # https://huggingface.co/albert-base-v2/blob/main/config.json (albert/albert-base-v2): v2 has no dropout
    "albert-base-v2": {
        "architectures": ["AlbertForMaskedLM"], "attention_probs_dropout_prob": 0, "bos_token_id": 2,
        "classifier_dropout_prob": 0.1, "down_scale_factor": 1, "embedding_size": 128, "eos_token_id": 3,
        "gap_size": 0, "hidden_act": "gelu_new", "hidden_dropout_prob": 0, "hidden_size": 768,
        "initializer_range": 0.02, "inner_group_num": 1, "intermediate_size": 3072, "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512, "model_type": "albert", "net_structure_type": 0, "num_attention_heads": 12,
        "num_hidden_groups": 1, "num_hidden_layers": 12, "num_memory_blocks": 0, "pad_token_id": 0,
        "type_vocab_size": 2, "vocab_size": 30000},
    # https://huggingface.co/albert-large-v2/blob/main/config.json (albert/albert-large-v2)
    "albert-large-v2": {
        "architectures": ["AlbertForMaskedLM"], "attention_probs_dropout_prob": 0, "bos_token_id": 2,
        "classifier_dropout_prob": 0.1, "down_scale_factor": 1, "embedding_size": 128, "eos_token_id": 3,
        "gap_size": 0, "hidden_act": "gelu_new", "hidden_dropout_prob": 0, "hidden_size": 1024,
        "initializer_range": 0.02, "inner_group_num": 1, "intermediate_size": 4096, "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512, "model_type": "albert", "net_structure_type": 0, "num_attention_heads": 16,
        "num_hidden_groups": 1, "num_hidden_layers": 24, "num_memory_blocks": 0, "pad_token_id": 0,
        "type_vocab_size": 2, "vocab_size": 30000},
    # https://huggingface.co/distilbert-base-uncased/blob/main/config.json (distilbert/distilbert-base-uncased)
    "distilbert-base-uncased": {
        "activation": "gelu", "architectures": ["DistilBertForMaskedLM"], "attention_dropout": 0.1, "dim": 768,
        "dropout": 0.1, "hidden_dim": 3072, "initializer_range": 0.02, "max_position_embeddings": 512,
        "model_type": "distilbert", "n_heads": 12, "n_layers": 6, "pad_token_id": 0, "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False, "tie_weights_": True, "vocab_size": 30522},
}

# Keys of those files that do not describe the encoder we build, and why our config may leave them out.
NOT_MODEL_FIELDS = {
    "architectures": "names the class to load; `bert info --config` builds the bare encoder",
    "transformers_version": "which transformers wrote the file",
    "gradient_checkpointing": "a training switch (bert pretrain --gradient-checkpointing), not the architecture",
    "use_cache": "a decoder's key/value cache: BERT is no decoder",
    "bos_token_id": "the tokenizer's <s> / [CLS]; the encoder never reads it",
    "eos_token_id": "the tokenizer's </s> / [SEP]; the encoder never reads it",
    "tie_weights_": "DistilBERT's MLM decoder is always tied to the word embeddings here, as in transformers",
    # ALBERT's TF-era fields, unused by transformers' ALBERT too (left at their no-op values in every release).
    "down_scale_factor": "unused (1)", "gap_size": "unused (0)", "net_structure_type": "unused (0)",
    "num_memory_blocks": "unused (0)",
}

# Parameters of the bare encoders (BertModel, RobertaModel, AlbertModel, DistilBertModel, pooler included where the
# model has one) for those files: the figures transformers' `num_parameters()` gives for the published checkpoints.
PUBLISHED_TOTALS = {
    "bert-base-uncased": 109_482_240,
    "bert-large-uncased": 335_141_888,
    "roberta-base": 124_645_632,
    "roberta-large": 355_359_744,
    "albert-base-v2": 11_683_584,
    "albert-large-v2": 17_683_968,
    "distilbert-base-uncased": 66_362_880,
}
TRANSFORMERS_CLASSES = {"bert": (transformers.BertConfig, transformers.BertModel),
                        "roberta": (transformers.RobertaConfig, transformers.RobertaModel),
                        "albert": (transformers.AlbertConfig, transformers.AlbertModel),
                        "distilbert": (transformers.DistilBertConfig, transformers.DistilBertModel)}


def transformers_model(name: str) -> torch.nn.Module:
    """transformers' bare encoder for the published config.json above, on the meta device (sizes only)."""
    published = PUBLISHED_CONFIG_JSON[name]
    config_class, model_class = TRANSFORMERS_CLASSES[published["model_type"]]
    with torch.device("meta"):
        return model_class(config_class.from_dict(published))


def test_every_published_checkpoint_has_a_built_in_config_and_nothing_else_is_built_in() -> None:
    from bert.variants.auto import RELEASED_CONFIGS

    assert set(RELEASED_CONFIGS) == set(PUBLISHED_CONFIG_JSON)


@pytest.mark.parametrize("name", PUBLISHED_CONFIG_JSON)
def test_built_in_config_equals_the_published_config_json_field_by_field(name: str) -> None:
    published = PUBLISHED_CONFIG_JSON[name]
    ours = released_config(name).to_dict()  # written with the model type's own config.json names (DistilBERT's dim)
    for key, value in published.items():
        if key in NOT_MODEL_FIELDS:
            continue
        assert key in ours, f"{name}: the built-in config has no {key!r} (published: {value!r})"
        assert ours[key] == value and type(ours[key]) in (type(value), float), (
            f"{name}: {key} is {ours[key]!r}, the published config.json says {value!r}")
    # Every field ours has that the file leaves out takes the value transformers gives it for that file (its class
    # default): e.g. RoBERTa's position_embedding_type, the heads' num_labels.
    # (position_embedding_type: absent from RoBERTa's and ALBERT's files, whose positions are learned absolute ones;
    # transformers 4.x defaults it to "absolute", 5.x no longer has the field for them.)
    reference = TRANSFORMERS_CLASSES[published["model_type"]][0].from_dict(published)
    for key in sorted(ours.keys() - published.keys() - {"id2label", "label2id"}):
        expected = getattr(reference, key, "absolute" if key == "position_embedding_type" else None)
        assert ours[key] == expected, f"{name}: {key} is {ours[key]!r}, transformers says {expected!r}"
    assert ours["id2label"] == {str(k): v for k, v in reference.id2label.items()}


@pytest.mark.parametrize("name", PUBLISHED_CONFIG_JSON)
def test_parameter_totals_equal_transformers_for_the_published_config_json(name: str, capsys) -> None:
    expected = PUBLISHED_TOTALS[name]
    assert transformers_model(name).num_parameters() == expected  # the figure above is transformers' for the file
    config = released_config(name)
    with torch.device("meta"):
        ours = auto_class(config, "base")(config)
    assert sum(p.numel() for p in ours.parameters()) == expected
    assert main(["info", "--config", name]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].split()[-1] == f"{expected:,}"
