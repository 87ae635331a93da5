"""Top-k accuracy as a torchmetrics ``Metric`` whose update never reads the device.

torchmetrics' ``MulticlassAccuracy`` one-hot encodes the labels on its top-k path, which
checks their range on the host (``aminmax`` then ``item``), and its default macro average
counts a confusion matrix with ``torch.bincount``, which on CUDA sizes its output from the
largest label read back to the host. Either is one synchronisation per training step, which
stalls the launch queue of a small network on a GPU. Top-k accuracy needs neither:
:class:`TopKAccuracy` sums the hits on the device and divides once in ``compute``. Its value
equals ``MulticlassAccuracy(average="micro", top_k=k)`` (``tests/test_lit.py`` checks it and
that a training step makes no host read); across processes the two sums are added.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


class TopKAccuracy(Metric):
    """Share of samples whose label is among the ``top_k`` largest logits.

    ``update(logits [B, classes], target [B] int)``; ``compute() -> scalar`` in [0, 1].
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, top_k: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.top_k = top_k
        self.add_state("hits", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        if self.top_k == 1:
            hit = logits.argmax(-1) == target
        else:
            hit = (logits.topk(self.top_k, dim=-1).indices == target.unsqueeze(-1)).any(-1)
        self.hits += hit.sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return self.hits.float() / self.total.clamp(min=1)
