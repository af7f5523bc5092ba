"""The node/field catalogue behind ``/search``, ``/metrics`` and ``/variable``.

Filled on every (re)join from the hub's node list and each node's
``get_fields`` over the last ``HTTP_FIELDS_WINDOW`` seconds; kept current by
the hub's ``data_node_added``/``data_node_subtracted`` topics, a periodic
refresh, and a refresh on demand when a search finds it stale. Its WAMP work
runs in the reactor thread; request threads only read snapshots.

A node that was listed and is listed no more is remembered (until it comes
back or sisock-http restarts), so that a panel asking for it shows the
operator that it stopped instead of an empty series.
"""
from __future__ import annotations

import threading
import time
from typing import Dict, List, Optional, Tuple

from twisted.internet import defer, reactor, task

from sisock import log, wamp
from sisock.http.errors import describe
from sisock.http.join import listing
from sisock.metrics import http as http_metrics
from sisock.metrics.http import observe_call

#: Repeated warnings (the hub away, a node that does not answer) at most once a minute per kind.
_throttle = log.Throttle()

#: Seconds between full refreshes while joined.
REFRESH_EVERY = 60.0
#: A search refreshes the catalogue first when it is older than this (seconds).
STALE_AFTER = 10.0
#: Seconds a (re)join waits for the hub to list the nodes before saying it is ready all the same, and
#: between two attempts.
HUB_WAIT, HUB_RETRY = 10.0, 0.5


