"""Who reads the exported NIR file, and the conventions of each reader.

Every target gets the same exact graph (:mod:`spikenas.export.nir_graph`): batch norm folded
into convolutions, average pooling as sum pooling and fixed-weight convolutions, branch sums as
several edges into one node, ``Flatten`` with negative dimensions (read alike with and without
a batch dimension). The targets differ where the readers differ (``docs/deploy.md`` lists the
upstream behaviour each one works around, with versions):

- ``nir`` (the default): NIR as the standard writes it: LIF ``tau`` in seconds (steps times the
  ``--dt`` given, stored in ``metadata['dt']``), a backward edge as a one-step ``Delay``.
- ``snntorch`` (``snntorch.import_nir.import_from_nir``, 1.0): snnTorch builds every LIF with
  ``dt = 1e-4`` s, so ``tau`` is steps times 1e-4; nirtorch runs the nodes in the order
  ``nir.read`` returns them (alphabetical), so names start with their topological index.
- ``norse`` (``norse.torch.from_nir``, 1.1): ``dt`` is ``from_nir``'s default 1e-3 s, and ``tau``
  is the float32 value that makes norse's ``dt * (1 / tau)`` the network's rate exactly;
  nirtorch's executor runs the nodes in depth-first order along the edges, so the nodes form
  one chain (a *spine*), joined where they have no edge by a zero bridge (a LIF that never fires).
- ``sinabs`` (``sinabs.from_nir``, 3.1): ``tau`` is read in steps as ``v <- exp(-1/tau) v + I``,
  so it is the float32 value that makes that decay ``1 - rate`` exactly and the threshold is
  multiplied by ``tau_steps`` (the membrane in units of ``tau_steps`` times spikenas's);
  parameters are per channel (``[C, 1, 1]``), the spine as for norse. sinabs's LIF resets by
  subtraction and can emit several spikes per step, and no NIR field changes that: after
  ``from_nir`` set each LIF's ``spike_fn`` and ``reset_fn`` (two lines in ``docs/deploy.md``).

Backward edges (one-step ``Delay``) are exported for ``nir`` only; the other targets refuse them
in one line, as they refuse a soft reset (every NIR LIF resets to ``v_reset``) and a reset
potential other than 0 (their importers ignore ``v_reset``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from spikenas.export.graph import ExportError, Shape, array

# (rate = 1 / tau in steps, threshold, dt) -> (tau, v_threshold) as written
LIFEncoding = Callable[[float, float, float], tuple[float, float]]


def _float32_neighbours(value: float, count: int = 64) -> list[np.float32]:
    """``value`` as float32 and its ``count`` nearest float32 neighbours, nearest first."""
    centre = np.float32(value)
    up, down, out = centre, centre, [centre]
    for _ in range(count // 2):
        up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(-np.inf))
        out += [up, down]
    return out


def _seconds(rate: float, threshold: float, dt: float) -> tuple[float, float]:
    return float(np.float32(dt / rate)), threshold


def _norse(rate: float, threshold: float, dt: float) -> tuple[float, float]:
    """The float32 ``tau`` for which norse's ``dt * (1 / tau)`` is spikenas's float32 rate."""
    want = torch.tensor(rate, dtype=torch.float32).item()
    for tau in _float32_neighbours(dt / rate):
        if (dt * torch.from_numpy(np.float32(1.0) / np.array([tau], dtype=np.float32))).item() == want:
            return float(tau), threshold
    return _seconds(rate, threshold, dt)


def _sinabs(rate: float, threshold: float, dt: float) -> tuple[float, float]:
    """``tau`` in steps with sinabs's float32 ``exp(-1 / tau)`` equal to ``1 - rate``, and the
    threshold in sinabs's membrane units (spikenas's membrane times ``1 / rate``)."""
    decay = 1.0 - rate
    if decay <= 0.0:
        return 1e-30, threshold / rate  # no memory: exp(-1e30) = 0
    want = torch.tensor(decay, dtype=torch.float32).item()
    guess = -1.0 / math.log(decay)
    for tau in _float32_neighbours(guess):
        if torch.exp(-1.0 / torch.tensor([tau])).item() == want:
            return float(tau), threshold / rate
    return guess, threshold / rate


@dataclass(frozen=True)
class Target:
    """One reader's conventions (see the module docstring).

    Args:
        name: ``--target`` value.
        reader: what reads the file, in words.
        dt: seconds per step the reader assumes (None: the user's ``--dt``).
        encode: LIF ``(rate, threshold, dt) -> (tau, v_threshold)``.
        order: node order the reader needs: ``topological``, ``names`` (topological index in
            each name) or ``spine`` (depth-first execution along one chain).
        per_channel: LIF parameters of shape ``[C, 1, 1]`` (``[N]`` after flattening) rather
            than the whole ``[C, H, W]``.
        recurrent: exports backward edges (a one-step ``Delay``).
        keeps_v_reset: honours a reset potential other than 0.
    """

    name: str
    reader: str
    dt: float | None
    encode: LIFEncoding
    order: str
    per_channel: bool = False
    recurrent: bool = False
    keeps_v_reset: bool = False

    def lif_parameters(self, rate: float, threshold: float, dt: float, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
        """``(tau, v_threshold)`` arrays of a LIF layer of output ``shape``."""
        tau, v_threshold = self.encode(rate, threshold, self.dt or dt)
        param_shape = ((shape[0],) + (1,) * (len(shape) - 1)) if self.per_channel else shape
        return array(tau, param_shape), array(v_threshold, param_shape)

    def check_reset(self, where: str, reset: str, v_reset: float) -> None:
        if reset != "hard":
            raise ExportError(f"{where}: neuron reset {reset!r} has no NIR form (a NIR LIF resets to v_reset); "
                              "train with reset 'hard' to export")
        if v_reset != 0.0 and not self.keeps_v_reset:
            raise ExportError(f"{where}: target {self.name} resets every neuron to 0 (its importer ignores v_reset), "
                              f"this network resets to {v_reset}")

    def refuse_delay(self, where: str) -> None:
        if not self.recurrent:
            raise ExportError(f"{where}: a backward edge (a one-step Delay) has no form that target {self.name} runs; "
                              "export it with --target nir, or search with --export_target "
                              f"{self.name} (backward edges off)")


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("nir", "NIR as the standard writes it (spikenas.export.load_nir runs it back)", None, _seconds,
               "topological", recurrent=True, keeps_v_reset=True),
        Target("snntorch", "snnTorch 1.0 (snntorch.import_nir.import_from_nir)", 1e-4, _seconds, "names"),
        Target("norse", "norse 1.1 (norse.torch.from_nir)", 1e-3, _norse, "spine"),
        Target("sinabs", "sinabs 3.1 (sinabs.from_nir)", None, _sinabs, "spine", per_channel=True),
    )
}


# metadata['encoding'] of every file spikenas writes; the files written before targets existed
# carry it and no 'target', and are ``nir`` files
DIRECT_ENCODING = "direct: the image at every step"


def get_target(name: str) -> Target:
    """The target called ``name`` (a one-line error naming the known ones otherwise)."""
    if name not in TARGETS:
        raise ExportError(f"unknown export target {name!r}; known: {', '.join(TARGETS)}")
    return TARGETS[name]
