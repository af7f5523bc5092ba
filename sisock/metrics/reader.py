"""The g3-reader's metrics: its worker processes and their decoded-frame caches.

The workers are other processes (:mod:`sisock.g3.workers`). Rather than
prometheus-client's multiprocess mode (a folder of memory-mapped files the
sandboxed unit must be able to write and that must be cleaned of dead workers'
files), each answer brings back its worker's cache figures, a few numbers, and
the reader sums the last figures of every worker it has had: a counter of a
worker that died keeps its last value, so the sums never go back.
"""
from __future__ import annotations

import os
import threading
from typing import Dict, Iterator, NamedTuple, Optional, Set

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sisock.lru import SizedLRU

WORKERS = Gauge("sisock_g3_reader_worker_processes", "Worker processes answering get_data (0: the reader itself)")
RESTARTS = Counter("sisock_g3_reader_worker_restarts", "Times the worker processes were started anew after one died")


class CacheFigures(NamedTuple):
    """One process's decoded-frame cache: its pid, lookups that hit and missed, and bytes held."""

    pid: int
    hits: int
    misses: int
    bytes: int


def figures_of(cache: SizedLRU) -> CacheFigures:
    """This process's figures of ``cache``."""
    return CacheFigures(os.getpid(), cache.hits, cache.misses, cache.size)


class _Caches(Collector):
    """Sums the last figures of every worker, and of the reader's own cache when it has one."""

    def __init__(self) -> None:
        self.own: Optional[SizedLRU] = None
        self.workers: Dict[int, CacheFigures] = {}
        self.gone: Set[int] = set()  # workers of pools that broke: their counts stay, their bytes do not
        self.lock = threading.Lock()

    def collect(self) -> Iterator:
        with self.lock:
            every = list(self.workers.values())
            gone = set(self.gone)
        if self.own is not None:
            every.append(figures_of(self.own))
        hits = CounterMetricFamily("sisock_g3_reader_frame_cache_hits", "Frame lookups found in a decoded-frame "
                                   "cache (a frame of a file changed since counts here too, and is read again)")
        hits.add_metric([], sum(f.hits for f in every))
        misses = CounterMetricFamily("sisock_g3_reader_frame_cache_misses", "Frame lookups that had to read and "
                                     "decode the frame")
        misses.add_metric([], sum(f.misses for f in every))
        held = GaugeMetricFamily("sisock_g3_reader_frame_cache_bytes", "Bytes of decoded frames the caches hold "
                                 "(the last figure of each live worker)")
        held.add_metric([], sum(f.bytes for f in every if f.pid not in gone))
        yield from (hits, misses, held)


CACHES = _Caches()
REGISTRY.register(CACHES)


def watch(processes: int, own: Optional[SizedLRU]) -> None:
    """The reader's layout: ``processes`` workers (1: none), or its own ``cache``."""
    WORKERS.set(processes if processes > 1 else 0)
    CACHES.own = own


def worker_figures(figures: CacheFigures) -> None:
    """A worker's figures that came back with an answer."""
    with CACHES.lock:
        CACHES.workers[figures.pid] = figures


def restarted() -> None:
    """The workers died and new ones start: count it, and drop the old ones' bytes."""
    RESTARTS.inc()
    with CACHES.lock:
        CACHES.gone.update(CACHES.workers)
