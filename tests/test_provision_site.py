"""The multi-host provisioning test: three booted systemd roots, each in its own network
namespace on a private /24 (a bridge on this machine, which is the control machine at .1),
provisioned by ONE ``ansible-playbook`` run over SSH with an inventory made from
``deploy/ansible/inventory/site`` (router host: crossbar, hub, http; database host: MariaDB,
g3-file-scanner, g3-reader on a small archive; data host: sensors, a ``sisock-data-feed@``
instance, and a stand-in OCS agent of ours publishing on the router's OCS port).

Hermetic: the guests have no route out. They boot from a cached root that already holds the
play's Debian packages (tests/provision/site_root.sh; the play's apt tasks find their cache
fresh), and their pip installs from a wheelhouse built on this machine with its own pip
configuration (tests/provision/hermetic.py), bind-mounted read-only, with ``no-index``. Both are
cached under /var/cache/sisock-test beside the single-host test's root, from which they derive.
Namespaces, links and guests are removed in the fixture's finalizer, also on failure.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests import netns
from tests.provision.guest import Guest
from tests.provision.hermetic import site_root, wheelhouse
from tests.provision.lan import Lan
from tests.support import wait_until
from tests.test_provision import _changed, _snapshot, _write_archive

pytestmark = [pytest.mark.provision, pytest.mark.timeout(2400)]

REPO = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
#: inventory name -> (last octet, role in the example inventory's hosts.yml)
HOSTS = {"sk11-router": (10, "sisock_router"), "sk11-db": (11, "sisock_database"), "sk11-data": (12, "sisock_data")}
SECRETS = {"sisock_wamp_secret": "sk11-wamp-secret-of-the-test", "mysql_scanner_password": "sk11-scanner",
           "mysql_reader_password": "sk11-reader", "sisock_http_password": "sk11-http-password"}
HTTP_USER = "grafana"
#: the example data host's data-feed (TARGET LSA22YE) is fed by our stand-in agent
FEED_NODE, FEED_TARGET, FEED_FIELD = "lsa22ye", "LSA22YE", "channel_01"
ARCHIVE = "data/hk"
UNITS = {"sk11-router": ["sisock-crossbar", "sisock-hub", "sisock-http"],
         "sk11-db": ["mariadb", "sisock-g3-file-scanner", "sisock-g3-reader"],
         "sk11-data": ["sisock-sensors", f"sisock-data-feed@{FEED_NODE}", "sk11-ocs-agent"]}

#: run on the router host: a sisock-http request with the credentials, verified against the site CA
HTTP_CLIENT = r"""
import base64, json, ssl, sys, urllib.request
path, body, user, password = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.create_default_context(cafile="/etc/sisock/tls/ca.pem")
request = urllib.request.Request("https://sk11-router:5000" + path, data=body.encode() or None, headers={
    "Content-Type": "application/json",
    "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()})
try:
    with urllib.request.urlopen(request, context=context, timeout=20) as answer:
        print(json.dumps([answer.status, json.load(answer)]))
except urllib.error.HTTPError as error:
    print(json.dumps([error.code, json.load(error)]))
"""


class MultiSite:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.lan = Lan()
        self.src = _snapshot(work / "src")
        self.wheels = wheelhouse()
        names = "".join(f"{self.lan.address(last)} {name}\n" for name, (last, _) in HOSTS.items())
        self.guests = {}
        for name, (last, _) in HOSTS.items():
            ns = self.lan.add(name.removeprefix(netns.PREFIX), last)
            self.guests[name] = Guest(work / name, binds=[self.wheels], name=name, address=self.lan.address(last),
                                      netns=ns.prefix, hosts=names)
        self.address = {name: guest.address for name, guest in self.guests.items()}
        self.inventory = self._inventory()

    def boot(self) -> None:
        root = site_root()
        for guest in self.guests.values():
            guest.prepare(root)
            (guest.root / "etc/pip.conf").write_text(f"[global]\nno-index = true\nfind-links = {self.wheels}\n")
        _write_archive(self.guests["sk11-db"].root / ARCHIVE)
        for guest in self.guests.values():
            guest.boot()

    def _inventory(self) -> Path:
        """deploy/ansible/inventory/site with this test's hosts, addresses and secrets."""
        inventory = self.work / "inventory"
        shutil.copytree(self.src / "deploy/ansible/inventory/site", inventory)
        example = yaml.safe_load((inventory / "hosts.yml").read_text())["all"]["children"]
        vault = yaml.safe_load((inventory / "group_vars/all/vault.yml.example").read_text())
        assert set(vault) == set(SECRETS)
        (inventory / "group_vars/all/vault.yml").write_text(yaml.safe_dump(SECRETS))
        children = {"sisock": example["sisock"], "grafana": {"hosts": {"sk11-router": None}}}
        for name, (_, group) in HOSTS.items():
            host = dict(next(iter(example[group]["hosts"].values())), **self.guests[name].inventory_host())
            children[group] = {"hosts": {name: host}}
        router, database, data = (children[g]["hosts"][n] for n, (_, g) in HOSTS.items())
        router["sisock_components"] = ["hub", "http"]  # the example's archive servers need archives
        database["sisock_data_directory"] = f"/{ARCHIVE}"
        database["sisock_sql_host"] = self.address["sk11-db"]  # over the network, as the router host reaches it
        assert data["sisock_data_feeds"][0]["env"]["NAME"] == FEED_NODE
        (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": children}}))
        self.extra = self.work / "extra.json"
        self.extra.write_text(json.dumps({
            "sisock_crossbar_host": "sk11-router",
            "certificates_server_names": ["sk11-router", self.address["sk11-router"]],
            "sisock_http_host": self.address["sk11-router"],
            "grafana_provisioning_url": "https://sk11-router:5000",
            "sisock_crossbar_ocs_interface": self.address["sk11-router"],
            "mysql_bind_address": self.address["sk11-db"],
            "mysql_client_hosts": ["localhost", self.address["sk11-db"], self.address["sk11-router"]],
        }))
        return inventory

    def play(self) -> str:
        env = dict(os.environ, ANSIBLE_CONFIG=str(self.src / "deploy/ansible/ansible.cfg"), ANSIBLE_NOCOLOR="1")
        began = time.monotonic()
        result = subprocess.run([str(ANSIBLE_PLAYBOOK), "-i", str(self.inventory),
                                 str(self.src / "deploy/ansible/site.yml"), "-e", f"@{self.extra}"],
                                env=env, capture_output=True, text=True, timeout=1800)
        (self.work / f"play-{time.monotonic_ns()}.log").write_text(result.stdout + result.stderr)
        print(f"ansible-playbook over three hosts: {time.monotonic() - began:.0f} s")
        if result.returncode != 0:
            raise AssertionError(f"ansible-playbook failed:\n{result.stdout[-8000:]}{result.stderr[-2000:]}")
        return result.stdout

    def start_ocs_agent(self) -> None:
        """Our stand-in OCS agent on the data host, as a transient unit that systemd restarts."""
        data = self.guests["sk11-data"]
        shutil.copy(REPO / "tests/provision/ocs_agent.py", data.root / "root/ocs_agent.py")
        env = {"CROSSBAR_OCS_INTERFACE": self.address["sk11-router"], "CROSSBAR_OCS_PORT": "8001",
               "CROSSBAR_REALM": "test_realm", "WAMP_SECRET": "unused-on-the-ocs-port", "CROSSBAR_HOST": "sk11-router"}
        settings = " ".join(f"-E {k}={v}" for k, v in env.items())
        data.ssh(f"systemd-run --unit sk11-ocs-agent -p Restart=always -p RestartSec=1 {settings} "
                 f"/opt/sisock/venv/bin/python /root/ocs_agent.py {FEED_TARGET}")

    def http(self, path: str, body: object = None, password: str = SECRETS["sisock_http_password"]):
        """(status, JSON) of sisock-http as asked from the router host."""
        argument = "" if body is None else json.dumps(body)
        out = self.guests["sk11-router"].ssh(
            f"python3 -c {_quote(HTTP_CLIENT)} {path} {_quote(argument)} {HTTP_USER} {password}", check=False)
        try:
            return tuple(json.loads(out.stdout))
        except ValueError:
            return None, out.stdout + out.stderr

    def stop(self) -> None:
        for guest in self.guests.values():
            guest.stop()
        self.lan.delete()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


@pytest.fixture(scope="module")
def site():
    if not netns.available():
        pytest.skip("booting systemd in network namespaces needs root and iproute2")
    work = Path(tempfile.mkdtemp(prefix="sisock-site-", dir="/var/tmp"))
    began = time.monotonic()
    s = None
    try:
        s = MultiSite(work)
        s.boot()
        print(f"three guests booted in {time.monotonic() - began:.0f} s")
        s.first_run = s.play()
        s.start_ocs_agent()
        yield s
    finally:
        if s is not None:
            s.stop()
        else:
            Lan().delete()
        shutil.rmtree(work, ignore_errors=True)


def _active(site: MultiSite) -> dict:
    """host -> the expected units that are not active."""
    down = {}
    for host, units in UNITS.items():
        states = site.guests[host].ssh("systemctl is-active " + " ".join(units), check=False).stdout.split()
        down[host] = [u for u, state in zip(units, states) if state != "active"]
    return down


def _serving(site: MultiSite) -> bool:
    """/search lists the g3 fields and the live feed, and /query returns samples of both from the last minute."""
    status, names = site.http("/search", {"target": ""})
    if status != 200:
        return False
    g3 = sorted(n for n in names if n.startswith("g3_reader::"))
    if not g3 or f"{FEED_NODE}::{FEED_FIELD}" not in names:
        return False
    now = time.time()
    status, series = site.http("/query", {
        "range": {"from": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 600)),
                  "to": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now + 60))},
        "intervalMs": 1000, "maxDataPoints": 1000,
        "targets": [{"target": g3[0], "refId": "A"}, {"target": f"{FEED_NODE}::{FEED_FIELD}", "refId": "B"}]})
    if status != 200 or len(series) != 2:
        return False
    archive, live = (entry["datapoints"] for entry in series)
    return bool(archive) and bool(live) and live[-1][1] / 1000 > now - 30


