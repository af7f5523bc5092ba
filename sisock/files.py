"""Modes of the files and folders sisock writes (keys, secrets, router config).

A mode is set whether the file is new or was already there, whatever the umask;
when it cannot be set (another user's file), the command stops with one line
naming the file (:class:`~sisock.config.ConfigError`, exit code 2).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from sisock.config import ConfigError

#: Folders of keys and router config: the owner and its group only.
PRIVATE_DIR = 0o750


def set_mode(path: Path, mode: int) -> None:
    """Give ``path`` exactly ``mode``; refuse with one line if that cannot be done."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current != mode:
            os.chmod(path, mode)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot give it mode {mode:04o} ({exc.strerror}); "
                          f"chmod {mode:04o} it or remove it") from None


def private_dir(path: Path, mode: int = PRIVATE_DIR) -> Path:
    """Make ``path`` (and its parents) if needed, and give it ``mode``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot make this folder ({exc.strerror})") from None
    set_mode(path, mode)
    return path


def write_private(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode``, a file that was already there included.

    The mode is set before any byte is written, so a secret is never readable by
    others, not even for a moment.
    """
    if path.exists():
        set_mode(path, mode)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write it ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    set_mode(path, mode)
