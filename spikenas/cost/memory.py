"""The built-in ``memory`` cost model: parameters at a bit precision, neuron state reported.

``memory(weight_bits=32, state_bits=32, count_state=False)``: parameter bytes are
``params * weight_bits / 8``; state bytes are ``neurons * state_bits / 8`` (one membrane
value per LIF neuron, for one sample); ``total_bytes`` includes the state only when
``count_state`` is True.
"""

from __future__ import annotations

from spikenas.cost import LayerCost, MemoryReport, NetworkProfile, bits_to_bytes
from spikenas.errors import SpikenasError
from spikenas.plugin import hookimpl


class ParameterMemory:
    """Bytes of parameters (and optionally neuron state) at fixed precisions."""

    def __init__(self, weight_bits: int = 32, state_bits: int = 32, count_state: bool = False, name: str = "memory") -> None:
        for label, bits in (("weight_bits", weight_bits), ("state_bits", state_bits)):
            if not isinstance(bits, int) or not 1 <= bits <= 64:
                raise SpikenasError(f"cost model {name!r}: {label} must be an integer in 1..64, got {bits!r}")
        self.name = name
        self.weight_bits = weight_bits
        self.state_bits = state_bits
        self.count_state = count_state

    def total_bytes(self, params: int, neurons: int) -> int:
        total = bits_to_bytes(params, self.weight_bits)
        if self.count_state:
            total += bits_to_bytes(neurons, self.state_bits)
        return total

    def __call__(self, profile: NetworkProfile) -> MemoryReport:
        layers = tuple(
            LayerCost(
                layer.name,
                layer.params,
                layer.neurons,
                bits_to_bytes(layer.params, self.weight_bits),
                bits_to_bytes(layer.neurons, self.state_bits),
            )
            for layer in profile.layers
        )
        params, neurons = profile.params, profile.neurons
        return MemoryReport(
            model=self.name,
            total_bytes=self.total_bytes(params, neurons),
            param_bytes=bits_to_bytes(params, self.weight_bits),
            state_bytes=bits_to_bytes(neurons, self.state_bits),
            layers=layers,
        )


@hookimpl
def spikenas_register_cost_models(registry) -> None:
    registry.add("memory", ParameterMemory)
