"""HubSpot's reference data, read from the portal, for mapping SQL to join.

Pipeline and stage ids, owner ids and association type ids differ per portal and people edit
them, so a mapping never types them by hand: it joins these tables by label or email.

- ``hubspot_pipeline_stages``: object_type, pipeline_id, pipeline_label, stage_id, stage_label,
  stage_order, is_closed — from ``GET /crm/v3/pipelines/{deals|tickets}``;
- ``hubspot_owners``: owner_id, email (lowercased), first_name, last_name — from
  ``GET /crm/v3/owners`` (all pages; archived owners left out: they cannot own records).

:func:`refresh_reference` reads them and saves them as warehouse tables
(``warehouse/hubspot/<table>/data.parquet``, see :mod:`spokesync.warehouse`); a shadow run
without HubSpot access uses the last saved copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from spokesync import warehouse
from spokesync.hubspot.client import HubSpotClient, _raise_unless_ok

PIPELINE_OBJECTS = ("deals", "tickets")

STAGES_SCHEMA = pa.schema(
    [
        ("object_type", pa.string()),
        ("pipeline_id", pa.string()),
        ("pipeline_label", pa.string()),
        ("stage_id", pa.string()),
        ("stage_label", pa.string()),
        ("stage_order", pa.int64()),
        ("is_closed", pa.bool_()),
    ]
)
OWNERS_SCHEMA = pa.schema(
    [
        ("owner_id", pa.string()),
        ("email", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
    ]
)


@dataclass
class ReferenceReport:
    stages: int = 0
    owners: int = 0
    pipelines: dict[str, int] = field(default_factory=dict)


def area_path(client: HubSpotClient, area: str, suffix: str = "") -> str:
    """``/crm/{area}/{version}{suffix}`` (date-based) or ``/crm/v3/{area}{suffix}``."""
    if client.api_version in ("v3", "v4"):
        return f"/crm/v3/{area}{suffix}"
    return f"/crm/{area}/{client.api_version}{suffix}"


async def read_pipelines(client: HubSpotClient, object_type: str, run_id: str) -> list[dict]:
    response = await client.request(
        "GET", area_path(client, "pipelines", f"/{object_type}"), request_id=f"{run_id}-pipelines"
    )
    return list((_raise_unless_ok(response).body or {}).get("results") or ())


async def read_owners(client: HubSpotClient, run_id: str) -> list[dict[str, Any]]:
    owners: list[dict[str, Any]] = []
    after: str | None = None
    page = 0
    while True:
        page += 1
        params: dict[str, Any] = {"limit": 100, "archived": "false"}
        if after:
            params["after"] = after
        response = await client.request(
            "GET", area_path(client, "owners"), params=params, request_id=f"{run_id}-owners{page}"
        )
        body = _raise_unless_ok(response).body or {}
        owners += [o for o in body.get("results") or () if isinstance(o, dict)]
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return owners


def stage_rows(object_type: str, pipelines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for p in pipelines:
        if p.get("archived"):
            continue
        for s in p.get("stages") or ():
            if s.get("archived"):
                continue
            meta = s.get("metadata") or {}
            closed = str(meta.get("isClosed", "")).lower() == "true" or (
                meta.get("ticketState") == "CLOSED"
            )
            rows.append(
                {
                    "object_type": object_type,
                    "pipeline_id": str(p["id"]),
                    "pipeline_label": p.get("label"),
                    "stage_id": str(s["id"]),
                    "stage_label": s.get("label"),
                    "stage_order": int(s.get("displayOrder") or 0),
                    "is_closed": closed,
                }
            )
    return rows


def owner_rows(owners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "owner_id": str(o["id"]),
            "email": (o.get("email") or "").strip().lower() or None,
            "first_name": o.get("firstName"),
            "last_name": o.get("lastName"),
        }
        for o in owners
        if o.get("id") is not None and not o.get("archived")
    ]


async def refresh_reference(
    client: HubSpotClient, warehouse_dir: Path, run_id: str
) -> ReferenceReport:
    """Read pipelines and owners from HubSpot and save them as warehouse tables."""
    report = ReferenceReport()
    stages: list[dict[str, Any]] = []
    for object_type in PIPELINE_OBJECTS:
        pipelines = await read_pipelines(client, object_type, f"{run_id}-{object_type}")
        report.pipelines[object_type] = len(pipelines)
        stages += stage_rows(object_type, pipelines)
    owners = owner_rows(await read_owners(client, run_id))
    warehouse.write_reference(
        warehouse_dir, "hubspot_pipeline_stages", pa.Table.from_pylist(stages, STAGES_SCHEMA)
    )
    warehouse.write_reference(
        warehouse_dir, "hubspot_owners", pa.Table.from_pylist(owners, OWNERS_SCHEMA)
    )
    report.stages, report.owners = len(stages), len(owners)
    return report
