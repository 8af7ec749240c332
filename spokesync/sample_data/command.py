"""``spokesync sample-data``: generate (or extend) the sample landing files."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from spokesync.sample_data.generator import GeneratorConfig, append_day, generate
from spokesync.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = GeneratorConfig()
    parser.add_argument("--out", type=Path, help="landing folder (default $SPOKESYNC_LANDING)")
    parser.add_argument("--days", type=int, default=d.days, help="days of daily files")
    parser.add_argument("--accounts", type=int, default=d.accounts)
    parser.add_argument(
        "--users-per-account",
        type=int,
        default=d.users_per_account,
        help="mean users (contacts) per account; each has 1 … 2 × mean − 1 (default 3)",
    )
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=None,
        help="first day (default: --days days ago, so the sample ends yesterday, UTC)",
    )
    parser.add_argument(
        "--events-per-day", type=int, default=None, help="usage events per day (default 5/account)"
    )
    parser.add_argument("--mess-rate", type=float, default=d.mess_rate, help="planted bad rows")
    parser.add_argument(
        "--part-rows", type=int, default=d.part_rows, help="rows per generated chunk / part file"
    )
    for flag, default, what in (
        ("--extra-column-day", d.extra_column_day, "usage files carry an extra column"),
        ("--missing-column-day", d.missing_column_day, "invoices file lacks `paid_at`"),
        ("--truncated-line-day", d.truncated_line_day, "tickets file ends mid-line"),
    ):
        parser.add_argument(
            flag, type=int, default=default, help=f"day index (0 = first) whose {what}; -1: none"
        )
    parser.add_argument(
        "--append-day",
        action="store_true",
        help="land the next day after the last generated one (same seed and scale)",
    )


def run(args: argparse.Namespace) -> int:
    out = args.out or Settings.from_env().landing
    if args.append_day:
        day, counts = append_day(out)
        print(f"landed {day} in {out}: {counts}")
        return 0
    cfg = GeneratorConfig(
        seed=args.seed,
        accounts=args.accounts,
        users_per_account=args.users_per_account,
        days=args.days,
        **({"start": args.start} if args.start else {}),
        events_per_day=args.events_per_day,
        mess_rate=args.mess_rate,
        part_rows=args.part_rows,
        extra_column_day=_day_index(args.extra_column_day),
        missing_column_day=_day_index(args.missing_column_day),
        truncated_line_day=_day_index(args.truncated_line_day),
    )
    counts = generate(cfg, out)
    last = cfg.start + dt.timedelta(days=max(cfg.days - 1, 0))
    print(f"generated {cfg.days} days ({cfg.start} … {last}) for {cfg.accounts} accounts in {out}:")
    for source, n in counts.items():
        print(f"  {source:<16} {n:>10} rows")
    return 0


def _day_index(value: int | None) -> int | None:
    return None if value is None or value < 0 else value
