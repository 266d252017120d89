"""The pretraining loss, computed where it matters: MLM logits only for the masked positions.

The models it trains (see :func:`pretraining_heads`): ``BertForPreTraining`` (MLM + its two-way sentence head, for
next-sentence or sentence-order labels), ``AlbertForPreTraining`` (MLM + sentence order) and the masked-LM models
of RoBERTa and DistilBERT (MLM only). The sentence objective's metrics carry its name: ``nsp_*`` or ``sop_*``.

``BertForPreTraining.forward`` scores every vocabulary word at every position ([B, T, V] logits) and then throws
away all but the ~15% of positions that carry a label. At V = 30522 that decoder matmul is the single biggest
cost of a small BERT. :func:`masked_rows` gathers the hidden states of the labelled positions first ([M, H],
M = number of masked tokens) and the MLM head runs on those rows only ([M, V]; :func:`masked_lm_logits`).
Cross-entropy averaged over the M rows is exactly the loss of the full-logits path (tested). In training, the
head's per-word bias is added by the loss (:func:`cross_entropy_sums_`), block by block.

:class:`PretrainingObjective` wraps the model so the whole computation (encoder + both heads + loss sums) is one
``forward``: that is what DistributedDataParallel needs to wrap, and it lets the caller choose the normaliser
(the number of masked tokens in the *whole* global batch), so that gradient accumulation and multi-process
training give the same gradients as one big batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bert.heads import IGNORE_INDEX, BertForPreTraining
from bert.pretrained import PreTrainedModel
from bert.variants.albert import AlbertForPreTraining

# The sentence objective of each data objective (None: masked-LM alone); it names the metrics (nsp_loss, sop_accuracy).
SENTENCE_OBJECTIVES: dict[str, str | None] = {"mlm+nsp": "nsp", "mlm+sop": "sop", "mlm": None}


class PretrainingHeads(NamedTuple):
    """A pretraining model's heads: ``mlm`` [..., H] → [..., V], the MLM head's logits; ``word_scores`` the same
    before the head's per-word bias ``mlm_bias`` [V], which the loss adds in its own blocks (a head that adds no
    separate bias: ``mlm`` and None); ``sentence`` the two-way sentence-pair classifier on the pooled first token
    [B, H] → [B, 2] (None for masked-LM models)."""

    mlm: Callable[[torch.Tensor], torch.Tensor]
    word_scores: Callable[[torch.Tensor], torch.Tensor]
    mlm_bias: nn.Parameter | None
    sentence: nn.Module | None


def pretraining_heads(model: PreTrainedModel) -> PretrainingHeads:
    """The heads of a BertForPreTraining, an AlbertForPreTraining or a ``*ForMaskedLM`` model (MLM only)."""
    if isinstance(model, AlbertForPreTraining):  # first: it is a BertForPreTraining with other heads
        sentence = model.sop_classifier
    elif isinstance(model, BertForPreTraining):
        sentence = model.cls.seq_relationship
    else:
        sentence = None
    # The MLM head is the module holding the tied decoder; one with ``word_scores`` keeps its per-word bias apart
    # (BERT's, ALBERT's, RoBERTa's), DistilBERT's decoder sits on the model itself with the bias inside it.
    head = model.get_submodule(model.tied_decoder.removesuffix(".weight").rpartition(".")[0])
    if hasattr(head, "word_scores"):
        return PretrainingHeads(model.mlm_logits, head.word_scores, head.bias, sentence)
    return PretrainingHeads(model.mlm_logits, model.mlm_logits, None, sentence)


def sentence_objectives(model_class: type[PreTrainedModel]) -> tuple[str, ...]:
    """The sentence objectives a pretraining model class trains: BERT's two-way layer learns next-sentence or
    sentence-order labels, ALBERT's head sentence order (its pretraining objective); masked-LM models none."""
    if issubclass(model_class, AlbertForPreTraining):  # first: it is a BertForPreTraining subclass
        return ("sop",)
    if issubclass(model_class, BertForPreTraining):
        return ("nsp", "sop")
    return ()


