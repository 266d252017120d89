"""Inference in float32, int8 and bfloat16 in plain PyTorch: :func:`to_onednn` swaps the encoder's linear layers
for :class:`OneDnnLinear`, :func:`quantize` for :class:`Int8Linear`, :func:`to_bf16` for :class:`Bf16Linear`;
:func:`set_precision` picks one by name (what the inference commands do). These swaps are CPU kernels: on a GPU the
same names cast the whole model instead (float16, bfloat16), and int8 is refused (:func:`check_precision`).

Where the time goes: in BERT's encoder almost all of it is the six matrix multiplies of every layer (query, key,
value, attention output, and the two feed-forward ones). Multiplying 8-bit integers instead of 32-bit floats moves a
quarter of the weight bytes and, on a CPU with AVX512-VNNI, does four times the multiply-adds per instruction.

How one layer computes ``y = x Wᵀ + b`` in int8 (the scheme of LLM.int8 / SmoothQuant without their outlier
handling, which BERT-sized models do not need):

* **weights**, once: per *output channel* ``j``, ``s_w[j] = max|W[j, :]| / 127`` and ``W_q = round(W / s_w)`` —
  symmetric, so zero stays exactly zero and no zero-point enters the matmul;
* **activations**, per call: per *token* ``i`` (row of ``x``), ``s_x[i] = max|x[i, :]| / 127`` and
  ``x_q = round(x / s_x)`` — a token's scale follows its own range (a LayerNorm output's rows differ a lot), and
  scaling rows and columns separately keeps the integer product exact:
  ``y[i, j] ≈ s_x[i] · s_w[j] · Σ_k x_q[i, k] · W_q[j, k] + b[j]``. The query, key and value projections read the
  same hidden state, so it is quantized once for the three (:class:`InputQuantizer`);
* the sum runs in ``int32`` (``torch._int_mm``: oneDNN's VNNI kernel on CPUs that have it), then the two scales and
  the bias are applied in float32.

The word-embedding table is int8 too (:class:`Int8Embedding`, one scale per word): a lookup has no matmul to speed
up, but the table is a third of bert-base's weights and half of MiniLM's, so an int8 checkpoint is about a quarter
of float32's size only with it. An MLM decoder tied to that table (:class:`TiedInt8Decoder`) scores with its
dequantized rows. Position and segment embeddings, LayerNorms, softmax, the pooler and the heads' other layers stay
float32.

bfloat16 keeps float32's exponent range with an 8-bit mantissa (about 3 significant digits), so it needs no scales:
:class:`Bf16Linear` stores its weight in bfloat16 once and multiplies bfloat16 activations, accumulating in float32
(oneDNN's AVX512-BF16 / AMX kernels); everything between the matmuls (residual sums, LayerNorm, softmax) stays
float32, as with int8. Without those instructions bfloat16 is emulated and slower than float32: :func:`to_bf16` says
so (:func:`native_bf16`).

float32 keeps its arithmetic and changes its kernel: ``F.linear`` calls the BLAS sgemm torch was built with (MKL in
the CPU wheels), :class:`OneDnnLinear` oneDNN's, which also applies the bias and the feed-forward GELU inside the
matmul (:func:`fuse_gelu`). On an AMD EPYC (AVX-512) oneDNN's was 7–13% faster per matmul
(docs/experiments/2026-12-05-float32-onednn.md); the outputs agree to float32 round-off.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from bert.errors import BertError

QUANTIZATION_KEY = "quantization"  # in config.json: "int8" for a checkpoint saved after quantize()
PRECISIONS = ("float32", "int8", "bf16", "fp16")  # what set_precision (and the inference commands' flags) offer
QMAX = 127  # symmetric int8: -127 … 127 (-128 unused, so that negating a value never overflows)


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8: ``x`` [N, K] float → (int8 [N, K], float32 scale [N, 1]) with
    ``x ≈ q · scale``. A row of zeros gets scale 1 (and stays zeros)."""
    scale = x.detach().abs().amax(dim=-1, keepdim=True).float() / QMAX
    scale.masked_fill_(scale == 0, 1.0)
    # |x / scale| ≤ 127 by the choice of scale, so rounding needs no clamp (one pass less over x).
    return (x / scale).round_().to(torch.int8), scale


