"""``naswot_head``: NASWOT's plain kernel (Mellor et al., ICML 2021) at one layer, the head's input.

For the spikes ``x_i`` of sample ``i`` at the head's LIF layer (the features the classifier
reads), concatenated over the ``T`` timesteps (length ``T·N``)::

    K(i, j) = T·N - Hamming(x_i, x_j)      (the positions where samples i and j agree)

and the score is ``log|det K|``, averaged over the scoring batches. NASWOT scores a network by
how differently its binary codes separate the samples of one batch at initialisation.

Why the head and not the first layer: every network of a macro shares its stem (parts are
seeded by name), so the first LIF layer fires the same spikes in all of them and its kernel
cannot rank them. The head's input is the first layer that every cell shapes, and the only one
whose size is the same for every genotype of the macro (so no layer outweighs another, the
concern ``sahd_layer`` answers for SAHD). ``hamming`` is the same kernel over every LIF layer.
"""

from __future__ import annotations

import torch
from torch import nn

from spikenas.base.errors import SpikenasError
from spikenas.neuron import LIF, record_spikes
from spikenas.plugin import hookimpl
from spikenas.score import Evaluation, finite_mean, hamming_distances, neurons_flat


class NaswotHead:
    """NASWOT's kernel at the head's first LIF layer (see the module docstring)."""

    def evaluation(self) -> Evaluation:
        return Evaluation.WHOLE_NETWORK

    def __init__(self) -> None:
        self.name = "naswot_head"

    def measure(self, network: nn.Module, batches: list[torch.Tensor]) -> float:
        head = getattr(network, "head", None)
        if not isinstance(head, nn.Module) or not any(isinstance(m, LIF) for m in head.modules()):
            raise SpikenasError(f"score 'naswot_head' needs a network whose head has a LIF layer, got {type(network).__name__}")
        values = []
        with torch.inference_mode():
            for images in batches:
                first: list[torch.Tensor] = []
                with record_spikes(head, lambda spikes: first.append(spikes) if not first else None):
                    network(images)
                spikes = neurons_flat(first[0])  # [T, B, N]
                hamming, _ = hamming_distances(spikes)
                kernel = (spikes.shape[-1] - hamming.double()).sum(0)  # [B, B], T·N - Hamming
                values.append(torch.linalg.slogdet(kernel).logabsdet.item())
        return finite_mean(values)


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_scores(registry) -> None:
    registry.add("naswot_head", NaswotHead)
