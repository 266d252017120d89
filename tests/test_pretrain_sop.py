"""Sentence-order prediction (``bert prepare --objective mlm+sop``) and pretraining the variants from scratch or from
their checkpoints (``bert pretrain --config albert-mini|roberta-mini|distilbert-mini``, ``--init-from``)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from support import (
    make_tiny_variant,
    make_weights_distinctive,
    pretraining_engine,
    train_albert_tokenizer,
    train_roberta_tokenizer,
)
from test_pretrain_loop import TINY, write_corpus

from bert.cli import main
from bert.data.dataset import PretrainingDataset
from bert.data.masking import MaskingCollator
from bert.data.prepare import prepare_pretraining_data
from bert.data.tokenizer_training import train_tokenizer
from bert.engine.distributed import World
from bert.engine.metrics import read_metrics
from bert.pretraining import PretrainConfig, pretrain
from bert.pretraining.evaluate import EVAL_MASKING_SEED
from bert.variants.auto import auto_class, auto_tokenizer

SMALL = {**TINY, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
OVERRIDES = {"albert-mini": {**SMALL, "embedding_size": 16}, "roberta-mini": SMALL, "distilbert-mini": SMALL,
             "mini": SMALL}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One templated corpus prepared as WordPiece sentence-order, next-sentence and MLM-only data, as ALBERT
    (unigram) sentence-order data and as RoBERTa (byte-level BPE) MLM-only data. The test unigram vocabulary cuts a
    sentence into about 30 pieces: its pairs get 64 tokens, so that a chunk holds two sentences to put in order."""
    root = tmp_path_factory.mktemp("sop")
    corpus = root / "corpus.txt"
    write_corpus(corpus)
    train_tokenizer([corpus], 120, root / "wordpiece", min_frequency=1)
    train_albert_tokenizer(root / "albert")
    train_roberta_tokenizer(root / "roberta")
    made = {}
    for name, tokenizer, objective in (("sop", "wordpiece", "mlm+sop"), ("nsp", "wordpiece", "mlm+nsp"),
                                       ("mlm", "wordpiece", "mlm"), ("albert-sop", "albert", "mlm+sop"),
                                       ("roberta-mlm", "roberta", "mlm")):
        prepare_pretraining_data([corpus], root / tokenizer, root / name, max_seq_len=64 if tokenizer == "albert"
                                 else 32, eval_fraction=0.1, progress=False, objective=objective)
        made[name] = root / name
    return {**made, "corpus": corpus}


def settings(data: Path, out: Path, config: str | None, **overrides) -> PretrainConfig:
    base = {"data": data, "out": out, "config": config, "model_overrides": dict(OVERRIDES.get(config, SMALL)),
            "batch_size": 16, "lr": 3e-3, "warmup_steps": 2, "eval_every": 0, "eval_batches": 2, "save_every": 0,
            "log_every": 1, "progress": False, "threads": 1, "bf16": False}
    return PretrainConfig(**{**base, **overrides})


def eval_batch(data: Path, rows: int = 4) -> dict[str, torch.Tensor]:
    return PretrainingDataset(data / "eval").batch(list(range(rows)))


def assert_same_logits_in_transformers(final: Path, task: str, batch: dict[str, torch.Tensor]) -> None:
    """``final`` loads into transformers' class of the same name with no missing or unexpected keys, and gives our
    logits at every real token (and the same sentence-order logits)."""
    import transformers

    ours = auto_class(final, task).from_pretrained(final).eval()
    theirs, info = getattr(transformers, type(ours).__name__).from_pretrained(final, output_loading_info=True)
    theirs.eval()
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if ours.config.model_type != "distilbert":  # which reads no token types
        inputs["token_type_ids"] = batch["token_type_ids"]
    with torch.no_grad():
        a, b = ours(**inputs), theirs(**inputs)
    real = batch["attention_mask"].bool()
    first, second = (a.prediction_logits, b.prediction_logits) if task == "pretraining" else (a.logits, b.logits)
    torch.testing.assert_close(first[real], second[real], rtol=1e-4, atol=1e-4)
    if task == "pretraining" and hasattr(b, "sop_logits"):
        torch.testing.assert_close(a.sop_logits, b.sop_logits, rtol=1e-4, atol=1e-4)


# ---- the data ------------------------------------------------------------------------------------------------------

