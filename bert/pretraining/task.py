"""Pretraining as a task of the engine: :func:`pretrain` (the Python API behind ``bert pretrain``).

What is trained: the model type's pretraining class
(:func:`~bert.pretraining.model_choice.pretraining_model_class`), from random weights or a checkpoint
(``init_from``), through :class:`~bert.pretraining.loss.PretrainingObjective` — the masked-only MLM loss plus the
sentence objective's (NSP or SOP), whose sums are divided by the global batch's masked-token and example counts. Its
batches: :class:`~bert.pretraining.batches.DataOrder` cuts the shuffled training split into global batches of
``batch_size × processes × grad_accum`` examples; each process reads and masks its rows of each micro-batch
(:func:`~bert.pretraining.batches.masked_rows`). Its evaluation: held-out MLM loss/accuracy and the sentence objective's
accuracy on the first ``eval_batches × batch_size`` eval examples, masked the same way every time
(:mod:`bert.pretraining.evaluate`). What it leaves: ``OUT/final/`` (model + the data's tokenizer, swapped in
atomically).

Everything else — the step, schedule, logs, checkpoints, resume, Ctrl-C, device, bf16/fp16, compile, DDP — is the
engine's (:mod:`bert.engine.loop`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bert.atomic import check_writable_directory, replace_folder_atomically
from bert.data.dataset import PretrainingDataset
from bert.data.masking import MaskingCollator
from bert.data.plateau import on_plateau, plateau_note, unigram_stats
from bert.data.prepare import load_meta
from bert.engine.checkpointing import refuse_overwrite, resumes, seed_everything
from bert.engine.distributed import World, set_threads
from bert.engine.flops import training_flops_per_token
from bert.engine.loop import run_task
from bert.engine.metrics import peak_memory_gb
from bert.engine.optim import build_optimizer
from bert.engine.task import Batch, Outcome, Task
from bert.errors import BertError
from bert.heads import IGNORE_INDEX
from bert.plotting import Panel, Series
from bert.pretrained import PreTrainedModel
from bert.pretraining.batches import DataOrder, masked_rows, microbatches
from bert.pretraining.config import PretrainConfig
from bert.pretraining.evaluate import EVAL_MLM_PROBABILITY, eval_collator, evaluate
from bert.pretraining.init_from import InitCheckpoint, fresh_heads_note
from bert.pretraining.loss import SENTENCE_OBJECTIVES, STAT_NAMES, PretrainingObjective, pretraining_heads, summarize
from bert.pretraining.model_choice import (
    build_model_config,
    check_model_objective,
    config_model_type,
    data_tokenizer,
    pretraining_model_class,
    training_objective,
)
from bert.pretraining.probes import answer_probes, probe_lines, probe_texts
from bert.pretraining.recipe import (
    CONTINUED,
    FROM_SCRATCH,
    POSITION_CODE_SCALE,
    Recipe,
    fill_in,
    recipe_note,
    sinusoidal_positions_,
)
from bert.variants.auto import model_type_of


def pretrain(config: PretrainConfig) -> Path:
    """Pretrain a model as ``config`` says; returns ``OUT/final`` (model + tokenizer files).

    Under torchrun every process calls this; the returned path is the same on all of them.
    """
    config.validate()
    return run_task(lambda world: PretrainingTask(config, world), config, config.out)


def pretraining_panels(events: list[dict[str, Any]], unigram: dict[str, Any] | None = None) -> list[Panel]:
    """curves.png of a pretraining run: MLM loss, MLM accuracy and (when the run trains one, i.e. its events carry
    it) the sentence objective's accuracy, NSP or SOP, train and eval, against the step; with ``unigram`` (see
    :mod:`bert.data.plateau`) the frequent-word plateau's held-out loss and accuracy as dashed lines."""
    keys = [("mlm_loss", "MLM loss"), ("mlm_accuracy", "MLM accuracy")]
    keys += [(f"{sentence}_accuracy", f"{sentence.upper()} accuracy") for sentence in ("nsp", "sop")
             if any(f"{sentence}_accuracy" in e for e in events)]  # none in an MLM-only run
    levels = {key: [(unigram[f"plateau_{key[4:]}"], "frequent-word plateau")]
              for key in ("mlm_loss", "mlm_accuracy") if unigram and f"plateau_{key[4:]}" in unigram}
    return [Panel(title, key.rpartition("_")[2], [Series("train", key, "train"), Series("eval", key, "eval", "o-")],
                  levels=levels.get(key, ())) for key, title in keys]


