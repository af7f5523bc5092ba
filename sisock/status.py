"""``sisock status``: in a few lines, what every component of this site is doing and whether anything is wrong.

It reads the site's env file like every unit (``SISOCK_ENV_FILE``), joins the
router as sisock-http does (the read-only ``consumer`` role), asks the hub for
its data nodes and the health node (:mod:`sisock.health`) for its newest
figures, and asks systemd about this host's ``sisock.target``. Exit code 0 when
all is well, 1 when something is wrong, 2 for a configuration error; ``--json``
prints :func:`gather`'s dict (docs/monitoring.md, "sisock status").
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Dict, List, Optional

from sisock import health, log, units, wamp
from sisock.config import Config
from sisock.router.crossbar_config import CONSUMER_USER
from sisock.wamp_thread import ThreadedSession

#: Version of the ``--json`` layout: raised only when a key changes meaning or goes.
JSON_VERSION = 1
#: Seconds of the health node's history asked for (its rows come every 5 s).
RECENT = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object (docs/monitoring.md)")
    parser.add_argument("--feed-age", type=float, default=300.0, metavar="SECONDS",
                        help="a feed silent longer than this is wrong (default 300)")
    parser.add_argument("--archive-lag", type=float, default=600.0, metavar="SECONDS",
                        help="an archive further behind its live feed than this is wrong (default 600)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for the router and each answer (default 10)")


def _latest(answer: dict) -> Dict[str, float]:
    """The newest finite value of every field of a ``get_data`` answer."""
    latest = {}
    for name, values in answer.get("data", {}).items():
        finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if finite:
            latest[name] = float(finite[-1])
    return latest


def _figures(session: ThreadedSession, timeout: float) -> Optional[Dict[str, float]]:
    """The health node's newest figures, or None when it does not answer."""
    try:
        fields, _ = session.call(wamp.get_fields_uri(health.NAME), -RECENT, 0, timeout=timeout)
        answer = session.call(wamp.get_data_uri(health.NAME), sorted(fields), -RECENT, 0, timeout=timeout)
    except Exception:
        return None
    return _latest(answer)


def _subjects(figures: Dict[str, float], prefix: str) -> Dict[str, float]:
    return {name[len(prefix) + 1:]: value for name, value in figures.items() if name.startswith(prefix + ".")}


def gather(config: Config, feed_age: float, archive_lag: float, timeout: float) -> Dict[str, Any]:
    """Everything ``sisock status`` shows, as the documented JSON object."""
    problems: List[str] = []
    url = f"wss://{config.crossbar_host}:{config.crossbar_tls_port}"
    report: Dict[str, Any] = {"version": JSON_VERSION, "ok": True, "problems": problems,
                              "router": {"url": url, "reachable": False, "error": None},
                              "data_nodes": None, "health": False, "feeds": [], "archive": [], "bad_files": None,
                              "units": units.sisock_units()}
    session = ThreadedSession(config.with_values(wamp_user=CONSUMER_USER)).start()
    try:
        if not session.wait_connected(timeout):
            report["router"]["error"] = session.fatal_error or f"not joined within {timeout:g} s"
            problems.append(f"router {url}: {report['router']['error']}")
        else:
            report["router"]["reachable"] = True
            _from_router(report, session, feed_age, archive_lag, timeout)
    finally:
        session.stop()
    for unit in report["units"] or []:
        if unit["active"] != "active":
            problems.append(f"{unit['unit']} is {unit['active']} ({unit['sub']})")
    report["ok"] = not problems
    return report


