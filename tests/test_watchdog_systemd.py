"""Real systemd (booted in the cached debootstrap root) kills a component whose reactor is
blocked, through the watchdog that sisock.wamp.run feeds, and restarts it.

The guest runs this checkout and its venv, bind-mounted read-only at the same paths (the host
is Debian bookworm too), so nothing is installed: the boot takes a few seconds on a warm cache.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.provision.guest import Guest
from tests.support import wait_until

pytestmark = [pytest.mark.provision, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parent.parent
UNIT = "sk11-hung.service"


@pytest.fixture(scope="module")
def guest():
    if os.geteuid() != 0:
        pytest.skip("booting systemd in a root needs root")
    work = Path(tempfile.mkdtemp(prefix="sisock-watchdog-", dir="/var/tmp"))
    binds = sorted({REPO, Path(sys.prefix), Path(sys.base_prefix)})
    g = Guest(work, binds=binds)
    try:
        g.start()
        yield g
    finally:
        g.stop()
        shutil.rmtree(work, ignore_errors=True)


def _show(guest: Guest, prop: str) -> str:
    return guest.ssh(f"systemctl show -p {prop} --value {UNIT}").stdout.strip()


def test_a_blocked_reactor_is_killed_by_the_watchdog_and_restarted(guest):
    (guest.root / "etc/systemd/system" / UNIT).write_text(f"""[Unit]
Description=sisock test component whose reactor blocks once
[Service]
Type=notify
NotifyAccess=main
WatchdogSec=3s
Restart=on-failure
RestartSec=1s
Environment=HUNG_NODE_MARK=/run/sk11-hung.mark PYTHONDONTWRITEBYTECODE=1
ExecStart={sys.executable} {REPO}/tests/nodes/hung_node.py
""")
    guest.ssh("systemctl daemon-reload")
    guest.ssh(f"systemctl start {UNIT}", timeout=60)  # returns once the component said READY=1
    assert _show(guest, "StatusText") == "hung-node: blocking the reactor in 2 s"
    wait_until(lambda: _show(guest, "NRestarts") == "1", 60, "systemd to restart the hung component")
    journal = guest.ssh(f"journalctl --no-pager -u {UNIT}").stdout
    assert "Watchdog timeout" in journal, journal[-3000:]
    wait_until(lambda: _show(guest, "ActiveState") == "active", 30, "the restarted component to be ready")
    assert _show(guest, "StatusText") == "hung-node: healthy"
    # fed from the reactor: alive for three more watchdog periods without another restart
    time.sleep(9)
    assert (_show(guest, "ActiveState"), _show(guest, "NRestarts")) == ("active", "1")
