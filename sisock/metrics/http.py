"""sisock-http's metrics: requests by endpoint and status, their latency and how many are in flight,
and its WAMP calls to the data nodes by node, procedure and outcome, with their latency."""
from __future__ import annotations

import time
from typing import Callable, Sized

from autobahn.wamp.exception import ApplicationError
from prometheus_client import Counter, Gauge, Histogram
from twisted.internet import defer

from sisock import wamp

#: Paths counted under their own name; any other is ``other`` (labels stay bounded, whatever clients send).
ENDPOINTS = frozenset({"/", "/search", "/query", "/metrics", "/metric-payload-options", "/variable", "/tag-keys",
                       "/tag-values", "/annotations", "/influxdb/query", "/influxdb/ping"})
#: Latency buckets (s): a warm panel takes milliseconds, a cold year a second or two, HTTP_TIMEOUT 30.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter("sisock_http_requests", "HTTP requests answered, by endpoint and status", ["endpoint", "status"])
LATENCY = Histogram("sisock_http_request_duration_seconds", "Seconds from a request's start to the end of its "
                    "answer (a streamed answer: its last byte)", ["endpoint"], buckets=BUCKETS)
IN_FLIGHT = Gauge("sisock_http_requests_in_flight", "HTTP requests being answered now")
CALLS = Counter("sisock_http_wamp_calls", "WAMP calls to data nodes, by node, procedure and outcome (ok, error, "
                "timeout, no_such_node)", ["node", "procedure", "outcome"])
CALL_LATENCY = Histogram("sisock_http_wamp_call_duration_seconds", "Seconds a data node took to answer a call",
                         ["node", "procedure"], buckets=BUCKETS)

CATALOGUE_REFRESHES = Counter("sisock_http_catalogue_refreshes", "Full refreshes of the list of data nodes and "
                              "their fields (every 60 s, and before a listing when it is over 10 s old)")
CATALOGUE_AGE = Gauge("sisock_http_catalogue_age_seconds", "Seconds since the list of fields was last refreshed")
CATALOGUE_SIZE = Gauge("sisock_http_catalogue_entries", "Names the list of fields holds, by kind (nodes, fields)",
                       ["kind"])
KEPT_BYTES = Gauge("sisock_http_kept_results_bytes", "Bytes of finalized panel slots kept (at most HTTP_CACHE_MB)")
KEPT_FIELDS = Counter("sisock_http_kept_results_fields", "Fields of /query answers by how they were answered: "
                      "kept (from kept slots, the rest asked), revised (kept slots no longer current: asked "
                      "again), asked (nothing kept)", ["way"])


KEPT_BUCKETS_BYTES = Gauge("sisock_http_kept_buckets_bytes", "Bytes of final InfluxQL buckets kept (at most "
                           "HTTP_CACHE_MB)")
INFLUX_BUCKETS = Counter("sisock_http_influxql_buckets", "Buckets of numeric fields InfluxQL statements took from "
                         "data nodes, by where they came from: kept (sisock-http's kept runs), asked (the node)",
                         ["way"])


def watch_kept_buckets(size: Callable[[], float]) -> None:
    """Report the bytes of kept InfluxQL buckets at each scrape."""
    KEPT_BUCKETS_BYTES.set_function(size)


def influx_buckets(kept: int, total: int) -> None:
    """A request's buckets: ``kept`` from kept runs, the rest of ``total`` asked."""
    for way, n in (("kept", kept), ("asked", total - kept)):
        if n:
            INFLUX_BUCKETS.labels(way).inc(n)


def watch_kept(size: Callable[[], float]) -> None:
    """Report the bytes of kept results at each scrape."""
    KEPT_BYTES.set_function(size)


def kept(hits: int, revised: int, fields: int) -> None:
    """A query's fields: ``hits`` answered from kept slots, ``revised`` asked again, the rest asked."""
    for way, n in (("kept", hits), ("revised", revised), ("asked", fields - hits - revised)):
        if n:
            KEPT_FIELDS.labels(way).inc(n)


def watch_catalogue(nodes: Callable[[], Sized], entries: Callable[[], Sized], age: Callable[[], float]) -> None:
    """Report the catalogue's size and age at each scrape."""
    CATALOGUE_SIZE.labels("nodes").set_function(lambda: len(nodes()))
    CATALOGUE_SIZE.labels("fields").set_function(lambda: len(entries()))
    CATALOGUE_AGE.set_function(age)


def endpoint_of(path: str) -> str:
    """The ``endpoint`` label of a request path."""
    return path if path in ENDPOINTS else "other"


def started() -> None:
    """A request begins."""
    IN_FLIGHT.inc()


def finished(path: str, status: int, seconds: float) -> None:
    """A request that :func:`started` has been answered."""
    IN_FLIGHT.dec()
    endpoint = endpoint_of(path)
    REQUESTS.labels(endpoint, str(status)).inc()
    LATENCY.labels(endpoint).observe(seconds)


def _outcome(result) -> str:
    if not isinstance(result, Exception) and not hasattr(result, "value"):
        return "ok"
    error = getattr(result, "value", result)
    if isinstance(error, ApplicationError):
        return "no_such_node" if error.error == "wamp.error.no_such_procedure" else "error"
    if isinstance(error, (defer.TimeoutError, defer.CancelledError)):
        return "timeout"
    return "error"


def observe_call(d: defer.Deferred, uri: str) -> defer.Deferred:
    """Count a WAMP call to ``org.simonsobservatory.consumer.<node>.<procedure>`` (or the hub's
    ``consumer.<procedure>``) when it ends (in the reactor)."""
    node, _, procedure = uri[len(wamp.BASE_URI) + len(".consumer."):].rpartition(".")
    node = node or "hub"
    began = time.perf_counter()

    def done(result):
        CALLS.labels(node, procedure, _outcome(result)).inc()
        CALL_LATENCY.labels(node, procedure).observe(time.perf_counter() - began)
        return result

    return d.addBoth(done)
