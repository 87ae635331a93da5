"""The built-in ``memory`` cost model: parameters at a bit precision, neuron state reported.

``memory(weight_bits=32, state_bits=32, count_state=False)``: parameter bytes are
``params * weight_bits / 8``; state bytes are ``neurons * state_bits / 8`` (one membrane
value per LIF neuron, for one sample); ``total_bytes`` includes the state only when
``count_state`` is True.
"""

from __future__ import annotations

from spikenas.cost.model import MemoryReport
from spikenas.cost.profile import NetworkProfile
from spikenas.base.errors import SpikenasError
from spikenas.plugin import hookimpl


class ParameterMemory:
    """Bytes of parameters (and optionally neuron state) at fixed precisions."""

    def __init__(self, weight_bits: int = 32, state_bits: int = 32, count_state: bool = False, name: str = "memory") -> None:
        if isinstance(weight_bits, bool) or not isinstance(weight_bits, int) or not (2 <= weight_bits <= 16 or weight_bits == 32):
            raise SpikenasError(f"cost model {name!r}: weight_bits must be 2..16 (trained quantised) or 32 (float), "
                                f"the precisions spikenas fit trains; got {weight_bits!r}")
        if isinstance(state_bits, bool) or not isinstance(state_bits, int) or not 1 <= state_bits <= 64:
            raise SpikenasError(f"cost model {name!r}: state_bits must be an integer in 1..64, got {state_bits!r}")
        self.name = name
        self.weight_bits = weight_bits
        self.state_bits = state_bits
        self.count_state = count_state

    def __call__(self, profile: NetworkProfile) -> MemoryReport:
        return MemoryReport.at_precision(self.name, profile, self.weight_bits, self.state_bits, self.count_state)


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_cost_models(registry) -> None:
    registry.add("memory", ParameterMemory)
