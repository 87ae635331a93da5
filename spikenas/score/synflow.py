"""``synflow``: SynFlow (Tanaka et al., NeurIPS 2020), a data-free zero-cost proxy, on spikes.

With every weight replaced by its absolute value and the input an all-ones image, SynFlow is
``R = 1ᵀ f(1)`` (the summed logits) and the score ``log Σ_θ |θ · ∂R/∂θ|``: the "synaptic flow"
through every parameter. Abdelfattah et al. (ICLR 2021, "Zero-Cost Proxies for Lightweight
NAS") found it the strongest single proxy on NAS-Bench-201. Adapted to spiking networks:

- the gradient crosses each LIF layer through its surrogate (the model's ``neuron.surrogate``),
  as in training; the forward pass spikes as usual;
- batch norm uses its running statistics (the identity at initialisation), since an all-ones
  batch has no variance;
- it runs in float64 on a copy of the network (the logarithm of a sum over up to millions of
  parameters), one image, no data: the scoring batches only give the image's shape.

A network none of whose parameters receive gradient scores ``-inf`` (ranked last).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from spikenas.plugin import hookimpl
from spikenas.score import Evaluation


class SynFlow:
    """SynFlow on surrogate gradients (see the module docstring)."""

    def evaluation(self) -> Evaluation:
        return Evaluation.WHOLE_NETWORK

    def __init__(self) -> None:
        self.name = "synflow"

    def measure(self, network: nn.Module, batches: list[torch.Tensor]) -> float:
        shape = batches[0].shape[1:]
        probe = copy.deepcopy(network).double()
        for module in probe.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        params = [p for p in probe.parameters() if p.requires_grad]
        with torch.inference_mode(False), torch.enable_grad():
            with torch.no_grad():
                for p in params:
                    p.abs_()
            ones = torch.ones((1, *shape), dtype=torch.float64, device=batches[0].device)
            probe(ones).sum().backward()
            flow = sum(float((p.detach() * p.grad).abs().sum()) for p in params if p.grad is not None)
        return math.log(flow) if flow > 0 and math.isfinite(flow) else -math.inf


@hookimpl(tryfirst=True)  # built-ins first: a third party that reuses a name is the one named
def spikenas_register_scores(registry) -> None:
    registry.add("synflow", SynFlow)
