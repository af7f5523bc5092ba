"""The real provisioning test: boot systemd in a fresh Debian bookworm root,
run the playbook over SSH with the single-machine example inventory (ports
moved off the host's), and check the site works and a re-run changes nothing.

Slow on a cold machine (debootstrap, apt, pip); a warm one reuses the cached
root and the guest's apt and pip caches under /var/cache/sisock-test.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from sisock import wamp
from sisock.config import INSECURE_DEFAULT_SECRET, Config
from sisock.servers.weather_example import generate as generate_weather
from sisock.wamp_thread import ThreadedSession
from tests.provision.guest import Guest
from tests.support import free_port, wait_until

pytestmark = [pytest.mark.provision, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
#: component -> the module that must exist in the tree for it to be deployed
COMPONENTS = {
    "hub": "sisock.hub",
    "weather": "sisock.servers.weather",
    "http": "sisock.http.server",
    "g3-file-scanner": "sisock.g3.scanner",
    "g3-reader": "sisock.servers.g3_reader",
}
#: the database passwords the test's vault.yml sets
SCANNER_PASSWORD, READER_PASSWORD = "provision-scanner", "provision-reader"
#: where the example inventory puts the g3 archive (sisock_data_directory)
G3_DIRECTORY = "data/g3"
#: example weather files up to now (the shipped ones are too old for /search's window)
WEATHER_DIRECTORY = "data/weather"


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _snapshot(dest: Path) -> Path:
    """A copy of what the playbook deploys, so that edits in the tree meanwhile change nothing."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "pki")
    for name in ("sisock", "deploy", "etc", "docs"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, dest / name, ignore=ignore)
    shutil.copy(REPO / "setup.py", dest / "setup.py")
    return dest


def _write_archive(directory: Path) -> None:
    """Half an hour of two OCS feeds, up to now, in the aggregator's layout."""
    from sisock.g3.writer import Archive, example_providers

    now = time.time()
    Archive(example_providers(2, 2, (1.0,)), now - 1800, now, file_seconds=600).write(directory)


