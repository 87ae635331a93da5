"""``spikenas export --config final.yaml --ckpt_path best.ckpt --output net.nir``.

Restores the trained network from the checkpoint, writes its NIR graph for one reader
(``--target``: ``nir``, ``snntorch``, ``norse``, ``sinabs`` or ``speck``; by default the one
``final.yaml`` records; with neither, refused in one line) atomically, then runs the file with that reader (spikenas's own for
``nir``, the toolchain's importer for the others where it is installed) on a batch of training
images beside the network itself, so that every export states how exactly the file reproduces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import lightning.pytorch as pl
import torch
import yaml

from spikenas.train.checkpoint import SafeCheckpointIO, check_holds_network
from spikenas.base.errors import SpikenasError
from spikenas.export import consumers
from spikenas.export.from_network import network_to_nir
from spikenas.export.graph import write
from spikenas.export.nir_load import load_nir, run_nir
from spikenas.export.targets import TARGETS, Target, get_target


@dataclass(frozen=True)
class ExportCheck:
    """The written file run back against the network on ``images`` images, by ``reader``: the
    largest logit difference and how many images get the same class. ``refused`` says why it
    was not run (then the other fields are None)."""

    images: int
    reader: str = ""
    max_logit_difference: Optional[float] = None
    same_class: Optional[int] = None
    refused: Optional[str] = None

    def format(self) -> str:
        if self.refused:
            return f"not run back: {self.refused}"
        return (f"run back by {self.reader} on {self.images} training images: largest logit difference "
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


def check_file(path: Path, target: Target, network: torch.nn.Module, images: torch.Tensor) -> ExportCheck:
    """Run the written file with its target's reader (spikenas's own for ``nir``, else the
    toolchain's importer where it is installed here) and compare its logits with ``network``'s."""
    with torch.no_grad():
        expected = network.eval().timestep_logits(images)
    steps = expected.shape[0]
    if target.name == "nir":
        got, reader = run_nir(load_nir(path), images, steps), "spikenas's NIR reader"
    else:
        toolchain = target.toolchain or target.name
        try:
            got = consumers.run(toolchain, str(path), images, steps)
        except ImportError as exc:
            return ExportCheck(images=len(images), refused=f"{exc.name or toolchain} is not installed here "
                               f"(pip install {toolchain}; tests/consumers runs it)")
        reader = f"{toolchain} {consumers.versions(toolchain)[toolchain]}"
    same = int((got.mean(0).argmax(1) == expected.mean(0).argmax(1)).sum())
    return ExportCheck(images=len(images), reader=reader, max_logit_difference=float((got - expected).abs().max()),
                       same_class=same)


def _short(text: str, limit: int = 80) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit] + "...")


def export_target(given: Optional[str], recorded: Optional[str]) -> str:
    """The target of an export: ``--target`` (``given``), else the one ``final.yaml`` records; with
    neither, a one-line error naming the targets (no file is right in every toolchain: each reads
    LIF time constants and node order its own way)."""
    if given or recorded:
        return given or recorded
    raise SpikenasError("export needs --target: final.yaml records no export target (spikenas search --export_target "
                        f"records one), and each toolchain reads a file its own way; name who reads it: {', '.join(TARGETS)}")


def run_export(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: Optional[pl.LightningDataModule],
    ckpt_path: Optional[str],
    output: str,
    dt: float,
    check_images: int,
    target: Optional[str] = None,
) -> ExportCheck:
    spec = get_target(export_target(target, model.export_target))
    if not str(output):
        raise SpikenasError("export --output is empty: name the .nir file to write")
    path = Path(output)
    try:
        if path.is_dir():
            raise SpikenasError(f"export --output {str(path)!r} is a directory: name the .nir file to write")
        replaced = path.exists()
    except OSError as exc:  # a name too long, a path through a file
        raise SpikenasError(f"export --output {_short(str(path))}: {exc.strerror or exc}") from None
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
    graph = network_to_nir(network, target=spec.name, dt=dt, metadata=metadata)
    try:
        write(path, graph)
    except OSError as exc:
        raise SpikenasError(f"cannot write {_short(str(path))}: {exc.strerror or exc}") from None
    if check_images > 0 and datamodule is not None:
        images = datamodule.sample_batch(check_images, seed=0)
    else:
        images = torch.rand(max(check_images, 1), *model.macro.input_shape, generator=torch.Generator().manual_seed(0))
    check = check_file(path, spec, network, images)
    print(f"spikenas export: {'replaced' if replaced else 'wrote'} {path} for {spec.reader} ({len(graph.nodes)} NIR nodes, "
          f"{len(graph.edges)} edges, {metadata['weight_bits']}-bit weights); {check.format()}")
    return check
