"""A short training of one candidate network: the fit recipe, cut into chunks and validated after each.

Short trainings rank networks far better than training-free scores (two one-epoch seeds agree at
Kendall tau 0.58-0.67; the best score reaches 0.2-0.4, ``docs/analysis.md``), so a search that
chooses by trials (:mod:`spikenas.search.trials`) trains its few candidates briefly with this.
The network is the one ``spikenas fit`` would train from the candidate's ``final.yaml``: the
template model's optimiser, schedule, label smoothing and memory layout, the candidate's
precision trained in (quantisation-aware), on the datamodule's training split; it is judged on
the first images of the validation split (the same for every candidate). Nothing is written:
no logger, no checkpoint.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator, Sequence

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Subset

from spikenas.base.errors import SpikenasError
from spikenas.space.genotype import Genotype
from spikenas.space.macro import MacroConfig
from spikenas.train.classifier import SNNClassifier
from spikenas.train.quantize import QuantizationConfig

EVAL_BATCH = 256  # validation images per forward pass: fewer LIF loop launches, same accuracies


def candidate_model(template: SNNClassifier, genotype: Genotype, macro: MacroConfig, weight_bits: int, seed: int,
                    budget: int | None, cost_options: dict, neuron=None) -> SNNClassifier:
    """The :class:`SNNClassifier` that ``spikenas fit`` builds for the candidate: the
    template's recipe with the candidate's cells, macro and precision (``weight_bits`` 32:
    float), costed by the template's cost model with ``cost_options``, its neurons ``neuron``
    (None: the template's)."""
    return SNNClassifier(
        genotype=genotype.to_dict(), macro=macro, neuron=neuron if neuron is not None else template.neuron, seed=seed, optimizer=template.optimizer,
        scheduler=template.scheduler, scheduler_interval=template.scheduler_interval, compile=False,
        channels_last=template.memory_format is torch.channels_last, label_smoothing=template.label_smoothing,
        quantization=QuantizationConfig(weight_bits if weight_bits < 32 else None), budget=budget,
        cost_model=template.cost_model, cost_options=cost_options, export_target=template.export_target,
    )


@contextmanager
def _quiet() -> Iterator[None]:
    """Lightning's per-trainer banner ("GPU available ...") and the model's memory report off."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


class ValidateAfter(pl.Callback):
    """Validation only after the chunks (training epochs, counted from 1) in ``chunks``: sets
    the trainer's ``check_val_every_n_epoch``, which Lightning reads at every epoch, to 1 before
    such a chunk and past ``max_epochs`` before any other."""

    def __init__(self, chunks: Sequence[int]) -> None:
        self.chunks = frozenset(chunks)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.check_val_every_n_epoch = 1 if trainer.current_epoch + 1 in self.chunks else trainer.max_epochs + 1


def train_in_chunks(model: SNNClassifier, datamodule: pl.LightningDataModule, chunks: int, chunk_batches: int,
                    val_images: int, seed: int, device: torch.device, callbacks: Sequence[pl.Callback] = (),
                    eval_batch_size: int = EVAL_BATCH, validate_after: Sequence[int] | None = None) -> float:
    """Train ``model`` for ``chunks`` chunks of ``chunk_batches`` training batches, validating
    on the first ``val_images`` images of the validation split after each chunk listed in
    ``validate_after`` (None: every chunk; the last is always validated; the callbacks see
    ``val/acc`` there, and may stop the training by raising); return the last validation
    accuracy (a fraction).

    The learning-rate schedule spans all ``chunks * chunk_batches`` steps, as ``fit``'s spans
    its epochs. ``seed`` sets the data order and augmentation draws. Validation runs
    ``eval_batch_size`` images at a time (memory, not results)."""
    if min(chunks, chunk_batches, val_images) < 1:
        raise SpikenasError(f"a short training needs chunks, chunk_batches and val_images >= 1, got "
                            f"{chunks}, {chunk_batches}, {val_images}")
    validated = range(1, chunks + 1) if validate_after is None else {*validate_after, chunks}
    datamodule.setup("fit")
    if getattr(datamodule, "val_set", None) is None:
        raise SpikenasError("a short training judges on a validation split: set data.val_split > 0")
    judged = Subset(datamodule.val_set, range(min(val_images, len(datamodule.val_set))))
    accelerator = "cuda" if device.type == "cuda" else "cpu"
    devices = [device.index or 0] if device.type == "cuda" else 1
    with _quiet():
        pl.seed_everything(seed, verbose=False)
        trainer = pl.Trainer(
            accelerator=accelerator, devices=devices, max_epochs=chunks, limit_train_batches=chunk_batches,
            num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, callbacks=[ValidateAfter(validated), *callbacks],
        )
        trainer.fit(model, train_dataloaders=datamodule.train_dataloader(),
                    val_dataloaders=DataLoader(judged, batch_size=eval_batch_size, shuffle=False))
    return float(trainer.callback_metrics["val/acc"])
