"""Synaptic operations (SynOps): what a spike costs on event-driven hardware.

A spike of an LIF neuron is delivered to every synapse the neuron drives: its *fan-out*, the
number of weights of the next weighted layer (``Conv2d`` or ``Linear``) of its chain that one
input element meets, ``out_channels / groups * kh * kw / (stride_h * stride_w)`` for a
convolution and ``out_features`` for a linear layer (pooling and flattening in between pass it
through). One inference costs ``sum over LIF layers of spikes x fan-out`` SynOps, spikes summed
over the ``T`` timesteps. Spikes that reach no weighted layer in their chain (an operation
ending in neurons) have fan-out 0: they count in spike rates, not in SynOps.
"""

from __future__ import annotations

import math
from typing import Iterator

from torch import nn

from spikenas.neuron import LIF


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
    head = getattr(network, "head", None)
    joined = {id(head.features), id(head.classifier)} if head is not None and hasattr(head, "classifier") else set()
    for name, module in network.named_modules():
        if isinstance(module, nn.Sequential) and id(module) not in joined and any(isinstance(m, LIF) for m in module):
            yield [(f"{name}.{child}", layer) for child, layer in module.named_children()]
    if joined:
        yield [(f"head.features.{c}", m) for c, m in head.features.named_children()] + [
            (f"head.classifier.{c}", m) for c, m in head.classifier.named_children()
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
