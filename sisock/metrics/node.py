"""Every data node server's metrics: its requests by procedure and outcome, their latency, and the
requests waiting for one of its worker threads."""
from __future__ import annotations

import time

from autobahn.wamp.exception import ApplicationError
from prometheus_client import Counter, Gauge, Histogram
from twisted.internet import defer
from twisted.python.threadpool import ThreadPool

from sisock.metrics.http import BUCKETS

REQUESTS = Counter("sisock_data_node_requests", "Requests a data node answered, by node, procedure and outcome "
                   "(ok; refused: a bad request, busy or too large; failed)", ["node", "procedure", "outcome"])
LATENCY = Histogram("sisock_data_node_request_duration_seconds", "Seconds from a request's arrival to its answer",
                    ["node", "procedure"], buckets=BUCKETS)
BUSY = Counter("sisock_data_node_busy_refusals", "Requests refused at once because too many waited already",
               ["node"])
QUEUED = Gauge("sisock_data_node_queued_requests", "Requests waiting for a worker thread of the node", ["node"])


def watch_pool(node: str, pool: ThreadPool) -> None:
    """Report the node's waiting requests at each scrape."""
    QUEUED.labels(node).set_function(pool.q.qsize)


def busy(node: str) -> None:
    """A request refused before any work: too many waited already."""
    BUSY.labels(node).inc()


def observe(d: defer.Deferred, node: str, procedure: str) -> defer.Deferred:
    """Count a request when its answer is ready (in the reactor)."""
    began = time.perf_counter()

    def done(result):
        error = getattr(result, "value", None)
        outcome = "ok" if error is None else "refused" if isinstance(error, ApplicationError) and \
            error.error.endswith((".bad_request", ".busy", ".too_large")) else "failed"
        REQUESTS.labels(node, procedure, outcome).inc()
        LATENCY.labels(node, procedure).observe(time.perf_counter() - began)
        return result

    return d.addBoth(done)
