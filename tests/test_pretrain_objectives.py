"""What ``bert pretrain`` optimises is each model type's real pretraining objective, and it learns it.

1. The loss the training step back-propagates, for every model type it trains (BERT MLM+NSP, BERT MLM+SOP, ALBERT
   MLM+SOP, RoBERTa MLM, DistilBERT MLM), equals the model's own ``forward(..., labels)`` loss and transformers' loss
   for the same weights and the same labels, and its gradient is transformers' gradient. The sentence-order labels
   of the reference are read from the text itself, not from the prepared data, so a swapped pair labelled as in
   order (or the reverse) cannot hide.
2. On a corpus whose sentence order is recoverable, a short run of a small BERT and a small ALBERT learns it: the
   held-out sentence-order accuracy ends far above chance, in the trainer's evaluation and for the exported model
   run by transformers on the unmasked held-out pairs.
"""

from __future__ import annotations

import copy
import random
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from support import pretraining_engine, train_albert_tokenizer, train_roberta_tokenizer

from bert.cli import main
from bert.data.dataset import PretrainingDataset
from bert.data.tokenizer_training import train_tokenizer
from bert.engine.distributed import World
from bert.engine.metrics import read_metrics
from bert.heads import IGNORE_INDEX
from bert.pretraining import PretrainConfig, pretrain

# ---- a corpus whose sentence order can be read off the text -----------------------------------------------------
# Every document is 2-4 sentences; sentence s starts with the ordinal ORDINALS[s] ("first", "second", ...) and its
# other words come from the word pool of its position (animals, then colours, fruits, tools). The ordinals say which
# of two segments comes first (the test's own labels); the pools give a model a cue spread over whole segments.

ORDINALS = ("first", "second", "third", "fourth")
POOLS = (("cat", "dog", "bird", "fish", "horse", "mouse"), ("red", "blue", "green", "yellow", "black", "white"),
         ("apple", "pear", "plum", "grape", "lemon", "melon"), ("hammer", "saw", "drill", "nail", "rope", "spade"))
DOCUMENTS = 1200
EVAL_FRACTION = 0.2  # 240 held-out documents, one sentence-order pair each
MAX_SEQ_LEN = 48  # a whole document fits: every pair is two complete segments, never truncated


def ordered_corpus_lines(documents: int = DOCUMENTS, seed: int = 0) -> list[str]:
    """The corpus as lines: one sentence a line, a blank line after each document."""
    rng = random.Random(seed)
    lines = []
    for _ in range(documents):
        for s in range(rng.randint(2, len(ORDINALS))):
            lines.append(f"{ORDINALS[s]} " + " ".join(rng.choices(POOLS[s], k=rng.randint(3, 6))) + ".")
        lines.append("")
    return lines


def first_ordinal(text: str) -> int:
    """The position (0 = "first") named by the first ordinal word of a decoded segment."""
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in ORDINALS:
            return ORDINALS.index(word)
    raise AssertionError(f"no ordinal in segment {text!r}")


def order_labels_from_text(data: PretrainingDataset, rows: list[int], tokenizer: Any) -> torch.Tensor:
    """Sentence-order labels read from the text of ``rows`` (1 = segment B comes first in the document, 0 = in
    order), by decoding each segment with transformers' tokenizer and comparing their first ordinals."""
    labels = []
    for i in rows:
        length, a_length = int(data.lengths[i]), int(data.segment_a_lengths[i])
        ids = data.input_ids[i][:length].tolist()
        a = tokenizer.decode(ids[1:a_length - 1], skip_special_tokens=True)
        b = tokenizer.decode(ids[a_length:-1], skip_special_tokens=True)
        labels.append(int(first_ordinal(a) > first_ordinal(b)))
    return torch.tensor(labels)


