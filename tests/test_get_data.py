"""scripts/get_data.py fetches the public data sets into the layout the lessons and benchmarks read: files already
there are left alone, a download is checked against its size and sha256 and written whole, a zip is unpacked, MRPC's
train.tsv is made as GLUE makes it, and without a network each data set is one line saying what to fetch from where
and where to put it (exit status 1), never a traceback."""

from __future__ import annotations

import hashlib
import io
import re
import runpy
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from support import REPO

from bert.errors import BertError

GET_DATA = runpy.run_path(str(REPO / "scripts" / "get_data.py"))
DataFile, DataSet, fetch, main = GET_DATA["DataFile"], GET_DATA["DataSet"], GET_DATA["fetch"], GET_DATA["main"]
DATA_SETS, mrpc_train = GET_DATA["DATA_SETS"], GET_DATA["mrpc_train"]
SHARED = REPO.parent / "shared" / "data"  # where the lessons and benchmarks read them (get_data.py's default)


def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """urlopen fails as it does offline; returns the URLs it was asked for."""
    asked = []

    def refuse(url, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003 - urlopen's signature
        asked.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return asked


def described(name: str, data: bytes, **source: object) -> object:
    """A DataFile for ``data`` with its real size and sha256."""
    return DataFile(name, len(data), hashlib.sha256(data).hexdigest(), **source)


def test_offline_each_missing_data_set_is_one_line_saying_what_to_fetch_from_where_and_where_to_put_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    no_network(monkeypatch)
    assert main(["--out", str(tmp_path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(DATA_SETS) == 6, lines
    for line, name in zip(lines, DATA_SETS, strict=True):
        assert re.fullmatch(rf"get_data\.py: {name}: cannot download \S+ \(no network\): fetch .+ "
                            rf"from https://github\.com/\S+ into {re.escape(str(tmp_path / name))}/.*", line), line
    assert "unzip them there" in lines[0]  # wikitext-2's files come zipped
    assert "the 43 files 11-0.txt ... 60392-0.txt" in lines[1]
    assert lines[3].endswith("then run this again to make train.tsv")  # mrpc's is made from the others
    assert list(tmp_path.iterdir()) == []  # nothing half-made is left behind


def test_a_data_set_whose_files_are_there_is_left_alone_and_the_network_is_not_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    asked = no_network(monkeypatch)
    folder = tmp_path / "sst2"
    folder.mkdir()
    for file in DATA_SETS["sst2"].files:  # the right sizes: the check that runs before any download
        (folder / file.name).write_bytes(b"x" * file.size)
    assert main(["--out", str(tmp_path), "--only", "sst2"]) == 0
    assert capsys.readouterr().out == f"sst2: already there ({folder})\n"
    assert asked == []


def test_a_file_at_another_size_is_fetched_again_and_the_others_are_not(tmp_path: Path) -> None:
    (tmp_path / "remote").mkdir()
    files = {"a.tsv": b"sentence\tlabel\nfine\t1\n", "b.tsv": b"index\tsentence\n0\tok\n"}
    for name, data in files.items():
        (tmp_path / "remote" / name).write_bytes(data)
    data_set = DataSet("demo", "https://example.org/demo", "CC0", tuple(
        described(name, data, url=(tmp_path / "remote" / name).as_uri()) for name, data in files.items()))
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "a.tsv").write_bytes(files["a.tsv"][:5])  # a partial copy
    (folder / "b.tsv").write_bytes(files["b.tsv"])
    assert fetch(data_set, folder) == ["a.tsv"]
    assert {name: (folder / name).read_bytes() for name in files} == files


def test_a_zipped_download_is_unzipped_checked_written_whole_and_recorded_in_source_md(tmp_path: Path) -> None:
    text = b" = Title = \n \n some words <unk> @-@ more \n"
    archive = tmp_path / "wiki.train.tokens.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("wiki.train.tokens", text)
    plain = b"@user\tO\nLondon\tB-location\n\t\n"
    (tmp_path / "train.conll").write_bytes(plain)
    data_set = DataSet("demo", "https://example.org/demo", "CC BY 4.0", (
        described("wiki.train.tokens", text, url=archive.as_uri(), member="wiki.train.tokens"),
        described("train.conll", plain, url=(tmp_path / "train.conll").as_uri())))
    folder = tmp_path / "out" / "demo"
    assert fetch(data_set, folder) == ["wiki.train.tokens", "train.conll"]
    assert (folder / "wiki.train.tokens").read_bytes() == text and (folder / "train.conll").read_bytes() == plain
    assert sorted(p.name for p in folder.iterdir()) == ["SOURCE.md", "train.conll", "wiki.train.tokens"]  # no temp
    source = (folder / "SOURCE.md").read_text()
    assert f"| wiki.train.tokens | {len(text)} | {hashlib.sha256(text).hexdigest()} | {archive.as_uri()} (unzipped) |" \
        in source and "Licence (as publicly stated): CC BY 4.0." in source


def test_a_download_that_is_not_the_expected_file_is_refused_in_one_line_and_not_written(tmp_path: Path) -> None:
    (tmp_path / "dev.tsv").write_bytes(b"sentence\tlabel\nchanged\t0\n")
    expected = b"sentence\tlabel\noriginal\t1\n"
    data_set = DataSet("demo", "https://example.org/demo", "CC0", (
        described("dev.tsv", expected, url=(tmp_path / "dev.tsv").as_uri()),))
    with pytest.raises(BertError) as error:
        fetch(data_set, tmp_path / "demo")
    message = str(error.value)
    assert "\n" not in message and message.startswith("dev.tsv is not the expected file (")
    assert f"expected {len(expected)}, {hashlib.sha256(expected).hexdigest()}" in message
    assert not (tmp_path / "demo" / "dev.tsv").exists()


def test_mrpc_train_is_made_as_glues_format_mrpc_makes_it(tmp_path: Path) -> None:
    """GLUE's download_glue_data.py: the source's header (byte-order mark and all), then every pair not held out
    for dev, fields re-joined with tabs (a stray trailing space stripped)."""
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    rows = ["1\t11\t12\tA cat sat .\tThe cat sat .\n", "0\t21\t22\tHeld out .\tFor dev .\n",
            "1\t31\t32\tLast one .\tThe last one . \n"]
    (tmp_path / "msr_paraphrase_train.txt").write_text(header + "".join(rows), encoding="utf-8")
    (tmp_path / "dev_ids.tsv").write_text("21\t22\n", encoding="utf-8")
    made = mrpc_train(tmp_path).decode("utf-8")
    assert made == header + rows[0] + "1\t31\t32\tLast one .\tThe last one .\n"


def test_a_made_file_is_made_after_the_downloads_it_is_made_from(tmp_path: Path) -> None:
    (tmp_path / "remote").mkdir()
    sources = {"msr_paraphrase_train.txt": "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA .\tB .\n"
                                           "0\t3\t4\tC .\tD .\n".encode(), "dev_ids.tsv": b"3\t4\n"}
    for name, data in sources.items():
        (tmp_path / "remote" / name).write_bytes(data)
    train = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA .\tB .\n".encode()
    data_set = DataSet("mrpc", "https://example.org/mrpc", "none stated", (
        described("train.tsv", train, make=mrpc_train),  # listed first, made last
        *(described(name, data, url=(tmp_path / "remote" / name).as_uri()) for name, data in sources.items())))
    assert fetch(data_set, tmp_path / "mrpc") == ["train.tsv", *sources]
    assert (tmp_path / "mrpc" / "train.tsv").read_bytes() == train


def test_only_names_known_data_sets(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--only", "sst2,imdb"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "get_data.py: error: argument --only: unknown data set imdb "
        "(choose from wikitext-2, books, sst2, mrpc, squad-v1.1, ner-wnut17)")


@pytest.mark.slow
def test_the_shared_data_is_every_file_get_data_fetches_byte_for_byte_and_is_left_alone(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, request: pytest.FixtureRequest) -> None:
    """It runs with the other tests that read ../shared/data, the lessons that train (`-m slow`): asked for, it
    fails without the data, saying how to get it; the default run, which needs no data set, leaves it to them."""
    if "slow" not in request.config.getoption("markexpr", ""):
        pytest.skip("reads ../shared/data: run it with `python -m pytest -m slow tests/test_get_data.py`")
    if not SHARED.is_dir():
        pytest.fail(f"no {SHARED}: run python scripts/get_data.py", pytrace=False)
    for data_set in DATA_SETS.values():  # the sizes and sha256 get_data.py checks downloads against are the real ones
        for file in data_set.files:
            data = (SHARED / data_set.name / file.name).read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (file.size, file.sha256), file.name
    made = mrpc_train(SHARED / "mrpc")  # GLUE's train.tsv, rebuilt from the MSR file: the shared copy, byte for byte
    assert hashlib.sha256(made).hexdigest() == hashlib.sha256((SHARED / "mrpc" / "train.tsv").read_bytes()).hexdigest()
    asked = no_network(monkeypatch)
    assert main([]) == 0  # the default --out is ../shared/data
    assert capsys.readouterr().out == "".join(f"{name}: already there ({SHARED / name})\n" for name in DATA_SETS)
    assert asked == []


def test_unzip_names_a_zip_without_the_file_in_one_line() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        handle.writestr("other.txt", b"x")
    with pytest.raises(BertError, match=r"^https://h/w\.zip is not a zip holding wiki\.test\.tokens \("):
        GET_DATA["unzip"](buffer.getvalue(), "wiki.test.tokens", "https://h/w.zip")
