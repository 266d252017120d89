"""Knowledge distillation (``bert distill``): a 4-layer tiny teacher, 2-layer students, a tiny generated corpus."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from support import ctrl_c_during_step, distillation_engine, make_weights_distinctive
from test_pretrain_loop import REPO, write_corpus

from bert.cli import main
from bert.config import BertConfig
from bert.data.masking import MaskingCollator
from bert.data.prepare import prepare_pretraining_data
from bert.data.tokenizer_training import train_tokenizer
from bert.engine.distributed import World
from bert.engine.loop import Engine
from bert.engine.metrics import read_metrics
from bert.errors import BertError
from bert.heads import BertForPreTraining
from bert.pretraining.distill import DistillationObjective, DistillConfig, distill
from bert.pretraining.student import save_student, spread_layers
from bert.tokenizer.wordpiece import BertTokenizer

SIZE = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64,
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tokenizer, sentence-pair and MLM-only data of one small corpus, and a 4-layer teacher with its vocabulary
    (random weights, then a few steps of MLM pretraining so that its predictions are not uniform)."""
    root = tmp_path_factory.mktemp("distill")
    write_corpus(root / "corpus.txt")
    train_tokenizer([root / "corpus.txt"], 120, root / "tokenizer", min_frequency=1)
    for objective, name in (("mlm+nsp", "pairs"), ("mlm", "packed")):
        prepare_pretraining_data([root / "corpus.txt"], root / "tokenizer", root / name, max_seq_len=32,
                                 eval_fraction=0.1, progress=False, objective=objective)
    vocab_size = len(BertTokenizer.from_pretrained(root / "tokenizer").get_vocab())
    torch.manual_seed(0)
    BertForPreTraining(BertConfig(vocab_size=vocab_size, num_hidden_layers=4, **SIZE)).save_pretrained(root / "raw")
    for file in (root / "tokenizer").iterdir():
        shutil.copy(file, root / "raw" / file.name)
    assert main(["pretrain", "--data", str(root / "pairs"), "--init-from", str(root / "raw"), "--out",
                 str(root / "teacher-run"), "--max-steps", "30", "--batch-size", "16", "--lr", "3e-3",
                 "--eval-every", "0", "--save-every", "0", "--no-progress", "--threads", "1"]) == 0
    return {"root": root, "tokenizer": root / "tokenizer", "pairs": root / "pairs", "packed": root / "packed",
            "teacher": root / "teacher-run" / "final"}


def settings(corpus: dict[str, Path], out: Path, **overrides) -> DistillConfig:
    base = {"data": corpus["pairs"], "out": out, "teacher": str(corpus["teacher"]), "student_layers": 2,
            "batch_size": 8, "lr": 3e-3, "warmup_steps": 2, "eval_every": 0, "eval_batches": 2, "save_every": 0,
            "log_every": 1, "progress": False, "threads": 1, "model_overrides": dict(NO_DROPOUT)}
    return DistillConfig(**{**base, **overrides})


def events(run: Path, kind: str) -> list[dict]:
    return [e for e in read_metrics(run / "metrics.jsonl") if e["kind"] == kind]


def test_layers_are_spread_over_the_teacher_and_the_student_takes_them(corpus, tmp_path: Path) -> None:
    assert spread_layers(12, 6) == [0, 2, 4, 6, 8, 10]
    assert spread_layers(6, 3) == [0, 2, 4]
    assert spread_layers(4, 4) == [0, 1, 2, 3] and spread_layers(12, 1) == [0]
    trainer = distillation_engine(settings(corpus, tmp_path / "run", max_steps=1), World())
    teacher, student = trainer.task.teacher.state_dict(), trainer.task.model.state_dict()
    assert trainer.task.model.config.num_hidden_layers == 2
    for name, tensor in student.items():
        source = name.replace("encoder.layer.1.", "encoder.layer.2.")  # student layer 1 = teacher layer 2
        assert torch.equal(tensor, teacher[source]), name


def masked_batch(corpus: dict[str, Path], size: int = 8) -> dict[str, torch.Tensor]:
    from bert.data.dataset import PretrainingDataset

    collator = MaskingCollator.from_tokenizer(BertTokenizer.from_pretrained(corpus["tokenizer"]), seed=3)
    return collator(PretrainingDataset(corpus["pairs"] / "train").batch(list(range(size))))


