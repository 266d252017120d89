"""`bert prepare` / `bert train-tokenizer` inputs besides plain text: JSONL, JSON, CSV, TSV and Parquet tables (a row is
a document), .gz files, folders, a Hugging Face `datasets` split (`--dataset`, tested on local datasets only) and
tables in memory; each gives byte-identical prepared arrays to the same text as a plain file, and every bad input is a
one-line error."""

from __future__ import annotations

import gzip
import json
import random
import re
import sys
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from table_files import write_rows

from bert.cli import main
from bert.data import iter_documents, prepare_pretraining_data, train_tokenizer
from bert.data.sources import expand_inputs
from bert.data.tokenizer_training import count_tokens
from bert.errors import BertError
from bert.tokenizer import BertTokenizer

WORDS = "river stone light paper garden window music letter engine winter market forest".split()


def documents(count: int = 14, seed: int = 0) -> list[str]:
    """Documents as plain text: lines of one or two sentences each (a document's lines joined by newlines)."""
    rng = random.Random(seed)
    docs = []
    for d in range(count):
        lines = []
        for _ in range(rng.randint(2, 5)):
            sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize() + "."
                         for _ in range(rng.randint(1, 2))]
            lines.append(f"Doc {d}: " + " ".join(sentences))
        docs.append("\n".join(lines))
    return docs


DOCS = documents()


def write_plain(path: Path, docs: list[str] = DOCS) -> Path:
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def write_table(path: Path, docs: list[str] = DOCS, column: str = "text") -> Path:
    """The documents as a table in the format of ``path``'s extension, with a second column beside the text (TSV
    cells hold no newline: a document's lines joined by spaces there)."""
    tsv = path.name.removesuffix(".gz").endswith(".tsv")
    return write_rows(path, [{"id": i, column: doc.replace("\n", " ") if tsv else doc} for i, doc in enumerate(docs)])


def arrays(folder: Path) -> dict[str, bytes]:
    """Every prepared array's bytes, by split and name."""
    return {f"{split}/{f.name}": np.load(f).tobytes() for split in ("train", "eval")
            for f in sorted((folder / split).glob("*.npy"))}


def prepare(inputs: list, out: Path, tokenizer: Path, **settings) -> dict[str, bytes]:
    prepare_pretraining_data(inputs, tokenizer, out, max_seq_len=32, eval_fraction=0.2, seed=5, progress=False,
                             **settings)
    return arrays(out)


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Path:
    """A small vocabulary trained on the documents (faster to load and copy than a real one)."""
    root = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer([write_plain(root / "corpus.txt")], 150, root / "tok")
    return root / "tok"


@pytest.fixture(scope="module")
def plain(tokenizer: Path, tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("plain")
    return prepare([write_plain(root / "corpus.txt")], root / "data", tokenizer)


def one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"bert {argv[0]}: error: "), err
    return err


# ---- the same text in every format gives the same examples ----------------------------------------------------

@pytest.mark.parametrize("name", ["corpus.jsonl", "corpus.json", "corpus.csv", "corpus.tsv", "corpus.parquet",
                                  "corpus.jsonl.gz", "corpus.csv.gz", "corpus.parquet.gz"])
def test_a_table_with_a_document_per_row_prepares_the_plain_texts_arrays(name, plain, tokenizer, tmp_path):
    table = write_table(tmp_path / name)
    assert prepare([table], tmp_path / "data", tokenizer) == plain  # format by extension (auto)
    fmt = name.split(".")[1]  # --format NAME reads a file as NAME whatever its extension
    renamed = table.rename(tmp_path / name.replace(f".{fmt}", ".rows"))
    assert prepare([renamed], tmp_path / "named", tokenizer, format=fmt) == plain