class Site:
    """The guest provisioned once for the whole module."""

    def __init__(self, work: Path, guest: Guest) -> None:
        self.work = work
        self.guest = guest
        self.src = _snapshot(work / "src")
        self.components = [c for c, module in COMPONENTS.items() if _exists(module)]
        self.ports = {"tls": free_port(), "ocs": free_port(), "http": free_port(), "mysql": free_port()}
        if "g3-file-scanner" in self.components:
            _write_archive(guest.root / G3_DIRECTORY)
        generate_weather(guest.root / WEATHER_DIRECTORY, end=time.time())
        self.inventory = work / "inventory"
        shutil.copytree(self.src / "deploy/ansible/inventory/single", self.inventory)
        component_env = yaml.safe_load((self.inventory / "group_vars/all/main.yml").read_text())["sisock_component_env"]
        # the README's secrets step: vault.yml from its example (left unencrypted here)
        vault = yaml.safe_load((self.inventory / "group_vars/all/vault.yml.example").read_text())
        assert set(vault) == {"sisock_wamp_secret", "mysql_scanner_password", "mysql_reader_password"}
        (self.inventory / "group_vars/all/vault.yml").write_text(yaml.safe_dump({
            "sisock_wamp_secret": INSECURE_DEFAULT_SECRET,  # the router is on the guest's loopback
            "mysql_scanner_password": SCANNER_PASSWORD, "mysql_reader_password": READER_PASSWORD}))
        component_env["weather"] = {"DATA_DIRECTORY": f"/{WEATHER_DIRECTORY}"}
        # each component's metrics on a free port (the layout's defaults may be taken on this machine)
        self.metrics = {c: free_port() for c in self.components}
        for component, port in self.metrics.items():
            component_env[component] = dict(component_env.get(component) or {}, METRICS_PORT=port)
        host = {"sisock-host": guest.inventory_host()}
        (self.inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
            "sisock": {"hosts": host}, "sisock_router": {"hosts": host},
            "sisock_database": {"hosts": host}, "grafana": {"hosts": host}}}}))
        self.extra = work / "extra.json"
        self.extra.write_text(json.dumps({
            "sisock_components": self.components,
            "sisock_component_env": component_env,
            "sisock_crossbar_tls_port": self.ports["tls"],
            "sisock_crossbar_ocs_port": self.ports["ocs"],
            "sisock_http_port": self.ports["http"],
            "mysql_port": self.ports["mysql"],
            "grafana_provisioning_url": f"http://127.0.0.1:{self.ports['http']}",
        }))

    def play(self) -> str:
        """Run the playbook; return its output (the test fails if it does)."""
        env = dict(os.environ, ANSIBLE_CONFIG=str(self.src / "deploy/ansible/ansible.cfg"),
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
        result = subprocess.run(
            [str(ANSIBLE_PLAYBOOK), "-i", str(self.inventory), str(self.src / "deploy/ansible/site.yml"),
             "-e", f"@{self.extra}"],
            env=env, capture_output=True, text=True, timeout=1800)
        (self.work / f"play-{time.monotonic_ns()}.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            journal = self.guest.ssh("journalctl --no-pager -n 150 -u 'sisock-*'", check=False).stdout
            raise AssertionError(f"ansible-playbook failed:\n{result.stdout[-6000:]}{result.stderr[-2000:]}\n"
                                 f"guest journal:\n{journal}")
        return result.stdout

    def config(self) -> Config:
        """Client settings for the guest's router."""
        return Config(crossbar_tls_port=self.ports["tls"], crossbar_ocs_port=self.ports["ocs"],
                      crossbar_ca_cert=self.inventory / "pki/ca.pem", wamp_secret=INSECURE_DEFAULT_SECRET)

    def http(self, path: str, body: dict | None = None):
        """(status, decoded JSON or text) of sisock-http in the guest."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.ports['http']}{path}", data=data,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text


def _changed(recap: str) -> dict:
    return {host: int(n) for host, n in re.findall(r"^(\S+)\s*:.*\bchanged=(\d+)", recap, re.M)}


@pytest.fixture(scope="module")
def site():
    if os.geteuid() != 0:
        pytest.skip("booting systemd in a root needs root")
    # not under pytest's base temp, which a concurrent pytest run may prune
    work = Path(tempfile.mkdtemp(prefix="sisock-provision-", dir="/var/tmp"))
    guest = Guest(work)
    try:
        guest.start()
        site = Site(work, guest)
        site.first_run = site.play()
        yield site
    finally:
        guest.stop()
        shutil.rmtree(work, ignore_errors=True)


def _nodes(site: Site):
    session = ThreadedSession(site.config()).start()
    try:
        if not session.wait_connected(5):
            return None
        return sorted(n["name"] for n in session.call(wamp.HUB_LIST, timeout=5))
    except Exception:
        return None
    finally:
        session.stop()


def test_every_unit_of_the_target_is_active(site):
    expected = {f"sisock-{c}.service" for c in site.components} | {"sisock-crossbar.service"}
    wanted = site.guest.ssh("systemctl list-dependencies --plain --no-pager sisock.target").stdout
    assert expected <= {line.strip() for line in wanted.splitlines()}
    for unit in sorted(expected) + ["sisock.target"]:
        wait_until(lambda unit=unit: site.guest.ssh(f"systemctl is-active {unit}",
                                                    check=False).stdout.strip() == "active",
                   60, f"{unit} to be active")
    env = site.guest.ssh("stat -c '%a %U:%G' /etc/sisock/sisock.env").stdout.split()
    assert env == ["640", "root:sisock"]
    users = site.guest.ssh("ps -o user= -C sisock,crossbar | sort -u", check=False).stdout.split()
    assert "root" not in users


def _names(text: str) -> list:
    return re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, re.M)


def test_env_file_has_the_shape_of_the_example_and_the_inventory_values(site):
    text = site.guest.ssh("cat /etc/sisock/sisock.env").stdout
    assert _names(text) == _names((REPO / "etc/sisock.env.example").read_text())
    assert f"CROSSBAR_TLS_PORT={site.ports['tls']}\n" in text
    assert f"SQL_PORT={site.ports['mysql']}\n" in text
    scanner = site.guest.ssh("cat /etc/sisock/sisock-g3-file-scanner.env").stdout
    assert "SQL_USER=sisock_scanner\n" in scanner


def test_data_nodes_join_the_router_over_tls(site):
    assert wait_until(lambda: "apex_archive" in (_nodes(site) or []), 60, "apex_archive on the hub")


def test_http_serves_the_weather_fields(site):
    if "http" not in site.components:
        pytest.skip("sisock.http.server is not in the tree yet")
    status, _ = site.http("/")
    assert status == 200
    wait_until(lambda: any(t.startswith("apex_archive::") for t in _search(site)), 60, "apex_archive in /search")


def _search(site: Site) -> list:
    """The targets /search lists; none while sisock-http does not answer."""
    try:
        return site.http("/search", {"target": ""})[1]
    except OSError:
        return []


def _listening(port: int) -> set:
    """The local addresses (hex, as /proc/net/tcp* gives them) listening on ``port`` (the guest shares our network)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_metrics_listen_on_loopback_only_and_the_documented_scrape_job_scrapes_them(site, tmp_path):
    """Each component's METRICS_PORT listens on 127.0.0.1 and nowhere else, and a real Prometheus with
    docs/monitoring.md's job finds every target up, each saying which component it is."""
    for component, port in site.metrics.items():
        wait_until(lambda port=port: _listening(port), 60, f"{component}'s metrics port")
        assert _listening(port) == {"0100007F"}, (component, _listening(port))
    if shutil.which("prometheus") is None:  # Debian's package, as root (this test's other tools come the same way)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), capture_output=True, timeout=600)
    job = re.search(r"```yaml\n(scrape_configs:.*?)```", (REPO / "docs/monitoring.md").read_text(), re.S)[1]
    config = yaml.safe_load(job)
    config["scrape_configs"][0]["scrape_interval"] = "1s"  # the documented job, only faster for the test
    config["scrape_configs"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{port}" for port in site.metrics.values()], "labels": {"site_host": "sisock-host"}}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    prometheus = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp_path / 'data'}",
                                   f"--web.listen-address=127.0.0.1:{port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def query(expression: str) -> list:
        url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(expression)}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.loads(answer.read())["data"]["result"]

    try:
        up = wait_until(lambda: (found := _attempt(lambda: query('up{job="sisock"}'))) and len(found) == len(
            site.metrics) and all(r["value"][1] == "1" for r in found) and found, 90, "every target up")
        assert {r["metric"]["site_host"] for r in up} == {"sisock-host"}
        built = wait_until(lambda: _attempt(lambda: query("sisock_build_info")), 30, "sisock_build_info")
        assert {r["metric"]["component"] for r in built} == set(site.metrics)
    finally:
        prometheus.terminate()
        prometheus.wait(30)


def _attempt(fn):
    try:
        return fn()
    except (OSError, ValueError, KeyError):
        return None


def test_status_reads_the_site_env_file_and_every_unit(site):
    """``sisock status`` on the provisioned host: the router, the hub, every unit active with its status line."""
    def status():
        run = site.guest.ssh("SISOCK_ENV_FILE=/etc/sisock/sisock.env /opt/sisock/venv/bin/sisock status --json",
                             check=False)
        return run.returncode, json.loads(run.stdout) if run.stdout.strip() else {}
    code, report = wait_until(lambda: (r := status())[0] == 0 and r, 90, "sisock status to say all is well")
    units = {u["unit"]: u for u in report["units"]}
    assert {f"sisock-{c}.service" for c in site.components} | {"sisock-crossbar.service"} <= set(units)
    assert all(u["active"] == "active" for u in units.values())
    assert units["sisock-hub.service"]["status"].startswith("hub: ")
    assert report["health"] and report["router"]["reachable"]
    site.guest.ssh("systemctl stop sisock-weather.service")
    try:
        code, report = wait_until(lambda: (r := status())[0] == 1 and r, 60, "sisock status to say something is wrong")
        assert any("sisock-weather.service is inactive" in p for p in report["problems"]), report["problems"]
    finally:
        site.guest.ssh("systemctl start sisock-weather.service")


def test_stopping_the_g3_reader_drops_its_fields_and_starting_brings_them_back(site):
    if not {"g3-reader", "g3-file-scanner", "http"} <= set(site.components):
        pytest.skip("the g3 reader, scanner or sisock-http is not in the tree yet")
    has_g3 = lambda: any(t.startswith("g3_reader::") for t in _search(site))  # noqa: E731
    wait_until(has_g3, 90, "g3_reader fields in /search")
    site.guest.ssh("systemctl stop sisock-g3-reader.service")
    wait_until(lambda: not has_g3(), 30, "g3_reader fields to leave /search")
    assert "apex_archive" in (_nodes(site) or [])
    site.guest.ssh("systemctl start sisock-g3-reader.service")
    wait_until(has_g3, 60, "g3_reader fields back in /search")


def test_router_restart_is_served_again_within_30_s(site):
    site.guest.ssh("systemctl restart sisock-crossbar.service")
    start = time.monotonic()
    wait_until(lambda: "apex_archive" in (_nodes(site) or []), 30, "apex_archive back on the hub")
    if "http" in site.components:
        remaining = 30 - (time.monotonic() - start)
        wait_until(lambda: any(t.startswith("apex_archive::") for t in _search(site)), remaining,
                   "apex_archive back in /search")
    assert time.monotonic() - start < 30


def test_second_run_changes_nothing(site):
    recap = site.play()
    assert _changed(recap) == {"sisock-host": 0}, recap[-6000:]


def test_database_reader_only_reads_and_scanner_writes(site):
    def sql(user: str, password: str, statement: str):
        return site.guest.ssh(f"mariadb -h 127.0.0.1 -P {site.ports['mysql']} -u {user} -p{password} sisock "
                              f"-e '{statement}'", check=False)
    assert sql("sisock_scanner", SCANNER_PASSWORD, "CREATE TABLE probe (i INT)").returncode == 0
    assert sql("sisock_reader", READER_PASSWORD, "SELECT COUNT(*) FROM probe").returncode == 0
    denied = sql("sisock_reader", READER_PASSWORD, "INSERT INTO probe VALUES (1)")
    assert denied.returncode != 0 and "denied" in denied.stderr
    assert sql("sisock_scanner", SCANNER_PASSWORD, "DROP TABLE probe").returncode == 0


def test_upgrade_reinstalls_changed_source_and_restarts_the_components(site):
    started = "systemctl show -p ExecMainStartTimestampMonotonic --value sisock-hub.service"
    before = site.guest.ssh(started).stdout
    init = site.src / "sisock/__init__.py"
    init.write_text(init.read_text() + "# upgraded\n")
    recap = site.play()
    assert _changed(recap)["sisock-host"] > 0
    assert "# upgraded" in site.guest.ssh("cat /opt/sisock/venv/lib/python3*/site-packages/sisock/__init__.py").stdout
    assert site.guest.ssh(started).stdout != before
    wait_until(lambda: "apex_archive" in (_nodes(site) or []), 30, "apex_archive back on the hub")
