"""Processes that sisock starts end when the process that started them ends, for any reason.

A parent killed with SIGKILL (the OOM killer, a watchdog, ``kill -9``) runs no clean-up, so
the child has to notice by itself. Each child watches its parent through a pidfd (Linux 5.3
and newer: the kernel wakes the watcher the moment the parent is gone), or by polling its
parent's pid where pidfds are missing. ``PR_SET_PDEATHSIG`` was not chosen: it fires when the
*thread* that started the child ends, and sisock starts worker processes from pool threads.

The watched parent's pid travels in the environment (``SISOCK_PARENT_PID``) to sisock
commands the demo starts, and as an argument to worker processes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import signal
import threading
import time
from typing import Callable, Optional

#: The variable through which a parent names itself to a sisock command it starts.
PARENT_VARIABLE = "SISOCK_PARENT_PID"
#: Seconds between looks at the parent where no pidfd can be had.
POLL_EVERY = 0.5
#: Seconds an orphaned sisock command has to stop cleanly before it is ended at once.
STOP_GRACE = 20.0


def _wait_for_exit(pid: int) -> None:
    """Block until process ``pid`` has ended (it may have ended already)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd here, or the process is gone already
        while _alive(pid):
            time.sleep(POLL_EVERY)
        return
    try:
        select.select([fd], [], [])  # readable once the process has ended
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process by that number: it lives
        return True
    return True


def watch_parent(parent: int, on_orphaned: Optional[Callable[[], None]] = None) -> None:
    """From a child: end this process as soon as ``parent`` ends (at once if it has already, or
    if this process is no longer its child). ``on_orphaned`` runs in the watcher thread
    instead of the default, an immediate ``os._exit``."""
    def orphaned() -> None:
        if on_orphaned is not None:
            on_orphaned()
        else:
            os._exit(1)

    if os.getppid() != parent:  # the parent died before this child started watching it
        orphaned()
        return

    def watch() -> None:
        _wait_for_exit(parent)
        orphaned()

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def watch_parent_from_environment() -> None:
    """For a sisock command: if the process that started it named itself in ``SISOCK_PARENT_PID``,
    stop cleanly (as on SIGTERM) when that process ends."""
    value = os.environ.get(PARENT_VARIABLE, "")
    if value.isdigit() and int(value) > 1:
        watch_parent(int(value), _stop_self)


def _stop_self() -> None:
    """SIGTERM to this process (its clean stop), and the end after STOP_GRACE if that hangs."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_GRACE)
    os._exit(1)


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def die_with(parent: int) -> None:
    """In a child that is not a sisock command, between fork and exec (``preexec_fn``): SIGTERM
    when the thread that started it ends. Only for children started from a thread that lives as
    long as its process (the demo's main thread)."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent ended before the signal was armed
        os._exit(1)


def child_environment(env: dict) -> dict:
    """``env`` with this process named as the parent that children must not outlive."""
    return dict(env, **{PARENT_VARIABLE: str(os.getpid())})
