"""The ``irene`` command line: the root group, core's command groups, plugin commands, and ``main``."""

from __future__ import annotations

import os
import sys
import warnings
from typing import TextIO

import click
from rich.markup import escape

from irene_core._version import __version__
from irene_core.cli import calibrate, data, meter, plugins, predictor, run, serve, sweep, trace, whatif
from irene_core.cli.console import err_console
from irene_core.errors import IreneError, os_error_message
from irene_core.plugins import get_registry


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="irene")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def cli(debug: bool) -> None:
    """IrEne: measure and predict the inference energy of transformer models, node by node."""


for _command in (
    plugins.plugins_cmd, data.import_csv_cmd, data.export_cmd, data.evaluate_cmd, trace.trace_cmd, run.run_cmd,
    predictor.train_cmd, predictor.predict_cmd, predictor.crossvalidate_cmd, calibrate.calibrate_cmd,
    meter.meter_group, meter.sample_cmd, serve.serve_cmd, serve.report_cmd, sweep.sweep_cmd, whatif.whatif_cmd,
):
    cli.add_command(_command)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Warnings as one ``warning: …`` line on stderr (no source line)."""
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def _add_plugin_commands() -> None:
    """Plugins' commands; a plugin whose hook raises or redefines a command is listed by ``irene plugins``."""
    get_registry().register_commands(cli)


def one_line(exc: Exception) -> str:
    """The error a command ended with, as one line naming what and where.

    IreneError says it itself; a failed file operation names the file; an input that is not UTF-8
    or nests too deeply, and anything unforeseen, still get one line (``--debug`` shows the traceback).
    """
    if isinstance(exc, IreneError):
        text = str(exc)
    elif isinstance(exc, OSError):
        text = os_error_message(exc)
    elif isinstance(exc, UnicodeDecodeError):
        text = f"input is not UTF-8 ({exc.reason} at byte {exc.start + 1})"
    elif isinstance(exc, RecursionError):
        text = "input nested too deeply to process"
    elif isinstance(exc, MemoryError):
        text = "out of memory"
    else:
        text = f"unexpected {type(exc).__name__}: {exc} (--debug shows the traceback; please report it)"
    return " ".join(text.splitlines())


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: one-line errors, non-zero exit, tracebacks only with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("IRENE_DEBUG") == "1"
    if not debug:
        warnings.showwarning = _show_warning
    try:
        _add_plugin_commands()
        cli.main(args=args, prog_name="irene", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.UsageError as exc:  # one line too: what is wrong, and where to read about it
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        err_console.print(f"[red]error:[/] {escape(exc.format_message() + where)}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/] {escape(one_line(exc))}", highlight=False, soft_wrap=True)
        return 1
    return 0
