"""Who reads the exported NIR file, and the conventions of each reader.

Every target gets the same exact graph (:mod:`spikenas.export.from_network`): batch norm folded
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
- ``sinabs`` (``sinabs.from_nir``, 3.1): sinabs builds its own neurons from a NIR ``LIF``
  (several spikes per step, reset by subtraction, ``v <- exp(-1/tau) v + I``) and ``IF`` (no
  leak, the membrane kept at or above ``-threshold``), and no NIR field changes that, so it runs
  the networks whose neurons are those: neuron models ``sinabs_lif`` (a ``LIF``, ``tau`` the
  float32 value in steps whose ``exp(-1/tau)`` is the trained decay exactly) and ``sinabs_iaf``
  (an ``IF``); parameters per channel (``[C, 1, 1]``), the spine as for norse.
- ``speck`` (SynSense Speck and DYNAP-CNN, through ``sinabs.from_nir``): the ``sinabs`` file of a
  network of ``sinabs_iaf`` neurons, the chips' own.

Each target runs the neuron models :attr:`Target.neurons` names and refuses the others in one
line (spikenas's ``lif`` fires once per step at most and resets to ``v_reset``; sinabs's fire
several times and subtract): a file is never run by a reader whose neurons differ from the
trained ones. Backward edges run one step later everywhere they are exported, written as each
reader runs them (:attr:`Target.feedback`): for ``nir`` a one-step ``Delay``; for the
toolchains, whose importers drop ``Delay`` (norse, sinabs) or refuse it (snnTorch), an edge back
to a node that their executor runs before the edge's source, so it delivers the source's value
of the step before (tried: ``docs/deploy.md``). A target without feedback (``speck``: the chips
run feed-forward networks) refuses them in one line, as the ``lif`` targets refuse a soft reset
(every NIR LIF resets to ``v_reset``) and the toolchains a reset potential other than 0 (their
importers ignore ``v_reset``).

What a target runs is declared here, so a search limited to it
(:func:`spikenas.export.support.restrict_space`, at the shapes of the search's macros) knows
without building any NIR: :attr:`Target.recurrent` (backward edges), :attr:`Target.layers` (the
layer kinds its lowering expresses) and :meth:`Target.check_layers` (the conditions on them).
The export checks every chain of layers with the same method before building it, so the two
never disagree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterable

import nir
import numpy as np
import torch
from torch import nn

from spikenas.export.graph import ExportError, Shape, array, check_v_reset, integrate_and_fire, lif
from spikenas.neuron import LIF, NeuronConfig
from spikenas.neuron.multispike import MULTISPIKE_SURROGATES, sinabs_tau
from spikenas.ops.builtin import AvgPool3x3, Zero

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
    """``tau`` in steps as sinabs reads it (``v <- exp(-1 / tau) v + I``) for a decay of
    ``1 - rate``, and the threshold as it is (the zero bridges' LIF; a ``sinabs_lif`` layer
    writes its own float32 ``tau_mem``: :meth:`Target.neuron_node`)."""
    return sinabs_tau(rate), threshold


# the layer kinds the export lowers to NIR (``nn.Identity`` is dropped), each under the
# conditions :meth:`Target.check_layers` states
LAYERS: tuple[type, ...] = (LIF, nn.Conv2d, nn.BatchNorm2d, AvgPool3x3, nn.AvgPool2d, nn.Flatten, nn.Linear)


def conv_output_shape(layer: nn.Conv2d, shape: Shape) -> Shape:
    """The ``[C, H, W]`` output shape of ``layer`` fed ``shape``, by PyTorch's formula (nothing
    is computed, so it costs the same at any width)."""
    if layer.padding == "same":
        return (layer.out_channels, *shape[1:])
    padding = (0, 0) if layer.padding == "valid" else layer.padding
    return (layer.out_channels, *((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                                  zip(shape[1:], padding, layer.dilation, layer.kernel_size, layer.stride)))


def pool_kernel(pool: nn.AvgPool2d) -> int:
    return pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]


def _orphan_batch_norm(name: str) -> ExportError:
    return ExportError(f"{name}: a batch norm that neither follows a convolution nor precedes LIF neurons has no NIR form")


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
        feedback: how backward edges are written (None: refused): ``delay``, a one-step NIR
            ``Delay``; ``cycle``, an edge back into the cell node, which the reader's executor
            runs before the edge's source (:mod:`spikenas.export.lowering`).
        keeps_v_reset: honours a reset potential other than 0.
        layers: the layer kinds its lowering expresses (see :meth:`check_layers`).
        neurons: the neuron models (:data:`~spikenas.neuron.MODELS`) its reader runs as trained,
            the first the one a search for it trains (:meth:`adopt_neuron`).
        toolchain: the consumer (:mod:`spikenas.export.consumers`) that runs its files, if not
            the one of its name (``nir``: spikenas's own reader).
    """

    name: str
    reader: str
    dt: float | None
    encode: LIFEncoding
    order: str
    per_channel: bool = False
    feedback: str | None = None
    keeps_v_reset: bool = False
    layers: tuple[type, ...] = LAYERS
    neurons: tuple[str, ...] = ("lif",)
    toolchain: str | None = None

    def lif_parameters(self, rate: float, threshold: float, dt: float, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
        """``(tau, v_threshold)`` arrays of a LIF layer of output ``shape``."""
        tau, v_threshold = self.encode(rate, threshold, self.dt or dt)
        param_shape = ((shape[0],) + (1,) * (len(shape) - 1)) if self.per_channel else shape
        return array(tau, param_shape), array(v_threshold, param_shape)

    def neuron_node(self, layer: LIF, dt: float, shape: Shape) -> nir.NIRNode:
        """The NIR node of the neurons ``layer`` of output ``shape``, as this target's reader
        runs them (:meth:`check_neuron` has accepted them): ``lif`` a ``LIF`` of
        :meth:`lif_parameters`; ``sinabs_lif`` a ``LIF`` of the layer's own float32 ``tau_mem``
        (sinabs computes the trained decay from it bit for bit); ``sinabs_iaf`` an ``IF``."""
        c = layer.config
        if c.model == "lif":
            return lif(*self.lif_parameters(float(layer._rate()), c.threshold, dt, shape), c.v_reset)
        shape = ((shape[0],) + (1,) * (len(shape) - 1)) if self.per_channel else shape
        if c.model == "sinabs_iaf":
            return integrate_and_fire(array(c.threshold, shape))
        return lif(array(layer.sinabs_tau().detach().cpu().numpy(), shape), array(c.threshold, shape))

    def check_neuron(self, where: str, neuron: NeuronConfig) -> None:
        """A one-line :class:`ExportError` (``where``: the culprit) unless this target's reader
        runs ``neuron`` as it was trained: its model is one of :attr:`neurons`, with a reset
        :meth:`check_reset` takes."""
        if neuron.model not in self.neurons:
            runs = ", ".join(t.name for t in TARGETS.values() if neuron.model in t.neurons)
            raise ExportError(f"{where}: target {self.name} runs neuron model {' or '.join(self.neurons)} "
                              f"({NEURONS[self.neurons[0]]}), this network's is {neuron.model} ({NEURONS[neuron.model]}), "
                              f"which runs in target {runs}; search with --export_target {self.name} to train its neurons")
        if neuron.model == "lif":
            self.check_reset(where, neuron.reset, neuron.v_reset)

    def adopt_neuron(self, neuron: NeuronConfig) -> tuple[NeuronConfig, list[str]]:
        """``neuron`` for a network that will run in this target, and a line per change: kept
        where the target runs it; spikenas's default ``lif`` becomes the target's first model
        (reset by subtraction; surrogate ``exp``, sinabs's, unless the configured one applies;
        no learnt tau for an IAF); any other model is :meth:`check_neuron`'s error."""
        if neuron.model in self.neurons or neuron.model != "lif":
            self.check_neuron(f"neuron (target {self.name})", neuron)
            return neuron, []
        model = self.neurons[0]
        surrogate = neuron.surrogate if neuron.surrogate in MULTISPIKE_SURROGATES else "exp"
        adopted = dataclasses.replace(neuron, model=model, reset="soft", v_reset=0.0, surrogate=surrogate,
                                      learn_tau=neuron.learn_tau and model != "sinabs_iaf")
        return adopted, [f"target {self.name} runs neuron model {model} ({NEURONS[model]}): training that, "
                         f"surrogate {surrogate}" + (", tau not learnt" if adopted.learn_tau != neuron.learn_tau else "")]

    def check_reset(self, where: str, reset: str, v_reset: float) -> None:
        if reset != "hard":
            raise ExportError(f"{where}: neuron reset {reset!r} has no NIR form (a NIR LIF resets to v_reset); "
                              "train with reset 'hard' to export")
        if v_reset != 0.0 and not self.keeps_v_reset:
            raise ExportError(f"{where}: target {self.name} resets every neuron to 0 (its importer ignores v_reset), "
                              f"this network resets to {v_reset}")

    def check_layers(self, layers: Iterable[nn.Module], shape: Shape, prefix: str) -> Shape:
        """The output shape of the chain ``layers`` fed ``shape``, checked without building
        anything: the first part this target cannot express is an :class:`ExportError` naming it
        (``{prefix}_{i}``). Each layer is one of :attr:`layers` (``nn.Identity`` is dropped), with
        neurons :meth:`check_neuron` takes, a batch norm only after a convolution
        or before LIF neurons, square undilated convolutions, a 3x3 average pool on a map of at
        least 3x3, and average pooling without overlap or padding."""
        layers = [layer for layer in layers if not isinstance(layer, nn.Identity)]
        pending_bn: str | None = None  # a batch norm that LIF neurons must follow
        i = 0
        while i < len(layers):
            layer, name = layers[i], f"{prefix}_{i}"
            if pending_bn is not None and not isinstance(layer, LIF):
                raise _orphan_batch_norm(pending_bn)
            if not isinstance(layer, self.layers):
                raise ExportError(f"{prefix}: layer {type(layer).__name__} has no NIR form (target {self.name})")
            if isinstance(layer, LIF):
                self.check_neuron(name, layer.config)
                check_v_reset(layer.config.v_reset)
                pending_bn = None
            elif isinstance(layer, nn.BatchNorm2d):
                pending_bn = name
            elif isinstance(layer, nn.Conv2d):
                if layer.kernel_size[0] != layer.kernel_size[1] or layer.dilation != (1, 1):
                    raise ExportError(f"{name}: only square, undilated convolutions are exported")
                shape = conv_output_shape(layer, shape)
                i += i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm2d)  # folded into it
            elif isinstance(layer, AvgPool3x3):
                c, h, w = shape
                if h < 3 or w < 3:
                    raise ExportError(f"{name}: a 3x3 average pool on a {h}x{w} map is not exported")
            elif isinstance(layer, nn.AvgPool2d):
                k = pool_kernel(layer)
                s = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
                if s != k or layer.padding not in (0, (0, 0)) or layer.ceil_mode:
                    raise ExportError(f"{name}: only non-overlapping average pooling without padding is exported")
                shape = (shape[0], shape[1] // k, shape[2] // k)
            elif isinstance(layer, nn.Flatten):
                shape = (int(np.prod(shape)),)
            elif isinstance(layer, nn.Linear):
                shape = (layer.out_features,)
            i += 1
        if pending_bn is not None:
            raise _orphan_batch_norm(pending_bn)
        return shape

    def operation_refusal(self, module: nn.Module, name: str, shape: Shape) -> str | None:
        """Why this target cannot run operation ``name`` built as ``module`` fed ``shape``
        (``[C, H, W]``, the cell's), or None where it can: ``zero`` is never exported, any other
        operation is a chain of layers (an ``nn.Sequential``) that :meth:`check_layers` accepts
        and that keeps ``shape``, as the export requires. Nothing is built."""
        if isinstance(module, Zero):
            return None
        if not isinstance(module, nn.Sequential):
            return f"{type(module).__name__} is not a chain of layers"
        try:
            out = self.check_layers(list(module), shape, name)
        except ExportError as exc:
            return str(exc)
        return None if tuple(out) == tuple(shape) else f"{name}: turns a {list(shape)} map into {list(out)}"

    @property
    def recurrent(self) -> bool:
        """Exports backward edges."""
        return self.feedback is not None

    def refuse_delay(self, where: str) -> None:
        if not self.recurrent:
            raise ExportError(f"{where}: a backward edge (a one-step Delay) has no form that target {self.name} runs; "
                              "export it with --target nir, or search with --export_target "
                              f"{self.name} (backward edges off)")


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("nir", "NIR as the standard writes it (spikenas.export.load_nir runs it back)", None, _seconds,
               "topological", feedback="delay", keeps_v_reset=True),
        Target("snntorch", "snnTorch 1.0 (snntorch.import_nir.import_from_nir)", 1e-4, _seconds, "names", feedback="cycle"),
        Target("norse", "norse 1.1 (norse.torch.from_nir)", 1e-3, _norse, "spine", feedback="cycle"),
        Target("sinabs", "sinabs 3.1 (sinabs.from_nir)", None, _sinabs, "spine", per_channel=True, feedback="cycle",
               neurons=("sinabs_lif", "sinabs_iaf")),
        Target("speck", "SynSense Speck / DYNAP-CNN through sinabs 3.1 (sinabs.from_nir)", None, _sinabs, "spine",
               per_channel=True, neurons=("sinabs_iaf",), toolchain="sinabs"),
    )
}

# each neuron model in words, for messages
NEURONS = {"lif": "spikenas's LIF: one spike per step at most, reset to v_reset",
           "sinabs_lif": "sinabs's LIF: several spikes per step, reset by subtraction",
           "sinabs_iaf": "sinabs's IAF: no leak, several spikes per step, reset by subtraction"}


# metadata['encoding'] of every file spikenas writes; the files written before targets existed
# carry it and no 'target', and are ``nir`` files
DIRECT_ENCODING = "direct: the image at every step"


def get_target(name: str) -> Target:
    """The target called ``name`` (a one-line error naming the known ones otherwise)."""
    if name not in TARGETS:
        raise ExportError(f"unknown export target {name!r}; known: {', '.join(TARGETS)}")
    return TARGETS[name]