class Catalogue:
    """Every live data node and its fields; see the module docstring."""

    def __init__(self, window: float, timeout: float) -> None:
        self.window = window
        self.timeout = timeout
        self.log = log.logger()
        self._lock = threading.Lock()
        self._nodes: Dict[str, str] = {}
        self._fields: Dict[str, Dict[str, dict]] = {}
        self._departed: Dict[str, float] = {}
        self._session = None
        self._refreshed = 0.0
        self._loaded = False  # a refresh has ended since the last join
        self._nudged = False
        self._loop: Optional[task.LoopingCall] = None

    # -- read from any thread ----------------------------------------------------
    def nodes(self) -> Dict[str, str]:
        """Node name -> description."""
        with self._lock:
            return dict(self._nodes)

    def entries(self) -> List[Tuple[str, dict]]:
        """Sorted ``("node::field", field info)`` pairs, and each joined archive name once
        (:func:`sisock.http.join.listing`)."""
        with self._lock:
            pairs = [(f"{node}::{field}", info) for node, fields in self._fields.items()
                     if node in self._nodes for field, info in fields.items()]
        return listing(pairs)

    def fields(self) -> List[Tuple[str, str, dict]]:
        """``(node, field, field info)`` of every field of every listed node, aliases included."""
        with self._lock:
            return [(node, field, info) for node, fields in self._fields.items() if node in self._nodes
                    for field, info in fields.items()]

    def serving(self, field: str) -> List[str]:
        """The live nodes whose fields include ``field``, by name."""
        with self._lock:
            return sorted(node for node, fields in self._fields.items() if node in self._nodes and field in fields)

    def names(self, contains: str = "") -> List[str]:
        """Every ``node::field`` containing ``contains`` (case-insensitive)."""
        needle = contains.lower()
        return [name for name, _ in self.entries() if needle in name.lower()]

    def absence(self, node: str) -> Optional[str]:
        """Why a node that sisock-http has known does not answer, or None for a node never listed."""
        with self._lock:
            if node in self._nodes:
                return "listed by the hub, but its procedures are gone (stopped or restarting?)"
            gone = self._departed.get(node)
        if gone is None:
            return None
        return f"not running since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(gone))} (it was listed before)"

    def nudge(self) -> None:
        """From any thread: start a refresh in the reactor if the list is stale, without waiting
        (a query that joins names learns of a feed that started publishing, at no latency)."""
        if self.stale and not self._nudged:
            self._nudged = True
            reactor.callFromThread(lambda: self.refresh().addBoth(self._nudge_done))

    def _nudge_done(self, _result) -> None:
        self._nudged = False

    def age(self) -> float:
        """Seconds since the last full refresh."""
        return time.monotonic() - self._refreshed

    @property
    def loaded(self) -> bool:
        """True once the node list and their fields were read after the last join (GET / and READY wait for it)."""
        return self._loaded

    @property
    def stale(self) -> bool:
        """True when the last full refresh is older than STALE_AFTER."""
        return time.monotonic() - self._refreshed > STALE_AFTER

    # -- reactor side ------------------------------------------------------------
    @defer.inlineCallbacks
    def joined(self, session, details=None):
        """ThreadedSession's on_join: follow the hub's topics, load everything (fires once loaded, so that
        sisock-http says it is ready only then), refresh periodically."""
        self._session = session
        yield session.subscribe(self._added, wamp.TOPIC_ADDED)
        yield session.subscribe(self._subtracted, wamp.TOPIC_SUBTRACTED)
        # the hub rejoins a restarted router on its own back-off: until it answers, the list held is
        # from before (nodes not registered again yet), so it is asked again for a while
        deadline = time.monotonic() + HUB_WAIT
        while not (yield self.refresh()) and time.monotonic() < deadline and session.is_attached():
            yield task.deferLater(reactor, HUB_RETRY, lambda: None)
        self._loaded = True
        if self._loop is None or not self._loop.running:
            self._loop = task.LoopingCall(self.refresh)
            self._loop.start(REFRESH_EVERY, now=False).addErrback(lambda f: None)

    def left(self, session, details=None) -> None:
        """ThreadedSession's on_leave: stop refreshing until the next join."""
        self._session = None
        self._loaded = False
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    @defer.inlineCallbacks
    def refresh(self):
        """Reload the node list and every node's fields (must run in the reactor); fires True once the
        hub listed the nodes, False when it could not be asked."""
        session = self._session
        if session is None or not session.is_attached():
            return False
        try:
            listed = yield observe_call(session.call(wamp.HUB_LIST).addTimeout(self.timeout, reactor), wamp.HUB_LIST)
        except Exception as exc:
            _throttle.warn(self.log, "hub", "cannot list data nodes from the hub: {error}", error=describe(exc))
            return False
        nodes = {n["name"]: n.get("description", "") for n in listed if isinstance(n, dict) and "name" in n}
        with self._lock:
            self._depart(set(self._nodes) - set(nodes))
            for name in nodes:
                self._departed.pop(name, None)
            self._nodes = nodes
            self._fields = {name: fields for name, fields in self._fields.items() if name in nodes}
        yield defer.DeferredList([self._load_fields(session, name) for name in nodes], consumeErrors=True)
        self._refreshed = time.monotonic()
        http_metrics.CATALOGUE_REFRESHES.inc()
        return True

    @defer.inlineCallbacks
    def _load_fields(self, session, node: str):
        try:
            start = -self.window if self.window else 1  # 1 = since the epoch: every field ever
            uri = wamp.get_fields_uri(node)
            answer = yield observe_call(session.call(uri, start, 0).addTimeout(self.timeout, reactor), uri)
            fields = answer[0] if isinstance(answer, (list, tuple)) and answer and isinstance(answer[0], dict) else {}
        except Exception as exc:
            _throttle.warn(self.log, f"fields {node}", "cannot get the fields of data node {node}: {error}",
                           node=node, error=describe(exc))
            return
        with self._lock:
            if node in self._nodes:
                self._fields[node] = {str(k): v if isinstance(v, dict) else {} for k, v in fields.items()}

    def _added(self, info, *args, **kwargs):
        if not isinstance(info, dict) or not isinstance(info.get("name"), str) or self._session is None:
            return None
        with self._lock:
            self._nodes[info["name"]] = str(info.get("description", ""))
            self._departed.pop(info["name"], None)
        return self._load_fields(self._session, info["name"])

    def _subtracted(self, info, *args, **kwargs):
        if isinstance(info, dict) and isinstance(info.get("name"), str):
            with self._lock:
                self._depart({info["name"]} & set(self._nodes))
                self._nodes.pop(info["name"], None)
                self._fields.pop(info["name"], None)

    def _depart(self, names) -> None:
        """Remember when these listed nodes went (call with the lock held)."""
        now = time.time()
        self._departed.update({name: now for name in names})

