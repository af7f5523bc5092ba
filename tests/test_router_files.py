"""``sisock certs`` and ``sisock crossbar-config`` write what the router needs, safely."""
from __future__ import annotations

import ipaddress
import json
import stat
import subprocess

from cryptography import x509

from tests.support import BIN, base_environment


def run(*args, env=None):
    return subprocess.run([str(BIN / "sisock"), *args], env=env or base_environment(), capture_output=True,
                          text=True, timeout=60)


def test_certs_have_the_names_and_private_keys(tmp_path):
    result = run("certs", "--dir", str(tmp_path), "--name", "router.site", "--name", "10.1.2.3")
    assert result.returncode == 0, result.stderr
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["router.site"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)


def test_certs_are_kept_unless_forced(tmp_path):
    run("certs", "--dir", str(tmp_path))
    ca = (tmp_path / "ca.pem").read_bytes()
    assert "kept existing" in run("certs", "--dir", str(tmp_path)).stdout
    assert (tmp_path / "ca.pem").read_bytes() == ca
    run("certs", "--dir", str(tmp_path), "--force")
    assert (tmp_path / "ca.pem").read_bytes() != ca


def test_crossbar_config_from_the_environment(tmp_path):
    env = dict(base_environment(), CROSSBAR_TLS_PORT="9443", CROSSBAR_OCS_PORT="9001", CROSSBAR_REALM="site",
               CROSSBAR_TLS_CERT=str(tmp_path / "s.pem"), CROSSBAR_TLS_KEY=str(tmp_path / "s.key"),
               WAMP_SECRET="very-secret", WAMP_USER="sisock-site", CROSSBAR_HOST="router.site")
    result = run("crossbar-config", "--dir", str(tmp_path / "node"), env=env)
    assert result.returncode == 0, result.stderr
    path = tmp_path / "node" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) & 0o007 == 0
    text = path.read_text()
    assert "very-secret" not in text
    config = json.loads(text)
    assert config["version"] == 2
    worker = config["workers"][0]
    assert worker["realms"][0]["name"] == "site"
    tls, ocs = worker["transports"]
    assert tls["endpoint"]["port"] == 9443 and tls["endpoint"]["tls"]["key"].endswith("s.key")
    assert tls["paths"]["ws"]["auth"]["wampcra"]["users"] == {
        "sisock-site": {"secret": "${WAMP_SECRET}", "role": "sisock"},
        "sisock-http": {"secret": "${WAMP_SECRET}", "role": "consumer"}}
    assert ocs["endpoint"] == {"type": "tcp", "interface": "127.0.0.1", "port": 9001}
    assert "call" not in ocs["paths"]  # the HTTP bridge serves any browser origin: only on request
    assert tls["paths"]["ws"]["options"]["allowed_origins"] == ocs["paths"]["ws"]["options"]["allowed_origins"] == []
    env.update(CROSSBAR_OCS_CALL="on", CROSSBAR_OCS_ORIGINS="https://ocs-web.site:443,http://localhost:*")
    assert run("crossbar-config", "--dir", str(tmp_path / "node"), env=env).returncode == 0
    ocs = json.loads(path.read_text())["workers"][0]["transports"][1]
    assert ocs["paths"]["call"]["type"] == "caller"
    assert ocs["paths"]["ws"]["options"]["allowed_origins"] == ["https://ocs-web.site:443", "http://localhost:*"]


def test_crossbar_config_refuses_the_default_secret_off_loopback(tmp_path):
    env = dict(base_environment(), CROSSBAR_TLS_INTERFACE="0.0.0.0")
    result = run("crossbar-config", "--dir", str(tmp_path), env=env)
    assert result.returncode == 2
    assert "insecure default" in result.stderr
    assert not (tmp_path / "config.json").exists()


def test_new_names_are_reported_and_a_reissue_keeps_the_ca(tmp_path):
    run("certs", "--dir", str(tmp_path), "--name", "router.site")
    ca = (tmp_path / "ca.pem").read_bytes()
    result = run("certs", "--dir", str(tmp_path), "--name", "router.site", "--name", "10.9.8.7")
    assert result.returncode == 1 and "does not cover 10.9.8.7" in result.stderr
    (tmp_path / "server.pem").unlink()
    (tmp_path / "server.key").unlink()
    assert run("certs", "--dir", str(tmp_path), "--name", "router.site", "--name", "10.9.8.7").returncode == 0
    assert (tmp_path / "ca.pem").read_bytes() == ca


def test_a_server_certificate_near_expiry_is_reissued_from_the_same_ca(tmp_path, monkeypatch):
    from sisock.router import certs

    monkeypatch.setattr(certs, "SERVER_DAYS", 10)
    certs.make_certs(tmp_path, ["router.site"])
    old, ca = (tmp_path / "server.pem").read_bytes(), (tmp_path / "ca.pem").read_bytes()
    monkeypatch.setattr(certs, "SERVER_DAYS", 825)
    assert certs.make_certs(tmp_path, ["router.site"]) == ["server.pem", "server.key"]
    assert (tmp_path / "server.pem").read_bytes() != old and (tmp_path / "ca.pem").read_bytes() == ca
    assert certs.make_certs(tmp_path, ["router.site"]) == []