class InputQuantizer:
    """Quantizes a layer's input per token (:func:`quantize_rows`); shared by ``readers`` layers that read the same
    tensor, it quantizes it once for all of them. The query, key and value projections of an attention module read
    one hidden state (:func:`share_input_quantization`): the first call quantizes it and keeps the result for the
    other two, the last of which drops it, so no int8 copy outlives the attention. The memo holds a weak reference to
    the input and matches by identity: right as long as nobody changes that tensor in place between the calls (the
    models' layers never do)."""

    def __init__(self, readers: int = 1) -> None:
        self.readers = readers
        self.last: tuple[weakref.ref, torch.Tensor, torch.Tensor, int] | None = None  # input, int8, scale, reads left

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [..., K] float → (int8 [N, K], scale [N, 1]) for its N = x.numel() / K rows."""
        last = self.last
        if last is not None and last[0]() is x:
            source, x_q, x_scale, left = last
            self.last = (source, x_q, x_scale, left - 1) if left > 1 else None
            return x_q, x_scale
        x_q, x_scale = quantize_rows(x.reshape(-1, x.shape[-1]))
        self.last = (weakref.ref(x), x_q, x_scale, self.readers - 1) if self.readers > 1 else None
        return x_q, x_scale

    def __getstate__(self) -> dict:
        return {"readers": self.readers, "last": None}  # a copy or a pickle starts without the memo


class FrozenLinear(nn.Module):
    """What the inference linears below share: their sizes, a float32 ``bias`` buffer [out] or None, and ``gelu``:
    the GELU the layer applies to its own output (set by :func:`fuse_gelu`): None, ``"none"`` (the exact erf form)
    or ``"tanh"`` (the approximation)."""

    def __init__(self, in_features: int, out_features: int, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("bias", bias)
        self.gelu: str | None = None

    def activate(self, y: torch.Tensor) -> torch.Tensor:
        """GELU in place on a fresh output when ``gelu`` is set; ``y`` as it is otherwise."""
        return torch.ops.aten.gelu_(y, approximate=self.gelu) if self.gelu else y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
                + (f", gelu={self.gelu!r}" if self.gelu else ""))


class Int8Linear(FrozenLinear):
    """A frozen ``nn.Linear`` with int8 weights (per output channel) and int8 activations (per token).

    Buffers: ``weight_int8`` [in, out] (transposed once, the layout the integer matmul reads), ``weight_scale`` [out],
    ``bias`` [out] or None. Input [..., in] float → output [..., out] float32.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, torch.zeros(out_features) if bias else None)
        self.register_buffer("weight_int8", torch.zeros(in_features, out_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features))
        self.input_quantizer = InputQuantizer()  # its own; shared with its siblings by share_input_quantization

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None)
        q, scale = quantize_rows(linear.weight.detach().float())  # rows of W [out, in] = output channels
        layer.weight_int8.copy_(q.t())
        layer.weight_scale.copy_(scale.squeeze(1))
        if linear.bias is not None:
            layer.bias.copy_(linear.bias.detach().float())
        return layer.to(linear.weight.device)

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 weight [out, in] this layer multiplies by (for checks and export)."""
        return (self.weight_int8.t().float() * self.weight_scale[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_q, x_scale = self.input_quantizer(x)
        acc = torch._int_mm(x_q, self.weight_int8)  # [N, out] int32
        y = acc.float().mul_(x_scale)  # in place: one float copy of the int32 sums
        if self.bias is not None:
            torch.addcmul(self.bias, y, self.weight_scale, out=y)  # y · s_w + b in one pass
        else:
            y.mul_(self.weight_scale)
        return self.activate(y).reshape(*x.shape[:-1], self.out_features)


class Int8Embedding(nn.Module):
    """A frozen ``nn.Embedding`` in int8: ``weight_int8`` [V, E] and ``weight_scale`` [V] (one per word, symmetric).
    ids [...] → vectors [..., E] float32."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.register_buffer("weight_int8", torch.zeros(num_embeddings, embedding_dim, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(num_embeddings))

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding) -> Int8Embedding:
        layer = cls(embedding.num_embeddings, embedding.embedding_dim)
        q, scale = quantize_rows(embedding.weight.detach().float())
        layer.weight_int8.copy_(q)
        layer.weight_scale.copy_(scale.squeeze(1))
        return layer.to(embedding.weight.device)

    def dequantized_weight(self) -> torch.Tensor:
        """The float32 table [V, E] this layer looks up."""
        return self.weight_int8.float() * self.weight_scale[:, None]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight_int8[ids].float() * self.weight_scale[ids].unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class TiedInt8Decoder(nn.Module):
    """An MLM decoder tied to an :class:`Int8Embedding`: hidden [..., E] → logits [..., V] with the table's
    dequantized rows (and the decoder's own bias, where it has one: DistilBERT's ``vocab_projector``). The table is
    held outside the module tree, so that its tensors are stored once, under the embeddings' names."""

    def __init__(self, embedding: Int8Embedding, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.table = (embedding,)  # a tuple: not registered as a submodule
        self.register_buffer("bias", None if bias is None else bias.detach().float())

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(hidden_states, self.table[0].dequantized_weight(), self.bias)


def quantize(model: nn.Module) -> nn.Module:
    """``model`` (in eval mode) with every linear layer of its encoder replaced by an :class:`Int8Linear` and its
    word embeddings by an :class:`Int8Embedding` (a tied MLM decoder reading them), in place; returned for chaining.
    For inference only: the int8 weights are buffers, not parameters. The config records it
    (``"quantization": "int8"`` in config.json), so a saved int8 model loads back as one
    (:meth:`~bert.pretrained.nn.Module.from_pretrained`)."""
    replace_encoder_linears(model, Int8Linear.from_linear)
    share_input_quantization(model)
    fuse_gelu(model)
    embeddings = model.base_model.embeddings
    if isinstance(embeddings.word_embeddings, nn.Embedding):
        embeddings.word_embeddings = Int8Embedding.from_embedding(embeddings.word_embeddings)
        if model.tied_weights:
            path = model.tied_decoder.removesuffix(".weight")
            parent, _, name = path.rpartition(".")
            decoder = model.get_submodule(path)
            model.get_submodule(parent).register_module(name, TiedInt8Decoder(embeddings.word_embeddings,
                                                                               decoder.bias))
    model.config.extra[QUANTIZATION_KEY] = "int8"
    return model.eval()


class Bf16Linear(FrozenLinear):
    """A frozen ``nn.Linear`` that multiplies in bfloat16: ``weight`` [out, in] bfloat16 (cast once), ``bias`` [out]
    float32 or None. Input [..., in] float → output [..., out] float32 (the product is accumulated in float32 and
    rounded to bfloat16 once, then the bias is added in float32)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__(linear.in_features, linear.out_features,
                         None if linear.bias is None else linear.bias.detach().float())
        self.register_buffer("weight", linear.weight.detach().to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.linear(x.to(torch.bfloat16), self.weight).float()
        return self.activate(y.add_(self.bias) if self.bias is not None else y)


class OneDnnLinear(FrozenLinear):
    """A frozen ``nn.Linear`` that multiplies in float32 through oneDNN (``torch.ops.mkldnn._linear_pointwise``, the
    kernel torch.compile picks for CPU linears) instead of ``F.linear``'s BLAS sgemm, with the bias, and GELU when
    ``gelu`` is set (see :func:`fuse_gelu`), applied inside the matmul. The same float32 arithmetic in another
    summation order: outputs agree with nn.Linear's to float32 round-off.
    Input [..., in] float32 → output [..., out] float32."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__(linear.in_features, linear.out_features,
                         None if linear.bias is None else linear.bias.detach())
        self.register_buffer("weight", linear.weight.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gelu:  # "none": GELU's exact erf form; "tanh": the approximation
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "gelu", [], self.gelu)
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")


