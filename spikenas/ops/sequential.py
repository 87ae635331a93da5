"""Chains of frame-wise layers and LIF neurons that run over whole sequences or step by step.

Frame-wise layers (convolutions, batch norm, pooling) see ``[T*B, C, H, W]`` in sequence mode,
so one kernel call covers every timestep; LIF layers integrate over ``T``. Batch norm in
sequence mode therefore normalises over ``T*B`` samples, in step mode over ``B``.
"""

from __future__ import annotations

import torch
from torch import nn

from spikenas.neuron import LIF


class SpikingSequential(nn.Sequential):
    """A chain of LIF layers and frame-wise modules with a sequence and a step interface.

    ``forward(x [T, B, C, H, W]) -> [T, B, C', H', W']``;
    ``step(x [B, C, H, W], state) -> (y [B, C', H', W'], state)`` where ``state`` is a tuple
    with one membrane tensor per LIF layer (``None`` = at rest, the initial state).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        flat = None  # [T*B, ...] while in frame-wise layers
        for layer in self:
            if isinstance(layer, LIF):
                if flat is not None:
                    x = flat.reshape(t, b, *flat.shape[1:])
                    flat = None
                x = layer(x)
            else:
                if flat is None:
                    flat = x.reshape(t * b, *x.shape[2:])
                flat = layer(flat)
        if flat is not None:
            x = flat.reshape(t, b, *flat.shape[1:])
        return x

    def step(self, x: torch.Tensor, state: tuple | None) -> tuple[torch.Tensor, tuple]:
        lifs = [layer for layer in self if isinstance(layer, LIF)]
        old = state if state is not None else (None,) * len(lifs)
        new = []
        for layer in self:
            if isinstance(layer, LIF):
                x, v = layer.step(x, old[len(new)])
                new.append(v)
            else:
                x = layer(x)
        return x, tuple(new)
