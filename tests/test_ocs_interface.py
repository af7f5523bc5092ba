"""CROSSBAR_OCS_INTERFACE: OCS agents on other hosts reach the router's OCS port, on the
address the site chose and no other; every interface only when asked twice."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sisock.config import load
from sisock.router import crossbar_config
from tests import netns
from tests.support import BIN, Process, Router, base_environment, free_port, wait_until

#: the router's address on the test's private network, and the agent's
ROUTER_ADDRESS, AGENT_ADDRESS = "10.211.7.1", "10.211.7.2"

#: A websocket opening handshake on the OCS port: prints the status line, or the error.
HANDSHAKE = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n" % host).encode())
        print(s.recv(4096).split(b"\r\n")[0].decode())
except OSError as exc:
    print(type(exc).__name__)
"""


def crossbar_config_run(tmp_path, **settings):
    (tmp_path / "s.pem").write_text("certificate\n")
    (tmp_path / "s.key").write_text("key\n")
    env = dict(base_environment(), CROSSBAR_TLS_CERT=str(tmp_path / "s.pem"), CROSSBAR_TLS_KEY=str(tmp_path / "s.key"),
               **settings)
    return subprocess.run([str(BIN / "sisock"), "crossbar-config", "--dir", str(tmp_path / "node")], env=env,
                          capture_output=True, text=True, timeout=60)


def ocs_endpoint(tmp_path) -> dict:
    return json.loads((tmp_path / "node/config.json").read_text())["workers"][0]["transports"][1]["endpoint"]


def test_ocs_port_binds_the_address_given(tmp_path):
    result = crossbar_config_run(tmp_path, CROSSBAR_OCS_INTERFACE="10.10.0.10")
    assert result.returncode == 0, result.stderr
    assert ocs_endpoint(tmp_path)["interface"] == "10.10.0.10"
    assert "warning" not in result.stderr
    assert load(dict(base_environment(), CROSSBAR_OCS_INTERFACE="10.10.0.10")).ocs_client_host == "10.10.0.10"


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::"])
def test_a_wildcard_ocs_interface_needs_the_second_setting_and_then_warns(tmp_path, wildcard):
    refused = crossbar_config_run(tmp_path, CROSSBAR_OCS_INTERFACE=wildcard)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0
    assert f"CROSSBAR_OCS_INTERFACE={wildcard!r}" in refused.stderr and "CROSSBAR_OCS_WILDCARD=on" in refused.stderr
    assert not (tmp_path / "node/config.json").exists()
    allowed = crossbar_config_run(tmp_path, CROSSBAR_OCS_INTERFACE=wildcard, CROSSBAR_OCS_WILDCARD="on")
    assert allowed.returncode == 0, allowed.stderr
    assert ocs_endpoint(tmp_path)["interface"] == wildcard
    warnings = [line for line in allowed.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "no authentication" in warnings[0] and "every interface" in warnings[0]
    # a data-feed on the router host (DATA_FEED_TRANSPORT=ocs) then goes through loopback
    config = load(dict(base_environment(), CROSSBAR_OCS_INTERFACE=wildcard, CROSSBAR_OCS_WILDCARD="on"))
    assert config.ocs_client_host == ("::1" if wildcard == "::" else "127.0.0.1")


@pytest.fixture
def private_network():
    """A namespace with the router's and an agent's address on a veth pair (a site-private /24)."""
    if not netns.available():
        pytest.skip("network namespaces need root and iproute2")
    ns = netns.Netns("ocs")
    try:
        ns.ip("link", "add", "sk11-r", "type", "veth", "peer", "name", "sk11-a")
        for link, address in (("sk11-r", ROUTER_ADDRESS), ("sk11-a", AGENT_ADDRESS)):
            ns.ip("addr", "add", f"{address}/24", "dev", link)
            ns.ip("link", "set", link, "up")
        yield ns
    finally:
        ns.delete()


def test_a_real_router_serves_ocs_agents_on_the_private_address_only(tmp_path, private_network):
    router = Router(tmp_path / "router")
    router.env.update(CROSSBAR_OCS_INTERFACE=ROUTER_ADDRESS, CROSSBAR_OCS_PORT=str(free_port()))
    config = load(router.env)
    crossbar_config.write(config, router.directory / "node")
    crossbar = Process([*private_network.prefix, str(BIN / "crossbar"), "start", "--cbdir",
                        str(router.directory / "node")], router.env, "crossbar")

    def handshake(host: str) -> str:
        return subprocess.run([*private_network.prefix, sys.executable, "-c", HANDSHAKE, host,
                               str(config.crossbar_ocs_port)],
                              capture_output=True, text=True, timeout=30).stdout.strip()

    try:
        wait_until(lambda: "101" in handshake(ROUTER_ADDRESS) or not crossbar.alive(), 60, "the OCS port")
        assert crossbar.alive(), crossbar.output[-3000:]
        assert handshake(ROUTER_ADDRESS) == "HTTP/1.1 101 Switching Protocols"
        assert handshake("127.0.0.1") == "ConnectionRefusedError"
    finally:
        crossbar.stop()
