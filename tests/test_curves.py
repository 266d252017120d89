"""curves.png, as each kind of run draws it: the panels' titles, the series' labels and every point read back from
the figure (``bert.plotting.save_figure`` wrapped) equal the metrics.jsonl events' values. Pretraining draws an NSP
or SOP panel only when its events carry one; a fine-tuning run stars exactly its kept evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support import make_tiny_model, sentiment_file

import bert.plotting
from bert.engine.checkpointing import seed_everything
from bert.finetune import FinetuneConfig, classification
from bert.finetune.task import finetune_panels, train
from bert.heads import BertForSequenceClassification
from bert.plotting import plot_curves
from bert.pretraining.distill import DISTILLATION_PANELS
from bert.pretraining.task import pretraining_panels
from bert.tokenizer.wordpiece import BertTokenizer


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the next curves.png draws, read back from its figure instead of being written: one dict per panel
    (``title``, ``ylabel``, ``lines``: label -> list of (step, value), ``right``: the same for a right axis)."""
    panels: list[dict[str, Any]] = []
    real = bert.plotting.save_figure

    def read_back(figure: Any, path: Path) -> None:
        left = [axis for axis in figure.axes if axis.get_title()]
        for axis in left:
            twins = [other for other in figure.axes if other is not axis and not other.get_title()
                     and other.get_position().bounds == axis.get_position().bounds]
            panels.append({"title": axis.get_title(), "ylabel": axis.get_ylabel(), "lines": _lines(axis),
                           "right": _lines(twins[0]) if twins else {}})
        real(figure, path)

    monkeypatch.setattr(bert.plotting, "save_figure", read_back)
    return panels


def _lines(axis: Any) -> dict[str, list[tuple[float, float]]]:
    lines: dict[str, list[tuple[float, float]]] = {}
    for index, line in enumerate(axis.lines):
        label = line.get_label() if not line.get_label().startswith("_") else f"unlabelled {index}"
        assert label not in lines, f"two lines labelled {label!r}"
        lines[label] = [(float(x), float(y)) for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]
    return lines


def _points(events: list[dict[str, Any]], kind: str, key: str) -> list[tuple[float, float]]:
    return [(float(e["step"]), float(e[key])) for e in events if e["kind"] == kind and key in e]


def _pretraining_events(task: str | None) -> list[dict[str, Any]]:
    """metrics.jsonl lines of a pretraining run (``task``: "nsp", "sop" or None for MLM-only), with distinct values
    and eval steps that are not train steps."""
    events = []
    for step in (10, 20, 30, 40):
        sentence = {f"{task}_loss": 0.7 - step / 1000, f"{task}_accuracy": 0.5 + step / 200} if task else {}
        events.append({"kind": "train", "step": step, "mlm_loss": 9 - step / 10, "mlm_accuracy": step / 100,
                       **sentence, "lr": 1e-4, "tokens_per_second": 1000.0, "elapsed": step / 10})
        if step % 20 == 0:
            events.append({"kind": "eval", "step": step + 1, "mlm_loss": 8.5 - step / 10,
                           "mlm_accuracy": step / 90, **{k: v + 0.01 for k, v in sentence.items()},
                           "elapsed": step / 10, "peak_rss_gb": 1.0})
    return events


@pytest.mark.parametrize("task", ["nsp", "sop", None])
def test_pretraining_curves_draw_mlm_and_only_the_sentence_task_the_run_trains(
        drawn: list[dict[str, Any]], tmp_path: Path, task: str | None) -> None:
    events = _pretraining_events(task)
    assert plot_curves(events, tmp_path / "curves.png", pretraining_panels(events))
    assert (tmp_path / "curves.png").stat().st_size > 0
    keys = ["mlm_loss", "mlm_accuracy"] + ([f"{task}_accuracy"] if task else [])  # no NSP panel for MLM-only runs
    assert [panel["title"] for panel in drawn] == ["MLM loss", "MLM accuracy"] + ([f"{task.upper()} accuracy"]
                                                                                  if task else [])
    for panel, key in zip(drawn, keys, strict=True):
        assert panel["lines"] == {"train": _points(events, "train", key), "eval": _points(events, "eval", key)}
        assert panel["ylabel"] == key.rpartition("_")[2] and panel["right"] == {}


