"""CLI commands: serve, report (registered on :data:`irene_core.cli.app.cli`)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

import click

from irene_core.cli import options
from irene_core.cli.console import err_console
from irene_core.errors import IreneError

if TYPE_CHECKING:
    from irene_core.tree.schema import TreeRecord


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback makes the API readable from the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free one).")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="The only directory whose datasets (*.jsonl), model dirs and predictor dirs are served.")
@click.option("--cache", "cache_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="SQLite file caching answers (default: ~/.cache/irene/viz-cache.sqlite).")
def serve_cmd(host: str, port: int, data_dir: Path | None, cache_path: Path | None) -> None:
    """Serve the energy-tree page and its read-only JSON API (OpenAPI at /openapi.json)."""
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
    if missing:
        raise IreneError(f"irene serve needs {' and '.join(missing)}: pip install 'irene[viz]'")
    from irene_core.viz.config import LOOPBACK_HOSTS, ServeConfig, default_cache_path
    from irene_core.viz.energy_service import EnergyService
    from irene_core.viz.server import listen, serve

    loopback = _is_loopback(host)
    config = ServeConfig(
        data_dir=data_dir,
        cache_path=cache_path or default_cache_path(),
        allowed_hosts=LOOPBACK_HOSTS if loopback else ("*",),
        warm_up=True,
    )
    sock = listen(host, port)
    service: EnergyService | None = None
    try:
        service = EnergyService(config)
        ready = service.warm_up()  # now, not at the app's start-up: importing torch and the predictor takes seconds
        from irene_core.viz.app import create_app

        app = create_app(config, service)
    except BaseException:
        if service is not None:
            service.close()
        sock.close()
        raise
    url = f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}/"
    if not loopback:
        err_console.print(
            f"[yellow]warning:[/] listening on {host}: anyone who can reach this machine can read the API"
        )

    def preparing() -> None:
        err_console.print("IrEne-viz: preparing the first view (importing the tracer and the predictor); "
                          "the URL follows when it is ready")

    def announce(error: BaseException | None) -> None:
        """The URL, once the server answers and the first view is ready (or failed: its request reports it)."""
        if error is not None:
            why = str(error) if isinstance(error, IreneError) else f"{type(error).__name__}: {error}"
            err_console.print(f"[yellow]warning:[/] the first view could not be prepared: {' '.join(why.split())}",
                              highlight=False, soft_wrap=True)
        click.echo(f"IrEne-viz at {url} (data dir: {data_dir or 'none'}; cache: {config.cache_path}); "
                   "Ctrl-C stops it")

    serve(app, sock, ready, preparing if ready is not None else None, announce)


@click.command("report")
@click.argument("record", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Output HTML file (self-contained: works offline, loads nothing).")
@click.option("--predictor", default=None,
              help=f"Predict every record first: {options.PREDICTOR_NAMES}. "
                   "Default: show the energies the file already has.")
@click.option("--title", default=None, help="Page title (default: from the file name).")
def report_cmd(record: Path, html_path: Path, predictor: str | None, title: str | None) -> None:
    """Write the energy-tree page for the trees of RECORD (JSONL) as one HTML file."""
    from irene_core.tree.atomic import atomic_write
    from irene_core.tree.jsonl import load_records
    from irene_core.viz.report import render_html

    records = load_records(record)
    if not records:
        raise IreneError(f"{record}: no records")
    if predictor is not None:
        records = _predict(records, predictor)
    with atomic_write(html_path) as handle:
        handle.write(render_html(records, title or f"IrEne report: {record.name}"))
    models = sorted({r.model_name for r in records})
    click.echo(f"{html_path}: {len(records)} tree(s) of {', '.join(models)}, "
               f"{html_path.stat().st_size / 1024:.0f} KiB; open it in any browser")


def _predict(records: list[TreeRecord], predictor: str) -> list[TreeRecord]:
    from irene_core.predictor.predictor import load_predictor

    return load_predictor(predictor).predict(records)
