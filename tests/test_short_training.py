"""The short training a search's trials run: validated where the pruner decides, nowhere else."""

from __future__ import annotations

from functools import partial

import lightning.pytorch as pl
import torch

from spikenas.data import Synthetic
from spikenas.search.trial_settings import TrialSettings
from spikenas.space import MacroConfig
from spikenas.train.classifier import SNNClassifier
from spikenas.train.short_training import candidate_model, train_in_chunks


class Validations(pl.Callback):
    """Records the chunk (training epoch, from 1) and training steps done at each validation."""

    def __init__(self) -> None:
        self.after: list[tuple[int, int]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.after.append((trainer.current_epoch + 1, trainer.global_step))


def test_a_trial_is_validated_at_its_rungs_and_after_its_last_chunk_only(genotype):
    rungs = TrialSettings(rungs=3, reduction_factor=2).rung_chunks
    assert rungs == [1, 2, 4]
    data = Synthetic(num_classes=3, input_shape=(1, 8, 8), train_size=96, test_size=24, signal=2.0, batch_size=16,
                     val_split=0.25)
    macro = MacroConfig(input_shape=(1, 8, 8), num_classes=3, timesteps=2, channels=4, head_hidden=0, head_pool=2,
                        votes=1, dropout=0.0)
    template = SNNClassifier(macro=macro, optimizer=partial(torch.optim.Adam, lr=0.01))
    model = candidate_model(template, genotype, macro, 32, seed=0, budget=None, cost_options={})
    seen = Validations()
    train_in_chunks(model, data, chunks=5, chunk_batches=2, val_images=16, seed=0, device=torch.device("cpu"),
                    callbacks=[seen], validate_after=rungs)
    # chunks 1, 2 and 4 are rungs; chunk 5 is the last; chunk 3 is neither. Every chunk trained.
    assert seen.after == [(1, 2), (2, 4), (4, 8), (5, 10)]
