"""PretrainConfig: every setting of ``bert pretrain``, as a dataclass (the Python API) and as CLI flags: each field
is defined once, with its help (see :mod:`bert.settings`), and ``--field-name`` is its flag."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bert.engine.config import OPTIMISATION, RUN, RunConfig
from bert.engine.optim import OPTIMIZERS
from bert.errors import BertError
from bert.settings import fixed_on_resume, setting, settings_dict

MASKING = "masking"  # an argument group of ``bert pretrain --help``, besides the engine's
POSITION_INITS = ("sinusoidal", "random")  # --position-init (see bert.pretraining.recipe)


@dataclass(kw_only=True)
class PretrainConfig(RunConfig):
    """Settings of a pretraining run: the engine's (:class:`~bert.engine.config.RunConfig`: length, optimisation,
    evaluation, checkpoints, resume) and these. Only ``data``, ``out`` and one of ``max_steps``/``time_budget`` are
    required.

    data: a folder written by ``bert prepare`` (train/, eval/, meta.json, tokenizer/).
    config: a preset name (tiny, mini, small, medium, base, large; a variant at such a size: albert-mini,
        roberta-small, distilbert-mini, ...) or a path to a config.json of any supported model type (default mini);
        ``vocab_size`` and ``pad_token_id`` always come from the data's tokenizer, which must be of the model type's
        kind (WordPiece for BERT and DistilBERT, byte-level BPE for RoBERTa, unigram for ALBERT).
        ``model_overrides`` replace further fields (e.g. ``{"hidden_dropout_prob": 0.0}``); ``dropout`` sets both
        dropout probabilities (over ``model_overrides``). The model trained is
        BertForPreTraining, AlbertForPreTraining, RobertaForMaskedLM or DistilBertForMaskedLM.
    init_from: continue pretraining a checkpoint (a folder or a model name) instead of starting from random
        weights; its config.json is the architecture (``config`` must then be None), its vocabulary must be the
        data's, heads it lacks are freshly initialised (see :mod:`bert.pretraining.init_from`).
    head_lr: peak learning rate of the pretraining heads (every parameter outside the encoder: BERT's ``cls.*``,
        RoBERTa's ``lm_head.*``, ...), when it should differ from ``lr``.
    objective: "mlm+nsp", "mlm+sop" or "mlm"; None trains what the data holds (``bert prepare --objective``). "mlm"
        on sentence-pair data ignores the pair labels; MLM-only training freezes the pooler and sentence head.
        Sentence-order labels train BERT's two-way sentence layer or ALBERT's SOP head; RoBERTa and DistilBERT
        train "mlm" only.
    out: the run folder (metrics.jsonl, curves.png, checkpoints/, final/).
    log_every: steps per metrics.jsonl train line. eval_batches: how many batch_size batches of the eval split each
        evaluation reads.
    threads: CPU threads per process (None: the cores divided among local processes).
    probe: sentences with the mask token (written ``[MASK]``; RoBERTa's ``<mask>`` is put in for it) whose top
        answers every evaluation prints and logs (None: :data:`~bert.pretraining.probes.DEFAULT_PROBES`).
    """

    data: str | Path = setting(help="prepared data folder (from `bert prepare`)", metavar="DIR")
    out: str | Path = setting(help="run folder to write into", metavar="RUN", free_on_resume=True)
    config: str | None = setting(
        None, "model size: tiny, mini, small, medium, base, large; a variant at one of those sizes: albert-mini, "
              "roberta-mini, distilbert-mini, ... (the data's tokenizer must be the variant's kind); or a config.json "
              "of any of them (default mini)", metavar="NAME|PATH")
    init_from: str | None = setting(
        None, "continue pretraining this checkpoint (a folder, a run's final/, or a name such as bert-base-uncased; "
              "BERT, RoBERTa, ALBERT or DistilBERT) instead of random weights; the data must use its vocabulary",
        metavar="NAME|DIR")
    head_lr: float | None = setting(
        None, "peak learning rate of the pretraining heads (MLM, NSP/SOP; default: --lr), e.g. for fresh heads on a "
              "pretrained encoder", group=OPTIMISATION, metavar="LR")
    objective: str | None = setting(
        None, "what to train (default: what the data holds; mlm on sentence-pair data ignores the pair labels); "
              "mlm+sop trains BERT's sentence head or ALBERT's SOP head on sentence-order data",
        choices=("mlm+nsp", "mlm+sop", "mlm"))
    lr: float | None = setting(None, "peak learning rate (default, see bert.pretraining.recipe: from random weights "
                                     "1e-3 × 256 / hidden size, i.e. 1e-3 for mini; continuing a checkpoint 1e-4)",
                               group=OPTIMISATION)
    warmup_fraction: float | None = setting(
        None, "warmup as a fraction of all steps (default: 0.02 from random weights, 0.01 continuing a checkpoint)",
        group=OPTIMISATION, metavar="F")
    bf16: bool | None = setting(
        None, "bfloat16 autocast (default: on from random weights where the machine runs bfloat16 natively — "
              "AVX512-BF16 or AMX, a GPU; off continuing a checkpoint)", group=OPTIMISATION)
    position_init: str | None = setting(
        None, "how a model from random weights starts its position table (default: sinusoidal, at 2.5 × the "
              "initialiser's std — it left the plateau with 30 percent fewer tokens; random: BERT's normal(0, 0.02))",
        group=OPTIMISATION, choices=POSITION_INITS, free_on_resume=True)  # a resumed run loads its table
    optimizer: str = setting("adamw", "the optimizer", group=OPTIMISATION, choices=OPTIMIZERS)
    eval_batches: int = setting(20, "batches per evaluation", group=RUN, metavar="N")
    whole_word_masking: bool = setting(False, "mask all pieces of a word together", group=MASKING)
    mask_prob: float | None = setting(
        None, "fraction of tokens masked for training at the start (default: 0.5 from random weights, 0.15 "
              "continuing a checkpoint; held-out MLM is always measured at 0.15)", group=MASKING, metavar="P")
    final_mask_prob: float | None = setting(
        None, "masking rate at the end, reached linearly from --mask-prob (default: 0.25 from random weights; "
              "--mask-prob throughout when that is given or continuing a checkpoint)",
        group=MASKING, metavar="P")
    half_length_fraction: float | None = setting(
        None, "share of the steps, from the start, that train on each sequence cut in two (half the length, twice "
              "the rows, the same tokens a step; MLM only): attention learns to use the neighbouring words sooner "
              "among fewer positions (default: 0.2 from random weights on MLM-only data, else 0)", group=MASKING,
        metavar="F")
    half_length_max_tokens: int = setting(
        5_000_000, "the cut in two ends after this many tokens if --half-length-fraction has not ended it: the "
                   "4M tokens it lasted in the runs measured, so a long run is not held at half length for a fifth "
                   "of it", group=MASKING, metavar="N")
    max_predictions_per_seq: int | None = setting(
        None, "cap on masked tokens per sequence (default: what the highest masking rate needs, 20 of 128 tokens "
              "at 0.15)", group=MASKING, metavar="N")
    log_every: int = setting(10, "steps per metrics.jsonl train line", group=RUN, metavar="N")
    threads: int | None = setting(None, "CPU threads per process (default: cores / processes)", group=RUN,
                                  metavar="N", free_on_resume=True)
    dropout: float | None = setting(
        None, "hidden and attention dropout (default: 0 from random weights — short runs learn faster without; "
              "the checkpoint's continuing one)", group=OPTIMISATION, metavar="P")
    probe: list[str] | None = setting(
        None, "a sentence with the mask token whose top answers are printed and logged at every evaluation (repeat "
              "the flag for more; default: a few English ones, see bert.pretraining.probes)", group=RUN,
        metavar="TEXT", free_on_resume=True)
    model_overrides: dict[str, Any] | None = setting(
        None, 'further fields of the model config, as JSON, e.g. \'{"hidden_dropout_prob": 0.0}\' (--dropout wins)')

    def validate(self) -> None:
        """BertError for settings that cannot work, before anything is loaded."""
        if self.init_from is not None and self.config is not None:
            raise BertError("--config and --init-from together: the architecture comes from the checkpoint "
                            "(only --dropout can change it); drop --config")
        if self.max_steps is None and self.time_budget is None:
            raise BertError("give --max-steps or --time-budget (or both): training needs to know when to stop")
        checks = [
            (self.patience is None, "--patience: pretraining keeps no best model to be patient for"),
            (self.head_lr is None or self.head_lr > 0, "--head-lr must be positive"),
            (self.objective in (None, "mlm+nsp", "mlm+sop", "mlm"), "--objective must be mlm+nsp, mlm+sop or mlm"),
            (self.position_init in (None, *POSITION_INITS),
             f"--position-init must be one of {', '.join(POSITION_INITS)}"),
            (self.position_init is None or self.init_from is None,
             "--position-init is for random weights: a checkpoint (--init-from) brings its own position table"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.eval_batches >= 0, "--eval-batches must be >= 0"),
            (self.log_every > 0, "--log-every must be positive"),
            (self.mask_prob is None or 0.0 < self.mask_prob <= 1.0, "--mask-prob must be in (0, 1]"),
            (self.final_mask_prob is None or 0.0 < self.final_mask_prob <= 1.0, "--final-mask-prob must be in (0, 1]"),
            (self.dropout is None or 0.0 <= self.dropout < 1.0, "--dropout must be in [0, 1)"),
            (self.half_length_fraction is None or 0.0 <= self.half_length_fraction < 1.0,
             "--half-length-fraction must be in [0, 1)"),
            (self.half_length_max_tokens >= 0, "--half-length-max-tokens must be >= 0"),
            (self.max_predictions_per_seq is None or self.max_predictions_per_seq > 0,
             "--max-predictions-per-seq must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise BertError(message)
        super().validate()

    def mask_rate(self, progress: float) -> float:
        """The training masking rate at ``progress`` (0 → 1) through the run: ``mask_prob``, moving linearly to
        ``final_mask_prob`` when one is set."""
        if self.final_mask_prob is None:
            return self.mask_prob
        done = min(max(progress, 0.0), 1.0)
        return self.mask_prob * (1 - done) + self.final_mask_prob * done  # exactly the two rates at the ends

    def model_changes(self) -> dict[str, Any] | None:
        """The fields of the model config that this run changes: ``model_overrides``, then ``dropout``."""
        if self.dropout is None:
            return self.model_overrides
        return {**(self.model_overrides or {}), "hidden_dropout_prob": self.dropout,
                "attention_probs_dropout_prob": self.dropout}

    def fixed_on_resume(self) -> dict[str, Any]:
        """What a resumed run must share with its checkpoint (see :func:`bert.settings.fixed_on_resume`)."""
        return fixed_on_resume(self, paths=("data", "config", "init_from"))

    def to_dict(self) -> dict[str, Any]:
        return settings_dict(self)
