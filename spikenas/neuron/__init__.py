"""Spiking neurons. The only package that imports norse, so another backend can replace it."""

from spikenas.neuron.lif import LIF, SURROGATES, NeuronConfig, record_spikes

__all__ = ["LIF", "NeuronConfig", "SURROGATES", "record_spikes"]
