"""Writing files so that an interrupted or failed command never leaves a half-written file.

- :func:`atomic_write` replaces a file whole: a temp file beside it, fsynced, renamed over it.
- :func:`append_line` appends one whole line or nothing: one write on an ``O_APPEND`` descriptor and
  an fsync; a failed or short write truncates the file back to its previous size.
- :class:`DatasetLock` is an exclusive ``flock`` on ``.NAME.lock`` beside a dataset, held by every
  writer of it (re-entrant within a process), so a second writer is refused instead of interleaving.
  The holder removes the lock file on release; one left by a killed process is stale and harmless.

A failed file operation raises :class:`~irene_core.errors.IreneError` naming the file being written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from irene_core.errors import IreneError, os_error_message


@contextlib.contextmanager
def naming_os_errors(path: str | os.PathLike[str], *only: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an OSError of writing ``path`` into IreneError ``PATH: what went wrong``.

    With ``only`` (the files that stand for ``path``: it and its temp file), an OSError naming another
    file (an input read inside the block) passes through.
    """
    try:
        yield
    except OSError as exc:
        named = exc.filename
        if only and isinstance(named, (str, bytes)) and os.fsdecode(named) not in {os.fspath(o) for o in only}:
            raise
        raise IreneError(os_error_message(exc, path)) from exc


def make_parent(target: Path) -> None:
    """Create the directory ``target`` goes in; NotADirectoryError when a file stands in its place."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(target.parent)) from None


def _refuse_directory(target: Path) -> None:
    if target.is_dir():
        raise IreneError(f"{target}: is a directory (expected a file to write)")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a temp file beside ``path``; fsync and rename over ``path`` only on success."""
    target = Path(path)
    _refuse_directory(target)
    tmp = ""
    with naming_os_errors(target):
        make_parent(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with naming_os_errors(target, target, tmp):
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def dataset_write(path: str | os.PathLike[str]) -> Iterator[IO[Any]]:
    """:func:`atomic_write` of a dataset, holding its :class:`DatasetLock`."""
    with DatasetLock(path), atomic_write(path) as handle:
        yield handle


def _write_whole(fd: int, data: bytes) -> None:
    """Write all of ``data`` and fsync, or truncate the file back to its size before and raise."""
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:  # a short write (a file-size limit reached mid-line) is followed by the failing one
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
            os.fsync(fd)
        raise


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one whole line durably under the dataset lock, or nothing (see the module docstring).

    A file whose last line lacks its newline gets one first, so the new line never joins it.
    """
    target = Path(path)
    _refuse_directory(target)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    with DatasetLock(target), naming_os_errors(target):
        fd = os.open(target, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            _write_whole(fd, data)
        finally:
            os.close(fd)


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of a dataset: ``.NAME.lock`` in the same directory."""
    target = Path(path)
    return target.parent / f".{target.name}.lock"


#: Locks this process holds: the dataset's real path → [lock file descriptor, depth].
_held: dict[str, list[int]] = {}
_held_guard = threading.Lock()


class DatasetLock:
    """An exclusive, non-blocking ``flock`` on a dataset's lock file while a writer writes it.

    Re-entrant within a process (``irene run`` holds it for the whole run while each append takes
    it again). A lock held by another process raises IreneError naming the file and that process.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._key = os.path.realpath(self.path)

    def __enter__(self) -> DatasetLock:
        with _held_guard:
            held = _held.get(self._key)
            if held is not None:
                held[1] += 1
            else:
                _held[self._key] = [self._acquire(), 1]
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with _held_guard:
            held = _held[self._key]
            held[1] -= 1
            if held[1] == 0:
                del _held[self._key]
                with contextlib.suppress(OSError):  # unlinked while locked: no one can lock it afterwards
                    os.unlink(lock_path(self._key))
                os.close(held[0])

    def _acquire(self) -> int:
        """Lock the lock file; retried when the file was removed by a releasing holder meanwhile."""
        lock = lock_path(self._key)
        while True:
            with naming_os_errors(self.path):
                make_parent(lock)
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(fd, lock):
                    break
            except BlockingIOError:
                pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise IreneError(
                    f"{self.path}: another irene process is writing it (pid {pid}); wait for it or use another -o"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        with contextlib.suppress(OSError):  # the pid is only for the message above
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        return fd


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the open file ``fd`` (a releasing holder unlinks it)."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