def test_every_unit_on_every_host_is_active(site):
    wait_until(lambda: not any(_active(site).values()), 120, "every unit on every host to be active")
    for host in HOSTS:
        assert "root" not in site.guests[host].ssh("ps -o user= -C sisock,crossbar | sort -u", check=False).stdout



def _status(site: MultiSite, host: str, unit: str) -> str:
    return site.guests[host].ssh(f"systemctl show -p StatusText --value {unit}").stdout.strip()


def test_systemctl_status_says_what_each_component_does(site):
    wait_until(lambda: all(n in _status(site, "sk11-router", "sisock-hub") for n in ("g3_reader", FEED_NODE)), 60,
               "the hub's status to list the data nodes of the other hosts")
    assert _status(site, "sk11-router", "sisock-http").startswith("joined the router; serving Grafana on https://")
    assert _status(site, "sk11-db", "sisock-g3-file-scanner").startswith("last scan ")
    assert _status(site, "sk11-data", f"sisock-data-feed@{FEED_NODE}") == (
        f"{FEED_NODE}: joined the router and added to the hub; serving")


def test_grafana_on_the_router_host_reads_with_the_credentials(site):
    wait_until(lambda: _serving(site), 120, "/search and /query to serve the g3 fields and the live feed")
    status, answer = site.http("/search", {"target": ""}, password="wrong")
    assert status == 401 and answer == {"error": "wrong credentials"}
    datasource = site.guests["sk11-router"].ssh("cat /etc/grafana/provisioning/datasources/sisock.yml").stdout
    source = yaml.safe_load(datasource)["datasources"][0]
    assert source["basicAuthUser"] == HTTP_USER
    assert source["secureJsonData"]["basicAuthPassword"] == SECRETS["sisock_http_password"]
    assert "BEGIN CERTIFICATE" in source["secureJsonData"]["tlsCACert"]


