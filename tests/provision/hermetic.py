"""What the multi-host test's guests install from, without a route to any registry: a root
with the play's Debian packages already in it (site_root.sh) and a wheelhouse of every Python
package the play pip-installs, built on this machine from its own pip configuration."""
from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.provision.guest import CACHE, HERE

REPO = HERE.parent.parent
#: what the sisock and crossbar roles install besides sisock's own requirements
PLAY_PACKAGES = ["pip>=24", "setuptools>=68", "wheel", "numpy>=2", "crossbar>=23.1"]


def site_root() -> Path:
    """The cached root with the play's Debian packages (built once per package list)."""
    out = subprocess.run([str(HERE / "site_root.sh")], check=True, capture_output=True, text=True,
                         env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SISOCK_TEST_CACHE": str(CACHE)})
    return Path(out.stdout.strip().splitlines()[-1])


def _requirements() -> list:
    setup = (REPO / "setup.py").read_text()
    block = re.search(r"install_requires=\[(.*?)\]", setup, re.S)[1]
    return re.findall(r'"([^"]+)"', block)


def wheelhouse() -> Path:
    """A folder of wheels for Python 3.11 on Linux: sisock's requirements, crossbar, and bjdata
    built against NumPy 2 (as the play builds it); made once per requirement list."""
    wanted = PLAY_PACKAGES + _requirements()
    key = hashlib.sha256(" ".join(wanted + [sys.version]).encode()).hexdigest()[:16]
    folder = CACHE / f"wheelhouse-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".wheelhouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / ".complete").exists():
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "wheel", "-w", str(folder)]
        subprocess.run(pip + wanted, check=True, capture_output=True, timeout=1800)
        for built in folder.glob("bjdata-*.whl"):  # pip's isolated build links it against NumPy 1
            built.unlink()
        subprocess.run(pip + ["--no-build-isolation", "--no-deps", "bjdata"], check=True, capture_output=True,
                       timeout=600)
        (folder / ".complete").touch()
        for old in CACHE.glob("wheelhouse-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
    return folder
