"""CLI commands: ``meter list``, ``meter measure`` and ``sample`` (registered on :data:`irene_core.cli.app.cli`)."""

from __future__ import annotations

import json
import time

import click
from rich.table import Table

from irene_core.cli import options
from irene_core.cli.console import console
from irene_core.errors import IreneError
from irene_core.plugins import FIRST_PARTY, get_registry


@click.group("meter")
def meter_group() -> None:
    """Energy meters: which are installed and usable here, and measuring the machine's power."""


@meter_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def meter_list(as_json: bool) -> None:
    """Each meter: installed, usable here or why not, and its options."""
    registry = get_registry()
    table = registry.contributions("meter")
    rows = []
    for name in registry.names("meter"):
        factory = table[name].obj
        try:
            meter = factory()
            usable, reason = meter.available()
            meter.close()
        except IreneError as exc:
            usable, reason = False, str(exc)
        option_names = list(getattr(factory, "options", {}))
        rows.append({"name": name, "distribution": table[name].distribution, "installed": True,
                     "usable": usable, "reason": reason, "options": option_names})
    for (kind, name), dist in sorted(FIRST_PARTY.items()):
        if kind == "meter" and name not in table:
            rows.append({"name": name, "distribution": dist, "installed": False, "usable": False,
                         "reason": f"not installed: pip install {dist}", "options": []})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    out = Table(title="IrEne meters")
    for col in ("meter", "distribution", "usable here", "details", "options"):
        out.add_column(col)
    for r in rows:
        status = "[green]yes[/]" if r["usable"] else ("[red]no[/]" if r["installed"] else "[dim]not installed[/]")
        out.add_row(r["name"], r["distribution"], status, r["reason"], ", ".join(r["options"]))
    console.print(out)


@meter_group.command("measure")
@click.option("--meter", "meter_name", required=True, help="Meter name (see 'irene meter list').")
@options.meter_options
@click.option("--seconds", type=options.POSITIVE, default=5.0, show_default=True,
              help="Length of the measurement window.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def meter_measure(meter_name: str, meter_options: tuple[str, ...], seconds: float, as_json: bool) -> None:
    """Measure the machine's energy over a window of SECONDS (idle power when nothing else runs)."""
    from irene_core.metering.meter import open_meter, parse_option_pairs

    chosen = parse_option_pairs(meter_options)
    meter = open_meter(meter_name, chosen)
    usable, reason = meter.available()
    if not usable:
        raise IreneError(f"meter '{meter_name}' is not usable here: {reason}")
    with meter:
        m = meter.measure(seconds, "measure")
    if "gpus" in meter.options and "gpus" not in chosen:  # no model to take the GPUs from
        m.warnings.insert(0, f"no model: measuring every GPU ({reason}); choose with --meter-option gpus=0,1")
    if as_json:
        click.echo(m.model_dump_json(indent=2))
        return
    console.print(
        f"[bold]{m.meter}[/]: {m.energy_j:.3f} J over {m.duration_s:.3f} s = {m.mean_power_w:.2f} W mean "
        f"({m.samples} samples)"
    )
    for domain, joules in m.domains.items():
        console.print(f"  {domain}: {joules:.3f} J ({joules / m.duration_s:.2f} W)")
    for warning in m.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


@click.command("sample")
@click.option("--seconds", type=options.POSITIVE, default=5.0, show_default=True,
              help="How long to sample.")
@click.option("--interval-ms", type=options.POSITIVE, default=170.0, show_default=True,
              help="Sampling interval (the paper's 170 ms; 10 ms at least).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sample_cmd(seconds: float, interval_ms: float, as_json: bool) -> None:
    """Sample resource features (cpu %, mem %, GPU) for SECONDS and print their window means."""
    from irene_core.metering.sampler import ResourceSampler

    template = get_registry().get("features", "resource")
    if not isinstance(template, ResourceSampler):
        raise IreneError(f"the features plugin 'resource' ({type(template).__name__}) is not a resource sampler")
    sampler = template.configured(interval_s=interval_ms / 1000.0)
    with sampler:
        begin = time.monotonic()
        time.sleep(seconds)
        end = time.monotonic()
        features = sampler.window(begin, end)
        samples = sampler.sample_count(begin, end)
    missing = sampler.missing_features()
    if as_json:
        report = {"seconds": end - begin, "interval_ms": interval_ms, "samples": samples,
                  "features": features, "missing": missing}
        click.echo(json.dumps(report, indent=2))
        return
    out = Table(title=f"{samples} samples every {interval_ms:g} ms over {end - begin:.2f} s")
    out.add_column("feature")
    out.add_column("window mean", justify="right")
    for name, value in features.items():
        out.add_row(name, f"{value:.2f}")
    console.print(out)
    for name, reason in missing.items():
        console.print(f"[dim]{name}: not sampled ({reason})[/]")
