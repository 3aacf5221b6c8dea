"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations

import errno
import os

#: What a failed file operation means for the user, by errno (the rest use the OS's own words).
_OS_ERROR_WORDS = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "file too large (the disk is full or a file-size limit was reached)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.ENOENT: "no such file or directory",
    errno.ENAMETOOLONG: "file name too long",
}


class IreneError(Exception):
    """A user-facing error: the message says what is wrong and where (file:line, flag, plugin)."""


def os_error_message(exc: OSError, path: str | os.PathLike[str] | None = None) -> str:
    """``PATH: what went wrong`` for a failed file operation, in one line (``path`` overrides the error's)."""
    words = _OS_ERROR_WORDS.get(exc.errno or 0) or exc.strerror or str(exc)
    where = path if path is not None else exc.filename
    if where is None:
        return words
    return f"{os.fsdecode(where) if isinstance(where, (str, bytes, os.PathLike)) else where}: {words}"
