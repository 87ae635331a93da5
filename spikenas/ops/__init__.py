"""Cell operations: the building block every operation (built-in or plugin) is made of."""

from spikenas.ops.sequential import SpikingSequential

__all__ = ["SpikingSequential"]
