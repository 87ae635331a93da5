"""Synaptic operations (SynOps): what a spike costs on event-driven hardware.

A spike of an LIF neuron is delivered to every synapse the neuron drives: its *fan-out*, the
number of weights of the next weighted layer (``Conv2d`` or ``Linear``) of its chain that one
input element meets, ``out_channels / groups * kh * kw / (stride_h * stride_w)`` for a
convolution and ``out_features`` for a linear layer (pooling and flattening in between pass it
through). One inference costs ``sum over LIF layers of spikes x fan-out`` SynOps, spikes summed
over the ``T`` timesteps. Spikes that reach no weighted layer in their chain (an operation
ending in neurons) have fan-out 0: they count in spike rates, not in SynOps.

:func:`measure_synops` measures them per part of the network (the layers of its memory
profile); ``spikenas search`` writes them for the found network to ``memory.txt``, and a search
with a SynOps limit counts them with a :class:`SynOpsTally` in the same pass that scores a
candidate.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator

import torch
from torch import nn

from spikenas.neuron import LIF, record_spikes


def _fan_out(layer: nn.Module) -> int | None:
    """Synapses one input element of ``layer`` drives; None for a layer without weights."""
    if isinstance(layer, nn.Conv2d):
        return round(layer.out_channels // layer.groups * math.prod(layer.kernel_size) / math.prod(layer.stride))
    if isinstance(layer, nn.Linear):
        return layer.out_features
    return None


def _chains(network: nn.Module) -> Iterator[list[tuple[str, nn.Module]]]:
    """The network's chains of layers, each as ``(module path, layer)`` in order: every
    ``nn.Sequential`` that holds an LIF, with the head's feature and classifier chains joined."""
    head = getattr(network, "head", network)  # a network's head, or a head on its own
    prefix = "head." if head is not network else ""
    joined = {id(head.features), id(head.classifier)} if isinstance(getattr(head, "classifier", None), nn.Module) else set()
    for name, module in network.named_modules():
        if isinstance(module, nn.Sequential) and id(module) not in joined and any(isinstance(m, LIF) for m in module):
            yield [(f"{name}.{child}" if name else child, layer) for child, layer in module.named_children()]
    if joined:
        yield [(f"{prefix}features.{c}", m) for c, m in head.features.named_children()] + [
            (f"{prefix}classifier.{c}", m) for c, m in head.classifier.named_children()
        ]


def fan_outs(network: nn.Module) -> dict[str, int]:
    """``{LIF module path: fan-out}`` for every LIF layer of ``network`` (paths as in
    ``named_modules``, e.g. ``cells.0.ops.0_1_conv3x3.0``)."""
    out: dict[str, int] = {}
    for chain in _chains(network):
        for i, (name, layer) in enumerate(chain):
            if not isinstance(layer, LIF):
                continue
            fan = 0
            for _, following in chain[i + 1:]:
                if isinstance(following, LIF):
                    break
                found = _fan_out(following)
                if found is not None:
                    fan = found
                    break
            out[name] = fan
    return out


def fan_outs_by_module(network: nn.Module) -> dict[int, int]:
    """``{id(LIF module): fan-out}`` for every LIF layer of ``network``: the fan-outs of the
    whole network stay valid when its parts run on their own (the search runs them so)."""
    fan = fan_outs(network)
    return {id(module): fan[name] for name, module in network.named_modules() if name in fan}


class SynOpsTally:
    """Running SynOps (spikes x fan-out) of the LIF layers it records.

    ``fan_out`` maps ``id(LIF module)`` to its fan-out (:func:`fan_outs_by_module`); a layer
    missing from it counts 0. ``total`` is a float64 tensor on the spikes' device, so recording
    costs no host sync.
    """

    def __init__(self, fan_out: dict[int, int], total: torch.Tensor | None = None) -> None:
        self.fan_out = fan_out
        self.total = total

    def copy(self) -> "SynOpsTally":
        return SynOpsTally(self.fan_out, self.total)

    def add(self, other: torch.Tensor | None) -> None:
        """Add a SynOps count (a tensor from another tally; None adds nothing)."""
        if other is not None:
            self.total = other if self.total is None else self.total + other

    def add_layer(self, lif: nn.Module, spikes: torch.Tensor) -> None:
        """Add the SynOps of ``spikes [T, B, ...]`` fired by the LIF layer ``lif``."""
        fan = self.fan_out.get(id(lif), 0)
        if fan:
            self.add(spikes.sum(dtype=torch.float64) * fan)

    @contextlib.contextmanager
    def recording(self, module: nn.Module, also: Callable[[torch.Tensor], None] | None = None) -> Iterator[None]:
        """Record the spikes of every LIF inside ``module`` while in the block; ``also(spikes
        [T, B, ...])`` receives them too (e.g. a score's accumulator)."""
        ids = {name: id(m) for name, m in module.named_modules() if isinstance(m, LIF)}

        def record(name: str, spikes: torch.Tensor) -> None:
            if also is not None:
                also(spikes)
            fan = self.fan_out.get(ids[name], 0)
            if fan:
                self.add(spikes.sum(dtype=torch.float64) * fan)

        with record_spikes(module, record, named=True):
            yield

    def value(self) -> float:
        """The total as a number (0 when nothing fired into a weighted layer)."""
        return 0.0 if self.total is None else float(self.total)


def profile_layer(lif_path: str) -> str:
    """The :class:`~spikenas.cost.LayerProfile` name (``stem``, ``cell0.0>1:conv3x3``,
    ``reduction0``, ``head``) of the network part an LIF module path belongs to."""
    parts = lif_path.split(".")
    if parts[0] == "cells":  # cells.<i>.ops.<src>_<dst>_<op>...
        src, dst, op = parts[3].split("_", 2)
        return f"cell{parts[1]}.{src}>{dst}:{op}"
    if parts[0] == "reductions":
        return f"reduction{parts[1]}"
    return parts[0]


def measure_synops(network: nn.Module, batches: list[torch.Tensor]) -> dict[str, float]:
    """SynOps of one inference per profile layer (:func:`profile_layer`), averaged over the
    images of ``batches`` (each ``[B, c, H, W]``), with the network in its current mode."""
    fan = fan_outs(network)
    spikes: dict[str, float] = {}

    def record(name: str, s: torch.Tensor) -> None:
        layer = profile_layer(name)
        spikes[layer] = spikes.get(layer, 0.0) + float(s.sum()) * fan.get(name, 0)

    images = 0
    with torch.no_grad(), record_spikes(network, record, named=True):
        for batch in batches:
            network(batch)
            images += len(batch)
    return {layer: total / images for layer, total in spikes.items()}


def format_synops(synops: dict[str, float], layers: list[str], note: str) -> str:
    """A per-layer SynOps table in the order of ``layers`` (profile names), with the total."""
    rows = [f"{'layer':<28}{'SynOps':>16}   ({note})"]
    rows += [f"{name:<28}{synops.get(name, 0.0):>16,.0f}" for name in layers]
    rows.append(f"{'total':<28}{sum(synops.values()):>16,.0f}")
    return "\n".join(rows)