def unique_word_corpus(folder: Path, documents: int = 400, seed: int = 0) -> tuple[Path, Path]:
    """A corpus whose every word occurs once ("d7s2w3": document 7, sentence 2, word 3) and a vocabulary holding
    each word whole, so that every token id of a prepared example says where in which document it came from."""
    rng = random.Random(seed)
    lines, words = [], []
    for d in range(documents):
        for s in range(rng.randint(1, 8)):
            sentence = [f"d{d}s{s}w{w}" for w in range(rng.randint(2, 7))]
            words += sentence
            lines.append(" ".join(sentence))
        lines.append("")
    (folder / "vocab").mkdir()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    (folder / "vocab" / "vocab.txt").write_text("\n".join([*specials, *words]) + "\n")
    (folder / "corpus.txt").write_text("\n".join(lines) + "\n")
    return folder / "corpus.txt", folder / "vocab"


def where(token: str) -> tuple[int, int, int]:
    """(document, sentence, word) of a unique-corpus token."""
    d, rest = token[1:].split("s")
    s, w = rest.split("w")
    return int(d), int(s), int(w)


def test_sentence_order_pairs_are_two_segments_of_one_document_swapped_for_about_half(tmp_path: Path,
                                                                                        capsys) -> None:
    corpus, vocab = unique_word_corpus(tmp_path)
    assert main(["prepare", str(corpus), "--tokenizer", str(vocab), "--out", str(tmp_path / "data"), "--max-seq-len",
                 "24", "--eval-fraction", "0.1", "--no-sentence-split", "--objective", "mlm+sop", "--quiet"]) == 0
    assert "swapped" in capsys.readouterr().out
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert meta["objective"] == "mlm+sop"
    tokenizer = auto_tokenizer(tmp_path / "data" / "tokenizer")
    documents_of = {}
    for split in ("train", "eval"):
        data = PretrainingDataset(tmp_path / "data" / split)
        labels = np.asarray(data.nsp_labels)
        info = meta["splits"][split]
        assert info["swapped"] == int(labels.sum()) and info["in_order"] == len(data) - int(labels.sum())
        documents_of[split] = set()
        for i in range(len(data)):
            length, a_length = int(data.lengths[i]), int(data.segment_a_lengths[i])
            ids = data.input_ids[i][:length].tolist()
            assert ids[0] == tokenizer.cls_token_id and ids[a_length - 1] == ids[-1] == tokenizer.sep_token_id
            a = [where(t) for t in tokenizer.convert_ids_to_tokens(ids[1:a_length - 1])]
            b = [where(t) for t in tokenizer.convert_ids_to_tokens(ids[a_length:-1])]
            assert a and b
            assert len({d for d, _, _ in a + b}) == 1  # never a pair from two documents
            documents_of[split].add(a[0][0])
            assert a == sorted(a) and b == sorted(b)  # each segment in document order
            if labels[i] == 1:
                assert b[-1] < a[0]  # swapped: B comes before A in the document
            else:
                assert a[-1] < b[0]
        assert documents_of[split]
    assert not documents_of["train"] & documents_of["eval"]
    fraction = meta["splits"]["train"]["swapped_fraction"]
    assert meta["splits"]["train"]["examples"] > 400 and 0.4 < fraction < 0.6


@pytest.mark.parametrize("name", ["roberta", "albert"])
def test_masking_uses_the_variant_tokenizers_special_tokens_and_word_starts(datasets, name: str) -> None:
    tokenizer = auto_tokenizer(datasets["corpus"].parent / name)
    collator = MaskingCollator.from_tokenizer(tokenizer, seed=0, whole_word_masking=True)
    pool = set(collator.random_token_ids.tolist())
    never = set(collator.never_mask_ids.tolist())
    assert set(tokenizer.all_special_ids) <= never and not set(tokenizer.all_special_ids) & pool
    assert tokenizer.unk_token_id in never and tokenizer.pad_token_id in never  # <unk>, <pad>: not bracketed
    mark = {"roberta": "\u0120", "albert": "\u2581"}[name]
    vocab = tokenizer.get_vocab()
    starts = [i for t, i in vocab.items() if t.startswith(mark) and len(t) > 1]
    inner = [i for t, i in vocab.items() if not t.startswith(mark) and i not in never]
    assert starts and inner
    assert not collator.is_continuation[starts].any() and collator.is_continuation[inner].all()


