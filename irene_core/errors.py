"""The one exception type the CLI turns into a one-line message and a non-zero exit."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

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


def validation_message(error: ValidationError, unknown_hint: str = "") -> str:
    """The first problem of a pydantic validation error in one line: ``where: what`` (long paths shortened),
    or ``unknown field 'where'`` (+ ``unknown_hint``) for a field the model does not declare."""
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"]]
    where = ".".join(loc if len(loc) <= 8 else [*loc[:2], "…", *loc[-4:]])
    if first["type"] == "extra_forbidden":
        return f"unknown field '{where}'{unknown_hint}"
    return f"{where}: {first['msg']}" if where else first["msg"]
