"""This host's sisock units as systemd sees them: each unit of ``sisock.target``, its state and
the status line the component sends (``STATUS=``, :mod:`sisock.notify`)."""
from __future__ import annotations

import shutil
import subprocess
from typing import Dict, List, Optional

TARGET = "sisock.target"
#: Seconds systemctl may take.
TIMEOUT = 10.0


def _show(names: List[str], properties: str) -> List[Dict[str, str]]:
    """``systemctl show`` of ``names``: one dict of properties per unit, in order."""
    out = subprocess.run(["systemctl", "show", "--no-pager", "-p", properties, *names], capture_output=True,
                         text=True, timeout=TIMEOUT, check=True).stdout
    units = []
    for block in out.strip().split("\n\n"):
        units.append(dict(line.split("=", 1) for line in block.splitlines() if "=" in line))
    return units


def sisock_units() -> Optional[List[Dict[str, str]]]:
    """``[{"unit", "active", "sub", "status"}, ...]`` for every unit of sisock.target (sorted), or
    None when this host has no systemd or no sisock.target (a development machine)."""
    if shutil.which("systemctl") is None:
        return None
    try:
        target = _show([TARGET], "LoadState,Wants,ConsistsOf")[0]
    except (subprocess.SubprocessError, OSError, IndexError):
        return None
    if target.get("LoadState") != "loaded":
        return None
    names = sorted({n for key in ("Wants", "ConsistsOf") for n in target.get(key, "").split()
                    if n.startswith("sisock")})
    if not names:
        return []
    shown = _show(names, "Id,ActiveState,SubState,StatusText")
    return [{"unit": u.get("Id", ""), "active": u.get("ActiveState", ""), "sub": u.get("SubState", ""),
             "status": u.get("StatusText", "")} for u in shown]