def masked_rows(hidden_states: torch.Tensor, labels: torch.Tensor,
                rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The hidden states of the labelled positions and their targets.

    hidden_states [B, T, H] (the encoder's last layer), labels [B, T] (-100 = not masked).
    Returns [M, H] and targets [M], M = (labels != -100).sum(); with ``rows`` (≥ M: the most a batch can mask),
    [rows, H] and targets [rows], the rows past M position 0's with target -100 (which the loss and the accuracy
    ignore). Why a fixed count: the [M, V] logits made from them and their gradient are the largest tensors of a
    small BERT's step, and a size that changes every step fragments glibc's heap — a pretraining process grew by
    ~1 GB per 1,000 steps (docs/experiments/2026-12-06-from-scratch.md).
    """
    selected = labels != IGNORE_INDEX  # [B, T]
    if rows is None:
        return hidden_states[selected], labels[selected]  # [M, H], [M]
    positions = selected.flatten().nonzero().squeeze(1)  # [M]
    if positions.numel() > rows:
        raise ValueError(f"{positions.numel()} masked positions, more than the {rows} rows asked for")
    padding = rows - positions.numel()
    positions = torch.cat([positions, positions.new_zeros(padding)])  # [rows]
    targets = torch.cat([labels.flatten()[positions[:rows - padding]], labels.new_full((padding,), IGNORE_INDEX)])
    return hidden_states.flatten(0, 1)[positions], targets


def masked_lm_logits(model: PreTrainedModel, hidden_states: torch.Tensor, labels: torch.Tensor,
                     rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the MLM head on the labelled positions only (:func:`masked_rows`): logits [M, V] (or [rows, V]) and their
    targets."""
    hidden, targets = masked_rows(hidden_states, labels, rows)
    return pretraining_heads(model).mlm(hidden), targets


ROW_BLOCK = 32  # logits rows worked on at a time: [32, V] in float32 is 1 MB at V = 8192, small enough for cache


class _BlockedCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy and the rows whose target scores highest, one block of rows at a time, the per-word bias
    added and the gradient ``(softmax - one_hot) × grad_scale`` made in the same pass, written over the logits and
    summed into the bias's gradient (see :func:`cross_entropy_sums_`).

    Why: on a small BERT the [M, V] logits are the largest tensors of the step (2,048 × 8,192 at a 50% masking
    rate), and each operator of a bias add + ``F.cross_entropy`` + ``argmax`` (the bias add, float32 cast,
    log-softmax, the loss's zero-filled gradient, log-softmax backward, argmax, the cast back, the bias's gradient)
    reads or writes all of them from memory: on a CPU whose matmuls run in AMX they took a third of a training step
    (docs/experiments/2026-12-07-amx.md, docs/experiments/2026-12-08-step.md). Here each [32, V] block is read once
    and worked on while it is in cache, and backward has nothing left to do.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, grad_scale: float,
                bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        rows, vocab = logits.shape
        keep = targets != IGNORE_INDEX  # [M]
        picked = targets.clamp(min=0).unsqueeze(1)  # [M, 1]; an ignored row reads column 0 and counts for nothing
        grad = logits.detach() if ctx.needs_input_grad[0] else None  # [M, V]: the logits' memory, overwritten
        bias32 = None if bias is None else bias.detach().float()  # [V]
        grad_bias = logits.new_zeros(vocab, dtype=torch.float32) if ctx.needs_input_grad[3] else None  # [V]
        losses = logits.new_empty(rows, dtype=torch.float32)  # [M]
        hits = torch.empty(rows, dtype=torch.bool, device=logits.device)  # [M]
        work = logits.new_empty(min(ROW_BLOCK, rows), vocab, dtype=torch.float32)  # [b, V], reused
        for start in range(0, rows, ROW_BLOCK):
            block = slice(start, min(start + ROW_BLOCK, rows))
            x = work[: block.stop - start].copy_(logits[block])  # [b, V] float32
            if bias32 is not None:
                x.add_(bias32)
            x.sub_(x.amax(1, keepdim=True))  # the top score becomes 0, so exp cannot overflow
            target = x.gather(1, picked[block]).squeeze(1)  # [b]
            hits[block] = target == 0  # the target scores highest (a tie counts as a hit)
            total = x.exp_().sum(1)  # [b]
            losses[block] = total.log() - target  # -log softmax at the target
            if grad is not None or grad_bias is not None:  # softmax - one_hot, times grad_scale; ignored rows 0
                x.div_(total.unsqueeze(1)).scatter_add_(1, picked[block], x.new_full(picked[block].shape, -1.0))
                x.mul_(keep[block].unsqueeze(1) * grad_scale)
                if grad is not None:
                    grad[block] = x
                if grad_bias is not None:
                    grad_bias += x.sum(0)
        ctx.grads, ctx.grad_scale = (grad, grad_bias), grad_scale
        correct = (hits & keep).sum()
        ctx.mark_non_differentiable(correct)
        return losses.where(keep, 0.0).sum(), correct

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor,
                 _: torch.Tensor) -> tuple[torch.Tensor | None, None, None, torch.Tensor | None]:
        (grad, grad_bias), ctx.grads = ctx.grads, None
        ratio = grad_loss.item() / ctx.grad_scale  # 1 but for float32 round-off when the loss was used as planned
        if not math.isclose(ratio, 1.0, rel_tol=1e-6):
            grad, grad_bias = (None if g is None else g.mul_(ratio) for g in (grad, grad_bias))
        return grad, None, None, grad_bias


