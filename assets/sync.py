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
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from assets import partition_checks
from pipelines.partitions import daily_partitions
from resources.alerts import AlertsResource
from resources.hubspot import HUBSPOT_POOL, HubSpotResource
from spokesync import warehouse
from spokesync.alerts import Alert, AlertSender
from spokesync.hubspot.properties import EnsureReport, ensure_properties, specs_from_mapping
from spokesync.hubspot.redact import is_personal, redact
from spokesync.hubspot.reference import ReferenceReport, refresh_reference
from spokesync.hubspot.schemas import ensure_custom_object
from spokesync.hubspot.tasks import TaskReport
from spokesync.ingest.contract import PARTITIONED_SOURCES, SOURCES
from spokesync.ingest.engine import landed_partitions
from spokesync.ingest.readers import landing_files
from spokesync.kpis import (
    KPI_CHECKS,
    Breach,
    Kpis,
    add_run_kpis,
    breaches,
    landed_at,
    state_kpis,
)
from spokesync.mapping.lineage import property_sources, tables_read
from spokesync.mapping.loader import MappingError, load_mappings_tolerant
from spokesync.mapping.spec import MappingSpec
from spokesync.mapping.task_spec import TaskTriggerSpec, load_task_triggers
from spokesync.rollout import Rollout
from spokesync.settings import Settings
from spokesync.sync.runner import (
    ObjectSyncSummary,
    default_mapping_paths,
    make_client,
    refresh_snapshot,
    run_task_trigger,
    sync_object,
    task_trigger_folder,
    write_desired_parquet,
)

GROUP = "hubspot_sync"
POOL = HUBSPOT_POOL
PROPERTIES_KEY = dg.AssetKey("hubspot_properties")
SHADOW_TAG = "spokesync/shadow"
# Who answers for these assets in the UI (Dagster owners: an email or "team:<name>").
OWNERS = [o.strip() for o in os.environ.get("SPOKESYNC_OWNERS", "team:revops").split(",") if o]


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


def range_result(
    context: dg.AssetExecutionContext, metadata: dict[str, object]
) -> dg.MaterializeResult:
    """The materialization of a run that computed once, as of its last day. A range run's
    last day carries the figures; each earlier day of the range says where they are instead
    of repeating them (a MaterializeResult's metadata would be copied to every day, and the
    plots per partition would claim the range's figures for each day)."""
    days = context.partition_keys
    if len(days) < 2:
        return dg.MaterializeResult(metadata=metadata)
    note = {"as_of": days[-1], "range": f"{days[0]} … {days[-1]}", "figures_on": days[-1]}
    for day in days[:-1]:
        context.add_asset_metadata(note, partition_key=day)
    context.add_asset_metadata(metadata, partition_key=days[-1])
    return dg.MaterializeResult()


def _md_table(counts: dict[str, int]) -> str:
    if not counts:
        return "_no changes_"
    rows = "\n".join(f"| {k} | {v:,} |" for k, v in sorted(counts.items()))
    return "| property | fields changed |\n|---|---:|\n" + rows


def _desired_schema(mapping: MappingSpec) -> dg.TableSchema:
    """Columns of ``<obj>_desired_state``: the external id and one per HubSpot property."""
    cols = [
        dg.TableColumn(
            "external_id",
            "VARCHAR",
            description=f"HubSpot `{mapping.id.property}` (the upsert key), from the source's "
            f"`{mapping.id.column}`",
            constraints=dg.TableColumnConstraints(nullable=False, unique=True),
            tags={"pii": str(is_personal(mapping.id.property)).lower()},
        )
    ]
    for f in mapping.fields:
        source = f"`{f.column}`" if f.column else f"`{f.expr}`"
        text = f.description or f.label or f.property
        cols.append(
            dg.TableColumn(
                f.property,
                f"VARCHAR ({f.canonical_form})",
                description=f"{text}. From {source}; owner {f.owner}, nulls {f.null_policy}.",
                constraints=dg.TableColumnConstraints(nullable=not f.required),
                tags={"pii": str(is_personal(f.property)).lower(), "owner": f.owner},
            )
        )
    return dg.TableSchema(columns=cols)