# ---- training ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", ["albert-mini", "mini"])
def test_sentence_order_training_writes_sop_metrics_and_lowers_the_summed_loss(
    datasets, config: str, tmp_path: Path
) -> None:
    data = datasets["albert-sop" if config == "albert-mini" else "sop"]
    run = tmp_path / "run"
    final = pretrain(settings(data, run, config, max_steps=30, eval_every=15))
    events = read_metrics(run / "metrics.jsonl")
    train = [e for e in events if e["kind"] == "train"]
    evals = [e for e in events if e["kind"] == "eval"]
    assert all({"sop_loss", "sop_accuracy"} <= set(e) for e in train + evals)
    assert not any(key.startswith("nsp") for e in events for key in e)
    assert [e["step"] for e in evals] == [15, 30]
    # That SOP is learned (accuracy far above chance) is proven in tests/test_pretrain_objectives.py, on a corpus
    # whose order can be read off the text; here the summed loss falls (which MLM alone would also satisfy).
    losses = [e["mlm_loss"] + e["sop_loss"] for e in train]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3
    assert (run / "curves.png").stat().st_size > 0
    expected = {"albert-mini": "AlbertForPreTraining", "mini": "BertForPreTraining"}[config]
    assert json.loads((final / "config.json").read_text())["architectures"] == [expected]


def test_from_scratch_albert_mini_final_loads_in_transformers_with_the_same_logits(datasets, tmp_path: Path) -> None:
    final = pretrain(settings(datasets["albert-sop"], tmp_path / "run", "albert-mini", max_steps=3))
    config = json.loads((final / "config.json").read_text())
    assert config["model_type"] == "albert" and config["embedding_size"] == 16
    assert config["vocab_size"] == auto_tokenizer(final).vocab_size
    assert_same_logits_in_transformers(final, "pretraining", eval_batch(datasets["albert-sop"]))


@pytest.mark.parametrize("config", ["roberta-mini", "distilbert-mini"])
def test_masked_lm_variants_train_mlm_only_and_load_in_transformers(datasets, config: str, tmp_path: Path) -> None:
    data = datasets["roberta-mlm" if config == "roberta-mini" else "mlm"]
    run = tmp_path / "run"
    final = pretrain(settings(data, run, config, max_steps=30, eval_every=15))
    events = read_metrics(run / "metrics.jsonl")
    assert not any(key.startswith(("nsp", "sop")) for e in events for key in e)
    losses = [e["mlm_loss"] for e in events if e["kind"] == "train"]
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3
    saved = json.loads((final / "config.json").read_text())
    assert saved["architectures"] == [{"roberta-mini": "RobertaForMaskedLM",
                                       "distilbert-mini": "DistilBertForMaskedLM"}[config]]
    if config == "roberta-mini":
        tokenizer = auto_tokenizer(data / "tokenizer")
        assert saved["type_vocab_size"] == 1 and saved["pad_token_id"] == tokenizer.pad_token_id == 1
    assert_same_logits_in_transformers(final, "masked_lm", eval_batch(data))
    import transformers  # transformers' own tokenizer for final/ gives the inputs its model takes

    reference = transformers.AutoModelForMaskedLM.from_pretrained(final)
    reference(**transformers.AutoTokenizer.from_pretrained(final)("a short text", return_tensors="pt"))


# ---- continued pretraining of a variant checkpoint (--init-from) ----------------------------------------------------

VARIANT_STARTS = {  # variant: (transformers class of the checkpoint, the objective it continues, its tied decoder)
    "roberta": ("RobertaForMaskedLM", "mlm", "lm_head.decoder.weight"),
    "albert": ("AlbertForPreTraining", "mlm+sop", "predictions.decoder.weight"),
    "distilbert": ("DistilBertForMaskedLM", "mlm", "vocab_projector.weight"),
}


def variant_start(datasets: dict[str, Path], variant: str, folder: Path) -> tuple[Path, Path]:
    """A tiny checkpoint that transformers creates and saves (every tensor made distinctive, so that one left
    unloaded shows), and the corpus prepared with its tokenizer for the objective it continues."""
    class_name, objective, _ = VARIANT_STARTS[variant]
    checkpoint = folder / "checkpoint"
    checkpoint.mkdir()
    make_tiny_variant(checkpoint, variant, class_name.removeprefix(
        {"roberta": "Roberta", "albert": "Albert", "distilbert": "DistilBert"}[variant]))
    make_weights_distinctive(checkpoint)
    data = folder / "data"
    prepare_pretraining_data([datasets["corpus"]], checkpoint, data, max_seq_len=60, eval_fraction=0.1,
                             progress=False, objective=objective)
    return checkpoint, data


