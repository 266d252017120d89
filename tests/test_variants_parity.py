"""RoBERTa, ALBERT, DistilBERT and Megatron-BERT (bert.variants) give the same outputs as transformers, for every
head, on random-weight checkpoints that transformers saves (logits, losses, every hidden state and attention map,
within 1e-5 in float32), and the checkpoints we save load in transformers with nothing missing or unexpected."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
import torch
import transformers
from support import perturb
from test_parity import assert_padding_is_zero, check_span_losses, compare_outputs

import bert
from bert.variants.distilbert import sinusoidal_table

SIZES = dict(vocab_size=101, num_hidden_layers=3, max_position_embeddings=40)
CONFIGS = {
    "roberta": {
        "odd-heads-gelu": dict(hidden_size=45, num_attention_heads=3, intermediate_size=37, type_vocab_size=1,
                               layer_norm_eps=1e-5),
        "gelu-new-two-segments": dict(hidden_size=32, num_attention_heads=4, intermediate_size=64,
                                      hidden_act="gelu_new", type_vocab_size=2),
    },
    "albert": {
        "one-group-one-layer": dict(embedding_size=10, hidden_size=45, num_attention_heads=3, intermediate_size=37),
        "two-groups-two-inner": dict(embedding_size=12, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                                     num_hidden_groups=2, inner_group_num=2, hidden_act="relu"),
        "one-group-two-inner": dict(embedding_size=16, hidden_size=24, num_attention_heads=2, intermediate_size=40,
                                    num_hidden_groups=1, inner_group_num=2, hidden_act="gelu", type_vocab_size=3),
    },
    "distilbert": {
        "learned-odd-heads": dict(dim=45, n_heads=3, hidden_dim=37, sinusoidal_pos_embds=False),
        "sinusoidal-relu": dict(dim=32, n_heads=4, hidden_dim=64, activation="relu", sinusoidal_pos_embds=True),
    },
    "megatron-bert": {
        "odd-heads-gelu": dict(hidden_size=45, num_attention_heads=3, intermediate_size=37),
        "relu-three-segments": dict(hidden_size=32, num_attention_heads=4, intermediate_size=64, hidden_act="relu",
                                    type_vocab_size=3),
    },
}
HEADS = {
    "roberta": ["RobertaModel", "RobertaForMaskedLM", "RobertaForSequenceClassification",
                "RobertaForTokenClassification", "RobertaForQuestionAnswering"],
    "albert": ["AlbertModel", "AlbertForPreTraining", "AlbertForMaskedLM", "AlbertForSequenceClassification",
               "AlbertForTokenClassification", "AlbertForQuestionAnswering"],
    "distilbert": ["DistilBertModel", "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
                   "DistilBertForTokenClassification", "DistilBertForQuestionAnswering"],
    "megatron-bert": ["MegatronBertModel", "MegatronBertForPreTraining", "MegatronBertForMaskedLM",
                      "MegatronBertForNextSentencePrediction", "MegatronBertForSequenceClassification",
                      "MegatronBertForTokenClassification", "MegatronBertForQuestionAnswering"],
}
CASES = [(variant, config, head) for variant in HEADS for config in CONFIGS[variant] for head in HEADS[variant]]
REFERENCE_CONFIGS = {"roberta": transformers.RobertaConfig, "albert": transformers.AlbertConfig,
                     "distilbert": transformers.DistilBertConfig, "megatron-bert": transformers.MegatronBertConfig}
OUR_CONFIGS = {"roberta": bert.RobertaConfig, "albert": bert.AlbertConfig, "distilbert": bert.DistilBertConfig,
               "megatron-bert": bert.MegatronBertConfig}


def num_labels_for(head: str) -> int:
    return 2 if head.endswith(("QuestionAnswering", "PreTraining")) else 3  # qa_outputs, sop_classifier: 2


def reference_config(variant: str, name: str, **extra) -> transformers.PreTrainedConfig:
    sizes = dict(SIZES)
    if variant == "distilbert":
        sizes["n_layers"] = sizes.pop("num_hidden_layers")
    return REFERENCE_CONFIGS[variant](**sizes, **CONFIGS[variant][name], attn_implementation="eager", **extra)


def make_batch(variant: str, config, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three sequences of length 13; the 2nd and 3rd end in padding (pad_token_id, attention_mask 0)."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, config.vocab_size, (3, 13), generator=g)  # never a pad id (0 or 1) where real
    attention_mask = torch.ones(3, 13, dtype=torch.long)
    attention_mask[1, 9:] = 0
    attention_mask[2, 4:] = 0
    input_ids[attention_mask == 0] = config.pad_token_id
    batch = dict(input_ids=input_ids, attention_mask=attention_mask)
    if variant != "distilbert":
        batch["token_type_ids"] = torch.randint(0, config.type_vocab_size, (3, 13), generator=g)
    return batch


def sentence_labels(head: str) -> dict[str, torch.Tensor]:
    """The sentence head's labels of a pretraining head: ALBERT's sentence order, BERT's next sentence."""
    if not head.endswith("PreTraining"):
        return {}
    name = "sentence_order_label" if head.startswith("Albert") else "next_sentence_label"
    return {name: torch.tensor([0, 1, 0])}