def test_gzip_text_and_a_folder_of_files_prepare_the_plain_texts_arrays(plain, tokenizer, tmp_path):
    packed = tmp_path / "corpus.txt.gz"
    packed.write_bytes(gzip.compress(write_plain(tmp_path / "c.txt").read_bytes()))
    assert prepare([packed], tmp_path / "gz", tokenizer) == plain
    # A folder: one file per document (the end of a file ends a document), in sorted order, recursively, mixed
    # formats by extension, hidden files skipped.
    folder = tmp_path / "corpus"
    (folder / "b").mkdir(parents=True)
    (folder / ".cache").mkdir()
    for d, doc in enumerate(DOCS[:7]):
        write_plain(folder / f"a{d:02d}.txt", [doc])
    write_table(folder / "b" / "rows.jsonl.gz", DOCS[7:12])
    write_table(folder / "c.parquet", DOCS[12:])
    (folder / ".notes.txt").write_text("Hidden text is not read.\n")
    (folder / ".cache" / "x.txt").write_text("Nor is a hidden folder.\n")
    assert [p.relative_to(folder).as_posix() for p in expand_inputs([folder])] == [
        *(f"a{d:02d}.txt" for d in range(7)), "b/rows.jsonl.gz", "c.parquet"]
    assert prepare([folder], tmp_path / "folder", tokenizer) == plain


def test_tables_in_memory_and_a_local_dataset_prepare_the_plain_texts_arrays(plain, tokenizer, tmp_path):
    rows = [{"text": doc} for doc in DOCS]
    assert prepare([datasets.Dataset.from_list(rows)], tmp_path / "ds", tokenizer) == plain
    assert prepare([pd.DataFrame(rows)], tmp_path / "df", tokenizer) == plain
    assert prepare([rows], tmp_path / "list", tokenizer) == plain
    # --dataset: a save_to_disk folder (its split chosen by --split) ...
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"body": ["Not this one. No."]}),
                                   "validation": datasets.Dataset.from_dict({"body": DOCS})})
    splits.save_to_disk(tmp_path / "saved")
    argv = ["prepare", "--dataset", str(tmp_path / "saved"), "--split", "validation", "--text-column", "body",
            "--tokenizer", str(tokenizer), "--max-seq-len", "32", "--eval-fraction", "0.2", "--seed", "5", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "saved-data")]) == 0
    assert arrays(tmp_path / "saved-data") == plain
    meta = json.loads((tmp_path / "saved-data" / "meta.json").read_text())
    assert meta["dataset"] == f"{tmp_path / 'saved'} (validation)" and meta["text_column"] == "body"
    assert meta["source_files"] == [{"table": "the Dataset", "rows": len(DOCS)}]


def test_a_dataset_folder_of_data_files_loads_through_load_dataset(plain, tokenizer, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))  # not the user's cache
    (tmp_path / "hub").mkdir()
    write_table(tmp_path / "hub" / "train.jsonl")
    assert main(["prepare", "--dataset", str(tmp_path / "hub"), "--tokenizer", str(tokenizer), "--max-seq-len",
                 "32", "--eval-fraction", "0.2", "--seed", "5", "--quiet", "--out", str(tmp_path / "data")]) == 0
    assert arrays(tmp_path / "data") == plain
    assert any((tmp_path / "cache").iterdir())  # datasets' copy went to the test's cache


def test_train_tokenizer_reads_tables_as_it_reads_plain_text(tmp_path, capsys):
    plain_file, table = write_plain(tmp_path / "corpus.txt"), write_table(tmp_path / "corpus.parquet")
    # What the trainer is fed (lines, unsplit), and so what it counts, is the same text.
    assert list(iter_documents([table], sentence_split=False)) == list(iter_documents([plain_file],
                                                                                       sentence_split=False))
    assert main(["train-tokenizer", str(table), "--vocab-size", "120", "--out", str(tmp_path / "tok")]) == 0
    vocab = BertTokenizer.from_pretrained(tmp_path / "tok")
    pieces_seen = {c for piece in vocab.get_vocab() if not piece.startswith("[") for c in piece.removeprefix("##")}
    assert pieces_seen <= set(plain_file.read_text().lower())  # the table's text, not its bytes, was learned
    pieces = count_tokens([plain_file], vocab)
    assert count_tokens([table], vocab) == pieces > 0
    assert f"the corpus is {pieces:,} pieces of it" in capsys.readouterr().out
    in_memory = datasets.Dataset.from_list([{"text": doc} for doc in DOCS])
    assert count_tokens([in_memory], train_tokenizer([in_memory], 120, tmp_path / "tok2")) > 0