@pytest.fixture(scope="module")
def ordered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The ordered corpus prepared with ``bert prepare`` as each model type trains it: WordPiece MLM+NSP, MLM+SOP and
    MLM-only data, ALBERT (unigram, trained on this corpus) MLM+SOP data and RoBERTa (byte-level BPE) MLM data."""
    root = tmp_path_factory.mktemp("ordered")
    lines = ordered_corpus_lines()
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    train_tokenizer([corpus], 200, root / "wordpiece", min_frequency=1)
    train_albert_tokenizer(root / "albert", corpus=[line for line in lines if line])
    train_roberta_tokenizer(root / "roberta")
    made = {}
    for name, tokenizer, objective in (("nsp", "wordpiece", "mlm+nsp"), ("sop", "wordpiece", "mlm+sop"),
                                       ("mlm", "wordpiece", "mlm"), ("albert-sop", "albert", "mlm+sop"),
                                       ("roberta-mlm", "roberta", "mlm")):
        assert main(["prepare", str(corpus), "--tokenizer", str(root / tokenizer), "--out", str(root / name),
                     "--objective", objective, "--max-seq-len", str(MAX_SEQ_LEN), "--eval-fraction",
                     str(EVAL_FRACTION), "--short-seq-prob", "0", "--no-sentence-split", "--quiet"]) == 0
        made[name] = root / name
    return made


def transformers_tokenizer(data: Path) -> Any:
    import transformers

    return transformers.AutoTokenizer.from_pretrained(data / "tokenizer")


# ---- 1. the trainer's loss is the model's and transformers' loss -------------------------------------------------

NO_DROPOUT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
              "max_position_embeddings": 64, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
OBJECTIVES = {  # case: (prepared data, --config, model overrides, transformers class, sentence-label keyword)
    "bert-mlm+nsp": ("nsp", "mini", NO_DROPOUT, "BertForPreTraining", "next_sentence_label"),
    "bert-mlm+sop": ("sop", "mini", NO_DROPOUT, "BertForPreTraining", "next_sentence_label"),
    "albert-mlm+sop": ("albert-sop", "albert-mini", {**NO_DROPOUT, "embedding_size": 16, "classifier_dropout": 0.0},
                       "AlbertForPreTraining", "sentence_order_label"),
    "roberta-mlm": ("roberta-mlm", "roberta-mini", NO_DROPOUT, "RobertaForMaskedLM", None),
    "distilbert-mlm": ("mlm", "distilbert-mini", NO_DROPOUT, "DistilBertForMaskedLM", None),
}


def record_one_training_step(trainer: Any) -> dict[str, Any]:
    """Run ``trainer.train_step()`` (one optimizer step, as the loop runs it) and record what it did: the example
    indices of its global batch, every micro-batch's inputs and :class:`~bert.pretraining.loss.LossSums`
    (``out.loss`` is what it back-propagates), and the gradients the optimizer stepped with (clipping must be off)."""
    record: dict[str, Any] = {"indices": [], "inputs": [], "outputs": [], "grads": {}}
    next_step, objective, optimizer_step = trainer.task.order.next_step, trainer.wrapped, trainer.optimizer.step

    def recording_next_step() -> torch.Tensor:
        indices = next_step()
        record["indices"].append(indices.clone())
        return indices

    def recording_objective(**inputs: Any) -> Any:
        out = objective(**inputs)
        record["inputs"].append(inputs)
        record["outputs"].append(out)
        return out

    def recording_optimizer_step(*args: Any, **kwargs: Any) -> Any:
        record["grads"] = {name: p.grad.detach().clone() for name, p in trainer.task.model.named_parameters()
                           if p.grad is not None}
        return optimizer_step(*args, **kwargs)

    trainer.task.order.next_step = recording_next_step
    trainer.wrapped = recording_objective
    trainer.optimizer.step = recording_optimizer_step
    trainer.train_step()
    return record


@pytest.mark.parametrize("case", OBJECTIVES)
def test_training_loss_and_gradient_equal_the_models_and_transformers_loss_for_the_same_labels(
        ordered: dict[str, Path], case: str, tmp_path: Path) -> None:
    import transformers

    data_name, config, overrides, class_name, sentence_keyword = OBJECTIVES[case]
    data = ordered[data_name]
    cfg = PretrainConfig(data=data, out=tmp_path / "run", config=config, model_overrides=dict(overrides),
                         batch_size=8, grad_accum=2, max_steps=10, lr=1e-3, warmup_steps=0, max_grad_norm=0.0,
                         eval_every=0, save_every=0, progress=False, threads=1, bf16=False,
                         half_length_fraction=0.0)  # the data's rows as they are (tests/test_half_length.py: cut)
    cfg.validate()
    trainer = pretraining_engine(cfg, World())  # as pretrain() builds it, in a world of one process
    assert type(trainer.task.model).__name__ == class_name
    before = copy.deepcopy(trainer.task.model)  # the weights of the step, kept apart from the optimizer's update
    before.save_pretrained(tmp_path / "before")
    record = record_one_training_step(trainer)

    # The global batch, as the trainer built it: two micro-batches of masked rows, and their loss normalisers.
    assert len(record["inputs"]) == 2 and len(record["indices"]) == 1
    inputs = {key: torch.cat([micro[key] for micro in record["inputs"]])
              for key in ("input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label")}
    rows = record["indices"][0].tolist()
    original = trainer.task.train_data.batch(rows)
    masked = inputs["labels"] != IGNORE_INDEX
    assert masked.any(dim=1).all()
    assert torch.equal(inputs["labels"][masked], original["input_ids"][masked])  # MLM targets: the original tokens
    assert torch.equal(inputs["input_ids"][~masked], original["input_ids"][~masked])  # only masked tokens change
    for micro in record["inputs"]:  # every micro-batch is divided by the global batch's totals
        assert micro["mlm_normalizer"] == int(masked.sum()) and micro["nsp_normalizer"] == len(rows)

    # The sentence labels the reference losses use: read from the text for sentence order, the data's for NSP.
    sentence_labels = None
    if data_name in ("sop", "albert-sop"):
        sentence_labels = order_labels_from_text(trainer.task.train_data, rows, transformers_tokenizer(data))
        assert 0 < int(sentence_labels.sum()) < len(rows)  # both orders occur in the batch
        assert torch.equal(inputs["next_sentence_label"], sentence_labels)  # 1 exactly where B comes first
    elif data_name == "nsp":
        sentence_labels = original["next_sentence_label"]
        assert 0 < int(sentence_labels.sum()) < len(rows)
    assert sentence_keyword is None or sentence_labels is not None

    trainer_loss = sum(out.loss for out in record["outputs"]).item()
    stats = sum(out.stats() for out in record["outputs"])
    model_inputs = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"],
                    "labels": inputs["labels"]}
    if config != "distilbert-mini":  # DistilBERT reads no token types
        model_inputs["token_type_ids"] = inputs["token_type_ids"]
    if sentence_keyword is not None:
        model_inputs[sentence_keyword] = sentence_labels
    with torch.no_grad():
        own = before(**model_inputs)
    theirs, info = getattr(transformers, class_name).from_pretrained(tmp_path / "before", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    reference = theirs(**model_inputs).loss
    reference.backward()

    assert trainer_loss == pytest.approx(own.loss.item(), abs=1e-5)
    assert trainer_loss == pytest.approx(reference.item(), abs=1e-5)
    mlm_loss = stats[0].item() / stats[2].item()
    if sentence_keyword is None:
        assert stats[5].item() == 0 and trainer_loss == pytest.approx(mlm_loss, abs=1e-5)
    else:  # both terms, each the mean over the global batch: MLM over masked tokens, the sentence task over pairs
        sentence_loss = own.nsp_loss if case.startswith("bert") else own.sop_loss
        sentence_logits = own.seq_relationship_logits if case.startswith("bert") else own.sop_logits
        assert stats[5].item() == len(rows)
        assert stats[4].item() == int((sentence_logits.argmax(-1) == sentence_labels).sum())  # correct, per the text
        assert mlm_loss == pytest.approx(own.mlm_loss.item(), abs=1e-5)
        assert stats[3].item() / stats[5].item() == pytest.approx(sentence_loss.item(), abs=1e-5)
        assert sentence_loss.item() > 0.1  # a term that matters: the check above cannot pass by leaving it out

    # The gradient the optimizer stepped with is that of transformers' loss (so the scale of the loss is right).
    expected = {name: p.grad for name, p in theirs.named_parameters() if p.grad is not None}
    assert set(record["grads"]) == set(expected)
    for name, grad in record["grads"].items():
        torch.testing.assert_close(grad, expected[name], rtol=1e-4, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")


# ---- 2. sentence order is learned ----------------------------------------------------------------------------------

LEARNER = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
           "max_position_embeddings": 64, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
STEPS = 250
CHANCE_CEILING = 0.9  # of 240 held-out pairs (about half swapped): a guess gets >= 216 right with p < 1e-30


@pytest.mark.parametrize("config", ["mini", "albert-mini"])
def test_sentence_order_accuracy_rises_far_above_chance_when_the_order_is_learnable(
        ordered: dict[str, Path], config: str, tmp_path: Path) -> None:
    import transformers

    data = ordered["albert-sop" if config == "albert-mini" else "sop"]
    overrides = {**LEARNER, "embedding_size": 32, "classifier_dropout": 0.0} if config == "albert-mini" else LEARNER
    held_out = PretrainingDataset(data / "eval")
    rows = list(range(len(held_out)))
    batch = held_out.batch(rows)
    truth = order_labels_from_text(held_out, rows, transformers_tokenizer(data))
    assert torch.equal(truth, batch["next_sentence_label"])  # the prepared labels are the true order
    majority = max(float(truth.float().mean()), 1 - float(truth.float().mean()))
    assert len(held_out) >= 200 and majority < 0.6

    run = tmp_path / "run"
    final = pretrain(PretrainConfig(data=data, out=run, config=config, model_overrides=dict(overrides), batch_size=32,
                                    lr=5e-3, warmup_steps=10, max_steps=STEPS, eval_every=0,
                                    eval_batches=-(-len(held_out) // 32), save_every=0, log_every=25,
                                    progress=False, threads=1, bf16=False))
    events = read_metrics(run / "metrics.jsonl")
    train = [e for e in events if e["kind"] == "train"]
    evals = [e for e in events if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [STEPS]
    assert evals[-1]["sop_accuracy"] >= CHANCE_CEILING, evals  # the trainer's own held-out evaluation (all pairs)
    assert train[-1]["sop_loss"] < 0.3 < 0.6 < train[0]["sop_loss"], train  # from ln 2 = 0.69 to well below it

    # The exported model, run by transformers on the unmasked held-out pairs, predicts the order read from the text.
    class_name = "AlbertForPreTraining" if config == "albert-mini" else "BertForPreTraining"
    model = getattr(transformers, class_name).from_pretrained(final).eval()
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                    attention_mask=batch["attention_mask"])
    logits = out.sop_logits if config == "albert-mini" else out.seq_relationship_logits
    accuracy = float((logits.argmax(-1) == truth).float().mean())
    assert accuracy >= CHANCE_CEILING, (accuracy, majority)
