"""What a data command's inputs name: files, folders of files, gzip-compressed files, and tables held in memory.

* A folder stands for every file under it, recursively, in sorted path order, hidden files and folders (a name that
  starts with ".") left out: ``bert prepare corpus/`` reads ``corpus/a.txt``, then ``corpus/b/c.txt``, then
  ``corpus/d.txt``.
* A file whose name ends in ``.gz`` is read decompressed, whatever its format; the format is the one of the name
  without ``.gz`` (``wiki.jsonl.gz`` holds JSON lines).
* Anything that is not a path (a pandas DataFrame, a ``datasets.Dataset``, a list of dicts: see
  :mod:`bert.data.rows`) is passed through as it is.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from bert.errors import BertError

READ_BUFFER = 1 << 20


def is_path(source: Any) -> bool:
    """Whether ``source`` names a file or folder (a str or path), not a table held in memory."""
    return isinstance(source, (str, os.PathLike))


def expand_inputs(inputs: Sequence[Any]) -> list[Any]:
    """The inputs with each folder replaced by its files (see the module docstring) and every path a checked
    :class:`~pathlib.Path`; other objects as they are. BertError for no inputs, a missing path or an empty folder."""
    if not inputs:
        raise BertError("no input files given")
    expanded: list[Any] = []
    for source in inputs:
        if not is_path(source):
            expanded.append(source)
            continue
        path = Path(os.fspath(source))
        if path.is_dir():
            files = sorted(p for p in path.rglob("*")
                           if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise BertError(f"input folder {path} holds no files (hidden ones are skipped)")
            expanded += files
        elif path.is_file():
            expanded.append(path)
        elif not path.exists():
            raise BertError(f"input file {path} not found")
        else:
            raise BertError(f"input {path} is neither a file nor a folder")
    return expanded


def without_gz(path: str | os.PathLike) -> Path:
    """The name a file's format is read from: ``a.jsonl.gz`` → ``a.jsonl``."""
    path = Path(os.fspath(path))
    return path.with_suffix("") if path.suffix.lower() == ".gz" else path


class _Counted(io.RawIOBase):
    """A binary file that advances a progress bar by the bytes read from disk (compressed ones for ``.gz``, so a bar
    whose total is the files' sizes ends at 100%)."""

    def __init__(self, raw: BinaryIO, progress: Any) -> None:
        super().__init__()
        self._raw, self._progress = raw, progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)
        if count:
            self._progress.update(count)
        return count

    def seekable(self) -> bool:
        return self._raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


@contextlib.contextmanager
def open_input(path: Path, progress: Any = None) -> Iterator[BinaryIO]:
    """A buffered binary handle on ``path``, decompressed if its name ends in ``.gz``; ``progress`` (a tqdm bar, or
    None) counts the bytes read from disk. An unreadable file or broken gzip data is a one-line BertError."""
    try:
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
    except OSError as error:
        raise BertError(f"cannot read input file {path}: {error.strerror}") from None
    with raw:
        stream: BinaryIO = io.BufferedReader(_Counted(raw, progress) if progress is not None else raw, READ_BUFFER)
        if path.suffix.lower() != ".gz":
            yield stream
            return
        try:
            yield gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[misc]
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:  # raised by a read inside the caller's with block
            raise BertError(f"{path}: broken gzip data ({error})") from None
