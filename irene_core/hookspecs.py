"""Hook specifications: the whole contract between IrEne's core and its plugins.

A plugin is a module (or object) with functions marked ``@hookimpl`` and is found through the
``irene`` entry-point group of the distribution that ships it::

    [project.entry-points.irene]
    emonpi = "irene_meter_emonpi.plugin"

Every contribution hook returns a list of objects that each have a stable ``name`` and a ``kind``
(``framework``, ``meter``, ``features`` or ``primitive``); the registry (:mod:`irene_core.plugins`)
looks them up by name and refuses two contributions of one kind with the same name.  Core's own
built-ins are registered the same way, through core's entry point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    import click

    from irene_core.tree.features import FeatureExtractor
    from irene_core.tracing.framework import Framework
    from irene_core.metering.meter import MeterFactory
    from irene_core.predictor.regressor import RegressorSpec

PROJECT = "irene"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def irene_frameworks() -> list[Framework]:
    """Framework tracers (kind ``framework``): turn a model + input size into a model tree,
    with model features, and replay any node alone.  See :class:`irene_core.tracing.framework.Framework`."""


@hookspec
def irene_meters() -> list[MeterFactory]:
    """Energy meters (kind ``meter``): classes or factories that open a meter from string options
    and measure named windows.  See :class:`irene_core.metering.meter.Meter`."""


@hookspec
def irene_feature_extractors() -> list[FeatureExtractor]:
    """Feature extractors (kind ``features``): model features computed from a tree, or resource
    features sampled while a node runs.  See :mod:`irene_core.tree.features`."""


@hookspec
def irene_primitive_regressors() -> list[RegressorSpec]:
    """Per-primitive energy regressors (kind ``primitive``), one spec per primitive type
    (``Linear``, ``MatMul``…).  A later plugin's spec for a name replaces an earlier one only when it
    sets ``replaces=True``; otherwise two specs for one name are an error.
    See :class:`irene_core.predictor.regressor.RegressorSpec`."""


@hookspec
def irene_register_commands(cli: click.Group) -> None:
    """Add commands to the ``irene`` command-line interface (``cli.add_command(...)``)."""