def _from_router(report: Dict[str, Any], session: ThreadedSession, feed_age: float, archive_lag: float,
                 timeout: float) -> None:
    problems = report["problems"]
    try:
        listed = session.call(wamp.HUB_LIST, timeout=timeout)
        report["data_nodes"] = sorted(({"name": n["name"], "description": n.get("description", "")}
                                       for n in listed if isinstance(n, dict) and "name" in n),
                                      key=lambda n: n["name"])
    except Exception as exc:
        problems.append(f"hub: no answer ({type(exc).__name__}: {exc})")
        return
    figures = _figures(session, timeout)
    if figures is None:
        problems.append(f"no health data node {health.NAME} (it runs in the hub's process)")
        return
    report["health"] = True
    for feed, age in sorted(_subjects(figures, "feed_age").items()):
        ok = age <= feed_age
        report["feeds"].append({"feed": feed, "age": round(age, 1), "ok": ok})
        if not ok:
            problems.append(f"feed {feed}: silent for {age:.0f} s")
    lags = _subjects(figures, "archive_lag")
    ages = _subjects(figures, "archive_age")
    for provider, newest in sorted(_subjects(figures, "archive_newest").items()):
        lag = lags.get(provider)
        ok = lag is None or lag <= archive_lag
        report["archive"].append({"provider": provider, "newest": newest, "age": round(ages.get(provider, math.nan), 1),
                                  "lag": None if lag is None else round(lag, 1), "ok": ok})
        if not ok:
            problems.append(f"archive of {provider}: {lag:.0f} s behind its live feed")
    bad = figures.get("bad_files")
    report["bad_files"] = None if bad is None else int(bad)
    for node, up in sorted(_subjects(figures, "node_up").items()):
        if not up:
            problems.append(f"data node {node} has gone")


def _paint(text: str, colour: str, on: bool) -> str:
    codes = {"red": "31", "green": "32", "yellow": "33", "bold": "1"}
    return f"\x1b[{codes[colour]}m{text}\x1b[0m" if on else text


def render(report: Dict[str, Any], colour: bool) -> str:
    """The report as a few lines for a person (colours only when ``colour``)."""
    def mark(ok: bool) -> str:
        return _paint("ok", "green", colour) if ok else _paint("WRONG", "red", colour)

    router = report["router"]
    lines = [f"router   {router['url']}: {mark(True) if router['reachable'] else mark(False) + ' ' + router['error']}"]
    if report["data_nodes"] is not None:
        names = [n["name"] for n in report["data_nodes"]]
        lines.append(f"hub      {len(names)} data nodes: {', '.join(names) or '(none)'}")
    if report["units"] is None:
        lines.append("units    no sisock.target on this host")
    for unit in report["units"] or []:
        state = f"{unit['active']} ({unit['sub']})"
        lines.append(f"unit     {unit['unit']}: {mark(unit['active'] == 'active')} {state}"
                     f"{': ' + unit['status'] if unit['status'] else ''}")
    for feed in report["feeds"]:
        said = f"last message {feed['age']:.0f} s ago" if feed["ok"] else f"no message for {feed['age']:.0f} s"
        lines.append(f"feed     {feed['feed']}: {mark(feed['ok'])} {said}")
    for entry in report["archive"]:
        lag = "" if entry["lag"] is None else f", {entry['lag']:.0f} s behind the live feed"
        lines.append(f"archive  {entry['provider']}: {mark(entry['ok'])} newest sample {entry['age']:.0f} s ago{lag}")
    if report["bad_files"] is not None:
        bad = report["bad_files"]
        lines.append(f"archive  {_paint(str(bad), 'yellow', colour) if bad else 0} bad files"
                     f"{' (sisock-g3-file-scanner logs which)' if bad else ''}")
    verdict = _paint("all well", "green", colour) if report["ok"] else _paint(
        f"{len(report['problems'])} wrong: " + "; ".join(report["problems"]), "red", colour)
    lines.append(f"status   {verdict}")
    return "\n".join(lines)


def main(args, config: Config) -> int:
    """Print the site's status; 0 all well, 1 something wrong (a configuration error is 2, from the CLI)."""
    log.start("status", "none")  # what goes wrong is in the report, not in log lines
    report = gather(config, args.feed_age, args.archive_lag, args.timeout)
    if wamp.config_problem:
        return 2  # the CLI prints it as a configuration error
    print(json.dumps(report, indent=2) if args.json else render(report, sys.stdout.isatty()))
    return 0 if report["ok"] else 1
