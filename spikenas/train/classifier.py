"""The LightningModule of spikenas: :class:`SNNClassifier` trains a network built from a genotype.

The network itself is a plain :class:`~spikenas.network.SpikingNetwork` held as
``self.network``; this module adds the loss (cross-entropy on the logits averaged over time),
one torchmetrics ``MetricCollection`` cloned per stage (``train/``, ``val/``, ``test/``), the
optimiser and schedule, the memory report at fit start and the spike rate on the first
validation batch.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Optional, Union

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics import MetricCollection

from spikenas.train.checkpoint import check_holds_network
from spikenas.base.errors import SpikenasError
from spikenas.train.metrics import accuracy_metrics
from spikenas.network import SpikingNetwork
from spikenas.neuron import NeuronConfig, record_spikes
from spikenas.plugin import get_registries
from spikenas.train.quantize import QuantizationConfig, quantize_weights
from spikenas.space.genotype import Genotype
from spikenas.space.macro import MacroConfig
from spikenas.network.profile import Profiler, activation_bytes, check_fits_in_memory
from spikenas.cost.synops import fan_outs
from spikenas.base.units import format_bytes, parse_bytes, parse_count


def sgd(params) -> torch.optim.Optimizer:
    """SNASNet's optimiser, with the weight decay passed by keyword (SNASNet's positional
    argument made it dampening)."""
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)


def cosine(optimizer: torch.optim.Optimizer) -> "_Cosine":
    """Cosine annealing over the trainer's ``max_epochs`` (resolved in ``configure_optimizers``)."""
    return _Cosine(optimizer)


