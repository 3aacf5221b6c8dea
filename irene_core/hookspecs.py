# mypy: disable-error-code="empty-body"
# (hook specifications have no bodies: pluggy calls the implementations)
"""Hook specifications: the whole contract between IrEne's core and its plugins.

A plugin is a module (or object) with functions marked ``@hookimpl`` and is found through the
``irene`` entry-point group of the distribution that ships it::

    [project.entry-points.irene]
    emonpi = "irene_meter_emonpi.plugin"

Every contribution hook returns a list of objects that each have a stable ``name`` and satisfy their
kind's contract (``framework``, ``meter``, ``features`` or ``primitive``; see
:data:`irene_core.plugins.KINDS`); the registry (:mod:`irene_core.plugins`) looks them up by name.
A plugin that breaks the contract (fails to import, implements an unknown hook, raises in a hook,
returns a malformed contribution) is listed as ``broken`` by ``irene plugins``, its faulty parts left
out; two contributions of one kind and name are a ``conflict`` that fails only when that name is
requested.

Core's own built-ins register exactly like external plugins: the modules of
:mod:`irene_core.default_plugins` implement these hooks with ``@hookimpl``, and the registry
registers them in code before the entry points (always, even under ``IRENE_LOAD_PLUGINS``), as
distribution ``irene``.  They pass the same checks and lose a name to a ``replaces=True``
contribution like any plugin; e.g. core's fallback regressor is the ``primitive`` spec ``generic``.

**How the contract grows** (:data:`CONTRACT_VERSION`): a plugin written for an older contract keeps
working.  New capabilities of frameworks, meters, extractors or regressors arrive as keyword-only
arguments with defaults, or as capability attributes with a default on the contract's base class
(e.g. a ``Framework.phases`` attribute that core reads with a fallback), never as new required
positional arguments or new abstract methods; new hooks are optional to implement.  So
``Framework.trace`` gained ``phase``, ``context_len``, ``dtype`` and ``logits`` (core passes them only
when they differ from their defaults, and refuses a phase a plugin does not declare in ``phases``)
and ``Framework.check_resources`` (a method with a do-nothing default).  A change that
breaks plugins bumps the version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover - imports for annotations only
    import click

    from irene_core.metering.meter import MeterFactory
    from irene_core.predictor.regressor import RegressorSpec
    from irene_core.tracing.framework import Framework
    from irene_core.tree.features import FeatureExtractor

PROJECT = "irene"
#: Version of this contract; bumped only by a change that breaks existing plugins (see above).
CONTRACT_VERSION = 2
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
    (``Linear``, ``MatMul``…).  A spec with ``replaces=True`` takes over a name (and the replaced
    spec's aliases and suffixes) whatever the load order; two specs for one name, or two replacements
    of it, are a conflict.  Core contributes ``generic``, the fallback for types no plugin knows.
    See :class:`irene_core.predictor.regressor.RegressorSpec`."""


@hookspec
def irene_register_commands(cli: click.Group) -> None:
    """Add commands to the ``irene`` command-line interface (``cli.add_command(...)``).  A hook that
    raises adds nothing; a command name that another plugin or core also defines is added by none."""
