"""Fine-tuning end to end on a tiny model (2 layers, hidden 32, bert-base-uncased's vocabulary): the loss falls,
``bert finetune`` / ``bert predict`` work for all three tasks, the output loads in transformers with its label
map, and bad input files give one-line errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from support import NEGATIVE, POSITIVE, conll_file, mean_loss, random_bert_with_real_vocab, sentiment_file, squad_file

from bert.cli import main
from bert.engine.checkpointing import seed_everything
from bert.finetune import FinetuneConfig, classification, conll, finetune_classifier, ner, squad
from bert.finetune.task import train
from bert.heads import BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification
from bert.tokenizer.wordpiece import BertTokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    return random_bert_with_real_vocab(tmp_path_factory.mktemp("tiny"), minilm_dir)


@pytest.mark.parametrize("task", ["classify", "ner", "qa"])
def test_a_few_steps_reduce_the_loss(tiny: Path, tmp_path: Path, task: str) -> None:
    tokenizer = BertTokenizer.from_pretrained(tiny)
    seed_everything(0)
    if task == "classify":
        model = BertForSequenceClassification.from_pretrained(tiny, num_labels=2)
        examples = classification.read_examples(sentiment_file(tmp_path / "t.tsv", repeat=1))
        targets = classification.label_ids(examples.labels, {"neg": 0, "pos": 1}, "t")
        features = classification.encode_examples(tokenizer, examples, 32, targets)
    elif task == "ner":
        sentences = conll.read_conll(conll_file(tmp_path / "t.conll"))
        label2id = {t: i for i, t in enumerate(ner.tag_order({t for s in sentences for t in s.tags}))}
        model = BertForTokenClassification.from_pretrained(tiny, num_labels=len(label2id))
        features = ner.encode_sentences(tokenizer, sentences, label2id, 32)
    else:
        model = BertForQuestionAnswering.from_pretrained(tiny)
        features = squad.encode_examples(tokenizer, squad.read_squad(squad_file(tmp_path / "s.json")), 64, 16, 16)
    before = mean_loss(model, features)
    config = FinetuneConfig(epochs=30, lr=1e-2, batch_size=8, warmup_fraction=0.0, max_steps=30, progress=False)
    result = train(model, tokenizer, features, tmp_path / "out", config, evaluate=None)
    after = mean_loss(model, features)
    assert result["steps"] == 30 and result["stopped_by"] == "max_steps"
    assert after < 0.7 * before, (before, after)


def test_gradient_checkpointing_leaves_the_qa_loss_curve_unchanged(tiny: Path, tmp_path: Path) -> None:
    tokenizer = BertTokenizer.from_pretrained(tiny)
    features = squad.encode_examples(tokenizer, squad.read_squad(squad_file(tmp_path / "s.json")), 64, 16, 16)
    curves = []
    for enabled in (False, True):
        seed_everything(0)
        model = BertForQuestionAnswering.from_pretrained(tiny).train()  # dropout 0.1 on: masks must be replayed
        config = FinetuneConfig(lr=1e-2, batch_size=4, max_steps=4, progress=False, gradient_checkpointing=enabled)
        train(model, tokenizer, features, tmp_path / f"out-{enabled}", config, evaluate=None)
        events = [json.loads(line) for line in (tmp_path / f"out-{enabled}" / "metrics.jsonl").read_text().splitlines()]
        curves.append([e["loss"] for e in events if e["kind"] == "train"])
    assert len(curves[0]) >= 1
    assert curves[1] == pytest.approx(curves[0], rel=1e-6)


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str) -> bool:
    """The CLI printed exactly one error line and no traceback (other stderr noise, e.g. progress bars, aside)."""
    return "Traceback" not in err and sum(": error: " in line for line in err.splitlines()) == 1


COMMON = ["--epochs", "2", "--batch-size", "8", "--lr", "2e-3", "--no-progress", "--seed", "1"]


def test_cli_classify_end_to_end(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train_file = sentiment_file(tmp_path / "train.tsv")
    out = tmp_path / "run"
    code, _, err = _run(["finetune", "classify", "--model", str(tiny), "--train", str(train_file), "--eval",
                         str(train_file), "--out", str(out), "--group-by-length", "--grad-accum", "2", *COMMON],
                        capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "f1", "train_time_seconds", "peak_memory_gb", "history", "best_epoch"):
        assert key in metrics
    assert len(metrics["history"]) == 2 and (out / "curves.png").stat().st_size > 0
    assert metrics["labels"] == ["neg", "pos"]

    predictions = tmp_path / "p.jsonl"
    code, _, err = _run(["predict", "classify", "--model", str(out), "--input", str(train_file), "--output",
                         str(predictions)], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == 48 and set(rows[0]["probabilities"]) == {"neg", "pos"} and rows[0]["gold"] == "pos"
    assert "accuracy" in err
    code, stdout, err = _run(["predict", "classify", "--model", str(out), "--text", "a great film"], capsys)
    assert code == 0 and json.loads(stdout)["label"] in ("neg", "pos")

    # the same folder in transformers: same label map, same logits
    import transformers

    reference = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert reference.config.id2label == {0: "neg", 1: "pos"} and reference.config.label2id == {"neg": 0, "pos": 1}
    ours = BertForSequenceClassification.from_pretrained(out)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    batch = hf_tokenizer(["a great film", "i hated it"], padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = reference(**batch).logits
        actual = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]).logits
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)

    # a label the model does not know, in a file given for prediction
    unknown = tmp_path / "unknown.tsv"
    unknown.write_text("sentence\tlabel\nok film\tmeh\n", encoding="utf-8")
    code, _, err = _run(["predict", "classify", "--model", str(out), "--input", str(unknown)], capsys)
    assert code == 1 and "'meh', which the model does not know" in err and _one_line_error(err)


def test_regression_and_pairs(tiny: Path, tmp_path: Path) -> None:
    rng = random.Random(0)
    lines = ["sentence1,sentence2,score"]
    for _ in range(24):
        a, b = rng.choice(POSITIVE), rng.choice(POSITIVE + NEGATIVE)
        lines.append(f"{a},{b},{5.0 if b in POSITIVE else 0.5}")
    data = tmp_path / "sts.csv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = finetune_classifier(tiny, data, data, tmp_path / "sts", epochs=1, batch_size=8, progress=False)
    assert result["task"] == "regression" and {"pearson", "spearman"} <= set(result)
    [prediction] = classification.predict_classifier(tmp_path / "sts", ["great fun"], ["awful acting"])
    assert isinstance(prediction["score"], float)


def test_cli_ner_end_to_end(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = conll_file(tmp_path / "train.conll")
    out = tmp_path / "ner"
    code, _, err = _run(["finetune", "ner", "--model", str(tiny), "--train", str(data), "--eval", str(data),
                         "--out", str(out), "--max-seq-len", "6", *COMMON], capsys)  # 6: sentences use windows
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"precision", "recall", "f1", "per_type"} <= set(metrics) and set(metrics["per_type"]) <= {"PER", "LOC"}
    predictions = tmp_path / "ner.jsonl"
    code, _, err = _run(["predict", "ner", "--model", str(out), "--input", str(data), "--output", str(predictions)],
                        capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == 9 and len(rows[1]["tags"]) == len(rows[1]["tokens"]) == 5
    code, stdout, err = _run(["predict", "ner", "--model", str(out), "--text", "Alice met Bob in Paris."], capsys)
    assert code == 0, err
    row = json.loads(stdout)
    assert row["tokens"] == ["Alice", "met", "Bob", "in", "Paris", "."]
    for entity in row["entities"]:
        assert "Alice met Bob in Paris."[entity["char_start"]:entity["char_end"]] == entity["text"]

    import transformers

    reference = transformers.AutoModelForTokenClassification.from_pretrained(out)
    assert reference.config.label2id == json.loads((out / "config.json").read_text())["label2id"]
    assert set(reference.config.id2label.values()) == {"O", "B-LOC", "I-LOC", "B-PER", "I-PER"}

    bad = tmp_path / "bad.conll"
    bad.write_text("Alice\tB-PER\nlives\tVBZ\tO\n", encoding="utf-8")
    code, _, err = _run(["finetune", "ner", "--model", str(tiny), "--train", str(bad), "--out", str(out)], capsys)
    assert code == 1 and "bad.conll:2: 3 columns" in err and _one_line_error(err)


def test_cli_qa_end_to_end(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = squad_file(tmp_path / "squad.json")
    out = tmp_path / "qa"
    code, _, err = _run(["finetune", "qa", "--model", str(tiny), "--train", str(data), "--eval", str(data),
                         "--train-articles", "0:2", "--eval-articles", "2:3", "--out", str(out),
                         "--max-seq-len", "24", "--doc-stride", "8", "--max-query-len", "10", *COMMON], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"exact_match", "f1"} <= set(metrics) and metrics["train_questions"] == 8
    assert metrics["eval_questions"] == 4
    predictions = tmp_path / "qa.jsonl"
    code, _, err = _run(["predict", "qa", "--model", str(out), "--input", str(data), "--articles", "2:3",
                         "--output", str(predictions)], capsys)
    assert code == 0 and "exact_match" in err
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == 4
    context = "Ada Lovelace wrote the notes in 1843 about the engine."
    code, stdout, err = _run(["predict", "qa", "--model", str(out), "--question", "Who wrote?", "--context",
                              context], capsys)
    row = json.loads(stdout)
    assert code == 0
    # A barely trained model may find no valid span (then the answer is empty); a found span is the context's text.
    found = row["start"] >= 0
    assert (context[row["start"]:row["start"] + len(row["answer"])] == row["answer"] != "") if found else \
        row["answer"] == ""

    import transformers

    assert type(transformers.AutoModelForQuestionAnswering.from_pretrained(out)).__name__ == \
        "BertForQuestionAnswering"

    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [{"paragraphs": [{"context": "x"}]}]}', encoding="utf-8")
    code, _, err = _run(["finetune", "qa", "--model", str(tiny), "--train", str(broken), "--out", str(out)], capsys)
    assert code == 1 and "has no 'qas'" in err and _one_line_error(err)


def test_cli_missing_column_and_empty_file(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "d.tsv"
    data.write_text("review\tlabel\ngood\tpos\n", encoding="utf-8")
    code, _, err = _run(["finetune", "classify", "--model", str(tiny), "--train", str(data), "--out",
                         str(tmp_path / "o"), "--text-column", "text"], capsys)
    assert code == 1 and "no text column 'text'; the columns are: review, label" in err
    empty = tmp_path / "e.jsonl"
    empty.write_text("", encoding="utf-8")
    code, _, err = _run(["finetune", "classify", "--model", str(tiny), "--train", str(empty), "--out",
                         str(tmp_path / "o")], capsys)
    assert code == 1 and "e.jsonl: the file is empty" in err


def test_time_budget_and_interrupt(tiny: Path, tmp_path: Path) -> None:
    data = sentiment_file(tmp_path / "t.tsv")
    result = finetune_classifier(tiny, data, data, tmp_path / "budget", epochs=5, batch_size=4, time_budget=1e-6,
                                 progress=False)
    assert result["stopped_by"] == "time_budget" and result["steps"] == 1 and len(result["history"]) == 1

    tokenizer = BertTokenizer.from_pretrained(tiny)
    model = BertForSequenceClassification.from_pretrained(tiny, num_labels=2)
    examples = classification.read_examples(data)
    features = classification.encode_examples(tokenizer, examples, 32, [int(x == "pos") for x in examples.labels])

    def ctrl_c(_model: torch.nn.Module) -> dict:
        raise KeyboardInterrupt

    out = tmp_path / "interrupted"
    result = train(model, tokenizer, features, out, FinetuneConfig(epochs=2, batch_size=8, progress=False), ctrl_c)
    assert result["interrupted"] and json.loads((out / "metrics.json").read_text())["interrupted"]
    assert (out / "model.safetensors").is_file() and (out / "vocab.txt").is_file()
