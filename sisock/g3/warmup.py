"""A reader's warm-up before its data node says it is ready: the first panel costs what the hundredth does.

Measured (issue 23): the g3-reader added itself to the hub while its worker
processes were still importing spt3g and numpy and before any of them had read
the index, so a panel asked right after a restart waited 0.4 to 0.6 s for them
(up to 1.4 s on a loaded machine), and each worker's first panel paid for its
first index queries, its name table and the first calls of the decimation code
(20 to 80 ms more). Each worker, and the reader process itself, now runs
:func:`warm` before the node registers: the schema check, the name table and
the newest times, then a panel's work on every provider (a day and a month
ending at its newest frame, decimated, and its last minutes at full resolution),
which also brings the newest files' frames and summary rows, the edge of every
panel that ends now, into the page cache.
"""
from __future__ import annotations

import time
from typing import Dict, List

from sisock.g3.reader import Field, Reader

#: Seconds before a provider's newest frame that the warm-up's full-resolution read covers.
RECENT = 300.0
#: Spans of the warm-up's decimated reads (a day: 60 s buckets and frames; a month: coarse tiers).
SPANS = (86400.0, 30 * 86400.0)
#: Points of the warm-up's decimated reads (a Grafana panel's width).
POINTS = 1000


def warm(reader: Reader, panels: bool = True) -> float:
    """Bring ``reader`` to the state a served panel leaves it in (``panels`` off: only its tables,
    for a reader whose workers read the panels); returns the seconds it took. An index without
    this sisock's schema yet (a scanner not started) is left alone."""
    began = time.perf_counter()
    known = reader.known()  # the schema check and the name table
    reader.fields(1.0, time.time())  # what sisock-http's catalogue asks when the node appears
    if not panels:
        return time.perf_counter() - began
    newest = reader.index.indexed_until(sorted({f.description for f in known.values()}))
    for description, until in sorted(newest.items()):
        fields = _one_per_block(known, description)
        reader.indexed_until(fields)
        reader.data(fields, until - RECENT, until)
        for span in SPANS:
            reader.data(fields, until - span, until, max_points=POINTS)
    return time.perf_counter() - began


def _one_per_block(known: Dict[str, Field], description: str) -> List[str]:
    """A full name of each block of a provider (a panel reads several blocks of a provider)."""
    blocks: Dict[str, str] = {}
    for name, f in sorted(known.items()):
        if f.description == description and name == f"{description}.{f.key}":
            blocks.setdefault(f.block, name)
    return sorted(blocks.values())
