"""Spiking neurons: their dynamics written once (:mod:`spikenas.neuron.functional`, on norse;
:mod:`spikenas.neuron.multispike`, sinabs's) and the layer built on them (:class:`LIF`, one of
:data:`MODELS`). Every spikenas network path runs its neurons through this package
(export's round-trip check reads NIR files with its own reader, independently)."""

from spikenas.neuron.functional import compiled_inference
from spikenas.neuron.lif import LIF, MODELS, SURROGATES, NeuronConfig, record_spikes

__all__ = ["LIF", "MODELS", "NeuronConfig", "SURROGATES", "compiled_inference", "record_spikes"]
