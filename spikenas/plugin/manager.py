"""The plugin manager: built-ins first, then packages of the ``spikenas`` entry-point group.

The built-ins are named where the application is assembled (``spikenas/__init__.py`` calls
:func:`set_builtin_plugins`), so this package names nothing above it; they are registered
whether or not entry points are autoloaded.

``get_registries()`` asks every plugin to fill the operation, cost-model, score and strategy
registries once per process. A broken third-party plugin is contained: one whose module fails
to import, whose hooks do not match their specifications, that raises while registering or that
registers a name already taken is *disabled* (none of its items are registered) with a
one-line :class:`PluginDisabledWarning` naming it, and every command that does not need it
works; asking for one of its items is a one-line error saying why it is missing. Hooks are
called through ``pm.hook`` in pluggy's order: built-ins (``tryfirst``) first, then third-party
plugins, the last registered first, so of two that register one name the later-called one is
disabled. A broken
built-in is an error. ``SPIKENAS_DISABLE_PLUGIN_AUTOLOAD=1`` (or ``true``/``yes``) skips every
entry point (tests use it to stay hermetic); ``SPIKENAS_BLOCK_PLUGINS=name,other`` skips those.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import warnings
from dataclasses import dataclass
from typing import Iterable

import pluggy

from spikenas.base.errors import SpikenasError
from spikenas.plugin import hookspecs
from spikenas.plugin.registry import CostModelRegistry, OperationRegistry, Registry, ScoreRegistry, StrategyRegistry

ENTRY_POINT_GROUP = "spikenas"
AUTOLOAD_ENV = "SPIKENAS_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV = "SPIKENAS_BLOCK_PLUGINS"
_builtins: tuple[str, ...] = ()  # modules registered as built-in plugins, in calling order


def set_builtin_plugins(names: Iterable[str]) -> None:
    """Name the modules (importable names, in the order their hooks are called) that are the
    application's built-in plugins: registered first, also with autoload disabled, and an error,
    not a warning, when broken. The manager is rebuilt on next use."""
    global _builtins
    _builtins = tuple(names)
    get_plugin_manager.cache_clear()
    invalidate_registries()


def builtin_plugins() -> tuple[str, ...]:
    """The names :func:`set_builtin_plugins` gave."""
    return _builtins


@dataclass(frozen=True)
class Registries:
    """Everything the plugins registered."""

    operations: OperationRegistry
    cost_models: CostModelRegistry
    scores: ScoreRegistry
    strategies: StrategyRegistry

    def all(self) -> tuple[Registry, ...]:
        return (self.operations, self.cost_models, self.scores, self.strategies)


class PluginDisabledWarning(UserWarning):
    """A third-party plugin was broken and is left out."""


_disabled: dict[str, str] = {}  # plugin name -> why it is left out (this process)


def disable(pm: pluggy.PluginManager, name: str, why: str) -> None:
    """Leave the plugin ``name`` out (unregistered, its items forgotten), saying why once."""
    if name in _builtins:
        raise SpikenasError(f"built-in plugin {name!r} is broken: {why}")
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)
    if name not in _disabled:
        _disabled[name] = why
        warnings.warn(f"spikenas: plugin {name!r} is disabled: {why}", PluginDisabledWarning, stacklevel=2)


def autoload_disabled() -> bool:
    """Whether ``SPIKENAS_DISABLE_PLUGIN_AUTOLOAD`` asks to skip entry points (``1``, ``true``,
    ``yes``; ``0``, ``false``, ``no`` and empty do not)."""
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager with built-ins and (unless disabled) entry-point plugins."""
    pm = pluggy.PluginManager("spikenas")
    pm.add_hookspecs(hookspecs)
    for name in reversed(_builtins):  # pluggy calls the last registered first
        pm.register(importlib.import_module(name), name=name)
    if not autoload_disabled():
        blocked = {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.name in blocked or pm.has_plugin(entry_point.name):
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:  # whatever its import raises
                disable(pm, entry_point.name, f"importing {entry_point.value} raised {type(exc).__name__}: {one_line(exc)}")
                continue
            try:
                register(pm, plugin, entry_point.name)
            except SpikenasError as exc:
                disable(pm, entry_point.name, str(exc))
    check_pending(pm, contain=True)
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


def check_pending(pm: pluggy.PluginManager, contain: bool = False) -> None:
    """``pm.check_pending()``: a hook implementation without a specification (a misspelled
    hook) is a one-line :class:`SpikenasError` naming the plugin, the hook and the known hooks;
    with ``contain``, that plugin is disabled instead (built-ins still raise)."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            hooks = [h for h in vars(pm.hook) if not h.startswith("_")]
            unknown = [h for h in hooks if not getattr(pm.hook, h).has_spec()
                       and any(i.plugin is exc.plugin and not i.optionalhook for i in getattr(pm.hook, h).get_hookimpls())]
            known = ", ".join(sorted(h for h in hooks if getattr(pm.hook, h).has_spec()))
            message = f"plugin {name!r} implements unknown hook {(unknown or ['?'])[0]!r}; known hooks: {known}"
            if not contain or name in _builtins:
                raise SpikenasError(message) from None
            disable(pm, name, message)


def _fill(pm: pluggy.PluginManager, hook_name: str, registry: Registry, registries: "Registries") -> None:
    """Call ``pm.hook.<hook_name>(registry=registry)``, pluggy's order, ``tryfirst``/``trylast``
    and wrappers included (built-ins are ``tryfirst``). Each plain implementation runs contained:
    what it adds is attributed to its plugin, and one that raises stops only itself; afterwards a
    failed third-party plugin is disabled (its items forgotten) and a failed built-in raises."""
    hook = getattr(pm.hook, hook_name)
    failures: dict[str, BaseException] = {}
    originals = {}
    for impl in hook.get_hookimpls():
        if impl.plugin_name in _disabled or impl.hookwrapper or impl.wrapper:
            continue
        originals[impl] = impl.function
        impl.function = _contained(impl.function, impl.plugin_name, registry, failures)
    try:
        registry.bind("<hook wrapper>")
        hook(registry=registry)
    except Exception as exc:  # only a wrapper can raise here: plain implementations are contained
        wrappers = ", ".join(repr(i.plugin_name) for i in hook.get_hookimpls() if i.hookwrapper or i.wrapper)
        raise SpikenasError(f"hook wrapper of {hook_name} (plugin {wrappers}) raised {type(exc).__name__}: {one_line(exc)}") from exc
    finally:
        for impl, function in originals.items():
            impl.function = function
    for name, exc in failures.items():
        why = str(exc) if isinstance(exc, SpikenasError) else (
            f"raised while registering {registry.kind}s: {type(exc).__name__}: {one_line(exc)}")
        if name in _builtins:
            raise SpikenasError(why if isinstance(exc, SpikenasError) else f"plugin {name!r} {why}") from exc
        for each in registries.all():
            each.remove_plugin(name)
        disable(pm, name, why)


def _contained(function, plugin: str, registry: Registry, failures: dict[str, BaseException]):
    """``function`` (one plugin's hook implementation) with its ``add`` calls attributed to
    ``plugin`` and its exception recorded in ``failures`` instead of raised."""
    @functools.wraps(function)
    def call(*args):
        registry.bind(plugin)
        try:
            function(*args)
        except Exception as exc:  # whatever a plugin raises
            failures.setdefault(plugin, exc)
        finally:
            registry.bind("<hook wrapper>")

    return call


_cache: dict[int, Registries] = {}


def get_registries() -> Registries:
    """Registries filled by all plugins of the current manager (cached per manager)."""
    pm = get_plugin_manager()
    cached = _cache.get(id(pm))
    if cached is None:
        cached = Registries(OperationRegistry(), CostModelRegistry(), ScoreRegistry(), StrategyRegistry())
        _fill(pm, "spikenas_register_operations", cached.operations, cached)
        _fill(pm, "spikenas_register_cost_models", cached.cost_models, cached)
        _fill(pm, "spikenas_register_scores", cached.scores, cached)
        _fill(pm, "spikenas_register_strategies", cached.strategies, cached)
        for registry in cached.all():
            registry.disabled = dict(_disabled)
        _cache.clear()
        _cache[id(pm)] = cached
    return cached


def invalidate_registries() -> None:
    """Forget the filled registries (after registering or unregistering a plugin)."""
    _cache.clear()


def forget_disabled(name: str) -> None:
    """Let a plugin called ``name`` be tried again (after a test's temporary plugin left)."""
    _disabled.pop(name, None)
