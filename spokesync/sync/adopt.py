"""``spokesync adopt --dry-run``: what the first real sync into a portal would adopt, create and
leave alone, before any write to HubSpot.

It reads the portal (a full refresh per synced object: pages of records, nothing per record),
plans every mapping with adoption (:mod:`spokesync.adoption`) and reports. HubSpot is only
read; the local state store takes the snapshot and the ambiguous matches, as a sync would.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path

from spokesync.desired import reference_tables_used
from spokesync.diff import plan_changes
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.errors import HubSpotError
from spokesync.hubspot.redact import mask_email
from spokesync.hubspot.reference import refresh_reference
from spokesync.mapping.loader import load_mappings
from spokesync.mapping.spec import MappingSpec
from spokesync.settings import Settings, SettingsError
from spokesync.state.store import StateStore
from spokesync.sync.refresh import full_refresh
from spokesync.sync.runner import (
    SyncOptions,
    default_mapping_paths,
    latest_partition,
    make_client,
    new_run_id,
)


def _mask(value: object) -> str:
    s = "" if value is None else str(value)
    return mask_email(s) if "@" in s else s


@dataclass
class AdoptionReport:
    """One object: what the first real sync would do with each desired record."""

    object_type: str
    records_desired: int = 0
    adopt: int = 0
    create: int = 0
    ambiguous: int = 0
    update: int = 0  # already ours (carry our external id): diffed as usual
    unchanged: int = 0
    merged_away: int = 0  # ours, merged in HubSpot into another of ours: held
    portal_records: int = 0  # records the refresh read
    left_alone: int = 0  # HubSpot records no desired record owns or adopts
    read_calls: int = 0
    rules: list[str] = field(default_factory=list)
    adopt_samples: list[tuple[str, str, str]] = field(default_factory=list)
    ambiguous_samples: list[tuple[str, list[str], str, str]] = field(default_factory=list)

    def as_metadata(self) -> dict[str, int | str]:
        return {
            "object_type": self.object_type,
            "records_desired": self.records_desired,
            "would_adopt": self.adopt,
            "would_create": self.create,
            "ambiguous": self.ambiguous,
            "would_update": self.update,
            "unchanged": self.unchanged,
            "merged_away": self.merged_away,
            "portal_records": self.portal_records,
            "left_alone": self.left_alone,
            "read_calls": self.read_calls,
        }

    def to_text(self, limit: int = 10) -> str:
        lines = [
            f"{self.object_type}: {self.records_desired:,} desired — adopt {self.adopt:,}, "
            f"create {self.create:,}, ambiguous {self.ambiguous:,} (not written), update "
            f"{self.update:,}, unchanged {self.unchanged:,}; portal holds "
            f"{self.portal_records:,}, {self.left_alone:,} left alone; {self.read_calls} read calls"
            + (
                f"; merged into another of ours {self.merged_away:,} (held)"
                if self.merged_away
                else ""
            ),
            f"  rules: {'; '.join(self.rules) or 'none (only the external id matches)'}",
        ]
        for ext, hid, rule in self.adopt_samples[:limit]:
            lines.append(f"  adopt      {_mask(ext)} → HubSpot {hid} (by {rule})")
        for ext, cands, rule, reason in self.ambiguous_samples[:limit]:
            lines.append(
                f"  ambiguous  {_mask(ext)}: {reason} {', '.join(cands)} (by {rule}) — merge them "
                f"in HubSpot or `spokesync state pin {self.object_type} {ext} <id>`"
            )
        return "\n".join(lines)


async def adoption_dry_run(
    settings: Settings,
    mappings: list[MappingSpec],
    client: HubSpotClient,
    as_of: dt.date,
    run_id: str,
) -> list[AdoptionReport]:
    """Full refresh of each mapping's object, then the plan with adoption; no HubSpot write."""
    from spokesync.hubspot.schemas import resolve_custom_objects

    reports = []
    mappings = sorted(mappings, key=lambda m: (bool(m.associations), m.object_type))
    await resolve_custom_objects(client, mappings, run_id)
    # A custom object HubSpot does not have yet holds no records to adopt.
    mappings = [
        m for m in mappings if m.custom_object is None or m.object_type in client.object_type_ids
    ]
    for mapping in mappings:
        if reference_tables_used(mapping):  # pipelines and owners, as HubSpot has them (reads)
            await refresh_reference(client, settings.warehouse_dir, f"{run_id}-ref")
        refresh = await full_refresh(settings, mapping, client, run_id)
        report = AdoptionReport(
            object_type=mapping.object_type,
            portal_records=refresh.drift.records_read,
            read_calls=refresh.calls,
            rules=[r.describe() for r in mapping.match_rules],
        )
        with plan_changes(settings.state_db, settings.warehouse_dir, mapping, as_of) as plan:
            report.records_desired = plan.records_desired
            report.adopt = plan.records_adopted
            report.create = plan.records_new
            report.ambiguous = plan.records_ambiguous
            report.update = plan.records_updated
            report.merged_away = plan.records_merged_away
            report.unchanged = (
                plan.records_desired
                - plan.records_changed
                - plan.records_ambiguous
                - plan.records_merged_away
            )
            report.adopt_samples = [
                (str(r[0]), str(r[1]), str(r[3])) for r in plan.adoption_rows("adopt")
            ]
            report.ambiguous_samples = [
                (str(r[0]), list(r[5] or []), str(r[3]), str(r[6]))  # type: ignore[call-overload]
                for r in plan.adoption_rows("ambiguous")
            ]
            with StateStore(settings.state_db, [mapping]) as store:
                store.matches.record_ambiguous(mapping.object_type, plan.ambiguous_table(), run_id)
            # HubSpot records a desired record owns or adopts; every other one is left alone.
            touched = (
                plan.records_desired
                - plan.records_new
                - plan.records_ambiguous
                - plan.records_merged_away
            )
        report.left_alone = max(0, report.portal_records - touched)
        reports.append(report)
    return reports


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        required=True,
        help="read the portal and report; write nothing to HubSpot (the real adoption is "
        "the next `spokesync sync`)",
    )
    parser.add_argument("--mapping", action="append", type=Path, default=[], metavar="FILE")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="partition date")
    parser.add_argument("--home", type=Path, help="SPOKESYNC_HOME (default ./data)")
    parser.add_argument("--env", choices=["dev", "test", "prod"], help="SPOKESYNC_ENV")
    parser.add_argument("--base-url", help="HUBSPOT_BASE_URL")
    parser.add_argument("--rate-limit", type=int, default=190, help="requests per 10 s")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env(home=args.home, env=args.env, hubspot_base_url=args.base_url)
        mappings = load_mappings(list(args.mapping) or default_mapping_paths())
        as_of = args.as_of or latest_partition(settings.warehouse_dir)

        async def go() -> list[AdoptionReport]:
            client = make_client(settings, SyncOptions(rate_limit_per_10s=args.rate_limit))
            try:
                return await adoption_dry_run(settings, mappings, client, as_of, new_run_id())
            finally:
                await client.aclose()

        reports = asyncio.run(go())
    except (HubSpotError, SettingsError, RuntimeError, ValueError) as exc:
        print(f"spokesync adopt: {exc}", file=sys.stderr)
        return 2
    print(f"adoption dry run as of {as_of} (nothing written to HubSpot)")
    for report in reports:
        print(report.to_text())
    return 0
