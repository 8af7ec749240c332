"""``spokesync hubspot …``: portal utilities.

``spokesync hubspot ensure-properties [--mapping FILE …] [--dry-run]`` creates the custom
properties (and groups) the mappings write, and stops with a clear message when an existing
property's type differs from its mapping.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from spokesync.hubspot.client import DEFAULT_API_VERSION, HubSpotClient
from spokesync.hubspot.errors import HubSpotError
from spokesync.hubspot.properties import EnsureReport, ensure_properties, specs_from_mapping
from spokesync.hubspot.redact import redact
from spokesync.progress import Progress
from spokesync.settings import Settings, SettingsError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    ensure = sub.add_parser(
        "ensure-properties",
        help="create missing custom properties; fail on type mismatches",
        description="Create the custom properties the mappings write (the id property with"
        " hasUniqueValue); stop on a type mismatch.",
    )
    ensure.add_argument(
        "--mapping",
        action="append",
        type=Path,
        help="mapping file (repeatable; default: every mappings/*.yaml)",
    )
    ensure.add_argument("--dry-run", action="store_true", help="report, change nothing")
    ensure.add_argument("--base-url", help="HubSpot base URL (default: HUBSPOT_BASE_URL)")
    ensure.add_argument("--api-version", default=DEFAULT_API_VERSION, help="e.g. 2026-03 or v3")


async def _ensure_all(args: argparse.Namespace, settings: Settings) -> list[EnsureReport]:
    from spokesync.hubspot.schemas import ensure_custom_object
    from spokesync.mapping.loader import load_mappings

    mappings = load_mappings(args.mapping or Path("mappings"))
    reports = []
    # Properties created, objects done, time left on a terminal; one line at the end otherwise.
    progress = Progress(
        "install properties",
        unit="properties",
        total_batches=len(mappings),
        batch_unit="objects",
        enabled=not args.dry_run,
    )
    async with HubSpotClient(
        settings.hubspot_base_url, settings.resolved_token(), api_version=args.api_version
    ) as client:
        with progress:
            for mapping in mappings:
                schema = await ensure_custom_object(
                    client, mapping, "ensure-properties", dry_run=args.dry_run
                )
                if mapping.custom_object is not None and schema.object_type_id is None:
                    print(schema.summary())  # a dry run: the schema and its properties are new
                    continue
                reports.append(
                    await ensure_properties(
                        client,
                        specs_from_mapping(mapping),
                        mapping.object_type,
                        dry_run=args.dry_run,
                        progress=progress,
                    )
                )
                progress.advance(0, batches=1)
    return reports


def run(args: argparse.Namespace) -> int:
    if args.action != "ensure-properties":  # pragma: no cover - argparse restricts choices
        return 2
    try:
        settings = Settings.from_env(hubspot_base_url=args.base_url)
        reports = asyncio.run(_ensure_all(args, settings))
    except (HubSpotError, SettingsError, ValueError) as exc:
        print(f"spokesync hubspot ensure-properties: {redact(exc)}", file=sys.stderr)
        return 1
    for report in reports:
        print(report.summary())
    return 0
