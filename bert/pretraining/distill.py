"""Knowledge distillation: :func:`distill` (the Python API behind ``bert distill``), DistilBERT's recipe.

A small *student* BERT learns to imitate a trained *teacher* on prepared pretraining data (Sanh et al., 2019,
"DistilBERT"). The student starts as

* ``student_layers`` K of the teacher's L layers, spread evenly from the first (layer ``i * L // K`` becomes layer
  i: 6 of 12 → 0, 2, 4, 6, 8, 10; 3 of 6 → 0, 2, 4), with the teacher's embeddings, pooler and heads — the
  default is half the teacher's layers; or
* random weights of a given size (``config``: a preset or a config.json, ``--student-config``); or
* another checkpoint (``init_from``).

Its loss, per global batch of M masked positions and N real (non-padding) tokens, with s / t the student's /
teacher's MLM logits at a masked position and h_s / h_t their last hidden states at a token::

    alpha_ce  · T² · (1/M) Σ_masked KL(softmax(t/T) ‖ softmax(s/T))    the teacher's soft targets
  + alpha_mlm ·      (1/M) Σ_masked −log softmax(s)[label]             the hard MLM loss
  + alpha_cos ·      (1/N) Σ_real  (1 − cos(h_s, h_t))                 the hidden states' directions

T² keeps the soft targets' gradients the same size whatever the temperature (Hinton et al., 2015). The defaults
(T 2, 5 / 2 / 1) are those of Hugging Face's ``distiller.py``, which trained DistilBERT. The cosine term needs the
student's hidden size to be the teacher's (``alpha_cos`` 0 otherwise). The teacher runs in eval mode without
gradients, is never given to the optimizer and its weights never change; it must share the data's vocabulary
(the check of :mod:`bert.pretraining.init_from`). Distillation trains the masked LM only: the pooler and NSP head are
copied from the teacher (or left as initialised) and frozen.

Everything else is pretraining's and the engine's — time budget or max steps, evaluation, atomic checkpoints,
exact ``--resume``, Ctrl-C, DDP, metrics.jsonl, curves.png: :class:`DistillationTask` swaps only the student's
starting point, the objective, the metrics and the curves. Train lines of metrics.jsonl carry each loss term
(``soft_target_loss``, ``mlm_loss``, ``cosine_loss``) and their weighted sum ``loss``; eval lines score the student
(``mlm_loss``, ``mlm_accuracy``) and the teacher (``teacher_mlm_loss``, ``teacher_mlm_accuracy``) on the same
held-out batches with the same masks (the teacher once per process: it never changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bert.data.masking import MaskingCollator
from bert.engine.distributed import World
from bert.engine.loop import run_task
from bert.engine.task import Batch
from bert.errors import BertError
from bert.heads import BertForPreTraining
from bert.plotting import Panel, Series
from bert.pretraining.config import PretrainConfig
from bert.pretraining.evaluate import evaluate
from bert.pretraining.init_from import InitCheckpoint
from bert.pretraining.loss import STAT_NAMES, LossSums, masked_lm_logits, summarize
from bert.pretraining.model_choice import build_model_config
from bert.pretraining.recipe import CONTINUED, Recipe
from bert.pretraining.student import StudentStart, check_student, load_teacher, weights_digest
from bert.pretraining.task import PretrainingTask
from bert.settings import setting
from bert.tokenizer.wordpiece import BertTokenizer

# The argument groups of ``bert distill --help`` besides ``bert pretrain``'s.
STUDENT = "the student (at most one; default: --student-layers with half the teacher's)"
LOSS = "the loss (defaults: DistilBERT's)"
DISTILL_STAT_NAMES = (*STAT_NAMES, "soft_loss_sum", "cos_loss_sum", "cos_count")


@dataclass(kw_only=True)
class DistillConfig(PretrainConfig):
    """Settings of a distillation run: every :class:`~bert.pretraining.config.PretrainConfig` setting (length,
    optimisation, masking, evaluation, checkpoints) means what it means there, plus:

    teacher: the trained model (a folder or a name, as ``--model`` takes); required.
    student_layers: K — the student is K of the teacher's layers (see the module docstring; default: half of
        them). ``config`` (a preset or config.json: random weights of that size) or ``init_from`` (a checkpoint)
        start the student elsewhere instead; at most one of the three.
    temperature: T of the soft targets. alpha_ce / alpha_mlm / alpha_cos: the weights of the soft-target, hard
        MLM and cosine losses.
    objective: always "mlm" (the student trains the masked LM only).
    """

    teacher: str | None = setting(
        None, "the trained model to imitate (a folder or a name, as --model takes); it needs its MLM head, and the "
              "data must have been prepared with its tokenizer (--resume checks its weights, not its path)",
        metavar="NAME|DIR", required=True, free_on_resume=True)
    student_layers: int | None = setting(
        None, "K of the teacher's layers, spread evenly from the first (6 of 12: 0, 2, 4, 6, 8, 10), with the "
              "teacher's embeddings, pooler and heads", group=STUDENT, metavar="K")
    config: str | None = setting(
        None, "random weights of this size instead: a preset (tiny, mini, small, ...) or a config.json; the cosine "
              "loss needs the teacher's hidden size (else --alpha-cos 0)", group=STUDENT, metavar="NAME|PATH",
        aliases=("--student-config",))
    init_from: str | None = setting(None, "start the student from this checkpoint instead (the data's vocabulary, too)",
                                    group=STUDENT, metavar="NAME|DIR")
    temperature: float = setting(2.0, "softmax temperature of the soft targets", group=LOSS, metavar="T")
    alpha_ce: float = setting(5.0, "weight of the soft-target loss, KL(teacher ‖ student) × T²", group=LOSS,
                              metavar="W")
    alpha_mlm: float = setting(2.0, "weight of the hard MLM cross-entropy", group=LOSS, metavar="W")
    alpha_cos: float = setting(1.0, "weight of the cosine loss between last hidden states", group=LOSS, metavar="W")
    objective: str | None = setting("mlm", "the student trains the masked LM only; the NSP head is copied and left as "
                                           "it is", choices=("mlm",))

    def validate(self) -> None:
        """BertError for settings that cannot work, before anything is loaded."""
        starts = [flag for flag, value in (("--student-layers", self.student_layers), ("--student-config", self.config),
                                           ("--init-from", self.init_from)) if value is not None]
        checks = [
            (self.teacher is not None, "give --teacher: the trained model whose predictions the student learns"),
            (len(starts) <= 1, f"{' and '.join(starts)} together: the student starts from one of them"),
            (self.student_layers is None or self.student_layers > 0, "--student-layers must be positive"),
            (self.temperature > 0, "--temperature must be positive"),
            (min(self.alpha_ce, self.alpha_mlm, self.alpha_cos) >= 0,
             "--alpha-ce, --alpha-mlm and --alpha-cos must be >= 0"),
            (self.alpha_ce + self.alpha_mlm + self.alpha_cos > 0, "at least one of the loss weights must be positive"),
            (self.objective == "mlm", "distillation trains the masked LM only (the NSP head is copied from the "
                                      "teacher and left as it is): --objective must be mlm"),
        ]
        for ok, message in checks:
            if not ok:
                raise BertError(message)
        super().validate()


def distill(config: DistillConfig) -> Path:
    """Distil ``config.teacher`` into a student as ``config`` says; returns ``RUN/final`` (the student +
    tokenizer: a BertForPreTraining checkpoint that ``bert fill-mask --model`` and transformers load).

    Under torchrun every process calls this; the returned path is the same on all of them.
    """
    config.validate()
    return run_task(lambda world: DistillationTask(config, world), config, config.out)


# ---- the objective -----------------------------------------------------------------------------------------------

@dataclass
class DistillationSums(LossSums):
    """:class:`~bert.pretraining.loss.LossSums` (the student's hard MLM sums; no NSP) plus the distillation sums."""

    soft_loss_sum: torch.Tensor
    cos_loss_sum: torch.Tensor
    cos_count: torch.Tensor

    def stats(self) -> torch.Tensor:
        """The sums of :data:`DISTILL_STAT_NAMES` as one float64 vector."""
        base = super().stats()
        extra = [t.detach().double().to(base.device) for t in (self.soft_loss_sum, self.cos_loss_sum, self.cos_count)]
        return torch.cat([base, torch.stack(extra)])


class DistillationObjective(nn.Module):
    """Student + teacher + the distillation loss (see the module docstring), as one module (DDP wraps this).

    ``forward`` takes a masked batch (all [B, T] but next_sentence_label [B], which is ignored, as is
    ``nsp_normalizer``) and the global batch's masked-token and real-token counts (``mlm_normalizer``,
    ``token_normalizer``), and returns
    :class:`DistillationSums` whose ``loss`` is the weighted sum of the three means over the global batch.
    The teacher stays in eval mode whatever mode this module is put in.
    """

    def __init__(self, student: BertForPreTraining, teacher: BertForPreTraining, temperature: float = 2.0,
                 alpha_ce: float = 5.0, alpha_mlm: float = 2.0, alpha_cos: float = 1.0) -> None:
        super().__init__()
        check_student(student.config, teacher.config, alpha_cos)
        self.model = student
        self.teacher = teacher.requires_grad_(False)
        self.temperature = temperature
        self.alpha_ce, self.alpha_mlm, self.alpha_cos = alpha_ce, alpha_mlm, alpha_cos
        self.cosine = student.config.hidden_size == teacher.config.hidden_size  # else the term is left out

    def train(self, mode: bool = True) -> DistillationObjective:
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor, next_sentence_label: torch.Tensor, mlm_normalizer: float = 1.0,
                nsp_normalizer: float = 1.0, token_normalizer: float = 1.0) -> DistillationSums:
        t = self.temperature
        hidden = self.model.run_encoder(input_ids, token_type_ids, attention_mask, False, False).last_hidden_state
        with torch.no_grad():  # not inference_mode: its tensors could not be saved for the student's backward
            teacher_hidden = self.teacher.run_encoder(input_ids, token_type_ids, attention_mask, False,
                                                      False).last_hidden_state  # [B, T, H]
            teacher_logits, _ = masked_lm_logits(self.teacher, teacher_hidden, labels)  # [M, V]
            teacher_log_probs = F.log_softmax(teacher_logits.float() / t, dim=-1)
        logits, targets = masked_lm_logits(self.model, hidden, labels)
        logits = logits.float()  # [M, V]
        mlm_sum = F.cross_entropy(logits, targets, reduction="sum")
        soft_sum = F.kl_div(F.log_softmax(logits / t, dim=-1), teacher_log_probs, reduction="sum",
                            log_target=True) * t ** 2
        real = attention_mask.bool()  # [B, T]
        if self.cosine:
            cos_sum = (1 - F.cosine_similarity(hidden[real].float(), teacher_hidden[real].float(), dim=-1)).sum()
        else:
            cos_sum = logits.new_zeros(())
        with torch.no_grad():
            mlm_correct = (logits.argmax(-1) == targets).sum()
        zero = torch.zeros((), device=logits.device)
        return DistillationSums(
            loss=(self.alpha_ce * soft_sum + self.alpha_mlm * mlm_sum) / mlm_normalizer
            + self.alpha_cos * cos_sum / token_normalizer,
            mlm_loss_sum=mlm_sum, mlm_correct=mlm_correct, mlm_count=targets.new_tensor(targets.numel()),
            nsp_loss_sum=zero, nsp_correct=zero, nsp_count=zero,
            soft_loss_sum=soft_sum, cos_loss_sum=cos_sum,
            cos_count=real.sum() if self.cosine else zero)

    def summarize(self, stats: torch.Tensor) -> dict[str, float]:
        """Summed stats ([len(DISTILL_STAT_NAMES)]) → mlm_loss, mlm_accuracy, soft_target_loss, cosine_loss (when
        computed) and their weighted sum, ``loss``."""
        s = dict(zip(DISTILL_STAT_NAMES, stats.tolist(), strict=True))
        result = summarize(stats[:len(STAT_NAMES)], None)
        result["soft_target_loss"] = s["soft_loss_sum"] / max(s["mlm_count"], 1.0)
        loss = self.alpha_ce * result["soft_target_loss"] + self.alpha_mlm * result["mlm_loss"]
        if s["cos_count"]:
            result["cosine_loss"] = s["cos_loss_sum"] / s["cos_count"]
            loss += self.alpha_cos * result["cosine_loss"]
        result["loss"] = loss
        return result


