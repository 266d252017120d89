"""Unit tests of bert.pretraining's pieces: masked-only loss, optimizer groups, LAMB, schedule, checkpoint listing."""

from __future__ import annotations

import math

import pytest
import torch

from bert.config import BertConfig
from bert.engine.checkpointing import latest_checkpoint, list_checkpoints, prune_checkpoints
from bert.engine.optim import Lamb, build_optimizer, parameter_groups
from bert.engine.schedule import WarmupLinearSchedule, estimate_total_steps, resolve_warmup
from bert.errors import BertError
from bert.heads import BertForPreTraining
from bert.pretraining.loss import ROW_BLOCK, PretrainingObjective, cross_entropy_sums_, masked_lm_logits, summarize


def tiny_model(vocab: int = 97) -> BertForPreTraining:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    return BertForPreTraining(config).eval()


def random_batch(vocab: int = 97, batch: int = 4, length: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, vocab, (batch, length), generator=g)
    attention_mask = torch.ones(batch, length, dtype=torch.long)
    attention_mask[0, 10:] = 0
    labels = torch.full((batch, length), -100)
    chosen = torch.rand(batch, length, generator=g) < 0.2
    chosen[:, 0] = False
    chosen[1, 3] = True
    labels[chosen] = torch.randint(5, vocab, (int(chosen.sum()),), generator=g)
    return {"input_ids": input_ids, "token_type_ids": torch.zeros_like(input_ids), "attention_mask": attention_mask,
            "labels": labels, "next_sentence_label": torch.randint(0, 2, (batch,), generator=g)}


def test_masked_only_mlm_loss_equals_full_logits_loss_and_gradients() -> None:
    model = tiny_model()
    with torch.no_grad():  # a bias that matters (it starts at 0): the objective's loss adds it, not the head
        model.cls.predictions.bias.normal_(generator=torch.Generator().manual_seed(3))
    batch = random_batch()
    full = model(**batch)
    hidden = model.bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]).last_hidden_state
    masked = torch.nn.functional.cross_entropy(*masked_lm_logits(model, hidden, batch["labels"]))  # masked only
    torch.testing.assert_close(masked, full.mlm_loss, rtol=1e-6, atol=1e-6)

    # The objective (sums / counts) gives the model's total loss and the same gradients.
    objective = PretrainingObjective(model)
    sums = objective(**batch, mlm_normalizer=int((batch["labels"] != -100).sum()), nsp_normalizer=4)
    torch.testing.assert_close(sums.loss, full.loss, rtol=1e-6, atol=1e-6)
    full.loss.backward()
    reference = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    objective(**batch, mlm_normalizer=int((batch["labels"] != -100).sum()), nsp_normalizer=4).loss.backward()
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.grad, reference[name], rtol=1e-5, atol=1e-7, msg=name)
    stats = summarize(sums.stats())
    assert math.isclose(stats["mlm_loss"], full.mlm_loss.item(), rel_tol=1e-5)
    assert 0.0 <= stats["mlm_accuracy"] <= 1.0 and 0.0 <= stats["nsp_accuracy"] <= 1.0


def test_gradient_checkpointing_recomputes_layers_and_gives_identical_gradients_with_dropout() -> None:
    model = tiny_model().train()  # dropout 0.1 on: the replayed random state must give the same masks
    batch = random_batch()  # one padded row: the packed path goes through the checkpoint too
    calls = []
    for layer in model.bert.encoder.layer:
        def counted(*args, forward=layer.forward):
            calls.append(1)
            return forward(*args)
        layer.forward = counted
    results = {}
    for enabled in (False, True):
        model.gradient_checkpointing_enable(enabled)
        model.zero_grad()
        calls.clear()
        torch.manual_seed(5)
        loss = model(**batch).loss
        loss.backward()
        results[enabled] = (loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}, len(calls))
    torch.testing.assert_close(results[True][0], results[False][0], rtol=0, atol=0)
    for name, grad in results[False][1].items():
        torch.testing.assert_close(results[True][1][name], grad, rtol=1e-6, atol=1e-7, msg=name)
    assert (results[False][2], results[True][2]) == (2, 4)  # each layer ran again during backward


