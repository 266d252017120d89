"""Training checkpoints: everything needed to continue a run exactly where it stopped, written atomically.

Layout of ``OUT/checkpoints/step-0000100/``::

    config.json, model.safetensors   the model, by ``save_pretrained`` (so the folder also loads with
                                     ``from_pretrained``, ours or transformers')
    training_state.pt                the engine's state (step, elapsed seconds, optimizer, schedule, Python/NumPy/
                                     torch RNG states, the evaluations so far and the best one, the log window,
                                     float16's gradient scaler),
                                     the task's position in its data (epochs, index, generator states) and the run's
                                     settings; read with ``weights_only=True``
    trainer_state.json               the scalars of that, human-readable (step, elapsed seconds, lr, total_steps of
                                     the schedule, the data position)
    best.safetensors                 where the run keeps its best model (fine-tuning): a copy of it

Atomicity: a checkpoint is written by :func:`bert.atomic.replace_folder_atomically`: into
``OUT/checkpoints/.tmp-step-0000100-<pid>/``, every file fsync'ed, the folder renamed to ``step-0000100`` (one atomic
``rename``) and the parent folder fsync'ed. A process killed mid-write leaves only a ``.tmp-*`` folder, which
:func:`latest_checkpoint` never considers (and the next save deletes). Only names matching ``step-NNNNNNN`` are
checkpoints.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bert.atomic import replace_folder_atomically
from bert.errors import BertError
from bert.weights import find_weights, load_into, read_state_dict

CHECKPOINT_PATTERN = re.compile(r"^step-(\d{7,})$")
TRAINING_STATE = "training_state.pt"
TRAINER_STATE = "trainer_state.json"
MODEL_FILES = ("config.json", "model.safetensors")


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}"


# ---- RNG states ------------------------------------------------------------------------------------------------

def capture_rng_states() -> dict[str, Any]:
    """Python's, NumPy's and torch's global RNG states, in a form ``torch.load(weights_only=True)`` accepts."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": np_kind, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Undo :func:`capture_rng_states`."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ---- what a checkpoint holds -------------------------------------------------------------------------------------

