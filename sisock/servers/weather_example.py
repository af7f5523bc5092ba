"""The synthetic weather data set that the ``weather`` example server serves.

Two weeks of a plausible high-site climate: hourly temperature, humidity and
pressure (daily cycles, weather fronts, noise) and minute-rate wind speed and
radiometer (PWV) values. Seeded, so the same span gives the same files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

import numpy as np

DAY = 86400.0

#: field -> (description, timeline, units, sample interval in seconds)
FIELDS: Dict[str, Tuple[str, str, str, float]] = {
    "apex_temperature": ("APEX outside air temperature", "apex_hourly", "C", 3600.0),
    "apex_humidity": ("APEX outside relative humidity", "apex_hourly", "%", 3600.0),
    "apex_pressure": ("APEX outside air pressure", "apex_hourly", "mbar", 3600.0),
    "apex_windspeed": ("APEX wind speed", "apex_minute", "m/s", 60.0),
    "apex_radiometer": ("APEX radiometer precipitable water vapour", "apex_minute", "mm", 60.0),
}


def _series(field: str, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    day_phase = 2 * np.pi * ((t % DAY) / DAY - 0.6)  # warmest mid-afternoon (UTC-4 site)
    front = np.sin(2 * np.pi * t / (4.3 * DAY)) + 0.5 * np.sin(2 * np.pi * t / (1.7 * DAY) + 1.0)
    noise = rng.standard_normal(len(t))
    if field == "apex_temperature":
        return -2.0 + 5.0 * np.cos(day_phase) + 1.5 * front + 0.3 * noise
    if field == "apex_humidity":
        return np.clip(25.0 - 12.0 * np.cos(day_phase) + 15.0 * front + 3.0 * noise, 1.0, 100.0)
    if field == "apex_pressure":
        return 555.0 + 1.2 * np.cos(2 * day_phase) - 2.0 * front + 0.1 * noise
    if field == "apex_windspeed":
        gust = np.abs(np.convolve(noise, np.ones(15) / 15, mode="same")) * 6.0
        return np.clip(6.0 + 3.0 * front + 2.0 * np.cos(day_phase) + gust, 0.0, None)
    if field == "apex_radiometer":
        walk = np.cumsum(noise) / np.sqrt(len(t)) * 0.3
        return np.clip(1.0 + 0.6 * front + 0.2 * np.cos(day_phase) + walk, 0.05, None)
    raise KeyError(field)


def generate(directory: Path, end: float, days: float = 14.0, seed: int = 2019) -> None:
    """Write one text file per field covering ``[end - days, end)``."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for field, (description, timeline, units, interval) in FIELDS.items():
        first = np.ceil((end - days * DAY) / interval) * interval
        t = np.arange(first, end, interval)
        values = _series(field, t, rng)
        with open(directory / f"{field}.txt", "w") as handle:
            handle.write(f"# {description}\n# {timeline}\n# {units}\n")
            np.savetxt(handle, np.column_stack([t, values]), fmt=["%.0f", "%.3f"])
