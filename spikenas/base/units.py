"""Sizes and counts as settings write them: ``500KB``, ``2MiB`` (bytes), ``2e6``, ``2M`` (counts).

Both parsers read a number with an optional unit through one helper (:func:`_scaled`), so a
size and a count are spelled alike: spaces and underscores ignored, units in any case, and a
value that is not a positive, finite amount, or that is beyond any network, a one-line
:class:`~spikenas.base.errors.SpikenasError` naming the setting.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from spikenas.base.errors import SpikenasError

BYTE_UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}
COUNT_UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}

MAX_BYTES = 1 << 50
"""The largest size a setting may name (1 PiB): anything larger is a typo, and overflows arithmetic."""

MAX_COUNT = 1e18
"""The largest count (SynOps per inference) a setting may name: far above any network, and below
float overflow in sums."""


def _scaled(text: str, units: Mapping[str, float]) -> float:
    """``text`` (a number, then optionally one of ``units``, any case) as a number; -1.0 when it
    is not one (callers reject anything not positive and finite)."""
    text = text.strip().replace(" ", "").replace("_", "").upper()
    number = text.rstrip("".join(set("".join(units))))
    try:
        return float(number) * units[text[len(number):]]
    except (ValueError, KeyError, OverflowError):
        return -1.0


def _short(value: object, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters (a setting may be any long text)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def parse_bytes(value: int | float | str | None, name: str = "budget") -> int | None:
    """``500KB`` -> 500000, ``2MiB`` -> 2097152, ``1234`` -> 1234; None (``none``, ``null``,
    empty) stays None (no limit). Anything else that is not a positive, finite size (``inf``,
    ``1e999``, ``-1``, ``nan``) is a one-line error against ``name``, the setting."""
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise SpikenasError(f"{name} {value!r} is not a size; use bytes or units like 500KB, 2MiB")
    if isinstance(value, (int, float)):
        if not (isinstance(value, int) or math.isfinite(value)) or value <= 0:
            raise SpikenasError(f"{name} must be a positive, finite number of bytes, got {value}")
        amount = value
    else:
        if str(value).strip().replace(" ", "").replace("_", "").lower() in ("", "none", "null"):
            return None
        amount = _scaled(str(value), BYTE_UNITS)
        if not math.isfinite(amount) or amount <= 0:
            raise SpikenasError(f"{name} {_short(value)} is not a size; use bytes or units like 500KB, 2MiB")
    if amount > MAX_BYTES:
        raise SpikenasError(f"{name} {_short(value)} is more than {format_bytes(MAX_BYTES)}: no network is that large (a typo?)")
    return int(amount)


def parse_count(value: Any, what: str) -> float:
    """A positive, finite count: ``2000000``, ``2e6``, ``"2M"``, ``"1.5G"`` (SI suffixes)."""
    if isinstance(value, bool):
        raise SpikenasError(f"{what} must be a positive number (e.g. 2e6 or 2M), got {value!r}")
    if isinstance(value, (int, float)):
        try:
            amount = float(value)
        except OverflowError:
            amount = -1.0
    else:
        amount = _scaled(str(value), COUNT_UNITS)
    if not math.isfinite(amount) or amount <= 0:
        raise SpikenasError(f"{what} must be a positive, finite number (e.g. 2e6 or 2M), got {_short(value)}")
    if amount > MAX_COUNT:
        raise SpikenasError(f"{what} {_short(value)} is more than {MAX_COUNT:.0e}: no network does that many (a typo?)")
    return amount


def format_bytes(n: int) -> str:
    """1536 -> '1.50 KiB'."""
    for unit, size in (("PiB", 1024**5), ("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"
