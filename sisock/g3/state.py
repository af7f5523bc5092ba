"""The archive's state as health figures: each provider's newest indexed time and the bad files,
read again only when the index has changed (its generation), so asking every few seconds is free."""
from __future__ import annotations

import threading
from typing import Dict, Tuple

from sisock.g3.index import Index


class ArchiveState:
    """``figures()`` of one index; thread-safe."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._generation = -1
        self._figures: Tuple[Dict[str, float], int] = ({}, 0)
        self._lock = threading.Lock()

    def figures(self) -> Tuple[Dict[str, float], int]:
        """``({provider description: newest indexed time}, bad files)`` (blocking: a thread, not the reactor)."""
        with self._lock:
            generation = self.index.generation()
            if generation != self._generation:
                self._figures = (self.index.newest_per_provider(), self.index.bad_files())
                self._generation = generation
            return self._figures
