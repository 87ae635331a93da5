"""A least-recently-used cache of tensors bounded by their bytes (the incremental scorer's memo)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable


class TensorLRU:
    """Least-recently-used cache bounded by the bytes of the tensors it holds.

    ``put(key, item, size)`` stores the tuple ``item`` as ``item + (size,)`` (``size`` in bytes)
    and evicts the oldest entries while over ``max_bytes``, always keeping the newest one;
    ``get(key)`` returns the stored tuple (or None) and marks it recently used.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Hashable, tuple] = OrderedDict()

    def get(self, key: Hashable) -> tuple | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: Hashable, item: tuple, size: int) -> None:
        self._items[key] = item + (size,)
        self.bytes += size
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self.bytes -= old[-1]
