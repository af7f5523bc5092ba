"""``sisock crossbar-config --dir DIR``: write DIR/config.json for ``crossbar start --cbdir DIR``."""
from __future__ import annotations

import argparse
from pathlib import Path

from sisock.config import Config
from sisock.router.crossbar_config import write


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, type=Path, help="the router's node directory (--cbdir)")


def main(args, config: Config) -> int:
    path = write(config, args.dir)
    print(f"sisock crossbar-config: wrote {path}")
    return 0
