"""Helpers for plugin authors' tests: register a plugin for the duration of a ``with`` block."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from spikenas.plugin import get_plugin_manager, invalidate_registries
from spikenas.plugin.manager import check_pending, register


@contextlib.contextmanager
def temporary_plugin(plugin: Any, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module or object with ``@hookimpl`` functions) inside the block.

    Yields the plugin's registered name; the registries are rebuilt on entry and exit. A hook
    implementation without a specification (a misspelled hook) raises :class:`SpikenasError`.
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
        pm.unregister(plugin)
        invalidate_registries()
