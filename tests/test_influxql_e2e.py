"""InfluxQL end to end: sisock-http's /influxdb over .g3 files, a live data-feed and a weather node
answers every query of the corpus as a real InfluxDB 1.x does on the same samples.

The samples of tests/influx_data.py go to an influxd (the OCS publisher's schema, times to the
microsecond sisock keeps) and to sisock: the OCS feeds as .g3 files in the aggregator's layout
(hourly files, a frame a minute, a new session after the gap, two blocks in one provider, a
provider that appears late, a corrupt file beside them, the live provider's last file still
growing), the live provider's last minutes also published to a data-feed on the OCS port (the
join across the seam), and the non-OCS node as the weather example server's files. The stack
is real: router, hub, watching scanner, g3-reader, weather, data-feed, sisock-http.
"""
from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import yaml

from sisock.g3 import format as fmt
from sisock.g3.writer import HKFileWriter, Provider
from sisock.wamp_thread import ThreadedSession
from tests import influx_data
from tests.influx_support import Influxd, ensure_influxd
from tests.test_grafana_datasource import ROLE, render_template
from tests.joined_support import indexed_until
from tests.support import Processes, free_port, wait_until
from tests.test_influxql_conformance import corpus, difference, request

pytestmark = pytest.mark.skipif(not ensure_influxd(), reason="influxd is not installed (tests/provision/"
                                                            "install_influxdb.sh installs it as root)")

#: The live provider's archive ends this many seconds before now; its feed publishes the last LIVE.
SEAM, LIVE = 120.0, 300.0


def _providers(data: List[influx_data.Block]) -> Dict[str, List[influx_data.Block]]:
    """The OCS blocks of the data set by provider description."""
    out: Dict[str, List[influx_data.Block]] = {}
    for b in data:
        if b.feed:
            out.setdefault(f"{b.measurement}.feeds.{b.feed}", []).append(b)
    return out


def write_archive(top: Path, data: List[influx_data.Block], until: float) -> None:
    """The OCS blocks' samples before ``until`` as the aggregator writes them: an hourly file, a frame a
    minute per provider, a new session after the temperatures' gap."""
    providers = _providers(data)
    descriptions = sorted(providers)
    specs = [Provider(d, ()) for d in descriptions]
    ticks = {d: [np.rint(b.times * fmt.TICKS).astype(np.int64) for b in providers[d]] for d in descriptions}
    first = min(float(t[0]) for blocks in ticks.values() for t in blocks) / fmt.TICKS
    gap_end = influx_data.START + 1.2 * influx_data.DAY + 3 * 3600
    hour = math.floor(first / 3600) * 3600
    while hour < until:
        windows = []
        for minute in np.arange(hour, min(hour + 3600, until), 60.0):
            b = min(minute + 60.0, until)
            lo, hi = int(round(minute * fmt.TICKS)), int(round(b * fmt.TICKS))
            for prov_id, d in enumerate(descriptions):
                parts = []
                for i, (block, t) in enumerate(zip(providers[d], ticks[d])):
                    a, z = np.searchsorted(t, [lo, hi])
                    if z > a:
                        parts.append((f"block{i}", t[a:z], {k: np.asarray(v[a:z] if not isinstance(v, list) else v[a:z])
                                                            for k, v in block.columns.items()}))
                if parts:
                    windows.append((prov_id, parts, b))
        if windows:
            path = top / f"{int(hour):010d}"[:5] / f"{int(hour):010d}.g3"
            writer = HKFileWriter(path, specs, hour, session_id=2 if hour >= gap_end else 1)
            for prov_id, parts, stamp in windows:
                writer.frame(prov_id, parts, stamp)
            writer.close()
        hour += 3600
    newest = max(top.rglob("*.g3"))
    with open(newest, "ab") as handle:  # the last file still growing: a frame cut short
        handle.write(b"\x00" * 7)
    (top / "00000").mkdir(exist_ok=True)
    (top / "00000" / "0000000000.g3").write_bytes(b"not a g3 file at all" * 50)  # a corrupt file


def write_weather(folder: Path, data: List[influx_data.Block]) -> None:
    """The non-OCS node's fields as the weather example server's files, to full precision."""
    folder.mkdir(parents=True)
    for b in data:
        if not b.feed:
            for key, values in b.columns.items():
                with open(folder / f"{key}.txt", "w") as handle:
                    handle.write(f"# {key}\n# {key}_timeline\n# \n")
                    np.savetxt(handle, np.column_stack([b.times, values]), fmt=["%.6f", "%.17g"])


