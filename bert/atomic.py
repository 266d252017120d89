"""File chores in one place: atomic, durable writes — one for a file, one for a folder — and the output-folder
checks that run before long work (:func:`check_writable_directory`, :func:`make_directory`).

Atomic writes: one for a file, one for a folder. Every writer in bert goes through these two (and the
helpers built on them: a text, a copy).

:func:`write_file_atomically` writes a file under a temporary name in the same folder, fsyncs it, renames it over
the target (one atomic ``rename``) and fsyncs the folder: a reader, or the disk after a crash, sees the whole old
file or the whole new one.

:func:`replace_folder_atomically` fills a temporary folder ``PARENT/.tmp-NAME-PID`` beside the target, fsyncs every
file and folder in it, then swaps it in and fsyncs the parent:

* target absent: one ``rename`` (atomic);
* target present, on Linux: ``renameat2(RENAME_EXCHANGE)`` swaps the two folders in one atomic step, so ``NAME`` is
  the whole old folder or the whole new one at every instant; the old one (now under the temporary name) is then
  deleted;
* target present, elsewhere (or a file system without RENAME_EXCHANGE): the old folder is renamed aside to
  ``PARENT/.old-NAME-PID``, the new one renamed in, the old one deleted. A crash between those two renames leaves
  no ``NAME`` but the complete old folder under ``.old-NAME-PID``: the next write into ``PARENT`` (by any writer)
  renames it back before doing anything else.

Leftovers of a killed writer (``.tmp-*``/``.old-*`` folders, ``.NAME.PID-*.tmp`` files, whose process is gone) are
cleaned by the next write into the same parent folder (of the same file); readers never look at names starting with
a dot.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bert.errors import BertError

LEFTOVER = re.compile(r"^\.(tmp|old)-(.+)-(\d+)$")


def fsync_path(path: str | os.PathLike) -> None:
    """Flush ``path`` (a file or a folder: a folder's fsync makes the names in it durable) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomically(path: str | os.PathLike, write: Callable[[Path], Any]) -> None:
    """Call ``write(temporary_path)`` in ``path``'s folder, fsync the file, rename it over ``path`` and fsync the
    folder. The temporary file (``.NAME.PID-RANDOM.tmp``) is removed on any failure, and those of killed writers
    by the next write of ``path``; an OSError (a full disk, a read-only folder) becomes a one-line BertError
    ``cannot write PATH: REASON``."""
    path = Path(path)
    tmp: Path | None = None
    try:
        if path.parent.is_dir():
            leftover = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)-\w+\.tmp$")
            for entry in path.parent.iterdir():
                if (m := leftover.match(entry.name)) is not None and not _running(int(m.group(1))):
                    entry.unlink(missing_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual permissions
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    except OSError as error:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise BertError(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """:func:`write_file_atomically` for a UTF-8 text."""
    write_file_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def copy_file_atomically(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """:func:`write_file_atomically` for a copy of ``source``: ``target`` is the whole old file or the whole copy."""
    write_file_atomically(target, lambda tmp: shutil.copyfile(source, tmp))


def replace_folder_atomically(target: str | os.PathLike, fill: Callable[[Path], Any]) -> Path:
    """Write the folder ``target`` whole: ``fill(temporary_folder)`` writes its content, which then replaces
    ``target`` (see the module docstring for how, and what a crash leaves). On any failure the temporary folder is
    deleted and ``target`` is left as it was; the exception (fill's own, or an OSError) is raised as is, for the
    caller to word. Returns ``target``."""
    target = Path(target)
    parent = target.parent
    clean_leftovers(parent)
    tmp = parent / f".tmp-{target.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        fill(tmp)
        for folder, _, files in os.walk(tmp, topdown=False):
            for name in files:
                fsync_path(os.path.join(folder, name))
            fsync_path(folder)
        if not os.path.lexists(target):
            os.rename(tmp, target)
        elif _exchange(tmp, target):
            _remove(tmp)  # now the old folder
        else:
            aside = parent / f".old-{target.name}-{os.getpid()}"
            os.rename(target, aside)
            os.rename(tmp, target)
            _remove(aside)
        fsync_path(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def clean_leftovers(parent: Path) -> None:
    """Put back an old folder that a killed swap left aside (``.old-NAME-PID`` without ``NAME``), and delete the
    other ``.tmp-*``/``.old-*`` leftovers of processes that no longer run."""
    if not parent.is_dir():
        return
    leftovers = [(m.group(1), m.group(2), int(m.group(3)), entry) for entry in parent.iterdir()
                 if (m := LEFTOVER.match(entry.name)) is not None]
    for kind, name, pid, entry in sorted(leftovers, key=lambda item: item[0] != "old"):  # put back before deleting
        if _running(pid):
            continue
        if kind == "old" and not os.path.lexists(parent / name):
            os.rename(entry, parent / name)
        else:
            _remove(entry)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` atomically (Linux's renameat2 RENAME_EXCHANGE); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # glibc < 2.28, musl
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # kernel or file system without it
        return False
    raise OSError(code, os.strerror(code), str(b))


# ---- output folders ---------------------------------------------------------------------------------------------

def make_directory(path: str | os.PathLike) -> Path:
    """Create ``path`` (and its parents) if needed; BertError, not a traceback, when that is not allowed."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BertError(f"cannot create {path}: {error.strerror or error}") from None
    return path


def check_writable_directory(path: str | os.PathLike, what: str = "output folder", create: bool = True) -> Path:
    """Check that files can be written in ``path`` (created if needed, or with ``create=False`` only checked: then
    its nearest existing parent must be writable); BertError naming ``what`` if not.

    Meant to run before long work (training, tokenizing a corpus), so that a read-only or forbidden folder is
    reported at once instead of after hours."""
    path = Path(path)
    probe = path
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
        if create:
            path.mkdir(parents=True, exist_ok=True)
        else:
            while not probe.exists() and probe.parent != probe:
                probe = probe.parent
            if not probe.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(probe))
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".write-test-"):
            pass
    except OSError as error:
        raise BertError(f"cannot write to the {what} {path}: {error.strerror or error}") from None
    return path
