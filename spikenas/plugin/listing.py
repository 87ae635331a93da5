"""``spikenas plugins``: one line per registered item, ``<kind> <name> <plugin>``."""

from __future__ import annotations

from spikenas.plugin.manager import get_registries


def format_plugins() -> str:
    """Every operation, cost model, score and strategy, in registration order (built-ins first).

    One line per item, three fields separated by single spaces (easy to ``grep``/``awk``):
    ``kind name plugin``, kind being ``operation``, ``cost_model``, ``score`` or ``strategy``, e.g.
    ``operation conv3x3 spikenas.ops.builtin``.
    """
    return "\n".join(
        f"{registry.kind} {entry.name} {entry.plugin}"
        for registry in get_registries().all()
        for entry in registry
    )
