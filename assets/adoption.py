"""Dagster asset of adoption: the dry run of the first sync into an existing portal.

``hubspot_adoption_dry_run`` reads the portal (a full refresh per object, no HubSpot write),
plans every mapping with adoption and reports per object what the first real sync would adopt,
create and leave alone. Its check ``no_ambiguous_matches`` fails (WARN) while records wait for
a person to merge candidates in HubSpot or pin them (``spokesync state pin``).
"""

import asyncio

import dagster as dg

from resources.hubspot import HUBSPOT_POOL, HubSpotResource
from spokesync.mapping.loader import load_mappings
from spokesync.sync.adopt import adoption_dry_run
from spokesync.sync.runner import latest_partition, make_client

GROUP = "hubspot_adoption"
POOL = HUBSPOT_POOL  # one per portal (see resources.hubspot)
DRY_RUN_KEY = dg.AssetKey("hubspot_adoption_dry_run")


@dg.asset(
    key=DRY_RUN_KEY,
    group_name=GROUP,
    pool=POOL,
    kinds={"hubspot", "duckdb"},
    description="Adoption dry run: what the first sync into this portal would adopt, create "
    "and leave alone (reads HubSpot only).",
    check_specs=[dg.AssetCheckSpec("no_ambiguous_matches", asset=DRY_RUN_KEY)],
)
def hubspot_adoption_dry_run(
    context: dg.AssetExecutionContext, hubspot: HubSpotResource
) -> dg.MaterializeResult:
    settings = hubspot.settings()
    mappings = load_mappings(hubspot.mapping_paths())
    as_of = latest_partition(settings.warehouse_dir)

    async def run() -> list:
        client = make_client(settings, hubspot.options())
        try:
            return await adoption_dry_run(settings, mappings, client, as_of, context.run.run_id)
        finally:
            await client.aclose()

    reports = asyncio.run(run())
    meta: dict[str, object] = {"as_of": as_of.isoformat()}
    for r in reports:
        meta.update(
            {f"{r.object_type}_{k}": v for k, v in r.as_metadata().items() if k != "object_type"}
        )
    meta["report"] = dg.MetadataValue.md(
        "\n\n".join("```\n" + r.to_text(limit=20) + "\n```" for r in reports)
    )
    ambiguous = sum(r.ambiguous for r in reports)
    return dg.MaterializeResult(
        metadata=meta,
        check_results=[
            dg.AssetCheckResult(
                check_name="no_ambiguous_matches",
                passed=ambiguous == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"records_ambiguous": ambiguous},
                description="Records with several HubSpot candidates are not written until a "
                "person merges the candidates in HubSpot or pins the record "
                "(`spokesync state ambiguous`, `spokesync state pin`).",
            )
        ],
    )


ADOPTION_ASSETS = [hubspot_adoption_dry_run]
adopt_dry_run_job = dg.define_asset_job(
    "hubspot_adopt_dry_run_job",
    selection=dg.AssetSelection.assets(DRY_RUN_KEY),
    description="Before the first sync into an existing portal: what it would adopt, create "
    "and leave alone. Reads HubSpot only.",
)
ADOPTION_JOBS = [adopt_dry_run_job]
