"""Accuracy metrics whose update never reads the device.

Top-1 is torchmetrics' ``MulticlassAccuracy(average="micro")``: it compares the argmax with
the label on the device. For ``top_k > 1`` torchmetrics one-hot encodes the labels, which
checks their range on the host (``aminmax`` then ``item``: one synchronisation per step,
which stalls the launch queue of a small network on a GPU; its default macro average also
counts with ``torch.bincount``, which on CUDA sizes its output from a host read).
:class:`TopKAccuracy` needs neither: it sums the hits on the device and divides once in
``compute``. Its value equals ``MulticlassAccuracy(average="micro", top_k=k)``;
``tests/test_metrics.py`` checks that, and that torchmetrics' top-k path reads the device
where this one does not (with ``torch.cuda.set_sync_debug_mode("error")`` too, on a GPU).
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy


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


def accuracy_metrics(num_classes: int) -> dict[str, Metric]:
    """``acc`` (top-1) and, with more than five classes, ``acc5`` (top-5), neither of which
    reads the device in ``update``."""
    metrics: dict[str, Metric] = {"acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False)}
    if num_classes > 5:
        metrics["acc5"] = TopKAccuracy(top_k=5)
    return metrics