def onednn_available(model: nn.Module) -> bool:
    """Whether :class:`OneDnnLinear` can run ``model``: torch built with oneDNN, the model in float32 on the CPU."""
    weight = next(model.parameters(), None)
    return (torch.backends.mkldnn.is_available() and weight is not None and weight.device.type == "cpu"
            and weight.dtype == torch.float32)


def to_onednn(model: nn.Module) -> nn.Module:
    """``model`` (in eval mode) with every linear layer of its encoder replaced by a :class:`OneDnnLinear` and the
    feed-forward GELU fused into it (:func:`fuse_gelu`), in place; returned for chaining. For inference only; left
    as it is where oneDNN cannot run it (another device or dtype, a torch without oneDNN)."""
    if onednn_available(model):
        replace_encoder_linears(model, OneDnnLinear)
        fuse_gelu(model)
    return model.eval()


CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")


def cpu_flags() -> str:
    """The CPU flags that decide the matmul kernels and speeds (of :data:`CPU_FLAGS`, as Linux's /proc/cpuinfo
    lists them), for every figure a benchmark prints; "unknown" where there is no /proc/cpuinfo."""
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    return " ".join(flag for flag in CPU_FLAGS if flag in words) or "none of avx2/avx512/amx"


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX); without, oneDNN emulates it."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def to_bf16(model: nn.Module) -> nn.Module:
    """``model`` (in eval mode) with every linear layer of its encoder replaced by a :class:`Bf16Linear`, in place;
    returned for chaining. For inference only; not saved as a checkpoint kind (a float32 checkpoint converts in a
    second). A one-line note on stderr where the CPU has no bfloat16 instructions."""
    if not native_bf16():
        print("note: --bf16: this CPU has no bfloat16 instructions (AVX512-BF16 or AMX), so bfloat16 is emulated and "
              "slower than float32 here; --int8 or float32 is faster on it", file=sys.stderr)
    replace_encoder_linears(model, Bf16Linear)
    fuse_gelu(model)
    return model.eval()