class _Cosine(torch.optim.lr_scheduler.LRScheduler):
    """Placeholder replaced by ``CosineAnnealingLR(T_max=trainer.max_epochs)``."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer


class SNNClassifier(pl.LightningModule):
    """A spiking classifier built from a genotype.

    Args:
        genotype: the cells, as in ``final.yaml``: ``{cells: [{nodes: 4, edges: [[op, src,
            dst], ...]}]}``. None builds no network: the model is then only a template of
            settings (``spikenas search``), and fit/validate/test/predict fail.
        macro: the macro-architecture; ``num_classes`` and ``input_shape`` come from the data.
        neuron: LIF settings of every neuron.
        seed: weight-initialisation seed of the network (None: the global RNG, which
            ``seed_everything`` seeds).
        optimizer: optimiser factory (default: SGD lr 0.1, momentum 0.9, weight decay 5e-4).
        scheduler: learning-rate schedule factory (default: cosine annealing over
            ``trainer.max_epochs``, stepped per epoch).
        scheduler_interval: ``epoch`` or ``step``: when the schedule advances (the default
            cosine then anneals over all training steps).
        compile: compile the network with ``torch.compile`` (in place: checkpoints keep the
            same keys). It fuses each LIF's per-timestep arithmetic, which pays where kernel
            launches dominate a step (small networks on a GPU); the first steps of each mode
            (train, eval) wait for the compiler.
        channels_last: keep convolution weights, images and feature maps in the channels-last
            memory layout (same values and checkpoint keys; 5-13% faster training steps on a
            2-core CPU, see docs/training.md).
        label_smoothing: of the training loss (``F.cross_entropy``); ``val/loss`` and
            ``test/loss`` stay plain cross-entropy.
        quantization: weight quantisation trained in (quantisation-aware training, see
            :mod:`spikenas.train.quantize`); validation and test run the quantised network.
        budget: the memory budget the network was searched for (bytes or units; None = none):
            ``fit`` refuses a network over it.
        cost_model, cost_options: the cost model (and its options) the budget is measured
            with, also used for the ``memory/*`` metrics. ``final.yaml`` carries all three
            from the search.
        synops_limit: the SynOps per inference the network was searched for (counted at
            initialisation on the scoring batch; None = none). Training changes how often
            neurons fire, so ``fit`` does not refuse on it: it logs ``val/synops_of_limit``,
            the trained network's ``val/synops`` over this limit (above 1: over).
        export_target: the toolchain the network was searched for (``spikenas search
            --export_target``): ``spikenas export``'s default ``--target``.
    """

    def __init__(
        self,
        genotype: Optional[dict] = None,
        macro: MacroConfig = MacroConfig(),
        neuron: NeuronConfig = NeuronConfig(),
        seed: Optional[int] = None,
        optimizer: OptimizerCallable = sgd,
        scheduler: LRSchedulerCallable = cosine,
        scheduler_interval: str = "epoch",
        compile: bool = False,
        channels_last: bool = False,
        label_smoothing: float = 0.0,
        quantization: QuantizationConfig = QuantizationConfig(),
        budget: Union[int, str, None] = None,
        cost_model: str = "memory",
        cost_options: Optional[dict[str, Any]] = None,
        synops_limit: Union[float, str, None] = None,
        export_target: Optional[str] = None,
    ) -> None:
        super().__init__()
        if isinstance(macro, dict):
            macro = MacroConfig(**macro)
        if isinstance(neuron, dict):
            neuron = NeuronConfig(**neuron)
        self.macro = macro
        self.neuron = neuron
        self.genotype = None if genotype is None else Genotype.from_dict(genotype)
        self.seed = seed
        self.optimizer = optimizer
        self.scheduler = scheduler
        if scheduler_interval not in ("epoch", "step"):
            raise SpikenasError(f"model scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.scheduler_interval = scheduler_interval
        self.compile_network = compile
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if not 0.0 <= label_smoothing < 1.0:
            raise SpikenasError(f"model label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
        if isinstance(quantization, dict):
            quantization = QuantizationConfig(**quantization)
        self.quantization = quantization.check()
        self.budget = parse_bytes(budget)
        self.cost_model = cost_model
        self.cost_options = dict(cost_options or {})
        self.synops_limit = None if synops_limit is None else parse_count(synops_limit, "model.synops_limit")
        if export_target is not None:
            from spikenas.export.targets import get_target

            get_target(export_target).check_neuron("model.neuron", neuron)  # fit trains what the target runs
        self.export_target = export_target
        self._network_compiled = False
        self._fan_out_cache: dict[str, int] | None = None  # LIF layer -> fan-out, for SynOps
        # plain data only, so hparams.yaml and checkpoints hold no objects
        self.save_hyperparameters(
            {
                "genotype": None if self.genotype is None else self.genotype.to_dict(),
                "macro": macro.to_dict(),
                "neuron": asdict(neuron),
                "seed": seed,
                "quantization": asdict(self.quantization),
                "budget": self.budget,
                "cost_model": cost_model,
                "cost_options": self.cost_options,
                "synops_limit": self.synops_limit,
                "export_target": export_target,
            }
        )
        if self.genotype is not None:
            params = Profiler(macro, neuron, get_registries().operations).profile(self.genotype).params
            check_fits_in_memory(params, f"the network (model.macro channels={macro.channels}, head_hidden={macro.head_hidden})")
        self.network = None if self.genotype is None else SpikingNetwork(self.genotype, macro, neuron, seed=seed)
        if self.network is not None:
            quantize_weights(self.network, self.quantization)
        # the share of images classified right, summed on the device (no per-step host sync)
        collection = MetricCollection(accuracy_metrics(macro.num_classes))
        self.train_metrics = collection.clone(prefix="train/")
        self.val_metrics = collection.clone(prefix="val/")
        self.test_metrics = collection.clone(prefix="test/")

    # -- checks and reports ------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.network is None:
            raise SpikenasError(
                f"{stage} needs a network: set model.genotype (e.g. `--config final.yaml` "
                "written by `spikenas search`)"
            )
        if stage == "fit":
            self.check_deployable()
        trainer = self._trainer  # None when set up by hand, outside a Trainer
        batch = int(getattr(getattr(trainer, "datamodule", None), "batch_size", 1) or 1)
        profile = Profiler(self.macro, self.neuron, get_registries().operations).profile(self.genotype)
        check_fits_in_memory(profile.params, f"the network (model.macro channels={self.macro.channels}, timesteps="
                             f"{self.macro.timesteps}) at batch {batch}; lower them or data.batch_size",
                             activation_bytes(profile.neurons, self.macro.timesteps, batch, training=stage == "fit"))
        if self.memory_format is torch.channels_last:
            self.network.to(memory_format=torch.channels_last)  # before compiling: the graph sees it
        if self.compile_network and not self._network_compiled:  # setup runs once per stage
            self.network.compile()
            self._network_compiled = True

    def cost(self):
        """The model's cost model (``cost_model`` with ``cost_options``)."""
        return get_registries().cost_models.create(self.cost_model, **self.cost_options)

    def memory_report(self):
        """The cost model's report of the network: parameter and state bytes."""
        profile = Profiler(self.macro, self.neuron, get_registries().operations).profile(self.genotype)
        return self.cost()(profile)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse (one line) a checkpoint that does not hold this config's network, before
        Lightning loads its weights: the config decides what is trained, tested and exported."""
        if self.network is not None:
            check_holds_network(checkpoint, dict(self.hparams), self.state_dict())

    def check_deployable(self) -> None:
        """One-line errors for a network that is not the one its budget describes: weights
        trained at another precision than the cost model counts, a network its cost model's
        hardware does not run, or a footprint over budget."""
        counted = getattr(self.cost(), "weight_bits", None)
        trained = self.quantization.weight_bits or 32
        if counted is not None and counted != trained:
            raise SpikenasError(
                f"cost model {self.cost_model!r} counts {counted}-bit weights but the network trains "
                f"{trained}-bit ones: set model.quantization.weight_bits to {counted if counted < 32 else 'null'}"
            )
        report = self.memory_report()
        if getattr(report, "refusal", None) is not None:
            raise SpikenasError(f"the network does not run on the hardware of cost model {self.cost_model!r}: "
                                f"{report.refusal}; search again with that cost model")
        if self.budget is not None and report.total_bytes > self.budget:
            raise SpikenasError(
                f"the network's footprint {report.total_bytes:,} bytes (cost model {self.cost_model!r}) exceeds "
                f"its budget of {self.budget:,} bytes ({format_bytes(self.budget)}); search again within the "
                "budget or raise model.budget"
            )

    def on_fit_start(self) -> None:
        report = self.memory_report()
        rank_zero_info(report.format())
        metrics = {
            "memory/param_bytes": float(report.param_bytes),
            "memory/state_bytes": float(report.state_bytes),
            "memory/total_bytes": float(report.total_bytes),
            "memory/params": float(sum(p.numel() for p in self.network.parameters())),
        }
        for logger in self.loggers:
            logger.log_metrics(metrics, step=0)

    # -- steps -------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, c, H, W] -> [B, classes]`` logits averaged over the timesteps."""
        return self.network(images.contiguous(memory_format=self.memory_format))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        self.train_metrics.update(logits, y)
        # to the loggers every log_every_n_steps, with no per-step sync; the accuracies are
        # logged once per epoch (each self.log call costs about 1 ms of Lightning bookkeeping)
        self.log("train/loss", loss)
        return loss

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute())  # compute() reduces across processes
        self.train_metrics.reset()

    def _evaluate(self, batch: Any, metrics: MetricCollection, prefix: str) -> None:
        x, y = batch
        logits = self(x)
        metrics.update(logits, y)
        self.log(f"{prefix}/loss", F.cross_entropy(logits, y), on_step=False, on_epoch=True, sync_dist=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=prefix == "val")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        if batch_idx == 0:
            self._log_spike_rate(batch[0])
        self._evaluate(batch, self.val_metrics, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self(x).argmax(-1)

    def _log_spike_rate(self, images: torch.Tensor) -> None:
        """Firing rates and synaptic operations on one batch (one extra, uncompiled forward
        pass): ``val/spike_rate`` over every LIF neuron and timestep, ``spikes/<layer>`` per LIF
        layer (``layer`` its module path in the network, e.g. ``cells.0.ops.0_1_conv3x3.0``),
        ``val/synops`` the SynOps of one inference (spikes over the ``T`` steps times fan-out,
        :mod:`spikenas.cost.synops`) and ``synops/<layer>`` each LIF layer's share."""
        layers: dict[str, tuple[torch.Tensor, int]] = {}

        def record(name: str, spikes: torch.Tensor) -> None:  # per step in cells with backward edges
            total, n = layers.get(name, (0.0, 0))
            layers[name] = (total + spikes.detach().float().sum(), n + spikes.numel())

        with record_spikes(self.network, record, named=True):
            # eager even when compiled: recorders in the graph would cost a third compilation
            self.network.forward(images)
        if not layers:
            return
        total = sum(n for _, n in layers.values())
        options = dict(on_step=False, on_epoch=True, sync_dist=True)
        self.log("val/spike_rate", torch.stack([s for s, _ in layers.values()]).sum() / total, **options)
        fan_out = self._fan_outs()
        per_image = {name: spikes * fan_out.get(name, 0) / len(images) for name, (spikes, _) in layers.items()}
        synops = torch.stack(list(per_image.values())).sum()
        self.log("val/synops", synops, **options)
        if self.synops_limit is not None:
            self.log("val/synops_of_limit", synops / self.synops_limit, **options)
        for name, (spikes, n) in layers.items():
            self.log(f"spikes/{name}", spikes / n, **options)
            self.log(f"synops/{name}", per_image[name], **options)

    def _fan_outs(self) -> dict[str, int]:
        if self._fan_out_cache is None:
            self._fan_out_cache = fan_outs(self.network)
        return self._fan_out_cache

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer(self.parameters())
        scheduler = self.scheduler(optimizer)
        if isinstance(scheduler, _Cosine):
            if self.scheduler_interval == "step":
                length = self.trainer.estimated_stepping_batches
            else:
                length = self.trainer.max_epochs
            length = int(length) if length and 0 < length < float("inf") else 1
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=length)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval}}
