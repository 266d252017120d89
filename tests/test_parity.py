"""Our modules give the same outputs as transformers' BERT, for every head, on random-weight checkpoints that
transformers itself saves: logits, losses, every hidden state and every attention map, within 1e-5 in float32.

One difference is deliberate: on padded batches the question-answering loss leaves padding out of its softmax (see
``bert.heads.span_loss``); it is checked against that loss computed by hand from transformers' logits, and against
transformers' own loss on unpadded input."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import transformers
from support import perturb

import bert

TOLERANCE = 1e-5

CONFIGS = {
    "odd-heads-gelu": dict(hidden_size=45, num_attention_heads=3, intermediate_size=37, hidden_act="gelu"),
    "gelu-new": dict(hidden_size=32, num_attention_heads=4, intermediate_size=64, hidden_act="gelu_new"),
    "relu-three-segments": dict(hidden_size=24, num_attention_heads=2, intermediate_size=40, hidden_act="relu",
                                type_vocab_size=3),
    "one-segment-eps": dict(hidden_size=16, num_attention_heads=1, intermediate_size=32, type_vocab_size=1,
                            layer_norm_eps=1e-7),
}

HEADS = ["BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForNextSentencePrediction",
         "BertForSequenceClassification", "BertForTokenClassification", "BertForQuestionAnswering"]


def reference_config(name: str, **extra) -> transformers.BertConfig:
    return transformers.BertConfig(vocab_size=101, num_hidden_layers=3, max_position_embeddings=40,
                                   attn_implementation="eager", **CONFIGS[name], **extra)


def make_batch(config: transformers.BertConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three sequences of length 13; the 2nd and 3rd carry padding (attention_mask 0) at the end."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, config.vocab_size, (3, 13), generator=g)
    attention_mask = torch.ones(3, 13, dtype=torch.long)
    attention_mask[1, 9:] = 0
    attention_mask[2, 4:] = 0
    input_ids[attention_mask == 0] = config.pad_token_id
    token_type_ids = torch.randint(0, config.type_vocab_size, (3, 13), generator=g)
    return dict(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)


def make_labels(head: str, config: transformers.BertConfig, batch: dict, num_labels: int) -> dict:
    g = torch.Generator().manual_seed(1)
    shape = batch["input_ids"].shape
    if head in ("BertForPreTraining", "BertForMaskedLM"):
        labels = torch.full(shape, -100)
        labels[:, 2:5] = torch.randint(0, config.vocab_size, (shape[0], 3), generator=g)
        labels[batch["attention_mask"] == 0] = -100
        extra = {"next_sentence_label": torch.tensor([0, 1, 0])} if head == "BertForPreTraining" else {}
        return {"labels": labels, **extra}
    if head == "BertForNextSentencePrediction":
        return {"labels": torch.tensor([1, 0, 1])}
    if head == "BertForSequenceClassification":
        if num_labels == 1:
            return {"labels": torch.randn(shape[0], generator=g)}
        return {"labels": torch.randint(0, num_labels, (shape[0],), generator=g)}
    if head == "BertForTokenClassification":
        labels = torch.randint(0, num_labels, shape, generator=g)
        labels[batch["attention_mask"] == 0] = -100
        return {"labels": labels}
    if head == "BertForQuestionAnswering":  # 20: beyond the sequence; 10: on row 1's padding; both ignored
        return {"start_positions": torch.tensor([1, 3, 20]), "end_positions": torch.tensor([4, 10, 2])}
    return {}


def span_loss_over_real_tokens(start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor,
                               end_positions: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The QA loss with padding left out, by hand, row by row: for start and for end, the mean over the rows whose
    label is a real token of -log softmax(the row's real tokens' logits)[label]; then the mean of the two."""
    means = []
    for logits, labels in ((start_logits, start_positions), (end_logits, end_positions)):
        terms = []
        for row, label in enumerate(labels.tolist()):
            real = attention_mask[row].nonzero().flatten().tolist()
            if label in real:
                terms.append(torch.logsumexp(logits[row, real], dim=0) - logits[row, label])
        means.append(torch.stack(terms).mean())
    return (means[0] + means[1]) / 2


def check_span_losses(outputs: list, theirs, batch: dict, labels: dict) -> None:
    """Our QA loss on each of ``outputs`` equals the by-hand loss over the real tokens, from transformers' logits;
    and the batch is one where that differs from transformers' loss (so the check is not vacuous)."""
    expected = span_loss_over_real_tokens(theirs.start_logits, theirs.end_logits, labels["start_positions"],
                                          labels["end_positions"], batch["attention_mask"])
    assert (expected - theirs.loss).abs() > 1e-3, "the batch should make padding matter"
    for ours in outputs:
        assert_close(ours.loss, expected, "loss over the real tokens")