def test_parameter_groups_skip_decay_on_biases_and_layernorm() -> None:
    model = tiny_model()
    decay, no_decay = parameter_groups(model, 0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    undecayed = {names[id(p)] for p in no_decay["params"]}
    assert "bert.embeddings.LayerNorm.weight" in undecayed
    assert "cls.predictions.bias" in undecayed
    assert "bert.encoder.layer.0.attention.output.LayerNorm.weight" in undecayed
    assert "bert.embeddings.word_embeddings.weight" in decayed
    assert "bert.encoder.layer.1.intermediate.dense.weight" in decayed
    assert all(not n.endswith("bias") and "LayerNorm" not in n for n in decayed)
    assert len(decayed) + len(undecayed) == len(list(model.parameters()))  # the tied decoder counted once
    optimizer = build_optimizer(model, "adamw", 1e-3, 0.01)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]


HEADS = {  # model class: the names of its pretraining heads' parameters (the tied decoder is the word embeddings)
    "BertForPreTraining": ("cls.",),
    "AlbertForPreTraining": ("predictions.", "sop_classifier."),
    "RobertaForMaskedLM": ("lm_head.",),
    "DistilBertForMaskedLM": ("vocab_transform.", "vocab_layer_norm.", "vocab_projector."),
}


@pytest.mark.parametrize("class_name", HEADS)
def test_head_learning_rate_groups_hold_exactly_each_models_heads(class_name: str) -> None:
    import bert

    model_class = getattr(bert, class_name)
    config_class = getattr(bert, class_name.replace("ForPreTraining", "Config").replace("ForMaskedLM", "Config"))
    model = model_class(config_class(vocab_size=50, max_position_embeddings=40, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32))
    groups = parameter_groups(model, 0.01, head_lr_scale=5.0)
    names = {id(p): n for n, p in model.named_parameters()}
    in_heads = {names[id(p)] for g in groups if g.get("lr_scale") == 5.0 for p in g["params"]}
    in_encoder = {names[id(p)] for g in groups if "lr_scale" not in g for p in g["params"]}
    assert in_heads and in_heads == {n for n in names.values() if n.startswith(HEADS[class_name])}
    assert in_encoder == set(names.values()) - in_heads
    assert all(n.startswith(model.base_model_prefix + ".") for n in in_encoder)
    decoder = model.get_parameter(model.tied_decoder)  # tied: it is the word embeddings, at the encoder's rate
    assert decoder is getattr(model, model.base_model_prefix).embeddings.word_embeddings.weight
    assert names[id(decoder)] in in_encoder


def test_head_learning_rate_on_a_model_without_heads_is_an_error() -> None:
    import bert

    with pytest.raises(BertError, match="heads around an encoder"):
        parameter_groups(bert.BertModel(bert.BertConfig.preset("tiny")), 0.01, head_lr_scale=5.0)


@pytest.mark.parametrize("name", ["albert", "distilbert", "roberta"])
def test_parameter_groups_skip_decay_on_the_variants_layer_norms_by_module_type(name) -> None:
    """ALBERT's ``full_layer_layer_norm``, DistilBERT's ``sa_layer_norm``, RoBERTa's ``lm_head.layer_norm``: no
    "LayerNorm" in their names, yet LayerNorm weights all the same."""
    import bert

    classes = {"albert": (bert.AlbertConfig, bert.AlbertForPreTraining),
               "distilbert": (bert.DistilBertConfig, bert.DistilBertForMaskedLM),
               "roberta": (bert.RobertaConfig, bert.RobertaForMaskedLM)}
    config_class, model_class = classes[name]
    model = model_class(config_class(vocab_size=50, max_position_embeddings=40, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32))
    decay, no_decay = parameter_groups(model, 0.01)
    norms = {id(p) for m in model.modules() if isinstance(m, torch.nn.LayerNorm) for p in m.parameters()}
    biases = {id(p) for n, p in model.named_parameters() if n.endswith("bias")}
    assert {id(p) for p in no_decay["params"]} == norms | biases
    assert any("layer_norm" in n for n, p in model.named_parameters() if id(p) in norms)
    assert not {id(p) for p in decay["params"]} & (norms | biases)


