"""No process that sisock starts outlives the process that started it, SIGKILL included, and a
demo's state folder is never taken from a live process (issue 25, findings 3 and 4).

Survivors are looked for by the PIDs of the children, never by name: other sisock processes
of other tests may run on the same machine.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from tests.support import BIN, Process, base_environment, free_port, wait_until
from tests.test_demo import descendants


def alive(pids: List[int]) -> List[int]:
    """Those of ``pids`` that still run (a zombie has ended: only its parent has not reaped it)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            out.append(pid)
    return out


def kill_all(pids: List[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.mark.parametrize("g3_env", ["sqlite"], indirect=True)
def test_a_killed_g3_reader_takes_its_worker_processes_with_it(g3_env, procs):
    Path(g3_env["DATA_DIRECTORY"]).mkdir(parents=True)
    procs.start("hub").wait_for("hub ready")
    node = procs.start("g3-reader", env=dict(g3_env, G3_READER_PROCESSES="2"))
    node.wait_for("added data node g3_reader")
    children = wait_until(lambda: (lambda found: found if len(found) >= 2 else None)(descendants(node.proc.pid)),
                          30, "the reader's worker processes")
    try:
        os.kill(node.proc.pid, signal.SIGKILL)  # the reader alone, as the OOM killer would
        wait_until(lambda: not alive(children), 10, f"the reader's children {children} to end")
    finally:
        kill_all(alive(children))


def _demo(state: Path, env: dict, name: str) -> Process:
    return Process([str(BIN / "sisock"), "demo", "--state-dir", str(state)], env, name)


def test_a_killed_demo_takes_everything_with_it_and_the_next_one_starts_clean(tmp_path):
    env = dict(base_environment(), CROSSBAR_TLS_PORT=str(free_port()), CROSSBAR_OCS_PORT=str(free_port()),
               PORT=str(free_port()))
    state = tmp_path / "state"
    first = _demo(state, env, "first demo")
    children: List[int] = []
    try:
        first.wait_for("Ctrl-C stops everything", timeout=180)
        children = descendants(first.proc.pid)
        assert len(children) >= 6  # the router and its worker, the hub, three data nodes, sisock-http

        # a second demo on the same folder refuses at once, naming the first, and removes nothing
        second = subprocess.run([str(BIN / "sisock"), "demo", "--state-dir", str(state)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"another sisock demo (pid {first.proc.pid}) is running on {state}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert (state / "g3").is_dir() and (state / "g3-index.sqlite").exists()

        os.kill(first.proc.pid, signal.SIGKILL)  # the demo alone, as a closed SSH session's kill would
        wait_until(lambda: not alive(children), 40, f"the demo's children {children} to end")
    finally:
        kill_all(alive(children) + alive([first.proc.pid]))

    third = _demo(state, env, "third demo")
    children = []
    try:
        third.wait_for("Ctrl-C stops everything", timeout=180)
        children = descendants(third.proc.pid)
        os.kill(third.proc.pid, signal.SIGHUP)  # the terminal closed
        assert third.proc.wait(60) == 0, third.output[-3000:]
        wait_until(lambda: not alive(children), 10, "no process left after SIGHUP")
    finally:
        kill_all(alive(children) + alive([third.proc.pid]))


def test_a_demo_refuses_a_state_folder_that_a_live_process_uses(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1], 'w'); time.sleep(60)",
                               str(state / "g3-index.sqlite")])
    try:
        wait_until(lambda: (state / "g3-index.sqlite").exists(), 10, "the holder to open its file")
        env = dict(base_environment(), CROSSBAR_TLS_PORT=str(free_port()), CROSSBAR_OCS_PORT=str(free_port()),
                   PORT=str(free_port()))
        refused = subprocess.run([str(BIN / "sisock"), "demo", "--state-dir", str(state)], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1
        assert f"is still used by pid {holder.pid}" in refused.stderr
        assert (state / "g3-index.sqlite").exists()  # nothing taken from under it
        assert not (state / "g3").exists()
    finally:
        holder.kill()
        holder.wait()
