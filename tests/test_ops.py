"""The built-in operations and SpikingSequential: shapes, values, sequence mode = step mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikenas.neuron import LIF, NeuronConfig
from spikenas.ops import SpikingSequential
from spikenas.ops.builtin import AvgPool3x3, build_conv3x3


@pytest.mark.parametrize("name", ["zero", "skip", "conv1x1", "conv3x3", "avgpool"])
def test_builtin_operations_keep_the_shape_and_do_what_they_are_named(operations, neuron, name):
    op = operations.get(name).build(4, neuron).eval()
    x = torch.rand(3, 2, 4, 6, 5) * 3  # [T, B, C, H, W]
    y = op(x)
    assert y.shape == x.shape
    if name == "zero":
        assert not y.any()
    elif name == "skip":
        assert torch.equal(y, x)
    elif name.startswith("conv"):
        assert sum(isinstance(m, LIF) for m in op.modules()) == 1 and any(isinstance(m, nn.Conv2d) for m in op.modules())
    assert operations.entry(name).item.connects == (name != "zero")


def test_avgpool_operation_equals_torch_average_pooling():
    x = torch.randn(3, 5, 7, 6)
    expected = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    torch.testing.assert_close(AvgPool3x3()(x), expected)


def test_sequence_mode_equals_step_mode_frame_by_frame():
    """A whole sequence at once gives the spikes and outputs of stepping frame by frame
    (batch norm in eval mode: sequence mode normalises over T*B, step mode over B)."""
    torch.manual_seed(0)
    op = SpikingSequential(LIF(NeuronConfig()), nn.Conv2d(3, 3, 3, padding=1), LIF(NeuronConfig())).eval()
    nn.init.uniform_(op[1].weight, -0.1, 0.4)  # the second layer fires too
    x = torch.rand(5, 2, 3, 6, 6) * 3
    state, steps = None, []
    for frame in x:
        y, state = op.step(frame, state)
        steps.append(y)
    assert len(state) == 2
    torch.testing.assert_close(op(x), torch.stack(steps))
    assert op(x).any()


def test_conv3x3_trains_through_its_surrogate(neuron):
    op = build_conv3x3(4, neuron)
    x = (torch.rand(3, 2, 4, 5, 5) * 3).requires_grad_()
    op(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in op.parameters())
