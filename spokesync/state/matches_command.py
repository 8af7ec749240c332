"""``spokesync state ambiguous | pin | unpin | pins | cursors``: adoption's decisions.

spokesync state ambiguous [--object T]
spokesync state pin OBJECT EXTERNAL_ID HUBSPOT_ID   # adopt this HubSpot record
spokesync state pin OBJECT EXTERNAL_ID --create      # never adopt: create a new one
spokesync state pin --file pins.yaml                 # {object: {external_id: id|create}}
spokesync state unpin OBJECT EXTERNAL_ID
spokesync state pins [--object T]
spokesync state cursors
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from spokesync.state.store import StateStore

ACTIONS = ("ambiguous", "pin", "unpin", "pins", "cursors")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "ambiguous",
        help="records not written: several HubSpot candidates, duplicates in HubSpot, records "
        "merged into another of ours",
    )
    p.add_argument("--object", help="object type")
    p = sub.add_parser("pin", help="decide a match: external id → HubSpot id (or --create)")
    p.add_argument("object_type", nargs="?")
    p.add_argument("external_id", nargs="?")
    p.add_argument("hubspot_id", nargs="?")
    p.add_argument("--create", action="store_true", help="create a new record, never adopt")
    p.add_argument("--file", type=Path, help="YAML {object: {external_id: hubspot_id|create}}")
    p.add_argument("--note", help="why (kept with the pin)")
    p = sub.add_parser("unpin", help="remove a pin")
    p.add_argument("object_type")
    p.add_argument("external_id")
    p = sub.add_parser("pins", help="list pins")
    p.add_argument("--object", help="object type")
    sub.add_parser("cursors", help="refresh cursors per object")


def load_pin_file(path: Path) -> list[tuple[str, str, str | None]]:
    """``(object_type, external_id, hubspot_id or None)`` from a pins YAML file."""
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of object type → {{external id: id}}")
    out = []
    for object_type, pins in data.items():
        if not isinstance(pins, dict):
            raise ValueError(f"{path}: {object_type}: expected external id → HubSpot id")
        for ext, hid in pins.items():
            target = None if str(hid).strip().lower() == "create" else str(hid).strip()
            if target is not None and not target.isdigit():
                raise ValueError(
                    f"{path}: {object_type}.{ext}: {hid!r} is not a HubSpot record id or 'create'"
                )
            out.append((str(object_type), str(ext), target))
    return out


def run(
    args: argparse.Namespace, store: StateStore, table: Callable[[list[str], list[list[Any]]], str]
) -> int:
    mask = _mask
    if args.action == "ambiguous":
        rows = store.matches.ambiguous(args.object)
        print(
            table(
                ["object", "external id", "rule", "key", "candidates", "reason", "seen"],
                [
                    [
                        a.object_type,
                        mask(a.external_id),
                        a.rule,
                        mask(a.match_key),
                        ", ".join(a.candidates),
                        a.reason,
                        a.seen_at.isoformat(timespec="seconds"),
                    ]
                    for a in rows
                ],
            )
        )
        if any(a.reason not in ("duplicate_in_hubspot", "merged_into_ours") for a in rows):
            print(
                "\nNothing is written for these records. Merge the candidates in HubSpot (the "
                "next sync adopts the survivor), or pin one: spokesync state pin OBJECT "
                "EXTERNAL_ID HUBSPOT_ID (or --create)."
            )
        if any(a.reason == "duplicate_in_hubspot" for a in rows):
            print(
                "\nduplicate_in_hubspot: our record is synced; another HubSpot record looks the "
                "same (e.g. auto-created from a contact's email domain). Merge it into ours in "
                "HubSpot; spokesync never writes to it."
            )
        if any(a.reason == "merged_into_ours" for a in rows):
            print(
                "\nmerged_into_ours: a person merged this record of ours into another of ours "
                "(key: the one the survivor carries). It maps to the survivor, its links stay, "
                "and its own values are held, not written. If the two really are one, stop "
                "sending it from the warehouse; if the merge was a mistake: spokesync state pin "
                "OBJECT EXTERNAL_ID --create."
            )
        return 0
    if args.action == "pin":
        if args.file:
            pins = load_pin_file(args.file)
        elif args.object_type and args.external_id and (args.hubspot_id or args.create):
            if args.hubspot_id and not str(args.hubspot_id).isdigit():
                print(f"spokesync state pin: {args.hubspot_id!r} is not a HubSpot record id")
                return 2
            pins = [(args.object_type, args.external_id, None if args.create else args.hubspot_id)]
        else:
            print("spokesync state pin: give OBJECT EXTERNAL_ID HUBSPOT_ID, --create, or --file")
            return 2
        for object_type, ext, hid in pins:
            store.matches.pin(object_type, ext, hid, args.note)
            print(f"pinned {object_type} {mask(ext)} → {hid or 'create a new record'}")
        return 0
    if args.action == "unpin":
        found = store.matches.unpin(args.object_type, args.external_id)
        print("unpinned" if found else "no such pin")
        return 0 if found else 1
    if args.action == "pins":
        print(
            table(
                ["object", "external id", "HubSpot id", "note"],
                [
                    [p.object_type, mask(p.external_id), p.hubspot_id or "(create)", p.note]
                    for p in store.matches.pins(args.object)
                ],
            )
        )
        return 0
    print(
        table(
            ["object", "cursor", "last full refresh", "last incremental"],
            [
                [c.object_type, c.cursor.isoformat(), c.last_full_at, c.last_incremental_at]
                for c in store.cursors.all()
            ],
        )
    )
    return 0


def _mask(value: object) -> str:
    from spokesync.hubspot.redact import mask_email

    s = "" if value is None else str(value)
    return mask_email(s) if "@" in s else s
