"""Dagster assets of the HubSpot sync, one set per mapping file (``mappings/*.yaml``).

Per synced object ``<obj>`` (companies, contacts, deals, tickets, …):

- ``<obj>_desired_state`` — the mapping's SQL over the warehouse for the partition date,
  canonicalised, written as Parquet (``warehouse/desired/<obj>/date=…``);
- ``<obj>_changes`` — the field-level diff against the snapshot, recorded as the plan
  (this is what shadow mode shows; nothing is sent);
- ``<obj>_push`` — plans again against the current snapshot and pushes the changed records
  (pool ``hubspot_api``: one push per portal at a time); with ``shadow: true`` it sends nothing.

plus ``hubspot_properties`` (ensure-properties) and ``hubspot_snapshot_refresh`` (read HubSpot
back into the snapshot and report drift). Partitioned assets use a single-run backfill policy:
a backfill over a range plans and pushes once, for the range's last day (the as-of guard keeps
older partitions from rolling newer values back).
"""

import asyncio
import datetime as dt

import dagster as dg

from pipelines.partitions import daily_partitions
from resources.hubspot import HubSpotResource
from spokesync import warehouse
from spokesync.hubspot.properties import EnsureReport, ensure_properties, specs_from_mapping
from spokesync.hubspot.reference import ReferenceReport, refresh_reference
from spokesync.mapping.lineage import tables_read
from spokesync.mapping.loader import load_mappings
from spokesync.mapping.spec import MappingSpec
from spokesync.rollout import Rollout
from spokesync.sync.runner import (
    default_mapping_paths,
    make_client,
    refresh_snapshot,
    sync_object,
    write_desired_parquet,
)

GROUP = "hubspot_sync"
POOL = "hubspot_api"
PROPERTIES_KEY = dg.AssetKey("hubspot_properties")


class PushRunConfig(dg.Config):
    """Per-run choices, editable in the Launchpad."""

    shadow: bool = False  # plan only: record the changes, send nothing
    rollout_percent: float | None = None  # write only this stable % of external ids
    rollout_where: str | None = None  # write only records matching this SQL predicate

    def rollout(self) -> Rollout | None:
        if self.rollout_percent is None and not self.rollout_where:
            return None
        return Rollout(predicate=self.rollout_where, percent=self.rollout_percent)


def as_of_for(context: dg.AssetExecutionContext) -> dt.date:
    """The partition date; for a single-run backfill over a range, the range's last day."""
    return dt.date.fromisoformat(context.partition_key_range.end)


def _md_table(counts: dict[str, int]) -> str:
    if not counts:
        return "_no changes_"
    rows = "\n".join(f"| {k} | {v:,} |" for k, v in sorted(counts.items()))
    return "| property | fields changed |\n|---|---:|\n" + rows


def build_object_assets(mapping: MappingSpec) -> list[dg.AssetsDefinition]:
    obj = mapping.object_type
    desired_key = dg.AssetKey(f"{obj}_desired_state")
    changes_key = dg.AssetKey(f"{obj}_changes")
    push_key = dg.AssetKey(f"{obj}_push")
    common = {
        "group_name": GROUP,
        "partitions_def": daily_partitions,
        "backfill_policy": dg.BackfillPolicy.single_run(),
    }

    @dg.asset(
        key=desired_key,
        # Only the warehouse tables this mapping's SQL reads (ingestion assets of the same
        # names): a quarantined invoices file then blocks only the objects that read invoices.
        # HubSpot's pipelines and owners (reference tables) come from hubspot_properties.
        deps=sorted(
            {
                PROPERTIES_KEY if t in warehouse.REFERENCE_TABLES else dg.AssetKey(t)
                for t in tables_read(mapping)
            },
            key=lambda k: k.to_user_string(),
        ),
        kinds={"duckdb", "parquet"},
        description=f"Desired HubSpot {obj} state from {mapping.path.name} (canonical values).",
        check_specs=[dg.AssetCheckSpec("ids_present_and_unique", asset=desired_key)],
        **common,
    )
    def desired_state(
        context: dg.AssetExecutionContext, hubspot: HubSpotResource
    ) -> dg.MaterializeResult:
        as_of = as_of_for(context)
        path, stats = write_desired_parquet(hubspot.settings(), mapping, as_of)
        bad = stats.rejected_ids + stats.duplicates
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": stats.records,
                "as_of": as_of.isoformat(),
                "source_rows": stats.source_rows,
                "rejected_ids": stats.rejected_ids,
                "duplicates": stats.duplicates,
                "mapping_version": mapping.version,
                "path": dg.MetadataValue.path(str(path)),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="ids_present_and_unique",
                    passed=bad == 0,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={
                        "rejected_ids": stats.rejected_ids,
                        "duplicates": stats.duplicates,
                        "duplicate_samples": ", ".join(stats.duplicate_samples) or "-",
                    },
                    description="Rows with an empty id are not synced; duplicates keep one row.",
                )
            ],
        )

    @dg.asset(
        key=changes_key,
        deps=[desired_key],
        pool=POOL,
        kinds={"duckdb"},
        description=f"Field-level diff of {obj} against the snapshot: the plan (no writes).",
        **common,
    )
    def changes(
        context: dg.AssetExecutionContext, config: PushRunConfig, hubspot: HubSpotResource
    ) -> dg.MaterializeResult:
        settings = hubspot.settings()
        options = hubspot.options(shadow=True, rollout=config.rollout(), run_id=context.run.run_id)
        summary = asyncio.run(
            sync_object(settings, mapping, as_of_for(context), context.run.run_id, options, None)
        )
        meta = summary.to_metadata()
        meta["plan"] = dg.MetadataValue.md(summary.plan_markdown)
        meta["fields_by_property"] = dg.MetadataValue.md(_md_table(summary.fields_by_property))
        return dg.MaterializeResult(metadata=meta)

    @dg.asset(
        key=push_key,
        # Associations need both ends in HubSpot: push the target objects first.
        deps=[
            changes_key,
            PROPERTIES_KEY,
            *(dg.AssetKey(f"{a.to_object_type}_push") for a in mapping.associations),
        ],
        pool=POOL,
        kinds={"hubspot"},
        description=f"Push changed {obj} fields to HubSpot (batch upsert, rate-limited).",
        check_specs=[dg.AssetCheckSpec("no_dead_letters", asset=push_key)],
        **common,
    )
    def push(
        context: dg.AssetExecutionContext, config: PushRunConfig, hubspot: HubSpotResource
    ) -> dg.MaterializeResult:
        settings = hubspot.settings()
        # hubspot_properties (upstream) ensured the properties; don't spend calls again.
        options = hubspot.options(
            shadow=config.shadow,
            rollout=config.rollout(),
            run_id=context.run.run_id,
            ensure_properties=False,
        )

        async def run() -> object:
            client = None if config.shadow else make_client(settings, options)
            try:
                return await sync_object(
                    settings, mapping, as_of_for(context), context.run.run_id, options, client
                )
            finally:
                if client is not None:
                    await client.aclose()

        summary = asyncio.run(run())
        context.log.info(summary.line())
        if summary.error:
            raise dg.Failure(description=summary.error, metadata=summary.to_metadata())
        dead = summary.push.records_dead_lettered if summary.push else 0
        meta = summary.to_metadata()
        meta["plan"] = dg.MetadataValue.md(summary.plan_markdown)
        return dg.MaterializeResult(
            metadata=meta,
            check_results=[
                dg.AssetCheckResult(
                    check_name="no_dead_letters",
                    passed=dead == 0,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"records_dead_lettered": dead},
                    description="Rejected records are in the dead-letter table "
                    "(`spokesync state dead-letters`), replayable after a fix.",
                )
            ],
        )

    return [desired_state, changes, push]


