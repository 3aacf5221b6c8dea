"""Entry point of this plugin (group ``irene``)."""

from irene_core import hookimpl
from irene_features_model.extractor import TreeModelFeatures


@hookimpl
def irene_feature_extractors():
    return [TreeModelFeatures()]
