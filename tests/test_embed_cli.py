"""`bert embed` on many texts: --input FILE or stdin, one text per line, written as a float32 .npy [N, H] with a
one-line summary; its progress bar; its one-line errors (empty input, a missing file, an unwritable output)."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support import make_tiny_model, without_device_note

import bert
from bert.cli import main
from bert.inference.pipelines import encode, load

LINES = ["The cat sat on the mat.", "", "Stock prices fell sharply today.", "  spaced  ", "A longer line " * 5]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A random BertForPreTraining (hidden 32) with the bert-base-uncased tokenizer files."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def expected(tiny_dir) -> torch.Tensor:
    """The vectors of "first", then of every line of LINES, through the Python API."""
    model, tokenizer = load(bert.BertModel, tiny_dir)
    return encode(model, tokenizer, ["first", *LINES])


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, without_device_note(captured.err)


def test_embed_writes_the_arguments_then_every_line_of_a_file_as_a_float32_npy(tiny_dir, expected, tmp_path,
                                                                               capsys):
    source = tmp_path / "texts.txt"
    source.write_bytes(("\r\n".join(LINES) + "\r\n").encode())  # Windows line ends; a blank line is a text
    out = tmp_path / "vectors" / "vecs.npy"  # its folder is created
    code, stdout, err = run(["embed", "first", "--input", str(source), "--model", str(tiny_dir), "--output",
                             str(out), "--batch-size", "2"], capsys)
    assert code == 0 and err == "", err
    assert stdout == f"wrote {out}: 6 x 32 float32 (mean pooling) from {tiny_dir.name}\n"
    vectors = np.load(out)
    assert vectors.dtype == np.float32 and vectors.shape == (6, 32)
    torch.testing.assert_close(torch.from_numpy(vectors), expected, atol=1e-5, rtol=0)
    assert [p.name for p in out.parent.iterdir()] == ["vecs.npy"]  # no temporary file left


def test_embed_reads_standard_input_and_normalizes(tiny_dir, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\n".join(LINES).encode())))  # no final newline
    out = tmp_path / "unit.npy"
    code, stdout, _ = run(["embed", "first", "--input", "-", "--model", str(tiny_dir), "--output", str(out),
                           "--normalize"], capsys)
    assert code == 0 and stdout.endswith("6 x 32 float32 (mean pooling, normalized) from tiny\n".replace(
        "tiny", tiny_dir.name))
    vectors = torch.from_numpy(np.load(out))
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(vectors, torch.nn.functional.normalize(expected, dim=-1), atol=1e-5, rtol=0)


def test_embed_of_a_file_without_output_prints_what_it_prints_for_arguments(tiny_dir, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    source.write_text("one\ntwo\n")
    code, from_file, _ = run(["embed", "--input", str(source), "--model", str(tiny_dir), "--json"], capsys)
    assert code == 0
    code, from_arguments, _ = run(["embed", "one", "two", "--model", str(tiny_dir), "--json"], capsys)
    assert code == 0 and from_file == from_arguments and len(json.loads(from_file)) == 2
    code, lines, _ = run(["embed", "--input", str(source), "--model", str(tiny_dir)], capsys)
    assert code == 0 and [line.split()[0] for line in lines.splitlines()] == ["'one'", "'two'"]


def test_embed_replaces_an_existing_npy_whole_and_keeps_it_when_writing_fails(tiny_dir, tmp_path, capsys,
                                                                              monkeypatch):
    out = tmp_path / "vecs.npy"
    np.save(out, np.zeros((1, 3), dtype=np.float32))
    assert main(["embed", "a", "b", "--model", str(tiny_dir), "--output", str(out)]) == 0
    assert np.load(out).shape == (2, 32)
    capsys.readouterr()

    def full_disk(file, array):  # noqa: ANN001, ANN202 - np.save's signature
        file.write(b"\x93NUMPY partial")
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(np, "save", full_disk)
    code, _, err = run(["embed", "a", "--model", str(tiny_dir), "--output", str(out)], capsys)
    assert code == 1 and err == f"bert embed: error: cannot write {out}: No space left on device\n"
    assert np.load(out).shape == (2, 32) and [p.name for p in tmp_path.iterdir()] == ["vecs.npy"]


def test_embed_shows_a_progress_bar_for_a_file_on_a_terminal_or_when_asked(tiny_dir, tmp_path, capsys,
                                                                           monkeypatch):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(f"text {i}" for i in range(5)))
    argv = ["embed", "--input", str(source), "--model", str(tiny_dir), "--output", str(tmp_path / "v.npy"),
            "--batch-size", "2"]
    assert run(argv, capsys)[2] == ""  # stderr is no terminal here: no bar
    assert "embedding" in run([*argv, "--progress"], capsys)[2]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert "embedding" in run(argv, capsys)[2]
    assert run([*argv, "--no-progress"], capsys)[2] == ""
    assert run([*argv, "--batch-size", "5"], capsys)[2] == ""  # one batch: nothing to wait for
    assert run(["embed", *(f"text {i}" for i in range(5)), "--model", str(tiny_dir), "--batch-size", "2"],
               capsys)[2] == ""  # texts on the command line: no bar unless --progress


@pytest.mark.parametrize("setup, argv, message", [
    (lambda tmp: None, ["--input", "{tmp}/missing.txt"], "bert embed: error: {tmp}/missing.txt: file not found"),
    (lambda tmp: (tmp / "empty.txt").write_text(""), ["--input", "{tmp}/empty.txt"],
     "bert embed: error: {tmp}/empty.txt is empty: give one text per line"),
    (lambda tmp: (tmp / "latin1.txt").write_bytes("café\n".encode("latin-1")), ["--input", "{tmp}/latin1.txt"],
     "bert embed: error: {tmp}/latin1.txt: cannot read it as UTF-8 text (byte 3: invalid continuation byte)"),
    (lambda tmp: None, [], "bert embed: error: no texts to embed: give them as arguments, or one per line in "
                           "--input FILE ('-': stdin)"),
    (lambda tmp: (tmp / "out.npy").mkdir(), ["x", "--output", "{tmp}/out.npy"],
     "bert embed: error: cannot write {tmp}/out.npy: it is a folder; give a file name such as "
     "{tmp}/out.npy/vectors.npy"),
    (lambda tmp: (tmp / "file").write_text(""), ["x", "--output", "{tmp}/file/vecs.npy"],
     "bert embed: error: cannot write to the output folder {tmp}/file: Not a directory"),
], ids=["missing-file", "empty-file", "not-utf8", "no-texts", "output-is-a-folder", "output-under-a-file"])
def test_embed_input_and_output_problems_are_one_line_errors_before_the_model_loads(setup, argv, message, tmp_path,
                                                                                    capsys):
    setup(tmp_path)
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    code, out, err = run(["embed", *argv, "--model", str(tmp_path / "no-such-model")], capsys)
    assert (code, out, err) == (1, "", message.format(tmp=tmp_path) + "\n")


def test_embed_from_empty_standard_input_is_a_one_line_error(tiny_dir, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    code, _, err = run(["embed", "--input", "-", "--model", str(tiny_dir)], capsys)
    assert (code, err) == (1, "bert embed: error: standard input is empty: give one text per line\n")


def test_embed_output_and_json_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["embed", "x", "--json", "--output", "v.npy"])
    assert exit_status.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
