"""``spokesync sync``: ingest what is new, then plan and push every mapping (or only plan)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from spokesync.exit_codes import ExitCode
from spokesync.hubspot.push import PushConfig
from spokesync.rollout import Rollout
from spokesync.settings import Settings
from spokesync.sync.runner import SyncOptions, run_sync


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer not below ``low`` (a usage error otherwise, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mapping",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="mapping file to sync (repeatable; default: every mappings/*.yaml)",
    )
    parser.add_argument(
        "--shadow", action="store_true", help="plan only: record the changes, send nothing"
    )
    parser.add_argument(
        "--as-of", type=dt.date.fromisoformat, help="partition date (default: newest)"
    )
    parser.add_argument("--no-ingest", action="store_true", help="skip ingesting new landing files")
    parser.add_argument(
        "--refresh",
        choices=["incremental", "full", "none"],
        default="incremental",
        help="how the snapshot is read back from HubSpot before each push: 'incremental' "
        "(default) reads the records modified since the last refresh, so people's edits are "
        "seen (a full read when an object was never read); 'full' re-reads every record, "
        "so records deleted in HubSpot are re-created and lists re-read (after a large push "
        "people edited during, or to reconcile); 'none' trusts the snapshot and reads "
        "nothing: people's edits since the last refresh are not seen, so a person's value "
        "may be overwritten (a re-run right after a sync). Shadow runs never read back",
    )
    parser.add_argument("--rollout-percent", type=float, help="write only this stable %% of ids")
    parser.add_argument("--rollout-where", help="write only records matching this SQL predicate")
    parser.add_argument(
        "--rate-limit", type=_at_least(1), default=190, help="requests per 10 s (portal tier)"
    )
    parser.add_argument("--daily-budget", type=_at_least(0), help="requests this run may use today")
    parser.add_argument("--concurrency", type=_at_least(1), default=8, help="batches in flight")
    parser.add_argument("--home", type=Path, help="SPOKESYNC_HOME (default ./data)")
    parser.add_argument("--landing", type=Path, help="SPOKESYNC_LANDING")
    parser.add_argument("--env", choices=["dev", "test", "prod"], help="SPOKESYNC_ENV")
    parser.add_argument("--base-url", help="HUBSPOT_BASE_URL")
    parser.add_argument("-v", "--verbose", action="store_true")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = Settings.from_env(
        home=args.home, landing=args.landing, env=args.env, hubspot_base_url=args.base_url
    )
    if not args.no_ingest:
        from spokesync.ingest.command import HEADER, IngestFailed, ingest_new

        print(HEADER)
        try:
            for line in ingest_new(settings, show_progress=True):
                print(line)
        except IngestFailed as e:
            print(f"{e}; not syncing until the landing files are fixed")
            return ExitCode.GATE_BLOCKED
    rollout = None
    if args.rollout_percent is not None or args.rollout_where:
        rollout = Rollout(predicate=args.rollout_where, percent=args.rollout_percent)
    options = SyncOptions(
        mapping_paths=args.mapping,
        as_of=args.as_of,
        shadow=args.shadow,
        rollout=rollout,
        push=PushConfig(concurrency=args.concurrency),
        rate_limit_per_10s=args.rate_limit,
        daily_budget=args.daily_budget,
        progress=True,
        refresh=args.refresh,
    )
    # Errors (a mapping naming a property HubSpot lacks, the state DB busy, …) are reported
    # by the CLI's one handler (spokesync.cli.report) with their exit code.
    _tune_gc()
    _fast_event_loop()
    summary = run_sync(settings, options)
    print(summary.to_text())
    return summary.exit_code


def _tune_gc() -> None:
    """A push holds up to 50,000 pending records as small objects and allocates hundreds of
    thousands more per minute (answers, confirmed writes): with the default thresholds the
    cycle collector walked all of them every few hundred batches (~0.1 s a time, on the event
    loop) and its young generations cost ~1 ms per call. Freeze what the imports loaded and
    collect less often; the objects of a push die by reference counting, not by the collector.
    Set here, in the ``spokesync sync`` process only, not for an embedding caller (Dagster)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def _fast_event_loop() -> None:
    """The push runs on uvloop where it is installed (as the sandbox's uvicorn does): ~15% less
    CPU per call on the event loop than asyncio's own loop, measured on 100-record upserts."""
    import asyncio

    try:
        import uvloop
    except ImportError:  # not on this platform: asyncio's loop does the same, a little slower
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
