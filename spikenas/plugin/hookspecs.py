"""Hook specifications of spikenas: the whole contract between spikenas and its plugins.

Every hook receives a registry and adds named items to it. Built-in operations, cost models
and scores register through these same hooks, so a third-party package (entry-point group
``spikenas``) is a first-class citizen. Plugin authors import ``hookimpl`` from ``spikenas``
and never import pluggy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from spikenas.plugin.registry import CostModelRegistry, OperationRegistry, ScoreRegistry, StrategyRegistry

hookspec = pluggy.HookspecMarker("spikenas")


@hookspec
def spikenas_register_operations(registry: OperationRegistry) -> None:
    """Add cell operations (edge types) to ``registry``.

    Call ``registry.add(name, build, connects=True)`` once per operation. ``build(channels,
    neuron)`` receives the channel count ``C`` of the cell and a
    :class:`spikenas.neuron.NeuronConfig`, and returns an ``nn.Module`` that maps a spiking
    tensor ``[T, B, C, H, W]`` to ``[T, B, C, H, W]`` and has ``step(x [B, C, H, W], state)
    -> (y, state)`` for cells with backward edges (subclass
    :class:`spikenas.ops.SpikingSequential` to get both). ``connects=False`` marks an
    operation that carries no signal (``zero``): such edges are pruned and never built.
    Results are collected from every plugin (not ``firstresult``). Since 0.1.
    """


@hookspec
def spikenas_register_cost_models(registry: CostModelRegistry) -> None:
    """Add memory cost models to ``registry``.

    Call ``registry.add(name, factory)``: ``factory(**options)`` returns a callable that takes
    a :class:`spikenas.cost.NetworkProfile` (parameters, neurons and hardware layers per part,
    no weights allocated) and returns a :class:`spikenas.cost.MemoryReport` (bytes). Results are
    collected from every plugin (not ``firstresult``). Since 0.1.
    """


@hookspec
def spikenas_register_scores(registry: ScoreRegistry) -> None:
    """Add training-free scores to ``registry``.

    Call ``registry.add(name, factory)``: ``factory(**options)`` returns a
    :class:`spikenas.score.KernelScore`, which turns the spikes of each LIF layer
    (``[T, B, N]``) into an additive ``[B, B]`` kernel contribution and the summed kernel
    into one float (higher is better), or a :class:`spikenas.score.NetworkScore`, whose
    ``measure(network, batches)`` scores a whole network at once (gradients, chosen layers).
    A score says which it is through ``evaluation()`` (a ``spikenas.score.Evaluation``; a
    kernel score without it). Results are collected from every plugin (not ``firstresult``).
    Since 0.1.
    """


@hookspec
def spikenas_register_strategies(registry: StrategyRegistry) -> None:
    """Add search strategies to ``registry``.

    Call ``registry.add(name, factory)``: ``factory(**options)`` returns a
    :class:`spikenas.search.strategy.SearchStrategy` whose ``run(ctx, evaluator)`` returns a
    :class:`~spikenas.search.strategy.Found` (the chosen genotype, and its whole-network score
    when known) and scores candidates only through ``evaluator.evaluate`` (which gives resume,
    multi-process scoring, the progress bar and ``search.csv`` for free). The options
    are the search's ``strategy_options``, plus those of ``candidates``, ``sweeps``,
    ``last_sweeps`` and ``rerank`` that the factory's signature names. A strategy must be
    deterministic given ``ctx.seed``. Results are collected from every plugin (not
    ``firstresult``). Since 0.2.
    """
