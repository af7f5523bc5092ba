"""Python's garbage collector kept off what a component made while starting.

A full collection walks every object that can hold references, and most of a component's are made
once at start-up (modules, classes, functions, the frameworks' objects) and live for good. In
sisock-http that was about 90 000 objects: 25 to 35 ms with every thread held, every few requests
once answers build thousands of small lists (a warm InfluxQL panel then took 55 to 65 ms instead of
30). Once ready, a component moves them to the collector's permanent generation (``gc.freeze``), so
full collections walk only what was made since.
"""
from __future__ import annotations

import gc

_frozen = False


def freeze_start_up() -> None:
    """Leave what the process holds now out of later collections; once per process (later calls do
    nothing: objects of requests in flight must stay collectable)."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()  # start-up's garbage goes now, not frozen with the rest
    gc.freeze()
