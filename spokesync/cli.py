"""The ``spokesync`` command line.

Each subcommand lives in the module that owns the concept and exposes two functions:
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported lazily so that
``spokesync --help`` stays fast and a subcommand's heavy imports are paid only when used.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "sample-data": ("spokesync.sample_data.command", "generate the sample warehouse landing files"),
    "ingest": ("spokesync.ingest.command", "ingest and validate landing files into the warehouse"),
    "sandbox": ("spokesync.sandbox.command", "serve the local HubSpot CRM API sandbox"),
    "sync": ("spokesync.sync.command", "build desired state, diff and push to HubSpot"),
    "hubspot": ("spokesync.hubspot.command", "HubSpot portal utilities (ensure-properties, …)"),
    "adopt": (
        "spokesync.sync.adopt",
        "adopt --dry-run: what the first sync into a portal would adopt, create, leave alone",
    ),
    "state": ("spokesync.state.command", "inspect and replay the state store (dead letters, …)"),
    "explain": ("spokesync.explain", "why a record holds its values and what a sync would send"),
    "webhooks": (
        "spokesync.webhooks.command",
        "receive HubSpot webhooks (v3-signed) into an inbox",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spokesync", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        # Only import the module whose subcommand is being parsed (see main()).
        p.set_defaults(_name=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Find the subcommand first, then let its module add its own arguments.
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
        sub_parser = argparse.ArgumentParser(
            prog=f"spokesync {argv[0]}", description=SUBCOMMANDS[argv[0]][1]
        )
        module.add_arguments(sub_parser)
        args = sub_parser.parse_args(argv[1:])
        return int(module.run(args) or 0)
    parser.parse_args(argv)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
