"""``networks.csv``: one row per trained network and seed, the raw data of every analysis table.

Columns: ``study`` (the network's roles joined by ``;``: ``random``, ``without:skip``,
``only:conv3x3``, ``cells:2``, ``found``), ``key`` (genotype hash and macro), ``hash`` and
``genotype`` (text form), ``cells``, ``macro``, ``bytes`` (under the run's cost model), one
``score_<name>`` per registered score (at initialisation, on the search's scoring batch), one
``size_<measure>`` per size baseline (:mod:`spikenas.analysis.sizes`), ``val_acc`` and
``test_acc`` (fractions), ``seed``, ``steps``, ``final_loss`` and ``seconds`` (wall time of
training and evaluation). Numbers are written exactly (``repr``), so a resumed analysis
computes the same tables as an uninterrupted one. The file is rewritten atomically after every
trained network, so it is also the resume state of a killed analysis. Scores and sizes cost seconds, training costs
minutes: a resumed analysis whose registered scores changed keeps every trained row and only
measures what its columns lack (:meth:`NetworkTable.incomplete`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from dataclasses import dataclass
from pathlib import Path

from spikenas.analysis.sizes import SIZES
from spikenas.base.errors import SpikenasError
from spikenas.base.files import atomic_write

HEAD = ["study", "key", "hash", "genotype", "cells", "macro", "bytes"]
TAIL = ["val_acc", "test_acc", "seed", "steps", "final_loss", "seconds"]


@dataclass(frozen=True)
class TrainedNetwork:
    """One row of ``networks.csv``."""

    roles: tuple[str, ...]
    key: str
    hash: str
    genotype: str
    cells: int
    macro: str
    bytes: int
    scores: dict[str, float]
    sizes: dict[str, float]
    val_acc: float
    test_acc: float
    seed: int
    steps: int
    final_loss: float
    seconds: float

    def has(self, role: str) -> bool:
        return role in self.roles


def columns(score_names: list[str]) -> list[str]:
    return HEAD + [f"score_{name}" for name in score_names] + [f"size_{name}" for name in SIZES] + TAIL


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


class NetworkTable:
    """The rows of an analysis, keyed by ``(key, seed)``, saved to ``path`` atomically."""

    def __init__(self, path: Path, score_names: list[str]) -> None:
        self.path = path
        self.score_names = list(score_names)
        self.rows: dict[tuple[str, int], TrainedNetwork] = {}

    def load(self) -> int:
        """Read the rows already in ``path`` (a resumed analysis); returns how many. Score and
        size columns may differ from this analysis's (scores registered since): what a row
        lacks is left out of its ``scores``/``sizes`` (see :meth:`incomplete`)."""
        if not self.path.exists():
            return 0
        with self.path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            names = list(reader.fieldnames or [])
            middle = names[len(HEAD):len(names) - len(TAIL)]
            if names[:len(HEAD)] != HEAD or names[len(names) - len(TAIL):] != TAIL or \
                    not all(c.startswith(("score_", "size_")) for c in middle):
                raise SpikenasError(
                    f"{self.path}: its columns {names} are not an analysis's {columns(self.score_names)}; "
                    "move the file away to start afresh"
                )
            for raw in reader:
                try:
                    row = self.parse(raw, middle)
                except (KeyError, TypeError, ValueError):
                    continue  # an unreadable row is trained again
                self.rows[(row.key, row.seed)] = row
        return len(self.rows)

    def parse(self, raw: dict[str, str], measured: list[str]) -> TrainedNetwork:
        scores = {c[len("score_"):]: _number(raw[c]) for c in measured if c.startswith("score_") and raw[c] != ""}
        sizes = {c[len("size_"):]: _number(raw[c]) for c in measured if c.startswith("size_") and raw[c] != ""}
        return TrainedNetwork(
            roles=tuple(raw["study"].split(";")), key=raw["key"], hash=raw["hash"], genotype=raw["genotype"],
            cells=int(raw["cells"]), macro=raw["macro"], bytes=int(raw["bytes"]),
            scores={k: v for k, v in scores.items() if k in self.score_names}, sizes=sizes,
            val_acc=float(raw["val_acc"]), test_acc=float(raw["test_acc"]), seed=int(raw["seed"]),
            steps=int(raw["steps"]), final_loss=_number(raw["final_loss"]), seconds=float(raw["seconds"]),
        )

    def incomplete(self) -> set[str]:
        """Keys of the networks whose rows lack a registered score or a size measure."""
        return {r.key for r in self.rows.values() if set(self.score_names) - set(r.scores) or set(SIZES) - set(r.sizes)}

    def measured(self, key: str, scores: dict[str, float], sizes: dict[str, float]) -> None:
        """Put ``scores`` and ``sizes`` into every row (seed) of network ``key``."""
        for index, row in self.rows.items():
            if row.key == key:
                self.rows[index] = dataclasses.replace(row, scores=dict(scores), sizes=dict(sizes))

    def has(self, key: str, seed: int) -> bool:
        return (key, seed) in self.rows

    def add(self, row: TrainedNetwork) -> None:
        self.rows[(row.key, row.seed)] = row

    def save(self) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns(self.score_names))
        for r in self.rows.values():
            writer.writerow(
                [";".join(r.roles), r.key, r.hash, r.genotype, r.cells, r.macro, r.bytes]
                + [repr(r.scores[name]) for name in self.score_names]
                + [repr(r.sizes[name]) for name in SIZES]
                + [repr(r.val_acc), repr(r.test_acc), r.seed, r.steps, repr(r.final_loss), f"{r.seconds:.3f}"]
            )
        try:
            atomic_write(self.path, buffer.getvalue())
        except OSError as exc:  # the previous networks.csv stays whole: the analysis resumes from it
            raise SpikenasError(f"cannot write {self.path}: {exc.strerror or exc}; the rows saved so far are intact, "
                                "so the same command resumes once this is fixed") from None

    def all(self) -> list[TrainedNetwork]:
        return list(self.rows.values())


def per_network(rows: list[TrainedNetwork]) -> list[list[TrainedNetwork]]:
    """Rows grouped by network (its seeds together), in first-seen order."""
    groups: dict[str, list[TrainedNetwork]] = {}
    for r in rows:
        groups.setdefault(r.key, []).append(r)
    return list(groups.values())