def check_precision(precision: str, device: torch.device) -> None:
    """A one-line BertError unless ``precision`` (one of :data:`PRECISIONS`) runs on ``device``: on the CPU float32,
    int8 and bf16 (the swaps above; float16 matmuls are emulated there), on CUDA float32, fp16 and bf16 (a cast of
    the whole model), on Apple's mps float32. Cheap: meant to run before a model loads."""
    if precision not in PRECISIONS:
        raise BertError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if device.type == "cpu" and precision == "fp16":
        raise BertError("--fp16 is for CUDA GPUs: a CPU emulates float16 matmuls (slower than float32); on the CPU "
                        "use --bf16 or --int8")
    if device.type != "cpu" and precision == "int8":
        raise BertError(f"--int8 runs on the CPU only (oneDNN's int8 kernels), not on {device}: use --device cpu, "
                        "or --fp16 / --bf16 on a CUDA GPU")
    if device.type not in ("cpu", "cuda") and precision != "float32":
        raise BertError(f"--{precision} on {device}: this device runs float32 only here; drop --{precision}, or use "
                        "--device cpu")


def set_precision(model: nn.Module, precision: str) -> nn.Module:
    """``model`` readied for inference in ``precision`` (one of :data:`PRECISIONS`) on the device it is on, in place.

    On the CPU: float32 through oneDNN (:func:`to_onednn`), int8 (:func:`quantize`) or bfloat16 (:func:`to_bf16`).
    Elsewhere those CPU kernels do not apply: float32 leaves the model as it is, fp16 and bf16 cast all of it
    (``model.half()``, ``model.to(torch.bfloat16)``). :func:`check_precision` says which pairs are refused."""
    device = next(model.parameters()).device
    check_precision(precision, device)
    if model.config.extra.get(QUANTIZATION_KEY) == "int8" and precision != "float32":
        if precision == "int8":
            return model  # an int8 checkpoint is int8 already
        raise BertError("this checkpoint is int8 (bert quantize): bfloat16 needs the float32 checkpoint")
    if device.type == "cpu":
        return {"float32": to_onednn, "int8": quantize, "bf16": to_bf16}[precision](model)
    return model.to({"float32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]).eval()


def precision_of(model: nn.Module) -> str:
    """How ``model`` multiplies, as the commands' notes name it: int8, bfloat16 (:class:`Bf16Linear` layers or
    bfloat16 weights), float16 or float32."""
    kinds = {type(module) for module in model.modules()}
    if Int8Linear in kinds:
        return "int8"
    if Bf16Linear in kinds:
        return "bfloat16"
    return {torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(next(model.parameters()).dtype, "float32")


def runs_on_cpu_only(model: nn.Module) -> bool:
    """Whether ``model`` holds this module's CPU layers (oneDNN, int8 or bfloat16 swaps, an int8 checkpoint's
    embeddings), which other devices cannot run."""
    return any(isinstance(module, (FrozenLinear, Int8Embedding)) for module in model.modules())


def replace_encoder_linears(model: nn.Module, make: Callable[[nn.Linear], nn.Module]) -> None:
    """Replace every ``nn.Linear`` inside ``model``'s encoder by ``make(linear)``, in place."""
    base = model.base_model
    encoder = base.encoder if hasattr(base, "encoder") else base.transformer  # DistilBERT names it "transformer"
    for module in list(encoder.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, child_name, make(child))


# The names of an attention module's projections, which all read the same hidden state: BERT's (and RoBERTa's and
# ALBERT's) and DistilBERT's.
PROJECTIONS = (("query", "key", "value"), ("q_lin", "k_lin", "v_lin"))


def share_input_quantization(model: nn.Module) -> None:
    """Let each attention module's query, key and value :class:`Int8Linear` share one :class:`InputQuantizer`, so
    that the hidden state they all read is quantized once, not three times; in place."""
    for module in model.modules():
        for names in PROJECTIONS:
            layers = [getattr(module, name, None) for name in names]
            if all(isinstance(layer, Int8Linear) for layer in layers):
                shared = InputQuantizer(readers=len(layers))
                for layer in layers:
                    layer.input_quantizer = shared


# Where a feed-forward block applies its activation straight to a linear layer's output, by attribute names
# (linear, activation): BERT's (and RoBERTa's) BertIntermediate, DistilBERT's FFN, ALBERT's layer.
FEED_FORWARDS = (("dense", "intermediate_act_fn"), ("lin1", "activation"), ("ffn", "activation"))


def fuse_gelu(model: nn.Module) -> None:
    """Move each feed-forward block's GELU (:data:`FEED_FORWARDS`) into the linear layer before it, where that layer
    applies it on its own output (:class:`OneDnnLinear` inside the matmul, the others in place): one pass less over
    the [B, T, 4H] activations, and one [B, T, 4H] tensor less to allocate. The exact (erf) GELU and its tanh
    approximation (ALBERT's ``gelu_new``); in place."""
    for module in model.modules():
        for linear_name, act_name in FEED_FORWARDS:
            linear, act = getattr(module, linear_name, None), getattr(module, act_name, None)
            if isinstance(linear, FrozenLinear) and isinstance(act, nn.GELU):
                linear.gelu = act.approximate
                setattr(module, act_name, nn.Identity())


def check_int8_checkpoint(model: nn.Module, missing: list[str], source: str) -> None:
    """BertError when an int8 checkpoint lacks a quantized layer's tensors (they would be zeros, not weights)."""
    lost = [name for name in missing if name.endswith((".weight_int8", ".weight_scale"))]
    if lost:
        raise BertError(f"{source} is an int8 checkpoint without {lost[0]} ({len(lost)} int8 tensors missing); "
                        "write it again with bert quantize")
