"""The base class of every model: configuration, initialisation, ``from_pretrained`` and ``save_pretrained``.

Reading weight files and mapping checkpoint names onto ours is :mod:`bert.weights`'s part; this module builds a
model from a checkpoint folder and writes one back in Hugging Face's layout.
"""

from __future__ import annotations

import logging
import os
from typing import Any, TypeVar

import torch
from torch import nn

from bert.atomic import make_directory, write_file_atomically
from bert.config import BertConfig
from bert.errors import BertError
from bert.weights import (
    BERT_NAMING,
    CheckpointNaming,
    LoadReport,
    find_weights,
    load_into,
    read_state_dict,
)

logger = logging.getLogger("bert")

Model = TypeVar("Model", bound="PreTrainedModel")


class PreTrainedModel(nn.Module):
    """Shared by BertModel and every head: config, weight initialisation, loading and saving.

    The class attributes describe a model family: its config class and how its checkpoints name things
    (:class:`~bert.weights.CheckpointNaming`); BERT's are the defaults, and the variants in :mod:`bert.variants`
    set their own.
    """

    config_class: type[BertConfig] = BertConfig
    checkpoint_naming: CheckpointNaming = BERT_NAMING
    tied_weights: tuple[str, ...] = ()  # this class's parameters that are the word embeddings (not saved)

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        check_fits_in_memory(config)
        self.config = config
        self.load_report: LoadReport | None = None
        self.name_or_path = ""  # what it was loaded from, for messages and titles (see bert.inference.pipelines.load)

    def init_weights(self) -> None:
        """BERT's initialisation for training from scratch: weights ~ N(0, initializer_range), biases 0, LayerNorm
        scale 1 and shift 0. A wrapped BertModel has initialised itself already, so only our own modules are done."""
        for child in self.children():
            if not isinstance(child, PreTrainedModel):
                child.apply(self._init_module)
        self.tie_weights()

    def _init_module(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        for name, parameter in module.named_parameters(recurse=False):
            if name == "bias" and not isinstance(module, (nn.Linear, nn.LayerNorm)):
                nn.init.zeros_(parameter)  # the MLM head's free-standing output bias

    def tie_weights(self) -> None:
        """Heads with a decoder tied to the word embeddings override this."""

    @property
    def base_model_prefix(self) -> str:
        """The wrapped encoder's attribute name in head classes (``bert``), which is also its checkpoint prefix."""
        return self.checkpoint_naming.prefix

    @property
    def tied_decoder(self) -> str:
        """The MLM decoder matrix, tied to the word embeddings (in a head that has one)."""
        return self.checkpoint_naming.tied_decoder

    @property
    def base_model(self) -> PreTrainedModel:
        """The wrapped encoder (``self.bert`` in a BERT head), or the model itself when it is the encoder."""
        return getattr(self, self.base_model_prefix, self)

    def gradient_checkpointing_enable(self, enabled: bool = True) -> None:
        """Recompute encoder layers during backward instead of storing their activations (see ``BertEncoder``)."""
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = enabled

    def num_parameters(self) -> int:
        """Distinct parameters (a tied matrix counts once)."""
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def from_pretrained(cls: type[Model], name_or_path: str | os.PathLike, **config_overrides: Any) -> Model:
        """Build this class from a checkpoint folder, a weights file, or a model name (see :mod:`bert.hub`).

        ``config_overrides`` replace config.json values (e.g. ``num_labels=3`` for a new classifier). Parameters
        the checkpoint lacks (a fresh task head) are initialised and named in a warning; tensors the class has no
        use for (e.g. the pretraining heads when loading BertModel) are listed in ``model.load_report``.
        """
        from bert.hub import resolve_model_dir

        location = resolve_model_dir(name_or_path)
        folder = location if location.is_dir() else location.parent
        weights = find_weights(folder) if location.is_dir() else location
        config = cls.config_class.from_json_file(folder / "config.json", **config_overrides)
        model = cls(config)
        int8 = config.extra.get("quantization") == "int8"
        if int8:  # saved by bert quantize: int8 layers, so that their int8 tensors have somewhere to go
            from bert.precision import check_int8_checkpoint, quantize

            quantize(model)
        model.load_report = load_into(model, read_state_dict(weights), source=str(weights))
        if int8:
            check_int8_checkpoint(model, model.load_report.missing, str(weights))
        model.name_or_path = str(name_or_path)
        if model.load_report.missing:
            logger.warning("%s: %d weights not in %s were freshly initialised (train them before use): %s",
                           cls.__name__, len(model.load_report.missing), weights, ", ".join(model.load_report.missing))
        if model.load_report.unexpected:
            logger.info("%s: unused weights in %s: %s", cls.__name__, weights, ", ".join(model.load_report.unexpected))
        return model.eval()

    def save_pretrained(self, directory: str | os.PathLike, dtype: torch.dtype | None = None) -> None:
        """Write ``config.json`` + ``model.safetensors`` in Hugging Face naming (loadable by ``transformers``).

        The tied decoder matrix is stored once, as the word embeddings, as HF does. ``dtype`` (e.g. torch.float16)
        shrinks the file; loading casts back to float32. Each file is written atomically and durably
        (:func:`bert.atomic.write_file_atomically`), so an interrupted save never leaves a truncated file behind.
        """
        from safetensors.torch import save_file

        directory = make_directory(directory)
        tied = set(self.tied_weights)
        tensors = {name: (t.to(dtype) if dtype is not None and t.is_floating_point() else t).detach().cpu().contiguous()
                   for name, t in self.state_dict().items() if name not in tied}
        write_file_atomically(directory / "model.safetensors",
                              lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
        write_file_atomically(directory / "config.json",
                              lambda tmp: self.config.save_as(tmp, architecture=type(self).__name__))


def parameter_count(config: BertConfig) -> int:
    """Parameters of a BertForPreTraining of this size (an upper bound for every head class but huge label sets)."""
    h, i, v = config.hidden_size, config.intermediate_size, config.vocab_size
    embeddings = (v + config.max_position_embeddings + config.type_vocab_size + 2) * h
    layer = 4 * (h * h + h) + 2 * h * i + i + 5 * h
    heads = (h * h + h) + 2 * h + v + (2 * h + 2) + config.num_labels * (h + 1)
    return embeddings + config.num_hidden_layers * layer + heads


def physical_memory() -> int | None:
    """Bytes of RAM on this machine, or None when the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_in_memory(config: BertConfig) -> None:
    """BertError, before anything is allocated, when the config's sizes need more float32 memory than the machine
    has (a typo such as ``"vocab_size": 305220000`` would otherwise end in an allocator crash or a hang)."""
    needed, available = 4 * parameter_count(config), physical_memory()
    if available is not None and needed > available:
        raise BertError(f"config: a model of these sizes has about {needed // 4:,} parameters ({needed / 2**30:,.1f} "
                        f"GiB in float32), more than this machine's {available / 2**30:,.1f} GiB of memory; check "
                        "vocab_size, hidden_size, num_hidden_layers, intermediate_size and max_position_embeddings")
