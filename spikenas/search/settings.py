"""Every setting of ``spikenas search``, in one value built once from the command line.

:class:`SearchSettings` holds the defaults (``Trainer.search``'s signature reads them from
here), checks the values in one line each before anything runs, and says which keys of a
search config are search-only (left out of ``final.yaml``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional, Union

from spikenas.base.units import parse_bytes
from spikenas.base.errors import SpikenasError
from spikenas.search.trial_settings import TrialSettings
from spikenas.space.config import SearchSpaceConfig


CHOICES = ("rule", "trials")
"""How a search fixes the macro (precision, width, cell count, time steps): ``rule`` takes the
largest macro that leaves half the budget to the cells, at the given precision, cell count and
time steps (SpikeNAS); ``trials`` searches the cells at every combination the space lists and
lets short trainings choose among the few the training-free filter keeps."""


@dataclass(frozen=True)
class SearchSettings:
    """What ``spikenas search`` does; see :meth:`spikenas.app.trainer.Trainer.search` for each."""

    budget: Union[int, str, dict, None] = None
    strategy: str = "spikenas"
    strategy_options: Optional[dict[str, Any]] = None
    space: SearchSpaceConfig = field(default_factory=SearchSpaceConfig)
    score: str = "sahd"
    score_options: Optional[dict[str, Any]] = None
    cost_model: str = "memory"
    cost_options: Optional[dict[str, Any]] = None
    candidates: int = 5000
    sweeps: int = 1
    last_sweeps: int = 2
    rerank: int = 3
    score_batch_size: int = 256
    score_batches: int = 1
    search_seed: int = 0
    channels_last: bool = True
    compile_lif: bool = True
    stack_bytes: Union[int, str] = "8MiB"
    export_target: Optional[str] = None
    choose: str = "rule"
    trials: TrialSettings = field(default_factory=TrialSettings)

    @classmethod
    def of(cls, **values: Any) -> "SearchSettings":
        """Settings from keyword values (``None`` for ``space``: the default space; a mapping:
        its fields); any other key is ignored (e.g. the model and data of a CLI call)."""
        names = {f.name for f in fields(cls)}
        chosen = {k: v for k, v in values.items() if k in names}
        space = chosen.get("space")
        chosen["space"] = SearchSpaceConfig(**space) if isinstance(space, dict) else (space or SearchSpaceConfig())
        trials = chosen.get("trials")
        chosen["trials"] = TrialSettings(**trials) if isinstance(trials, dict) else (trials or TrialSettings())
        return cls(**chosen)

    def check(self) -> "SearchSettings":
        """``self`` if every count is valid; otherwise a one-line error naming the setting."""
        for name in ("score_batches", "score_batch_size", "sweeps", "last_sweeps", "rerank", "candidates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpikenasError(f"{name} must be >= 1, got {value!r}")
        seed = self.search_seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise SpikenasError(f"search_seed must be an integer in 0..2**63-1, got {str(seed)[:40]}")
        for name in ("channels_last", "compile_lif"):
            if not isinstance(getattr(self, name), bool):
                raise SpikenasError(f"{name} must be true or false, got {getattr(self, name)!r}")
        self.stack_limit()
        self.space.check()
        if self.choose not in CHOICES:
            raise SpikenasError(f"choose must be one of {', '.join(CHOICES)}, got {self.choose!r}")
        free = self.space.free_dimensions()
        if self.choose == "rule" and free:
            raise SpikenasError(f"space.{free[0]} lists several options, which only short trainings choose: set "
                                f"choose: trials (or list one option)")
        if self.choose == "trials":
            self.trials.check()
        return self

    def stack_limit(self) -> int:
        """``stack_bytes`` in bytes: how much input the part after a cell may take for several
        candidates at once (0: one candidate at a time)."""
        if self.stack_bytes == 0 or str(self.stack_bytes).strip() == "0":
            return 0
        limit = parse_bytes(self.stack_bytes, "stack_bytes")
        if limit is None:
            raise SpikenasError(f"stack_bytes {self.stack_bytes!r} is not a size; use 0, bytes or units like 8MiB")
        return limit

    def as_dict(self) -> dict[str, Any]:
        """Plain data (the space as a mapping): what identifies a search's result."""
        return asdict(self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
