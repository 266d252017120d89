"""Lesson 4c's checks (notebooks/lessons.py: check_embeddings, check_encoder_layer, check_mlm_head) can fail: the
solution's modules pass them, and each classic mistake, made on purpose in a subclass of the solution, fails the check
of its piece, printing FAIL with its max abs difference; an unwritten skeleton prints "not written yet", and a module
whose parameters are misnamed says which name is missing, each as one line rather than a traceback."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
sys.path.insert(0, str(NOTEBOOK_DIR))
import lessons  # noqa: E402  (notebooks/ is not a package: it is put on the path above)

from bert import BertForMaskedLM  # noqa: E402
from bert.inference.pipelines import DEMO_MODEL, load  # noqa: E402


def solution_module():
    spec = importlib.util.spec_from_file_location("write_it_yourself",
                                                  NOTEBOOK_DIR / "solutions" / "04c_write_it_yourself.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOLUTION = solution_module()


@pytest.fixture(scope="module")
def model_and_batch():
    model, tokenizer = load(BertForMaskedLM, DEMO_MODEL)
    return model, lessons.check_batch(model, tokenizer)


class NoSegments(SOLUTION.MyEmbeddings):
    """Every token read as sentence A: the pair's second sentence gets the wrong segment row."""

    def forward(self, input_ids, token_type_ids):
        return super().forward(input_ids, torch.zeros_like(token_type_ids))


class NoScaling(SOLUTION.MyEncoderLayer):
    """QKᵀ not divided by √D."""

    def __init__(self, config):
        super().__init__(config)
        self.scale = 1.0


class MaskIgnored(SOLUTION.MyEncoderLayer):
    """Real tokens attend to the padding too."""

    def forward(self, x, attention_mask):
        return super().forward(x, torch.ones_like(attention_mask))


class TanhGelu(SOLUTION.MyEncoderLayer):
    """GPT-2's tanh approximation of GELU instead of the erf form BERT was trained with."""

    def __init__(self, config):
        super().__init__(config)
        self.activation = nn.GELU(approximate="tanh")


class BiasForgotten(SOLUTION.MyMLMHead):
    """The decoder's scores without the head's per-word bias (the decoder Linear has none of its own)."""

    def forward(self, hidden):
        return super().forward(hidden) - self.bias


class NoBiasParameter(nn.Module):
    """An MLM head that never declared its ``bias``: the weights cannot be loaded."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)  # a bias of its own instead

    def forward(self, hidden):
        return self.decoder(self.LayerNorm(self.dense(hidden)))


class Skeleton(nn.Module):
    """As the notebook hands it out."""

    def __init__(self, config):
        super().__init__()
        raise NotImplementedError


def test_the_solution_passes_every_check(model_and_batch, capsys):
    model, batch = model_and_batch
    assert lessons.check_embeddings(SOLUTION.MyEmbeddings, model, batch)
    assert lessons.check_encoder_layer(SOLUTION.MyEncoderLayer, model, batch)
    assert lessons.check_mlm_head(SOLUTION.MyMLMHead, model, batch)
    assert lessons.check_all_yours(SOLUTION.MyEmbeddings, SOLUTION.MyEncoderLayer, SOLUTION.MyMLMHead, model, batch)
    printed = capsys.readouterr().out
    assert printed.count(": ok, ") == 4 and "FAIL" not in printed, printed


@pytest.mark.parametrize(("check", "wrong"), [
    ("check_embeddings", NoSegments), ("check_encoder_layer", NoScaling), ("check_encoder_layer", MaskIgnored),
    ("check_encoder_layer", TanhGelu), ("check_mlm_head", BiasForgotten)], ids=lambda x: getattr(x, "__name__", x))
def test_each_classic_mistake_fails_its_check(model_and_batch, capsys, check, wrong):
    model, batch = model_and_batch
    assert not getattr(lessons, check)(wrong, model, batch)
    [line] = capsys.readouterr().out.splitlines()
    assert ": FAIL, " in line, line
    difference = float(line.split("max abs difference from the module's ")[1].split()[0])
    assert difference > 10 * lessons.TOLERANCE, line  # failed by a clear margin, not by rounding


def test_the_chained_check_fails_when_one_piece_is_wrong(model_and_batch, capsys):
    model, batch = model_and_batch
    assert not lessons.check_all_yours(SOLUTION.MyEmbeddings, MaskIgnored, SOLUTION.MyMLMHead, model, batch)
    assert ": FAIL, " in capsys.readouterr().out


def test_an_unwritten_skeleton_and_misnamed_weights_say_so_in_one_line(model_and_batch, capsys):
    model, batch = model_and_batch
    for check in (lessons.check_embeddings, lessons.check_encoder_layer, lessons.check_mlm_head):
        assert not check(Skeleton, model, batch)
    assert not lessons.check_mlm_head(NoBiasParameter, model, batch)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all("not written yet" in line for line in lines[:3]), lines
    assert "FAIL" in lines[3] and "has no bias" in lines[3] and "decoder.bias" in lines[3], lines[3]
