"""WAMP plumbing shared by every sisock component.

A component connects to the router over TLS (trusting ``CROSSBAR_CA_CERT``),
authenticates with WAMP-CRA, reconnects with back-off whenever the router goes
away, and leaves cleanly when the process gets SIGTERM or SIGINT.
"""
from __future__ import annotations

import sys
from typing import Awaitable, Callable, List, Optional, Sequence

from autobahn.twisted.component import Component
from autobahn.twisted.wamp import Session as AutobahnSession
from autobahn.wamp.exception import ApplicationError
from OpenSSL import SSL
from OpenSSL.crypto import Error as OpenSSLError
from twisted.internet import defer, reactor, ssl
from twisted.internet.error import ReactorNotRunning

from sisock import log, notify
from sisock.config import Config, ConfigError

BASE_URI = "org.simonsobservatory"

# The hub's contract (docs/design.md, "WAMP contract").
HUB_ADD = f"{BASE_URI}.data_node.add"
HUB_SUBTRACT = f"{BASE_URI}.data_node.subtract"
HUB_LIST = f"{BASE_URI}.consumer.get_data_node"
TOPIC_ADDED = f"{BASE_URI}.consumer.data_node_added"
TOPIC_SUBTRACTED = f"{BASE_URI}.consumer.data_node_subtracted"
#: Published by the hub when it (re)starts: data node servers add themselves again.
TOPIC_HUB_STARTED = f"{BASE_URI}.hub.started"

#: Reasons for which reconnecting cannot help: stop and say why.
FATAL_ERRORS = (
    "wamp.error.not_authorized",
    "wamp.error.authentication_failed",
    "wamp.error.authorization_failed",
    "wamp.error.no_such_realm",
    "wamp.error.no_auth_method",
    "wamp.error.no_such_role",
)

#: How long a clean shutdown may wait on the router before giving up.
SHUTDOWN_TIMEOUT = 5.0

#: The largest WAMP message the router passes (written into its config as ``max_message_size``):
#: a session that sends a larger one is dropped, so data nodes send large answers in pieces
#: (:mod:`sisock.pieces`) and never one message this large.
MAX_MESSAGE = 16 << 20


def get_fields_uri(node: str) -> str:
    """The URI of a data node server's ``get_fields`` procedure."""
    return f"{BASE_URI}.consumer.{node}.get_fields"


def get_data_uri(node: str) -> str:
    """The URI of a data node server's ``get_data`` procedure."""
    return f"{BASE_URI}.consumer.{node}.get_data"


def procedure_uri(node: str, procedure: str) -> str:
    """The URI of another procedure of a data node server (``get_coverage`` of the g3 reader)."""
    return f"{BASE_URI}.consumer.{node}.{procedure}"


def tls_options(config: Config):
    """Client TLS options: verify the router's certificate for ``CROSSBAR_HOST``."""
    if config.crossbar_ca_cert is None:
        return ssl.optionsForClientTLS(config.crossbar_host)
    try:
        trust = ssl.Certificate.loadPEM(config.crossbar_ca_cert.read_bytes())
    except (OSError, OpenSSLError) as exc:
        raise ConfigError(f"CROSSBAR_CA_CERT={str(config.crossbar_ca_cert)!r}: not a readable PEM certificate "
                          f"({exc.strerror if isinstance(exc, OSError) else 'no certificate in it'})") from None
    return ssl.optionsForClientTLS(config.crossbar_host, trustRoot=trust)


#: Set when connecting showed a configuration error (the router's certificate is not
#: trusted): the process stops, and :func:`run` raises it as a ConfigError (exit 2).
config_problem: List[str] = []


def tls_problem(config: Config, error: Exception) -> Optional[str]:
    """The configuration error behind a failed TLS handshake, or None if it may pass by itself.

    Retrying cannot help when the router's certificate is not signed by the CA we
    trust, or does not name CROSSBAR_HOST: both are settings to fix.
    """
    where = f"{config.crossbar_host}:{config.crossbar_tls_port}"
    if isinstance(error, SSL.Error):
        reasons = [entry[2] for entry in (error.args[0] if error.args and isinstance(error.args[0], list) else [])
                   if isinstance(entry, tuple) and len(entry) == 3]
        if not any("certificate verify failed" in str(reason) for reason in reasons):
            return None
        if config.crossbar_ca_cert is None:
            return (f"CROSSBAR_CA_CERT is not set and the system does not trust the router's certificate "
                    f"({where}): set CROSSBAR_CA_CERT to the site CA's ca.pem")
        return (f"CROSSBAR_CA_CERT={str(config.crossbar_ca_cert)!r}: the router's certificate ({where}) "
                "is not signed by this CA")
    if type(error).__name__ == "VerificationError":  # service_identity: the name is not in the certificate
        return f"CROSSBAR_HOST={config.crossbar_host!r}: not a name in the router's certificate ({where})"
    return None


def _is_fatal(config: Config, error: Exception) -> bool:
    if isinstance(error, ApplicationError) and error.error in FATAL_ERRORS:
        return True
    problem = tls_problem(config, error)
    if problem is not None:
        if not config_problem:
            config_problem.append(problem)
            log.stopping()  # the other components' connections end with the stop: nothing to say
        return True
    return False