def _column_lineage(mapping: MappingSpec) -> tuple[dg.TableColumnLineage, dg.TableColumnLineage]:
    """(warehouse column → desired-state column, desired-state column → HubSpot property)."""
    sources = property_sources(mapping, {t: s.column_names for t, s in SOURCES.items()})
    desired_key = dg.AssetKey(f"{mapping.object_type}_desired_state")
    to_desired = dg.TableColumnLineage(
        deps_by_column={
            ("external_id" if prop == mapping.id.property else prop): [
                dg.TableColumnDep(dg.AssetKey(t), c) for t, c in pairs
            ]
            for prop, pairs in sources.items()
            if pairs
        }
    )
    to_hubspot = dg.TableColumnLineage(
        deps_by_column={
            prop: [
                dg.TableColumnDep(
                    desired_key, "external_id" if prop == mapping.id.property else prop
                )
            ]
            for prop in mapping.managed_properties
        }
    )
    return to_desired, to_hubspot


def _asset_tags(mapping: MappingSpec) -> dict[str, str]:
    return {"hubspot_object": mapping.object_type, "mapping": mapping.path.name}


def build_object_assets(mapping: MappingSpec) -> list[dg.AssetsDefinition]:
    obj = mapping.object_type
    desired_key = dg.AssetKey(f"{obj}_desired_state")
    changes_key = dg.AssetKey(f"{obj}_changes")
    push_key = dg.AssetKey(f"{obj}_push")
    reads = sorted(tables_read(mapping))
    to_desired, to_hubspot = _column_lineage(mapping)
    lineage_md = "\n".join(
        f"- `{dep.asset_key.to_user_string()}.{dep.column_name}` → `{col}`"
        for col, deps in to_desired.deps_by_column.items()
        for dep in deps
    )
    common = {
        "group_name": GROUP,
        "partitions_def": daily_partitions,
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "owners": OWNERS,
        "tags": _asset_tags(mapping),
    }
    ids_check = "ids_present_and_unique"
    dead_check = "no_dead_letters"

    @dg.asset(
        key=desired_key,
        # Only the warehouse tables this mapping's SQL reads (ingestion assets of the same
        # names): a quarantined invoices file then blocks only the objects that read invoices.
        # HubSpot's pipelines and owners (reference tables) come from hubspot_properties.
        deps=sorted(
            {PROPERTIES_KEY if t in warehouse.REFERENCE_TABLES else dg.AssetKey(t) for t in reads},
            key=lambda k: k.to_user_string(),
        ),
        kinds={"duckdb", "parquet"},
        description=f"Desired HubSpot {obj} state from `{mapping.path.name}` (canonical "
        f"values), reading {', '.join(f'`{t}`' for t in reads)}. A range run computes the "
        f"range's last day.\n\nColumn lineage (by name):\n\n{lineage_md}",
        metadata={
            "dagster/column_schema": _desired_schema(mapping),
            "dagster/column_lineage": to_desired,
            "mapping_file": mapping.path.name,
        },
        check_specs=[
            dg.AssetCheckSpec(
                ids_check,
                asset=desired_key,
                partitions_def=daily_partitions,
                description="Every source row has a non-empty external id and ids are unique: "
                "rows without an id are not synced, duplicates keep one row (WARN).",
            )
        ],
        **common,
    )
    def desired_state(
        context: dg.AssetExecutionContext, hubspot: HubSpotResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output]:
        as_of = as_of_for(context)
        path, stats = write_desired_parquet(hubspot.settings(), mapping, as_of)
        bad = stats.rejected_ids + stats.duplicates
        yield range_result(
            context,
            {
                "dagster/row_count": stats.records,
                "as_of": as_of.isoformat(),
                "source_rows": stats.source_rows,
                "rejected_ids": stats.rejected_ids,
                "duplicates": stats.duplicates,
                "mapping_version": mapping.version,
                "path": dg.MetadataValue.path(str(path)),
            },
        )
        verdict = partition_checks.Verdict(
            passed=bad == 0,
            description=f"as of {as_of}: {stats.rejected_ids} rows without id, "
            f"{stats.duplicates} duplicate ids",
            metadata={
                "as_of": as_of.isoformat(),
                "rejected_ids": stats.rejected_ids,
                "duplicates": stats.duplicates,
                "duplicate_samples": redact(", ".join(stats.duplicate_samples) or "-"),
            },
        )
        yield from partition_checks.evaluations(
            context.instance, desired_key, ids_check, dict.fromkeys(context.partition_keys, verdict)
        )
        yield dg.Output(None, output_name=f"{desired_key.path[-1]}_{ids_check}")

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
        return range_result(context, _summary_metadata(summary))

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
        # A shadow run yields an observation and no output: the partition is not marked
        # materialized, so a later "missing only" backfill still pushes it.
        output_required=False,
        description=f"Push changed {obj} fields to HubSpot (batch upsert, rate-limited). "
        "In a shadow run (op config `shadow: true`, or run tag `spokesync/shadow: true`) it "
        "sends nothing and records an observation, not a materialization.",
        metadata={"dagster/column_lineage": to_hubspot},
        check_specs=[
            dg.AssetCheckSpec(
                dead_check,
                asset=push_key,
                partitions_def=daily_partitions,
                description="No record was rejected by HubSpot. Rejected records are in the "
                "dead-letter table (`spokesync state dead-letters`), replayable after a fix "
                "(WARN).",
            ),
            *(
                dg.AssetCheckSpec(
                    name, asset=push_key, partitions_def=daily_partitions, description=text
                )
                for name, text in ALERT_CHECKS.items()
            ),
        ],
        **common,
    )
    def push(
        context: dg.AssetExecutionContext,
        config: PushRunConfig,
        hubspot: HubSpotResource,
        alerts: AlertsResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckEvaluation | dg.Output]:
        settings = hubspot.settings()
        shadow = config.shadow or run_is_shadow(context)
        # hubspot_properties (upstream) ensured the properties; don't spend calls again.
        options = hubspot.options(
            shadow=shadow,
            rollout=config.rollout(),
            run_id=context.run.run_id,
            ensure_properties=False,
        )

        async def run() -> object:
            client = None if shadow else make_client(settings, options)
            try:
                return await sync_object(
                    settings, mapping, as_of_for(context), context.run.run_id, options, client
                )
            finally:
                if client is not None:
                    await client.aclose()

        summary = asyncio.run(run())
        context.log.info(redact(summary.line()))
        if summary.error:
            raise dg.Failure(description=redact(summary.error), metadata=_summary_metadata(summary))
        meta = _summary_metadata(summary)
        if shadow:
            for day in context.partition_keys:
                yield dg.AssetObservation(asset_key=push_key, partition=day, metadata=meta)
            # The checks' outputs with no evaluation: nothing was pushed, nothing to check.
            for name in (dead_check, *ALERT_CHECKS):
                yield dg.Output(None, output_name=f"{push_key.path[-1]}_{name}")
            return
        as_of = as_of_for(context)
        kpis, newest = _kpis(context, settings, mapping, as_of, summary)
        meta.update(kpis.as_metadata())
        yield range_result(context, meta)
        sender = None
        kpi_breaches: list[str] = []
        for b in breaches(kpis, alerts.thresholds(), newest_day=newest):
            severity = (
                dg.AssetCheckSeverity.ERROR if b.severity == "error" else dg.AssetCheckSeverity.WARN
            )
            verdict = partition_checks.Verdict(
                b.passed, b.description, severity, {"as_of": str(as_of), **b.metadata}
            )
            yield from partition_checks.evaluations(
                context.instance, push_key, b.check, dict.fromkeys(context.partition_keys, verdict)
            )
            yield dg.Output(None, output_name=f"{push_key.path[-1]}_{b.check}")
            if b.passed:
                continue
            if b.check in KPI_CHECKS:  # one alert for every KPI beyond its threshold
                kpi_breaches.append(b.description)
                continue
            sender = sender or alerts.sender(settings)
            _alert(context, sender, obj, as_of, b.check, ALERT_TITLES[b.check], b.description, b)
        if kpi_breaches:
            sender = sender or alerts.sender(settings)
            text = "; ".join(kpi_breaches)
            _alert(context, sender, obj, as_of, "kpi", "KPIs beyond their thresholds", text, None)
        dead = summary.push.records_dead_lettered if summary.push else 0
        verdict = partition_checks.Verdict(
            passed=dead == 0,
            description=f"{dead:,} records rejected by HubSpot (dead letters)",
            metadata={"records_dead_lettered": dead},
        )
        yield from partition_checks.evaluations(
            context.instance, push_key, dead_check, dict.fromkeys(context.partition_keys, verdict)
        )
        yield dg.Output(None, output_name=f"{push_key.path[-1]}_{dead_check}")

    return [desired_state, changes, push]


