"""The ``spokesync`` command line.

Each subcommand lives in the module that owns the concept and exposes two functions:
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported lazily so that
``spokesync --help`` stays fast and a subcommand's heavy imports are paid only when used.

Errors are handled here, in one place (:func:`spokesync.failure.explain`): a person gets one
line saying what is wrong and what to do, and an exit code from :mod:`spokesync.exit_codes`;
``--debug`` (anywhere on the command line, or ``SPOKESYNC_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

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
    from spokesync.exit_codes import describe

    parser = argparse.ArgumentParser(
        prog="spokesync",
        description=__doc__.splitlines()[0],
        epilog="exit codes:\n" + describe() + "\n\n--debug shows the traceback of an error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        # Only import the module whose subcommand is being parsed (see main()).
        p.set_defaults(_name=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SPOKESYNC_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser()
    # Find the subcommand first, then let its module add its own arguments.
    if argv and argv[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
        sub_parser = argparse.ArgumentParser(
            prog=f"spokesync {argv[0]}", description=SUBCOMMANDS[argv[0]][1]
        )
        module.add_arguments(sub_parser)
        args = sub_parser.parse_args(argv[1:])
        try:
            return int(module.run(args) or 0)
        except KeyboardInterrupt:
            print("spokesync: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            return report(exc, debug=debug, env=getattr(args, "env", None))
    parser.parse_args(argv)
    return 2


def report(exc: BaseException, *, debug: bool, env: str | None = None) -> int:
    """Print ``exc`` as one message (plus the summary of a run it interrupted); its exit code."""
    from spokesync.failure import attached_summary, explain

    failure = explain(exc, env=env or os.environ.get("SPOKESYNC_ENV"))
    summary = attached_summary(exc)
    if getattr(summary, "objects", None):  # a sync stopped part-way: show what it did
        print("\n".join(summary.to_text().splitlines()[:-1]))  # type: ignore[union-attr]
        print("  (the run stopped here: the mappings above were done)")
        from spokesync.exit_codes import MEANING

        code = failure.code
        print(f"result: {code.name.lower()} (exit {int(code)}): {MEANING[code]}")
    print(f"spokesync: error: {failure.message}", file=sys.stderr)
    if debug:
        traceback.print_exception(exc)
    elif not failure.expected:
        print("spokesync: run again with --debug to see the traceback", file=sys.stderr)
    return int(failure.code)


if __name__ == "__main__":
    raise SystemExit(main())
