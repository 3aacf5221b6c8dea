"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class IreneError(Exception):
    """A user-facing error: the message says what is wrong and where (file:line, flag, plugin)."""
