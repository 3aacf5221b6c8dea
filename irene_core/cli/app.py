"""The ``irene`` command line: the root group, core's command groups, plugin commands, and ``main``."""

from __future__ import annotations

import os
import sys
import warnings
from typing import TextIO

import click

from irene_core._version import __version__
from irene_core.cli import data, meter, plugins, predictor, run, serve, trace
from irene_core.cli.console import err_console
from irene_core.errors import IreneError
from irene_core.plugins import get_registry


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="irene")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def cli(debug: bool) -> None:
    """IrEne: measure and predict the inference energy of transformer models, node by node."""


for _command in (
    plugins.plugins_cmd, data.import_csv_cmd, data.export_cmd, data.evaluate_cmd, trace.trace_cmd, run.run_cmd,
    predictor.train_cmd, predictor.predict_cmd, predictor.crossvalidate_cmd, meter.meter_group, meter.sample_cmd,
    serve.serve_cmd, serve.report_cmd,
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
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def _add_plugin_commands() -> None:
    """Plugins' commands; a plugin whose hook raises or redefines a command is listed by ``irene plugins``."""
    get_registry().register_commands(cli)


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
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except IreneError as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0