def test_distillation_curves_draw_each_loss_term_and_the_student_against_the_teacher(
        drawn: list[dict[str, Any]], tmp_path: Path) -> None:
    events: list[dict[str, Any]] = [{"kind": "eval", "step": 0, "mlm_loss": 9.0, "mlm_accuracy": 0.01,
                                     "teacher_mlm_loss": 2.0, "teacher_mlm_accuracy": 0.6}]
    for step in (5, 10, 15):
        events.append({"kind": "train", "step": step, "loss": 5 - step / 10, "soft_target_loss": 3 - step / 10,
                       "mlm_loss": 7 - step / 10, "cosine_loss": 0.5 - step / 100, "mlm_accuracy": step / 50})
    events.append({"kind": "eval", "step": 16, "mlm_loss": 6.0, "mlm_accuracy": 0.2, "teacher_mlm_loss": 2.0,
                   "teacher_mlm_accuracy": 0.6})
    assert plot_curves(events, tmp_path / "curves.png", DISTILLATION_PANELS)
    assert [panel["title"] for panel in drawn] == ["loss terms (train)", "MLM loss", "MLM accuracy"]
    assert drawn[0]["lines"] == {"soft targets (KL · T²)": _points(events, "train", "soft_target_loss"),
                                 "hard MLM": _points(events, "train", "mlm_loss"),
                                 "cosine": _points(events, "train", "cosine_loss")}
    for panel, key in zip(drawn[1:], ("mlm_loss", "mlm_accuracy"), strict=True):
        assert panel["lines"] == {"student, train": _points(events, "train", key),
                                  "student, held out": _points(events, "eval", key),
                                  "teacher, held out": _points(events, "eval", f"teacher_{key}")}


def test_finetuning_curves_draw_every_evaluation_and_star_exactly_the_kept_one(
        drawn: list[dict[str, Any]], tmp_path: Path) -> None:
    """A real (tiny) run evaluated every 2 steps and per epoch (3 steps) with scripted scores: the best is the second
    of four evaluations, and only it is starred."""
    model_dir = make_tiny_model(tmp_path / "model", cls=BertForSequenceClassification, num_labels=2)
    tokenizer = BertTokenizer.from_pretrained(model_dir)
    examples = classification.read_examples(sentiment_file(tmp_path / "t.tsv", repeat=1))
    features = classification.encode_examples(
        tokenizer, examples, 32, classification.label_ids(examples.labels, {"neg": 0, "pos": 1}, "t"))
    scores = iter([0.5, 0.9, 0.7, 0.6])
    seed_everything(0)
    model = BertForSequenceClassification.from_pretrained(model_dir)
    config = FinetuneConfig(lr=1e-3, batch_size=4, max_steps=6, eval_every=2, progress=False)
    result = train(model, tokenizer, features, tmp_path / "out", config, evaluate=lambda _: {"accuracy": next(scores)},
                   main_metric="accuracy")
    events = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    evals = _points(events, "eval", "accuracy")
    assert [value for _, value in evals] == [0.5, 0.9, 0.7, 0.6] and result["accuracy"] == 0.9
    kept = evals[1]
    assert (tmp_path / "out" / "curves.png").stat().st_size > 0
    drawn = drawn[-2:]  # the figure is redrawn after every evaluation: the file holds the last drawing
    assert [panel["title"] for panel in drawn] == ["training loss", "eval accuracy"]
    assert drawn[0]["lines"] == {"train loss": _points(events, "train", "loss")}
    assert list(drawn[0]["right"].values()) == [_points(events, "train", "lr")]
    assert drawn[1]["lines"] == {"unlabelled 0": evals, "kept": [kept]}
    assert drawn[1]["ylabel"] == "accuracy"


def test_finetuning_curves_star_nothing_without_a_kept_evaluation(drawn: list[dict[str, Any]], tmp_path: Path) -> None:
    events = [{"kind": "train", "step": 1, "loss": 1.0, "lr": 1e-3}, {"kind": "eval", "step": 1, "f1": 0.3}]
    assert plot_curves(events, tmp_path / "curves.png", finetune_panels("f1", None))
    assert drawn[1]["lines"] == {"unlabelled 0": [(1.0, 0.3)]}
