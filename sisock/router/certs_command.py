"""``sisock certs --dir DIR [--name HOST_OR_IP ...] [--force]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sisock.router.certs import FILES, default_names, fix_modes, make_certs, missing_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, type=Path, help="folder for ca.pem, ca.key, server.pem, server.key")
    parser.add_argument("--name", action="append", default=[], metavar="HOST_OR_IP",
                        help=f"a DNS name or IP of the router (repeat; default: {', '.join(default_names())})")
    parser.add_argument("--force", action="store_true", help="replace existing files (a new CA!)")


def main(args, config) -> int:
    for name, old, new in fix_modes(args.dir):
        print(f"sisock certs: {args.dir / name} had mode {old:04o}; set it to {new:04o}", file=sys.stderr)
    written = make_certs(args.dir, args.name, args.force)
    kept = [f for f in FILES if f not in written]
    print(f"sisock certs: wrote {', '.join(written) or 'nothing'}"
          + (f"; kept existing {', '.join(kept)}" if kept else "") + f" in {args.dir}")
    missing = missing_names(args.dir, args.name)
    if missing:
        print(f"sisock certs: the kept server.pem does not cover {', '.join(missing)}; delete server.pem and "
              "server.key and run again to re-issue them from the same CA", file=sys.stderr)
        return 1
    return 0