def test_lamb_trains_and_uses_trust_ratio() -> None:
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(8, 8) * 3)
    bias = torch.nn.Parameter(torch.zeros(8))
    optimizer = Lamb([{"params": [weight], "weight_decay": 0.0, "adapt": True},
                      {"params": [bias], "weight_decay": 0.0, "adapt": False}], lr=0.05)
    x = torch.randn(64, 8)
    target = x @ torch.randn(8, 8)
    losses = []
    for _ in range(200):
        optimizer.zero_grad()
        loss = ((x @ weight.T + bias - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    # One step moves an adapted tensor by lr × ||w|| (the trust ratio), whatever the gradient's scale.
    before = weight.detach().clone()
    optimizer.zero_grad()
    (1e6 * (x @ weight.T).sum()).backward()
    optimizer.step()
    assert math.isclose((weight.detach() - before).norm().item(), 0.05 * before.norm().item(), rel_tol=1e-3)


def test_warmup_then_linear_decay() -> None:
    schedule = WarmupLinearSchedule(peak_lr=1.0, warmup_steps=10, total_steps=110)
    assert schedule.lr(1) == pytest.approx(0.1)
    assert schedule.lr(10) == pytest.approx(1.0)
    assert schedule.lr(60) == pytest.approx(0.5)
    assert schedule.lr(110) == 0.0 and schedule.lr(200) == 0.0
    assert WarmupLinearSchedule.from_state_dict(schedule.state_dict()) == schedule
    assert resolve_warmup(1000, None, 0.01) == 10 and resolve_warmup(1000, 7, 0.5) == 7
    assert estimate_total_steps(100.0, 1.0) == 100
    assert estimate_total_steps(100.0, 1.0, eval_seconds=10.0, eval_every=10) == 50


def test_checkpoint_listing_ignores_temporary_and_incomplete_folders(tmp_path) -> None:
    for step in (3, 6, 9):
        folder = tmp_path / f"step-{step:07d}"
        folder.mkdir()
        for name in ("config.json", "model.safetensors", "training_state.pt"):
            (folder / name).write_text("x")
    (tmp_path / ".tmp-step-0000012-4242").mkdir()  # a save killed before its rename
    (tmp_path / "step-0000015").mkdir()  # not written by us: no training_state.pt
    (tmp_path / "step-0000015" / "config.json").write_text("{}")
    assert [s for s, _ in list_checkpoints(tmp_path)] == [3, 6, 9]
    assert latest_checkpoint(tmp_path) == tmp_path / "step-0000009"
    prune_checkpoints(tmp_path, keep_last=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [6, 9]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("planned", "used"), [(0.1, 0.1), (1.0, 1.0), (0.1, 0.3)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_the_blocked_cross_entropy_gives_the_plain_loss_hits_and_gradient(dtype, planned, used, with_bias) -> None:
    """cross_entropy_sums_ (blocks of ROW_BLOCK rows, the bias added and the gradient made in the forward pass and
    written over the logits) against a bias add + F.cross_entropy + argmax: a row count that is no multiple of the
    block, ignored rows, rows whose target scores highest, and a loss scaled as planned or otherwise before
    backward; the bias's gradient too."""
    g = torch.Generator().manual_seed(0)
    rows = 2 * ROW_BLOCK + 11
    base = torch.randn(rows, 50, generator=g).to(dtype)
    base_bias = torch.randn(50, generator=g) if with_bias else torch.zeros(50)
    targets = torch.randint(0, 50, (rows,), generator=g)
    targets[::5] = (base[::5].float() + base_bias).argmax(-1)  # some hits
    targets[1::7] = -100
    x, bias = base.clone().requires_grad_(), base_bias.clone().requires_grad_()
    loss, correct = cross_entropy_sums_(x * 1, targets, planned, bias if with_bias else None)  # x * 1: made by an op
    (loss * used).backward()
    reference, ref_bias = base.clone().requires_grad_(), base_bias.clone().requires_grad_()
    ref_loss = torch.nn.functional.cross_entropy(reference.float() + ref_bias, targets, reduction="sum")
    (ref_loss * used).backward()
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-5)
    assert correct.item() == ((base.float() + base_bias).argmax(-1) == targets).sum().item() >= rows // 5 - rows // 35
    tolerance = {"rtol": 1e-5, "atol": 1e-7} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 1e-4}
    torch.testing.assert_close(x.grad, reference.grad, **tolerance)
    assert (x.grad[1::7] == 0).all()
    if with_bias:
        torch.testing.assert_close(bias.grad, ref_bias.grad, rtol=1e-5, atol=1e-6)


def test_the_blocked_cross_entropy_leaves_logits_alone_without_a_gradient_and_fails_loudly_on_saved_ones() -> None:
    logits, targets = torch.randn(40, 30), torch.randint(0, 30, (40,))
    with torch.no_grad():
        before = logits.clone()
        cross_entropy_sums_(logits, targets)
    assert torch.equal(logits, before)
    x = torch.randn(40, 30, requires_grad=True)
    loss, _ = cross_entropy_sums_(x.exp(), targets)  # exp saves its output for backward: overwritten, refused
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_a_fixed_number_of_decoder_rows_gives_the_same_loss_counts_and_gradients() -> None:
    """PretrainingObjective with predictions_per_example (the masking's cap) scores a fixed [B·cap, V] block — the
    masked rows, then position 0 with an ignored target — and gets the variable-size path's loss sums, accuracy
    counts and gradients."""
    batch = random_batch()
    cap = int((batch["labels"] != -100).sum(dim=1).max())
    sums, grads = {}, {}
    for rows in (None, cap + 3):
        model = tiny_model()
        objective = PretrainingObjective(model, "nsp", rows)
        out = objective(**batch, mlm_normalizer=10.0, nsp_normalizer=4.0)
        out.loss.backward()
        sums[rows] = out.stats()
        grads[rows] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    torch.testing.assert_close(sums[None], sums[cap + 3], rtol=1e-6, atol=1e-6)
    for name, grad in grads[None].items():
        torch.testing.assert_close(grads[cap + 3][name], grad, rtol=1e-5, atol=1e-7, msg=name)
    model = tiny_model()
    hidden = torch.randn(*batch["labels"].shape, model.config.hidden_size)
    logits, targets = masked_lm_logits(model, hidden, batch["labels"], rows=64)
    assert logits.shape == (64, model.config.vocab_size) and targets.shape == (64,)
    assert (targets != -100).sum() == (batch["labels"] != -100).sum() and (targets[-5:] == -100).all()
    with pytest.raises(ValueError, match="more than the 3 rows"):
        masked_lm_logits(model, hidden, batch["labels"], rows=3)


def test_training_packs_a_padded_batch_into_a_multiple_of_its_length_and_keeps_every_real_output() -> None:
    """In pretraining (``pack_bucket``, set by the task to its sequence length) the packed token count is rounded up
    to a multiple of T with padding positions, so a run sees a handful of sizes instead of a new one every step
    (which fragmented the heap: memory grew all run long); the real positions' outputs are the exactly-packed ones."""
    from bert.model import BertModel, Padding

    mask = torch.ones(4, 16, dtype=torch.long)
    mask[0, 5:], mask[2, 11:] = 0, 0  # 5 + 16 + 11 + 16 = 48 real tokens
    exact, bucketed = Padding.from_attention_mask(mask, True), Padding.from_attention_mask(mask, True, bucket=16)
    assert exact.index.numel() == 48 and bucketed.index.numel() == 48  # already a multiple
    mask[1, 15] = 0  # 47 real tokens → 48 rows, one of them padding
    exact, bucketed = Padding.from_attention_mask(mask, True), Padding.from_attention_mask(mask, True, bucket=16)
    assert exact.index.numel() == 47 and bucketed.index.numel() == 48
    assert set(exact.index.tolist()) < set(bucketed.index.tolist()) and bucketed.index.tolist() == sorted(
        bucketed.index.tolist())
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    ids = torch.randint(5, 100, (4, 16))
    real = mask.bool()
    model.pack_bucket = 16  # what pretraining sets: its sequence length
    with torch.no_grad():
        evaluated = model.eval()(ids, attention_mask=mask).last_hidden_state
        trained = model.train()(ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(trained[real], evaluated[real], rtol=1e-5, atol=1e-5)
