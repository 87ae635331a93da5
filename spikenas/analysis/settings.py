"""What ``spikenas analyze`` studies and how it trains each network (the proxy recipe).

Everything here is plain data; :meth:`check` (called by the analysis before it builds or
trains anything) turns a bad setting into a one-line :class:`~spikenas.base.errors.SpikenasError`.
Checking is not done on construction: the CLI's parser would wrap the error in a traceback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from spikenas.base.errors import SpikenasError

STUDIES = ("impact", "cells", "correlation", "baseline")


@dataclass
class ProxyRecipe:
    """One short training recipe shared by every network of an analysis.

    Args:
        epochs: passes over the training subset; fractions allowed (``0.5`` = half an epoch).
            The proxy trains ``ceil(epochs * train_subset / batch_size)`` steps.
        train_subset: training images drawn (seeded, the same for every network) from the
            datamodule's training split; None = the whole split.
        val_subset: validation images (from the datamodule's validation split); None = all.
        test_subset: test images; None = the whole test set.
        batch_size: images per training step; None = the datamodule's ``batch_size``.
        seeds: every network is trained once per seed (weight initialisation and data order).
        eval_batch_size: images per evaluation batch (memory, not results).
    """

    epochs: float = 1.0
    train_subset: Optional[int] = 10000
    val_subset: Optional[int] = 2000
    test_subset: Optional[int] = 2000
    batch_size: Optional[int] = None
    seeds: list[int] = field(default_factory=lambda: [0])
    eval_batch_size: int = 500

    def check(self) -> "ProxyRecipe":
        """``self`` if every setting is valid (a one-line error otherwise)."""
        if not math.isfinite(self.epochs) or self.epochs <= 0:
            raise SpikenasError(f"proxy.epochs must be > 0, got {self.epochs}")
        for name in ("train_subset", "val_subset", "test_subset", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SpikenasError(f"proxy.{name} must be >= 1 or null, got {value}")
        if not self.seeds:
            raise SpikenasError("proxy.seeds is empty: give at least one seed, e.g. [0]")
        if len(set(self.seeds)) != len(self.seeds):
            raise SpikenasError(f"proxy.seeds has duplicates: {self.seeds}")
        if self.eval_batch_size < 1:
            raise SpikenasError(f"proxy.eval_batch_size must be >= 1, got {self.eval_batch_size}")
        return self

    def steps(self, train_images: int, batch_size: int) -> int:
        """Training steps for ``train_images`` available images; a recipe of 0 steps is an error."""
        images = min(train_images, self.train_subset or train_images)
        steps = math.ceil(self.epochs * images / batch_size) if images else 0
        if steps < 1 or self.epochs * images < 1:
            raise SpikenasError(
                f"the proxy recipe trains 0 steps (epochs={self.epochs} x {images} images / batch "
                f"{batch_size}): raise proxy.epochs or proxy.train_subset"
            )
        return steps


@dataclass
class Studies:
    """Which studies run and how large they are.

    Args:
        run: the studies: ``impact`` (operation impact, SpikeNAS step 1), ``cells`` (cell
            count, step 2), ``correlation`` (score against accuracy) and ``baseline`` (the
            found network against random ones).
        impact_draws: random networks per arm of the impact study (space without an
            operation, cells only using it).
        cells: the cell counts of the cell study (each searched at the same macro).
        random_networks: random networks of the full space within the budget (the
            correlation and baseline studies, and the impact study's reference).
        stratum_networks: random networks of the full space drawn among those filling at
            least ``stratum_fill`` of the budget (the correlation study's stratum: the choice a
            budget-filling search makes; the baseline study's size-matched networks). Drawn
            only with a budget and the correlation or baseline study; 0 draws none (the
            stratum then holds only the ``random`` networks that fill the budget).
        stratum_fill: the share of the budget a network must fill to be in the stratum.
        keep_threshold: an operation stays in the enhanced space when removing it lowers the
            mean validation accuracy by more than this (accuracy as a fraction).
        cells_tolerance: the enhanced space takes the fewest cells whose validation accuracy is
            within this of the best cell count's.
    """

    run: list[str] = field(default_factory=lambda: list(STUDIES))
    impact_draws: int = 3
    cells: list[int] = field(default_factory=lambda: [1, 2, 3])
    random_networks: int = 30
    stratum_networks: int = 20
    stratum_fill: float = 0.9
    keep_threshold: float = 0.0
    cells_tolerance: float = 0.005

    def check(self) -> "Studies":
        """``self`` normalised (studies and cell counts deduplicated, cell counts sorted) if every
        setting is valid (a one-line error otherwise)."""
        if not self.run:
            raise SpikenasError(f"studies.run is empty: choose from {', '.join(STUDIES)}")
        unknown = [s for s in self.run if s not in STUDIES]
        if unknown:
            raise SpikenasError(f"unknown study {unknown[0]!r} in studies.run; known: {', '.join(STUDIES)}")
        self.run = list(dict.fromkeys(self.run))
        if self.impact_draws < 1:
            raise SpikenasError(f"studies.impact_draws must be >= 1, got {self.impact_draws}")
        if "cells" in self.run and (not self.cells or min(self.cells) < 1):
            raise SpikenasError(f"studies.cells must be a non-empty list of cell counts >= 1, got {self.cells}")
        self.cells = sorted(set(self.cells))
        needs_random = {"correlation", "baseline"} & set(self.run)
        if needs_random and self.random_networks < 3:
            raise SpikenasError(
                f"studies.random_networks must be >= 3 for {' and '.join(sorted(needs_random))}, "
                f"got {self.random_networks}"
            )
        if self.stratum_networks < 0:
            raise SpikenasError(f"studies.stratum_networks must be >= 0, got {self.stratum_networks}")
        if not 0 < self.stratum_fill <= 1:
            raise SpikenasError(f"studies.stratum_fill must be in (0, 1], got {self.stratum_fill}")
        if not 0 <= self.cells_tolerance < 1:
            raise SpikenasError(f"studies.cells_tolerance must be in [0, 1), got {self.cells_tolerance}")
        return self

    def random_count(self) -> int:
        """How many random full-space networks the plan needs."""
        count = self.random_networks if {"correlation", "baseline"} & set(self.run) else 0
        return max(count, self.impact_draws if "impact" in self.run else 0)

    def stratum_least(self, budget: int | None) -> int | None:
        """The bytes a network must have to be in the stratum (None without a budget)."""
        return None if budget is None else max(1, math.ceil(self.stratum_fill * budget))

    def stratum_count(self, budget: int | None) -> int:
        """How many networks the plan draws from the stratum (none without a budget)."""
        return self.stratum_networks if budget is not None and {"correlation", "baseline"} & set(self.run) else 0
