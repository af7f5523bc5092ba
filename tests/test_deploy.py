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

from sisock.cli import COMMANDS, LONG_RUNNING
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
    components = LONG_RUNNING  # the helpers (certs, crossbar-config, demo, status) have no unit
    assert components < set(COMMANDS)
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
         "-e", f"sisock_wamp_secret={secret}", "-e", "mysql_scanner_password=scanner-secret",
         "-e", "mysql_reader_password=reader-secret", "-e", "ansible_connection=local",
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, env=_ansible_env())


def test_play_refuses_the_insecure_secret_off_loopback():
    result = _check_secret("10.10.0.10", INSECURE_DEFAULT_SECRET)
    assert result.returncode != 0
    assert "set a secret of your own" in result.stdout


def test_play_accepts_the_insecure_secret_on_loopback_and_a_real_one_anywhere():
    assert _check_secret("127.0.0.1", INSECURE_DEFAULT_SECRET).returncode == 0
    assert _check_secret("10.10.0.10", "a-site-secret-of-its-own").returncode == 0


# -- the README's deploy section, run as written ---------------------------------------------

README = REPO / "README.md"
VAULT_PASSWORD = "readme-test-vault-password"


def _readme_blocks(heading: str) -> list:
    """The indented command lines under ``### heading`` of the README's deploy section."""
    section = README.read_text().split("## Deploying to a site", 1)[1]
    part = section.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    return [line[4:] for line in part.splitlines() if line.startswith("    ") and not line.startswith("     ")]


def _in_terminal(script: str, env: dict, cwd: Path, timeout: float = 300) -> tuple:
    """Run ``bash -c script`` on a terminal of its own (Ansible asks for the vault password
    there), answering every password prompt; return (exit code, output)."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.chdir(cwd)
            os.execvpe("bash", ["bash", "-e", "-c", script], env)
        finally:
            os._exit(127)
    output, answered = b"", 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closes when bash exits
                break
            if not chunk:
                break
            output += chunk
            if re.search(rb"password: *$", output[answered:], re.I):
                os.write(fd, VAULT_PASSWORD.encode() + b"\n")
                answered = len(output)
    finally:
        os.close(fd)
    if time.monotonic() >= deadline:
        os.kill(pid, 9)
    status = os.waitpid(pid, 0)[1]
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.parametrize("inventory", ["single", "site"])
def test_the_readme_deploy_commands_work_as_written(tmp_path, inventory):
    """The README's inventory, secrets and playbook lines, verbatim from the checkout's top folder
    with HOME elsewhere; the play runs in --check mode on this machine (its always-tagged checks,
    which read the vaulted secrets), and must read deploy/ansible/ansible.cfg."""
    setup = _readme_blocks("Inventory and secrets")
    command = _readme_blocks("The command")
    assert setup[0] == "cp -r deploy/ansible/inventory/single ~/site-inventory" and len(command) == 1
    setup[0] = setup[0].replace("inventory/single", f"inventory/{inventory}")  # "the same lines with .../site"
    editor = tmp_path / "editor"
    # what a person does in $EDITOR: replace the example's placeholders
    editor.write_text('#!/bin/sh\nsed -i -e "s/CHANGE-ME[A-Za-z-]*/readme-test-secret/" "$@"\n')
    editor.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}  # nothing preset: the cfg must be found
    env.update(HOME=str(home), EDITOR=str(editor), ANSIBLE_NOCOLOR="1")
    if (REPO / ".venv/bin").resolve() != BIN.resolve():  # a checkout whose venv lives elsewhere (a git worktree)
        env["PATH"] = f"{BIN}:{env['PATH']}"
        setup = [line.replace(".venv/bin/", "") for line in setup]
        command = [line.replace("../../.venv/bin/", "") for line in command]
    dry_run = (f" --check --tags always -v -e ansible_connection=local"
               f" -e ansible_python_interpreter={sys.executable}")
    code, output = _in_terminal("\n".join(setup + [command[0] + dry_run]), env, REPO)
    assert code == 0, output[-6000:]
    assert f"Using {ANSIBLE / 'ansible.cfg'} as config file" in output, output[:3000]
    vault = home / "site-inventory/group_vars/all/vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;"), "the secrets were not encrypted"
    assert "failed=0" in output and "unreachable=0" in output, output[-3000:]
    # the checks that read the decrypted secrets ran
    assert "Refuse the placeholder secret of vault.yml.example" in output
    assert "Refuse empty or placeholder database passwords" in output


def test_play_refuses_the_placeholder_secret_of_the_example():
    result = _check_secret("10.10.0.10", "CHANGE-ME-long-random-secret")
    assert result.returncode != 0
    assert "still the CHANGE-ME placeholder" in result.stdout
