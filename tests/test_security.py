"""The router refuses what it must: wrong secrets, plain connections, impostors on the OCS port."""
from __future__ import annotations

import json
import socket
import ssl

import pytest
from autobahn.wamp.exception import ApplicationError

from sisock import wamp
from sisock.router.crossbar_config import CONSUMER_USER
from sisock.wamp_thread import ThreadedSession
from tests.support import wait_until


def test_wrong_secret_is_refused(procs):
    hub = procs.start("hub", env={"WAMP_SECRET": "not-the-secret"})
    assert hub.proc.wait(30) == 1
    assert "wamp.error.not_authorized" in hub.output or "authentication" in hub.output.lower()
    assert "hub ready" not in hub.output


def test_plain_connection_to_tls_port_is_refused(router):
    request = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", router.config.crossbar_tls_port), timeout=5) as s:
        s.sendall(request)
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
    assert b"101 Switching Protocols" not in answer


def test_tls_port_presents_a_certificate_for_the_host(router):
    context = ssl.create_default_context(cafile=str(router.config.crossbar_ca_cert))
    with socket.create_connection(("127.0.0.1", router.config.crossbar_tls_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    untrusting = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", router.config.crossbar_tls_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusting.wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.fixture
def ocs_client(router):
    session = ThreadedSession(router.config, transport="ocs").start()
    assert session.wait_connected(30)
    yield session
    session.stop()


def test_ocs_port_cannot_pose_as_a_data_node(ocs_client):
    for uri in (wamp.get_data_uri("apex_archive"), wamp.HUB_ADD, f"{wamp.BASE_URI}.anything"):
        with pytest.raises(ApplicationError) as caught:
            ocs_client.register(uri, lambda *a: None)
        assert caught.value.error == "wamp.error.not_authorized"
    with pytest.raises(ApplicationError) as caught:
        ocs_client.call(wamp.HUB_LIST)
    assert caught.value.error == "wamp.error.not_authorized"


def test_ocs_port_serves_ocs_agents(ocs_client, client):
    received = []
    client.subscribe("observatory.agent1.feeds.temperatures", lambda *args: received.append(args))
    ocs_client.register("observatory.agent1.ops", lambda: "ok")
    assert ocs_client.call("observatory.agent1.ops") == "ok"
    ocs_client.publish("observatory.agent1.feeds.temperatures", {"a": 1}, {"feed_name": "temperatures"})
    wait_until(lambda: received, 10, "the feed event over the TLS session")
    assert received[0] == ({"a": 1}, {"feed_name": "temperatures"})


def test_ocs_port_listens_on_loopback_only(router):
    config = json.loads((router.directory / "node" / "config.json").read_text())
    transports = config["workers"][0]["transports"]
    ocs = [t for t in transports if t["endpoint"]["port"] == router.config.crossbar_ocs_port]
    assert ocs[0]["endpoint"]["interface"] == "127.0.0.1"
    assert router.config.wamp_secret not in json.dumps(config)


def _own_non_loopback_address():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_ocs_port_refuses_connections_from_the_network(router):
    address = _own_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, router.config.crossbar_ocs_port), timeout=5).close()


def test_unreadable_ca_certificate_is_one_line(procs, tmp_path):
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    for path in (garbage, tmp_path / "missing.pem"):
        hub = procs.start("hub", env={"CROSSBAR_CA_CERT": str(path)})
        assert hub.proc.wait(30) == 2
        assert hub.lines == [f"sisock hub: configuration error: CROSSBAR_CA_CERT={str(path)!r}: "
                             f"not a readable PEM certificate "
                             f"({'no certificate in it' if path == garbage else 'No such file or directory'})"]


def test_an_untrusted_router_certificate_is_a_configuration_error(procs, tmp_path):
    """Retrying cannot fix a CA that did not sign the router's certificate: stop at once, one line, exit 2."""
    from sisock.router.certs import make_certs

    make_certs(tmp_path / "other", ["127.0.0.1"])
    other_ca = str(tmp_path / "other" / "ca.pem")
    where = f"127.0.0.1:{procs.env['CROSSBAR_TLS_PORT']}"
    expected = {
        "": f"CROSSBAR_CA_CERT is not set and the system does not trust the router's certificate ({where}): "
            "set CROSSBAR_CA_CERT to the site CA's ca.pem",
        other_ca: f"CROSSBAR_CA_CERT={other_ca!r}: the router's certificate ({where}) is not signed by this CA",
    }
    for ca, reason in expected.items():
        hub = procs.start("hub", env={"CROSSBAR_CA_CERT": ca})
        assert hub.proc.wait(30) == 2, hub.output
        assert hub.lines == [f"sisock hub: configuration error: {reason}"]