@pytest.mark.parametrize("variant", VARIANT_STARTS)
def test_init_from_a_variant_checkpoint_starts_from_its_exact_weights_and_step_0_eval_matches_transformers(
        datasets, variant: str, tmp_path: Path) -> None:
    import transformers

    class_name, objective, tied = VARIANT_STARTS[variant]
    checkpoint, data = variant_start(datasets, variant, tmp_path)
    config = PretrainConfig(data=data, out=tmp_path / "run", init_from=str(checkpoint), max_steps=1, batch_size=4,
                            eval_batches=3, eval_every=0, save_every=0, progress=False, threads=1)
    trainer = pretraining_engine(config, World())
    assert type(trainer.task.model).__name__ == class_name

    # The weights at step 0: every tensor of the file, bit for bit; the decoder is the (loaded) word embeddings.
    ours, saved = trainer.task.model.state_dict(), load_file(checkpoint / "model.safetensors")
    assert set(ours) - set(saved) == {tied} and set(saved) <= set(ours)
    for name, tensor in saved.items():
        assert torch.equal(ours[name], tensor), name
    assert ours[tied].data_ptr() == ours[f"{variant}.embeddings.word_embeddings.weight"].data_ptr()
    reference = getattr(transformers, class_name).from_pretrained(checkpoint).eval()
    theirs = reference.state_dict()
    for name, tensor in ours.items():  # what transformers makes of the same file, tied decoder included
        assert torch.equal(tensor, theirs[name]), name

    # What transformers computes on the held-out batches, masked as every evaluation is documented to mask them
    # (seed EVAL_MASKING_SEED, 15% of the tokens, at most ceil(0.15 T) per sequence), in batch_size batches.
    eval_data = PretrainingDataset(data / "eval")
    collator = MaskingCollator.from_tokenizer(auto_tokenizer(checkpoint), seed=EVAL_MASKING_SEED, mlm_probability=0.15,
                                              max_predictions_per_seq=math.ceil(0.15 * eval_data.max_seq_len))
    n = min(len(eval_data), config.eval_batches * config.batch_size)
    assert n > config.batch_size  # both batches exist
    sums = {"mlm_loss": 0.0, "mlm_hits": 0, "mlm_count": 0, "sop_loss": 0.0, "sop_hits": 0, "sop_count": 0}
    with torch.no_grad():
        for start in range(0, n, config.batch_size):
            batch = collator(eval_data.batch(list(range(start, min(n, start + config.batch_size)))))
            inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            if variant != "distilbert":  # which reads no token types
                inputs["token_type_ids"] = batch["token_type_ids"]
            out = reference(**inputs)
            masked = batch["labels"] != -100
            logits = (out.prediction_logits if variant == "albert" else out.logits)[masked]
            targets = batch["labels"][masked]
            sums["mlm_loss"] += float(F.cross_entropy(logits, targets, reduction="sum"))
            sums["mlm_hits"] += int((logits.argmax(-1) == targets).sum())
            sums["mlm_count"] += len(targets)
            if variant == "albert":
                labels = batch["next_sentence_label"]
                sums["sop_loss"] += float(F.cross_entropy(out.sop_logits, labels, reduction="sum"))
                sums["sop_hits"] += int((out.sop_logits.argmax(-1) == labels).sum())
                sums["sop_count"] += len(labels)
    assert sums["mlm_count"] > 20

    trainer.run()
    step0 = [e for e in read_metrics(tmp_path / "run" / "metrics.jsonl") if e["kind"] == "eval"][0]
    assert step0["step"] == 0
    assert step0["mlm_loss"] == pytest.approx(sums["mlm_loss"] / sums["mlm_count"], abs=1e-5)
    assert step0["mlm_accuracy"] == pytest.approx(sums["mlm_hits"] / sums["mlm_count"], abs=1e-9)
    if variant == "albert":
        assert sums["sop_count"] == n
        assert step0["sop_loss"] == pytest.approx(sums["sop_loss"] / n, abs=1e-5)
        assert step0["sop_accuracy"] == pytest.approx(sums["sop_hits"] / n, abs=1e-9)
    else:
        assert not any(key.startswith(("sop", "nsp")) for key in step0)


