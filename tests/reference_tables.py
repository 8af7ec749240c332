"""HubSpot reference tables (pipelines, owners) written by hand, for tests that plan without
reading a portal. Ids differ from labels on purpose: mappings join by label."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from spokesync.hubspot.reference import OWNERS_SCHEMA, STAGES_SCHEMA
from spokesync.warehouse import write_reference


def write_reference_tables(root: Path) -> None:
    """HubSpot's pipelines and owners as a sync saves them (ids differ from labels on purpose)."""
    stages = [
        ("deals", "p-sales", "Sales Pipeline", "st-trial", "Presentation Scheduled", 2, False),
        ("deals", "p-sales", "Sales Pipeline", "st-won", "Closed Won", 5, True),
        ("deals", "p-sales", "Sales Pipeline", "st-lost", "Closed Lost", 6, True),
        ("deals", "p-renew", "Renewals Pipeline", "st-r-won", "Closed Won", 1, True),
        ("tickets", "0", "Support Pipeline", "1", "New", 0, False),
        ("tickets", "0", "Support Pipeline", "2", "Waiting on contact", 1, False),
        ("tickets", "0", "Support Pipeline", "3", "Waiting on us", 2, False),
        ("tickets", "0", "Support Pipeline", "4", "Closed", 3, True),
    ]
    cols = list(STAGES_SCHEMA.names)
    write_reference(
        root,
        "hubspot_pipeline_stages",
        pa.Table.from_pylist([dict(zip(cols, r, strict=True)) for r in stages], STAGES_SCHEMA),
    )
    owners = [
        {"owner_id": "501", "email": "owner1@example.com", "first_name": "O", "last_name": "One"},
        {"owner_id": "509", "email": "ava.owner@example.com", "first_name": "A", "last_name": "V"},
    ]
    write_reference(root, "hubspot_owners", pa.Table.from_pylist(owners, OWNERS_SCHEMA))
