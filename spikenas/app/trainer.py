"""The Lightning ``Trainer`` of spikenas: Lightning's, plus ``search``, ``analyze`` and ``export``.

They are trainer methods so that LightningCLI builds the ``spikenas search``, ``spikenas
analyze`` and ``spikenas export`` subcommands from their signatures and so that they use the trainer's strategy (DDP,
devices, accelerator) and logger directory like every other subcommand.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import lightning.pytorch as pl
from lightning.fabric.plugins import TorchCheckpointIO

from spikenas.analysis.settings import ProxyRecipe, Studies
from spikenas.train.checkpoint import SafeCheckpointIO
from spikenas.base.errors import SpikenasError
from spikenas.space.config import SearchSpaceConfig
from spikenas.search.settings import SearchSettings
from spikenas.search.trial_settings import TrialSettings


class Trainer(pl.Trainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Lightning's Trainer (same arguments) whose checkpoints are read with
        ``weights_only=True`` and written atomically (:class:`~spikenas.train.checkpoint.SafeCheckpointIO`
        in place of Lightning's default ``TorchCheckpointIO``). Any other ``CheckpointIO`` (from
        ``plugins`` or the strategy) is refused in one line unless it subclasses ``SafeCheckpointIO``:
        another could read checkpoints with pickle."""
        super().__init__(*args, **kwargs)
        checkpoint_io = self.strategy.checkpoint_io
        if type(checkpoint_io) is TorchCheckpointIO:
            self.strategy.checkpoint_io = SafeCheckpointIO()
        elif not isinstance(checkpoint_io, SafeCheckpointIO):
            name = f"{type(checkpoint_io).__module__}.{type(checkpoint_io).__qualname__}"
            raise SpikenasError(f"checkpoint IO {name} refused: spikenas reads and writes checkpoints only through "
                                "spikenas.train.checkpoint.SafeCheckpointIO (weights_only=True) or a subclass of it")

    def search(
        self,
        model: pl.LightningModule,
        datamodule: Optional[pl.LightningDataModule] = None,
        budget: Union[int, dict[str, Union[int, float, str, None]], str, None] = SearchSettings.budget,
        strategy: str = SearchSettings.strategy,
        strategy_options: Optional[dict[str, Any]] = SearchSettings.strategy_options,
        space: Optional[SearchSpaceConfig] = None,
        score: str = SearchSettings.score,
        score_options: Optional[dict[str, Any]] = SearchSettings.score_options,
        cost_model: str = SearchSettings.cost_model,
        cost_options: Optional[dict[str, Any]] = SearchSettings.cost_options,
        candidates: int = SearchSettings.candidates,
        sweeps: int = SearchSettings.sweeps,
        last_sweeps: int = SearchSettings.last_sweeps,
        rerank: int = SearchSettings.rerank,
        score_batch_size: int = SearchSettings.score_batch_size,
        score_batches: int = SearchSettings.score_batches,
        search_seed: int = SearchSettings.search_seed,
        channels_last: bool = SearchSettings.channels_last,
        compile_lif: bool = SearchSettings.compile_lif,
        stack_bytes: Union[int, str] = SearchSettings.stack_bytes,
        export_target: Optional[str] = SearchSettings.export_target,
        choose: str = SearchSettings.choose,
        trials: Optional[TrialSettings] = None,
    ) -> Any:
        """Search the architecture with the best training-free score within a memory budget.

        Args:
            model: the :class:`~spikenas.train.classifier.SNNClassifier` whose macro, neuron and optimiser
                settings are the template of the result (its genotype is ignored).
            datamodule: supplies the scoring batch and ends up in ``final.yaml``.
            budget: memory budget in bytes or with units (``500KB``, ``2MiB``) under
                ``cost_model``, or several named limits at once, e.g. ``{memory: 256KiB,
                synops: 2e6}`` (``synops``: synaptic operations per inference, spikes x
                fan-out measured on the scoring batch); None = no limit. The result meets
                every limit.
            strategy: a registered strategy (``spikenas plugins``): ``spikenas`` (consecutive
                per-cell, memory-aware), ``random`` (SNASNet's baseline) or ``evolution``
                (regularised evolution, as AutoSNN); ``strategy_options`` its own options (e.g.
                ``{population: 20, sample_size: 5}`` for ``evolution``).
            space: operations, cells, nodes, backward edges and the macro knobs the search may
                turn.
            score: registered score name; ``score_options`` its keyword arguments.
            cost_model: registered cost model name; ``cost_options`` its keyword arguments.
            candidates: number of scored candidates of the ``random`` and ``evolution``
                strategies.
            sweeps: passes over a cell's edges of the ``spikenas`` strategy (cells before the
                last); ``last_sweeps`` for the last cell.
            rerank: how many of the best cells by local score the ``spikenas`` strategy
                re-scores on the whole network before keeping one (all cells but the last).
            score_batch_size: images per scoring batch.
            score_batches: number of scoring batches (the score is their mean).
            search_seed: seed of the search (sampling, weight initialisation, scoring batch).
            channels_last: score in the channels-last memory layout (other convolution
                kernels: 1.17x faster on the CPU, the same ranking within Kendall tau 0.998;
                ``docs/benchmarks.md``); ``false``: the contiguous layout.
            compile_lif: run the LIF recurrence of large layers (16.8M elements and more, e.g.
                SNASNet's CIFAR-10 cells) as one compiled kernel (``torch.compile``: seconds
                per new shape, then 2-5x faster per layer than the eager loop; equal spikes).
                Small layers stay eager.
            stack_bytes: input the part after a cell (the next reduction's first layers, or the
                head) may take when it runs for several candidates at once, each LIF layer once
                on all of them (bytes or units; 0: one candidate at a time). Scores are equal
                either way. On a 2-core CPU it neither gains nor loses; on a GPU it is meant to
                save kernel launches (not measured yet: ``bench/gpu.sh``).
            export_target: the toolchain the network will run in (``nir``, ``snntorch``,
                ``norse``, ``sinabs``, ``speck``): the search proposes only networks it runs
                (backward edges off where it has none, only operations it can express, its own
                neuron model: ``sinabs_lif`` for sinabs, ``sinabs_iaf`` for speck) and
                ``final.yaml`` records it as ``spikenas export``'s default ``--target``, and the
                neuron model, which ``fit`` trains.
            choose: how the macro (precision, width, cells, time steps) is chosen: ``rule``
                (SpikeNAS's: the largest macro leaving half the budget to the cells, at the
                precision, cell count and time steps given) or ``trials`` (the cells searched
                at every combination of ``space.weight_bits``, ``space.cell_counts``,
                ``space.timesteps`` and the widths, a few candidates kept by size, and short
                trainings choose among them through an Optuna study; ``docs/search.md``).
            trials: the short-training stage of ``choose: trials`` (``--trials.epochs``,
                ``--trials.storage``, ...; see :class:`~spikenas.search.trial_settings.TrialSettings`).

        Returns:
            A :class:`~spikenas.search.result.SearchResult`.
        """
        from spikenas.search.driver import run_search

        values = dict(locals())  # every argument above, as the CLI filled it
        return run_search(self, model=model, datamodule=datamodule, settings=SearchSettings.of(**values))

    def analyze(
        self,
        model: pl.LightningModule,
        datamodule: Optional[pl.LightningDataModule] = None,
        search: Optional[SearchSettings] = None,
        studies: Optional[Studies] = None,
        proxy: Optional[ProxyRecipe] = None,
    ) -> Any:
        """Train many networks briefly to measure what matters (SpikeNAS steps 1 and 2).

        Writes ``networks.csv`` (one row per trained network and seed), ``impact.csv/png``
        (each operation), ``cells.csv/png`` (each cell count), ``correlation.csv/png`` (each
        registered score against accuracy), ``baseline.csv/png`` (the found network against
        random ones), ``enhanced_space.yaml`` and ``report.md`` to ``lightning_logs/version_N/``.

        Args:
            model: the template :class:`~spikenas.train.classifier.SNNClassifier`: macro, neuron, optimiser.
            datamodule: the data (needs a validation split).
            search: the settings of ``spikenas search``, nested (``--search.budget``,
                ``--search.space.cells``, ``--search.score``, ...): ``budget`` every network must
                fit (bytes or units; None = no limit), ``space`` the full search space analysed,
                ``score`` guiding the ``spikenas`` searches (every registered score is
                measured for every network), ``cost_model``, ``sweeps``, ``last_sweeps``,
                ``rerank``, ``score_batch_size``, ``score_batches`` and ``search_seed`` (also the
                seed of the plan's random draws). The strategy is always ``spikenas``;
                ``strategy``, ``candidates``, ``export_target``, ``choose`` and ``trials`` are not used.
            studies: which studies run and their sizes (see :class:`~spikenas.analysis.Studies`).
            proxy: the short training recipe of every network (see
                :class:`~spikenas.analysis.ProxyRecipe`).

        Returns:
            An :class:`~spikenas.analysis.driver.AnalysisResult`.
        """
        from spikenas.analysis.driver import run_analysis

        return run_analysis(self, model=model, datamodule=datamodule, search=search, studies=studies, proxy=proxy)

    def front(
        self,
        model: pl.LightningModule,
        datamodule: Optional[pl.LightningDataModule] = None,
        search: Optional[SearchSettings] = None,
        budgets: list[str] = ["16KiB", "32KiB", "64KiB", "128KiB", "256KiB", "1MiB"],
        full_training: bool = False,
    ) -> Any:
        """The accuracy-vs-memory front: the best network for each of several memory budgets.

        Runs ``spikenas search`` once per budget (each into its own run directory, resumable)
        and writes ``front.csv`` (per budget: bytes, precision, macro, cells, the short
        training's validation accuracy, the ``final.yaml``) and ``front.png`` (accuracy against
        bytes, log axis, each point labelled) to ``lightning_logs/version_N/``.

        Args:
            model: the template :class:`~spikenas.train.classifier.SNNClassifier`: macro, neuron, optimiser.
            datamodule: the data (a validation split for ``choose: trials``).
            search: the settings of ``spikenas search``, nested (``--search.choose trials``,
                ``--search.space.weight_bits``, ``--search.trials.epochs``, ...); its ``budget``
                is replaced by each of ``budgets``.
            budgets: the memory budgets (bytes or units), searched smallest first.
            full_training: also train every point with the full recipe (``spikenas fit`` with
                the config's trainer, then ``test`` on its best checkpoint): ``front.csv``'s
                ``test_acc``.

        Returns:
            The rows of ``front.csv``.
        """
        from spikenas.app.full_training import fit_and_test
        from spikenas.search.front import run_front

        config = {"model": {"macro": model.macro.to_dict()}}
        return run_front(self, model, datamodule, config, search or SearchSettings(), list(budgets), full_training,
                         fit_and_test)

    def export(
        self,
        model: pl.LightningModule,
        datamodule: Optional[pl.LightningDataModule] = None,
        ckpt_path: Optional[str] = None,
        output: str = "network.nir",
        dt: float = 1e-3,
        check_images: int = 16,
        target: Optional[str] = None,
    ) -> Any:
        """Write the trained network as a NIR graph for neuromorphic hardware and simulators.

        Batch norm is folded into the convolutions, average pooling becomes sum pooling and
        fixed-weight convolutions, quantised weights are written as trained and backward edges
        become recurrent connections, one step late (a ``Delay`` for ``nir``, a cycle that the
        toolchain's executor delays); the graph follows the
        conventions of ``target``'s reader (see ``docs/deploy.md``). The file is then run back by
        that reader on ``check_images`` training images and compared with the network.

        Args:
            model: the network of ``final.yaml``.
            datamodule: the data (the images of the check).
            ckpt_path: the trained checkpoint (``<run>/checkpoints/best-....ckpt``).
            output: the ``.nir`` file to write (HDF5; replaced atomically).
            dt: seconds of NIR time per timestep (LIF ``tau`` is written in seconds) for the
                ``nir`` target; the toolchains' targets use the step their importer assumes.
            check_images: images of the round-trip check (0: random images, 1 of them).
            target: who reads the file: ``nir`` (standard NIR), ``snntorch``, ``norse``,
                ``sinabs`` or ``speck`` (each toolchain's own NIR importer runs it unchanged);
                default: the ``model.export_target`` that ``final.yaml`` records (with none, the
                export is refused in one line naming the targets).

        Returns:
            An :class:`~spikenas.app.export_command.ExportCheck`.
        """
        from spikenas.app.export_command import run_export

        return run_export(self, model, datamodule, ckpt_path, output, dt, check_images, target)
