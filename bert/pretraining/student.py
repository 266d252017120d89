"""The two models of a distillation (:mod:`bert.pretraining.distill`): the *teacher* (a trained BERT with its MLM
head, eval mode, no gradients) and where the *student* starts — K of the teacher's L layers spread evenly from the
first (layer ``i * L // K`` becomes layer i), with the teacher's embeddings, pooler and heads."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bert.atomic import replace_folder_atomically
from bert.config import BertConfig
from bert.errors import BertError
from bert.heads import BertForPreTraining
from bert.hub import resolve_model_folder
from bert.pretraining.init_from import InitCheckpoint
from bert.tokenizer.files import copy_tokenizer_files

LAYER_NAME = re.compile(r"^bert\.encoder\.layer\.(\d+)\.(.+)$")


@dataclass
class Teacher:
    """The teacher model (eval mode, no gradients), its checkpoint, and the parameters that checkpoint lacked."""

    checkpoint: InitCheckpoint
    model: BertForPreTraining
    missing: list[str]


def load_teacher(name_or_path: str) -> Teacher:
    """Find and load the teacher; BertError unless it is a BERT checkpoint with a trained masked-LM head."""
    try:
        folder = resolve_model_folder(name_or_path)
        if not (folder / "config.json").is_file():
            raise BertError(f"{folder} has no config.json; is it a BERT checkpoint?")
        checkpoint = InitCheckpoint(folder, BertConfig.from_json_file(folder / "config.json"))
    except BertError as error:
        raise BertError(f"--teacher {name_or_path}: {error}") from None
    model = BertForPreTraining(checkpoint.config)
    missing = checkpoint.load_into(model, checkpoint.read_weights()).missing
    untrained = [name for name in missing if name.startswith("cls.predictions.")]
    if untrained:
        raise BertError(f"--teacher {name_or_path}: {folder} has no masked-LM head ({untrained[0]} is missing), so "
                        "it cannot predict masked words; train one first: bert pretrain --init-from "
                        f"{name_or_path} ...")
    model.eval().requires_grad_(False)
    return Teacher(checkpoint, model, missing)


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of a model's tensors, names and values: which teacher a distillation checkpoint was made with."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def spread_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Which teacher layers a K-layer student takes: ``[i * L // K for i in range(K)]`` (6 of 12 → 0, 2, ..., 10)."""
    return [i * teacher_layers // student_layers for i in range(student_layers)]


@dataclass
class StudentStart(InitCheckpoint):
    """A student made of teacher ``layers`` (``config``: the teacher's with that many layers), its other weights
    the teacher's: what the pretraining task loads instead of a checkpoint's tensors (``folder`` is the teacher's)."""

    layers: list[int] = field(default_factory=list)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def from_teacher(cls, teacher: Teacher, student_layers: int,
                     overrides: dict[str, Any] | None = None) -> StudentStart:
        """BertError unless 1 <= ``student_layers`` <= the teacher's layers. ``overrides`` (dropout) replace config
        fields. The weights are the teacher's tensors, renamed (teacher layer ``layers[i]`` → student layer i);
        parameters the teacher's checkpoint lacked are left out (so they count as fresh)."""
        total = teacher.checkpoint.config.num_hidden_layers
        if not 0 < student_layers <= total:
            raise BertError(f"--student-layers {student_layers}: the teacher {teacher.checkpoint.folder} has {total} "
                            f"layers; choose 1 to {total}")
        layers = spread_layers(total, student_layers)
        position = {layer: i for i, layer in enumerate(layers)}
        weights = {}
        for name, tensor in teacher.model.state_dict().items():
            match = LAYER_NAME.match(name)
            if name in teacher.missing or (match is not None and int(match.group(1)) not in position):
                continue
            if match is not None:
                name = f"bert.encoder.layer.{position[int(match.group(1))]}.{match.group(2)}"
            weights[name] = tensor
        config = dataclasses.replace(teacher.checkpoint.config, num_hidden_layers=student_layers,
                                     **(overrides or {}))
        return cls(teacher.checkpoint.folder, config, layers, weights)

    def read_weights(self) -> dict[str, torch.Tensor]:
        return self.weights


def save_student(teacher: str, student_layers: int, out: str | Path) -> Path:
    """Write the student that distillation starts from (``student_layers`` of the teacher's layers, its embeddings,
    pooler and heads) to ``out`` with the teacher's tokenizer files: a checkpoint that ``bert pretrain --init-from``
    trains without a teacher, to see what the teacher adds. Returns ``out``."""
    start = StudentStart.from_teacher(load_teacher(teacher), student_layers)
    student = BertForPreTraining(start.config)
    start.load_into(student, start.weights)

    def fill(folder: Path) -> None:
        student.save_pretrained(folder)
        copy_tokenizer_files(start.folder, folder)

    return replace_folder_atomically(out, fill)


def check_student(student: BertConfig, teacher: BertConfig, alpha_cos: float) -> None:
    """BertError unless a student of config ``student`` can learn from ``teacher`` (same vocabulary; the same
    hidden size when the cosine loss is on)."""
    if student.model_type != "bert":
        raise BertError(f"the student is a {student.model_type} model; distillation trains BERT students")
    if student.vocab_size != teacher.vocab_size:
        raise BertError(f"the teacher scores {teacher.vocab_size} words but the student {student.vocab_size}: their "
                        "MLM distributions cannot be compared; use --student-layers (the teacher's own embeddings)")
    if alpha_cos and student.hidden_size != teacher.hidden_size:
        raise BertError(f"the cosine loss compares hidden states, but the student's have {student.hidden_size} "
                        f"dimensions and the teacher's {teacher.hidden_size}: choose a student of hidden size "
                        f"{teacher.hidden_size}, or pass --alpha-cos 0")
