"""Corpus reading: sentence splitting, plain, WikiText and Gutenberg formats, bad bytes, empty input."""

from __future__ import annotations

import warnings

import pytest

from bert.data.corpus import GUTENBERG_HEADER_LINES, CorpusWarning, ReadStats, iter_documents, split_sentences
from bert.errors import BertError


def test_split_sentences_rules():
    assert split_sentences("  ") == []
    assert split_sentences("One. Two! Three? four") == ["One.", "Two!", "Three? four"]
    assert split_sentences("Dr. Smith met J. R. R. Tolkien in the U.S. Army. Then he left.") == [
        "Dr. Smith met J. R. R. Tolkien in the U.S. Army.",
        "Then he left.",
    ]
    # A spaced quote (WikiText) is ambiguous; it goes with the following sentence.
    assert split_sentences('He said " Go . " Then 3 more came .') == ['He said " Go .', '" Then 3 more came .']
    assert split_sentences('He said "Go." Then more.') == ['He said "Go."', "Then more."]
    assert split_sentences('It ended . " Quoted start " here .') == ["It ended .", '" Quoted start " here .']
    assert split_sentences("e.g. this stays. Together, yes.") == ["e.g. this stays.", "Together, yes."]


def _write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_plain_documents_blank_lines_and_files(tmp_path):
    a = _write(tmp_path / "a.txt", "\n\nFirst doc line one.\nLine two. Sentence three.\n\n \n\t\nSecond doc.\n\n\n")
    b = _write(tmp_path / "b.txt", "Third doc, other file.\n")
    stats = ReadStats()
    docs = list(iter_documents([a, b], "plain", stats=stats))
    assert docs == [
        ["First doc line one.", "Line two.", "Sentence three."],
        ["Second doc."],
        ["Third doc, other file."],
    ]
    assert stats.documents == 3 and stats.sentences == 5
    assert list(iter_documents([a], sentence_split=False))[0] == ["First doc line one.", "Line two. Sentence three."]


def test_wikitext_titles_split_documents(tmp_path):
    text = (
        " \n = Alpha = \n \n First para of alpha . It has @-@ two sentences .\n \n = = Section = = \n \n"
        " Second para 1 @,@ 000 <unk> .\n \n = = = Deep = = = \n \n Deep text .\n"
        " = x ; y = \n"  # heading-shaped but not between blank lines: ordinary text
        " \n = Beta = \n \n Beta text .\n \n = Empty = \n \n"
    )
    path = _write(tmp_path / "wiki.tokens", text)
    docs = list(iter_documents([path], "wikitext"))
    assert docs == [
        ["First para of alpha .", "It has-two sentences .", "Second para 1,000 [UNK] .", "Deep text .", "= x ; y ="],
        ["Beta text ."],
    ]


def test_invalid_utf8_is_replaced_with_one_warning(tmp_path):
    a = _write(tmp_path / "a.txt", b"Good line.\nBad \xff\xfe bytes here.\n\nMore \xc3 text.\n")
    b = _write(tmp_path / "b.txt", b"Also \x80 bad.\n")
    stats = ReadStats()
    docs = list(iter_documents([a, b], stats=stats))
    assert docs[0][1] == "Bad \ufffd\ufffd bytes here."
    assert stats.invalid_bytes == {str(a): 3, str(b): 1}
    with pytest.warns(CorpusWarning, match=r"4 byte\(s\).*a\.txt \(3\).*b\.txt \(1\)"):
        stats.warn_invalid_bytes()


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(BertError, match="not found"):
        list(iter_documents([tmp_path / "nope.txt"]))
    with pytest.raises(BertError, match="format"):
        list(iter_documents([_write(tmp_path / "a.txt", "x")], "html"))
    with pytest.raises(BertError, match="no input files"):
        list(iter_documents([]))


def test_empty_file_gives_no_documents(tmp_path):
    path = _write(tmp_path / "empty.txt", "\n \n\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(iter_documents([path])) == []


def test_gutenberg_books_keep_only_the_text_joined_into_paragraphs(tmp_path):
    book = ("\ufeffThe Project Gutenberg eBook of A Test\r\n\r\nThis eBook is for the use of anyone.\r\n\r\n"
            "*** START OF THE PROJECT GUTENBERG EBOOK A TEST ***\r\n\r\nCHAPTER I.\r\n\r\n"
            "It was a dark and stormy\r\nnight. The rain fell in\r\ntorrents.\r\n\r\n"
            "Then it stopped.\r\n\r\n*** END OF THE PROJECT GUTENBERG EBOOK A TEST ***\r\n\r\nLicence text.\r\n")
    (tmp_path / "1-0.txt").write_bytes(book.encode("utf-8"))
    (tmp_path / "2-0.txt").write_text("No markers here.\n\nJust two\nparagraphs.\n", encoding="utf-8")
    docs = list(iter_documents([tmp_path / "1-0.txt", tmp_path / "2-0.txt"], "gutenberg"))
    assert docs == [["CHAPTER I.", "It was a dark and stormy night.", "The rain fell in torrents.", "Then it stopped."],
                    ["No markers here.", "Just two paragraphs."]]
    unmarked = tmp_path / "3-0.txt"  # more lines than a header has before any start marker: read whole
    unmarked.write_text("Line.\n" * (GUTENBERG_HEADER_LINES + 5), encoding="utf-8")
    assert len(list(iter_documents([unmarked], "gutenberg"))) == 1
