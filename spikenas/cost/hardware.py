"""The network as hardware sees it: per layer its kind, shapes, kernel, fan-in, fan-out, neurons.

Neuromorphic cores are sized by neurons per core, synapses per neuron (fan-in) and the
destinations of each neuron's spikes (fan-out); :func:`hardware_layers` lists these for every
weighted layer (``Conv2d``, ``Linear``) and every LIF layer of a network, measured by running
it once on PyTorch's ``meta`` device (shapes, no data, no memory). Shapes are per sample and
per timestep, channels first: ``(C, H, W)`` or ``(F,)``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from spikenas.cost import HardwareLayer
from spikenas.neuron import record_spikes
from spikenas.cost.synops import fan_outs


def hardware_layers(network: nn.Module, input_shape: tuple[int, int, int]) -> list[HardwareLayer]:
    """Every ``Conv2d``, ``Linear`` and ``LIF`` of ``network`` in the order they first run, for
    one image of ``input_shape``. A network not on the meta device is copied there first."""
    if any(p.device.type != "meta" for p in network.parameters()):
        network = copy.deepcopy(network).to("meta")
    return trace_layers(network, torch.empty(1, *input_shape, device="meta"))[0]


def trace_layers(module: nn.Module, meta_input: torch.Tensor) -> tuple[list[HardwareLayer], torch.Tensor]:
    """Every ``Conv2d``, ``Linear`` and ``LIF`` of ``module`` (on the meta device) in the order
    they first run on ``meta_input`` (one sample: ``[1, c, H, W]`` for a network or a stem,
    ``[T=1, B=1, C, H, W]`` for a cell operation, a reduction or a head), and the output (a
    meta tensor); names are module paths inside ``module``."""
    spikes_fan_out = fan_outs(module)
    seen: dict[str, HardwareLayer] = {}

    def weighted(name: str):
        def record(layer: nn.Module, inputs, output) -> None:  # frames: [N, ...]
            if name not in seen:  # cells with backward edges run their layers once per step
                seen[name] = _weighted_layer(name, layer, tuple(inputs[0].shape[1:]), tuple(output.shape[1:]))
        return record

    def neurons(name: str, spikes: torch.Tensor) -> None:  # [T, B, ...] (T = 1 when stepping)
        if name not in seen:
            shape = tuple(spikes.shape[2:])
            seen[name] = HardwareLayer(name, "lif", shape, shape, None, 1, spikes_fan_out.get(name, 0), math.prod(shape), 0)

    handles = [m.register_forward_hook(weighted(n)) for n, m in module.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad(), record_spikes(module, neurons, named=True):
            output = module.eval()(meta_input)
    finally:
        for h in handles:
            h.remove()
    return list(seen.values()), output


def _weighted_layer(name: str, module: nn.Module, shape_in: tuple[int, ...], shape_out: tuple[int, ...]) -> HardwareLayer:
    if isinstance(module, nn.Conv2d):
        k = tuple(module.kernel_size)
        fan_in = module.in_channels // module.groups * k[0] * k[1]
        fan_out = round(module.out_channels // module.groups * k[0] * k[1] / math.prod(module.stride))
        kind = "conv" if module.groups == 1 else ("depthwise conv" if module.groups == module.in_channels else "grouped conv")
        return HardwareLayer(name, kind, shape_in, shape_out, k, fan_in, fan_out, 0, module.weight.numel())
    return HardwareLayer(name, "linear", shape_in, shape_out, None, module.in_features, module.out_features, 0, module.weight.numel())


def format_hardware(layers: list[HardwareLayer]) -> str:
    """A table of :func:`hardware_layers`, with the totals of neurons and weights."""
    def dims(shape: tuple[int, ...]) -> str:
        return "x".join(map(str, shape))

    rows = [f"{'layer':<36}{'kind':<15}{'input':>12}{'output':>12}{'kernel':>8}{'fan-in':>8}{'fan-out':>9}{'neurons':>9}"]
    for layer in layers:
        kernel = dims(layer.kernel) if layer.kernel else "-"
        rows.append(f"{layer.name:<36}{layer.kind:<15}{dims(layer.input_shape):>12}{dims(layer.output_shape):>12}"
                    f"{kernel:>8}{layer.fan_in:>8,}{layer.fan_out:>9,}{layer.neurons:>9,}")
    rows.append(f"{'total':<36}{'':<15}{'':>12}{'':>12}{'':>8}{'':>8}{'':>9}{sum(l.neurons for l in layers):>9,}"
                f"   weights {sum(l.weights for l in layers):,}")
    return "\n".join(rows)
