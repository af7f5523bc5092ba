"""Fast checks of the deployment files: every unit verifies with systemd, the
playbook parses and passes ansible-lint, and the example env file lists every
setting sisock reads, with values sisock accepts."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sisock.cli import COMMANDS
from sisock.config import INSECURE_DEFAULT_SECRET, VARIABLES, load

REPO = Path(__file__).resolve().parent.parent
UNITS = REPO / "deploy/systemd"
ANSIBLE = REPO / "deploy/ansible"
ENV_EXAMPLE = REPO / "etc/sisock.env.example"
BIN = Path(sys.executable).parent
SERVICES = sorted(p.name for p in UNITS.glob("*.service") if "@." not in p.name)
VARIABLE_LINE = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$")


def _example_variables() -> dict:
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = VARIABLE_LINE.match(line)
        if match:
            found[match.group(1)] = (match.group(2), not line.startswith("#"))
    return found


@pytest.fixture(scope="module")
def stub_root(tmp_path_factory):
    """A root with the host's systemd units, ours in /etc, and stubs where the venvs go."""
    root = tmp_path_factory.mktemp("root")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(UNITS, root / "etc/systemd/system")
    for exe in ("opt/sisock/venv/bin/sisock", "opt/sisock/crossbar/bin/crossbar"):
        (root / exe).parent.mkdir(parents=True)
        (root / exe).write_text("#!/bin/sh\n")
        (root / exe).chmod(0o755)
    return root


def _verify(root: Path, unit: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", "--man=no", unit],
                          capture_output=True, text=True, cwd=root / "etc/systemd/system")


@pytest.mark.parametrize("unit", SERVICES + ["sisock.target", "sisock-data-feed@lsa22ye.service"])
def test_unit_verifies_cleanly(stub_root, unit):
    result = _verify(stub_root, unit)
    # unknown keys and bad values are only warnings: any output is a failure
    noise = [line for line in result.stderr.splitlines() if "Failed to parse system call" not in line]
    assert result.returncode == 0 and not noise, result.stderr


def test_verify_catches_a_typo(stub_root):
    bad = stub_root / "etc/systemd/system/sisock-typo.service"
    bad.write_text((UNITS / "sisock-hub.service").read_text().replace("ExecStart=", "ExecStrat=/bin/true\nExecStart="))
    try:
        assert "Unknown key" in _verify(stub_root, "sisock-typo.service").stderr
    finally:
        bad.unlink()


def test_every_component_has_a_unit_wanted_by_the_target():
    components = set(COMMANDS) - {"certs", "crossbar-config", "demo"}
    for name in components:
        unit = "sisock-data-feed@.service" if name == "data-feed" else f"sisock-{name}.service"
        text = (UNITS / unit).read_text()
        assert f"ExecStart=/opt/sisock/venv/bin/sisock {name}\n" in text, unit
        assert "WantedBy=sisock.target" in text, unit
    crossbar = (UNITS / "sisock-crossbar.service").read_text()
    assert "sisock crossbar-config --dir /var/lib/sisock/crossbar" in crossbar


def test_shared_drop_in_sandboxes_every_unit():
    text = (UNITS / "sisock-.service.d/10-sisock.conf").read_text()
    for setting in ("User=sisock", "EnvironmentFile=/etc/sisock/sisock.env", "NoNewPrivileges=yes",
                    "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "Restart=on-failure",
                    "PartOf=sisock.target"):
        assert setting in text


def test_env_example_lists_every_variable():
    assert set(_example_variables()) == set(VARIABLES)


def test_env_example_loads_with_its_own_values(tmp_path):
    copy = tmp_path / "sisock.env"
    copy.write_text(ENV_EXAMPLE.read_text())
    copy.chmod(0o600)
    config = load({"SISOCK_ENV_FILE": str(copy)})
    for variable, (value, active) in _example_variables().items():
        if active:
            assert str(getattr(config, variable.lower())) in (value, f"{value}.0"), variable


def test_role_knows_the_insecure_secret():
    defaults = yaml.safe_load((ANSIBLE / "roles/sisock/defaults/main.yml").read_text())
    assert defaults["sisock_insecure_secret"] == INSECURE_DEFAULT_SECRET


def _ansible_env() -> dict:
    return dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_LOCAL_TEMP="/tmp/.ansible-tmp", ANSIBLE_REMOTE_TEMP="/tmp/.ansible-tmp")


@pytest.mark.parametrize("inventory", ["single", "site"])
def test_playbook_syntax(inventory):
    result = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "-i",
                             str(ANSIBLE / "inventory" / inventory), str(ANSIBLE / "site.yml")],
                            capture_output=True, text=True, env=_ansible_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_passes():
    result = subprocess.run([str(BIN / "ansible-lint"), "--offline", "--nocolor", "site.yml", "roles"],
                            capture_output=True, text=True, cwd=ANSIBLE, env=_ansible_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _check_secret(host: str, secret: str) -> subprocess.CompletedProcess:
    """Run only the play's always-tagged checks against the example host, locally."""
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(ANSIBLE / "inventory/single"), str(ANSIBLE / "site.yml"),
         "--tags", "always", "--check", "--limit", "sisock-host", "-e", f"sisock_crossbar_host={host}",
         "-e", f"sisock_wamp_secret={secret}", "-e", "ansible_connection=local",
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, env=_ansible_env())


def test_play_refuses_the_insecure_secret_off_loopback():
    result = _check_secret("10.10.0.10", INSECURE_DEFAULT_SECRET)
    assert result.returncode != 0
    assert "set a secret of your own" in result.stdout


def test_play_accepts_the_insecure_secret_on_loopback_and_a_real_one_anywhere():
    assert _check_secret("127.0.0.1", INSECURE_DEFAULT_SECRET).returncode == 0
    assert _check_secret("10.10.0.10", "a-site-secret-of-its-own").returncode == 0
