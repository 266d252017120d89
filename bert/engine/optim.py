"""Optimizers for pretraining: AdamW (the BERT recipe) and LAMB (You et al., 2019, large-batch BERT).

Both use two parameter groups, as the original BERT code does: weight decay on the weight matrices and embedding
tables, none on biases and LayerNorm parameters (including the embeddings' LayerNorm and the MLM output bias).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from bert.errors import BertError

OPTIMIZERS = ("adamw", "lamb")


def parameter_groups(model: nn.Module, weight_decay: float, head_lr_scale: float = 1.0) -> list[dict]:
    """Split the trainable parameters into [decayed, not decayed].

    Not decayed: every bias (``*.bias``, including ``cls.predictions.bias``) and every LayerNorm weight, found by
    module type, so the variants' names (``sa_layer_norm``, ``full_layer_layer_norm``, ...) count too. A tied
    parameter (decoder = word embeddings) appears once, under its first name. With ``head_lr_scale`` != 1 the
    heads (every parameter outside the encoder: BERT's ``cls.*``, RoBERTa's ``lm_head.*``, ALBERT's ``predictions.*``
    and ``sop_classifier.*``, DistilBERT's ``vocab_*``; not the tied decoder, which is the encoder's word embeddings)
    get two groups of their own whose ``lr_scale`` multiplies the scheduled learning rate (a freshly initialised
    head next to a pretrained encoder).
    """
    encoder = getattr(model, "base_model_prefix", None)
    if head_lr_scale != 1.0 and not isinstance(getattr(model, encoder or "", None), nn.Module):
        raise BertError(f"a separate head learning rate needs a model with heads around an encoder, not "
                        f"{type(model).__name__}")
    groups = {(head, decay): [] for head in (False, True) for decay in (True, False)}
    norms = {id(p) for module in model.modules() if isinstance(module, nn.LayerNorm) for p in module.parameters()}
    for name, parameter in model.named_parameters():  # named_parameters() yields shared parameters once
        if not parameter.requires_grad:
            continue
        head = head_lr_scale != 1.0 and not name.startswith(f"{encoder}.")
        groups[head, not (name.endswith("bias") or id(parameter) in norms)].append(parameter)
    return [{"params": params, "weight_decay": weight_decay if decay else 0.0, "adapt": decay,
             **({"lr_scale": head_lr_scale} if head else {})}
            for (head, decay), params in groups.items() if params or not head]


class Lamb(torch.optim.Optimizer):
    """LAMB: Adam's update direction, rescaled per parameter tensor by a "trust ratio".

    For each parameter tensor p with gradient g (step t, moments m and v as in Adam)::

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g²
        u = m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + weight_decay · p     (Adam direction + decoupled decay)
        r = ||p|| / ||u||   (1 when either norm is 0)                          (the trust ratio)
        p = p - lr · r · u

    The ratio makes every layer move by about ``lr`` times its own norm, whatever its gradient scale, which is
    what lets BERT train with very large batches. As in the reference implementations, groups with
    ``adapt=False`` (biases and LayerNorm, which have no weight decay either) skip the ratio (r = 1).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-6, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "adapt": True})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"].item()
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denominator = (v / (1 - beta2 ** t)).sqrt_().add_(group["eps"])
                update = (m / (1 - beta1 ** t)).div_(denominator)
                if group["weight_decay"]:
                    update.add_(p, alpha=group["weight_decay"])
                ratio = 1.0
                if group.get("adapt", True):
                    weight_norm, update_norm = p.norm().item(), update.norm().item()
                    if weight_norm > 0 and update_norm > 0 and math.isfinite(update_norm):
                        ratio = weight_norm / update_norm
                p.add_(update, alpha=-group["lr"] * ratio)
        return loss


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float,
                    head_lr_scale: float = 1.0) -> torch.optim.Optimizer:
    """AdamW (betas 0.9/0.999, eps 1e-6 as in BERT) or LAMB over :func:`parameter_groups`.

    AdamW uses torch's fused kernel where this torch has one for the parameters' device (CPU since torch 2.4):
    the same update in one pass over memory instead of a dozen, which on CPU makes the step of a small BERT
    (mostly embedding table) noticeably shorter.
    """
    groups = parameter_groups(model, weight_decay, head_lr_scale)
    if name == "adamw":
        for group in groups:
            group.pop("adapt")
        try:
            return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=weight_decay,
                                     fused=True)
        except RuntimeError:  # no fused kernel for this device in this torch
            return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=weight_decay)
    if name == "lamb":
        return Lamb(groups, lr=lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=weight_decay)
    raise BertError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
