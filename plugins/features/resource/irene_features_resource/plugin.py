"""Entry point of this plugin (group ``irene``)."""

from irene_core import hookimpl


@hookimpl
def irene_feature_extractors():
    from irene_features_resource.sampler import ProcResourceSampler

    return [ProcResourceSampler()]
