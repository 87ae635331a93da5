"""``spikenas export --config final.yaml --ckpt_path best.ckpt --output net.nir``.

Restores the trained network from the checkpoint, writes its NIR graph atomically, then reads
the file back with nirtorch's executor (:func:`~spikenas.export.load_nir`) and runs it on a
batch of training images beside the network itself, so that every export states how exactly
the file reproduces the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import lightning.pytorch as pl
import nir
import torch
import yaml

from spikenas.checkpoint import SafeCheckpointIO, check_holds_network
from spikenas.errors import SpikenasError
from spikenas.export.nir_graph import ExportError, network_to_nir
from spikenas.export.nir_load import load_nir, run_nir
from spikenas.files import atomic_output


@dataclass(frozen=True)
class ExportCheck:
    """The written graph run back by nirtorch against the network, on ``images`` images:
    the largest logit difference and how many images get the same class. ``refused`` says why
    nirtorch could not run it (then the other fields are None)."""

    images: int
    max_logit_difference: Optional[float] = None
    same_class: Optional[int] = None
    refused: Optional[str] = None

    def format(self) -> str:
        if self.refused:
            return f"not run back: {self.refused}"
        return (f"run back by nirtorch on {self.images} training images: largest logit difference "
                f"{self.max_logit_difference:.2e}, same class for {self.same_class}/{self.images}")


def restore(model: pl.LightningModule, ckpt_path: Optional[str], checkpoint_io: Optional[SafeCheckpointIO] = None) -> None:
    """Load ``ckpt_path``'s weights into ``model``: read once with ``weights_only=True``
    (through ``checkpoint_io`` when the CLI has already read it), refused in one line unless it
    holds the config's network."""
    if model.network is None:
        raise SpikenasError("export needs a network: pass the final.yaml that `spikenas search` wrote (--config final.yaml)")
    if not ckpt_path:
        raise SpikenasError("export needs the trained weights: add --ckpt_path <run>/checkpoints/<best>.ckpt")
    checkpoint = (checkpoint_io or SafeCheckpointIO()).load_checkpoint(ckpt_path)
    check_holds_network(checkpoint, dict(model.hparams), model.state_dict(), f"checkpoint {ckpt_path!r}")
    model.load_state_dict(checkpoint["state_dict"])


def check_roundtrip(path: Path, network: torch.nn.Module, images: torch.Tensor) -> ExportCheck:
    """Run the written file with nirtorch and compare its logits with ``network``'s."""
    try:
        module = load_nir(path)
    except ExportError as exc:
        return ExportCheck(images=len(images), refused=str(exc))
    with torch.no_grad():
        expected = network.eval().timestep_logits(images)
    got = run_nir(module, images, expected.shape[0])
    same = int((got.mean(0).argmax(1) == expected.mean(0).argmax(1)).sum())
    return ExportCheck(images=len(images), max_logit_difference=float((got - expected).abs().max()), same_class=same)


def run_export(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: Optional[pl.LightningDataModule],
    ckpt_path: Optional[str],
    output: str,
    dt: float,
    check_images: int,
) -> ExportCheck:
    io = trainer.strategy.checkpoint_io
    restore(model, ckpt_path, io if isinstance(io, SafeCheckpointIO) else None)
    metadata = {
        "genotype": yaml.safe_dump(model.genotype.to_dict(), sort_keys=False),
        "weight_bits": model.quantization.weight_bits or 32,
        "per_channel_scales": bool(model.quantization.per_channel),
        "budget_bytes": model.budget if model.budget is not None else -1,
        "cost_model": model.cost_model,
        "checkpoint": str(ckpt_path),
    }
    network = model.network.cpu().float()
    graph = network_to_nir(network, dt=dt, metadata=metadata)
    path = Path(output)
    with atomic_output(path) as tmp:
        nir.write(tmp, graph)
    if check_images > 0 and datamodule is not None:
        images = datamodule.sample_batch(check_images, seed=0)
    else:
        images = torch.rand(max(check_images, 1), *model.macro.input_shape, generator=torch.Generator().manual_seed(0))
    check = check_roundtrip(path, network, images)
    print(f"spikenas export: wrote {path} ({len(graph.nodes)} NIR nodes, {len(graph.edges)} edges, "
                   f"{metadata['weight_bits']}-bit weights); {check.format()}")
    return check
