"""``sisock http``: serve Grafana's SimpleJSON and JSON datasources on ``http://HTTP_HOST:PORT``
(``https`` with ``HTTP_TLS_CERT``; credentials and the start-up refusals in :mod:`sisock.http.auth`).

CherryPy answers in its own threads, through :class:`sisock.http.guard.GuardedServer`
(request deadlines, a bounded share of slow clients); one reconnecting WAMP
session, as user ``sisock-http`` (the router's read-only ``consumer`` role),
lives in the reactor thread (:class:`sisock.wamp_thread.ThreadedSession`).
SIGTERM or Ctrl-C stops the HTTP server, then leaves the router.
"""
from __future__ import annotations

import signal
import socket

import cherrypy

from twisted.internet import defer, reactor

from sisock import collector, log, notify
from sisock.config import Config
from sisock.http.app import APP_CONFIG, Datasource
from sisock.http.auth import check_startup
from sisock.http.catalogue import Catalogue
from sisock.http.guard import MAX_BODY, GuardedServer
from sisock.http.influx import INFLUX_CONFIG, InfluxApi
from sisock.metrics import http as http_metrics
from sisock.router.crossbar_config import CONSUMER_USER
from sisock.wamp_thread import ThreadedSession

#: CherryPy worker threads: concurrent requests being answered (at most half of them reading slow requests).
THREADS = 32
#: Connections the kernel holds for sisock-http before a worker takes them.
LISTEN_BACKLOG = 128


def _forward_cherrypy_log(message: str, level: int = 20, traceback: bool = False) -> None:
    """CherryPy's own warnings and errors (a port already in use, ...) as our log lines."""
    if level >= 30:
        log.logger().warn("cherrypy: {text}", text=message)


def _cannot_listen(host: str, port: int) -> str:
    """Why ``host:port`` cannot be listened on, or "" (CherryPy itself would exit with a traceback)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def main(args, config: Config) -> int:
    """Run sisock-http until SIGTERM; return the exit code."""
    check_startup(config)
    log.start("http", config.loglevel)
    logger = log.logger()
    problem = _cannot_listen(config.http_host, config.port)
    if problem:
        logger.critical("cannot listen on {host}:{port}: {problem}", host=config.http_host, port=config.port,
                        problem=problem)
        return 1
    catalogue = Catalogue(config.http_fields_window, config.http_timeout)
    http_metrics.watch_catalogue(catalogue.nodes, catalogue.entries, catalogue.age)
    failed = []

    def give_up(reason: str) -> None:
        """The router refused us for good (a wrong secret): exit so that systemd sees it."""
        logger.critical("stopping: {reason}", reason=reason)
        failed.append(reason)
        if cherrypy.engine.state == cherrypy.engine.states.STARTED:
            cherrypy.engine.exit()

    scheme = "https" if config.http_tls_cert else "http"
    url = f"{scheme}://{config.http_host}:{config.port}"
    listening: list = []  # True once CherryPy listens

    def tell_systemd(*_) -> None:
        """READY once listening, joined and the node list loaded (in the reactor thread); else say what is missing."""
        if listening and session.connected and catalogue.loaded:
            notify.ready(f"joined the router; serving Grafana on {url}; {len(catalogue.nodes())} data nodes")
        elif listening:
            notify.status(f"serving {url}; router away: reconnecting (answers 503)")

    def joined(session, details):
        return defer.maybeDeferred(catalogue.joined, session, details).addCallback(tell_systemd)

    def left(session, details):
        catalogue.left(session, details)
        tell_systemd()

    session = ThreadedSession(config.with_values(wamp_user=CONSUMER_USER), on_join=joined, on_leave=left,
                              on_fatal=give_up).start()
    cherrypy.config.update({
        "environment": "production",
        "server.socket_host": config.http_host,
        "server.socket_port": config.port,
        "server.thread_pool": THREADS,
        # CherryPy's default backlog of 5 overflows when a dashboard's panels connect at once:
        # the kernel drops the excess SYNs, and the client retries only after a second
        "server.socket_queue_size": LISTEN_BACKLOG,
        "server.max_request_body_size": MAX_BODY,
        "log.screen": False,
        "log.access_file": "",
        "log.error_file": "",
        "engine.autoreload.on": False,
        "checker.on": False,
    })
    if config.http_tls_cert:
        cherrypy.config.update({"server.ssl_module": "builtin", "server.ssl_certificate": str(config.http_tls_cert),
                                "server.ssl_private_key": str(config.http_tls_key)})
    cherrypy.server.httpserver = GuardedServer(cherrypy.server, config.http_header_timeout, config.http_body_timeout)
    cherrypy.tree.mount(Datasource(config, session, catalogue), "/", APP_CONFIG)
    cherrypy.tree.mount(InfluxApi(config, session, catalogue), "/influxdb", INFLUX_CONFIG)
    cherrypy.engine.subscribe("log", _forward_cherrypy_log)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: cherrypy.engine.exit())
    cherrypy.engine.start()
    if failed:  # refused while the engine was still starting
        cherrypy.engine.exit()
        session.stop()
        return 1
    listening.append(True)
    collector.freeze_start_up()
    reactor.callFromThread(notify.start_watchdog)
    reactor.callFromThread(tell_systemd)
    logger.info("serving Grafana datasources on {url}{auth}", url=url,
                auth=" (credentials required)" if config.http_password or config.http_token else "")
    cherrypy.engine.block()
    session.stop()
    logger.info("stopped")
    return 1 if failed else 0
