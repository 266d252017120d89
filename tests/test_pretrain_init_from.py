"""Continued pretraining (``bert pretrain --init-from``) and MLM-only data (``bert prepare --objective mlm``)."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch._inductor.compile_fx
import torch.nn.functional as F
from safetensors.torch import load_file
from support import ctrl_c_during_step, make_weights_distinctive, pretraining_engine
from test_compile import count_inductor_compilations
from test_pretrain_loop import REPO, TINY, write_corpus

from bert.cli import main
from bert.data.dataset import PretrainingDataset
from bert.data.packing import pack_full_sentences
from bert.data.prepare import prepare_pretraining_data
from bert.data.tokenizer_training import train_tokenizer
from bert.engine.distributed import World
from bert.engine.metrics import read_metrics
from bert.errors import BertError
from bert.heads import BertForPreTraining
from bert.pretraining import PretrainConfig, pretrain
from bert.pretraining.evaluate import EVAL_MASKING_SEED, evaluate
from bert.tokenizer.wordpiece import BertTokenizer

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tokenizer, sentence-pair data and MLM-only data of one small corpus."""
    root = tmp_path_factory.mktemp("init-from")
    write_corpus(root / "corpus.txt")
    train_tokenizer([root / "corpus.txt"], 120, root / "tokenizer", min_frequency=1)
    for objective, name in (("mlm+nsp", "pairs"), ("mlm", "packed")):
        prepare_pretraining_data([root / "corpus.txt"], root / "tokenizer", root / name, max_seq_len=32,
                                 eval_fraction=0.1, progress=False, objective=objective)
    return {"root": root, "tokenizer": root / "tokenizer", "pairs": root / "pairs", "packed": root / "packed"}


def hf_checkpoint(folder: Path, tokenizer: Path, cls_name: str = "BertForPreTraining", seed: int = 0) -> Path:
    """A tiny checkpoint that transformers creates and saves, with the corpus tokenizer's files."""
    import transformers

    vocab_size = len(BertTokenizer.from_pretrained(tokenizer).get_vocab())
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=vocab_size, **TINY)
    getattr(transformers, cls_name)(config).save_pretrained(folder)
    for file in tokenizer.iterdir():
        shutil.copy(file, folder / file.name)
    return folder


def settings(data: Path, out: Path, init_from: Path | str, **overrides) -> PretrainConfig:
    base = {"data": data, "out": out, "init_from": str(init_from), "batch_size": 8, "lr": 3e-3, "warmup_steps": 2,
            "eval_every": 0, "eval_batches": 2, "save_every": 0, "log_every": 1, "progress": False, "threads": 1,
            "model_overrides": dict(NO_DROPOUT)}
    return PretrainConfig(**{**base, **overrides})


def evals(run: Path) -> list[dict]:
    return [e for e in read_metrics(run / "metrics.jsonl") if e["kind"] == "eval"]


