"""The hub's metrics: the data nodes it lists, and what happened to them."""
from __future__ import annotations

from typing import Callable, Sized

from prometheus_client import Counter, Gauge

NODES = Gauge("sisock_hub_data_nodes", "Data nodes the hub lists now")
EVENTS = Counter("sisock_hub_data_node_events", "Data nodes added, subtracted (or dropped when their session left) "
                 "and refused (a name held by another live server)", ["event"])
for event in ("added", "subtracted", "refused"):
    EVENTS.labels(event)


def watch(nodes: Callable[[], Sized]) -> None:
    """Count the hub's nodes at each scrape."""
    NODES.set_function(lambda: len(nodes()))
