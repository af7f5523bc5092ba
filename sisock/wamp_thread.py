"""A WAMP session in a background reactor thread, usable from ordinary threads.

sisock-http's CherryPy request threads (and the tests) call data node servers
through it: each call is handed to the reactor thread and waited for with a
timeout, so a slow or dead data node never holds a request thread forever.
"""
from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable, Optional

from autobahn.wamp.types import PublishOptions
from twisted.internet import defer, reactor

from sisock import wamp
from sisock.config import Config

_reactor_thread: Optional[threading.Thread] = None
_reactor_lock = threading.Lock()


def ensure_reactor_thread() -> None:
    """Start the Twisted reactor in a daemon thread, once per process."""
    global _reactor_thread
    with _reactor_lock:
        if _reactor_thread is not None and _reactor_thread.is_alive():
            return
        _reactor_thread = threading.Thread(
            target=reactor.run,  # type: ignore[misc]  # zope interface (mypy sees no self)
            kwargs={"installSignalHandlers": False}, name="twisted-reactor", daemon=True
        )
        _reactor_thread.start()


def in_reactor(fn: Callable[..., Any], *args, timeout: Optional[float] = None, **kwargs) -> Any:
    """Run ``fn`` (which may return a Deferred) in the reactor thread and wait for its result."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    def start():
        d = defer.maybeDeferred(fn, *args, **kwargs)
        if timeout is not None:
            d.addTimeout(timeout, reactor)

        def done(result):
            if not future.done():
                future.set_result(result)

        def failed(failure):
            if not future.done():
                future.set_exception(failure.value)

        d.addCallbacks(done, failed)

    reactor.callFromThread(start)
    try:
        # A little slack: the reactor-side timeout cancels the call itself.
        return future.result(None if timeout is None else timeout + 1.0)
    except concurrent.futures.TimeoutError:
        raise TimeoutError(f"no answer within {timeout} s") from None
    except defer.TimeoutError:
        raise TimeoutError(f"no answer within {timeout} s") from None


class ThreadedSession:
    """One reconnecting WAMP component, driven from any thread."""

    def __init__(self, config: Config, transport: str = "tls",
                 on_join: Optional[Callable] = None, on_leave: Optional[Callable] = None,
                 on_fatal: Optional[Callable[[str], None]] = None) -> None:
        self.config = config
        self.session = None
        self._joined = threading.Event()
        self._on_join, self._on_leave, self._on_fatal = on_join, on_leave, on_fatal
        #: Why the session gave up for good (a refused secret, an unknown realm), or None.
        self.fatal_error: Optional[str] = None
        self.component = wamp.make_component(config, transport)
        self.component.on("join", self._join)
        self.component.on("leave", self._leave)

    def _join(self, session, details):
        self.session = session
        self._joined.set()
        if self._on_join is not None:
            return self._on_join(session, details)
        return None

    def _leave(self, session, details):
        self.session = None
        self._joined.clear()
        if self._on_leave is not None:
            self._on_leave(session, details)

    @property
    def connected(self) -> bool:
        """True while the session is joined to the router."""
        return self._joined.is_set()

    def start(self) -> "ThreadedSession":
        """Start connecting (in the background; see :meth:`wait_connected`)."""
        ensure_reactor_thread()
        reactor.callFromThread(self._start)
        return self

    def _start(self) -> None:
        def failed(failure):
            self.fatal_error = wamp.config_problem[0] if wamp.config_problem else failure.getErrorMessage()
            if self._on_fatal is not None:
                self._on_fatal(self.fatal_error)

        self.component.start(reactor).addErrback(failed)

    def wait_connected(self, timeout: float) -> bool:
        """Wait until joined; true if joined within ``timeout`` seconds."""
        return self._joined.wait(timeout)

    def _session(self):
        if self.session is None or not self.session.is_attached():
            raise ConnectionError("not connected to the WAMP router")
        return self.session

    def call(self, uri: str, *args, timeout: float = 30.0, **kwargs) -> Any:
        """Call a WAMP procedure; raises TimeoutError, ConnectionError or ApplicationError."""
        return in_reactor(lambda: self._session().call(uri, *args, **kwargs), timeout=timeout)

    def publish(self, topic: str, *args, timeout: float = 10.0, **kwargs) -> None:
        """Publish an event (with acknowledgement, so failures are seen)."""
        in_reactor(lambda: self._session().publish(topic, *args, options=PublishOptions(acknowledge=True), **kwargs),
                   timeout=timeout)

    def subscribe(self, topic: str, handler: Callable, timeout: float = 10.0) -> Any:
        """Subscribe ``handler`` (called in the reactor thread) to ``topic``."""
        return in_reactor(lambda: self._session().subscribe(handler, topic), timeout=timeout)

    def register(self, uri: str, handler: Callable, timeout: float = 10.0) -> Any:
        """Register ``handler`` (called in the reactor thread) as procedure ``uri``."""
        return in_reactor(lambda: self._session().register(handler, uri), timeout=timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Leave the router and stop reconnecting."""
        try:
            in_reactor(self.component.stop, timeout=timeout)
        except Exception:  # already gone: nothing left to stop
            pass