# ---- errors -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "content", "message"), [
    ("rows.jsonl", '{"body": "A text."}\n', r"rows.jsonl: no text column 'text'; the columns are: body"),
    ("rows.csv", "id,body\n1,A text.\n", r"rows.csv: no text column 'text'; the columns are: id, body"),
    ("rows.jsonl", '{"text": "A text."}\n{"text": 7}\n', r"rows.jsonl: row 2: the text column 'text' holds an int"),
    ("rows.jsonl", '{"text": "A."}\n{"text": "B."}\n{"title": "C"}\n', r"row 3: the text column 'text' holds nothing"),
    ("rows.json", '[{"text": "A."}, {"text": ["B."]}]', r"rows.json: row 2: the text column 'text' holds a list"),
    ("rows.jsonl", "\n \n", r"rows.jsonl: the file is empty"),
    ("rows.json", "[]", r"rows.json: the file holds no data rows"),
    ("rows.csv", "", r"rows.csv: the file is empty"),
    ("rows.csv", "id,text\n", r"rows.csv: has a header but no data rows \(id, text\)"),
    ("rows.jsonl", '{"text": "A."}\n{"text": \n', r"rows.jsonl:2: not valid JSON"),
    ("rows.jsonl.gz", "not gzip data", r"rows.jsonl.gz: broken gzip data"),
])
def test_bad_tables_are_one_line_errors(name, content, message, tmp_path, capsys, tokenizer):
    (tmp_path / name).write_text(content, encoding="utf-8")
    err = one_line_error(capsys, ["prepare", str(tmp_path / name), "--tokenizer", str(tokenizer), "--out",
                                  str(tmp_path / "out")])
    assert re.search(message, err), err
    err = one_line_error(capsys, ["train-tokenizer", str(tmp_path / name), "--vocab-size", "50", "--out",
                                  str(tmp_path / "tok")])
    assert re.search(message, err), err


def test_parquet_errors_an_empty_one_a_missing_column_and_a_non_string(tmp_path):
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), tmp_path / "empty.parquet")
    pq.write_table(pa.table({"id": [1], "Body": ["A."]}), tmp_path / "other.parquet")
    pq.write_table(pa.table({"text": [1.5]}), tmp_path / "numbers.parquet")
    for name, message in [("empty.parquet", "the file holds no data rows"),
                          ("other.parquet", "no column 'text'; the columns are: id, Body"),
                          ("numbers.parquet", "row 1: the text column 'text' holds a float, not a string")]:
        with pytest.raises(BertError, match=message):
            list(iter_documents([tmp_path / name]))
    assert list(iter_documents([tmp_path / "other.parquet"], text_column="body")) == [["A."]]  # any case


def test_missing_libraries_and_inputs_are_one_line_errors(tmp_path, capsys, monkeypatch, tokenizer):
    write_table(tmp_path / "corpus.parquet")
    (tmp_path / "empty").mkdir()
    common = ["--tokenizer", str(tokenizer), "--out", str(tmp_path / "out")]
    assert "input folder" in one_line_error(capsys, ["prepare", str(tmp_path / "empty"), *common])
    assert "name files or folders, or --dataset" in one_line_error(capsys, ["prepare", *common])
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["A."]})}).save_to_disk(saved)
    capsys.readouterr()  # datasets' own progress bar
    err = one_line_error(capsys, ["prepare", "--dataset", str(saved), "--split", "test", *common])
    assert "has no split 'test'; its splits are: train" in err
    err = one_line_error(capsys, ["prepare", "--dataset", "no-such-dataset-anywhere", *common])
    assert "cannot load dataset no-such-dataset-anywhere (split train)" in err
    err = one_line_error(capsys, ["prepare", "--dataset", str(saved), "--format", "wikitext", *common])
    assert "the rows of a table are documents already" in err
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed: importing it raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert "pip install pyarrow" in one_line_error(capsys, ["prepare", str(tmp_path / "corpus.parquet"), *common])
    monkeypatch.setitem(sys.modules, "datasets", None)
    assert "pip install datasets" in one_line_error(capsys, ["prepare", "--dataset", str(saved), *common])


def test_tables_in_memory_must_hold_rows(tmp_path):
    for table, message in [([], "there are no rows"), (["text"], "row 1 is a str, not a dict"),
                           (datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["A."]})}),
                            r"holds the splits train: pass one of them, e.g. dataset\['train'\]"),
                           (pd.DataFrame({"text": ["A.", None]}), "the DataFrame: row 2: the text column 'text' "
                                                                  "holds nothing"),
                           ({"text": "A."}, "cannot read rows from a dict")]:
        with pytest.raises(BertError, match=message):
            list(iter_documents([table]))