class Session(AutobahnSession):
    """autobahn's session, without its warning for every ApplicationError a procedure raises: those
    are answers (a bad request, a busy node), and sisock logs the failures among them itself; and
    with Nagle's algorithm off on its socket."""

    def onOpen(self, transport):
        """autobahn turns Nagle's algorithm off as the TCP connection is made, but over TLS that call
        fails unseen (Twisted's TLS transport is not connected yet): a second message sent before the
        first's ACK then waited for the peer's delayed ACK, 40 ms (two calls at once took 50 ms
        instead of 10). So it is turned off here, once the WebSocket is open."""
        try:
            transport.transport.setTcpNoDelay(True)
        except (AttributeError, OSError):  # not a TCP socket
            pass
        return super().onOpen(transport)

    def onUserError(self, fail, msg):
        if not isinstance(getattr(fail, "value", None), ApplicationError):
            super().onUserError(fail, msg)


def make_component(config: Config, transport: str = "tls") -> Component:
    """A Component that reconnects forever (``tls``: WAMP-CRA over TLS; ``ocs``: the
    router host's anonymous port OCS agents use)."""
    if transport == "tls":
        port, url = config.crossbar_tls_port, f"wss://{config.crossbar_host}:{config.crossbar_tls_port}/ws"
        endpoint = {"type": "tcp", "host": config.crossbar_host, "port": port, "tls": tls_options(config)}
        authentication = {"wampcra": {"authid": config.wamp_user, "secret": config.wamp_secret}}
    else:
        host, port = config.ocs_client_host, config.crossbar_ocs_port
        url = f"ws://{f'[{host}]' if ':' in host else host}:{port}/ws"
        endpoint = {"type": "tcp", "host": host, "port": port}
        authentication = None
    return Component(
        transports=[
            {
                "type": "websocket",
                "url": url,
                "endpoint": endpoint,
                "max_retries": -1,
                "initial_retry_delay": 0.5,
                "max_retry_delay": 10,
                "retry_delay_growth": 1.5,
                "retry_delay_jitter": 0.1,
                "options": {"autoPingInterval": 10, "autoPingTimeout": 20, "openHandshakeTimeout": 10},
            }
        ],
        realm=config.crossbar_realm,
        authentication=authentication,
        is_fatal=lambda error: _is_fatal(config, error),
        session_factory=Session,
    )


ShutdownHook = Callable[[], Optional[Awaitable]]

#: The exit code :func:`run` returns; :func:`fatal` sets it.
_exit_code = [0]


def fatal(message: str) -> None:
    """Log why this process cannot go on, and stop it with exit code 1."""
    log.logger().critical("{text}", text=message)
    _exit_code[0] = 1
    _stop()


def _stop() -> None:
    """Stop the reactor once, however many components ask (several may fail in one turn)."""
    try:
        reactor.stop()  # type: ignore[misc]  # zope interface (mypy sees no self)
    except ReactorNotRunning:
        pass


def run(component_name: str, config: Config, components: List[Component],
        on_shutdown: Sequence[ShutdownHook] = ()) -> int:
    """Run components in the reactor until SIGTERM/SIGINT or a fatal error; return the exit code.

    ``on_shutdown`` hooks run before the sessions leave (a data node subtracts itself there).
    The systemd watchdog, if the unit has one, is fed from the reactor (:mod:`sisock.notify`).
    """
    log.start(component_name, config.loglevel)
    logger = log.logger()

    def failed(failure, comp):
        if config_problem:  # reported by the command line as a configuration error
            _exit_code[0] = 2
            _stop()
            return
        fatal(f"stopping: {failure.getErrorMessage()}")

    @defer.inlineCallbacks
    def shut_down():
        for hook in on_shutdown:
            try:
                yield defer.maybeDeferred(hook).addTimeout(SHUTDOWN_TIMEOUT, reactor)
            except Exception as exc:  # a router that is gone must not block the exit
                logger.warn("shutdown step failed: {exc}", exc=exc)
        stops = []
        for comp in components:
            d = defer.maybeDeferred(comp.stop)
            stops.append(d.addTimeout(SHUTDOWN_TIMEOUT, reactor))
        yield defer.DeferredList(stops, consumeErrors=True)
        if not config_problem:
            logger.info("stopped")

    router = f"wss://{config.crossbar_host}:{config.crossbar_tls_port}"

    def start():
        notify.start_watchdog()
        notify.status(f"connecting to the router at {router}")
        for comp in components:
            comp.on("leave", lambda *_: notify.status(f"router {router} away: reconnecting"))
            d = comp.start(reactor)
            d.addErrback(failed, comp)

    reactor.addSystemEventTrigger("before", "shutdown", shut_down)  # type: ignore[arg-type]  # zope interface (mypy sees no self)
    reactor.callWhenRunning(start)
    reactor.run()  # type: ignore[misc]  # zope interface (mypy sees no self)
    sys.stdout.flush()
    if config_problem:
        raise ConfigError(config_problem[0])
    return _exit_code[0]
