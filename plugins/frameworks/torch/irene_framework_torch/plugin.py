"""Entry point of this plugin (group irene)."""

from irene_core.hookspecs import hookimpl


@hookimpl
def irene_frameworks():
    return []
