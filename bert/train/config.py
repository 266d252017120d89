"""PretrainConfig: every setting of ``bert pretrain``, as a dataclass (the Python API) and as CLI flags."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bert.errors import BertError
from bert.train.optim import OPTIMIZERS


@dataclass
class PretrainConfig:
    """Settings of a pretraining run. Only ``data``, ``out`` and one of ``max_steps``/``time_budget`` are required.

    data: a folder written by ``bert prepare`` (train/, eval/, meta.json, tokenizer/).
    config: a preset name (tiny, mini, small, medium, base, large; a variant at such a size: albert-mini,
        roberta-small, distilbert-mini, ...) or a path to a config.json of any supported model type (default mini);
        ``vocab_size`` and ``pad_token_id`` always come from the data's tokenizer, which must be of the model type's
        kind (WordPiece for BERT and DistilBERT, byte-level BPE for RoBERTa, unigram for ALBERT).
        ``model_overrides`` replace further fields (e.g. ``{"hidden_dropout_prob": 0.0}``). The model trained is
        BertForPreTraining, AlbertForPreTraining, RobertaForMaskedLM or DistilBertForMaskedLM.
    init_from: continue pretraining a checkpoint (a folder or a model name) instead of starting from random
        weights; its config.json is the architecture (``config`` must then be None), its vocabulary must be the
        data's, heads it lacks are freshly initialised (see :mod:`bert.train.init_from`).
    head_lr: peak learning rate of the pretraining heads (every parameter outside the encoder: BERT's ``cls.*``,
        RoBERTa's ``lm_head.*``, ...), when it should differ from ``lr``.
    objective: "mlm+nsp", "mlm+sop" or "mlm"; None trains what the data holds (``bert prepare --objective``). "mlm"
        on sentence-pair data ignores the pair labels; MLM-only training freezes the pooler and sentence head.
        Sentence-order labels train BERT's two-way sentence layer or ALBERT's SOP head; RoBERTa and DistilBERT
        train "mlm" only.
    out: the run folder (metrics.jsonl, curves.png, checkpoints/, final/).
    max_steps / time_budget (minutes): when to stop; the learning rate decays to 0 at max_steps, or at the
        number of steps estimated to fit in the time budget (see :mod:`bert.train.schedule`).
    batch_size: examples per process per micro-batch; one optimizer step sees
        batch_size × grad_accum × processes examples.
    warmup_steps (wins) or warmup_fraction of the total steps.
    eval_every / save_every / log_every: in optimizer steps (0 = never; a final eval and checkpoint are always
        done). eval_batches: how many batch_size batches of the eval split each evaluation reads.
    keep_last: checkpoints kept (0 = all).
    threads: CPU threads per process (None: the cores divided among local processes).
    compile: run the training forward + backward through ``torch.compile`` (see :mod:`bert.compile`).
    gradient_checkpointing: recompute each encoder layer in backward (less memory, about a third more compute).
    """

    data: str | Path
    out: str | Path
    config: str | None = None
    init_from: str | None = None
    max_steps: int | None = None
    time_budget: float | None = None
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-4
    head_lr: float | None = None
    objective: str | None = None
    warmup_steps: int | None = None
    warmup_fraction: float = 0.01
    weight_decay: float = 0.01
    optimizer: str = "adamw"
    max_grad_norm: float = 1.0
    bf16: bool = False
    eval_every: int = 500
    eval_batches: int = 20
    save_every: int = 1000
    keep_last: int = 3
    resume: bool = False
    seed: int = 0
    whole_word_masking: bool = False
    mlm_probability: float = 0.15
    max_predictions_per_seq: int | None = 20
    log_every: int = 10
    progress: bool = True
    threads: int | None = None
    model_overrides: dict[str, Any] | None = None
    compile: bool = False
    gradient_checkpointing: bool = False

    def validate(self) -> None:
        """BertError for settings that cannot work, before anything is loaded."""
        if self.init_from is not None and self.config is not None:
            raise BertError("--config and --init-from together: the architecture comes from the checkpoint "
                            "(only --dropout can change it); drop --config")
        if self.max_steps is None and self.time_budget is None:
            raise BertError("give --max-steps or --time-budget (or both): training needs to know when to stop")
        checks = [
            (self.max_steps is None or self.max_steps > 0, "--max-steps must be positive"),
            (self.time_budget is None or self.time_budget > 0, "--time-budget must be positive (minutes)"),
            (self.batch_size > 0, "--batch-size must be positive"),
            (self.grad_accum > 0, "--grad-accum must be positive"),
            (self.lr > 0, "--lr must be positive"),
            (self.head_lr is None or self.head_lr > 0, "--head-lr must be positive"),
            (self.objective in (None, "mlm+nsp", "mlm+sop", "mlm"), "--objective must be mlm+nsp, mlm+sop or mlm"),
            (self.warmup_steps is None or self.warmup_steps >= 0, "--warmup-steps must be >= 0"),
            (0.0 <= self.warmup_fraction < 1.0, "--warmup-fraction must be in [0, 1)"),
            (self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.max_grad_norm >= 0, "--max-grad-norm must be >= 0 (0 = no clipping)"),
            (min(self.eval_every, self.save_every, self.keep_last, self.eval_batches) >= 0,
             "--eval-every, --eval-batches, --save-every and --keep-last must be >= 0"),
            (self.log_every > 0, "--log-every must be positive"),
            (0.0 < self.mlm_probability <= 1.0, "the masking probability must be in (0, 1]"),
            (self.max_predictions_per_seq is None or self.max_predictions_per_seq > 0,
             "--max-predictions-per-seq must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise BertError(message)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["data"], data["out"] = str(self.data), str(self.out)
        return data
