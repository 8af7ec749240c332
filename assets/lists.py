"""Dagster assets of the list mappings (``mappings/lists/*.yaml``): one per static list.

``list_<name>`` keeps the HubSpot list equal to its SQL segment for the partition day (after the
object's push, so new members have HubSpot ids), with metadata members added / removed / total
and the check ``members_in_step``. It is in the sync group, so ``sync_job`` (the nightly
schedule, the new-partition sensor) and ``hubspot_push_job`` run it; it takes the per-portal
pool like every asset that spends the portal's API budget. In a shadow run it reads and plans
and sends nothing (an observation, not a materialization).
"""

import asyncio
from collections.abc import Iterator

import dagster as dg

from assets import partition_checks
from assets.sync import (
    GROUP,
    OWNERS,
    POOL,
    PushRunConfig,
    as_of_for,
    range_result,
    run_is_shadow,
)
from pipelines.partitions import daily_partitions
from resources.hubspot import HubSpotResource
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.redact import redact
from spokesync.mapping.list_spec import ListMappingSpec, load_list_mappings
from spokesync.settings import SettingsError
from spokesync.sync.lists import ListReport
from spokesync.sync.runner import list_mapping_folder, make_client, run_list_mapping

CHECK = "members_in_step"


def build_list_asset(spec: ListMappingSpec) -> dg.AssetsDefinition:
    key = dg.AssetKey(spec.asset_name)

    @dg.asset(
        key=key,
        deps=[dg.AssetKey(f"{spec.object_type}_push")],
        group_name=GROUP,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POOL,
        kinds={"hubspot"},
        owners=OWNERS,
        output_required=False,
        description=f"HubSpot list {spec.list_name!r} ({spec.object_type}, static) kept equal "
        f"to the segment in {spec.path.name}: only the members to add and to remove are sent.",
        check_specs=[
            dg.AssetCheckSpec(
                CHECK,
                asset=key,
                partitions_def=daily_partitions,
                description="Every membership change of the run was confirmed by HubSpot "
                "(WARN). Segment members whose record is not in HubSpot yet are counted in "
                "members_waiting_for_record and added by a later run.",
            )
        ],
    )
    def list_asset(
        context: dg.AssetExecutionContext, config: PushRunConfig, hubspot: HubSpotResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckEvaluation | dg.Output]:
        settings = hubspot.settings()
        shadow = config.shadow or run_is_shadow(context)
        options = hubspot.options(shadow=shadow, run_id=context.run.run_id)

        async def run() -> ListReport:
            client: HubSpotClient | None
            try:
                client = make_client(settings, options)
            except SettingsError:
                if not shadow:
                    raise
                client = None  # a shadow run without a token plans against the snapshot
            try:
                return await run_list_mapping(
                    settings, spec, as_of_for(context), context.run.run_id, options, client
                )
            finally:
                if client is not None:
                    await client.aclose()

        report = asyncio.run(run())
        context.log.info(redact(report.line()))
        meta = report.to_metadata()
        if report.failure is not None:
            raise dg.Failure(description=redact(report.failure.message), metadata=meta)
        if shadow:
            for day in context.partition_keys:
                yield dg.AssetObservation(asset_key=key, partition=day, metadata=meta)
            yield dg.Output(None, output_name=f"{key.path[-1]}_{CHECK}")
            return
        yield range_result(context, meta)  # a range run's figures are on its last day
        unconfirmed = report.unconfirmed + len(report.errors)
        verdict = partition_checks.Verdict(
            passed=unconfirmed == 0,
            description=f"{report.added:,} added, {report.removed:,} removed, "
            f"{report.members_after:,} members; {report.unconfirmed:,} changes unconfirmed, "
            f"{len(report.errors)} failed calls, {report.waiting_for_record:,} segment members "
            "waiting for their record",
            metadata={
                "members_unconfirmed": report.unconfirmed,
                "failed_calls": len(report.errors),
                "members_waiting_for_record": report.waiting_for_record,
            },
        )
        yield from partition_checks.evaluations(
            context.instance, key, CHECK, dict.fromkeys(context.partition_keys, verdict)
        )
        yield dg.Output(None, output_name=f"{key.path[-1]}_{CHECK}")

    return list_asset


LIST_MAPPINGS = load_list_mappings(list_mapping_folder())
LIST_ASSETS = [build_list_asset(s) for s in LIST_MAPPINGS]
