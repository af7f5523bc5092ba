"""``sisock``: one console script, a subcommand per component (docs/design.md).

Each subcommand names a module that provides ``main(args, config) -> int``
and, optionally, ``add_arguments(parser)``. Modules are imported only for the
subcommand that runs, so one component's dependencies never slow another.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from sisock import __version__, lifeline
from sisock.config import ConfigError, describe, load

#: subcommand -> (module, one-line help)
COMMANDS = {
    "hub": ("sisock.hub", "track the live data node servers"),
    "http": ("sisock.http.server", "serve Grafana's JSON datasources (sisock-http)"),
    "g3-file-scanner": ("sisock.g3.scanner", "index the .g3 housekeeping archive"),
    "g3-reader": ("sisock.servers.g3_reader", "serve the indexed .g3 archive (data node g3_reader)"),
    "data-feed": ("sisock.servers.data_feed", "serve one live OCS feed"),
    "weather": ("sisock.servers.weather", "serve the example weather files (data node apex_archive)"),
    "sensors": ("sisock.servers.sensors", "serve this machine's lm-sensors readings"),
    "apex-weather": ("sisock.servers.apex_weather", "serve the APEX weather archive"),
    "radiometer": ("sisock.servers.radiometer", "serve the UCSC radiometer PWV archive"),
    "status": ("sisock.status", "what every component of this site is doing, and whether anything is wrong"),
    "certs": ("sisock.router.certs_command", "make a site CA and a server certificate"),
    "crossbar-config": ("sisock.router.config_command", "write the router's config.json from the environment"),
    "demo": ("sisock.demo", "run the whole stack in the foreground on this machine"),
}

#: Subcommands that work without a valid WAMP configuration.
NEEDS_NO_CONFIG = {"certs"}
#: Subcommands that run until stopped: each serves its metrics (sisock/metrics/).
LONG_RUNNING = {"hub", "http", "g3-file-scanner", "g3-reader", "data-feed", "weather", "sensors", "apex-weather",
                "radiometer"}


def parser(selected: Optional[str] = None) -> argparse.ArgumentParser:
    """The argument parser; only the ``selected`` subcommand's module is imported for its options."""
    top = argparse.ArgumentParser(prog="sisock", description="sisock: a telescope site's housekeeping data, "
                                  "served to Grafana over WAMP. One subcommand per component.",
                                  epilog="`sisock COMMAND --help` lists the settings COMMAND reads; every "
                                  "setting is in etc/sisock.env.example.")
    top.add_argument("--version", action="version", version=f"sisock {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text, epilog=describe(name),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        command.set_defaults(module=module_name)
        if name == selected:
            module = importlib.import_module(module_name)
            if hasattr(module, "add_arguments"):
                module.add_arguments(command)
    return top


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``sisock`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    selected = next((a for a in argv if not a.startswith("-")), None)
    args = parser(selected).parse_args(argv)
    try:
        config = None if args.command in NEEDS_NO_CONFIG else load()
    except ConfigError as exc:
        print(f"sisock {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    lifeline.watch_parent_from_environment()  # started by a demo: end with it
    module = importlib.import_module(args.module)
    try:
        if config is not None and args.command in LONG_RUNNING and not getattr(args, "once", False):
            from sisock import metrics
            metrics.serve(args.command, config)
        code = module.main(args, config) or 0
    except ConfigError as exc:
        print(f"sisock {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    wamp = sys.modules.get("sisock.wamp")
    if wamp is not None and wamp.config_problem:  # found while connecting (sisock-http's own loop)
        print(f"sisock {args.command}: configuration error: {wamp.config_problem[0]}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