def make_labels(head: str, config, batch: dict) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    shape, real = batch["input_ids"].shape, batch["attention_mask"].bool()
    if head.endswith(("MaskedLM", "PreTraining")):
        labels = torch.full(shape, -100)
        labels[:, 2:5] = torch.randint(0, config.vocab_size, (shape[0], 3), generator=g)
        labels[~real] = -100
        return {"labels": labels, **sentence_labels(head)}
    if head.endswith("NextSentencePrediction"):
        return {"labels": torch.tensor([0, 1, 0])}
    if head.endswith("SequenceClassification"):
        return {"labels": torch.randint(0, config.num_labels, (shape[0],), generator=g)}
    if head.endswith("TokenClassification"):
        labels = torch.randint(0, config.num_labels, shape, generator=g)
        labels[~real] = -100
        return {"labels": labels}
    if head.endswith("QuestionAnswering"):
        return {"start_positions": torch.tensor([1, 3, 20]), "end_positions": torch.tensor([4, 3, 2])}
    return {}


@contextmanager
def unpacked():
    """Padded batches through the plain (unpacked) path of every base model."""
    saved = bert.BertModel.pack_padding, bert.DistilBertModel.pack_padding
    bert.BertModel.pack_padding = bert.DistilBertModel.pack_padding = False
    try:
        yield
    finally:
        bert.BertModel.pack_padding, bert.DistilBertModel.pack_padding = saved


@pytest.mark.parametrize("variant, config_name, head", CASES)
def test_every_head_matches_transformers_on_checkpoints_it_saves(tmp_path, variant, config_name, head):
    config = reference_config(variant, config_name, num_labels=num_labels_for(head))
    torch.manual_seed(0)
    reference = getattr(transformers, head)(config).eval()
    perturb(reference)
    reference.save_pretrained(tmp_path)
    ours = getattr(bert, head).from_pretrained(tmp_path)
    assert type(ours.config) is OUR_CONFIGS[variant]
    assert ours.load_report.missing == [] and ours.load_report.unexpected == [], ours.load_report

    batch = make_batch(variant, config)
    labels = make_labels(head, config, batch)
    with torch.no_grad():
        theirs = reference(**batch, **labels, output_attentions=True, output_hidden_states=True)
        mine = ours(**batch, **labels, output_attentions=True, output_hidden_states=True)  # the explicit math path
        packed = ours(**batch, **labels)  # the default: fused attention, padded batch packed to real tokens
        with unpacked():
            fast = ours(**batch, **labels)  # fused attention on the padded batch
    layers = config.num_hidden_layers * getattr(config, "inner_group_num", 1)  # ALBERT: every inner layer counts
    assert len(mine.attentions) == layers and len(mine.hidden_states) == layers + 1
    qa = head.endswith("QuestionAnswering")
    skip = ("loss",) if qa else ()  # the QA loss leaves padding out on purpose: checked by check_span_losses
    assert compare_outputs(mine, theirs, skip=skip) >= 2 * layers + 2
    if head.startswith("AlbertForPreTraining"):  # a field compare_outputs does not know
        assert (mine.sop_logits - theirs.sop_logits).abs().max() <= 1e-5
    compare_outputs(fast, theirs, per_layer=False, skip=skip)
    # Packing leaves padding positions at 0, so per-token outputs agree at real positions.
    real = batch["attention_mask"].bool()
    compare_outputs(packed, theirs, per_layer=False, real=real, skip=skip)
    if head.endswith("Model"):  # the bare encoders: every variant packs through bert.model.encode
        assert_padding_is_zero(packed, fast, real)
    if qa:
        check_span_losses([mine, fast, packed], theirs, batch, labels)


@pytest.mark.parametrize("variant, config_name, head", CASES)
def test_saved_checkpoints_load_in_transformers_with_identical_outputs(tmp_path, variant, config_name, head):
    reference_dict = reference_config(variant, config_name, num_labels=num_labels_for(head)).to_dict()
    config = OUR_CONFIGS[variant].from_dict(reference_dict)
    torch.manual_seed(0)
    ours = getattr(bert, head)(config).eval()
    perturb(ours)
    ours.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == variant and saved["architectures"] == [head]
    reference, info = getattr(transformers, head).from_pretrained(tmp_path, output_loading_info=True,
                                                                  attn_implementation="eager")
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    batch = make_batch(variant, reference.config)
    labels = make_labels(head, reference.config, batch)
    with torch.no_grad():
        mine = ours(**batch, **labels, output_attentions=True, output_hidden_states=True)
        theirs = reference.eval()(**batch, **labels, output_attentions=True, output_hidden_states=True)
    qa = head.endswith("QuestionAnswering")
    compare_outputs(mine, theirs, skip=("loss",) if qa else ())
    if qa:
        check_span_losses([mine], theirs, batch, labels)


