"""Memory cost: what a network holds (profile) and what it costs in bytes (report).

A :class:`NetworkProfile` lists, per layer, its parameter count and its neuron count (one
membrane value per LIF neuron for one sample); it is computed from genotype and macro without
allocating weights (:mod:`spikenas.network.profile`). A cost model (plugin) turns a profile into
a :class:`MemoryReport`, whose ``total_bytes`` is what a budget is checked against.

The classes live in :mod:`spikenas.cost.profile` (what a network holds) and
:mod:`spikenas.cost.model` (what it costs); the built-in cost models are :mod:`spikenas.cost.memory`
and :mod:`spikenas.cost.speck` (SynSense's DYNAP-CNN/Speck cores, whose limits a report's
``refusal`` states).
Sizes in settings (``256KiB``) are read by :mod:`spikenas.base.units`.
"""

from spikenas.cost.model import CostModel, LayerCost, MemoryReport, bits_to_bytes
from spikenas.cost.profile import HardwareLayer, LayerProfile, NetworkProfile

__all__ = ["CostModel", "HardwareLayer", "LayerCost", "LayerProfile", "MemoryReport", "NetworkProfile", "bits_to_bytes"]
