"""IrEne core: the model-tree schema, the plugin contract, the predictor and the ``irene`` CLI.

The public Python API (everything in ``__all__``, imported on first use)::

    import irene_core as irene

    traced = irene.trace("bert-base-uncased", batch_size=8, seq_len=128)   # a TracedModel
    (predicted,) = irene.predict(traced.record)                            # shipped predictor
    frame = predicted.to_pandas()                                          # one row per node

    with irene.open_meter("rapl") as meter, meter.window("step") as w:
        ...                                                                # the work to measure
    print(w.measurement.energy_j)

Plugin authors use the contracts below and the engine helpers of :mod:`irene_core.plugin_api`.
See docs/python-api.md and docs/writing-a-plugin.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from irene_core._lazy import lazy_exports
from irene_core._version import __version__

_EXPORTS = {
    # the tree schema
    "Node": "irene_core.tree.schema",
    "TreeRecord": "irene_core.tree.schema",
    "RecordKey": "irene_core.tree.schema",
    "MeterWindow": "irene_core.tree.schema",
    "Notice": "irene_core.tree.schema",
    "Level": "irene_core.tree.schema",
    "LEVELS": "irene_core.tree.schema",
    "MODEL_FEATURES": "irene_core.tree.schema",
    "RESOURCE_FEATURES": "irene_core.tree.schema",
    "FEATURE_UNITS": "irene_core.tree.schema",
    "OWN_OPS_TYPE": "irene_core.tree.schema",
    "SCHEMA_VERSION": "irene_core.tree.schema",
    "unique_id": "irene_core.tree.schema",
    "node_classes": "irene_core.tree.signature",
    # datasets
    "read_records": "irene_core.tree.jsonl",
    "load_records": "irene_core.tree.jsonl",
    "write_records": "irene_core.tree.jsonl",
    "append_record": "irene_core.tree.jsonl",
    "to_pandas": "irene_core.tree.frames",
    "per_token": "irene_core.tree.per_token",
    "PerToken": "irene_core.tree.per_token",
    # errors
    "IreneError": "irene_core.errors",
    "MeterError": "irene_core.metering.meter",
    # the plugin contract
    "hookimpl": "irene_core.hookspecs",
    "CONTRACT_VERSION": "irene_core.hookspecs",
    "Framework": "irene_core.tracing.framework",
    "TracedModel": "irene_core.tracing.framework",
    "ReplayResult": "irene_core.tracing.replay",
    "Meter": "irene_core.metering.meter",
    "MeterOption": "irene_core.metering.meter",
    "Measurement": "irene_core.metering.meter",
    "FeatureExtractor": "irene_core.tree.features",
    "ModelFeatureExtractor": "irene_core.tree.features",
    "ResourceSampler": "irene_core.metering.sampler",
    "RegressorSpec": "irene_core.predictor.regressor",
    "PrimitiveRegressor": "irene_core.predictor.regressor",
    "get_registry": "irene_core.plugins",
    # doing things
    "open_meter": "irene_core.metering.meter",
    "trace": "irene_core.tracing.trace",
    "Predictor": "irene_core.predictor.predictor",
    "load_predictor": "irene_core.predictor.predictor",
    "load_reference_predictor": "irene_core.predictor.predictor",
    "predict": "irene_core.predictor.predictor",
    # the architecture what-if (its function: irene_core.whatif.whatif, the subpackage holds the name)
    "WhatIfQuery": "irene_core.whatif",
    "WhatIfResult": "irene_core.whatif",
    "read_accuracy": "irene_core.whatif",
}

__all__ = [
    "CONTRACT_VERSION",
    "FEATURE_UNITS",
    "LEVELS",
    "MODEL_FEATURES",
    "OWN_OPS_TYPE",
    "RESOURCE_FEATURES",
    "SCHEMA_VERSION",
    "FeatureExtractor",
    "Framework",
    "IreneError",
    "Level",
    "Measurement",
    "Meter",
    "MeterError",
    "MeterOption",
    "MeterWindow",
    "ModelFeatureExtractor",
    "Node",
    "Notice",
    "PerToken",
    "Predictor",
    "PrimitiveRegressor",
    "RecordKey",
    "RegressorSpec",
    "ReplayResult",
    "ResourceSampler",
    "TracedModel",
    "TreeRecord",
    "WhatIfQuery",
    "WhatIfResult",
    "__version__",
    "append_record",
    "get_registry",
    "hookimpl",
    "load_predictor",
    "load_records",
    "load_reference_predictor",
    "node_classes",
    "open_meter",
    "per_token",
    "predict",
    "read_accuracy",
    "read_records",
    "to_pandas",
    "trace",
    "unique_id",
    "write_records",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # the names above, for type checkers and IDEs
    from irene_core.errors import IreneError
    from irene_core.hookspecs import CONTRACT_VERSION, hookimpl
    from irene_core.metering.meter import Measurement, Meter, MeterError, MeterOption, open_meter
    from irene_core.metering.sampler import ResourceSampler
    from irene_core.plugins import get_registry
    from irene_core.predictor.predictor import Predictor, load_predictor, load_reference_predictor, predict
    from irene_core.predictor.regressor import PrimitiveRegressor, RegressorSpec
    from irene_core.tracing.framework import Framework, TracedModel
    from irene_core.tracing.replay import ReplayResult
    from irene_core.tracing.trace import trace
    from irene_core.tree.features import FeatureExtractor, ModelFeatureExtractor
    from irene_core.tree.frames import to_pandas
    from irene_core.tree.jsonl import append_record, load_records, read_records, write_records
    from irene_core.tree.per_token import PerToken, per_token
    from irene_core.tree.schema import (
        FEATURE_UNITS,
        LEVELS,
        MODEL_FEATURES,
        OWN_OPS_TYPE,
        RESOURCE_FEATURES,
        SCHEMA_VERSION,
        Level,
        MeterWindow,
        Node,
        Notice,
        RecordKey,
        TreeRecord,
        unique_id,
    )
    from irene_core.tree.signature import node_classes
    from irene_core.whatif import WhatIfQuery, WhatIfResult, read_accuracy
