"""``spokesync state``: inspect the state store and replay dead letters.

    spokesync state dead-letters [--object T] [--state open|replayed|resolved|all]
    spokesync state replay [--object T] [--id N ...] [--mark-only]
    spokesync state plan [--run RUN_ID] [--object T] [--limit N]
    spokesync state runs [--limit N]
    spokesync state snapshot
    spokesync state rejected [--object T] [--run RUN_ID] [--limit N]
    spokesync state ambiguous | pin | unpin | pins | cursors   (see matches_command)

Emails in external ids are masked in the output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import duckdb

from spokesync.settings import Settings
from spokesync.state import matches_command
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

    p = sub.add_parser("replay", help="re-send open dead letters to HubSpot")
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
        help="only mark them replayed: the next sync re-sends them (they never reached the "
        "snapshot, so the diff still sees them as changes)",
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


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        cells = ["∅" if v is None else str(v).replace("|", "\\|").replace("\n", " ") for v in r]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _replay(settings: Settings, args: argparse.Namespace, store: StateStore) -> int:
    changes = store.dead_letter_changes(args.object, args.id)
    if not changes:
        print(f"no open dead letters for {args.object}")
        return 0
    letters = [
        d.letter_id
        for d in store.open_dead_letters(args.object)
        if args.id is None or d.letter_id in args.id
    ]
    if args.mark_only:
        n = store.mark_replayed(letters)
        print(f"marked {n} dead letters replayed; the next sync re-sends them")
        return 0
    from spokesync.hubspot.push import push_changes
    from spokesync.mapping import load_mapping
    from spokesync.sync.runner import SyncOptions, make_client, new_run_id

    mapping = load_mapping(args.mapping or Path("mappings") / f"{args.object}.yaml")
    store.set_types(mapping.object_type, mapping.property_types)
    run_id = f"replay-{new_run_id()}"
    store.mark_replayed(letters)

    async def push() -> Any:
        client = make_client(settings, SyncOptions())
        try:
            return await push_changes(
                client,
                object_type=mapping.object_type,
                id_property=mapping.id.property,
                changes=[changes[i : i + 100] for i in range(0, len(changes), 100)],
                sink=store,
                run_id=run_id,
            )
        finally:
            await client.aclose()

    report = asyncio.run(push())
    print(
        f"replayed {len(changes)} records of {args.object} (run {run_id}): "
        f"{report.records_ok} confirmed, {report.records_dead_lettered} dead-lettered again"
    )
    return 0 if report.records_dead_lettered == 0 else 1


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env(home=args.home, env=args.env)
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
                            r.reason,
                        ]
                        for r in found
                    ],
                )
            )
            return 0
        if args.action in matches_command.ACTIONS:
            return matches_command.run(args, store, _table)
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
        print(f"state store {path} is busy (another process is writing): {e}")
        return 1
