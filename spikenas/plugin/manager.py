"""The plugin manager: built-ins first, then packages of the ``spikenas`` entry-point group.

``get_registries()`` asks every plugin to fill the operation, cost-model, score and strategy registries
once per process. A plugin that raises while registering, or that registers a name twice, is
a one-line :class:`~spikenas.errors.SpikenasError` naming the plugin. Setting
``SPIKENAS_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points (tests use it to stay hermetic).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import pluggy

from spikenas.errors import SpikenasError
from spikenas.plugin import hookspecs
from spikenas.plugin.registry import CostModelRegistry, OperationRegistry, Registry, ScoreRegistry, StrategyRegistry

ENTRY_POINT_GROUP = "spikenas"
AUTOLOAD_ENV = "SPIKENAS_DISABLE_PLUGIN_AUTOLOAD"
BUILTIN_PLUGINS = (
    "spikenas.ops.builtin", "spikenas.cost.memory", "spikenas.score.sahd", "spikenas.score.hamming",
    "spikenas.search.spikenas_search", "spikenas.search.random_search", "spikenas.search.evolution",
)


@dataclass(frozen=True)
class Registries:
    """Everything the plugins registered."""

    operations: OperationRegistry
    cost_models: CostModelRegistry
    scores: ScoreRegistry
    strategies: StrategyRegistry

    def all(self) -> tuple[Registry, ...]:
        return (self.operations, self.cost_models, self.scores, self.strategies)


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager with built-ins and (unless disabled) entry-point plugins."""
    import importlib

    pm = pluggy.PluginManager("spikenas")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if not os.environ.get(AUTOLOAD_ENV):
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # an entry point that fails to import
            raise SpikenasError(f"could not load a {ENTRY_POINT_GROUP!r} entry-point plugin: {one_line(exc)}") from exc
    check_pending(pm)
    return pm


def one_line(exc: BaseException) -> str:
    """``str(exc)`` with its lines joined (pluggy's validation errors span three lines)."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def register(pm: pluggy.PluginManager, plugin: object, name: str | None = None) -> str:
    """``pm.register`` with a hook implementation that does not match its specification (wrong
    argument names) reported as a one-line :class:`SpikenasError`."""
    try:
        return pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise SpikenasError(one_line(exc)) from None


def check_pending(pm: pluggy.PluginManager) -> None:
    """pluggy's ``check_pending`` as a one-line :class:`SpikenasError` naming the plugin and
    the misspelled hook (a hook implementation without a specification)."""
    hooks = {name: getattr(pm.hook, name) for name in vars(pm.hook) if not name.startswith("_")}
    known = ", ".join(sorted(name for name, hook in hooks.items() if hook.has_spec()))
    for name, hook in hooks.items():
        if hook.has_spec():
            continue
        for impl in hook.get_hookimpls():
            if not impl.optionalhook:
                raise SpikenasError(
                    f"plugin {impl.plugin_name!r} implements unknown hook {name!r}; known hooks: {known}"
                )


def _fill(pm: pluggy.PluginManager, hook_name: str, registry: Registry) -> None:
    # Call each implementation separately, built-ins first, so errors name their plugin.
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    order = {name: i for i, name in enumerate(BUILTIN_PLUGINS)}
    impls = sorted(impls, key=lambda impl: order.get(impl.plugin_name, len(order)))
    for impl in impls:
        registry.bind(impl.plugin_name)
        try:
            impl.function(registry=registry)
        except SpikenasError:
            raise
        except Exception as exc:
            raise SpikenasError(
                f"plugin {impl.plugin_name!r} raised while registering {registry.kind}s: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


_cache: dict[int, Registries] = {}


def get_registries() -> Registries:
    """Registries filled by all plugins of the current manager (cached per manager)."""
    pm = get_plugin_manager()
    cached = _cache.get(id(pm))
    if cached is None:
        cached = Registries(OperationRegistry(), CostModelRegistry(), ScoreRegistry(), StrategyRegistry())
        _fill(pm, "spikenas_register_operations", cached.operations)
        _fill(pm, "spikenas_register_cost_models", cached.cost_models)
        _fill(pm, "spikenas_register_scores", cached.scores)
        _fill(pm, "spikenas_register_strategies", cached.strategies)
        _cache.clear()
        _cache[id(pm)] = cached
    return cached


def invalidate_registries() -> None:
    """Forget the filled registries (after registering or unregistering a plugin)."""
    _cache.clear()