ALERT_CHECKS = {
    "failed_records": "Records HubSpot rejected in this run stay under max_failed_rate (1%) of "
    "the records sent (ERROR; alerts).",
    "dead_letters_growing": "Open dead letters did not grow since the previous push (WARN; "
    "alerts).",
    "sync_latency": "The newest day reached HubSpot within its SLA after its files landed: "
    "5 minutes for priority objects, 24 hours for batch enrichment; a webhook-triggered run "
    "measures from the events' receipt to the confirmed write, on the 5-minute SLA "
    "(WARN; alerts).",
    "kpi_success_rate": "Records HubSpot accepted / records sent ≥ min_success_rate (99%) "
    "(WARN; alerts; plotted as kpi_success_rate).",
    "kpi_retry_rate": "Retried requests / write calls ≤ max_retry_rate (20%) (WARN; alerts; "
    "kpi_retry_rate).",
    "kpi_duration": "The object's sync, plan and push within max_duration_s (1 h) (WARN; "
    "alerts; kpi_duration_s).",
    "kpi_open_dead_letters": "Open dead letters of the object after the run ≤ "
    "max_open_dead_letters (100) (WARN; alerts; kpi_open_dead_letters).",
    "kpi_duplicate_rate": "HubSpot records sharing their dedupe key with another in the "
    "snapshot (contacts by email, companies by domain) ≤ max_duplicate_rate (2%) (WARN; "
    "alerts; kpi_duplicate_rate).",
    "kpi_missing_required": "Desired records with a required field empty ≤ "
    "max_missing_required_rate (1%) (WARN; alerts; kpi_missing_required_rate).",
    "kpi_association_completeness": "Desired links HubSpot confirmed (association snapshot) ≥ "
    "min_association_completeness (98%) for every kind of link (WARN; alerts; "
    "kpi_association_completeness_*).",
}
ALERT_TITLES = {
    "failed_records": "records rejected by HubSpot above the threshold",
    "dead_letters_growing": "open dead letters growing",
    "sync_latency": "sync latency beyond the SLA",
}