def test_each_loss_term_equals_a_direct_computation(corpus) -> None:
    teacher = BertForPreTraining.from_pretrained(corpus["teacher"])
    torch.manual_seed(1)
    student = BertForPreTraining(BertConfig(vocab_size=teacher.config.vocab_size, num_hidden_layers=2, **SIZE))
    objective = DistillationObjective(student, teacher, temperature=2.5, alpha_ce=5.0, alpha_mlm=2.0, alpha_cos=1.0)
    objective.train()
    assert not teacher.training
    batch = masked_batch(corpus)
    masked, real = batch["labels"] != -100, batch["attention_mask"].bool()
    out = objective(**batch, mlm_normalizer=float(masked.sum()), token_normalizer=float(real.sum()))

    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        s = student(**inputs, output_hidden_states=True)
        t = teacher(**inputs, output_hidden_states=True)
    s_logits, t_logits = s.prediction_logits[masked], t.prediction_logits[masked]  # [M, V]
    kl = F.kl_div(F.log_softmax(s_logits / 2.5, -1), F.softmax(t_logits / 2.5, -1), reduction="batchmean") * 2.5 ** 2
    ce = F.cross_entropy(s_logits, batch["labels"][masked])
    h_s, h_t = s.hidden_states[-1][real], t.hidden_states[-1][real]  # [N, H]
    cos = F.cosine_embedding_loss(h_s, h_t, torch.ones(len(h_s)))
    m, n = float(masked.sum()), float(real.sum())
    soft, mlm, cosine, total = (float(t.detach()) for t in (out.soft_loss_sum, out.mlm_loss_sum, out.cos_loss_sum,
                                                              out.loss))
    assert soft / m == pytest.approx(float(kl), rel=1e-4)
    assert mlm / m == pytest.approx(float(ce), rel=1e-5)
    assert cosine / n == pytest.approx(float(cos), rel=1e-4)
    assert total == pytest.approx(float(5 * kl + 2 * ce + cos), rel=1e-4)
    summary = objective.summarize(out.stats())
    assert summary["soft_target_loss"] == pytest.approx(float(kl), rel=1e-4)
    assert summary["cosine_loss"] == pytest.approx(float(cos), rel=1e-4)
    assert summary["loss"] == pytest.approx(total, rel=1e-4)
    assert float(kl) > 0.01 and float(cos) > 0.01  # a different model: the terms are not trivially 0

    out.loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.bert.encoder.layer[0].attention.self.query.weight.grad is not None


def test_a_student_with_all_the_teachers_layers_at_t1_starts_at_zero_loss_and_scores_as_the_teacher_on_its_masks(
        corpus, tmp_path: Path) -> None:
    """The student is the teacher: zero soft-target and cosine loss at step 1, and at step 0 the held-out figures
    of the teacher exactly, which it can only get on the teacher's batches with the teacher's masks."""
    run = tmp_path / "run"
    distill(settings(corpus, run, student_layers=4, temperature=1.0, max_steps=2))
    first = events(run, "train")[0]
    assert first["step"] == 1
    assert first["soft_target_loss"] == pytest.approx(0.0, abs=1e-6)
    assert first["cosine_loss"] == pytest.approx(0.0, abs=1e-6)
    assert first["mlm_loss"] > 0.1
    start = events(run, "eval")[0]
    assert start["step"] == 0
    assert start["mlm_accuracy"] == start["teacher_mlm_accuracy"]
    assert start["mlm_loss"] == pytest.approx(start["teacher_mlm_loss"], abs=1e-6)
    assert start["teacher_mlm_loss"] > 0.1  # a real score over masked tokens, not an empty evaluation


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_teacher_never_changes_and_is_never_optimised(corpus, tmp_path: Path) -> None:
    on_disk = sha256(corpus["teacher"] / "model.safetensors")
    trainer = distillation_engine(settings(corpus, tmp_path / "run", max_steps=6, eval_every=3), World())
    before = {name: tensor.clone() for name, tensor in trainer.task.teacher.state_dict().items()}
    student_before = trainer.task.model.bert.embeddings.word_embeddings.weight.clone()
    optimised = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in trainer.task.teacher.parameters()}
    assert not any(p.requires_grad for p in trainer.task.teacher.parameters())
    trainer.run()
    for name, tensor in trainer.task.teacher.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert not trainer.task.teacher.training
    assert not torch.equal(trainer.task.model.bert.embeddings.word_embeddings.weight, student_before)  # the student did
    assert sha256(corpus["teacher"] / "model.safetensors") == on_disk


