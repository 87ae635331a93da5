"""The parts of a network around its cells, built from a :class:`~spikenas.space.MacroConfig`.

Layout for ``n`` cells::

    image [B, c, H, W] -> stem (conv3x3 -> BN), computed once and fed at every timestep
    -> cell 0 at C channels
    -> reduction (BN -> LIF -> conv3x3 C -> mC -> BN -> avgpool 2)  ... between every two cells
    -> cell n-1 at C * m**(n-1) channels
    -> head: BN -> LIF -> avgpool(head_pool) -> flatten -> dropout (mask shared over time)
             -> FC(features, hidden, no bias) -> LIF -> FC(hidden, classes * votes)
             -> mean over each class's ``votes`` outputs                    [T, B, classes]

``head_hidden = 0`` drops the hidden layer (FC straight to ``classes * votes``).
"""

from __future__ import annotations

import torch
from torch import nn

from spikenas.neuron import LIF, NeuronConfig
from spikenas.ops import SpikingSequential
from spikenas.space.macro import MacroConfig


class Stem(nn.Sequential):
    """conv3x3 (no bias) -> BN on the static image: ``[B, c, H, W] -> [B, C, H', W']``."""

    def __init__(self, macro: MacroConfig) -> None:
        c_in = macro.input_shape[0]
        super().__init__(
            nn.Conv2d(c_in, macro.channels, 3, stride=macro.stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(macro.channels),
        )


def build_reduction(macro: MacroConfig, index: int, neuron: NeuronConfig) -> SpikingSequential:
    """The reduction after cell ``index``: ``[T, B, C, H, W] -> [T, B, mC, H/2, W/2]``."""
    c_in = macro.cell_shape(index)[0]
    c_out = macro.cell_shape(index + 1)[0]
    return SpikingSequential(
        nn.BatchNorm2d(c_in),
        LIF(neuron),
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.AvgPool2d(2),
    )


class Head(nn.Module):
    """Spiking classifier: ``[T, B, C, H, W]`` (last cell) ``-> [T, B, classes]`` logits."""

    def __init__(self, macro: MacroConfig, cells: int, neuron: NeuronConfig) -> None:
        super().__init__()
        c = macro.cell_shape(cells - 1)[0]
        pool = [nn.AvgPool2d(macro.head_pool)] if macro.head_pool > 1 else []
        self.features = SpikingSequential(nn.BatchNorm2d(c), LIF(neuron), *pool, nn.Flatten())
        self.dropout = macro.dropout
        outputs = macro.num_classes * macro.votes
        n_in = macro.head_features(cells)
        if macro.head_hidden:
            self.classifier = SpikingSequential(
                nn.Linear(n_in, macro.head_hidden, bias=False),
                LIF(neuron),
                nn.Linear(macro.head_hidden, outputs),
            )
        else:
            self.classifier = SpikingSequential(nn.Linear(n_in, outputs))
        self.votes = macro.votes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # [T, B, F]
        if self.training and self.dropout > 0:
            # one mask per sample, shared by all timesteps
            keep = torch.empty_like(x[0]).bernoulli_(1 - self.dropout) / (1 - self.dropout)
            x = x * keep
        x = self.classifier(x)  # [T, B, classes * votes]
        return x.unflatten(-1, (-1, self.votes)).mean(-1)