def _alert(
    context: dg.AssetExecutionContext,
    sender: AlertSender,
    obj: str,
    as_of: dt.date,
    kind: str,
    title: str,
    text: str,
    breach: Breach | None,
) -> None:
    delivery = sender.send(
        Alert(
            kind=kind,
            title=f"{obj}: {title}",
            text=text,
            severity="error" if breach is not None and breach.severity == "error" else "warning",
            fields={"object": obj, "as_of": str(as_of), "run_id": context.run.run_id},
            run_id=context.run.run_id,
        )
    )
    if not delivery.delivered:
        context.log.error(
            f"alert {delivery.alert_id} not delivered ({delivery.error}); kept in the outbox, "
            "re-sent by alert_outbox_sensor and with the next alert"
        )


def _kpis(
    context: dg.AssetExecutionContext,
    settings: Settings,
    mapping: MappingSpec,
    as_of: dt.date,
    summary: ObjectSyncSummary,
) -> tuple[Kpis, bool]:
    """This run's KPIs, and whether ``as_of`` is the newest landed day (latency applies)."""
    desired = warehouse.partition_path(
        settings.warehouse_dir / "desired", mapping.object_type, as_of.isoformat()
    )
    k = add_run_kpis(
        state_kpis(settings.state_db, mapping, desired), summary.push, summary.duration_s
    )
    previous = context.instance.fetch_materializations(context.asset_key, limit=1).records
    if previous:
        before = previous[0].asset_materialization.metadata.get("kpi_open_dead_letters")
        k.open_dead_letters_before = int(before.value) if before is not None else None
    daily = [t for t in tables_read(mapping) if t in PARTITIONED_SOURCES]
    days = [d for t in daily for d in landed_partitions(t, settings.landing)]
    newest = bool(days) and max(days) == as_of.isoformat()
    landed = landed_at(
        f for t in daily for f in landing_files(t, settings.landing, as_of.isoformat())
    )
    if landed is not None:
        k.latency_s = (dt.datetime.now(dt.UTC) - landed).total_seconds()
    return k, newest