def test_config_json_uses_each_variants_own_field_names(tmp_path):
    distil = bert.DistilBertConfig.from_dict(reference_config("distilbert", "sinusoidal-relu").to_dict())
    assert (distil.hidden_size, distil.num_attention_heads, distil.intermediate_size, distil.hidden_act) == (
        32, 4, 64, "relu")
    written = distil.to_dict()
    assert {"dim", "n_layers", "n_heads", "hidden_dim", "activation", "dropout", "attention_dropout",
            "sinusoidal_pos_embds", "qa_dropout", "seq_classif_dropout"} <= set(written)
    assert not {"hidden_size", "type_vocab_size", "layer_norm_eps", "position_embedding_type"} & set(written)
    albert = bert.AlbertConfig.from_dict({"classifier_dropout_prob": 0.25, "embedding_size": 8, "hidden_size": 16,
                                          "num_attention_heads": 2, "intermediate_size": 32})
    assert albert.classifier_dropout == 0.25 and albert.to_dict()["classifier_dropout_prob"] == 0.25
    assert bert.RobertaConfig().pad_token_id == 1 and bert.RobertaConfig().to_dict()["model_type"] == "roberta"
    with pytest.raises(bert.BertError, match="dim 15 is not divisible by n_heads 2"):
        bert.DistilBertConfig.from_dict({"dim": 15, "n_heads": 2})


def test_unsupported_or_mismatched_model_type_is_a_one_line_error(tmp_path):
    torch.manual_seed(0)
    transformers.RobertaModel(reference_config("roberta", "odd-heads-gelu")).save_pretrained(tmp_path)
    with pytest.raises(bert.BertError, match="not 'bert'; load it with RobertaModel") as error:
        bert.BertModel.from_pretrained(tmp_path)
    assert "\n" not in str(error.value)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    for cls in (bert.BertModel, bert.RobertaModel, bert.AlbertModel, bert.DistilBertModel):
        with pytest.raises(bert.BertError,
                           match="'gpt2'.*'bert', 'roberta', 'albert', 'distilbert', 'megatron-bert'") as error:
            cls.from_pretrained(tmp_path)
        assert "\n" not in str(error.value)


def test_roberta_positions_skip_padding_so_left_padding_changes_nothing(tmp_path):
    config = reference_config("roberta", "odd-heads-gelu")
    torch.manual_seed(0)
    reference = transformers.RobertaModel(config).eval()
    reference.save_pretrained(tmp_path)
    ours = bert.RobertaModel.from_pretrained(tmp_path)
    ids = torch.randint(3, config.vocab_size, (1, 7))
    left_padded = torch.cat([torch.full((1, 3), config.pad_token_id), ids], dim=1)
    mask = (left_padded != config.pad_token_id).long()
    with torch.no_grad():
        alone = ours(ids).last_hidden_state
        padded = ours(left_padded, attention_mask=mask).last_hidden_state
        theirs = reference(left_padded, attention_mask=mask).last_hidden_state
    assert (padded[:, 3:] - alone).abs().max() <= 1e-5
    assert (padded[:, 3:] - theirs[:, 3:]).abs().max() <= 1e-5
    too_long = torch.randint(3, config.vocab_size, (1, config.max_position_embeddings - 1))
    with pytest.raises(bert.BertError, match="longer than this model's 38 positions"):
        ours(too_long)


def test_distilbert_sinusoidal_positions_are_transformers_fixed_table():
    config = reference_config("distilbert", "sinusoidal-relu")
    torch.manual_seed(0)
    reference = transformers.DistilBertModel(config)
    ours = bert.DistilBertModel(bert.DistilBertConfig.from_dict(config.to_dict()))
    table = ours.embeddings.position_embeddings.weight
    assert torch.allclose(table, reference.embeddings.position_embeddings.weight, atol=1e-7, rtol=0)
    assert torch.equal(table, sinusoidal_table(40, 32)) and not table.requires_grad


def test_albert_shares_layers_and_ties_its_narrow_decoder():
    config = bert.AlbertConfig.from_dict(reference_config("albert", "two-groups-two-inner").to_dict())
    model = bert.AlbertForPreTraining(config)
    schedule = model.albert.encoder.schedule()
    groups = model.albert.encoder.albert_layer_groups
    assert len(schedule) == 6 and schedule[:4] == [*groups[0].albert_layers, *groups[0].albert_layers]
    assert schedule[4:] == list(groups[1].albert_layers)  # layer i uses group int(i / (3 / 2)): 0, 0, 1
    assert model.predictions.decoder.weight is model.albert.embeddings.word_embeddings.weight
    assert model.predictions.decoder.weight.shape == (101, 12)
