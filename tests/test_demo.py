"""``sisock demo`` runs the stack in the foreground and stops it all on Ctrl-C."""
from __future__ import annotations

import json
import os
import re
import urllib.request
import signal
from pathlib import Path

from sisock import wamp
from sisock.config import load
from sisock.wamp_thread import ThreadedSession
from tests.support import BIN, Process, attempt, base_environment, free_port, wait_until


def post(url: str, body: dict = None):
    request = urllib.request.Request(url, data=json.dumps(body or {}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def descendants(pid: int):
    """Every live process below ``pid``, from /proc."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_demo_starts_the_stack_and_ctrl_c_stops_everything(tmp_path):
    env = dict(base_environment(), CROSSBAR_TLS_PORT=str(free_port()), CROSSBAR_OCS_PORT=str(free_port()),
               PORT=str(free_port()))
    state = tmp_path / "state"
    # started as a shell starts a background job: with SIGINT ignored, which Python inherits
    command = f"trap '' INT; exec {BIN / 'sisock'} demo --state-dir {state}"
    process = Process(["bash", "-c", command], env, "sisock demo")
    demo = process.proc
    try:
        banner = process.wait_for("Ctrl-C stops everything", timeout=120)
        before = process.output.split(banner)[0]
        # the banner comes once every component has joined
        for joined in ("hub ready", "added data node apex_archive to the hub", "added data node g3_reader to the hub",
                       "added data node sensors to the hub", "http info: serving Grafana datasources"):
            assert joined in before, f"the banner came before {joined!r}:\n{before[-4000:]}"
        modes = {path: oct(path.stat().st_mode & 0o777) for path in (
            state, state / "certs", state / "router", state / "router" / "config.json", state / "sisock.env",
            state / "attach.env", state / "certs" / "server.key")}
        assert modes == {state: "0o700", state / "certs": "0o750", state / "router": "0o750",
                         state / "router" / "config.json": "0o640", state / "sisock.env": "0o600",
                         state / "attach.env": "0o600", state / "certs" / "server.key": "0o600"}
        # what the banner says a component of one's own needs, and nothing else
        attach = state / "attach.env"
        assert f"SISOCK_ENV_FILE={attach}" in process.output
        config = load(dict(base_environment(), SISOCK_ENV_FILE=str(attach)))
        session = ThreadedSession(config).start()
        assert session.wait_connected(30)
        try:
            try:
                wait_until(lambda: "apex_archive" in [n["name"] for n in
                                                      attempt(lambda: session.call(wamp.HUB_LIST)) or []],
                           30, "the demo's weather server in the hub")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; demo output:\n{process.output[-6000:]}") from None
            fields, _ = session.call(wamp.get_fields_uri("apex_archive"), -3600, 0)
            assert "apex_temperature" in fields
            search = f"http://127.0.0.1:{env['PORT']}/search"
            wait_until(lambda: any(name.startswith("g3_reader::") for name in attempt(lambda: post(search)) or []),
                       60, "the demo's g3 archive in sisock-http's /search")
            assert "apex_archive::apex_temperature" in post(search)
        finally:
            session.stop()
        children = descendants(demo.pid)
        assert len(children) >= 3
        os.killpg(demo.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        assert demo.wait(60) == 0, process.output[-3000:]
        assert "did not stop" not in process.output
        # an orderly stop warns of nothing, and the router's empty banner line is gone
        assert "shutdown step failed" not in process.output
        assert not any(re.match(r"^\S+ \[Controller\s+\d+\]\s*$", line) for line in process.lines)
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), 10, "no orphan processes")
    finally:
        leftovers = descendants(demo.pid) if demo.poll() is None else []
        for pid in leftovers:  # a failed test must not leave the demo's stack running
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)


def test_demo_makes_an_old_state_folder_private_again(tmp_path):
    """A state folder from before (or made under umask 000) gets its modes back."""
    from sisock import demo

    state = tmp_path / "state"
    state.mkdir()
    (state / "sisock.env").write_text("WAMP_SECRET=kept-across-runs\n")
    state.chmod(0o777)
    (state / "sisock.env").chmod(0o644)
    old = os.umask(0)
    try:
        demo.environment(state)
    finally:
        os.umask(old)
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    assert oct((state / "sisock.env").stat().st_mode & 0o777) == "0o600"
    assert (state / "sisock.env").read_text() == "WAMP_SECRET=kept-across-runs\n"
    assert oct((state / "certs").stat().st_mode & 0o777) == "0o750"
