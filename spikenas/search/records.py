"""The log of scored candidates: the search's memory, its ``search.csv`` and its resume state.

Strategies are deterministic given their seed, so resuming is replaying: a restarted search
runs the same decisions and takes every score it already has from the log instead of
recomputing it. The log is saved atomically (temporary file + rename) every few seconds and
when the search stops, so a killed search loses at most the last few seconds of work.

A saved state carries a seal of its content (:func:`spikenas.base.rundir.seal`: an HMAC under the
user's own key); reading one whose seal, layout or field types do not match (edited by hand,
forged without the key, damaged on disk) is a :class:`DamagedState` error, so a changed score
can never silently change the chosen network.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable

from spikenas.base.errors import SpikenasError
from spikenas.base.files import atomic_write
from spikenas.base.rundir import DamagedState, is_sealed, seal


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


def _checksum(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    return seal({"meta": meta, "records": records})


_TYPES = {"key": str, "stage": str, "hash": str, "genotype": str, "score": float, "bytes": int, "seconds": float,
          "synops": (float, type(None))}


def _record(raw: Any) -> Record:
    """A :class:`Record` from its JSON form, every field present and of its type."""
    if not isinstance(raw, dict) or set(raw) != {f.name for f in fields(Record)}:
        raise DamagedState("a record does not have the fields of a scored candidate")
    for name, kind in _TYPES.items():
        value = raw[name]
        if isinstance(value, int) and not isinstance(value, bool) and kind in (float, (float, type(None))):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise DamagedState(f"a record's {name} is {type(raw[name]).__name__}, not {getattr(kind, '__name__', 'a number')}")
        raw = {**raw, name: value}
    return Record(**raw)


def read_state(path: Path) -> tuple[dict[str, Any], list[Record]]:
    """``(meta, records)`` of the state file at ``path``; :class:`DamagedState` (or ``OSError``)
    unless it is a state this code wrote, unchanged."""
    try:
        data = json.loads(path.read_text())
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise DamagedState(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict) or not isinstance(data.get("records"), list):
        raise DamagedState("not a search state")
    if not is_sealed({"meta": data["meta"], "records": data["records"]}, data.get("checksum")):
        raise DamagedState("its seal does not match its content (edited, or written under another user's key)")
    return data["meta"], [_record(raw) for raw in data["records"]]


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
            meta, records = read_state(state_path)
            self.meta = {**meta, **self.meta}
            for record in records:
                self._append(record)
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
        records = [asdict(r) for r in self.records]
        payload = {"meta": self.meta, "records": records, "checksum": _checksum(self.meta, records)}
        try:
            atomic_write(self.state_path, json.dumps(payload))
        except OSError as exc:  # the previous state stays whole: the search resumes from it
            raise SpikenasError(f"cannot save the search state {self.state_path}: {exc.strerror or exc}; the last saved "
                                "state is intact, so the same command resumes once this is fixed") from None
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