def build_sync_assets(mappings: list[MappingSpec]) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=PROPERTIES_KEY,
        group_name=GROUP,
        pool=POOL,
        kinds={"hubspot"},
        description="Create the custom HubSpot properties the mappings need (the external-id "
        "property with hasUniqueValue); stop when an existing property's type differs. Then "
        "read HubSpot's pipelines and owners into the warehouse (reference tables that "
        "mapping SQL joins for stage and owner ids).",
    )
    def hubspot_properties(
        context: dg.AssetExecutionContext, hubspot: HubSpotResource
    ) -> dg.MaterializeResult:
        settings = hubspot.settings()

        async def run() -> tuple[list[EnsureReport], ReferenceReport]:
            client = make_client(settings, hubspot.options())
            try:
                ensured = [
                    await ensure_properties(client, specs_from_mapping(m), m.object_type)
                    for m in mappings
                ]
                ref = await refresh_reference(
                    client, settings.warehouse_dir, f"{context.run.run_id}-ref"
                )
                return ensured, ref
            finally:
                await client.aclose()

        reports, ref = asyncio.run(run())
        return dg.MaterializeResult(
            metadata={
                "pipeline_stages": ref.stages,
                "owners": ref.owners,
                "properties_created": sum(len(r.created) for r in reports),
                "properties_existing": sum(len(r.existing) for r in reports),
                "summary": dg.MetadataValue.md("\n\n".join(r.summary() for r in reports)),
            }
        )

    @dg.asset(
        key="hubspot_snapshot_refresh",
        group_name=GROUP,
        pool=POOL,
        kinds={"hubspot", "duckdb"},
        description="Full refresh: read every managed property back from HubSpot into the "
        "snapshot and report drift (values people changed in HubSpot).",
    )
    def hubspot_snapshot_refresh(
        context: dg.AssetExecutionContext, hubspot: HubSpotResource
    ) -> dg.MaterializeResult:
        settings = hubspot.settings()

        async def run() -> list[object]:
            client = make_client(settings, hubspot.options())
            try:
                return await refresh_snapshot(settings, mappings, client, context.run.run_id)
            finally:
                await client.aclose()

        reports = asyncio.run(run())
        meta: dict[str, object] = {}
        for r in reports:
            meta.update({f"{r.object_type}_{k}": v for k, v in r.as_metadata().items()})
        meta["drift"] = dg.MetadataValue.md("\n\n".join(r.to_markdown() for r in reports))
        return dg.MaterializeResult(metadata=meta)

    assets: list[dg.AssetsDefinition] = [hubspot_properties, hubspot_snapshot_refresh]
    for mapping in mappings:
        assets.extend(build_object_assets(mapping))
    return assets


MAPPINGS = load_mappings(default_mapping_paths())
SYNC_ASSETS = build_sync_assets(MAPPINGS)
SYNC_PUSH_KEYS = [dg.AssetKey(f"{m.object_type}_push") for m in MAPPINGS]
