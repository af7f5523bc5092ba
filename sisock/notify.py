"""systemd's notify protocol (sd_notify(3)) in a few lines, with no dependency.

A unit with ``Type=notify`` learns from :func:`ready` that the component has
joined the router (and, for a data node, been added to the hub), from
:func:`status` what it is doing (``systemctl status`` shows it), and with
``WatchdogSec=`` from :func:`start_watchdog` that its reactor still turns: a
hung reactor stops feeding the watchdog and systemd kills and restarts it.
Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing.
"""
from __future__ import annotations

import os
import socket
from typing import Mapping, Optional

from twisted.internet import task

from sisock import log

#: a systemd that does not read would otherwise cost a warning per watchdog period
_throttle = log.Throttle()


def _address(environ: Mapping[str, str]) -> Optional[str]:
    """The socket path of ``$NOTIFY_SOCKET`` (``@`` is the abstract namespace), or None."""
    path = environ.get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "/@":
        return None
    return "\0" + path[1:] if path[0] == "@" else path


def send(message: str, environ: Optional[Mapping[str, str]] = None) -> bool:
    """Send ``message`` (``KEY=value`` lines) to systemd; False when not run under it or it failed."""
    address = _address(os.environ if environ is None else environ)
    if address is None:
        return False
    try:
        # non-blocking: a full queue on systemd's side drops one message, never stalls the reactor
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
            sock.sendto(message.encode(), address)
    except OSError as exc:
        _throttle.warn(log.logger(), "notify", "cannot notify systemd ({error})", error=exc.strerror or exc)
        return False
    return True


def _one_line(text: str) -> str:
    return " ".join(text.split())


def ready(text: str) -> bool:
    """The component does its job now: ``READY=1`` with a status line."""
    return send(f"READY=1\nSTATUS={_one_line(text)}")


def status(text: str) -> bool:
    """What the component is doing, for ``systemctl status``."""
    return send(f"STATUS={_one_line(text)}")


def watchdog_interval(environ: Optional[Mapping[str, str]] = None) -> Optional[float]:
    """Half of ``$WATCHDOG_USEC`` in seconds when the watchdog is meant for this process, else None."""
    environ = os.environ if environ is None else environ
    pid = environ.get("WATCHDOG_PID")
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
        if pid is not None and int(pid) != os.getpid():
            return None
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None


def start_watchdog(clock=None) -> Optional[task.LoopingCall]:
    """Feed systemd's watchdog from the reactor every half period (nothing without ``WatchdogSec=``)."""
    interval = watchdog_interval()
    if interval is None:
        return None
    loop = task.LoopingCall(send, "WATCHDOG=1")
    if clock is not None:
        loop.clock = clock
    loop.start(interval, now=True)
    return loop
