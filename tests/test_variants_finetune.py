"""Fine-tuning and prediction with RoBERTa, ALBERT and DistilBERT checkpoints (tiny ones that transformers saves,
with their own kinds of tokenizer): the head class and tokenizer follow model_type, labels and answer spans align
with byte-level BPE and unigram pieces as transformers' tokenizers align them, DistilBERT gets no token_type_ids, a
few steps lower each task's loss, and `bert finetune` output loads in transformers with equal logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from support import conll_file, make_tiny_variant, mean_loss, sentiment_file, squad_file

from bert.cli import main
from bert.engine.checkpointing import seed_everything
from bert.finetune import FinetuneConfig, classification, conll, ner, squad
from bert.finetune.task import load_pretrained, train
from bert.heads import IGNORE_INDEX
from bert.tokenizer.fast import FastTokenizer
from bert.variants.auto import auto_class, auto_tokenizer

VARIANTS = ("roberta", "albert", "distilbert")
PREFIXES = {"roberta": "Roberta", "albert": "Albert", "distilbert": "DistilBert"}
TASKS = {"classify": "sequence_classification", "ner": "token_classification", "qa": "question_answering"}
HF_AUTO = {"classify": transformers.AutoModelForSequenceClassification,
           "ner": transformers.AutoModelForTokenClassification, "qa": transformers.AutoModelForQuestionAnswering}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """variant → a tiny pretrained encoder (``<Variant>Model``) folder with its tokenizer."""
    made = {}
    for variant in VARIANTS:
        made[variant] = tmp_path_factory.mktemp(variant)
        make_tiny_variant(made[variant], variant, head="Model")
    return made


def reference_tokenizer(folder: Path, variant: str) -> transformers.PreTrainedTokenizerBase:
    """transformers' tokenizer of the folder; RoBERTa's with add_prefix_space, which pre-split words need there."""
    return transformers.AutoTokenizer.from_pretrained(folder, **({"add_prefix_space": True}
                                                                 if variant == "roberta" else {}))


def task_features(task: str, tokenizer: FastTokenizer, tmp_path: Path) -> tuple[list[dict], dict]:
    """The tiny training set of ``task`` as features, and the config overrides its head needs."""
    if task == "classify":
        examples = classification.read_examples(sentiment_file(tmp_path / "t.tsv", repeat=1))
        targets = classification.label_ids(examples.labels, {"neg": 0, "pos": 1}, "t")
        return classification.encode_examples(tokenizer, examples, 32, targets), {"num_labels": 2}
    if task == "ner":
        sentences = conll.read_conll(conll_file(tmp_path / "t.conll"))
        label2id = {t: i for i, t in enumerate(ner.tag_order({t for s in sentences for t in s.tags}))}
        return ner.encode_sentences(tokenizer, sentences, label2id, 32), {"num_labels": len(label2id)}
    return squad.encode_examples(tokenizer, squad.read_squad(squad_file(tmp_path / "s.json")), 48, 16, 16), {}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_few_steps_reduce_the_loss_of_each_variant(checkpoints, variant, task, tmp_path) -> None:
    folder = checkpoints[variant]
    tokenizer = auto_tokenizer(folder)
    features, overrides = task_features(task, tokenizer, tmp_path)
    seed_everything(0)
    model, _ = load_pretrained(folder, TASKS[task], **overrides)
    assert type(model) is auto_class(folder, TASKS[task]) and type(model).__name__.startswith(PREFIXES[variant])
    before = mean_loss(model, features, tokenizer.pad_token_id)
    # 60 steps: ALBERT's classifier reads [CLS] through one shared layer and needs ~40 to leave ln 2 at all.
    config = FinetuneConfig(epochs=60, lr=1e-2, batch_size=8, warmup_fraction=0.0, max_steps=60, progress=False)
    result = train(model, tokenizer, features, tmp_path / "out", config, evaluate=None)
    after = mean_loss(model, features, tokenizer.pad_token_id)
    assert result["steps"] == 60
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("variant", VARIANTS)
def test_ner_labels_sit_on_the_first_piece_of_words_split_into_several(checkpoints, variant) -> None:
    folder = checkpoints[variant]
    tokenizer, reference = auto_tokenizer(folder), reference_tokenizer(folder, variant)
    words = ["Alice", "unaffable", "visited", "Straße", "😀", "Paris"]
    tags = [1, 0, 0, 2, 0, 2]
    [feature] = ner.encode_sentence(tokenizer, words, tags, 64)
    expected = reference(words, is_split_into_words=True)
    assert feature["input_ids"] == expected["input_ids"]  # the same pieces and special tokens as transformers'
    word_ids = expected.word_ids()
    assert sum(word_ids.count(w) > 1 for w in range(len(words))) >= 2  # several words really are split
    first = {w: word_ids.index(w) for w in range(len(words))}
    assert feature["labels"] == [tags[w] if w is not None and first[w] == i else IGNORE_INDEX
                                 for i, w in enumerate(word_ids)]
    assert feature["word_positions"] == [(first[w], w) for w in range(len(words))]
    assert ("token_type_ids" in feature) == (variant != "distilbert")  # DistilBERT's model reads none


@pytest.mark.parametrize("variant", VARIANTS)
def test_qa_windows_equal_transformers_pair_encoding_and_labels_recover_the_answer(checkpoints, variant) -> None:
    folder = checkpoints[variant]
    tokenizer, reference = auto_tokenizer(folder), transformers.AutoTokenizer.from_pretrained(folder)
    context = "Straße, ÆØÅ and ñandú: the quick brown fox jumps over the lazy dog in Tokyo."
    for answer in ("ñandú", "quick brown fox", "Tokyo", "Straße"):
        example = squad.QAExample("q", "What jumps?", context, [answer], [context.index(answer)])
        [feature] = squad.encode_example(tokenizer, example, 0, max_seq_len=128)
        expected = reference(example.question, context, return_token_type_ids=True)
        assert feature["input_ids"] == expected["input_ids"]
        if variant == "distilbert":
            assert "token_type_ids" not in feature  # its model reads none
        else:
            assert feature["token_type_ids"] == expected["token_type_ids"]  # RoBERTa's all 0, ALBERT's 0 then 1
        start, end = feature["start_positions"], feature["end_positions"]
        found = context[feature["offsets"][start][0]:feature["offsets"][end][1]]
        assert found.strip() == answer, (answer, found)  # unigram's "▁" piece may carry the space in front


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_cli_finetune_and_predict_and_transformers_loads_the_result(checkpoints, variant, task, tmp_path,
                                                                    capsys) -> None:
    folder, out = checkpoints[variant], tmp_path / "out"
    data = {"classify": sentiment_file, "ner": conll_file, "qa": squad_file}[task](tmp_path / f"data.{task}")
    lengths = ["--max-seq-len", "48", "--doc-stride", "16", "--max-query-len", "16"] if task == "qa" else []
    assert main(["finetune", task, "--model", str(folder), "--train", str(data), "--eval", str(data), "--out",
                 str(out), "--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--no-progress", *lengths]) == 0
    assert json.loads((out / "metrics.json").read_text())["history"]
    capsys.readouterr()
    given = {"classify": ["--text", "a great film"], "ner": ["--text", "Alice lives in Paris."],
             "qa": ["--question", "Who wrote?", "--context", "Ada Lovelace wrote the notes."]}[task]
    assert main(["predict", task, "--model", str(out), *given]) == 0
    prediction = json.loads(capsys.readouterr().out)
    assert {"classify": "label", "ner": "entities", "qa": "answer"}[task] in prediction

    ours = auto_class(out, TASKS[task]).from_pretrained(out).eval()
    assert not ours.load_report.missing
    reference, loading = HF_AUTO[task].from_pretrained(out, output_loading_info=True)
    assert type(reference).__name__ == type(ours).__name__ and not loading["missing_keys"]
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    batch = hf_tokenizer(["Alice lives in Paris.", "a great film"], padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == auto_tokenizer(out)(["Alice lives in Paris.", "a great film"],
                                                              padding=True)["input_ids"]
    with torch.no_grad():
        expected, actual = reference.eval()(**batch), ours(**batch)
    real = batch["attention_mask"].bool()  # per-token scores at padding are nobody's answer (nor equal)
    for name in ("logits",) if task != "qa" else ("start_logits", "end_logits"):
        ours_, theirs = getattr(actual, name), getattr(expected, name)
        if task != "classify":
            ours_, theirs = ours_[real], theirs[real]
        torch.testing.assert_close(ours_, theirs, atol=1e-5, rtol=1e-4)
    if task != "qa":
        assert reference.config.id2label == ours.config.id2label