def publish_live(ocs: ThreadedSession, block: influx_data.Block, since: float) -> None:
    """The live provider's samples from ``since`` on, as its agent publishes them (a message a second)."""
    keep = block.times >= since
    t = block.times[keep]
    columns = {k: np.asarray(v)[keep] for k, v in block.columns.items()}
    info = {"agent_address": block.measurement, "feed_name": block.feed, "record": True, "session_id": "1",
            "address": f"{block.measurement}.feeds.{block.feed}", "agent_class": "Test", "agg_params": {}}
    for a in range(0, len(t), 10):
        data = {"block0": {"block_name": "block0", "timestamps": t[a:a + 10].tolist(),
                           "data": {k: v[a:a + 10].tolist() for k, v in columns.items()}}}
        ocs.publish(f"{block.measurement}.feeds.{block.feed}", [data, info])


#: The measurement of sisock's own health (the hub's sisock_health node), which influxd has no part of.
HEALTH = "sisock_health"


def without_health(answer: object) -> object:
    """``answer`` without sisock's own health measurement: its series, and its name in lists of
    measurements and series keys (sisock adds it by design; the samples compared are the rest)."""
    if isinstance(answer, tuple):
        return tuple(without_health(v) for v in answer)
    if isinstance(answer, dict):
        return {k: without_health(v) for k, v in answer.items()}
    if isinstance(answer, list):
        kept = [v for v in answer if not (isinstance(v, dict) and v.get("name") == HEALTH) and
                not (isinstance(v, list) and v and isinstance(v[0], str) and v[0].startswith(HEALTH))]
        return [without_health(v) for v in kept]
    return answer


