"""Entry point of this plugin (group ``irene``): contributes the ``tensorflow`` framework.

Kept light: TensorFlow, Keras and KerasHub are imported only when a model is traced.
"""

from irene_core import hookimpl
from irene_framework_tensorflow.framework import TensorFlowFramework


@hookimpl
def irene_frameworks():
    return [TensorFlowFramework()]