def test_pretraining_checkpoint_loads_exactly_and_step_0_eval_matches_transformers(corpus, tmp_path: Path) -> None:
    import transformers

    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"])
    saved = make_weights_distinctive(checkpoint)  # no tensor equals a fresh one (LayerNorm 1 and 0, zero biases)
    config = settings(corpus["pairs"], tmp_path / "run", checkpoint, max_steps=2)
    trainer = pretraining_engine(config, World())
    reference = transformers.BertForPreTraining.from_pretrained(checkpoint).eval()
    ours = trainer.task.model.state_dict()
    assert set(ours) - set(saved) == {"cls.predictions.decoder.weight"} and set(saved) <= set(ours)
    for name, tensor in saved.items():
        assert torch.equal(ours[name], tensor), name
    for name, tensor in reference.state_dict().items():
        if name in ours:
            assert torch.equal(ours[name], tensor), name
    assert not [k for k in ours if k not in reference.state_dict()]

    # What transformers computes on the same held-out batches, masked as the trainer masks them.
    trainer.task.eval_collator.generator.manual_seed(EVAL_MASKING_SEED)
    mlm_losses, mlm_hits, nsp_losses, nsp_hits = [], [], [], []
    n = min(len(trainer.task.eval_data), config.eval_batches * config.batch_size)
    with torch.no_grad():
        for start in range(0, n, config.batch_size):
            batch = trainer.task.eval_collator(trainer.task.eval_data.batch(list(range(start, min(n, start + 8)))))
            out = reference(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"],
                            attention_mask=batch["attention_mask"])
            masked = batch["labels"] != -100
            logits, targets = out.prediction_logits[masked], batch["labels"][masked]
            mlm_losses.append(F.cross_entropy(logits, targets, reduction="none"))
            mlm_hits.append(logits.argmax(-1) == targets)
            nsp_losses.append(F.cross_entropy(out.seq_relationship_logits, batch["next_sentence_label"],
                                              reduction="none"))
            nsp_hits.append(out.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"])

    pretrain(config)
    step0 = evals(tmp_path / "run")[0]
    assert step0["step"] == 0
    assert step0["mlm_loss"] == pytest.approx(float(torch.cat(mlm_losses).mean()), abs=1e-5)
    assert step0["mlm_accuracy"] == pytest.approx(float(torch.cat(mlm_hits).float().mean()), abs=1e-9)
    assert step0["nsp_loss"] == pytest.approx(float(torch.cat(nsp_losses).mean()), abs=1e-5)
    assert step0["nsp_accuracy"] == pytest.approx(float(torch.cat(nsp_hits).float().mean()), abs=1e-9)


def test_evaluation_seed_draws_other_masked_tokens_and_the_default_is_the_step_0_evaluation(corpus,
                                                                                          tmp_path: Path) -> None:
    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"])
    config = settings(corpus["packed"], tmp_path / "run", checkpoint, max_steps=1, objective="mlm", eval_batches=100)
    trainer = pretraining_engine(config, World())
    task = trainer.task
    held_out = {seed: evaluate(task.model, task.eval_data, task.eval_collator, 8, sentence=None, seed=seed)
                for seed in (EVAL_MASKING_SEED, 1, 2)}
    assert evaluate(task.model, task.eval_data, task.eval_collator, 8, sentence=None, seed=1) == held_out[1]
    assert len({result["mlm_loss"] for result in held_out.values()}) == 3
    pretrain(config)
    assert evals(tmp_path / "run")[0]["mlm_loss"] == pytest.approx(held_out[EVAL_MASKING_SEED]["mlm_loss"], abs=1e-6)


def test_bare_encoder_gets_fresh_named_heads_a_tied_decoder_and_learns(corpus, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    encoder = hf_checkpoint(tmp_path / "encoder", corpus["tokenizer"], "BertModel")
    config = settings(corpus["pairs"], tmp_path / "run", encoder, max_steps=30, eval_every=30)
    capsys.readouterr()  # transformers' own saving progress
    trainer = pretraining_engine(config, World())
    note = capsys.readouterr().err
    assert "freshly initialised" in note and "cls.predictions.transform.dense.weight" in note
    assert "cls.seq_relationship.weight" in note and len(note.strip().splitlines()) == 1
    model = trainer.task.model
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    encoder_weights = load_file(encoder / "model.safetensors")
    embeddings = encoder_weights["embeddings.word_embeddings.weight"]
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, embeddings)

    pretrain(config)
    points = evals(tmp_path / "run")
    assert [e["step"] for e in points] == [0, 30]
    assert points[-1]["mlm_loss"] < points[0]["mlm_loss"] - 0.5
    final = BertForPreTraining.from_pretrained(tmp_path / "run" / "final")
    assert final.config.hidden_size == TINY["hidden_size"]


@pytest.mark.parametrize("case", ["vocabulary", "config", "unknown", "corrupt", "other-size"])
def test_bad_starting_points_are_one_line_errors_and_write_nothing(case: str, corpus, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"])
    args = ["pretrain", "--data", str(corpus["pairs"]), "--out", str(tmp_path / "run"), "--max-steps", "2",
            "--no-progress", "--init-from", str(checkpoint)]
    expected = {"vocabulary": "bert prepare ... --tokenizer", "config": "--config and --init-from together",
                "unknown": "not found", "corrupt": "model.safetensors", "other-size": "bert prepare ... --tokenizer"}
    if case == "vocabulary":  # same size, two tokens swapped: the ids mean other words
        vocab = (checkpoint / "vocab.txt").read_text().splitlines()
        vocab[10], vocab[11] = vocab[11], vocab[10]
        (checkpoint / "vocab.txt").write_text("\n".join(vocab) + "\n")
        (checkpoint / "tokenizer.json").unlink()
    elif case == "config":
        args += ["--config", "tiny"]
    elif case == "unknown":
        args[-1] = "no-such-org/no-such-bert"
    elif case == "corrupt":
        (checkpoint / "model.safetensors").write_bytes(b"\x00" * 64)
    else:
        hf_checkpoint(checkpoint, REPO / "weights" / "bert-demo")  # a 30,522-token model
    capsys.readouterr()  # transformers' own saving progress
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert expected[case] in err
    assert not (tmp_path / "run").exists()


KILL_AFTER_STEP = """
import os, signal, sys
from bert.pretraining.batches import DataOrder
from bert.pretraining import PretrainConfig, pretrain
original, calls = DataOrder.next_step, {"n": 0}
def next_step(self):
    calls["n"] += 1
    if calls["n"] == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self)
DataOrder.next_step = next_step
pretrain(PretrainConfig(**__import__("json").loads(sys.argv[1])))
"""


def test_killed_and_resumed_init_from_run_ends_like_the_uninterrupted_one(corpus, tmp_path: Path) -> None:
    """kill -9 after step 9 (the latest checkpoint is step 8); the initial checkpoint is then replaced by other
    weights: a resumed run must continue from its own checkpoint and never read the initial weights again."""
    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"])
    common = {"max_steps": 12, "save_every": 4, "model_overrides": {"hidden_dropout_prob": 0.1,
                                                                  "attention_probs_dropout_prob": 0.1}}
    straight = tmp_path / "straight"
    pretrain(settings(corpus["pairs"], straight, checkpoint, **common))

    killed = tmp_path / "killed"
    config = settings(corpus["pairs"], killed, checkpoint, **common).to_dict()
    result = subprocess.run([sys.executable, "-c", KILL_AFTER_STEP, json.dumps(config), "10"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert (killed / "checkpoints" / "step-0000008").is_dir() and not (killed / "final").exists()
    hf_checkpoint(checkpoint, corpus["tokenizer"], seed=1)  # different weights under the same path

    pretrain(settings(corpus["pairs"], killed, checkpoint, resume=True, **common))
    a, b = load_file(straight / "final" / "model.safetensors"), load_file(killed / "final" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    events_a, events_b = read_metrics(straight / "metrics.jsonl"), read_metrics(killed / "metrics.jsonl")
    assert [(e["kind"], e["step"]) for e in events_a] == [(e["kind"], e["step"]) for e in events_b]
    for x, y in zip(events_a, events_b, strict=True):
        for key in ("mlm_loss", "nsp_loss", "mlm_accuracy", "nsp_accuracy"):
            assert x[key] == pytest.approx(y[key], rel=1e-6), (x["step"], key)


def test_mlm_only_data_is_packed_full_sentences_without_nsp_labels(corpus) -> None:
    meta = json.loads((corpus["packed"] / "meta.json").read_text())
    assert meta["objective"] == "mlm" and "not_next" not in meta["splits"]["train"]
    tokenizer = BertTokenizer.from_pretrained(corpus["tokenizer"])
    data = PretrainingDataset(corpus["packed"] / "train")
    assert (data.nsp_labels == -1).all()
    lengths = np.asarray(data.lengths)
    assert lengths.mean() > 0.8 * 32  # ~7-token sentences: an example stops when the next one does not fit
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    for i in range(len(data)):
        example = data[i]
        ids, n = example["input_ids"].tolist(), int(data.lengths[i])
        assert ids[0] == cls and ids[n - 1] == sep and all(t == pad for t in ids[n:])
        assert cls not in ids[1:] and pad not in ids[:n]
        inner = ids[1:n - 1]
        assert inner[0] != sep and inner[-1] != sep  # a document separator never starts or ends an example
        assert all(not (a == sep and b == sep) for a, b in zip(inner, inner[1:], strict=False))
        assert int(example["token_type_ids"].sum()) == 0
    # Every document boundary inside an example is one [SEP]; sentences are in corpus order between them.
    text = " ".join(tokenizer.decode(data[i]["input_ids"][1:int(data.lengths[i]) - 1].tolist()) for i in range(5))
    assert "today" in text
    total = int(np.asarray(PretrainingDataset(corpus["packed"] / "train").lengths).sum())
    assert total == meta["splits"]["train"]["tokens"]


def test_packing_keeps_sentences_whole_and_separates_documents() -> None:
    tokens = np.arange(100, 140)
    sentences = np.array([0, 3, 8, 10, 20, 22, 40])  # lengths 3, 5, 2 | 10, 2, 18
    documents = [(0, 3), (3, 6)]
    ids, lengths = pack_full_sentences(tokens, sentences, documents, 14, cls_id=1, sep_id=2, pad_id=0,
                                       dupe_factor=1, rng=random.Random(0))
    rows = {tuple(row[:n]) for row, n in zip(ids.tolist(), lengths.tolist(), strict=True)}
    assert rows == {(1, *range(100, 110), 2),  # document 0; the 10-token sentence after it does not fit
                    (1, *range(110, 122), 2),  # two sentences filling the 12 places exactly
                    (1, *range(122, 134), 2), (1, *range(134, 140), 2)}  # an 18-token sentence in pieces
    assert all(row[n:] == [0] * (14 - n) for row, n in zip(ids.tolist(), lengths.tolist(), strict=True))
    # Short documents share an example, one [SEP] between them; dupe_factor passes visit every document again.
    ids, lengths = pack_full_sentences(tokens, np.array([0, 3, 7]), [(0, 1), (1, 2)], 14, cls_id=1, sep_id=2,
                                       pad_id=0, dupe_factor=2, rng=random.Random(0))
    rows = {tuple(row[:n]) for row, n in zip(ids.tolist(), lengths.tolist(), strict=True)}
    assert rows == {(1, 100, 101, 102, 2, 103, 104, 105, 106, 2, 100, 101, 102, 2), (1, 103, 104, 105, 106, 2)}


def test_mlm_only_training_has_no_nsp_fields_and_leaves_the_nsp_head_untouched(corpus, tmp_path: Path) -> None:
    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"])
    run = tmp_path / "run"
    pretrain(settings(corpus["packed"], run, checkpoint, max_steps=6, eval_every=3))
    events = read_metrics(run / "metrics.jsonl")
    assert events and not any(key.startswith("nsp") for e in events for key in e)
    assert events[-1]["mlm_loss"] < 10
    before, after = load_file(checkpoint / "model.safetensors"), load_file(run / "final" / "model.safetensors")
    for name in ("cls.seq_relationship.weight", "cls.seq_relationship.bias", "bert.pooler.dense.weight"):
        assert torch.equal(before[name], after[name]), name
    assert not torch.equal(before["cls.predictions.transform.dense.weight"],
                           after["cls.predictions.transform.dense.weight"])
    with pytest.raises(BertError, match="--objective mlm"):
        pretrain(settings(corpus["packed"], tmp_path / "run2", checkpoint, max_steps=1, objective="mlm+nsp"))
    # Sentence-pair data trained MLM-only ignores its NSP labels.
    pretrain(settings(corpus["pairs"], tmp_path / "run3", checkpoint, max_steps=2, objective="mlm"))
    assert not any("nsp_loss" in e for e in read_metrics(tmp_path / "run3" / "metrics.jsonl"))


def test_head_learning_rate_applies_to_the_heads_only(corpus, tmp_path: Path) -> None:
    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"], "BertModel")
    trainer = pretraining_engine(settings(corpus["pairs"], tmp_path / "run", checkpoint, max_steps=4, lr=1e-3,
                                          head_lr=5e-3, warmup_steps=0), World())
    lr = trainer.schedule.apply(trainer.optimizer, 2)  # any step: the heads' rate is 5 times the encoder's
    assert lr == pytest.approx(1e-3 * 2 / 4)
    names = {id(p): n for n, p in trainer.task.model.named_parameters()}
    for group in trainer.optimizer.param_groups:
        heads = {names[id(p)].startswith("cls.") for p in group["params"]}
        assert len(heads) == 1
        assert group["lr"] == pytest.approx(5 * lr if heads.pop() else lr)


def test_prepare_accepts_a_model_name_as_tokenizer(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus.txt", documents=10)
    assert main(["prepare", str(tmp_path / "corpus.txt"), "--tokenizer", "bert-demo", "--out", str(tmp_path / "data"),
                 "--max-seq-len", "32", "--quiet"]) == 0
    demo = BertTokenizer.from_pretrained(REPO / "weights" / "bert-demo").get_vocab()
    assert BertTokenizer.from_pretrained(tmp_path / "data" / "tokenizer").get_vocab() == demo


def count_checkpointed_layers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Per graph handed to Inductor, how many gradient-checkpointed regions it holds (Dynamo turns each
    ``torch.utils.checkpoint`` call it traces into one ``tag_activation_checkpoint`` operator, whose body the
    backward recomputes)."""
    counts: list[int] = []
    compile_fx = torch._inductor.compile_fx.compile_fx
    tag = torch.ops.higher_order.tag_activation_checkpoint

    def recording_compile_fx(graph, *args, **kwargs):
        counts.append(sum(node.target is tag for node in graph.graph.nodes))
        return compile_fx(graph, *args, **kwargs)

    monkeypatch.setattr(torch._inductor.compile_fx, "compile_fx", recording_compile_fx)
    return counts


def test_compiled_checkpointed_init_from_run_is_compiled_checkpointed_and_follows_the_eager_one(
        corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--init-from`` with ``--compile --gradient-checkpointing``: graphs go to Inductor (none in the eager run),
    every encoder layer is a checkpointed region inside them, and the loss curve is the eager one."""
    torch._dynamo.reset()
    compiled_graphs = count_inductor_compilations(monkeypatch)
    checkpointed = count_checkpointed_layers(monkeypatch)
    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"])
    losses, graphs, regions = {}, {}, {}
    for name, fast in (("eager", False), ("compiled", True)):
        before = len(compiled_graphs)
        pretrain(settings(corpus["pairs"], tmp_path / name, checkpoint, max_steps=4, compile=fast,
                          gradient_checkpointing=fast))
        losses[name] = [e["mlm_loss"] for e in read_metrics(tmp_path / name / "metrics.jsonl") if e["kind"] == "train"]
        graphs[name], regions[name] = compiled_graphs[before:], checkpointed[before:]
    assert graphs["eager"] == [] and len(graphs["compiled"]) > 0
    # the graphs that hold the encoder hold each of its layers as one checkpointed region
    assert {n for n in regions["compiled"] if n} == {TINY["num_hidden_layers"]}, regions["compiled"]
    assert len(losses["compiled"]) == 4
    assert losses["compiled"] == pytest.approx(losses["eager"], rel=1e-4)


def test_ddp_init_from_mlm_only_two_processes_match_one(corpus, tmp_path: Path) -> None:
    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"])
    common = ["--data", str(corpus["packed"]), "--init-from", str(checkpoint), "--dropout", "0", "--max-steps", "4",
              "--lr", "3e-3", "--log-every", "1", "--eval-every", "2", "--eval-batches", "2", "--no-progress",
              "--threads", "1"]
    assert main(["pretrain", "--out", str(tmp_path / "single"), "--batch-size", "8", *common]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "bert", "pretrain", "--out", str(tmp_path / "ddp"), "--batch-size", "4", *common],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = (read_metrics(tmp_path / run / "metrics.jsonl") for run in ("single", "ddp"))
    assert [(e["kind"], e["step"]) for e in a] == [(e["kind"], e["step"]) for e in b]
    assert b[0]["kind"] == "eval" and b[0]["step"] == 0
    # (evaluations read eval_batches × the per-process batch size, so they differ between the two layouts)
    train_a, train_b = ([e for e in events if e["kind"] == "train"] for events in (a, b))
    for x, y in zip(train_a, train_b, strict=True):
        assert x["mlm_loss"] == pytest.approx(y["mlm_loss"], rel=1e-5), x["step"]
        assert "nsp_loss" not in y


def test_interrupted_init_from_run_saves_and_resumes(corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"])
    ctrl_c_during_step(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        pretrain(settings(corpus["pairs"], tmp_path / "run", checkpoint, max_steps=5))
    monkeypatch.undo()
    pretrain(settings(corpus["pairs"], tmp_path / "run", checkpoint, max_steps=5, resume=True))
    assert [e["step"] for e in evals(tmp_path / "run")] == [0, 5]  # no second step-0 evaluation on resume


def test_time_budget_run_from_a_checkpoint_evaluates_first_and_finishes(corpus, tmp_path: Path) -> None:
    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"])
    run = tmp_path / "run"
    assert main(["pretrain", "--data", str(corpus["pairs"]), "--init-from", str(checkpoint), "--out", str(run),
                 "--time-budget", "0.05", "--batch-size", "8", "--no-progress", "--threads", "1"]) == 0
    events = evals(run)
    assert events[0]["step"] == 0 and events[-1]["step"] > 0
    assert BertForPreTraining.from_pretrained(run / "final").config.hidden_size == TINY["hidden_size"]


def test_time_budget_plan_counts_only_the_evaluation_batches_that_exist(corpus, tmp_path: Path) -> None:
    """--eval-batches larger than the eval split (to read all of it) must not make the plan expect that many: the
    plan prices an evaluation at the batches the split holds (a third of a training pass each). Checked on the price,
    not on two timed plans, which a busy machine moves apart."""
    checkpoint = hf_checkpoint(tmp_path / "hf", corpus["tokenizer"])
    for batches in (2, 1000):
        trainer = pretraining_engine(settings(corpus["pairs"], tmp_path / f"run{batches}", checkpoint, max_steps=None,
                                   time_budget=1.0, eval_every=10, eval_batches=batches), World())
        assert trainer.schedule.total_steps > 0
        held = math.ceil(len(trainer.task.eval_data) / trainer.task.config.batch_size)
        assert 2 <= held < 1000  # the eval split holds only a few batches
        assert trainer.task.eval_seconds(3.0) == pytest.approx(min(batches, held))
