"""A thread-safe least-recently-used cache bounded by the bytes its entries say they hold."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, Hashable, Optional, Tuple, TypeVar

Value = TypeVar("Value")


class SizedLRU(Generic[Value]):
    """Values by key, the least recently used dropped once their sizes pass ``capacity`` bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        #: lookups that found a value, and those that did not (the metrics of a reader's cache)
        self.hits = self.misses = 0
        self._entries: "OrderedDict[Hashable, Tuple[int, Value]]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Optional[Value]:
        """The value kept under ``key``, or None."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(key)
            return hit[1]

    def drop(self, key: Hashable) -> None:
        """Forget the value kept under ``key``, if any."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= old[0]

    def put(self, key: Hashable, nbytes: int, value: Value) -> None:
        """Keep ``value`` as ``nbytes`` bytes (not at all if it alone passes the capacity)."""
        if nbytes > self.capacity:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= old[0]
            self._entries[key] = (nbytes, value)
            self.size += nbytes
            while self.size > self.capacity:
                _, (dropped, _) = self._entries.popitem(last=False)
                self.size -= dropped
