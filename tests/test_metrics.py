"""The training metrics: torchmetrics' values, and no host read in ``update``."""

from __future__ import annotations

import pytest
import torch
from host_reads import HostReads
from torchmetrics.classification import MulticlassAccuracy

from spikenas.train.metrics import TopKAccuracy, accuracy_metrics


def _batches(device: str = "cpu", n: int = 4):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(33, 10, generator=g).to(device), torch.randint(0, 10, (33,), generator=g).to(device)) for _ in range(n)]


def test_top_k_accuracy_matches_torchmetrics_micro_accuracy():
    for k in (1, 5):
        ours, reference = TopKAccuracy(top_k=k), MulticlassAccuracy(10, top_k=k, average="micro")
        for logits, target in _batches():
            ours.update(logits, target)
            reference.update(logits, target)
        assert torch.allclose(ours.compute(), reference.compute())
    with pytest.raises(ValueError, match="top_k"):
        TopKAccuracy(top_k=0)


def test_accuracy_metrics_are_top_1_and_top_5_with_more_than_five_classes():
    assert set(accuracy_metrics(10)) == {"acc", "acc5"}
    assert set(accuracy_metrics(5)) == {"acc"}
    metrics = accuracy_metrics(10)
    for logits, target in _batches():
        for m in metrics.values():
            m.update(logits, target)
    logits, target = (torch.cat(t) for t in zip(*_batches()))
    assert metrics["acc"].compute() == pytest.approx((logits.argmax(-1) == target).float().mean().item())
    top5 = (logits.topk(5, -1).indices == target[:, None]).any(-1).float().mean().item()
    assert metrics["acc5"].compute() == pytest.approx(top5)


def test_torchmetrics_top_5_reads_the_device_where_ours_does_not():
    """Why ``TopKAccuracy`` exists: the top-5 update of torchmetrics reads label values back
    (a synchronisation per step on a GPU); its top-1 micro accuracy, which spikenas uses, does not."""
    logits, target = _batches(n=1)[0]
    metrics = {"torchmetrics_top5": MulticlassAccuracy(10, top_k=5, average="micro", validate_args=False),
               **{f"spikenas_{name}": m for name, m in accuracy_metrics(10).items()}}
    seen = {}
    for name, metric in metrics.items():
        metric.update(logits, target)  # first call: any lazy set-up out of the way
        with HostReads() as spy:
            metric.update(logits, target)
        seen[name] = spy.seen
    assert seen["torchmetrics_top5"], "torchmetrics' top-5 no longer reads the device: use it instead of TopKAccuracy"
    assert seen["spikenas_acc"] == seen["spikenas_acc5"] == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_accuracy_updates_do_not_synchronise_a_gpu():
    metrics = {name: m.to("cuda") for name, m in accuracy_metrics(10).items()}
    batches = _batches("cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for logits, target in batches:
            for metric in metrics.values():
                metric.update(logits, target)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    reference = MulticlassAccuracy(10, top_k=5, average="micro", validate_args=False).to("cuda")
    torch.cuda.set_sync_debug_mode("error")
    try:
        with pytest.raises(RuntimeError, match="synchroniz"):
            reference.update(*batches[0])
    finally:
        torch.cuda.set_sync_debug_mode("default")
