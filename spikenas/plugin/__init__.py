"""Plugin system: hook specifications, the plugin manager and the named registries."""

import pluggy

hookimpl = pluggy.HookimplMarker("spikenas")

from spikenas.plugin.manager import get_plugin_manager, get_registries, invalidate_registries  # noqa: E402

__all__ = ["hookimpl", "get_plugin_manager", "get_registries", "invalidate_registries"]
