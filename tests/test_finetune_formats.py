"""Fine-tuning data besides CSV/TSV/JSONL, CoNLL and SQuAD JSON: JSON arrays, Parquet, .gz files, NER and QA rows in
Hugging Face's shapes (tags as names, or as numbers with --label-names / a Dataset's features), and tables held in
memory (lists of dicts, pandas DataFrames, datasets.Dataset) in the Python API. Each gives the same examples as the
CSV / CoNLL / SQuAD file it was made from; every bad input is a one-line error."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import datasets
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from support import conll_file, random_bert_with_real_vocab, sentiment_file, squad_file
from table_files import write_rows

from bert.cli import main
from bert.errors import BertError
from bert.finetune import classification, finetune_classifier, finetune_ner, finetune_qa, ner, squad
from bert.finetune.classification import read_examples
from bert.finetune.conll import read_conll
from bert.finetune.squad import read_questions, read_squad
from bert.finetune.tagged import read_sentences
from bert.finetune.task import data_digest
from bert.heads import BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification
from bert.tokenizer.wordpiece import BertTokenizer


def sentiment_rows(tmp_path: Path) -> list[dict]:
    return [{"sentence": text, "label": label} for text, label in
            (line.split("\t") for line in sentiment_file(tmp_path / "s.tsv", 1).read_text().splitlines()[1:])]


def conll_rows(tmp_path: Path) -> tuple[list[dict], list[str]]:
    """The CoNLL test file's sentences as rows with integer tags, and the names those stand for."""
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    rows = [{"id": str(i), "tokens": s.words, "ner_tags": [names.index(t) for t in s.tags]}
            for i, s in enumerate(read_conll(conll_file(tmp_path / "t.conll")))]
    return rows, names


def squad_rows(tmp_path: Path) -> list[dict]:
    """The SQuAD test file's questions as Hugging Face's squad rows."""
    return [{"id": e.id, "question": e.question, "context": e.context,
             "answers": {"text": e.answers, "answer_start": e.answer_starts}}
            for e in read_squad(squad_file(tmp_path / "s.json"))]


# ---- the same examples from every source ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["t.json", "t.parquet", "t.csv.gz", "t.json.gz", "t.jsonl.gz", "t.parquet.gz"])
def test_classification_tables_give_the_csvs_examples(tmp_path: Path, name: str) -> None:
    rows = sentiment_rows(tmp_path)
    expected = read_examples(write_rows(tmp_path / "t.csv", rows))
    assert expected.texts and read_examples(write_rows(tmp_path / name, rows)) == expected


def test_classification_tables_in_memory_give_the_csvs_examples(tmp_path: Path) -> None:
    rows = sentiment_rows(tmp_path)
    expected = read_examples(write_rows(tmp_path / "t.csv", rows))
    for table in (rows, pd.DataFrame(rows), datasets.Dataset.from_list(rows)):
        assert read_examples(table) == expected


@pytest.mark.parametrize("name", ["t.jsonl", "t.json", "t.parquet", "t.jsonl.gz"])
def test_ner_rows_give_the_conll_files_sentences(tmp_path: Path, name: str) -> None:
    rows, names = conll_rows(tmp_path)
    expected = read_conll(tmp_path / "t.conll")
    path = write_rows(tmp_path / name, rows)
    assert read_sentences(path, names) == expected  # integer tags and their names ...
    assert read_sentences(path, ",".join(names)) == expected  # ... given as a comma list
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    assert read_sentences(path, tmp_path / "names.txt") == expected  # ... or a file
    as_names = [{"tokens": r["tokens"], "tags": [names[t] for t in r["ner_tags"]]} for r in rows]
    assert read_sentences(write_rows(tmp_path / name, as_names)) == expected  # string tags need no names
    packed = tmp_path / "t.conll.gz"  # and CoNLL itself may be compressed
    packed.write_bytes(gzip.compress((tmp_path / "t.conll").read_bytes()))
    assert read_sentences(packed) == expected