# ---- the trainer -------------------------------------------------------------------------------------------------

class DistillationTask(PretrainingTask):
    """Pretraining with a teacher: the student's starting point, the objective, the metrics and the curves differ;
    use :func:`distill` rather than this class."""

    name = "distill"
    stat_names = DISTILL_STAT_NAMES
    config: DistillConfig

    def __init__(self, config: DistillConfig, world: World) -> None:
        self.teacher_result: dict[str, float] | None = None  # the teacher's held-out metrics (computed once)
        super().__init__(config, world)

    def _init_checkpoint(self) -> InitCheckpoint | None:
        """Load and check the teacher (before anything is written), then say where the student starts."""
        cfg = self.config
        teacher = load_teacher(cfg.teacher)
        self.teacher_digest = weights_digest(teacher.model)
        self.teacher = teacher.model.to(self.world.device)
        if cfg.config is None and cfg.init_from is None:  # the task checks its vocabulary: the teacher's
            layers = cfg.student_layers or max(1, teacher.checkpoint.config.num_hidden_layers // 2)
            return StudentStart.from_teacher(teacher, layers, cfg.model_changes())
        tokenizer = BertTokenizer.from_pretrained(self.data_dir / "tokenizer")
        teacher.checkpoint.check_vocabulary(tokenizer, self.data_dir)
        start = super()._init_checkpoint()
        student = start.config if start is not None else build_model_config(
            cfg.config, MaskingCollator.from_tokenizer(tokenizer).vocab_size, tokenizer.pad_token_id,
            cfg.model_changes())
        check_student(student, teacher.checkpoint.config, cfg.alpha_cos)
        return start

    def recipe(self) -> Recipe:
        """A student learns from a teacher's answers, from its layers or not: continued pretraining's defaults."""
        return CONTINUED

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "teacher_sha256": self.teacher_digest}

    def check_resumable(self, settings: dict[str, Any], path: Path) -> None:
        if settings.get("teacher_sha256", self.teacher_digest) != self.teacher_digest:
            raise BertError(f"--resume: {path} was distilled from a teacher with other weights than --teacher "
                            f"{self.config.teacher} has now; resume with the teacher it started with, or choose "
                            "another --out to start afresh")
        super().check_resumable(settings, path)

    def _start_note(self, fresh: str | None) -> str:
        assert self.init is not None
        origin = str(self.init.folder)
        if isinstance(self.init, StudentStart):
            origin = (f"layers {', '.join(map(str, self.init.layers))} of the teacher's "
                      f"{self.teacher.config.num_hidden_layers} ({origin}) and its embeddings, pooler and heads")
        return f"the student starts from {origin}" + (f"; {fresh}" if fresh else "")

    def objective(self) -> DistillationObjective:
        if not hasattr(self, "_objective"):
            cfg = self.config
            self._objective = DistillationObjective(self.model, self.teacher, cfg.temperature, cfg.alpha_ce,
                                                    cfg.alpha_mlm, cfg.alpha_cos)
        return self._objective

    def normalizers(self, batches: Sequence[Batch]) -> list[dict[str, Any]]:
        tokens = torch.tensor([float(sum(int(b["attention_mask"].sum()) for b in batches))], dtype=torch.float64)
        self.world.all_reduce_sum(tokens)
        return [{**every, "token_normalizer": max(tokens.item(), 1.0)} for every in super().normalizers(batches)]

    def summarize(self, stats: torch.Tensor) -> dict[str, float]:
        return self.objective().summarize(stats)

    def evaluate(self) -> dict[str, Any] | None:
        """The student's held-out MLM loss and accuracy, and the teacher's on the same batches and masks."""
        if self.eval_data is None or self.config.eval_batches == 0:
            return None

        def score(model: BertForPreTraining) -> dict[str, float]:
            return evaluate(model, self.eval_data, self.eval_collator, self.config.batch_size,
                            self.config.eval_batches * self.config.batch_size, sentence=None, device=self.world.device)

        if self.teacher_result is None:
            self.teacher_result = score(self.teacher)
            self.note(f"teacher: held-out MLM loss {self.teacher_result['mlm_loss']:.4f}, MLM accuracy "
                      f"{self.teacher_result['mlm_accuracy']:.3f}")
        return {**score(self.model), **{f"teacher_{key}": value for key, value in self.teacher_result.items()}}

    def panels(self, events: list[dict[str, Any]], best_step: int | None) -> Sequence[Panel]:
        return DISTILLATION_PANELS


def _student_and_teacher(key: str, title: str, ylabel: str) -> Panel:
    return Panel(title, ylabel, [Series("train", key, "student, train"), Series("eval", key, "student, held out", "o-"),
                                Series("eval", f"teacher_{key}", "teacher, held out", "--")])


# curves.png of a distillation run: the training loss terms; held-out MLM loss and MLM accuracy of the student
# (train and eval) with the teacher's as a dashed line.
DISTILLATION_PANELS = (
    Panel("loss terms (train)", "loss", [Series("train", "soft_target_loss", "soft targets (KL · T²)"),
                                         Series("train", "mlm_loss", "hard MLM"),
                                         Series("train", "cosine_loss", "cosine")]),
    _student_and_teacher("mlm_loss", "MLM loss", "loss"),
    _student_and_teacher("mlm_accuracy", "MLM accuracy", "accuracy"),
)