class PretrainingTask(Task):
    """Masked LM (+ NSP or SOP) on data written by ``bert prepare``; use :func:`pretrain` rather than this class.

    A subclass (:class:`bert.pretraining.distill.DistillationTask`) changes where the weights come from
    (:meth:`_init_checkpoint`, :meth:`_start_note`) and what the step computes (:meth:`objective` and the rest of
    the task's contract)."""

    name = "pretrain"
    stat_names = STAT_NAMES

    def __init__(self, config: PretrainConfig, world: World) -> None:
        self.config, self.world = config, world
        self.data_dir, self.out = Path(config.data), Path(config.out)
        set_threads(world, config.threads)
        self._load_data()
        self.init: InitCheckpoint | None = self._init_checkpoint()  # checked before anything is written
        model_type = model_type_of(self.init.config) if self.init else config_model_type(config.config or "mini")
        self.model_class = pretraining_model_class(model_type)
        check_model_objective(model_type, self.model_class, self.objective_name)
        self.tokenizer = data_tokenizer(model_type, self.data_dir / "tokenizer", self.data_dir)
        resuming = resumes(self.out, config.resume)
        init_state = None
        if self.init is not None:
            self.init.check_vocabulary(self.tokenizer, self.data_dir)
            if not resuming:  # a resumed run continues from its own checkpoint, not from the initial weights
                init_state = self.init.read_weights()
        self._check_out()
        if config.half_length_fraction and self.sentence_objective is not None:
            raise BertError(f"--half-length-fraction cuts sequences in two, which {self.objective_name}'s sentence "
                            "pairs cannot be: use it with MLM-only data or --objective mlm")
        self.config = config = fill_in(config, self.recipe(), self._hidden_size(), world.native_bf16,
                                       mlm_only=self.sentence_objective is None)
        self._make_collators()
        self.probes = probe_texts(config.probe, self.tokenizer)
        self.model = self._build_model(init_state)
        self.evaluate_at_start = self.init is not None  # the starting point: did continuing to train help?
        self.per_step = config.batch_size * world.world_size * config.grad_accum
        self.order = DataOrder(len(self.train_data), self.per_step, config.seed)

    # ---- setup -------------------------------------------------------------------------------------------------
    def _load_data(self) -> None:
        meta = load_meta(self.data_dir)
        self.train_data = PretrainingDataset(self.data_dir / "train")
        eval_dir = self.data_dir / "eval"
        eval_data = PretrainingDataset(eval_dir) if (eval_dir / "input_ids.npy").is_file() else None
        self.eval_data = eval_data if eval_data is not None and len(eval_data) > 0 else None
        self.seq_len = self.train_data.max_seq_len
        self.row_len = self.seq_len  # the training rows' length now: half of it while sequences are cut in two
        self.objective_name = training_objective(self.config.objective, meta.get("objective", "mlm+nsp"),
                                                 self.data_dir)
        self.sentence_objective = SENTENCE_OBJECTIVES[self.objective_name]  # "nsp", "sop"; None: MLM only
        # the frequent-word plateau's height (bert.data.plateau): from meta.json, or counted now for older data
        self.unigram = meta.get("unigram") or unigram_stats(self.train_data.input_ids, meta["vocab_size"],
                                                            meta.get("special_token_ids", {}).values())
        self.left_plateau: tuple[int, int] | None = None  # (step, tokens) of the first evaluation past it

    def recipe(self) -> Recipe:
        """The defaults of the settings left unset (see :mod:`bert.pretraining.recipe`)."""
        return FROM_SCRATCH if self.init is None else CONTINUED

    def start_note(self) -> str:
        return recipe_note(self.config, self.recipe())

    def _hidden_size(self) -> int:
        if self.init is not None:
            return self.init.config.hidden_size
        return build_model_config(self.config.config or "mini", len(self.tokenizer.get_vocab()),
                                  self.tokenizer.pad_token_id, self.config.model_overrides).hidden_size

    def _check_out(self) -> None:
        if self.world.is_main:
            check_writable_directory(self.out, "run folder")
            refuse_overwrite(self.out, self.config.resume)
        self.world.barrier()

    def _make_collators(self) -> None:
        cfg = self.config
        highest = max(cfg.mask_prob, cfg.final_mask_prob)
        self.predictions_cap = self._cap(cfg.mask_prob)
        self.collator = MaskingCollator.from_tokenizer(
            self.tokenizer, seed=cfg.seed + 1, whole_word_masking=cfg.whole_word_masking,
            mlm_probability=cfg.mask_prob, max_predictions_per_seq=self.predictions_cap)
        self.eval_collator = eval_collator(self.tokenizer, self.seq_len, cfg.whole_word_masking)
        wanted = round(highest * (self.seq_len - 3))
        if cfg.max_predictions_per_seq is not None and cfg.max_predictions_per_seq < wanted:
            self.note(f"--max-predictions-per-seq {cfg.max_predictions_per_seq} caps the masking: a full "
                      f"{self.seq_len}-token sequence masks {cfg.max_predictions_per_seq} tokens, not the "
                      f"{wanted} that masking {highest:g} asks for")

    def _build_model(self, init_state: dict[str, torch.Tensor] | None) -> PreTrainedModel:
        """The model, seeded, with the initial weights loaded; MLM-only runs freeze the pooler and sentence head."""
        cfg = self.config
        model_config = self.init.config if self.init is not None else build_model_config(
            cfg.config or "mini", self.collator.vocab_size, self.tokenizer.pad_token_id, cfg.model_changes())
        seed_everything(cfg.seed)
        model = self.model_class(model_config)
        model.base_model.pack_bucket = self.seq_len  # a few packed sizes in a whole run (see bert.model.Padding)
        positions = model.base_model.embeddings.max_length()  # RoBERTa's table also holds its padding offset
        if positions < self.seq_len:
            raise BertError(f"the data has sequences of {self.seq_len} tokens but the model only {positions} positions")
        if self.init is not None and init_state is not None:
            self.note(self._start_note(fresh_heads_note(self.init.load_into(model, init_state))))
        if cfg.position_init == "sinusoidal" and self.init is None:  # a resumed run then loads its own table
            sinusoidal_positions_(model.base_model.embeddings.position_embeddings,
                                  POSITION_CODE_SCALE * model_config.initializer_range)
        sentence_head = pretraining_heads(model).sentence
        if self.sentence_objective is None and sentence_head is not None:
            # MLM only: the pooler and sentence head get no gradient; leave them as they are
            for parameter in [*model.base_model.pooler.parameters(), *sentence_head.parameters()]:
                parameter.requires_grad_(False)
        return model

    def _init_checkpoint(self) -> InitCheckpoint | None:
        """The checkpoint whose weights the model starts from (None: random weights), before anything is written."""
        if self.config.init_from is None:
            return None
        return InitCheckpoint.resolve(self.config.init_from, self.config.model_changes())

    def _start_note(self, fresh: str | None) -> str:
        """The log line saying where the weights come from (``fresh``: what the checkpoint lacked, or None)."""
        assert self.init is not None
        return f"continuing pretraining from {self.init.folder}" + (f"; {fresh}" if fresh else "")

    # ---- what is trained ---------------------------------------------------------------------------------------
    def objective(self) -> nn.Module:
        """The module that turns a masked batch into loss sums (see :mod:`bert.pretraining.loss`)."""
        if not hasattr(self, "_objective"):
            self._objective = PretrainingObjective(self.model, self.sentence_objective, self.predictions_cap)
        return self._objective

    @property
    def log_every(self) -> int:
        return self.config.log_every

    def flops_per_token(self) -> float:
        """BERT's count (:func:`~bert.engine.flops.training_flops_per_token`), the MLM head on the rows it scores:
        the masking's cap per sequence (a fixed block, see :mod:`bert.pretraining.loss`)."""
        return training_flops_per_token(self.model.config, self.row_len, self.predictions_cap / self.row_len)

    def make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        head_lr_scale = cfg.head_lr / cfg.lr if cfg.head_lr is not None else 1.0
        return build_optimizer(self.model, cfg.optimizer, cfg.lr, cfg.weight_decay, head_lr_scale)

    # ---- batches -----------------------------------------------------------------------------------------------
    def _cap(self, rate: float) -> int:
        """Masked tokens per sequence at most: ``max_predictions_per_seq``, or by default just what ``rate`` needs
        (20 of 128 tokens at 0.15, as google-research/bert), and never fewer than the evaluation's 0.15 needs. The
        MLM head scores that many rows per sequence, a fixed block (see :mod:`bert.pretraining.loss`)."""
        if self.config.max_predictions_per_seq is not None:
            return self.config.max_predictions_per_seq
        return math.ceil(max(rate, EVAL_MLM_PROBABILITY) * self.row_len)

    def next_step(self, progress: float) -> tuple[list[Batch], bool]:
        rate = self.config.mask_rate(progress)  # constant unless the masking rate moves (--final-mask-prob)
        # sequences cut in two at first (--half-length-fraction, --half-length-max-tokens): the same tokens in rows
        # of half the length
        halves = (progress < (self.config.half_length_fraction or 0.0)
                  and self.position()["tokens"] < self.config.half_length_max_tokens)
        self.row_len = math.ceil(self.seq_len / 2) if halves else self.seq_len
        # the MLM head's rows follow the rate: a 50% → 25% schedule scores 64 → 32 rows of a 128-token sequence
        self.predictions_cap = self.objective().predictions_per_example = self._cap(rate)
        self.collator.mlm_probability, self.collator.max_predictions_per_seq = rate, self.predictions_cap
        indices = self.order.next_step()
        return [masked_rows(self.train_data, self.collator, chunk, self.world.rank, self.world.world_size, halves)
                for chunk in microbatches(indices, self.config.grad_accum)], False

    def probe_batch(self) -> Batch:
        rows = torch.arange(min(self.config.batch_size, len(self.train_data)))
        return MaskingCollator.from_tokenizer(self.tokenizer, seed=0)(self.train_data.batch(rows.tolist()))

    def eval_seconds(self, pass_seconds: float) -> float:
        if self.eval_data is None:
            return 0.0
        batches = min(self.config.eval_batches, math.ceil(len(self.eval_data) / self.config.batch_size))
        return batches * pass_seconds / 3  # a forward pass is about a third of forward + backward

    def position(self) -> dict[str, Any]:
        """Input tokens read so far (padding included, all processes), the last step's masking rate and its rows'
        length."""
        steps_per_epoch = self.order.num_examples // self.per_step
        steps = self.order.epoch * steps_per_epoch + self.order.index // self.per_step
        return {"tokens": self.tokens_seen(steps), "mask_prob": self.collator.mlm_probability,
                "seq_len": self.row_len}

    def data_state(self) -> dict[str, Any]:
        return {"epoch": self.order.epoch, "index": self.order.index,
                "data_order_generator": self.order.epoch_start_state,
                "masking_generator": self.collator.generator.get_state()}

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.order.restore(state["epoch"], state["index"], state["data_order_generator"])
        self.collator.load_state_dict({"generator_state": state["masking_generator"]})

    # ---- the loss ----------------------------------------------------------------------------------------------
    def normalizers(self, batches: Sequence[Batch]) -> list[dict[str, Any]]:
        """The global batch's masked tokens and examples (summed over processes): every micro-batch's loss sums
        are divided by these, so accumulation and DDP give the gradient of the mean loss over the global batch."""
        totals = torch.tensor([float(sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in batches)),
                               float(sum(len(b["next_sentence_label"]) for b in batches))], dtype=torch.float64)
        self.world.all_reduce_sum(totals)
        every = {"mlm_normalizer": max(totals[0].item(), 1.0), "nsp_normalizer": max(totals[1].item(), 1.0)}
        return [every] * len(batches)

    def forward(self, module: nn.Module, batch: Batch, normalizers: dict[str, Any]) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
        out = module(**batch, **normalizers)
        return out.loss, out.stats()

    def summarize(self, stats: torch.Tensor) -> dict[str, float]:
        return summarize(stats, self.sentence_objective)

    def postfix(self, summary: dict[str, float]) -> dict[str, str]:
        return {"mlm_loss": f"{summary['mlm_loss']:.3f}"}

    # ---- evaluation and files ----------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any] | None:
        """Held-out MLM loss/accuracy (and NSP or SOP accuracy), see :mod:`bert.pretraining.evaluate`."""
        if self.eval_data is None or self.config.eval_batches == 0:
            return None
        metrics = evaluate(self.objective(), self.eval_data, self.eval_collator, self.config.batch_size,
                           self.config.eval_batches * self.config.batch_size, device=self.world.device)
        return {**metrics, "on_plateau": on_plateau(metrics["mlm_accuracy"], self.unigram),
                "probes": answer_probes(self.model, self.tokenizer, self.probes)}

    def tokens_seen(self, step: int) -> int:
        """Input tokens (padding included) the first ``step`` optimizer steps read, over all processes."""
        return step * self.per_step * self.seq_len

    def eval_message(self, step: int, metrics: dict[str, Any], best_so_far: bool) -> str:
        sentence = self.sentence_objective
        accuracy = f"{sentence}_accuracy"
        lines = [f"step {step} ({self.tokens_seen(step) / 1e6:.1f}M tokens): eval MLM loss {metrics['mlm_loss']:.4f}, "
                 f"MLM accuracy {metrics['mlm_accuracy']:.3f}"
                 + (f", {sentence.upper()} accuracy {metrics[accuracy]:.3f}" if accuracy in metrics else "")]
        if metrics.get("on_plateau") is False and self.left_plateau is None:
            self.left_plateau = (step, self.tokens_seen(step))
        top = self.tokenizer.convert_ids_to_tokens(self.unigram["top_id"]) if "top_id" in self.unigram else "?"
        note = plateau_note(step, self.tokens_seen(step), metrics["mlm_loss"], metrics["mlm_accuracy"],
                            self.unigram, top, self.left_plateau)
        return "\n".join([*lines, *([note] if note else []), *probe_lines(metrics.get("probes", []))])

    def panels(self, events: list[dict[str, Any]], best_step: int | None) -> Sequence[Panel]:
        return pretraining_panels(events, self.unigram)

    def finish(self, outcome: Outcome) -> Path:
        """Interrupted: say how to resume and raise KeyboardInterrupt; else ``OUT/final``: save_pretrained + the
        data's tokenizer, swapped in atomically. The tokenizer is saved as the model's family (a DistilBERT's says
        DistilBertTokenizer: transformers then gives it no token_type_ids)."""
        if outcome.interrupted:
            if not outcome.aborted:
                self.note(f"interrupted at step {outcome.step}; saved {outcome.checkpoint}. To continue, run the "
                          "same command with --resume")
            raise KeyboardInterrupt
        final = self.out / "final"
        if self.world.is_main:
            replace_folder_atomically(final, lambda tmp: self.save_model(tmp))
            peak = peak_memory_gb(self.world.device)  # a GPU's own memory on CUDA
            memory = f", peak memory {peak:.2f} GB" if peak is not None else ""
            self.note(f"done: {outcome.step} steps{memory}; model and tokenizer in {final}")
        self.world.barrier()
        return final
