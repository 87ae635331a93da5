"""How big a network is, five ways: the baselines every training-free score must beat.

A zero-cost proxy earns its place only if it ranks trained accuracy better than counting the
network does (NAS-Bench-Suite-Zero and "A Deeper Look at Zero-Cost Proxies" report parameter and
FLOP counts beside every proxy for this reason). For each network of an analysis:

- ``params``: trainable scalars;
- ``bytes``: its footprint under the run's cost model (``networks.csv``'s ``bytes`` column);
- ``synops``: synaptic operations of one inference at initialisation (spikes x fan-out), on the
  scoring batches, as the search measures them;
- ``macs``: multiply-accumulates of one inference (every ``Conv2d`` and ``Linear`` output element
  times its fan-in, times the ``T`` timesteps), as a dense accelerator would run it;
- ``neurons``: LIF neurons (membrane values) per sample.
"""

from __future__ import annotations

import math

import torch

from spikenas.cost import NetworkProfile
from spikenas.network import SpikingNetwork
from spikenas.score import scoring_mode
from spikenas.cost.synops import measure_synops

SIZES = ("params", "bytes", "synops", "macs", "neurons")


def macs(profile: NetworkProfile, timesteps: int) -> int:
    """Multiply-accumulates of one inference over ``timesteps`` steps (weighted layers only)."""
    per_step = sum(math.prod(layer.output_shape) * layer.fan_in for part in profile.layers for layer in part.hardware
                   if layer.kind != "lif")
    return per_step * timesteps


def size_measures(network: SpikingNetwork, profile: NetworkProfile, footprint: int, batches: list[torch.Tensor]) -> dict[str, float]:
    """Every measure of :data:`SIZES` for ``network`` (at initialisation), its ``profile`` and
    its ``footprint`` in bytes; SynOps on ``batches`` with batch norm on batch statistics (as scored)."""
    synops = measure_synops(scoring_mode(network), batches)
    return {"params": float(profile.params), "bytes": float(footprint), "synops": float(sum(synops.values())),
            "macs": float(macs(profile, network.macro.timesteps)), "neurons": float(profile.neurons)}
