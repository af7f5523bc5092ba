"""``sisock certs`` and ``sisock crossbar-config`` write what the router needs, safely."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from cryptography import x509

from tests.support import BIN, base_environment


def run(*args, env=None, umask=None, user=None):
    """``sisock ARGS``, under ``umask`` if given, as uid/gid ``user`` if given (needs root)."""
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
    return subprocess.run([*prefix, str(BIN / "sisock"), *args], env=env or base_environment(), capture_output=True,
                          text=True, timeout=60, preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


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
    (tmp_path / "s.pem").write_text("certificate\n")
    (tmp_path / "s.key").write_text("key\n")
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


def _router_env(tmp_path, **changes):
    run("certs", "--dir", str(tmp_path / "certs"))
    env = dict(base_environment(), CROSSBAR_TLS_CERT=str(tmp_path / "certs/server.pem"),
               CROSSBAR_TLS_KEY=str(tmp_path / "certs/server.key"))
    env.update(changes)
    return env


def test_modes_are_set_on_old_files_and_folders_whatever_the_umask(tmp_path):
    """A key or a router config already there, readable by everyone, is made private again."""
    certs, node = tmp_path / "certs", tmp_path / "node"
    run("certs", "--dir", str(certs))
    node.mkdir()
    (node / "config.json").write_text("{}")
    for path, loose in ((certs, 0o777), (certs / "server.key", 0o644), (certs / "ca.key", 0o666),
                        (node, 0o777), (node / "config.json", 0o666)):
        path.chmod(loose)
    result = run("certs", "--dir", str(certs), umask=0)
    assert result.returncode == 0, result.stderr
    assert f"sisock certs: {certs / 'server.key'} had mode 0644; set it to 0600" in result.stderr
    result = run("crossbar-config", "--dir", str(node), env=_router_env(tmp_path), umask=0)
    assert result.returncode == 0, result.stderr
    assert {p.name: oct(mode(p)) for p in (certs, certs / "server.key", certs / "ca.key", certs / "ca.pem",
                                            node, node / "config.json")} == {
        "certs": "0o750", "server.key": "0o600", "ca.key": "0o600", "ca.pem": "0o644",
        "node": "0o750", "config.json": "0o640"}


def test_new_folders_are_private_whatever_the_umask(tmp_path):
    assert run("certs", "--dir", str(tmp_path / "certs"), umask=0).returncode == 0
    assert run("crossbar-config", "--dir", str(tmp_path / "node"), env=_router_env(tmp_path), umask=0).returncode == 0
    assert (oct(mode(tmp_path / "certs")), oct(mode(tmp_path / "node"))) == ("0o750", "0o750")
    assert oct(mode(tmp_path / "node" / "config.json")) == "0o640"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_a_file_whose_mode_cannot_be_set_is_refused_in_one_line():
    folder = Path(tempfile.mkdtemp(prefix="sisock-test-"))  # pytest's own folders are closed to other users
    try:
        run("certs", "--dir", str(folder))
        (folder / "server.key").chmod(0o644)
        folder.chmod(0o755)
        result = run("certs", "--dir", str(folder), user=65534)  # not the owner: cannot chmod
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"sisock certs: configuration error: {folder}: cannot give it mode 0750 (Operation not permitted); "
            "chmod 0750 it or remove it"]
        assert mode(folder / "server.key") == 0o644
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("variable", ["CROSSBAR_TLS_CERT", "CROSSBAR_TLS_KEY"])
def test_crossbar_config_refuses_a_missing_certificate_file(tmp_path, variable):
    missing = str(tmp_path / "nowhere.pem")
    result = run("crossbar-config", "--dir", str(tmp_path / "node"), env=_router_env(tmp_path, **{variable: missing}))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"sisock crossbar-config: configuration error: {variable}={missing!r}: "
        "cannot read it (No such file or directory)"]
    assert not (tmp_path / "node" / "config.json").exists()
