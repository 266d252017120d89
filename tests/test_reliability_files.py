"""Bad files, one clear line each: checkpoints whose safetensors header lies, pickles that must never run, configs no
BERT can have, broken tokenizers, and data files (corpora, tables, CoNLL, SQuAD) that are empty, mis-shaped or huge.

What test_checkpoint.py / test_tokenizer.py / test_finetune_data.py already prove through the Python API (truncated
safetensors, a legacy pickle with code, GPT-2 names, shape mismatches, empty vocab ...) is proved here once more
through the command line, where the promise is an exit status of 1 and a single line, never a traceback."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from support import REPO, TOKENIZER_FILES, make_tiny_model, without_device_note

import bert
from bert.cli import main
from bert.finetune.conll import read_conll
from bert.weights import read_state_dict

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
        "max_position_embeddings": 64}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A random BertForPreTraining (hidden 32) with the bert-base-uncased tokenizer files."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny"), max_positions=64)


@pytest.fixture
def broken(tiny_dir, tmp_path) -> Path:
    """A fresh copy of the tiny checkpoint folder, for a test to break."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_dir, folder)
    return folder


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 1, err
    err = without_device_note(err)  # a command that got as far as loading its model said where it runs
    assert err.count("\n") == 1 and ": error: " in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# ---- safetensors headers that lie ---------------------------------------------------------------------------------

def split_safetensors(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + size]), data[8 + size:]


def write_safetensors(path: Path, header: dict, body: bytes, declared_size: int | None = None) -> None:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw) if declared_size is None else declared_size) + raw + body)


FIRST, SECOND = "bert.embeddings.LayerNorm.bias", "bert.embeddings.LayerNorm.weight"  # 32 floats each, stored first


def lie(header: dict, body: bytes, kind: str) -> tuple[dict, bytes, int | None]:
    """Change a valid header (or its size field) into one that lies about the data, in the way ``kind`` names."""
    header = json.loads(json.dumps(header))
    if kind == "offsets-beyond-the-file":
        header[FIRST]["data_offsets"] = [0, len(body) + 4096]
    elif kind == "overlapping-tensors":
        header[SECOND]["data_offsets"] = [64, 192]  # starts in the middle of FIRST
    elif kind == "reversed-offsets":
        header[FIRST]["data_offsets"] = [128, 0]
    elif kind == "shape-larger-than-its-bytes":
        header[FIRST]["shape"] = [64]
    elif kind == "dtype-larger-than-its-bytes":
        header[FIRST]["dtype"] = "F64"
    elif kind == "shape-that-overflows":
        header[FIRST]["shape"] = [2**40, 2**40]
    elif kind == "negative-shape":
        header[FIRST]["shape"] = [-32]
    elif kind == "unknown-dtype":
        header[FIRST]["dtype"] = "F99"
    elif kind == "bytes-left-over":
        body = body + b"\0" * 64
    elif kind == "header-size-of-an-exabyte":
        return header, body, 2**60
    elif kind == "header-size-beyond-the-file":
        return header, body, len(body) * 4
    return header, body, None


@pytest.mark.parametrize("kind", [
    "offsets-beyond-the-file", "overlapping-tensors", "reversed-offsets", "shape-larger-than-its-bytes",
    "dtype-larger-than-its-bytes", "shape-that-overflows", "negative-shape", "unknown-dtype", "bytes-left-over",
    "header-size-of-an-exabyte", "header-size-beyond-the-file",
])
def test_a_safetensors_header_that_lies_is_refused_without_allocating(broken, kind):
    header, body = split_safetensors(broken / "model.safetensors")
    write_safetensors(broken / "model.safetensors", *lie(header, body, kind))
    start = time.perf_counter()
    with pytest.raises(bert.BertError, match="is not a readable safetensors file.*re-download or re-export"):
        bert.BertForPreTraining.from_pretrained(broken)
    assert time.perf_counter() - start < 5  # refused from the header: no exabyte allocation, no long read


# ---- bad checkpoint folders through the command line ---------------------------------------------------------------

