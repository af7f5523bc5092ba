"""Network namespaces for tests: a private host with its own addresses (needs root and iproute2).

Every name a test makes starts with ``sk11-`` and the namespace is deleted in
:meth:`Netns.delete`, which also kills whatever still runs in it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import List

PREFIX = "sk11-"


def available() -> bool:
    """True when this process may make network namespaces."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


class Netns:
    """A network namespace with loopback up; ``prefix`` runs a command inside it."""

    def __init__(self, name: str) -> None:
        self.name = PREFIX + name
        ip("netns", "delete", self.name, check=False)  # left over by a killed run
        ip("netns", "add", self.name)
        self.ip("link", "set", "lo", "up")

    @property
    def prefix(self) -> List[str]:
        return ["ip", "netns", "exec", self.name]

    def ip(self, *args: str) -> subprocess.CompletedProcess:
        return ip("-n", self.name, *args)

    def delete(self) -> None:
        """Kill the processes left inside, then remove the namespace (and its links)."""
        pids = ip("netns", "pids", self.name, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        ip("netns", "delete", self.name, check=False)
