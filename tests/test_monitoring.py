"""sisock watches itself: every component's metrics, the health data node and ``sisock status``,
against real processes (router, hub, data-feed, scanner, reader, sisock-http)."""
from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Dict, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sisock import health, heartbeat, wamp
from tests.http_support import JsonHttp, query
from tests.support import BIN, free_port, port_open, wait_until
from tests.test_data_feed import ENV, TOPIC, feed_info

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def scrape(port: int, headers: Dict[str, str] = None) -> Samples:
    """Every sample of a metrics endpoint, parsed with prometheus-client's own parser."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), float("nan"))


def status(env: Dict[str, str], *args: str) -> Tuple[int, dict]:
    """``sisock status --json`` as a script runs it: its exit code and its report."""
    result = subprocess.run([str(BIN / "sisock"), "status", "--json", *args], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def health_figure(client, field: str) -> float:
    """The newest value of a field of the health data node."""
    answer = client.call(wamp.get_data_uri(health.NAME), [field], -30, 0)
    values = [v for v in answer["data"].get(field, []) if v is not None]
    return values[-1] if values else float("nan")


def publish(ocs, t: float, value: float) -> None:
    ocs.publish(TOPIC, [{"b": {"block_name": "b", "timestamps": [t], "data": {"Channel_01_T": [value]}}},
                        feed_info()])


@contextlib.contextmanager
def publishing(ocs, every: float = 0.5):
    """An agent publishing a sample every ``every`` seconds while the block runs."""
    stop = threading.Event()

    def run():
        while not stop.is_set():
            publish(ocs, time.time(), 1.0)
            stop.wait(every)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def test_a_silent_feed_ages_in_metrics_health_and_status_then_is_fresh_again(procs, client, ocs, router):
    hub_port, feed_port = free_port(), free_port()
    procs.start("hub", env={"METRICS_PORT": str(hub_port)}).wait_for("hub ready")
    feed = procs.start("data-feed", env=dict(ENV, METRICS_PORT=str(feed_port)))
    feed.wait_for(f"subscribed to {TOPIC}")
    for i in range(3):
        publish(ocs, time.time(), float(i))
    labels = {"feed": TOPIC}
    samples = wait_until(lambda: (s := scrape(feed_port)) and value(s, "sisock_data_feed_messages_total",
                                                                      outcome="kept", **labels) == 3 and s,
                         30, "three messages counted")
    assert value(samples, "sisock_data_feed_samples_total", outcome="kept", **labels) == 3
    assert value(samples, "sisock_build_info", component="data-feed", version=__import__("sisock").__version__) == 1
    assert value(samples, "process_resident_memory_bytes") > 0
    first_age = value(samples, "sisock_data_feed_last_message_age_seconds", **labels)
    hub = wait_until(lambda: (s := scrape(hub_port)) and value(s, "sisock_hub_data_nodes") >= 2 and s, 30,
                     "the hub to list the feed and the health node")
    assert value(hub, "sisock_hub_data_node_events_total", event="added") >= 2

    # silence: the age grows in the metrics, in the health node and in sisock status
    field = f"feed_age.{TOPIC}"
    wait_until(lambda: health_figure(client, field) >= 0, 30, "the feed's age in the health node")
    time.sleep(4)
    assert value(scrape(feed_port), "sisock_data_feed_last_message_age_seconds", **labels) > first_age + 3
    wait_until(lambda: health_figure(client, field) > 16, 40, "the health node to see the feed silent")
    code, report = status(router.env, "--feed-age", "15")
    assert code == 1 and not report["ok"], report
    assert any(f"feed {TOPIC}: silent for" in p for p in report["problems"])
    assert [f["feed"] for f in report["feeds"] if not f["ok"]] == [TOPIC]

    # it publishes again: fresh everywhere (the health node hears of it within a report, 5 s), and all well
    with publishing(ocs):
        wait_until(lambda: value(scrape(feed_port), "sisock_data_feed_last_message_age_seconds", **labels) < 2, 30,
                   "a fresh age in the metrics")
        wait_until(lambda: health_figure(client, field) < 2 + 2 * heartbeat.EVERY, 30,
                   "a fresh age in the health node")
        code, report = wait_until(lambda: (r := status(router.env, "--feed-age", "15"))[0] == 0 and r, 30,
                                  "sisock status to say all is well")
    assert report["ok"] and report["problems"] == [] and report["router"]["reachable"]
    assert {"bluefors_thermometry", health.NAME} <= {n["name"] for n in report["data_nodes"]}


def test_status_json_is_stable_and_documented(procs, router):
    """The keys of ``--json`` are those docs/monitoring.md lists, with version 1."""
    procs.start("hub").wait_for("hub ready")
    _, report = wait_until(lambda: (r := status(router.env)) and r[1]["health"] and r, 30, "the health node")
    assert set(report) == {"version", "ok", "problems", "router", "data_nodes", "health", "feeds", "archive",
                           "bad_files", "units"}
    assert report["version"] == 1 and set(report["router"]) == {"url", "reachable", "error"}
    documented = (Path(__file__).resolve().parent.parent / "docs/monitoring.md").read_text()
    assert all(f"| `{key}` |" in documented for key in report)  # the --json table names every key


def test_status_says_the_router_is_away(router, tmp_path):
    env = dict(router.env, CROSSBAR_TLS_PORT=str(free_port()))
    code, report = status(env, "--timeout", "2")
    assert code == 1 and not report["router"]["reachable"] and report["data_nodes"] is None
    assert report["problems"] and report["problems"][0].startswith("router wss://")


def test_sisock_http_counts_requests_and_its_wamp_calls(stack):
    """The module's http stack has no metrics endpoint: start one sisock-http more, with one."""
    port, metrics_port = free_port(), free_port()
    http = stack.procs.start("http", env=dict(stack.env, PORT=str(port), METRICS_PORT=str(metrics_port)))
    http.wait_for("serving Grafana datasources")
    client = JsonHttp(port)
    wait_until(lambda: "apex_archive::spiky" in client.request("POST", "/search", {})[1], 30, "the field list")
    before = scrape(metrics_port)
    for _ in range(3):
        status_code, _, _ = client.request("POST", "/query", query(stack.now - 3600, stack.now, "apex_archive::spiky"))
        assert status_code == 200
    assert client.request("POST", "/no-such-thing", {})[0] == 404
    after = scrape(metrics_port)
    key = ("sisock_http_requests_total", (("endpoint", "/query"), ("status", "200")))
    assert after[key] - before.get(key, 0) == 3
    assert value(after, "sisock_http_requests_total", endpoint="other", status="404") == 1
    assert value(after, "sisock_http_request_duration_seconds_count", endpoint="/query") >= 3
    assert value(after, "sisock_http_wamp_calls_total", node="apex_archive", procedure="get_data", outcome="ok") >= 3
    assert value(after, "sisock_http_requests_in_flight") == 0
    assert value(after, "sisock_http_catalogue_refreshes_total") >= 1
    assert value(after, "sisock_http_catalogue_entries", kind="fields") > 1
    assert value(after, "sisock_http_catalogue_entries", kind="nodes") >= 1
    # InfluxQL's buckets, by where they came from: this node gives no revision, so all are asked of it
    t0, t1 = int(stack.now - 3600), int(stack.now)
    q = f'SELECT mean("spiky") FROM "apex_archive" WHERE time >= {t0}s AND time < {t1}s GROUP BY time(10m)'
    url = f"http://127.0.0.1:{port}/influxdb/query?" + urllib.parse.urlencode({"q": q, "db": "ocs_feeds"})
    buckets = (t1 * 10**9 - 1) // (600 * 10**9) - t0 // 600 + 1  # from the one holding t0 to the one before t1
    with urllib.request.urlopen(url, timeout=30) as answered:
        assert answered.status == 200
        assert answered.headers["Server-Timing"].startswith(f'kept;desc="0/{buckets} buckets from kept runs", ')
    influx = scrape(metrics_port)
    asked = ("sisock_http_influxql_buckets_total", (("way", "asked"),))
    assert influx[asked] - after.get(asked, 0) == buckets
    assert value(influx, "sisock_http_kept_buckets_bytes") == 0
    http.stop()


def test_metrics_open_beyond_the_host_need_credentials(router):
    env = dict(router.env, METRICS_HOST="0.0.0.0", METRICS_PORT=str(free_port()))
    result = subprocess.run([str(BIN / "sisock"), "hub"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "sisock hub: configuration error: METRICS_HOST='0.0.0.0' is every interface and the metrics endpoint has "
        "no credentials: use a loopback or site-private address, or set METRICS_USER and METRICS_PASSWORD"]


def test_credentials_guard_the_metrics(procs):
    port = free_port()
    procs.start("data-feed", env=dict(ENV, METRICS_PORT=str(port), METRICS_USER="prometheus",
                                      METRICS_PASSWORD="scrape-secret")).wait_for(f"subscribed to {TOPIC}")
    wait_until(lambda: port_open(port), 30, "the metrics port")
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(port)
    assert refused.value.code == 401 and "Basic" in refused.value.headers["WWW-Authenticate"]
    import base64
    token = base64.b64encode(b"prometheus:scrape-secret").decode()
    assert value(scrape(port, {"Authorization": f"Basic {token}"}), "process_resident_memory_bytes") > 0