def test_the_ocs_port_listens_on_the_private_address_only(site):
    listening = site.guests["sk11-router"].ssh("ss -Htln 'sport = :8001'").stdout
    assert [line.split()[3] for line in listening.splitlines()] == [f"{site.address['sk11-router']}:8001"]


def test_mariadb_over_the_network_lets_the_reader_touch_the_index_only(site):
    def sql(statement: str):
        return site.guests["sk11-router"].ssh(
            f"mariadb -h {site.address['sk11-db']} -u sisock_reader -p{SECRETS['mysql_reader_password']} "
            f"-N -e {_quote(statement)}", check=False)
    tables = sql("SHOW TABLES FROM sisock")
    assert tables.returncode == 0 and tables.stdout.split(), tables.stderr
    assert set(sql("SHOW DATABASES").stdout.split()) == {"information_schema", "sisock"}
    for forbidden in ("SELECT User FROM mysql.user", "CREATE DATABASE sk11_forbidden",
                      f"DELETE FROM sisock.{tables.stdout.split()[0]}"):
        refused = sql(forbidden)
        assert refused.returncode != 0 and "denied" in refused.stderr, (forbidden, refused.stdout)


def test_second_run_changes_nothing(site):
    recap = site.play()
    assert _changed(recap) == {name: 0 for name in HOSTS}, recap[-6000:]


def test_restarting_the_other_hosts_services_brings_them_back(site):
    for host in ("sk11-db", "sk11-data"):
        site.guests[host].ssh("systemctl restart sisock.target")
    wait_until(lambda: _serving(site) and not any(_active(site).values()), 120,
               "the database and data hosts' components back")


def test_router_restart_brings_every_component_on_every_host_back(site):
    wait_until(lambda: _serving(site), 120, "the site to serve before the restart")
    site.guests["sk11-router"].ssh("systemctl restart sisock-crossbar.service")
    began = time.monotonic()
    wait_until(lambda: _serving(site) and not any(_active(site).values()), 120,
               "every component back after the router's restart")
    print(f"router restart: every component on three hosts serving again after {time.monotonic() - began:.1f} s")
