"""sisock-http closed by default off loopback: basic auth or a bearer token, 401 JSON otherwise,
https from the site CA's certificate, and the start-up refusals (a real sisock-http)."""
from __future__ import annotations

import base64
import http.client
import socket
import ssl
import subprocess
import time

import pytest

from tests.http_support import SPIKE_FIELD, HttpStack, JsonHttp, query
from tests.support import BIN, base_environment, free_port

USER, PASSWORD, TOKEN = "grafana", "pass-word-of-the-test", "token-of-the-test"


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def site_ca(router):
    """A client context that trusts the site CA only (as Grafana with the CA in its datasource)."""
    return ssl.create_default_context(cafile=str(router.config.crossbar_ca_cert))


@pytest.fixture(scope="module")
def secured(router, tmp_path_factory, site_ca):
    """hub + weather + sisock-http with credentials and https from the router's certificate."""
    certs = router.directory / "certs"
    s = HttpStack(router, tmp_path_factory.mktemp("auth"), env={
        "HTTP_USER": USER, "HTTP_PASSWORD": PASSWORD, "HTTP_TOKEN": TOKEN, "HTTP_HEADER_TIMEOUT": "2",
        "HTTP_TLS_CERT": str(certs / "server.pem"), "HTTP_TLS_KEY": str(certs / "server.key")})
    s.headers, s.tls = basic(USER, PASSWORD), site_ca
    try:
        yield s.start()
    finally:
        s.stop()


def anonymous(stack: HttpStack, headers=None) -> JsonHttp:
    return JsonHttp(stack.port, headers=headers, tls=stack.tls)


@pytest.mark.parametrize("method,path,body", [("GET", "/", None), ("POST", "/search", {"target": ""}),
                                              ("POST", "/query", query(0, 1, "apex_archive::temperature"))])
def test_without_credentials_every_endpoint_is_401_json_with_a_challenge(secured, method, path, body):
    status, answer, headers = anonymous(secured).request(method, path, body)
    headers = {name.lower(): value for name, value in headers.items()}  # names are case-insensitive
    assert status == 401
    assert "authentication required" in answer["error"]
    assert headers["content-type"] == "application/json"
    assert headers["www-authenticate"] == 'Basic realm="sisock", charset="UTF-8", Bearer realm="sisock"'


@pytest.mark.parametrize("headers", [
    basic(USER, "wrong"), basic("someone", PASSWORD), basic(USER, PASSWORD + "x"), basic(USER, ""),
    {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Bearer {PASSWORD}"},
    {"Authorization": "Basic not*base64"}, {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    {"Authorization": f"Token {TOKEN}"}])
def test_wrong_credentials_are_401_and_reveal_nothing(secured, headers):
    status, answer, _ = anonymous(secured, headers).request("POST", "/search", {"target": ""})
    assert (status, answer) == (401, {"error": "wrong credentials"})


def test_basic_auth_and_the_bearer_token_both_read_the_data(secured):
    start, end = secured.now - 3600, secured.now
    for headers in (basic(USER, PASSWORD), {"Authorization": f"Bearer {TOKEN}"}):
        client = anonymous(secured, headers)
        status, names, _ = client.request("POST", "/search", {"target": ""})
        assert status == 200 and f"apex_archive::{SPIKE_FIELD}" in names
        status, series, _ = client.request("POST", "/query", query(start, end, f"apex_archive::{SPIKE_FIELD}"))
        assert status == 200 and len(series[0]["datapoints"]) > 100
        assert client.request("GET", "/")[0] == 200


def test_https_is_verified_against_the_site_ca_only(secured):
    untrusting = JsonHttp(secured.port, headers=basic(USER, PASSWORD), tls=ssl.create_default_context())
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusting.request("GET", "/")
    plain = JsonHttp(secured.port, headers=basic(USER, PASSWORD))
    with pytest.raises((OSError, http.client.HTTPException)):  # an http request on the https port gets no answer
        plain.request("GET", "/", timeout=5)
    assert secured.request("GET", "/")[0] == 200


def test_a_silent_client_on_https_is_dropped_after_the_header_timeout(secured, site_ca):
    with socket.create_connection(("127.0.0.1", secured.port), timeout=15) as raw:
        with site_ca.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            began = time.monotonic()
            try:
                answer = tls.recv(4096)
            except (ConnectionResetError, ssl.SSLError):
                answer = b""
            waited = time.monotonic() - began
    assert 1.5 < waited < 10, waited
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    assert secured.request("GET", "/")[0] == 200


def http_start(env: dict, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sisock"), "http"], env=dict(base_environment(), PORT=str(free_port()), **env),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.211.7.1"])
def test_off_loopback_without_credentials_is_refused_at_start_in_one_line(host):
    result = http_start({"HTTP_HOST": host})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"sisock http: configuration error: HTTP_HOST={host!r} is not loopback but sisock-http has no "
        "credentials: set HTTP_USER and HTTP_PASSWORD (or HTTP_TOKEN)"]


def test_off_loopback_with_a_token_passes_the_check():
    # 10.211.7.1 is no address of this machine: the start goes past the credentials check to the bind
    result = http_start({"HTTP_HOST": "10.211.7.1", "HTTP_TOKEN": TOKEN})
    assert result.returncode == 1
    assert "cannot listen on 10.211.7.1" in result.stdout + result.stderr


@pytest.mark.parametrize("env,named", [
    ({"HTTP_USER": USER}, "HTTP_USER and HTTP_PASSWORD go together"),
    ({"HTTP_PASSWORD": PASSWORD}, "HTTP_USER and HTTP_PASSWORD go together"),
    ({"HTTP_USER": "a:b", "HTTP_PASSWORD": PASSWORD}, "cannot hold ':'"),
    ({"HTTP_TLS_CERT": "/etc/hostname"}, "HTTP_TLS_CERT and HTTP_TLS_KEY go together"),
    ({"HTTP_TLS_CERT": "/nonexistent.pem", "HTTP_TLS_KEY": "/nonexistent.key"}, "HTTP_TLS_CERT='/nonexistent.pem'"),
])
def test_half_set_credentials_or_tls_are_refused_in_one_line(env, named):
    result = http_start(env)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and named in result.stderr


def test_an_env_file_with_the_http_password_must_not_be_world_readable(tmp_path):
    env_file = tmp_path / "sisock.env"
    env_file.write_text(f"HTTP_USER={USER}\nHTTP_PASSWORD={PASSWORD}\n")
    env_file.chmod(0o644)
    result = http_start({"SISOCK_ENV_FILE": str(env_file)})
    assert result.returncode == 2 and "readable by others" in result.stderr