@pytest.mark.parametrize("variant", VARIANT_STARTS)
def test_init_from_a_variant_checkpoint_continues_it_with_all_its_heads_at_their_own_rate(
        datasets, variant: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import transformers

    class_name, objective, tied = VARIANT_STARTS[variant]
    checkpoint, data = variant_start(datasets, variant, tmp_path)
    capsys.readouterr()
    trainer = pretraining_engine(PretrainConfig(data=data, out=tmp_path / "run", init_from=str(checkpoint), max_steps=4,
                                     batch_size=8, lr=1e-3, head_lr=5e-3, eval_batches=2, progress=False, threads=1),
                      World())
    err = capsys.readouterr().err
    assert "continuing pretraining from" in err and "freshly initialised" not in err

    # The heads are the parameters transformers' class has outside its encoder; they, and only they, get --head-lr.
    reference = getattr(transformers, class_name).from_pretrained(checkpoint)
    prefix = f"{reference.base_model_prefix}."
    heads = {name for name, _ in reference.named_parameters() if not name.startswith(prefix)}
    assert heads and tied not in heads
    names = {id(p): name for name, p in trainer.task.model.named_parameters()}
    head_groups = [g for g in trainer.optimizer.param_groups if "lr_scale" in g]
    encoder_groups = [g for g in trainer.optimizer.param_groups if "lr_scale" not in g]
    assert {names[id(p)] for g in head_groups for p in g["params"]} == heads
    encoder = {names[id(p)] for g in encoder_groups for p in g["params"]}
    assert encoder == set(names.values()) - heads and all(name.startswith(prefix) for name in encoder)
    assert f"{prefix}embeddings.word_embeddings.weight" in encoder  # the tied decoder: the encoder's, at --lr

    # The first update moves each parameter by at most its learning rate (Adam's first step is ±lr per element),
    # the heads' by 5 times the encoder's.
    first: dict[str, dict] = {}

    def before(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if "before" not in first:
            first["before"] = {name: p.detach().clone() for name, p in trainer.task.model.named_parameters()}
            first["lr"] = {"heads": {g["lr"] for g in head_groups}, "encoder": {g["lr"] for g in encoder_groups}}

    def after(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if "after" not in first:
            first["after"] = {name: p.detach().clone() for name, p in trainer.task.model.named_parameters()}

    trainer.optimizer.register_step_pre_hook(before)
    trainer.optimizer.register_step_post_hook(after)
    final = trainer.run()
    (lr,), (head_lr,) = first["lr"]["encoder"], first["lr"]["heads"]
    assert lr > 0 and head_lr == pytest.approx(5 * lr)
    moved = {name: float((first["after"][name] - first["before"][name]).abs().max()) for name in first["before"]}
    for name in heads:
        assert moved[name] == pytest.approx(head_lr, rel=0.03), name
    assert max(moved[name] for name in encoder) == pytest.approx(lr, rel=0.03)
    assert all(moved[name] <= 1.03 * lr for name in encoder), {n: moved[n] / lr for n in encoder}

    evals = [e for e in read_metrics(tmp_path / "run" / "metrics.jsonl") if e["kind"] == "eval"]
    assert [e["step"] for e in evals] == [0, 4]
    assert ("sop_accuracy" in evals[0]) == (objective == "mlm+sop")
    assert_same_logits_in_transformers(final, "pretraining" if objective == "mlm+sop" else "masked_lm",
                                       eval_batch(data))


# ---- errors --------------------------------------------------------------------------------------------------------

MISMATCHES = {  # case: (data, --config, extra flags, what the one-line error must say)
    "nsp-flag-on-sop-data": ("sop", "tiny", ["--objective", "mlm+nsp"], "--objective mlm+sop"),
    "sop-flag-on-nsp-data": ("nsp", "tiny", ["--objective", "mlm+sop"], "bert prepare --objective mlm+sop"),
    "sop-flag-on-mlm-data": ("mlm", "tiny", ["--objective", "mlm+sop"], "MLM-only data"),
    "roberta-on-nsp-data": ("nsp", "roberta-mini", [], "--objective mlm"),
    "distilbert-on-sop-data": ("sop", "distilbert-mini", [], "--objective mlm"),
    "albert-on-nsp-data": ("nsp", "albert-mini", [], "bert prepare --objective mlm+sop"),
    "roberta-on-wordpiece-data": ("mlm", "roberta-mini", [], "not tokenized for RoBERTa"),
}


@pytest.mark.parametrize("case", MISMATCHES)
def test_objective_and_model_mismatches_are_one_line_errors_and_write_nothing(datasets, case: str, tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture) -> None:
    data, config, flags, expected = MISMATCHES[case]
    assert main(["pretrain", "--data", str(datasets[data]), "--config", config, "--out", str(tmp_path / "run"),
                 "--max-steps", "2", "--no-progress", *flags]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert expected in err, err
    assert not (tmp_path / "run").exists()
