"""Entry point of this plugin (group ``irene``): contributes the ``torch`` framework.

Kept light: torch and transformers are imported only when a model is traced.
"""

from irene_core import hookimpl
from irene_framework_torch.framework import TorchFramework


@hookimpl
def irene_frameworks():
    return [TorchFramework()]
