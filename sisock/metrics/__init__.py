"""Every long-running component's metrics, in the Prometheus text format on a port of its own.

Each component serves prometheus-client's default registry (its own ``sisock_*``
metrics, from the module of this package named after it, plus the client's
process and Python metrics) at ``http://METRICS_HOST:METRICS_PORT/metrics``, from
a thread of its own: a scrape never waits on the reactor, and the reactor never
waits on a scrape. The ports of one host follow :data:`LAYOUT`; data-feed
instances, many per host, each set ``METRICS_PORT`` in their instance env file
(:data:`DATA_FEED_PORTS` and up). Off the host only as sisock-http is: on a
site-private address, or with credentials (:func:`check_startup`).
"""
from __future__ import annotations

import ipaddress
import socket
import sys
import threading
from socketserver import ThreadingMixIn
from typing import Callable, Iterable, Optional
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, Gauge, disable_created_metrics, make_wsgi_app

from sisock import __version__
from sisock.config import Config, ConfigError, is_loopback, is_wildcard
from sisock.http.auth import Authenticator

# a counter's "_created" series (its start time) doubles what a scrape carries and tells nothing
# that process_start_time_seconds does not
disable_created_metrics()

#: Default metrics port of each component on one host (docs/monitoring.md, "Ports").
LAYOUT = {
    "hub": 9781,
    "http": 9782,
    "g3-file-scanner": 9783,
    "g3-reader": 9784,
    "weather": 9785,
    "sensors": 9786,
    "apex-weather": 9787,
    "radiometer": 9788,
}
#: data-feed instances have no default: each sets METRICS_PORT, from this port up (the role counts them).
DATA_FEED_PORTS = 9800

BUILD = Gauge("sisock_build_info", "sisock's version and which component this process is (always 1)",
              ["version", "component"])


def port_for(command: str, config: Config) -> Optional[int]:
    """The port ``command`` serves its metrics on, or None for none (METRICS_PORT=0, or a data-feed without it)."""
    if config.metrics_port is not None:
        return config.metrics_port or None
    return LAYOUT.get(command)


def _site_private(host: str) -> bool:
    """True for one address of a site-private network (RFC 1918, unique local), not a wildcard or a name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private and not address.is_unspecified and not address.is_loopback


def check_startup(config: Config) -> None:
    """Refuse a metrics endpoint open beyond this host: a wildcard or public address without credentials."""
    if bool(config.metrics_user) != bool(config.metrics_password):
        raise ConfigError("METRICS_USER and METRICS_PASSWORD go together: set both (basic auth) or neither")
    if config.metrics_user and ":" in config.metrics_user:
        raise ConfigError(f"METRICS_USER={config.metrics_user!r}: a user name cannot hold ':' (HTTP basic auth)")
    host = config.metrics_host
    if is_loopback(host) or _site_private(host) or config.metrics_password:
        return
    where = "every interface" if is_wildcard(host) else "an address that is not site-private"
    raise ConfigError(f"METRICS_HOST={host!r} is {where} and the metrics endpoint has no credentials: use a "
                      "loopback or site-private address, or set METRICS_USER and METRICS_PASSWORD")


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per scrape would flood the journal
        pass


def application(auth: Authenticator) -> Callable:
    """The WSGI application: ``GET /metrics`` (with the credentials when set), 404 elsewhere."""
    metrics = make_wsgi_app(REGISTRY)

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: the metrics are at /metrics\n"]
        if auth.required and not auth.allows(environ.get("HTTP_AUTHORIZATION", "")):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"),
                                                ("WWW-Authenticate", auth.challenge())])
            return [b"authentication required\n"]
        return metrics(environ, start_response)

    return app


class Endpoint:
    """A listening metrics endpoint, served from a daemon thread until the process ends."""

    def __init__(self, host: str, port: int, auth: Authenticator) -> None:
        server_class = _Server6 if ":" in host else _Server
        self.server = make_server(host, port, application(auth), server_class, _QuietHandler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics", daemon=True)
        self.thread.start()


def serve(command: str, config: Config) -> Optional[Endpoint]:
    """Start ``command``'s metrics endpoint if it has a port; ConfigError for settings that would open
    it beyond the host. A port that cannot be listened on costs one line and the metrics, never the
    component: its data matters more than its figures."""
    check_startup(config)
    port = port_for(command, config)
    if port is None:
        return None
    BUILD.labels(__version__, command).set(1)
    try:
        return Endpoint(config.metrics_host, port, Authenticator.of(config.metrics_user, config.metrics_password))
    except OSError as exc:
        # logging starts later in the component (and drops what came before): one line of our own
        print(f"{command} warn: metrics: cannot listen on {config.metrics_host}:{port} "
              f"({exc.strerror or exc}); running without a metrics endpoint (METRICS_PORT)", file=sys.stderr,
              flush=True)
        return None
