"""The architecture what-if (``irene whatif``, the viewer's what-if view): predicted energy of model
variants or of a list of models at one input size, per module type, against accuracy."""

from irene_core.whatif.engine import expand_models, plan, read_accuracy, whatif
from irene_core.whatif.schema import MAX_POINTS, Answer, TypeEnergy, WhatIfPoint, WhatIfQuery, WhatIfResult

__all__ = [
    "MAX_POINTS",
    "Answer",
    "TypeEnergy",
    "WhatIfPoint",
    "WhatIfQuery",
    "WhatIfResult",
    "expand_models",
    "plan",
    "read_accuracy",
    "whatif",
]