def assert_close(ours, theirs, what: str, limit: float = TOLERANCE) -> None:
    assert ours.shape == theirs.shape, f"{what}: shape {tuple(ours.shape)} vs {tuple(theirs.shape)}"
    delta = (ours - theirs).abs().max().item()
    assert delta <= limit, f"{what}: max |Δ| = {delta:.3g} > {limit:g}"


TOKEN_FIELDS = ("last_hidden_state", "prediction_logits", "logits", "start_logits", "end_logits")


def compare_outputs(ours, theirs, per_layer: bool = True, real: torch.Tensor | None = None,
                    skip: tuple[str, ...] = (), tolerance: Callable[[str], float] = lambda field: TOLERANCE) -> int:
    """Compare every output field the reference produced (with per_layer, also its hidden states and attention
    maps), each within ``tolerance(field)``; returns how many tensors were compared. With ``real`` ([B, T] bool),
    per-token fields are compared at real (non-padding) positions only."""
    compared = 0
    for field in ("loss", "last_hidden_state", "pooler_output", "prediction_logits", "seq_relationship_logits",
                  "logits", "start_logits", "end_logits"):
        reference = getattr(theirs, field, None)
        if reference is None or field in skip:
            continue
        mine = getattr(ours, field)
        if real is not None and field in TOKEN_FIELDS and reference.shape[:2] == real.shape:
            mine, reference = mine[real], reference[real]
        assert_close(mine, reference, field, tolerance(field))
        compared += 1
    for field in ("hidden_states", "attentions") if per_layer else ():
        reference = getattr(theirs, field, None)
        if reference:
            assert len(getattr(ours, field)) == len(reference), field
            for i, (a, b) in enumerate(zip(getattr(ours, field), reference, strict=True)):
                assert_close(a, b, f"{field}[{i}]", tolerance(field))
                compared += 1
    return compared


def assert_padding_is_zero(packed, unpacked, real: torch.Tensor) -> None:
    """The packed path's encoder outputs are exactly 0 at padding positions (``real`` [B, T] bool is False there):
    its last_hidden_state, and every hidden state it returns (it returns none: per-layer outputs switch packing
    off). ``unpacked``, the plain path on the same batch, is not 0 there, so the batch does exercise packing."""
    assert (~real).any()
    assert (unpacked.last_hidden_state[~real] != 0).any(), "the plain path should compute values at padding"
    for state in (packed.last_hidden_state, *(packed.hidden_states or ())):
        assert torch.count_nonzero(state[~real]) == 0, "packed outputs at padding positions should be exactly 0"


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("head", HEADS)
def test_every_head_matches_transformers_on_checkpoints_it_saves(tmp_path, config_name, head):
    num_labels = 2 if head == "BertForQuestionAnswering" else 3  # HF sizes qa_outputs by num_labels (start, end)
    config = reference_config(config_name, num_labels=num_labels)
    torch.manual_seed(0)
    reference = getattr(transformers, head)(config).eval()
    with torch.no_grad():  # make the LayerNorm and bias parameters non-trivial, so a mix-up would show
        for name, parameter in reference.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                parameter.normal_(0.5 if name.endswith("weight") else 0.0, 0.2)
    reference.save_pretrained(tmp_path)
    ours = getattr(bert, head).from_pretrained(tmp_path)
    assert ours.load_report.missing == [] and ours.load_report.unexpected == []  # all ours loaded, all theirs used

    batch = make_batch(config)
    labels = make_labels(head, config, batch, num_labels)
    with torch.no_grad():
        theirs = reference(**batch, **labels, output_attentions=True, output_hidden_states=True)
        mine = ours(**batch, **labels, output_attentions=True, output_hidden_states=True)  # the explicit math path
        packed = ours(**batch, **labels)  # the default: fused attention, padded batch packed to real tokens
        bert.BertModel.pack_padding = False
        try:
            fast = ours(**batch, **labels)  # fused attention on the padded batch
        finally:
            bert.BertModel.pack_padding = True
    qa = head == "BertForQuestionAnswering"
    skip = ("loss",) if qa else ()  # checked below: padding deliberately gets no probability in the QA loss
    compared = compare_outputs(mine, theirs, skip=skip)
    assert compared >= 2 * config.num_hidden_layers + 2
    compare_outputs(fast, theirs, per_layer=False, skip=skip)
    # Packing leaves padding positions at 0, so per-token outputs agree at real positions.
    real = batch["attention_mask"].bool()
    compare_outputs(packed, theirs, per_layer=False, real=real, skip=skip)
    if head == "BertModel":
        assert_padding_is_zero(packed, fast, real)
    if qa:
        check_span_losses([mine, fast, packed], theirs, batch, labels)


