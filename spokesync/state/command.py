"""``spokesync state``: inspect the state store, replay and purge dead letters.

    spokesync state dead-letters [--object T] [--state open|replayed|resolved|all]
    spokesync state replay --object T [--id N ...] [--mark-only]
    spokesync state purge --older-than 90d [--include-open]
    spokesync state plan [--run RUN_ID] [--object T] [--limit N]
    spokesync state runs [--limit N]
    spokesync state snapshot
    spokesync state rejected [--object T] [--run RUN_ID] [--limit N]
    spokesync state quarantine [--source S] [--date D] [--superseded] [--limit N]
    spokesync state ambiguous | pin | unpin | pins | cursors   (see matches_command)

A replay re-plans its records from the current desired state (after a source or mapping fix)
and sends just them; it never re-sends the stored payload of the letter.

Emails in external ids are masked in the output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import duckdb

from spokesync.exit_codes import ExitCode
from spokesync.settings import Settings
from spokesync.state import matches_command
from spokesync.state.connection import is_not_a_database, not_a_database
from spokesync.state.store import StateStore, StateStoreBusy


def _mask(value: object) -> str:
    from spokesync.hubspot.redact import mask_email

    s = "" if value is None else str(value)
    return mask_email(s) if "@" in s else s


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, help="SPOKESYNC_HOME (default ./data)")
    parser.add_argument("--env", choices=["dev", "test", "prod"], help="SPOKESYNC_ENV")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = sub.add_parser("dead-letters", help="list dead letters")
    p.add_argument("--object", help="object type, e.g. companies")
    p.add_argument("--state", default="open", choices=["open", "replayed", "resolved", "all"])
    p.add_argument("--limit", type=int, default=50)

    p = sub.add_parser(
        "replay", help="re-plan open dead letters from the current desired state and send them"
    )
    p.add_argument("--object", required=True, help="object type, e.g. companies")
    p.add_argument("--id", type=int, action="append", default=None, help="letter id (repeatable)")
    p.add_argument(
        "--mapping",
        type=Path,
        help="mapping file of the object (default: mappings/<object>.yaml)",
    )
    p.add_argument(
        "--mark-only",
        action="store_true",
        help="only mark them replayed (no longer parked): the next sync re-plans and sends them",
    )

    p = sub.add_parser("purge", help="delete old dead letters and quarantined rows (retention)")
    p.add_argument(
        "--older-than",
        type=parse_age,
        required=True,
        metavar="AGE",
        help="last seen more than AGE ago: 90d, 12h, 2w",
    )
    p.add_argument(
        "--include-open",
        action="store_true",
        help="purge open dead letters too (their records are sent again by the next sync)",
    )

    p = sub.add_parser("plan", help="show the planned changes of a shadow run")
    p.add_argument("--run", help="run id (default: the latest shadow run)")
    p.add_argument("--object", help="object type")
    p.add_argument("--limit", type=int, default=50)

    p = sub.add_parser("runs", help="list recent sync runs")
    p.add_argument("--limit", type=int, default=20)

    sub.add_parser("snapshot", help="snapshot size per object type and origin")
    matches_command.add_parsers(sub)

    p = sub.add_parser(
        "rejected", help="records a sync dropped before planning (empty id, inf/NaN, duplicate id)"
    )
    p.add_argument("--object", help="object type")
    p.add_argument("--run", help="run id (default: each object type's latest run)")
    p.add_argument("--limit", type=int, default=50)

    p = sub.add_parser(
        "quarantine",
        help="source rows quarantined at ingest (never sent), with the file, row and reason",
    )
    p.add_argument("--source", help="source table, e.g. users")
    p.add_argument("--date", help="partition date (YYYY-MM-DD) or 'master'")
    p.add_argument(
        "--superseded",
        action="store_true",
        help="also list superseded rows (older rows of a key whose newest row was loaded)",
    )
    p.add_argument("--limit", type=int, default=50)


_EMAIL = re.compile(r"[^\s'\"@,;:<>()]+@[^\s'\"@,;:<>()]+")


def _quarantine(settings: Settings, args: argparse.Namespace) -> int:
    """The warehouse's ``quarantine`` view: what each dropped source row failed (emails
    masked). Superseded rows are left out unless asked for: their key was loaded."""
    from spokesync.warehouse import QUARANTINE, connect

    where, params = ["1 = 1"], {"limit": args.limit}
    if args.source:
        where.append("source = $source")
        params["source"] = args.source
    if args.date:
        where.append("coalesce(partition, 'master') = $date")
        params["date"] = args.date
    if not args.superseded:
        where.append('NOT contains(failed_checks, \'"check":"superseded"\')')
    con = connect(settings.warehouse_dir)
    try:
        if not con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name = $v", {"v": QUARANTINE}
        ).fetchone()[0]:  # type: ignore[index]
            print(f"no quarantined rows under {settings.warehouse_dir}")
            return 0
        total, *_ = con.execute(
            f"SELECT count(*) FROM {QUARANTINE} WHERE {' AND '.join(where)}",
            {k: v for k, v in params.items() if k != "limit"},
        ).fetchone() or (0,)
        rows = con.execute(
            f"SELECT source, coalesce(partition, 'master'), error FROM {QUARANTINE} "
            f"WHERE {' AND '.join(where)} ORDER BY source, partition NULLS FIRST, file, "
            "row_number LIMIT $limit",
            params,
        ).fetchall()
    finally:
        con.close()
    masked = [[src, part, _EMAIL.sub(lambda m: _mask(m[0]), err)] for src, part, err in rows]
    print(_table(["source", "partition", "row and reason"], masked))
    if total > len(rows):
        print(f"({len(rows)} of {total:,} shown; --limit N for more)")
    return 0


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        cells = ["∅" if v is None else str(v).replace("|", "\\|").replace("\n", " ") for v in r]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _replay(settings: Settings, args: argparse.Namespace, store: StateStore) -> int:
    letters = [
        d
        for d in store.open_dead_letters(args.object, ("open",))
        if args.id is None or d.letter_id in args.id
    ]
    if not letters:
        print(f"no open dead letters for {args.object}")
        return 0
    store.mark_replayed(d.letter_id for d in letters)  # un-parks them
    if args.object == "tasks":  # task creates: the ledger holds them pending
        print(
            f"marked {len(letters)} task dead letters replayed; the next sync looks for each "
            "task by its marker and creates the ones HubSpot does not hold, once"
        )
        return 0
    if args.mark_only:
        print(f"marked {len(letters)} dead letters replayed; the next sync re-plans and sends them")
        return 0
    from spokesync.mapping import load_mapping
    from spokesync.sync.runner import default_mapping_paths, replay_records

    path = args.mapping or next(
        (p for p in default_mapping_paths() if p.stem == args.object),
        Path("mappings") / f"{args.object}.yaml",
    )
    mapping = load_mapping(path)
    summary = replay_records(settings, mapping, [d.external_id for d in letters])
    (result,) = summary.objects
    print(
        f"replayed {len(letters)} records of {args.object} from the current desired state "
        f"(run {summary.run_id}): {result.push.records_ok if result.push else 0} confirmed, "
        f"{result.push.records_dead_lettered if result.push else 0} dead-lettered again, "
        f"{result.replay_in_step} already in step"
    )
    print(summary.to_text())
    return int(summary.exit_code)


def _purge(settings: Settings, args: argparse.Namespace, store: StateStore) -> int:
    from spokesync.ingest.quarantine import purge_quarantine

    cutoff = dt.datetime.now(dt.UTC) - args.older_than
    letters = store.dead_letters.purge(cutoff, include_open=args.include_open)
    files, rows = purge_quarantine(settings.warehouse_dir, cutoff)
    print(
        f"purged {letters} dead letters and {rows} quarantined rows ({files} files) last seen "
        f"before {cutoff:%Y-%m-%d %H:%M} UTC"
    )
    return 0


def parse_age(text: str) -> dt.timedelta:
    """``90d``, ``12h``, ``2w`` (days by default) as a timedelta."""
    m = re.fullmatch(r"\s*(\d+)\s*([dhw]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age like 90d, 12h or 2w")
    n, unit = int(m[1]), m[2] or "d"
    return dt.timedelta(**{{"d": "days", "h": "hours", "w": "weeks"}[unit]: n})


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(home=args.home, env=args.env)
    if args.action == "quarantine":  # the warehouse's, not the state store's
        return _quarantine(settings, args)
    path = settings.state_db
    if not path.exists():
        print(f"no state store at {path} (nothing synced yet in env {settings.env})")
        return 1
    store = StateStore(path)
    try:
        if args.action == "dead-letters":
            states = ("open", "replayed", "resolved") if args.state == "all" else (args.state,)
            letters = store.open_dead_letters(args.object, states)[: args.limit]
            print(
                _table(
                    ["id", "object", "external id", "category", "message", "attempts", "state"],
                    [
                        [
                            d.letter_id,
                            d.object_type,
                            _mask(d.external_id),
                            d.category,
                            (d.message or "")[:80],
                            d.attempts,
                            d.state,
                        ]
                        for d in letters
                    ],
                )
            )
            return 0
        if args.action == "replay":
            return _replay(settings, args, store)
        if args.action == "rejected":
            found = store.rejected.latest(args.object, args.run, args.limit)
            print(
                _table(
                    ["run", "object", "as_of", "external id", "reason"],
                    [
                        [
                            r.run_id,
                            r.object_type,
                            r.as_of,
                            _mask(r.external_id) if r.external_id is not None else "(empty)",
                            _EMAIL.sub(lambda m: _mask(m[0]), r.reason),  # it shows the value
                        ]
                        for r in found
                    ],
                )
            )
            return 0
        if args.action in matches_command.ACTIONS:
            return matches_command.run(args, store, _table)
        if args.action == "purge":
            return _purge(settings, args, store)
        if args.action == "plan":
            rows = store.planned_changes(args.run, args.object, args.limit)
            print(
                _table(
                    ["run", "object", "external id", "property", "HubSpot now", "new", "kind"],
                    [[r[0], r[1], _mask(r[2]), r[4], r[5], r[6], r[7]] for r in rows],
                )
            )
            return 0
        with duckdb.connect(str(path), read_only=True) as con:
            if args.action == "runs":
                rows = con.execute(
                    "SELECT run_id, object_type, mapping_version, shadow, as_of, status, "
                    "started_at, finished_at, counts FROM sync_runs "
                    "ORDER BY started_at DESC LIMIT ?",
                    [args.limit],
                ).fetchall()
                headers = ["run", "object", "mapping", "shadow", "as_of", "status", "started"]
                print(_table(headers, [list(r[:7]) for r in rows]))
                for r in rows[:1]:
                    if r[8]:
                        print("\nlatest counts:", json.dumps(json.loads(r[8]), indent=1))
                return 0
            rows = con.execute(
                "SELECT object_type, origin, count(DISTINCT external_id), count(*) "
                "FROM snapshot GROUP BY ALL ORDER BY ALL"
            ).fetchall()
            print(_table(["object", "origin", "records", "values"], [list(r) for r in rows]))
            return 0
    except (duckdb.IOException, StateStoreBusy) as e:
        if is_not_a_database(e):
            raise not_a_database(path) from e
        print(f"state store {path} is busy (another process is writing): {e}")
        return ExitCode.BUSY
