"""``sisock sensors``: this machine's lm-sensors readings as the data node ``sensors``.

Runs ``sensors -u`` every ``SENSORS_INTERVAL`` seconds in a worker thread and
keeps the last ``SENSORS_KEEP`` seconds in a ring buffer. A field is named, as
in the original sisock, ``<chip>_<input>`` (``coretemp-isa-0000_temp1``); its
description is the feature's label (``Package id 0``) and its units follow
from the input's kind (temp: C, in: V, fan: RPM, ...). When ``sensors`` is
missing or fails, one line says so and the server keeps serving what it has.
"""
from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from twisted.internet import reactor, task, threads

from sisock.config import Config
from sisock.datanode import DataNodeServer, data_result, field_info
from sisock.servers.ring_buffer import RingTable

COMMAND = ("sensors", "-u")
TIMELINE = "sensors"

#: lm-sensors input kinds and their units (see sensors.conf(5)).
UNITS = {"temp": "C", "in": "V", "fan": "RPM", "power": "W", "curr": "A", "energy": "J", "humidity": "%RH"}

#: An input line of ``sensors -u``: ``  temp1_input: 45.000``.
INPUT_LINE = re.compile(r"^\s+(?P<input>(?P<kind>[a-z]+)\d*)_input:\s*(?P<value>\S+)\s*$")


@dataclass(frozen=True)
class Reading:
    """One ``*_input`` value of ``sensors -u``."""

    field: str
    value: float
    description: str
    units: str


def parse(text: str) -> List[Reading]:
    """The inputs of a ``sensors -u`` output: chips are separated by blank lines; each starts
    with its name and an ``Adapter:`` line; unindented ``label:`` lines head the features."""
    readings: List[Reading] = []
    chip: Optional[str] = None
    label = ""
    for line in text.splitlines():
        if not line.strip():
            chip = None
        elif chip is None:
            chip, label = line.strip(), ""
        elif line.startswith("Adapter:"):
            continue
        elif not line[0].isspace() and line.rstrip().endswith(":"):
            label = line.rstrip()[:-1]
        else:
            match = INPUT_LINE.match(line)
            if not match:
                continue
            try:
                value = float(match["value"])
            except ValueError:
                continue
            units = UNITS.get(match["kind"], "")
            description = f"{label or match['input']} ({chip})"
            readings.append(Reading(f"{chip}_{match['input']}", value, description, units))
    return readings


class SensorsServer(DataNodeServer):
    """Serves the recent ``sensors -u`` readings of this machine."""

    name = "sensors"
    description = "lm-sensors readings of this machine (sensors -u)"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.table = RingTable()
        self._info: Dict[str, Tuple[str, str]] = {}  # field -> (description, units)
        self._lock = threading.Lock()
        self._problem: Optional[str] = ""  # "" = nothing read yet, None = reading fine

    def _report(self, problem: Optional[str]) -> None:
        """Log a change of state once, not every interval."""
        if problem == self._problem:
            return
        self._problem = problem
        if problem is None:
            self.log.info("reading {n} sensor inputs every {s} s", n=len(self._info), s=self.config.sensors_interval)
        else:
            self.log.warn("{problem}; still serving the {n} samples already read", problem=problem,
                          n=len(self.table))

    def _run_sensors(self) -> Optional[str]:
        """The output of ``sensors -u``, or None after reporting why there is none."""
        try:
            done = subprocess.run(COMMAND, capture_output=True, text=True,
                                  timeout=max(5.0, 2 * self.config.sensors_interval))
        except FileNotFoundError:
            self._report("the 'sensors' program is not on PATH (install lm-sensors)")
            return None
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._report(f"'sensors -u' could not run: {exc}")
            return None
        if done.returncode != 0:
            why = " | ".join(line for line in done.stderr.splitlines() if line.strip()) or "no message"
            self._report(f"'sensors -u' failed with exit code {done.returncode}: {why}")
            return None
        return done.stdout

    def read_once(self) -> None:
        """Run ``sensors -u`` once and keep its readings (blocking: runs in a worker thread)."""
        now = time.time()
        output = self._run_sensors()
        if output is None:
            return
        readings = parse(output)
        if not readings:
            self._report("'sensors -u' printed no input values")
            return
        with self._lock:
            if self.table.last_time is not None and now < self.table.last_time:
                return  # the clock stepped back: keep the buffer in time order
            for r in readings:
                self._info[r.field] = (r.description, r.units)
            self.table.append(np.array([now]), {r.field: np.array([r.value]) for r in readings})
            self.table.trim_before(now - self.config.sensors_keep)
        self._report(None)

    def _start_reading(self) -> None:
        def read():
            d = threads.deferToThread(self.read_once)
            return d.addErrback(lambda f: self.log.error("reading sensors failed: {error}", error=f.getErrorMessage()))

        task.LoopingCall(read).start(self.config.sensors_interval, now=True)

    def get_fields(self, start: float, end: float):
        with self._lock:
            names, interval = self.table.present(start, end)
            fields = {n: field_info(TIMELINE, *self._info[n]) for n in names}
        return fields, ({TIMELINE: {"interval": interval, "field": names}} if names else {})

    def get_data(self, fields: List[str], start: float, end: float, min_stride: Optional[float]):
        with self._lock:
            t, columns = self.table.window(start, end, fields)
        return data_result({TIMELINE: (t, columns)} if columns else {})

    def run(self) -> int:
        reactor.callWhenRunning(self._start_reading)
        return super().run()


def main(args, config: Config) -> int:
    """Run the sensors server until SIGTERM."""
    return SensorsServer(config).run()