def test_sisock_http_also_stops_on_an_untrusted_router_certificate(procs):
    from tests.support import free_port

    http = procs.start("http", env={"CROSSBAR_CA_CERT": "", "PORT": str(free_port())})
    assert http.proc.wait(30) == 2, http.output
    assert http.lines[-1].startswith("sisock http: configuration error: CROSSBAR_CA_CERT is not set")


def test_a_router_certificate_without_crossbar_host_is_a_configuration_error(tmp_path):
    from sisock.router.certs import make_certs
    from tests.support import Processes, Router

    make_certs(tmp_path / "certs", ["router.site"])  # Router keeps these: 127.0.0.1 is not in them
    router = Router(tmp_path).start()
    procs = Processes(router.env)
    try:
        hub = procs.start("hub")
        assert hub.proc.wait(30) == 2, hub.output
        assert hub.lines == [f"sisock hub: configuration error: CROSSBAR_HOST='127.0.0.1': not a name in the "
                             f"router's certificate (127.0.0.1:{router.config.crossbar_tls_port})"]
    finally:
        procs.stop_all()
        router.stop()


# Issue 12: a browser page from elsewhere cannot reach the router; sisock-http has a read-only role.

def _handshake(port: int, origin: str = None) -> bytes:
    """The answer to a WebSocket opening handshake on the OCS port, with or without an Origin."""
    request = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: wamp.2.json\r\n" + (f"Origin: {origin}\r\n" if origin else "") + "\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request.encode())
        return s.recv(4096)


def test_ocs_port_refuses_browser_pages_from_elsewhere(router):
    port = router.config.crossbar_ocs_port
    assert b"101 Switching Protocols" in _handshake(port)  # OCS agents send no Origin
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{port + 1}"):
        assert b"101 Switching Protocols" not in _handshake(port, origin), origin


def test_ocs_port_has_no_http_call_bridge_by_default(router):
    body = json.dumps({"procedure": "observatory.agent1.ops"}).encode()
    request = (f"POST /call HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", router.config.crossbar_ocs_port), timeout=5) as s:
        s.sendall(request.encode() + body)
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 404") and b"access-control-allow-origin" not in answer.lower()


@pytest.fixture
def consumer(router):
    session = ThreadedSession(router.config.with_values(wamp_user=CONSUMER_USER)).start()
    assert session.wait_connected(30)
    yield session
    session.stop()


def test_sisock_http_role_reads_and_nothing_else(consumer, client):
    client.register(wamp.get_data_uri("role_node"), lambda *a: {"data": {}, "timeline": {}})
    assert consumer.call(wamp.get_data_uri("role_node"), ["x"], 1, 2) == {"data": {}, "timeline": {}}
    with pytest.raises(ApplicationError) as caught:  # allowed, though no hub runs here
        consumer.call(wamp.HUB_LIST)
    assert caught.value.error == "wamp.error.no_such_procedure"
    consumer.subscribe(wamp.TOPIC_ADDED, lambda *a: None)
    for attempt_ in (lambda: consumer.register(wamp.get_data_uri("impostor"), lambda *a: None),
                     lambda: consumer.register(f"{wamp.BASE_URI}.anything", lambda *a: None),
                     lambda: consumer.publish(wamp.TOPIC_ADDED, {"name": "fake", "description": ""}),
                     lambda: consumer.call(wamp.HUB_ADD, "fake", "", 1),
                     lambda: consumer.subscribe("observatory.agent1.feeds.x", lambda *a: None),
                     lambda: consumer.call("wamp.session.get", 1)):
        with pytest.raises(ApplicationError) as caught:
            attempt_()
        assert caught.value.error == "wamp.error.not_authorized"
