"""The ``irene`` command line: one module per command group, assembled in :mod:`irene_core.cli.app`."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point (see :func:`irene_core.cli.app.main`)."""
    from irene_core.cli.app import main as run_main

    return run_main(argv)
