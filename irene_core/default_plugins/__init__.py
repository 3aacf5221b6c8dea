"""Core's own contributions, as plugins (like llm's ``llm/default_plugins``).

Each module here implements hooks of :mod:`irene_core.hookspecs` exactly as an external plugin
does; the registry registers the modules named in :data:`irene_core.plugins.DEFAULT_PLUGINS` in
code, always (even under ``IRENE_LOAD_PLUGINS``), with distribution ``irene``.  They go through
the same checks and name resolution, so a plugin can take a name over with ``replaces=True``.
"""