def _summary_metadata(summary: ObjectSyncSummary) -> dict[str, object]:
    meta: dict[str, object] = dict(summary.to_metadata())
    meta["plan"] = dg.MetadataValue.md(redact(summary.plan_markdown))
    meta["fields_by_property"] = dg.MetadataValue.md(_md_table(summary.fields_by_property))
    return meta


def run_is_shadow(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> bool:
    """A shadow run sends nothing to HubSpot, ensure-properties included: the run tag
    ``spokesync/shadow: true`` (``hubspot_shadow_job`` sets it) or ``shadow: true`` in any op's
    config of the run (the Launchpad form)."""
    if context.run.tags.get(SHADOW_TAG, "").lower() == "true":
        return True
    ops = (context.run.run_config or {}).get("ops") or {}
    return any(
        isinstance(op, dict) and (op.get("config") or {}).get("shadow") is True
        for op in ops.values()
    )


def build_broken_mapping_asset(path: Path, error: str) -> dg.AssetsDefinition:
    """A stand-in for a mapping file that does not load: the code location (every other
    mapping's assets, the jobs and schedules) stays up, and this node shows the error. Launching
    it fails with that error, so a run that includes it fails and alerts."""
    first = error.splitlines()[0] if error else "invalid mapping"

    @dg.asset(
        key=f"broken_mapping_{validate_asset_name(path.stem)}",
        group_name=GROUP,
        owners=OWNERS,
        tags={"spokesync/mapping": "broken", "mapping": path.name},
        kinds={"yaml"},
        description=f"BROKEN MAPPING `{path.name}`: this object is not synced until the file "
        f"is fixed.\n\n```\n{error}\n```",
        metadata={"mapping_file": str(path), "mapping_error": error},
    )
    def _broken() -> None:
        raise dg.Failure(
            description=f"mapping {path.name} does not load: {first}",
            metadata={"mapping_file": str(path), "mapping_error": error},
        )

    return _broken


def validate_asset_name(stem: str) -> str:
    """A file stem as an asset-name part (Dagster allows letters, digits and _)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in stem) or "unnamed"


def build_sync_assets(
    mappings: list[MappingSpec], broken: dict[Path, str] | None = None
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=PROPERTIES_KEY,
        group_name=GROUP,
        pool=POOL,
        kinds={"hubspot"},
        owners=OWNERS,
        description="Create the custom HubSpot properties the mappings need (the external-id "
        "property with hasUniqueValue); stop when an existing property's type differs. Then "
        "read HubSpot's pipelines and owners into the warehouse (reference tables that "
        "mapping SQL joins for stage and owner ids). In a shadow run it creates nothing: it "
        "reports what it would create (HubSpot is only read).",
    )
    def hubspot_properties(
        context: dg.AssetExecutionContext, hubspot: HubSpotResource
    ) -> dg.MaterializeResult:
        settings = hubspot.settings()
        shadow = run_is_shadow(context)

        async def run() -> tuple[list[EnsureReport], ReferenceReport]:
            client = make_client(settings, hubspot.options())
            try:
                ensured = []
                for m in mappings:
                    # A custom object's schema first (found or created once; dry run in shadow).
                    schema = await ensure_custom_object(
                        client, m, f"{context.run.run_id}-schema", dry_run=shadow
                    )
                    if schema.object_type_id is None and m.custom_object is not None:
                        continue  # shadow, and HubSpot lacks the object: all of it is new
                    ensured.append(
                        await ensure_properties(
                            client, specs_from_mapping(m), m.object_type, dry_run=shadow
                        )
                    )
                ref = await refresh_reference(
                    client, settings.warehouse_dir, f"{context.run.run_id}-ref"
                )
                return ensured, ref
            finally:
                await client.aclose()

        reports, ref = asyncio.run(run())
        created = sum(len(r.created) for r in reports)
        # Materialized in a shadow run too: the reference tables it reads are real, and the
        # desired state depends on them. Nothing was written to HubSpot.
        return dg.MaterializeResult(
            metadata={
                "shadow": str(shadow).lower(),
                "pipeline_stages": ref.stages,
                "owners": ref.owners,
                "properties_created": 0 if shadow else created,
                "properties_to_create": created if shadow else 0,
                "properties_existing": sum(len(r.existing) for r in reports),
                "summary": dg.MetadataValue.md("\n\n".join(r.summary() for r in reports)),
            }
        )

    @dg.asset(
        key="hubspot_snapshot_refresh",
        group_name=GROUP,
        pool=POOL,
        owners=OWNERS,
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
        meta["drift"] = dg.MetadataValue.md(redact("\n\n".join(r.to_markdown() for r in reports)))
        return dg.MaterializeResult(metadata=meta)

    assets: list[dg.AssetsDefinition] = [hubspot_properties, hubspot_snapshot_refresh]
    for mapping in mappings:
        assets.extend(build_object_assets(mapping))
    assets.extend(build_broken_mapping_asset(p, e) for p, e in sorted((broken or {}).items()))
    assets.extend(build_task_asset(t) for t in TASK_TRIGGERS)
    return assets


def build_task_asset(trigger: TaskTriggerSpec) -> dg.AssetsDefinition:
    """HubSpot tasks of one trigger for the partition, exactly once (task ledger)."""

    @dg.asset(
        key=f"tasks_{trigger.name}",
        deps=[dg.AssetKey(f"{trigger.about}_push")],
        group_name=GROUP,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POOL,
        kinds={"hubspot"},
        description=f"Tasks from {trigger.path.name}: one per event (ledger-checked, "
        "recovered by marker after a crash), associated with the record.",
    )
    def tasks(
        context: dg.AssetExecutionContext, config: PushRunConfig, hubspot: HubSpotResource
    ) -> dg.MaterializeResult:
        settings = hubspot.settings()
        options = hubspot.options(shadow=config.shadow, run_id=context.run.run_id)

        async def run() -> TaskReport:
            client = None if config.shadow else make_client(settings, options)
            try:
                # A backfill over a range finds the crossings of every day in it.
                since = dt.date.fromisoformat(context.partition_key_range.start)
                return await run_task_trigger(
                    settings,
                    trigger,
                    as_of_for(context),
                    context.run.run_id,
                    options,
                    client,
                    since,
                )
            finally:
                if client is not None:
                    await client.aclose()

        report = asyncio.run(run())
        context.log.info(report.line())
        if report.errors:
            raise dg.Failure(description="; ".join(report.errors))
        links = report.completeness
        return dg.MaterializeResult(
            metadata={
                **(
                    {f"association_completeness_{links.key}": round(links.share, 6)}
                    if links is not None and links.share is not None
                    else {}
                ),
                "events": report.intents,
                "tasks_created": report.created,
                "tasks_recovered": report.recovered,
                "already_created": report.already_created,
                "waiting_for_record": report.waiting_for_record,
                "unconfirmed": report.unconfirmed,  # dead letters, sent again next run
                "parked": report.parked,  # refused by HubSpot: not sent until they change
                "task_create_calls": report.sends,
                "incomplete_window": report.incomplete_window,
                "older_than_lookback": report.stale,
            }
        )

    return tasks


def load_repo_mappings() -> tuple[list[MappingSpec], dict[Path, str]]:
    """Every mapping that loads and derives its lineage; the rest as {file: error}."""
    loaded, broken = load_mappings_tolerant(default_mapping_paths())
    good: list[MappingSpec] = []
    for mapping in loaded:
        try:
            tables_read(mapping)
        except MappingError as e:
            broken[mapping.path] = str(e)
            continue
        good.append(mapping)
    # A mapping that associates to a broken one cannot push its links: keep it, and let the
    # push's own check name the missing object (its dependency is then on a missing asset).
    return good, broken


TASK_TRIGGERS = load_task_triggers(task_trigger_folder())
MAPPINGS, BROKEN_MAPPINGS = load_repo_mappings()
SYNC_ASSETS = build_sync_assets(MAPPINGS, BROKEN_MAPPINGS)
SYNC_PUSH_KEYS = [dg.AssetKey(f"{m.object_type}_push") for m in MAPPINGS]
