"""Named registries that plugins fill: operations, cost models, scores and search strategies.

A registry maps a name to an item and remembers which plugin added it, so that a duplicate
or an unknown name is a one-line error naming the culprit.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

from spikenas.base.errors import SpikenasError

T = TypeVar("T")

REPORT_ATTRIBUTES = ("model", "total_bytes", "param_bytes", "state_bytes", "layers", "format")
"""What a cost model's report has (those of ``spikenas.cost.MemoryReport``); the registry checks
them by name, as the plugin layer imports nothing above it."""


class UnknownNameError(SpikenasError, KeyError):
    """A name that no plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateNameError(SpikenasError):
    """Two plugins registered the same name."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered item and the plugin that added it."""

    name: str
    item: T
    plugin: str


class Registry(Generic[T]):
    """Items of one kind (``operation``, ``cost_model``, ``score`` or ``strategy``) keyed by name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._plugin = "<unknown>"
        self.disabled: dict[str, str] = {}  # plugin -> why the manager disabled it

    def bind(self, plugin: str) -> "Registry[T]":
        """Attribute the following ``add`` calls to ``plugin`` (used by the manager)."""
        self._plugin = plugin
        return self

    def _add(self, name: str, item: T) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise SpikenasError(
                f"plugin {self._plugin!r} registered {self.kind} name {name!r}: "
                "names must be identifiers"
            )
        if name in self._entries:
            first = self._entries[name].plugin
            raise DuplicateNameError(
                f"{self.kind} {name!r} registered twice: by plugin {first!r} and by plugin "
                f"{self._plugin!r}"
            )
        self._entries[name] = Entry(name, item, self._plugin)

    def get(self, name: str) -> T:
        """The item registered as ``name``; ``UnknownNameError`` lists the known names."""
        return self.entry(name).item

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            disabled = "".join(f"; plugin {plugin!r} is disabled ({why})" for plugin, why in self.disabled.items())
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}{disabled}") from None

    def remove_plugin(self, plugin: str) -> None:
        """Forget every item ``plugin`` added (the manager disables a broken plugin so)."""
        self._entries = {name: e for name, e in self._entries.items() if e.plugin != plugin}

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)


@dataclass(frozen=True)
class OperationSpec:
    """How to build one cell operation.

    ``build(channels, neuron)`` returns a module mapping ``[T, B, C, H, W]`` to the same
    shape (see :class:`spikenas.ops.SpikingSequential`). ``connects`` is False for an
    operation that carries no signal; its edges are pruned.
    """

    build: Callable[..., Any]
    connects: bool = True


class OperationRegistry(Registry[OperationSpec]):
    def __init__(self) -> None:
        super().__init__("operation")

    def add(self, name: str, build: Callable[..., Any], *, connects: bool = True) -> None:
        """Register operation ``name`` built by ``build(channels, neuron)``."""
        if not callable(build):
            raise SpikenasError(f"plugin {self._plugin!r}: operation {name!r} build is not callable")
        self._add(name, OperationSpec(build, connects))


class FactoryRegistry(Registry[Callable[..., Any]]):
    """Registry of factories ``factory(**options) -> object`` (cost models, scores)."""

    def add(self, name: str, factory: Callable[..., Any]) -> None:
        if not callable(factory):
            raise SpikenasError(f"plugin {self._plugin!r}: {self.kind} {name!r} is not callable")
        self._add(name, factory)

    def create(self, name: str, **options: Any) -> Any:
        """Instantiate ``name`` with ``options``; bad options name the item and its plugin."""
        entry = self.entry(name)
        try:
            return entry.item(**options)
        except TypeError as exc:
            raise SpikenasError(
                f"{self.kind} {name!r} (plugin {entry.plugin!r}) rejected options {options}: {exc}"
            ) from None


class CostModelRegistry(FactoryRegistry):
    def __init__(self) -> None:
        super().__init__("cost_model")

    def create(self, name: str, **options: Any) -> Any:
        """The cost model ``name``, whose every report is checked (see :class:`CheckedCostModel`)."""
        return CheckedCostModel(super().create(name, **options), name, self.entry(name).plugin)


class CheckedCostModel:
    """A plugin's cost model whose reports are checked: a report (anything with the
    :data:`REPORT_ATTRIBUTES` of ``spikenas.cost.MemoryReport``) with non-negative integer bytes.
    A report that is not, or a model that raises, is a one-line error naming the model and its
    plugin. Other attributes (``weight_bits``, ...) are the model's."""

    def __init__(self, model: Any, name: str, plugin: str) -> None:
        self.model = model
        self.name = name
        self.plugin = plugin
        self._report_types: set[type] = set()  # types already seen to have every report attribute

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.__dict__["model"], attribute)

    def __call__(self, profile: Any) -> Any:
        try:
            report = self.model(profile)
        except SpikenasError:
            raise
        except Exception as exc:
            raise SpikenasError(f"{self._culprit()} raised {type(exc).__name__}: {' '.join(str(exc).split())}") from None
        if (type(report) in self._report_types and type(report.total_bytes) is int and report.total_bytes >= 0
                and type(report.param_bytes) is int and report.param_bytes >= 0
                and type(report.state_bytes) is int and report.state_bytes >= 0):
            return report  # the common case, checked cheaply (this runs for every candidate)
        return self._checked(report)

    def _culprit(self) -> str:
        return f"cost model {self.name!r} (plugin {self.plugin!r})"

    def _checked(self, report: Any) -> Any:
        """``report`` if it is sound after all (e.g. numpy integers), else the one-line error."""
        if not all(hasattr(report, attribute) for attribute in REPORT_ATTRIBUTES):
            raise SpikenasError(f"{self._culprit()} returned a {type(report).__name__}, not a spikenas.cost.MemoryReport")
        for field in ("total_bytes", "param_bytes", "state_bytes"):
            value = getattr(report, field)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise SpikenasError(f"{self._culprit()} returned {field}={value!r}; bytes must be integers >= 0")
        self._report_types.add(type(report))
        return report


class ScoreRegistry(FactoryRegistry):
    def __init__(self) -> None:
        super().__init__("score")


class StrategyRegistry(FactoryRegistry):
    def __init__(self) -> None:
        super().__init__("strategy")
