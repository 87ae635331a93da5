"""Splitting candidate evaluations across processes (DDP ranks) and gathering the results.

With a single process :meth:`Workers.map` is a plain loop. Under a Lightning DDP strategy
every rank runs the same deterministic search; each candidate list is split round-robin,
each rank scores its share, and ``all_gather_object`` gives every rank all scores in order,
so every rank takes the same decisions and ends with the same genotype.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

import torch.distributed as dist

from spikenas.base.errors import SpikenasError

T = TypeVar("T")
R = TypeVar("R")


class Workers:
    def __init__(self, rank: int = 0, world: int = 1) -> None:
        self.rank = rank
        self.world = world

    @classmethod
    def current(cls) -> "Workers":
        """The ranks of the initialised process group (one process if none)."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes files."""
        return self.rank == 0

    def map(self, items: Sequence[T], fn: Callable[[T], R]) -> list[R]:
        """``[fn(item) for item in items]``, the work split across ranks."""
        if self.world == 1:
            return [fn(item) for item in items]
        return self._gathered({i: fn(items[i]) for i in range(self.rank, len(items), self.world)}, len(items))

    def map_many(self, items: Sequence[T], fn: Callable[[list[T]], list[R]]) -> list[R]:
        """``fn(list(items))``, each rank calling ``fn`` once on its round-robin share."""
        if self.world == 1:
            return fn(list(items)) if items else []
        indices = list(range(self.rank, len(items), self.world))
        mine = dict(zip(indices, fn([items[i] for i in indices]) if indices else []))
        return self._gathered(mine, len(items))

    def _gathered(self, mine: dict[int, R], count: int) -> list[R]:
        """Every rank's ``{index: result}`` merged, in index order."""
        gathered: list[dict[int, R]] = [{} for _ in range(self.world)]
        dist.all_gather_object(gathered, mine)
        merged: dict[int, R] = {}
        for part in gathered:
            merged.update(part)
        return [merged[i] for i in range(count)]

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` on every rank."""
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def launch(trainer: Any, command: str, run: Callable[..., R], *args: Any) -> R:
    """``run(*args)`` on every process of the trainer's strategy (``ddp`` starts them; one
    process otherwise); the process group is torn down afterwards, so that a later ``fit`` with
    the same trainer starts its own. A strategy that spawns its processes (``ddp_spawn``,
    ``ddp_fork``, ...) is refused first: its launcher hands back only what ``fit`` returns."""
    launcher = trainer.strategy.launcher
    if launcher is not None and type(launcher).__module__.endswith("launchers.multiprocessing"):
        raise SpikenasError(f"{command} does not run under a spawning strategy (ddp_spawn, ddp_fork, ...); "
                            "use --trainer.strategy ddp")
    try:
        if launcher is not None:
            return launcher.launch(run, *args, trainer=trainer)
        return run(*args)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