@dataclass
class TrainingState:
    """The non-model part of a checkpoint (see the module docstring)."""

    step: int
    elapsed: float  # seconds of training before this checkpoint (for --time-budget and the logs)
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    rng: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)  # the task's position in its data
    progress: dict[str, Any] = field(default_factory=dict)  # the engine's: evaluations, the best one, the log window
    settings: dict[str, Any] = field(default_factory=dict)  # what a resumed run must share (see bert.settings)
    scaler: dict[str, Any] = field(default_factory=dict)  # float16's gradient scaler (scale, growth tracker)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def save_checkpoint(checkpoints_dir: Path, model: Any, state: TrainingState,
                    extra_files: dict[str, Path] | None = None) -> Path:
    """Write one checkpoint atomically (see the module docstring); returns its folder.

    ``extra_files`` (name in the checkpoint → existing file) are copied in before the folder is renamed, so they are
    part of the same atomic write. If the folder for this step already exists (a resumed run saving the step it
    resumed from) it is left as is.
    """
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / checkpoint_name(state.step)
    if final.is_dir():
        return final

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        try:
            torch.save(state.to_dict(), tmp / TRAINING_STATE)
        except RuntimeError as error:  # torch's writer reports a full disk as a RuntimeError, not an OSError
            # The optimizer state is about twice the weights: with less room than that, the disk is what failed.
            if shutil.disk_usage(checkpoints_dir).free < 2 * (tmp / "model.safetensors").stat().st_size + (1 << 20):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) from None
            raise OSError(errno.EIO, f"torch.save failed ({str(error).splitlines()[0]})") from None
        summary = {"step": state.step, "elapsed": state.elapsed, "lr": state.optimizer["param_groups"][0]["lr"],
                   "total_steps": state.schedule.get("total_steps"),
                   **{key: value for key, value in state.data.items() if isinstance(value, (int, float))}}
        (tmp / TRAINER_STATE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        for name, source in (extra_files or {}).items():
            shutil.copyfile(source, tmp / name)

    try:
        replace_folder_atomically(final, fill)
    except (OSError, BertError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        previous = latest_checkpoint(checkpoints_dir)
        kept = (f"the previous checkpoint {previous} is complete and kept" if previous is not None
                else "no earlier checkpoint exists")
        raise BertError(f"cannot write checkpoint {final}: {reason}; {kept}. Free some space (or fix the folder) "
                        "and continue with --resume") from None
    return final


def checkpoint_bytes(model: torch.nn.Module, optimizer_states_per_parameter: int = 2) -> int:
    """About how many bytes one checkpoint takes: the weights plus the optimizer's per-parameter state (AdamW and
    LAMB keep two moments) in float32, plus a little for the rest."""
    tied = set(getattr(model, "tied_weights", ()))  # stored once, as the word embeddings
    weights = sum(t.numel() * t.element_size() for name, t in model.state_dict().items() if name not in tied)
    moments = sum(p.numel() * 4 for p in model.parameters()) * optimizer_states_per_parameter
    return weights + moments + (64 << 10)


def check_free_space(folder: Path, needed: int) -> None:
    """BertError when ``folder``'s file system has less than ``needed`` bytes free (checked before training, so a
    full disk is reported at once instead of at the first checkpoint)."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise BertError(f"{folder} has {free / 2**20:.1f} MB free, but one checkpoint of this model needs about "
                        f"{needed / 2**20:.1f} MB; free some space or choose another --out")


def list_checkpoints(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first: folders named ``step-NNNNNNN`` holding all their files."""
    if not checkpoints_dir.is_dir():
        return []
    found = []
    for path in checkpoints_dir.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_dir() and all((path / f).is_file() for f in (*MODEL_FILES, TRAINING_STATE)):
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    checkpoints = list_checkpoints(checkpoints_dir)
    return checkpoints[-1][1] if checkpoints else None


def prune_checkpoints(checkpoints_dir: Path, keep_last: int) -> None:
    """Delete all but the ``keep_last`` newest checkpoints (``keep_last`` <= 0 keeps everything)."""
    if keep_last <= 0:
        return
    for _, path in list_checkpoints(checkpoints_dir)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)


def read_training_state(path: Path) -> TrainingState:
    """The non-model part of checkpoint ``path`` (e.g. to compare its settings before touching a model)."""
    try:
        data = torch.load(path / TRAINING_STATE, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt or foreign file
        raise BertError(f"cannot read {path / TRAINING_STATE}: {error}") from None
    try:
        return TrainingState(**data)
    except TypeError:  # another layout: written before the training engine (or by something else)
        raise BertError(f"{path} was written by an older version of bert (its training state has "
                        f"{', '.join(sorted(data))}); it cannot be resumed: start afresh in another --out, or "
                        "--init-from its weights") from None


def load_model_weights(path: Path, model: torch.nn.Module) -> None:
    """Load the model weights of checkpoint ``path`` into ``model``."""
    load_into(model, read_state_dict(find_weights(path)), source=str(path))


# ---- the run chores every task shares ------------------------------------------------------------------------------

def refuse_overwrite(out: str | os.PathLike, resume: bool) -> None:
    """BertError when a fresh run (no ``resume``) would write over a run that has checkpoints in ``out``."""
    if not resume and list_checkpoints(Path(out) / "checkpoints"):
        raise BertError(f"{out} already holds checkpoints of a run: pass --resume to continue it, or choose another "
                        "--out")


def resumes(out: str | os.PathLike, resume: bool) -> bool:
    """Whether a run into ``out`` will continue from a checkpoint there (``resume`` asked, and one is there): the
    model it starts from then gets the checkpoint's weights."""
    return resume and latest_checkpoint(Path(out) / "checkpoints") is not None


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (before building a model: its fresh weights draw from them)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
