"""CLI command: trace (registered on :data:`irene_core.cli.cli`)."""

from __future__ import annotations

from irene_core.cli import cli  # noqa: F401
