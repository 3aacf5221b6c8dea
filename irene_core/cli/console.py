"""The consoles every command prints to: stdout for results, stderr for progress, warnings and errors."""

from __future__ import annotations

import sys

from rich.console import Console

# Piped output (CI logs, files) gets a wide page instead of rich's 80-column default; piped messages
# stay one line each, however long (a log reader greps them), and progress bars show on terminals only.
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140, soft_wrap=not sys.stderr.isatty())
