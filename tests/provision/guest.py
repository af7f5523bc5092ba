"""A Debian bookworm machine for the provisioning test: real systemd booted in
a cached debootstrap root (docs/design.md, "Machines for tests"),
reached by SSH on a free loopback port like a site machine."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import List, Sequence

from tests.support import free_port, port_open, wait_until

HERE = Path(__file__).resolve().parent
#: the cached root and the guest's apt and pip caches
CACHE = Path(os.environ.get("SISOCK_TEST_CACHE", "/var/cache/sisock-test"))
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=error"]


def cached_root() -> Path:
    """The pristine root, built by debootstrap on the first call of this machine."""
    out = subprocess.run([str(HERE / "build_root.sh")], check=True, capture_output=True, text=True,
                         env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SISOCK_TEST_CACHE": str(CACHE)})
    return Path(out.stdout.strip().splitlines()[-1])


class Guest:
    """A booted copy of the cached root under ``work``; ``stop()`` ends it."""

    def __init__(self, work: Path, binds: Sequence[Path] = (), name: str = "sisock-guest",
                 address: str = "127.0.0.1", netns: Sequence[str] = (), hosts: str = "") -> None:
        self.work = work
        #: host folders the guest sees read-only at the same paths
        self.binds = list(binds)
        self.name = name
        #: where its sshd listens; ``netns`` is the command prefix that enters its network namespace
        self.address = address
        self.netns = list(netns)
        self.hosts = hosts
        self.root = work / "root"
        self.key = work / "id_ed25519"
        self.ssh_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = None

    def start(self) -> "Guest":
        return self.prepare(cached_root()).boot()

    def prepare(self, source: Path) -> "Guest":
        """Copy ``source`` (a cached root) and give the copy its SSH key, name and addresses."""
        self.work.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(self.root)], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        ssh_dir = self.root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.copy(f"{self.key}.pub", ssh_dir / "authorized_keys")
        (self.root / "etc/ssh/sshd_config.d/test.conf").write_text(
            f"Port {self.ssh_port}\nListenAddress {self.address}\n")
        shutil.copy("/etc/resolv.conf", self.root / "etc/resolv.conf")
        (self.root / "etc/hostname").write_text(f"{self.name}\n")
        (self.root / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {self.name}\n{self.hosts}")
        return self

    def boot(self) -> "Guest":
        """Boot systemd in the prepared root; return once its sshd answers."""
        self.log = open(self.work / "boot.log", "w")
        self.proc = subprocess.Popen([*self.netns, "unshare", "-fpmu", "--mount-proc", "--kill-child",
                                      str(HERE / "boot.sh"), str(self.root)],
                                     env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CACHE_DIR": str(CACHE),
                                          "BIND_RO": ":".join(str(b) for b in self.binds)},
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: port_open(self.ssh_port, self.address) or self.proc.poll() is not None, 60,
                   f"{self.name}'s sshd")
        assert self.proc.poll() is None, (self.work / "boot.log").read_text()
        return self

    def ssh(self, command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a shell command in the guest as root."""
        args = ["ssh", "-i", str(self.key), "-p", str(self.ssh_port), *SSH_OPTIONS, f"root@{self.address}", command]
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"guest: {command!r} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    def inventory_host(self) -> dict:
        """Ansible connection variables for this guest."""
        return {
            "ansible_host": self.address,
            "ansible_port": self.ssh_port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": " ".join(SSH_OPTIONS),
        }

    def units(self, pattern: str) -> List[str]:
        """Names of the loaded units matching ``pattern``."""
        out = self.ssh(f"systemctl list-units --all --plain --no-legend '{pattern}'").stdout
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        """Kill the guest's PID namespace (the unshare process we started) and drop its files."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if self.log:
            self.log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if subprocess.run(["rm", "-rf", str(self.root)]).returncode == 0:
                break
            time.sleep(1)