def truncate_weights(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 3])


def gpt2_weights(folder: Path) -> None:
    save_file({"h.0.attn.c_attn.weight": torch.zeros(32, 96), "wte.weight": torch.zeros(50, 32)},
              folder / "model.safetensors", metadata={"format": "pt"})


def wrong_shapes(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 48}))


def edit_config(**change):
    def apply(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, **change}))
    return apply


def write(name: str, content: str | bytes):
    def apply(folder: Path) -> None:
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return apply


def remove(*names: str):
    def apply(folder: Path) -> None:
        for name in names:
            (folder / name).unlink()
    return apply


def vocab_without(token: str):
    def apply(folder: Path) -> None:
        (folder / "tokenizer.json").unlink()  # vocab.txt is then the tokenizer
        lines = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
        (folder / "vocab.txt").write_text("".join(f"{t}\n" for t in lines if t != token), encoding="utf-8")
    return apply


def tokenizer_json_of_type(kind: str):
    def apply(folder: Path) -> None:
        spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        spec["model"] = {"type": kind, "vocab": {"a": 0}, "merges": []}
        (folder / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    return apply


def pickled_code(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    torch.save({"bert.embeddings.word_embeddings.weight": RunsCode()}, folder / "pytorch_model.bin")


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


BAD_FOLDERS = {
    "truncated-safetensors": (truncate_weights, "is not a readable safetensors file"),
    "gpt2-checkpoint": (gpt2_weights, "has no BERT weights"),
    "shapes-unlike-config": (wrong_shapes, "in the checkpoint but (48,) in the model"),
    "missing-config": (remove("config.json"), "no config.json"),
    "config-not-json": (write("config.json", '{"hidden_size": 32,,}'), "is not valid JSON"),
    "config-empty": (write("config.json", ""), "is not valid JSON"),
    "config-not-utf8": (write("config.json", b'{"hidden_size": "\xff\xfe"}'), "is not valid JSON"),
    "config-a-list": (write("config.json", "[32, 2]"), "must hold a JSON object"),
    "heads-do-not-divide-hidden": (edit_config(num_attention_heads=5), "not divisible"),
    "negative-size": (edit_config(intermediate_size=-64), "intermediate_size must be a positive integer"),
    "unknown-activation": (edit_config(hidden_act="mish"), "hidden_act 'mish' is not supported"),
    "no-weights": (remove("model.safetensors"), "no weights in"),
    "pickled-code": (pickled_code, "never arbitrary pickled objects"),
    "missing-tokenizer": (remove(*TOKENIZER_FILES), "no tokenizer.json or vocab.txt"),
    "empty-vocab": (lambda f: (remove("tokenizer.json")(f), write("vocab.txt", "")(f)), "vocab.txt is empty"),
    "vocab-without-cls": (vocab_without("[CLS]"), "lacks the special token(s) [CLS]"),
    "vocab-without-sep": (vocab_without("[SEP]"), "lacks the special token(s) [SEP]"),
    "vocab-not-utf8": (lambda f: (remove("tokenizer.json")(f), write("vocab.txt", b"[PAD]\n\xff\xfe\n")(f)),
                       "must be UTF-8 text"),
    "tokenizer-json-cut-short": (write("tokenizer.json", '{"version": "1.0", "model": {"type": "WordPiece"'),
                                 "is not a valid tokenizer.json"),
    "tokenizer-json-bpe": (tokenizer_json_of_type("BPE"), "does not hold a WordPiece model"),
    "tokenizer-config-not-json": (write("tokenizer_config.json", "{'do_lower_case': True}"), "fix or delete"),
}


@pytest.mark.parametrize("case", sorted(BAD_FOLDERS))
def test_cli_names_what_is_wrong_with_a_checkpoint_folder_in_one_line(broken, case, capsys, monkeypatch):
    monkeypatch.chdir(broken)  # where a pickled "touch PWNED" would leave its mark
    breaker, message = BAD_FOLDERS[case]
    breaker(broken)
    code, out, err = run_cli(["fill-mask", "Paris is the [MASK] of France.", "--model", str(broken)], capsys)
    assert_one_line_error(code, err, message)
    assert out == "" and not (broken / "PWNED").exists()


def test_a_corrupt_checkpoint_gives_exit_status_1_and_no_traceback_from_the_installed_command(broken):
    truncate_weights(broken)
    result = subprocess.run([sys.executable, "-m", "bert", "nsp", "A.", "B.", "--model", str(broken)],
                            capture_output=True, text=True, cwd=REPO, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("bert nsp: error: ") and result.stderr.count("\n") == 1, result.stderr


# ---- pickles, shard indexes and config values through the Python API ----------------------------------------------

def test_a_zip_format_bin_with_code_in_it_is_refused_never_run_and_names_the_blocked_call(broken, monkeypatch):
    monkeypatch.chdir(broken)
    pickled_code(broken)
    with pytest.raises(bert.BertError) as caught:
        bert.BertModel.from_pretrained(broken)
    message = str(caught.value)
    assert "never arbitrary pickled objects" in message and "system" in message  # the blocked os.system call
    assert "weights_only" not in message  # torch's advice to switch the protection off is not passed on
    assert not (broken / "PWNED").exists()


@pytest.mark.parametrize("content", [[torch.zeros(2)], {"a": 1}, {"model": {"x": torch.zeros(1)}}, "text"])
def test_a_bin_file_that_is_not_a_dictionary_of_tensors_is_refused(broken, content):
    (broken / "model.safetensors").unlink()
    torch.save(content, broken / "pytorch_model.bin")
    with pytest.raises(bert.BertError, match="does not hold a dictionary of tensors"):
        bert.BertModel.from_pretrained(broken)


@pytest.mark.parametrize("weight_map, message", [
    ({"a": "../../../../etc/passwd"}, "outside its folder"),
    ({"a": "/etc/passwd"}, "outside its folder"),
    (["model.safetensors"], "weight_map must map tensor names to file names"),
    ({"a": 7}, "weight_map must map tensor names to file names"),
    ({"a": "missing-00001.safetensors"}, "does not exist"),
])
def test_a_shard_index_cannot_name_files_outside_its_folder_or_be_malformed(broken, weight_map, message):
    (broken / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(bert.BertError, match=message):
        read_state_dict(broken / "model.safetensors.index.json")


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": "32"}, "hidden_size must be a positive integer, got '32'"),
    ({"hidden_size": 32.0}, "hidden_size must be a positive integer"),
    ({"num_attention_heads": True}, "num_attention_heads must be a positive integer"),
    ({"max_position_embeddings": 0}, "max_position_embeddings must be a positive integer"),
    ({"vocab_size": -30522}, "vocab_size must be a positive integer"),
    ({"hidden_dropout_prob": "0.1"}, "hidden_dropout_prob must be in"),
    ({"attention_probs_dropout_prob": 1.5}, "attention_probs_dropout_prob must be in"),
    ({"layer_norm_eps": "1e-12"}, "layer_norm_eps must be a non-negative number"),
    ({"layer_norm_eps": -1.0}, "layer_norm_eps must be a non-negative number"),
    ({"initializer_range": "normal"}, "initializer_range must be a non-negative number"),
    ({"classifier_dropout": "high"}, "classifier_dropout must be null or in"),
    ({"pad_token_id": 10**9}, "pad_token_id 1000000000 is outside the vocabulary"),
    ({"pad_token_id": None}, "pad_token_id None is outside the vocabulary"),
    ({"id2label": {"zero": "neg"}}, "id2label must be an object of id: label with integer ids"),
    ({"id2label": ["neg", "pos"]}, "id2label must be an object of id: label"),
    ({"label2id": 5, "id2label": None}, "label2id must be an object"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key' is not supported"),
])
def test_config_values_no_bert_can_have_are_one_clear_error(broken, change, message):
    edit_config(**change)(broken)
    with pytest.raises(bert.BertError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bert.BertForPreTraining.from_pretrained(broken)


@pytest.mark.parametrize("change", [
    {"vocab_size": 10**12}, {"num_hidden_layers": 10**9},
    {"max_position_embeddings": 10**11, "hidden_size": 4096, "num_attention_heads": 64},
])
def test_config_sizes_beyond_this_machines_memory_fail_at_once_instead_of_allocating(broken, change):
    edit_config(**change)(broken)
    start = time.perf_counter()
    with pytest.raises(bert.BertError, match=r"parameters \(.* GiB in float32\), more than this machine's"):
        bert.BertForPreTraining.from_pretrained(broken)
    assert time.perf_counter() - start < 5


# ---- pretraining corpora --------------------------------------------------------------------------------------------

def test_cli_prepare_of_an_empty_corpus_is_one_line_and_writes_nothing(tiny_dir, tmp_path, capsys):
    corpus = tmp_path / "empty.txt"
    corpus.write_text("\n   \n\t\n", encoding="utf-8")
    code, _, err = run_cli(["prepare", str(corpus), "--tokenizer", str(tiny_dir), "--out", str(tmp_path / "data")],
                           capsys)
    assert_one_line_error(code, err, "the corpus is empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt"]


def test_a_corpus_too_small_for_any_notnext_pair_says_so_and_still_prepares(tiny_dir, tmp_path, capsys):
    corpus = tmp_path / "one.txt"
    corpus.write_text("The cat sat on the mat. It was warm. Then it slept.\n", encoding="utf-8")
    code, out, err = run_cli(["prepare", str(corpus), "--tokenizer", str(tiny_dir), "--out", str(tmp_path / "data"),
                              "--max-seq-len", "128"], capsys)
    assert code == 0, err
    assert "bert prepare: warning: no NotNext examples could be made" in err and "learns nothing" in err
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert meta["splits"]["train"]["not_next"] == 0 and meta["splits"]["train"]["is_next"] > 0
    # one line each: the warning, and the note that so small a corpus wants a smaller vocabulary
    assert all(line.startswith(("bert prepare: warning: ", "bert prepare: note: ")) for line in err.splitlines())


def test_lines_are_read_in_bounded_pieces_that_rejoin_to_the_exact_bytes():
    from bert.data.corpus import _bounded_lines

    text = ("word " * 50 + "ünïcödé€😀" * 30 + "x" * 200 + "\n\nshort line\n" + "日本語" * 100).encode()
    pieces = list(_bounded_lines(io.BytesIO(text), limit=64))
    assert b"".join(piece for piece, _ in pieces) == text
    assert all(len(piece) <= 128 for piece, _ in pieces)
    assert [ends for _, ends in pieces].count(True) == text.count(b"\n") + 1
    for piece, _ in pieces:
        piece.decode("utf-8")  # never cut inside a character


def test_a_50_mb_single_line_corpus_is_prepared_in_bounded_time_and_memory(minilm_dir, tmp_path):
    """The code path streams: the line is read in 1 MiB pieces, documents are tokenized in parts, so peak memory is
    the token arrays plus a few batches, not a multiple of the line (the old path also split sentences in quadratic
    time: it did not finish)."""
    words = ("the cat sat on one mat near the old river and watched birds fly over green hills while children "
             "played in the park").split()
    sentence_count = 0
    corpus = tmp_path / "one-line.txt"
    with open(corpus, "w", encoding="utf-8") as handle:
        block = []
        for i in range(997):
            block.append(" ".join(words[(i * 7 + k) % len(words)] for k in range(5 + i % 9)).capitalize() + ".")
        chunk = " ".join(block) + " "
        repeats = (50 << 20) // len(chunk) + 1
        for _ in range(repeats):
            handle.write(chunk)
        handle.write("\n")
        sentence_count = repeats * len(block)
    assert corpus.stat().st_size >= 50 << 20
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent (this pytest process) across fork + exec.
    driver = ("import json, re, sys; from bert.cli import main; code = main(sys.argv[1:]); "
              "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
              "print(json.dumps({'code': code, 'peak_mb': int(hwm) / 1024}))")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", driver, "prepare", str(corpus), "--tokenizer", str(minilm_dir),
                             "--out", str(tmp_path / "data"), "--max-seq-len", "512", "--quiet"],
                            capture_output=True, text=True, cwd=REPO, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    seconds = time.perf_counter() - start
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["code"] == 0, result.stderr
    assert "read in pieces" in result.stderr and "Traceback" not in result.stderr
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    # Nothing lost: every sentence is there (a cut between pieces can only split one in two).
    pieces = (corpus.stat().st_size >> 20) + 1
    assert sentence_count <= meta["corpus"]["sentences"] <= sentence_count + pieces
    assert meta["splits"]["train"]["examples"] > 10_000
    assert seconds < 150, seconds  # about 15 s on one core
    assert report["peak_mb"] < 1200, report  # about 650 MB, of which ~220 MB is torch itself


# ---- fine-tuning data files ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    """A (random) fine-tuned classifier with the labels neg/pos, as `bert finetune classify` leaves one."""
    return make_tiny_model(tmp_path_factory.mktemp("classifier"), cls=bert.BertForSequenceClassification,
                           num_labels=2, id2label={0: "neg", 1: "pos"})


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tagger"), cls=bert.BertForTokenClassification,
                           num_labels=3, id2label={0: "O", 1: "B-PER", 2: "I-PER"})


@pytest.mark.parametrize("terminal", [True, False])
def test_predict_on_a_file_shows_a_progress_bar_on_a_terminal_only(classifier_dir, tagger_dir, tmp_path, capsys,
                                                                   monkeypatch, terminal):
    table = tmp_path / "many.csv"
    table.write_text("text\n" + "".join(f"review number {i}\n" for i in range(130)), encoding="utf-8")
    conll = tmp_path / "many.conll"
    conll.write_text("".join(f"Ann{i}\nsmiled\n\n" for i in range(130)), encoding="utf-8")
    squad = tmp_path / "many.jsonl"
    squad.write_text("".join(json.dumps({"id": str(i), "question": "Who?", "context": f"Ann {i} smiled."}) + "\n"
                             for i in range(130)), encoding="utf-8")
    runs = [["classify", "--model", str(classifier_dir), "--input", str(table)],
            ["ner", "--model", str(tagger_dir), "--input", str(conll)],
            ["qa", "--model", str(make_tiny_model(tmp_path / "reader", cls=bert.BertForQuestionAnswering)),
             "--input", str(squad)]]
    for argv in runs:
        monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
        code, out, err = run_cli(["predict", *argv, "--output", str(tmp_path / "out.jsonl")], capsys)
        assert code == 0, err
        assert ("predicting:" in err and "/3 [" in err) == terminal, (argv[0], err)  # 130 rows: 3 batches of 64


def test_predict_with_gold_labels_the_model_never_saw_names_the_row_and_the_known_labels(classifier_dir, tmp_path,
                                                                                         capsys):
    data = tmp_path / "test.csv"
    data.write_text("text,label\ngood film,pos\nso so,neutral\n", encoding="utf-8")
    code, out, err = run_cli(["predict", "classify", "--model", str(classifier_dir), "--input", str(data),
                              "--label-column", "label"], capsys)
    assert_one_line_error(code, err, "row 2 has label 'neutral', which the model does not know (its labels: neg, pos)")


@pytest.mark.parametrize("content, extra, message", [
    ("review,stars\ngood,5\n", [], "no text column found"),
    ("text,label\ngood,pos\n", ["--label-column", "sentiment"], "no label column 'sentiment'; the columns are: text"),
    ("text,label\ngood,pos\nbad\n", [], "test.csv:3: 1 columns but the header has 2"),
    ('text,label\n"unclosed,pos\n', [], "test.csv"),
    ("text,label\n", [], "has a header but no data rows"),
])
def test_predict_on_a_table_with_missing_columns_or_ragged_rows_is_one_line(classifier_dir, tmp_path, capsys,
                                                                            content, extra, message):
    data = tmp_path / "test.csv"
    data.write_text(content, encoding="utf-8")
    code, _, err = run_cli(["predict", "classify", "--model", str(classifier_dir), "--input", str(data), *extra],
                           capsys)
    assert_one_line_error(code, err, message)


def test_finetune_with_an_eval_file_lacking_the_train_files_columns_fails_before_training(tiny_dir, tmp_path, capsys):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\ngreat\tpos\nawful\tneg\n", encoding="utf-8")
    dev = tmp_path / "dev.tsv"
    dev.write_text("text\tlabel\nfine\tpos\n", encoding="utf-8")
    code, _, err = run_cli(["finetune", "classify", "--model", str(tiny_dir), "--train", str(train), "--eval",
                            str(dev), "--out", str(tmp_path / "out"), "--text-column", "sentence"], capsys)
    assert_one_line_error(code, err, "dev.tsv: no text column 'sentence'; the columns are: text, label")
    assert not (tmp_path / "out" / "metrics.jsonl").exists()


def test_a_table_that_is_not_utf8_is_one_line(classifier_dir, tmp_path, capsys):
    data = tmp_path / "latin1.tsv"
    data.write_bytes("sentence\tlabel\ncafé crème\tpos\n".encode("latin-1"))
    code, _, err = run_cli(["predict", "classify", "--model", str(classifier_dir), "--input", str(data)], capsys)
    assert_one_line_error(code, err, "cannot read it as UTF-8 text")


@pytest.mark.parametrize("content, message", [
    ('{"data": [{"paragraphs": [', "not valid JSON"),
    ('{"data": {"paragraphs": []}}', 'expected an object with a "data" list'),
    ('{"data": [{"paragraphs": [{"context": 5, "qas": []}]}]}', "context should be a str"),
    ('{"data": [{"paragraphs": [{"context": "abc", "qas": [{"question": "q", "answers": '
     '[{"text": "a", "answer_start": 99}]}]}]}]}', "answer_start 99 is outside the context"),
    ('{"data": []}', "no questions"),
])
def test_malformed_squad_json_is_one_line_for_training_and_prediction(tiny_dir, tmp_path, capsys, content, message):
    data = tmp_path / "squad.json"
    data.write_text(content, encoding="utf-8")
    code, _, err = run_cli(["finetune", "qa", "--model", str(tiny_dir), "--train", str(data), "--out",
                            str(tmp_path / "out")], capsys)
    assert_one_line_error(code, err, message)
    code, _, err = run_cli(["predict", "qa", "--model", str(tiny_dir), "--input", str(data)], capsys)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err


def test_conll_with_stray_columns_is_refused_with_the_line_number(tagger_dir, tmp_path, capsys):
    data = tmp_path / "test.conll"
    data.write_text("Alice\tB-PER\nsmiled\tO\n\nBob\tNNP\tB-PER\n", encoding="utf-8")
    code, _, err = run_cli(["predict", "ner", "--model", str(tagger_dir), "--input", str(data)], capsys)
    assert_one_line_error(code, err, "test.conll:4: 3 columns, but line 1 has 2")


def test_conll_trailing_tabs_are_not_an_empty_tag_column_and_mixed_separators_are_named(tmp_path):
    data = tmp_path / "trailing.conll"
    data.write_text("Alice\tB-PER\t\nsmiled\tO\t\n", encoding="utf-8")
    assert read_conll(data)[0].tags == ["B-PER", "O"]
    mixed = tmp_path / "mixed.conll"
    mixed.write_text("Alice\tNNP B-PER\n", encoding="utf-8")
    with pytest.raises(bert.BertError, match="mixed.conll:1: the tag 'NNP B-PER' holds a space"):
        read_conll(mixed)


def test_conll_gold_tags_the_model_never_saw_are_named(tagger_dir, tmp_path, capsys):
    data = tmp_path / "test.conll"
    data.write_text("Alice\tB-PER\nParis\tB-LOC\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, _, err = run_cli(["predict", "ner", "--model", str(tagger_dir), "--input", str(data)], capsys)
    assert_one_line_error(code, err, "sentence 1 has tag 'B-LOC', which the model does not know")