class Stack:
    """influxd and sisock holding the same samples."""

    def __init__(self, influxd: Influxd, port: int) -> None:
        self.influxd, self.port = influxd, port

    def sisock(self, q: str, params: Dict[str, str]) -> Tuple[int, object]:
        url = f"http://127.0.0.1:{self.port}/influxdb/query?" + urllib.parse.urlencode(dict(params, q=q))
        try:
            with urllib.request.urlopen(url, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def compare(self, q: str, params: Dict[str, str]) -> Optional[str]:
        relative = "now()" in q.lower()
        found = None
        for _ in range(3):
            ours = without_health(self.sisock(q, params))
            found = difference(self.influxd.request("/query", dict(params, q=q)), ours, clock=relative)
            if found is None or not relative:
                break
        return found


@pytest.fixture(scope="module")
def stack(router, tmp_path_factory):
    root = tmp_path_factory.mktemp("influx-e2e")
    now = time.time()
    data = influx_data.blocks(now)
    live = next(b for b in data if b.measurement == "observatory.live")
    server = Influxd().start()
    procs = Processes(router.env)
    ocs = ThreadedSession(router.config, transport="ocs").start()
    try:
        server.query(f"CREATE DATABASE {influx_data.DB}")
        server.write(influx_data.DB, influx_data.line_protocol(data, influx_data.exact_ns))
        top = root / "archive"
        write_archive(top, data, float(live.times[-1]) - SEAM)
        write_weather(root / "weather", data)
        env = {"DATA_DIRECTORY": str(top), "SQLITE_PATH": str(root / "index.sqlite"), "SCAN_INTERVAL": "3600"}
        procs.start("hub").wait_for("hub ready")
        procs.start("g3-file-scanner", env=env).wait_for("pass done", timeout=300)
        procs.start("g3-reader", env=env).wait_for("added data node g3_reader")
        procs.start("weather", env={"DATA_DIRECTORY": str(root / "weather")}).wait_for("added data node")
        procs.start("data-feed", env={"TARGET": "live", "FEED": "hk", "NAME": "live_hk"}).wait_for(
            "added data node live_hk")
        port = free_port()
        procs.start("http", env={"PORT": str(port), "HTTP_TIMEOUT": "60"}).wait_for("serving Grafana datasources")
        assert ocs.wait_connected(30)
        publish_live(ocs, live, float(live.times[-1]) - LIVE)
        wait_until(lambda: indexed_until(env, "observatory.live.feeds.hk") > 0, 60, "the live provider indexed")
        it = Stack(server, port)
        wait_until(lambda: without_health(it.sisock("SHOW MEASUREMENTS", {"db": influx_data.DB})) ==
                   server.request("/query", {"db": influx_data.DB, "q": "SHOW MEASUREMENTS"}), 60,
                   "sisock to list every measurement", interval=1.0)
        yield it
    finally:
        ocs.stop()
        procs.stop_all()
        server.stop()


@pytest.mark.timeout(1800)
def test_the_corpus_end_to_end(stack):
    failures, checked = [], 0
    for number, line in corpus():
        q, params = request(line)
        found = stack.compare(q, params)
        checked += 1
        if found is not None:
            failures.append(f"line {number}: {q}\n    {found}")
    print(f"\n{checked - len(failures)} of {checked} corpus queries equal end to end")
    assert not failures, f"{len(failures)} of {checked} differ:\n" + "\n".join(failures[:40])


def test_the_grouped_corpus_again_from_kept_buckets(stack):
    """Asked a second time, the GROUP BY time queries take their final buckets from sisock-http's
    kept runs (the Server-Timing header says how many), and still give InfluxDB's answer."""
    failures, grouped, kept = [], 0, 0
    for number, line in corpus():
        q, params = request(line)
        if "group by time" not in q.lower() or "now()" in q.lower():
            continue
        grouped += 1
        stack.sisock(q, params)  # the first time keeps the final buckets (or the corpus test did)
        url = f"http://127.0.0.1:{stack.port}/influxdb/query?" + urllib.parse.urlencode(dict(params, q=q))
        with urllib.request.urlopen(url, timeout=60) as answer:
            timing, ours = answer.headers.get("Server-Timing", ""), json.loads(answer.read())
        kept += not timing.startswith('kept;desc="0/')
        found = difference(stack.influxd.request("/query", dict(params, q=q)), without_health((200, ours)))
        if found is not None:
            failures.append(f"line {number}: {q}\n    {found}")
    assert grouped > 30 and kept > grouped / 3, f"{kept} of {grouped} grouped queries took kept buckets"
    assert not failures, f"{len(failures)} of {grouped} differ:\n" + "\n".join(failures[:40])


def test_the_provisioned_alert_rule_query_runs_on_sisock(stack, tmp_path):
    """The example alert rule the grafana_provisioning role writes, with $timeFilter as Grafana
    expands it for the rule's last 10 minutes, gives InfluxDB's answer and a value to alert on."""
    rules = render_template(tmp_path, ROLE / "templates/alerting.yml.j2", {})
    query = rules["groups"][0]["rules"][0]["data"][0]["model"]["query"]
    end = int((influx_data.START + 3600) * 1000)
    q = query.replace("$timeFilter", f"time >= {end - 600_000}ms and time <= {end}ms")
    params = {"db": influx_data.DB, "epoch": "ms"}
    assert stack.compare(q, params) is None
    values = stack.sisock(q, params)[1]["results"][0]["series"][0]["values"]
    assert len(values) >= 10 and all(v[1] is not None for v in values[:10])


def test_the_health_alert_rules_run_on_sisock(stack):
    """The example rules on sisock's health (deploy/grafana/alert-rules.yaml) are InfluxQL that
    sisock answers: the node and bad-file rules find their figures in sisock_health."""
    rules = yaml.safe_load((ROLE.parents[2] / "grafana/alert-rules.yaml").read_text())["groups"][0]["rules"]

    def keys() -> str:
        return json.dumps(stack.sisock('SHOW FIELD KEYS FROM "sisock_health"', {"db": influx_data.DB}))

    wait_until(lambda: "node_up.g3_reader" in keys() and "bad_files" in keys(), 30, "the reader's health figures")
    now_ms = int(time.time() * 1000)
    answers = {}
    for rule in rules:
        q = rule["data"][0]["model"]["query"].replace("$timeFilter", f"time >= {now_ms - 600_000}ms and "
                                                                     f"time <= {now_ms}ms")
        status, body = stack.sisock(q, {"db": influx_data.DB, "epoch": "ms"})
        assert status == 200 and "error" not in body["results"][0], (q, body)
        answers[rule["uid"]] = body["results"][0].get("series")
    assert answers["sisock-node-gone"][0]["values"][-1][1] == 1  # g3_reader is up
    assert answers["sisock-new-bad-file"][0]["values"][-1][1] == 0  # the corrupt file was there from the start
