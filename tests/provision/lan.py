"""A private /24 for the multi-host test: a bridge on this machine (the control machine's
address, .1) and one network namespace per guest, joined to it by a veth pair.

Every name starts with ``sk11-``; :meth:`Lan.delete` removes the namespaces (killing what
still runs in them) and the bridge, also after a failed or killed run (a new Lan first
removes what an old one left).
"""
from __future__ import annotations

from typing import Dict

from tests.netns import PREFIX, Netns, ip

BRIDGE = PREFIX + "br"


class Lan:
    def __init__(self, subnet: str = "10.211.11") -> None:
        self.subnet = subnet
        self.namespaces: Dict[str, Netns] = {}
        ip("link", "delete", BRIDGE, check=False)
        ip("link", "add", BRIDGE, "type", "bridge")
        ip("addr", "add", f"{self.address(1)}/24", "dev", BRIDGE)
        ip("link", "set", BRIDGE, "up")

    def address(self, last: int) -> str:
        return f"{self.subnet}.{last}"

    def add(self, name: str, last: int) -> Netns:
        """A namespace ``sk11-<name>`` with ``eth0`` at ``subnet.last`` on the bridge."""
        ns = Netns(name)
        self.namespaces[name] = ns
        outside = f"{PREFIX}v-{name}"[:15]
        ip("link", "delete", outside, check=False)
        ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
        ip("link", "set", outside, "master", BRIDGE, "up")
        ns.ip("addr", "add", f"{self.address(last)}/24", "dev", "eth0")
        ns.ip("link", "set", "eth0", "up")
        return ns

    def delete(self) -> None:
        for ns in self.namespaces.values():
            ns.delete()  # its veth pair goes with it
        ip("link", "delete", BRIDGE, check=False)