def cross_entropy_sums_(logits: torch.Tensor, targets: torch.Tensor, grad_scale: float = 1.0,
                        bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The summed cross-entropy of ``logits + bias`` ([M, V], bias [V] or None) against ``targets`` [M] (-100:
    ignored) in float32, and the number of rows whose target scores highest (0-dim, not differentiable): the sums
    of ``F.cross_entropy((logits + bias).float(), targets, reduction="sum")`` and
    ``((logits + bias).argmax(-1) == targets).sum()`` (but that a tie for the top score counts as a hit, where
    ``argmax`` picks the first).

    In place, as the trailing ``_`` says: when the logits need a gradient, on a CPU, their memory is overwritten with
    it, so do not read them afterwards (their producer, the decoder's matmul, does not need them for its backward;
    one that did would fail loudly on autograd's version check). The bias is added in float32, block by block, and
    its gradient summed there too: a bias added beforehand is one more pass over the [M, V] logits, and its gradient
    another. ``grad_scale``: the factor the loss will be multiplied by before backward (1 / the normaliser); given,
    the gradient is scaled while it is made. Elsewhere (CUDA, compiled code, which fuse these operators themselves)
    it is the plain ``F.cross_entropy`` + ``argmax``. Tested against both."""
    if torch.compiler.is_compiling() or logits.device.type != "cpu":
        logits = logits.float() if bias is None else logits.float() + bias.float()
        return (F.cross_entropy(logits, targets, reduction="sum", ignore_index=IGNORE_INDEX),
                (logits.argmax(-1) == targets).sum())
    return _BlockedCrossEntropy.apply(logits, targets, grad_scale, bias)


@dataclass
class LossSums:
    """Per-batch *sums* (not means), so that batches and processes combine exactly by adding them up.

    ``loss`` is the differentiable objective, already divided by the normalisers the caller passed in. The
    ``nsp_*`` sums are those of the sentence objective, whichever it is (NSP or SOP; :func:`summarize` names it).
    """

    loss: torch.Tensor
    mlm_loss_sum: torch.Tensor
    mlm_correct: torch.Tensor
    mlm_count: torch.Tensor
    nsp_loss_sum: torch.Tensor
    nsp_correct: torch.Tensor
    nsp_count: torch.Tensor

    def stats(self) -> torch.Tensor:
        """The six detached sums as one float64 vector (one all-reduce moves them all)."""
        return torch.stack([t.detach().double() for t in (self.mlm_loss_sum, self.mlm_correct, self.mlm_count,
                                                           self.nsp_loss_sum, self.nsp_correct, self.nsp_count)])


STAT_NAMES = ("mlm_loss_sum", "mlm_correct", "mlm_count", "nsp_loss_sum", "nsp_correct", "nsp_count")


def summarize(stats: torch.Tensor, sentence: str | None = "nsp") -> dict[str, float]:
    """Turn summed stats (see :meth:`LossSums.stats`) into mlm_loss, mlm_accuracy and the sentence objective's
    ``{sentence}_loss``, ``{sentence}_accuracy`` (nsp_* or sop_*; only when it was trained: MLM-only runs have none)."""
    s = dict(zip(STAT_NAMES, stats.tolist(), strict=True))
    mlm, pairs = max(s["mlm_count"], 1.0), s["nsp_count"]
    result = {"mlm_loss": s["mlm_loss_sum"] / mlm, "mlm_accuracy": s["mlm_correct"] / mlm}
    if pairs and sentence is not None:
        result.update({f"{sentence}_loss": s["nsp_loss_sum"] / pairs,
                       f"{sentence}_accuracy": s["nsp_correct"] / pairs})
    return result


class PretrainingObjective(nn.Module):
    """A pretraining model (see :func:`pretraining_heads`) + the masked-only MLM loss + the sentence objective's loss,
    as one module (DDP wraps this).

    ``sentence`` "nsp" or "sop" trains the model's sentence head on the batch's ``next_sentence_label`` (next-sentence
    or sentence-order labels; which one only names the metrics); None (MLM only) leaves that loss out: its sums are
    0 and the labels are ignored. A model with a single token type (RoBERTa) or none (DistilBERT) reads no
    ``token_type_ids``.

    ``forward(batch, mlm_normalizer, nsp_normalizer)`` returns :class:`LossSums` whose ``loss`` is
    ``mlm_loss_sum / mlm_normalizer + nsp_loss_sum / nsp_normalizer``. With the normalisers set to the global
    batch's masked-token and example counts, summing the gradients of every micro-batch on every process gives the
    gradient of the mean loss over the global batch (DDP *averages* over processes, so multiply the loss by the
    world size before backward).
    """

    def __init__(self, model: PreTrainedModel, sentence: str | None = "nsp",
                 predictions_per_example: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.sentence = sentence
        self.predictions_per_example = predictions_per_example  # the masking's cap: logits of a fixed size
        self.heads = pretraining_heads(model)
        if sentence is not None and sentence not in sentence_objectives(type(model)):
            raise ValueError(f"{type(model).__name__} has no head for the {sentence!r} objective")
        self.segments = model.config.type_vocab_size > 1

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor, next_sentence_label: torch.Tensor,
                mlm_normalizer: float = 1.0, nsp_normalizer: float = 1.0) -> LossSums:
        """All inputs [B, T] but next_sentence_label [B]; labels -100 where a token is not masked."""
        out = self.model.run_encoder(input_ids, token_type_ids if self.segments else None, attention_mask,
                                     False, False)
        cap = self.predictions_per_example
        rows = None if cap is None else cap * labels.shape[0]
        hidden, targets = masked_rows(out.last_hidden_state, labels, rows)  # [rows, H], [rows]
        mlm_sum, mlm_correct = cross_entropy_sums_(self.heads.word_scores(hidden), targets, 1.0 / mlm_normalizer,
                                                   self.heads.mlm_bias)
        mlm_count = (targets != IGNORE_INDEX).sum()
        nsp_targets = next_sentence_label.reshape(-1)
        if self.sentence is not None:
            nsp_logits = self.heads.sentence(out.pooler_output).float()  # [B, 2]
            nsp_sum = F.cross_entropy(nsp_logits, nsp_targets, reduction="sum")
            with torch.no_grad():
                nsp_correct = (nsp_logits.argmax(-1) == nsp_targets).sum()
        else:
            nsp_sum = nsp_correct = torch.zeros((), device=targets.device)
            nsp_targets = nsp_targets[:0]
        return LossSums(
            loss=mlm_sum / mlm_normalizer + nsp_sum / nsp_normalizer,
            mlm_loss_sum=mlm_sum, mlm_correct=mlm_correct, mlm_count=mlm_count,
            nsp_loss_sum=nsp_sum, nsp_correct=nsp_correct, nsp_count=nsp_targets.new_tensor(nsp_targets.numel()))