@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_question_answering_loss_equals_transformers_on_unpadded_input(tmp_path, config_name):
    config = reference_config(config_name, num_labels=2)
    torch.manual_seed(0)
    reference = transformers.BertForQuestionAnswering(config).eval()
    reference.save_pretrained(tmp_path)
    ours = bert.BertForQuestionAnswering.from_pretrained(tmp_path)
    batch = make_batch(config)
    batch["attention_mask"] = torch.ones_like(batch["attention_mask"])
    labels = {"start_positions": torch.tensor([1, 3, 20]), "end_positions": torch.tensor([4, 12, 2])}
    with torch.no_grad():
        theirs = reference(**batch, **labels)
        for inputs in (batch, {k: v for k, v in batch.items() if k != "attention_mask"}):
            assert_close(ours(**inputs, **labels).loss, theirs.loss, "loss")


def test_regression_head_uses_mean_squared_error_like_transformers(tmp_path):
    config = reference_config("gelu-new", num_labels=1)
    torch.manual_seed(0)
    reference = transformers.BertForSequenceClassification(config).eval()
    reference.save_pretrained(tmp_path)
    ours = bert.BertForSequenceClassification.from_pretrained(tmp_path)
    assert ours.config.num_labels == 1
    batch = make_batch(config)
    labels = make_labels("BertForSequenceClassification", config, batch, num_labels=1)
    with torch.no_grad():
        compare_outputs(ours(**batch, **labels), reference(**batch, **labels))


def test_defaults_mean_one_segment_and_no_padding(tmp_path):
    config = reference_config("gelu-new")
    torch.manual_seed(0)
    reference = transformers.BertModel(config).eval()
    reference.save_pretrained(tmp_path)
    ours = bert.BertModel.from_pretrained(tmp_path)
    input_ids = make_batch(config)["input_ids"]
    with torch.no_grad():
        compare_outputs(ours(input_ids), reference(input_ids))


def test_dropout_is_off_in_eval_mode_and_on_in_train_mode(tmp_path):
    config = reference_config("gelu-new", hidden_dropout_prob=0.3)
    model = bert.BertModel(bert.BertConfig.from_dict(config.to_dict()))
    input_ids = make_batch(config)["input_ids"]
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids).last_hidden_state, model(input_ids).last_hidden_state)
        model.train()
        assert not torch.equal(model(input_ids).last_hidden_state, model(input_ids).last_hidden_state)


def test_saved_checkpoints_load_in_transformers_with_identical_outputs(tmp_path):
    for head in HEADS:
        num_labels = 2 if head == "BertForQuestionAnswering" else 3
        config = bert.BertConfig.from_dict(reference_config("odd-heads-gelu", num_labels=num_labels).to_dict())
        torch.manual_seed(0)
        ours = getattr(bert, head)(config).eval()
        perturb(ours)  # freshly initialised, every layer's LayerNorms and biases are equal: a mix-up would not show
        ours.save_pretrained(tmp_path / head)
        reference, info = getattr(transformers, head).from_pretrained(
            tmp_path / head, output_loading_info=True, attn_implementation="eager")
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], (head, info)
        batch = make_batch(reference.config)
        with torch.no_grad():
            compare_outputs(ours(**batch, output_attentions=True, output_hidden_states=True),
                            reference.eval()(**batch, output_attentions=True, output_hidden_states=True))


def test_mlm_decoder_is_tied_to_word_embeddings_and_loss_counts_only_labelled_positions():
    config = bert.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=32)
    model = bert.BertForPreTraining(config).eval()
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    input_ids = torch.randint(0, 50, (2, 7))
    labels = torch.full((2, 7), -100)
    labels[0, 1], labels[1, 4] = 3, 9
    with torch.no_grad():
        out = model(input_ids, labels=labels)
    logits = out.prediction_logits
    by_hand = (torch.nn.functional.cross_entropy(logits[0, 1][None], torch.tensor([3]))
               + torch.nn.functional.cross_entropy(logits[1, 4][None], torch.tensor([9]))) / 2
    assert torch.allclose(out.loss, by_hand)
    assert out.nsp_loss is None


def test_initialisation_follows_bert():
    config = bert.BertConfig(vocab_size=2000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=128)
    model = bert.BertForPreTraining(config)
    weight = model.bert.encoder.layer[0].attention.self.query.weight
    assert abs(weight.std().item() - 0.02) < 0.002
    assert torch.count_nonzero(model.bert.encoder.layer[0].attention.self.query.bias) == 0
    assert torch.all(model.bert.embeddings.LayerNorm.weight == 1)
    assert torch.all(model.cls.predictions.bias == 0)
    assert torch.all(model.bert.embeddings.word_embeddings.weight[config.pad_token_id] == 0)
