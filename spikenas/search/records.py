"""The log of scored candidates: the search's memory, its ``search.csv`` and its resume state.

Strategies are deterministic given their seed, so resuming is replaying: a restarted search
runs the same decisions and takes every score it already has from the log instead of
recomputing it. The log is saved atomically (temporary file + rename) every few seconds and
when the search stops, so a killed search loses at most the last few seconds of work.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from spikenas.files import atomic_write


@dataclass(frozen=True)
class Record:
    """One scored candidate. ``key`` identifies it within the search (stage + genotype);
    ``synops`` its SynOps per inference when they were measured (a search with a SynOps limit
    measures them for whole networks), else None."""

    key: str
    stage: str
    hash: str
    genotype: str
    score: float
    bytes: int
    seconds: float
    synops: float | None = None


class RecordLog:
    """Ordered records with look-up by key, persisted to ``state_path`` (JSON) if given."""

    def __init__(self, state_path: Path | None = None, meta: dict[str, Any] | None = None, save_every: float = 5.0) -> None:
        self.state_path = state_path
        self.meta = dict(meta or {})
        self.save_every = save_every
        self.records: list[Record] = []
        self._by_key: dict[str, Record] = {}
        self._last_save = time.monotonic()
        self.resumed = 0
        if state_path is not None and state_path.exists():
            data = json.loads(state_path.read_text())
            self.meta = {**data.get("meta", {}), **self.meta}
            for raw in data["records"]:
                self._append(Record(**raw))
            self.resumed = len(self.records)

    def _append(self, record: Record) -> None:
        self.records.append(record)
        self._by_key[record.key] = record

    def get(self, key: str) -> Record | None:
        return self._by_key.get(key)

    def add(self, records: Iterable[Record], writer: bool = True) -> None:
        """Append new records; ``writer`` (rank 0) saves the state when it is due."""
        for record in records:
            if record.key not in self._by_key:
                self._append(record)
        if writer and self.state_path is not None and time.monotonic() - self._last_save >= self.save_every:
            self.save()

    def save(self) -> None:
        if self.state_path is None:
            return
        payload = {"meta": self.meta, "records": [asdict(r) for r in self.records]}
        atomic_write(self.state_path, json.dumps(payload))
        self._last_save = time.monotonic()

    def write_csv(self, path: Path) -> None:
        """``search.csv``: stage, hash, genotype, score, bytes, SynOps (empty when not
        measured), seconds per candidate."""
        rows = [["stage", "hash", "genotype", "score", "bytes", "synops", "seconds"]]
        rows += [[r.stage, r.hash, r.genotype, repr(r.score), r.bytes, "" if r.synops is None else f"{r.synops:.1f}",
                  f"{r.seconds:.6f}"] for r in self.records]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        atomic_write(path, buffer.getvalue())
