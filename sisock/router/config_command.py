"""``sisock crossbar-config --dir DIR``: write DIR/config.json for ``crossbar start --cbdir DIR``.

The folder gets mode 0750 and config.json 0640, whether they are new or not;
the router's certificate and key must be readable files (else exit 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sisock.config import Config, ConfigError
from sisock.files import PRIVATE_DIR, private_dir, set_mode
from sisock.router.crossbar_config import ocs_warning, write

#: config.json names the WAMP user and the key's path: not for everybody.
CONFIG_MODE = 0o640


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, type=Path, help="the router's node directory (--cbdir)")


def check_tls_files(config: Config) -> None:
    """The router's certificate and key are files it can read: say so now, not in crossbar's log."""
    for variable in ("CROSSBAR_TLS_CERT", "CROSSBAR_TLS_KEY"):
        path = getattr(config, variable.lower())
        if path is None:
            continue  # crossbar_config.build names both when either is missing
        try:
            with open(path, "rb") as handle:
                handle.read(1)
        except OSError as exc:
            raise ConfigError(f"{variable}={str(path)!r}: cannot read it ({exc.strerror})") from None


def write_config(config: Config, directory: Path) -> Path:
    """Write DIR/config.json and give it, and DIR, their modes."""
    check_tls_files(config)
    private_dir(directory, PRIVATE_DIR)
    path = directory / "config.json"
    if path.exists():
        set_mode(path, CONFIG_MODE)  # before the new text goes in
    write(config, directory)
    set_mode(path, CONFIG_MODE)
    return path


def main(args, config: Config) -> int:
    path = write_config(config, args.dir)
    warning = ocs_warning(config)
    if warning:
        print(f"sisock crossbar-config: warning: {warning}", file=sys.stderr)
    print(f"sisock crossbar-config: wrote {path}")
    return 0
