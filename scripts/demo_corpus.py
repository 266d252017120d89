"""Write the demo model's corpus as plain-format text files (one sentence per line, a blank line between documents).

    python scripts/demo_corpus.py OUT_DIR [--data ../shared/data]

The demo model (weights/bert-demo, made by scripts/pretrain_demo_model.sh) continues pretraining on two corpora
that `bert prepare` reads in different formats: WikiText-2 (``--format wikitext``) and Project Gutenberg books
(``--format gutenberg``). This script reads both with the same readers and writes, in OUT_DIR:

* ``train.txt``: WikiText-2 train + every book except the held-out ones (stage 1);
* ``wikitext-train.txt``: WikiText-2 train alone (stage 2);
* ``valid.txt``: WikiText-2 validation (the held-out set of the demo model's targets);
* ``books-heldout.txt``: the held-out books (never trained on; a second, out-of-Wikipedia evaluation).

Prepare them with ``--no-sentence-split`` (the sentences are already split).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bert.data.corpus import iter_documents

HELD_OUT_BOOKS = ("35-0.txt", "43-0.txt", "1952-0.txt")  # The Time Machine, Jekyll and Hyde, The Yellow Wallpaper


def write_documents(out: Path, *sources: tuple[list[Path], str]) -> int:
    """Write every document of every (files, format) source to ``out``; returns the number of documents."""
    count = 0
    with open(out, "w", encoding="utf-8") as handle:
        for files, fmt in sources:
            for document in iter_documents(files, fmt):
                handle.write("\n".join(document) + "\n\n")
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write train.txt, valid.txt, books-heldout.txt into")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent.parent / "shared" / "data")
    args = parser.parse_args()
    wikitext, books = args.data / "wikitext-2", sorted((args.data / "books").glob("*-0.txt"))
    held_out = [book for book in books if book.name in HELD_OUT_BOOKS]
    training_books = [book for book in books if book.name not in HELD_OUT_BOOKS]
    args.out.mkdir(parents=True, exist_ok=True)
    train = write_documents(args.out / "train.txt", ([wikitext / "wiki.train.tokens"], "wikitext"),
                            (training_books, "gutenberg"))
    write_documents(args.out / "wikitext-train.txt", ([wikitext / "wiki.train.tokens"], "wikitext"))
    valid = write_documents(args.out / "valid.txt", ([wikitext / "wiki.valid.tokens"], "wikitext"))
    heldout = write_documents(args.out / "books-heldout.txt", (held_out, "gutenberg"))
    print(f"{args.out}: train {train} documents ({len(training_books)} books + WikiText-2 train), valid {valid}, "
          f"held-out books {heldout} ({', '.join(HELD_OUT_BOOKS)})")


if __name__ == "__main__":
    main()