def test_ner_tables_in_memory_give_the_conll_files_sentences(tmp_path: Path) -> None:
    rows, names = conll_rows(tmp_path)
    expected = read_conll(tmp_path / "t.conll")
    features = datasets.Features({"id": datasets.Value("string"), "tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    assert read_sentences(datasets.Dataset.from_list(rows, features=features)) == expected  # names from features
    assert read_sentences(pd.DataFrame(rows), names) == expected  # cells hold numpy arrays
    assert read_sentences(rows, names) == expected


@pytest.mark.parametrize("name", ["t.jsonl", "t.json", "t.parquet", "t.json.gz"])
def test_qa_rows_give_the_squad_files_questions(tmp_path: Path, name: str) -> None:
    rows = squad_rows(tmp_path)
    expected = read_squad(tmp_path / "s.json")
    assert read_questions(write_rows(tmp_path / name, rows)) == expected
    assert read_questions(tmp_path / "s.json") == expected
    listed = [{**row, "answers": [{"text": t, "answer_start": s}
                                  for t, s in zip(row["answers"]["text"], row["answers"]["answer_start"], strict=True)]}
              for row in rows]
    for table in (listed, pd.DataFrame(rows), datasets.Dataset.from_list(rows)):
        assert read_questions(table) == expected


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    return random_bert_with_real_vocab(tmp_path_factory.mktemp("tiny"), minilm_dir)


def what_training_gets(module, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Replace ``module.train``: record the digest of the training features, the evaluation of the untrained model
    (the same eval examples give the same metrics) and what the run records of its data (labels, counts; not the
    files' names or article ranges), instead of training."""
    seen: list[tuple] = []

    def record(net, tokenizer, features, out, config, evaluate, main_metric, info):
        metrics = {k: v for k, v in evaluate(net).items() if k != "per_type"} if evaluate else None
        recorded = {k: v for k, v in info.items() if not k.endswith(("_file", "_articles"))}
        seen.append((data_digest(features), metrics, recorded))
        return {}

    monkeypatch.setattr(module, "train", record)
    return seen


def test_the_api_takes_tables_in_memory_wherever_it_takes_a_file(tiny, tmp_path, monkeypatch) -> None:
    settings = {"epochs": 1, "max_seq_len": 32, "progress": False}
    rows = sentiment_rows(tmp_path)
    seen = what_training_gets(classification, monkeypatch)
    held_out = rows[::3]
    finetune_classifier(tiny, write_rows(tmp_path / "t.csv", rows), write_rows(tmp_path / "e.csv", held_out),
                        tmp_path / "a", **settings)
    finetune_classifier(tiny, pd.DataFrame(rows), datasets.Dataset.from_list(held_out), tmp_path / "b", **settings)
    finetune_classifier(tiny, rows, write_rows(tmp_path / "e.parquet", held_out), tmp_path / "c", **settings)
    assert seen[0][2]["eval_examples"] == len(held_out) and seen[1:] == [seen[0], seen[0]]

    conll, names = conll_rows(tmp_path)
    seen = what_training_gets(ner, monkeypatch)
    finetune_ner(tiny, tmp_path / "t.conll", write_rows(tmp_path / "e.jsonl", conll[:2]), tmp_path / "d",
                 label_names=names, **settings)
    finetune_ner(tiny, conll, conll[:2], tmp_path / "e", label_names=names, **settings)
    assert seen[0][2]["labels"] == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"] and seen[1] == seen[0]

    questions = squad_rows(tmp_path)
    seen = what_training_gets(squad, monkeypatch)
    finetune_qa(tiny, tmp_path / "s.json", tmp_path / "s.json", tmp_path / "f", eval_articles="1:2",
                **{**settings, "max_seq_len": 64})
    finetune_qa(tiny, datasets.Dataset.from_list(questions), questions[4:8], tmp_path / "g",
                **{**settings, "max_seq_len": 64})
    assert seen[1] == seen[0]


def test_predicting_on_tables_in_memory_gives_the_files_predictions(tiny, tmp_path) -> None:
    tokenizer = BertTokenizer.from_pretrained(tiny)
    rows = sentiment_rows(tmp_path)
    torch.manual_seed(0)
    classifier = (BertForSequenceClassification.from_pretrained(tiny, num_labels=2, id2label={0: "neg", 1: "pos"},
                                                                label2id={"neg": 0, "pos": 1}).eval(), tokenizer)
    expected = classification.predict_classifier_file(classifier, write_rows(tmp_path / "t.csv", rows), None, "label")
    assert expected[1] is not None
    assert classification.predict_classifier_file(classifier, pd.DataFrame(rows), None, "label") == expected
    conll, names = conll_rows(tmp_path)
    tags = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    tagger = (BertForTokenClassification.from_pretrained(tiny, num_labels=5, id2label=dict(enumerate(tags)),
                                                         label2id={t: i for i, t in enumerate(tags)}).eval(), tokenizer)
    expected = ner.predict_ner_file(tagger, tmp_path / "t.conll")
    assert ner.predict_ner_file(tagger, datasets.Dataset.from_list(conll), label_names=names) == expected
    reader = (BertForQuestionAnswering.from_pretrained(tiny).eval(), tokenizer)
    expected = squad.predict_qa_file(reader, squad_file(tmp_path / "s.json"), max_seq_len=64)
    assert squad.predict_qa_file(reader, squad_rows(tmp_path), max_seq_len=64) == expected


def test_bert_finetune_and_predict_ner_read_rows_with_label_names(tiny, tmp_path, capsys) -> None:
    rows, names = conll_rows(tmp_path)
    data = write_rows(tmp_path / "train.jsonl", rows)
    common = ["--model", str(tiny), "--train", str(data), "--out", str(tmp_path / "m"), "--max-steps", "2",
              "--batch-size", "4", "--max-seq-len", "32", "--no-progress"]
    assert main(["finetune", "ner", *common]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("bert finetune: error:") and "are numbers; name them with --label-names" in err
    assert main(["finetune", "ner", *common, "--label-names", ",".join(names)]) == 0
    capsys.readouterr()
    assert main(["predict", "ner", "--model", str(tmp_path / "m"), "--input", str(data), "--label-names",
                 ",".join(names), "--output", str(tmp_path / "p.jsonl")]) == 0
    predictions = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [p["gold"] for p in predictions] == [s.tags for s in read_conll(tmp_path / "t.conll")]


# ---- errors -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "message"), [
    ("a.json", "[]", "a.json: the file holds no data rows"),
    ("a.json", '[{"sentence": "x", "label": 1}, 5]', "a.json: item 2 of the array is an int, not an object"),
    ("a.json", '[{"sentence": "x", "label": 1', "a.json: not valid JSON"),
    ("a.json", "", "a.json: the file is empty"),
    ("a.json", '[{"review": "x", "label": 1}]', "no text column found.*the columns are: review, label"),
    ("a.json", '[{"sentence": 3, "label": 1}]', "a.json: row 1 has no text in column 'sentence'"),
    ("a.parquet", None, "a.parquet: the file holds no data rows"),
    ("a.csv.gz", "sentence,label\n", "a.csv.gz: broken gzip data"),
])
def test_bad_classification_tables_are_one_line_errors(tmp_path: Path, name: str, content, message: str) -> None:
    path = tmp_path / name
    if content is None:
        pq.write_table(pa.table({"sentence": pa.array([], pa.string())}), path)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(BertError, match=message):
        read_examples(path)


def test_bad_tables_in_memory_are_one_line_errors() -> None:
    for table, message in [([], "the rows: there are no rows"), (pd.DataFrame({"sentence": []}), "no rows"),
                           ([{"sentence": "a", "label": 1}, "b"], "row 2 is a str, not a dict"),
                           (pd.DataFrame({"sentence": ["a", None], "label": [1, 0]}),
                            "the DataFrame: row 2 has no text in column 'sentence'"),
                           (datasets.DatasetDict({"train": datasets.Dataset.from_dict({"sentence": ["a"]})}),
                            "a DatasetDict holds the splits train"),
                           (42, "cannot read rows from an int")]:
        with pytest.raises(BertError, match=message):
            read_examples(table)


def test_bad_ner_rows_are_one_line_errors(tmp_path: Path) -> None:
    names = ["O", "B-PER"]
    for rows, message in [([{"words": ["a"], "tags": ["O"]}], "no tokens column 'tokens'; the columns are: words"),
                          ([{"tokens": ["a"]}], r"no tag column \(ner_tags or tags\); the columns are: tokens"),
                          ([{"tokens": "a b", "tags": ["O"]}], "row 1: 'tokens' holds a str, not a list"),
                          ([{"tokens": ["a", ""], "tags": ["O", "O"]}], "row 1: every token in 'tokens' must be"),
                          ([{"tokens": ["a", "b"], "tags": ["O"]}], "row 1: 2 tokens but 1 tags in 'tags'"),
                          ([{"tokens": ["a"], "ner_tags": [0]}], "are numbers; name them with --label-names"),
                          ([{"tokens": ["a"], "ner_tags": [1.5]}], "neither a tag name nor a tag number"),
                          ([{"tokens": [], "tags": []}], "no sentences")]:
        with pytest.raises(BertError, match=message):
            read_sentences(write_rows(tmp_path / "n.jsonl", rows))
    with pytest.raises(BertError, match="tag number 2 in 'ner_tags', but there are 2 label names"):
        read_sentences([{"tokens": ["a"], "ner_tags": [2]}], names)
    with pytest.raises(BertError, match="--label-names needs distinct"):
        read_sentences([{"tokens": ["a"], "ner_tags": [0]}], "O,O")
    assert read_sentences([{"tokens": ["a"]}], require_tags=False)[0].tags is None  # prediction needs no tags


def test_bad_qa_rows_are_one_line_errors(tmp_path: Path) -> None:
    row = {"question": "Who?", "context": "Ada did."}
    for answers, message in [("Ada", "answers must be"), ({"text": ["Ada"]}, "answers must be"),
                             ({"text": ["Ada"], "answer_start": [40]}, "each answer needs a text and an answer_start")]:
        with pytest.raises(BertError, match=f"the rows: row 1: {message}"):
            read_questions([{**row, "answers": answers}])
    with pytest.raises(BertError, match="no column 'context'"):
        read_questions([{"question": "Who?"}])
    with pytest.raises(BertError, match="an article range slices a SQuAD JSON file's articles"):
        read_questions(write_rows(tmp_path / "q.jsonl", [row]), "0:1")
    assert read_questions(write_rows(tmp_path / "q.jsonl", [row]))[0].answers == []  # prediction needs no answers


def test_parquet_without_pyarrow_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_rows(tmp_path / "t.parquet", [{"sentence": "a", "label": "pos"}])
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(BertError, match=r"t.parquet: reading Parquet needs pyarrow: pip install pyarrow$"):
        read_examples(path)
