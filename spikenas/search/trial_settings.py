"""How short trainings choose among the candidates the training-free filter keeps (``choose: trials``).

Plain data, checked in one line per setting before anything runs (:meth:`TrialSettings.check`).
The schedule is successive halving as Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner`
runs it: a trial trains at most ``epochs`` epochs of the training split in
``reduction_factor ** (rungs - 1)`` equal chunks, is validated at every rung (after 1,
``reduction_factor``, ``reduction_factor**2``, ... chunks) and goes on only if it is among the
best ``1 / reduction_factor`` of the trials that reached that rung.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from spikenas.base.errors import SpikenasError


FILTERS = ("size", "random")


@dataclass
class TrialSettings:
    """The short-training stage of a search that chooses by trials.

    Args:
        epochs: the most training one candidate gets, in epochs of the training split
            (fractions allowed: ``0.5`` is half an epoch); the budget of the stage in epochs.
        timeout: seconds the stage may take in all (None: no limit). When it runs out, the
            trials finished so far choose (a trial under way is finished first).
        rungs: successive-halving rungs (1: every candidate trains fully).
        reduction_factor: a rung keeps the best ``1 / reduction_factor`` of its trials.
        val_images: validation images each rung is judged on (None: the whole validation
            split); the same images for every candidate.
        keep: the most candidates the training-free filter passes to the trials (None: one
            per combination of precision, cell count and time steps).
        filter: how stage one's networks are cut down to those few: ``size`` (per
            combination the network with the most parameters, most parameters first) or
            ``random`` (``keep``, or one per combination, drawn at random from all of them,
            seeded: the control that shows what the filter is worth).
        headrooms: the share of the budget the macro leaves to the cells, one macro tried per
            value in each combination (``0.5``: SpikeNAS's rule).
        storage: the Optuna storage of the study: None keeps it in the run directory
            (``study.journal``, resumable, readable by ``optuna-dashboard``); an RDB URL
            (``postgresql://user@host/db``, ``sqlite:////shared/study.db``) lets worker
            processes on several machines join one search.
        study_name: the study's name in ``storage`` (None: derived from the search's settings,
            so every worker of the same command joins the same study).
        seed: seed of every trial's weights and data order (None: the search's ``search_seed``).
    """

    epochs: float = 0.5
    timeout: Optional[float] = None
    rungs: int = 3
    reduction_factor: int = 3
    val_images: Optional[int] = 5000
    keep: Optional[int] = None
    filter: str = "size"
    headrooms: list[float] = field(default_factory=lambda: [0.5, 0.25])
    storage: Optional[str] = None
    study_name: Optional[str] = None
    seed: Optional[int] = None

    def check(self) -> "TrialSettings":
        """``self`` if every setting is valid; otherwise a one-line error naming it."""
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, float)) or not math.isfinite(self.epochs) \
                or self.epochs <= 0:
            raise SpikenasError(f"trials.epochs must be a number > 0, got {self.epochs!r}")
        if self.timeout is not None and (isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float))
                                         or not math.isfinite(self.timeout) or self.timeout <= 0):
            raise SpikenasError(f"trials.timeout must be seconds > 0 or null, got {self.timeout!r}")
        for name, low in (("rungs", 1), ("reduction_factor", 2), ("val_images", 1), ("keep", 1)):
            value = getattr(self, name)
            if value is None and name in ("val_images", "keep"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 1_000_000:
                raise SpikenasError(f"trials.{name} must be an integer in {low}..1000000, got {value!r}")
        if self.filter not in FILTERS:
            raise SpikenasError(f"trials.filter must be one of {', '.join(FILTERS)}, got {self.filter!r}")
        if self.reduction_factor ** (self.rungs - 1) > 10_000:
            raise SpikenasError(f"trials: reduction_factor ** (rungs - 1) = {self.reduction_factor ** (self.rungs - 1):,} "
                                "chunks per trial; lower rungs or reduction_factor")
        if not isinstance(self.headrooms, (list, tuple)) or not self.headrooms or any(
                isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 <= h < 1 for h in self.headrooms):
            raise SpikenasError(f"trials.headrooms must be a non-empty list of shares in [0, 1), got {self.headrooms!r}")
        if self.storage is not None and (not isinstance(self.storage, str) or "://" not in self.storage):
            raise SpikenasError(f"trials.storage must be a database URL (postgresql://..., sqlite:///...) or null "
                                f"(the run directory's journal), got {self.storage!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32):
            raise SpikenasError(f"trials.seed must be an integer in 0..2**32-1 or null, got {self.seed!r}")
        return self

    @property
    def chunks(self) -> int:
        """Chunks of a trial that trains fully."""
        return self.reduction_factor ** (self.rungs - 1)

    @property
    def rung_chunks(self) -> list[int]:
        """The chunks after which a trial is validated: the rungs, where the pruner decides
        (1, ``reduction_factor``, ..., :attr:`chunks`). Validating anywhere else would cost time
        and decide nothing."""
        return [self.reduction_factor ** k for k in range(self.rungs)]