def test_interrupted_and_resumed_run_ends_like_the_uninterrupted_one(corpus, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during step 5 (the checkpoint is step 5), resumed to step 8; dropout on, so the RNG states matter."""
    common = {"max_steps": 8, "save_every": 4, "eval_every": 4,
              "model_overrides": {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}}
    straight = tmp_path / "straight"
    distill(settings(corpus, straight, **common))

    resumed = tmp_path / "resumed"
    ctrl_c_during_step(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        distill(settings(corpus, resumed, **common))
    monkeypatch.undo()
    assert (resumed / "checkpoints" / "step-0000005").is_dir() and not (resumed / "final").exists()
    distill(settings(corpus, resumed, resume=True, **common))

    a, b = load_file(straight / "final" / "model.safetensors"), load_file(resumed / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    lines_a, lines_b = read_metrics(straight / "metrics.jsonl"), read_metrics(resumed / "metrics.jsonl")
    assert [(e["kind"], e["step"]) for e in lines_a] == [(e["kind"], e["step"]) for e in lines_b]
    assert [e["step"] for e in lines_a if e["kind"] == "eval"] == [0, 4, 8]
    for x, y in zip(lines_a, lines_b, strict=True):
        for key in ("mlm_loss", "mlm_accuracy", "soft_target_loss", "cosine_loss", "loss", "teacher_mlm_accuracy"):
            if key in x:
                assert x[key] == pytest.approx(y[key], rel=1e-6), (x["kind"], x["step"], key)


def test_resume_with_a_teacher_whose_weights_changed_is_refused_in_one_line(corpus, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    teacher = tmp_path / "teacher"
    shutil.copytree(corpus["teacher"], teacher)
    run = tmp_path / "run"
    distill(settings(corpus, run, teacher=str(teacher), max_steps=4, save_every=2))
    weights = load_file(teacher / "model.safetensors")
    weights["cls.predictions.bias"] += 0.5  # the teacher folder now holds another model
    save_file(weights, teacher / "model.safetensors", metadata={"format": "pt"})
    metrics = (run / "metrics.jsonl").read_bytes()
    assert main(["distill", "--teacher", str(teacher), "--data", str(corpus["pairs"]), "--out", str(run),
                 "--student-layers", "2", "--max-steps", "6", "--save-every", "2", "--batch-size", "8",
                 "--no-progress", "--threads", "1", "--resume"]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "step-0000004 was distilled from a teacher with other weights" in error and "Traceback" not in error
    assert (run / "metrics.jsonl").read_bytes() == metrics
    assert max(c.name for c in (run / "checkpoints").iterdir()) == "step-0000004"


def test_resume_with_other_distillation_settings_is_refused_naming_each_but_the_teacher_may_move(
        corpus, tmp_path: Path) -> None:
    """The settings check is pretraining's (bert.settings): a changed loss weight or temperature is named; the same
    teacher weights in another folder are no change (their digest is compared, not their path)."""
    run = tmp_path / "run"
    distill(settings(corpus, run, max_steps=2, save_every=1))
    with pytest.raises(BertError) as refused:
        distill(settings(corpus, run, max_steps=2, save_every=1, temperature=3.0, alpha_cos=0.0, resume=True))
    assert "other settings: temperature 2.0 (now 3.0), alpha-cos 1.0 (now 0.0); " in str(refused.value)
    moved = tmp_path / "moved-teacher"
    shutil.copytree(corpus["teacher"], moved)
    distill(settings(corpus, run, teacher=str(moved), max_steps=3, save_every=1, resume=True))
    assert [e["step"] for e in events(run, "train")] == [1, 2, 3]


def test_cli_run_on_mlm_only_data_logs_every_term_and_evaluates_teacher_and_student(corpus, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["distill", "--teacher", str(corpus["teacher"]), "--data", str(corpus["packed"]), "--out", str(run),
                 "--max-steps", "6", "--batch-size", "8", "--lr", "3e-3", "--eval-every", "3", "--eval-batches", "2",
                 "--log-every", "2", "--dropout", "0", "--no-progress", "--threads", "1"]) == 0
    train, evals = events(run, "train"), events(run, "eval")
    assert [e["step"] for e in train] == [2, 4, 6]
    assert {"soft_target_loss", "mlm_loss", "cosine_loss", "loss", "mlm_accuracy", "lr"} <= set(train[0])
    assert not any(key.startswith("nsp") for e in train + evals for key in e)
    assert [e["step"] for e in evals] == [0, 3, 6]
    assert len({e["teacher_mlm_accuracy"] for e in evals}) == 1  # the same batches and masks every time
    assert evals[-1]["mlm_loss"] < evals[0]["mlm_loss"]
    assert (run / "curves.png").stat().st_size > 0
    student = BertForPreTraining.from_pretrained(run / "final")
    assert student.config.num_hidden_layers == 2  # half the teacher's 4 by default
    teacher = load_file(corpus["teacher"] / "model.safetensors")
    final = load_file(run / "final" / "model.safetensors")
    for name in ("cls.seq_relationship.weight", "bert.pooler.dense.weight"):  # copied and frozen
        assert torch.equal(final[name], teacher[name]), name


def test_random_student_from_a_config_with_and_without_the_cosine_loss(corpus, tmp_path: Path) -> None:
    same = BertConfig(num_hidden_layers=1, **SIZE)
    wider = BertConfig(num_hidden_layers=1, **{**SIZE, "hidden_size": 48, "intermediate_size": 96})
    for name, config in (("same", same), ("wider", wider)):
        config.save_as(tmp_path / f"{name}.json")
    distill(settings(corpus, tmp_path / "same", student_layers=None, config=str(tmp_path / "same.json"), max_steps=2))
    assert "cosine_loss" in events(tmp_path / "same", "train")[0]
    distill(settings(corpus, tmp_path / "wider", student_layers=None, config=str(tmp_path / "wider.json"),
                     max_steps=2, alpha_cos=0.0))
    row = events(tmp_path / "wider", "train")[0]
    assert "cosine_loss" not in row and row["loss"] == pytest.approx(5 * row["soft_target_loss"] + 2 * row["mlm_loss"])
    assert BertForPreTraining.from_pretrained(tmp_path / "wider" / "final").config.hidden_size == 48


@pytest.mark.parametrize("case", ["missing-teacher", "vocabulary", "both-students", "too-many-layers",
                                  "hidden-size", "no-mlm-head"])
def test_bad_input_is_a_one_line_error_that_writes_nothing(case: str, corpus, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    teacher = str(corpus["teacher"])
    extra: list[str] = []
    expected = {"missing-teacher": "--teacher", "vocabulary": "bert prepare ... --tokenizer",
                "both-students": "--student-layers and --student-config together",
                "too-many-layers": "choose 1 to 4", "hidden-size": "--alpha-cos 0", "no-mlm-head": "no masked-LM head"}
    if case == "missing-teacher":
        teacher = str(tmp_path / "no-such-teacher")
    elif case == "vocabulary":  # a teacher with bert-base-uncased's 30,522-token vocabulary
        teacher = str(REPO / "weights" / "bert-demo")
    elif case == "both-students":
        extra = ["--student-layers", "2", "--student-config", "tiny"]
    elif case == "too-many-layers":
        extra = ["--student-layers", "5"]
    elif case == "hidden-size":
        extra = ["--student-config", "tiny"]  # hidden 128, the teacher's 32
    else:
        from bert.model import BertModel

        BertModel.from_pretrained(corpus["teacher"]).save_pretrained(tmp_path / "encoder")
        teacher = str(tmp_path / "encoder")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    capsys.readouterr()
    assert main(["distill", "--teacher", teacher, "--data", str(corpus["pairs"]), "--out", str(tmp_path / "run"),
                 "--max-steps", "2", "--no-progress", *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("bert distill: error: ") and "Traceback" not in err, err
    assert expected[case] in err, err
    assert not (tmp_path / "run").exists()


def test_the_student_is_a_normal_checkpoint_for_fill_mask_and_transformers(corpus, tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    import transformers

    final = distill(settings(corpus, tmp_path / "run", max_steps=3))
    ours = BertForPreTraining.from_pretrained(final)
    theirs, info = transformers.BertForPreTraining.from_pretrained(final, output_loading_info=True)
    theirs.eval()
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    batch = masked_batch(corpus, 4)
    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        a, b = ours(**inputs), theirs(**inputs)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(a.prediction_logits[real], b.prediction_logits[real], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(a.seq_relationship_logits, b.seq_relationship_logits, rtol=1e-4, atol=1e-4)
    capsys.readouterr()
    assert main(["fill-mask", "the cat sees the [MASK] today.", "--model", str(final), "--json"]) == 0
    assert '"token"' in capsys.readouterr().out


def test_saved_truncated_student_is_what_distillation_starts_from(corpus, tmp_path: Path) -> None:
    folder = save_student(str(corpus["teacher"]), 2, tmp_path / "student")
    assert (folder / "vocab.txt").is_file()
    saved = load_file(folder / "model.safetensors")
    trainer = distillation_engine(settings(corpus, tmp_path / "run", max_steps=1), World())
    for name, tensor in trainer.task.model.state_dict().items():
        if name in saved:
            assert torch.equal(tensor, saved[name]), name


def test_init_from_starts_the_student_from_that_checkpoints_weights(corpus, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """``bert distill --init-from``: the student's weights when training starts are the checkpoint's, bit for bit
    (a 2-layer BERT that transformers made, with the teacher's vocabulary, every tensor made distinctive), not the
    teacher's layers that are the default start."""
    import transformers

    checkpoint = tmp_path / "checkpoint"
    vocab_size = len(BertTokenizer.from_pretrained(corpus["tokenizer"]).get_vocab())
    torch.manual_seed(5)
    transformers.BertForPreTraining(transformers.BertConfig(vocab_size=vocab_size, num_hidden_layers=2,
                                                           **SIZE)).save_pretrained(checkpoint)
    for file in corpus["tokenizer"].iterdir():
        shutil.copy(file, checkpoint / file.name)
    saved = make_weights_distinctive(checkpoint)
    started: dict[str, torch.Tensor] = {}
    original = Engine.run

    def run(self: Engine) -> Path:  # the student as the loop receives it, before its first step
        started.update({name: tensor.detach().clone() for name, tensor in self.task.model.state_dict().items()})
        return original(self)

    monkeypatch.setattr(Engine, "run", run)
    capsys.readouterr()
    assert main(["distill", "--teacher", str(corpus["teacher"]), "--data", str(corpus["pairs"]), "--init-from",
                 str(checkpoint), "--out", str(tmp_path / "run"), "--max-steps", "1", "--batch-size", "8",
                 "--eval-batches", "1", "--no-progress", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert f"the student starts from {checkpoint}" in err and "freshly initialised" not in err
    assert set(started) - set(saved) == {"cls.predictions.decoder.weight"} and set(saved) <= set(started)
    for name, tensor in saved.items():
        assert torch.equal(started[name], tensor), name
    assert torch.equal(started["cls.predictions.decoder.weight"], saved["bert.embeddings.word_embeddings.weight"])
    teacher = load_file(corpus["teacher"] / "model.safetensors")
    assert not torch.equal(started["bert.encoder.layer.0.attention.self.query.weight"],
                           teacher["bert.encoder.layer.0.attention.self.query.weight"])


def test_ddp_two_processes_match_one_process(corpus, tmp_path: Path) -> None:
    """2 CPU processes × batch 4 vs 1 process × batch 8 (grad accumulation 2): the loss terms are means over the
    whole global batch (masked tokens for the MLM terms, real tokens for the cosine term), whatever the split."""
    common = ["distill", "--teacher", str(corpus["teacher"]), "--data", str(corpus["pairs"]), "--max-steps", "4",
              "--grad-accum", "2", "--lr", "3e-3", "--dropout", "0", "--log-every", "1", "--eval-every", "0",
              "--eval-batches", "1", "--no-progress", "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "single"), "--batch-size", "8"]) == 0
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "bert", *common, "--out", str(tmp_path / "ddp"), "--batch-size", "4"],
                            cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = events(tmp_path / "single", "train"), events(tmp_path / "ddp", "train")
    assert [e["step"] for e in b] == [1, 2, 3, 4]
    for x, y in zip(a, b, strict=True):
        for key in ("mlm_loss", "soft_target_loss", "cosine_loss", "loss"):
            assert x[key] == pytest.approx(y[key], rel=1e-5, abs=1e-6), (x["step"], key)
