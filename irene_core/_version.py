"""The installed version of IrEne core (the ``irene`` distribution)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("irene")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
