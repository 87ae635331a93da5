"""The part of the network after a cell, run for several candidates at once, spike for spike.

A coordinate move scores K candidates that differ only inside one cell; after it they run the
same modules. :class:`StackedTail` runs such a tail, a chain of frame-wise layers and LIF
layers (the first layers of a reduction, or the head), on the K candidates' cell outputs
together:

- every LIF layer runs once on the K inputs stacked along a new leading dimension
  (``[K, T, B, ...]``, each candidate's block laid out as its input is). The recurrence is
  elementwise, so each candidate's spikes are bit for bit those it fires alone, and a LIF layer,
  six kernels per timestep, is most of a small tail's launches;
- frame-wise layers (batch norm with each candidate's own statistics, convolutions, pooling,
  linear layers) run per candidate on tensors laid out exactly as when it runs alone, so they
  call the same kernels on the same data;
- layers after the last LIF layer are not run: no spike depends on them.

Candidates are stacked while the stacked input stays within ``max_bytes``: on the CPU stacking
pays only for small tensors and loses once they leave the cache (``bench/stacking.py``,
``docs/benchmarks.md``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from spikenas.neuron import LIF
from spikenas.score import candidate_kernels

Recorder = Callable[[int, LIF, torch.Tensor], None]  # (first candidate, layer, spikes [T, K, B, ...])
STACK_BYTES = 8 << 20  # the default limit (``stack_bytes: 8MiB``): 1 MB candidates stack, 16 MB ones do not


class StackedTail:
    """A chain of :class:`~spikenas.ops.SpikingSequential` stages run for K candidates at once.

    ``run(inputs, record)``: ``inputs`` holds each candidate's ``[T, B, ...]`` tail input;
    ``record(first, lif, spikes [T, K, B, ...])`` receives the spikes of every LIF layer, in
    network order, of candidates ``first`` to ``first + K - 1`` (a stacked group), each
    ``spikes[:, k]`` exactly what :func:`~spikenas.neuron.record_spikes` would see on the
    candidate's own run.
    """

    def __init__(self, stages: Sequence[nn.Sequential], max_bytes: int = STACK_BYTES) -> None:
        layers = [layer for stage in stages for layer in stage]
        lifs = [i for i, layer in enumerate(layers) if isinstance(layer, LIF)]
        if not lifs:
            raise ValueError("a stacked tail needs a LIF layer")
        self.max_bytes = max_bytes
        self.segments: list[tuple[tuple[nn.Module, ...], LIF]] = []  # frame-wise layers, then a LIF
        frames: list[nn.Module] = []
        for layer in layers[: lifs[-1] + 1]:
            if isinstance(layer, LIF):
                self.segments.append((tuple(frames), layer))
                frames = []
            else:
                frames.append(layer)

    def run(self, inputs: list[torch.Tensor], record: Recorder) -> None:
        xs = inputs
        for frames, lif in self.segments:
            if frames:
                xs = [_frame_wise(frames, x) for x in xs]
            spikes: list[torch.Tensor] = []
            for group in _groups(xs, self.max_bytes):
                stacked = _lif_stacked(lif, group)
                record(len(spikes), lif, stacked)
                spikes += stacked.unbind(1)
            xs = spikes


def recorder(accs: list, tallies: list, also: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None) -> Recorder:
    """A :class:`StackedTail` recorder that adds candidate ``k``'s spikes to ``accs[k]`` (a
    :class:`~spikenas.score.KernelAccumulator`; a group's kernels from one call,
    :func:`~spikenas.score.candidate_kernels`) and, unless it is None, to ``tallies[k]`` (a
    :class:`~spikenas.cost.synops.SynOpsTally`); ``also(k, spikes [T, B, ...], kernel [B, B])``
    receives each candidate's spikes and kernel contribution too."""
    def record(first: int, lif: LIF, spikes: torch.Tensor) -> None:
        steps = spikes.shape[0]
        for k, kernel in enumerate(candidate_kernels(accs[first].score, spikes), first):
            accs[k].merge(kernel, steps)  # as accs[k].add(spikes[:, k - first]) would, bit for bit
            if tallies[k] is not None:
                tallies[k].add_layer(lif, spikes[:, k - first])
            if also is not None:
                also(k, spikes[:, k - first], kernel)
    return record


def chunks(items: list, item_bytes: int, max_bytes: int) -> list[list]:
    """``items`` in consecutive runs of as many as fit ``max_bytes`` at ``item_bytes`` each (at
    least one): how many candidates may hold their tail inputs at once."""
    size = max(1, max_bytes // max(1, item_bytes))
    return [items[i:i + size] for i in range(0, len(items), size)]


def _frame_wise(frames: tuple[nn.Module, ...], x: torch.Tensor) -> torch.Tensor:
    """``frames`` on ``x [T, B, ...]`` as :class:`~spikenas.ops.SpikingSequential` runs them:
    on ``[T*B, ...]``."""
    t, b = x.shape[:2]
    flat = x.reshape(t * b, *x.shape[2:])
    for layer in frames:
        flat = layer(flat)
    return flat.reshape(t, b, *flat.shape[1:])


def _groups(xs: list[torch.Tensor], max_bytes: int) -> list[list[torch.Tensor]]:
    """Consecutive runs of ``xs`` that can be stacked (same shape and strides, dense) within
    ``max_bytes`` (at least one tensor per run)."""
    groups: list[list[torch.Tensor]] = []
    for x in xs:
        last = groups[-1] if groups else None
        if (last is not None and _dense(x) and x.shape == last[0].shape and x.stride() == last[0].stride()
                and (len(last) + 1) * x.numel() * x.element_size() <= max_bytes):
            last.append(x)
        else:
            groups.append([x])
    return groups


def _lif_stacked(lif: LIF, xs: list[torch.Tensor]) -> torch.Tensor:
    """``[lif(x) for x in xs]`` stacked as ``[T, K, B, ...]``, from one call; each ``[:, k]``
    has the strides ``lif(x)`` would give it."""
    if len(xs) == 1:
        return lif(xs[0]).unsqueeze(1)
    x0 = xs[0]
    stacked = torch.empty_strided((len(xs), *x0.shape), (x0.numel(), *x0.stride()), dtype=x0.dtype, device=x0.device)
    for k, x in enumerate(xs):
        stacked[k].copy_(x)
    return lif(stacked.transpose(0, 1))


def _dense(x: torch.Tensor) -> bool:
    """Whether ``x`` covers exactly ``numel`` consecutive elements (any dimension order)."""
    expected = 1
    for size, stride in sorted(zip(x.shape, x.stride()), key=lambda item: item[1]):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True
