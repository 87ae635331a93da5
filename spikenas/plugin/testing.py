"""Helpers for plugin authors' tests: register a plugin for the duration of a ``with`` block."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from spikenas.plugin import get_plugin_manager, invalidate_registries
from spikenas.plugin.manager import check_pending, forget_disabled, register


@contextlib.contextmanager
def temporary_plugin(plugin: Any, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module or object with ``@hookimpl`` functions) inside the block.

    Yields the plugin's registered name; the registries are rebuilt on entry and exit. A hook
    implementation without a specification (a misspelled hook) raises :class:`SpikenasError`;
    a plugin that fails while registering is disabled with a
    :class:`~spikenas.plugin.manager.PluginDisabledWarning`, as an installed one would be.
    """
    pm = get_plugin_manager()
    registered = register(pm, plugin, name)
    try:
        check_pending(pm)  # a misspelled hook fails here, as it would at start-up
    except Exception:
        pm.unregister(plugin)
        raise
    invalidate_registries()
    try:
        yield registered
    finally:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        forget_disabled(registered)
        invalidate_registries()
