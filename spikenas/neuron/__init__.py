"""Spiking neurons: their dynamics written once (:mod:`spikenas.neuron.functional`, on norse) and
the LIF layer built on them. Every spikenas network path runs its neurons through this package
(export's round-trip check reads NIR files with norse's own cell, independently)."""

from spikenas.neuron.functional import compiled_inference
from spikenas.neuron.lif import LIF, SURROGATES, NeuronConfig, record_spikes

__all__ = ["LIF", "NeuronConfig", "SURROGATES", "compiled_inference", "record_spikes"]
