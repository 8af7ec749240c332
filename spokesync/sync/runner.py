"""One sync run, end to end, without Dagster.

``run_sync`` is what ``spokesync sync`` calls; the Dagster assets call the same steps one by
one (:func:`sync_object`, :func:`refresh_snapshot`) so the UI shows each of them. The order
per mapping is: ensure the HubSpot properties exist → plan (desired state vs snapshot, in
DuckDB) → push the changed records (write-through to the snapshot after every confirmed
batch) or, in shadow mode, record the plan and send nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from spokesync import warehouse
from spokesync.changes import PushSink, RecordChange
from spokesync.completeness import LinkCompleteness, measure_plan, measure_tasks
from spokesync.desired import (
    DESIRED_TABLE,
    ID_COLUMN,
    DesiredStats,
    build_desired,
    reference_tables_used,
)
from spokesync.diff import ChangePlan, plan_changes
from spokesync.exit_codes import MEANING, ExitCode, worst
from spokesync.failure import Failure, attach_summary, explain
from spokesync.hubspot.association_types import resolve_association_types
from spokesync.hubspot.associations import AssociationReport
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.errors import HubSpotError
from spokesync.hubspot.properties import (
    EnsureReport,
    PropertyMismatchError,
    UnknownPropertyError,
    ensure_properties,
    existing_properties,
    specs_from_mapping,
)
from spokesync.hubspot.push import (
    PushAborted,
    PushConfig,
    PushReport,
    canonical_key,
    push_changes,
)
from spokesync.hubspot.rate_limit import RateLimiter
from spokesync.hubspot.reference import refresh_reference
from spokesync.hubspot.schemas import SchemaReport, ensure_custom_object, resolve_custom_objects
from spokesync.hubspot.tasks import TaskReport, create_tasks
from spokesync.ingest.gate import (
    GateFinding,
    dropped_at_ingest,
    error_rate_from_env,
    quarantine_gate,
)
from spokesync.mapping.lineage import tables_read
from spokesync.mapping.list_spec import ListMappingSpec, load_list_mapping, load_list_mappings
from spokesync.mapping.loader import MappingError, load_mappings
from spokesync.mapping.spec import MappingSpec
from spokesync.mapping.task_spec import TaskTriggerSpec, load_task_trigger, load_task_triggers
from spokesync.memory import peak_rss_mb, rss_mb
from spokesync.plan_events import plan_events
from spokesync.progress import Progress, ProgressSink
from spokesync.rollout import Rollout
from spokesync.settings import Settings, SettingsError
from spokesync.state.store import DriftReport, StateStore
from spokesync.state.writer import WriterStats
from spokesync.sync import verify_push
from spokesync.sync.links import LinkPipeline
from spokesync.sync.lists import ListReport, sync_list
from spokesync.sync.refresh import RefreshReport, full_refresh, incremental_refresh
from spokesync.sync.verify_push import VerifyReport
from spokesync.task_triggers import plan_tasks

# The repository's mappings/ folder, unless SPOKESYNC_MAPPINGS names another one.
DEFAULT_MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings"


def new_run_id() -> str:
    """A sortable, unique run id: UTC timestamp plus a short random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def default_mapping_paths() -> list[Path]:
    folder = Path(os.environ.get("SPOKESYNC_MAPPINGS") or DEFAULT_MAPPINGS_DIR)
    return sorted(folder.glob("*.yaml"))


def latest_partition(warehouse_dir: Path) -> dt.date:
    """The newest partition date present in any partitioned warehouse table."""
    days = [
        p.name.removeprefix("date=")
        for table in warehouse.PARTITIONED_TABLES
        for p in (Path(warehouse_dir) / table).glob("date=*")
        if (p / "data.parquet").exists()
    ]
    if not days:
        raise warehouse.WarehouseEmpty(
            f"the warehouse at {warehouse_dir} has no partitions yet: ingest landing files first "
            "(spokesync ingest --all)"
        )
    return dt.date.fromisoformat(max(days))


@dataclass(frozen=True)
class SyncOptions:
    """What to sync and how. ``as_of`` defaults to the newest warehouse partition."""

    mapping_paths: Sequence[Path] = ()
    as_of: dt.date | None = None
    shadow: bool = False
    rollout: Rollout | None = None
    run_id: str | None = None
    ensure_properties: bool = True
    push: PushConfig = field(default_factory=PushConfig)
    rate_limit_per_10s: int = 190
    daily_budget: int | None = None
    # Block a mapping when a source it reads has more than this share quarantined
    # (default: $SPOKESYNC_QUARANTINE_ERROR_RATE, else 5%, as the Dagster check).
    quarantine_error_rate: float | None = None
    # Task triggers (mappings/tasks/*.yaml); None: the default folder's, on a run of all
    # mappings (a run of chosen mapping files runs no triggers unless given here).
    task_trigger_paths: Sequence[Path] | None = None
    # List mappings (mappings/lists/*.yaml): None, as for task triggers.
    list_mapping_paths: Sequence[Path] | None = None
    progress: bool = False  # show the push's progress on stderr (see spokesync.progress)
    # Before each push: "incremental" reads what HubSpot modified since the last refresh (a
    # full refresh when the object was never read, e.g. the first sync into a portal), "full"
    # re-reads everything, "none" trusts the snapshot.
    refresh: Literal["incremental", "full", "none"] = "incremental"


@dataclass
class ObjectSyncSummary:
    """What one mapping's sync did."""

    object_type: str
    mapping_version: str
    as_of: dt.date
    shadow: bool
    records_desired: int
    records_changed: int
    records_new: int
    fields_changed: int
    rejected_ids: int
    duplicates: int
    plan_markdown: str
    records_adopted: int = 0
    records_ambiguous: int = 0
    records_duplicated: int = 0  # ours, and another HubSpot record looks the same
    records_merged_away: int = 0  # ours, merged in HubSpot into another of ours: held
    fields_by_property: dict[str, int] = field(default_factory=dict)
    planned_rows: int = 0
    push: PushReport | None = None
    refresh: RefreshReport | None = None
    properties: EnsureReport | None = None
    custom_object: SchemaReport | None = None  # the custom object's schema, found or created
    associations: list[AssociationReport] = field(default_factory=list)
    state_writes: WriterStats | None = None
    own_writes: VerifyReport | None = None  # the push's writes counted while it ran
    error: str | None = None
    duration_s: float = 0.0
    blocked_by: list[str] = field(default_factory=list)  # quarantine-gate findings
    rejected_records: int = 0  # dropped before planning, listed in `spokesync state rejected`
    # Source rows quarantined at ingest (below the gate's rate) in the tables the mapping reads
    # as of this day, by "<source> <partition|master>": listed in `spokesync state quarantine`.
    quarantined: dict[str, int] = field(default_factory=dict)
    fields_held: int = 0  # differing fields the as-of guard kept (HubSpot holds a newer day)
    held_note: str = ""
    # differing values within their field's threshold (not sent) and what that saved
    fields_within_tolerance: int = 0
    records_within_tolerance: int = 0
    write_calls_saved: int = 0
    tolerance_note: str = ""
    events_recorded: int = 0
    gated: dict[str, int] = field(default_factory=dict)  # gate → records failing it
    reported: dict[str, int] = field(default_factory=dict)  # report → records matching it
    withheld: dict[str, int] = field(default_factory=dict)  # send_with: fields held back
    failure: Failure | None = None  # why the mapping stopped early, when it did
    parked: int = 0  # records not sent: parked dead letters whose desired values are unchanged
    retried: int = 0  # records sent again after an earlier run's transient failure
    replay_in_step: int = 0  # replayed records the new plan found already in step (resolved)
    # wall seconds per stage: setup (reference data, properties), refresh, desired, diff,
    # plan_other, push (until every result is saved), associations, finish (verify, events);
    # a shadow run: planned_rows (saving the planned changes) instead of push … finish
    stages: dict[str, float] = field(default_factory=dict)
    # per stage, the process's memory at its end (MiB): peak so far, and resident now
    stage_peak_rss_mb: dict[str, float] = field(default_factory=dict)
    stage_rss_mb: dict[str, float] = field(default_factory=dict)
    # Per kind of link: desired links HubSpot confirmed (measured after the push).
    completeness: list[LinkCompleteness] = field(default_factory=list)

    @classmethod
    def nothing_planned(
        cls, mapping: MappingSpec, as_of: dt.date, shadow: bool, error: str, **extra: Any
    ) -> ObjectSyncSummary:
        """The summary of a mapping stopped before its plan (setup failed, a gate blocked)."""
        return cls(
            object_type=mapping.object_type,
            mapping_version=mapping.version,
            as_of=as_of,
            shadow=shadow,
            records_desired=0,
            records_changed=0,
            records_new=0,
            fields_changed=0,
            rejected_ids=0,
            duplicates=0,
            plan_markdown="",
            error=error,
            **extra,
        )

    @property
    def outcome(self) -> ExitCode:
        """The exit code this mapping alone would give (see :mod:`spokesync.exit_codes`)."""
        if self.failure is not None:
            return self.failure.code
        if self.blocked_by:
            return ExitCode.GATE_BLOCKED
        if self.error:
            return ExitCode.FAILED
        if self.push is not None and self.push.stopped_reason:
            return ExitCode.DAILY_BUDGET
        dead = self.push.records_dead_lettered if self.push is not None else 0
        links_failed = sum(a.pairs_failed for a in self.associations)
        if dead or self.parked or links_failed:
            return ExitCode.DEAD_LETTERED
        if self.records_dropped:
            return ExitCode.DROPPED
        return ExitCode.OK

    @property
    def records_dropped(self) -> int:
        """Source rows and records held back before the push: not in step either."""
        return self.rejected_records + sum(self.quarantined.values())

    def to_metadata(self) -> dict[str, int | float | str]:
        """Flat numbers for Dagster metadata (plotted over time) and the CLI summary."""
        meta: dict[str, int | float | str] = {
            "object_type": self.object_type,
            "mapping_version": self.mapping_version,
            "as_of": self.as_of.isoformat(),
            "shadow": str(self.shadow).lower(),
            "records_desired": self.records_desired,
            "records_changed": self.records_changed,
            "records_new": self.records_new,
            "records_adopted": self.records_adopted,
            "records_ambiguous": self.records_ambiguous,
            "records_duplicated_in_hubspot": self.records_duplicated,
            "records_merged_away": self.records_merged_away,
            "fields_changed": self.fields_changed,
            "rejected_ids": self.rejected_ids,
            "duplicates": self.duplicates,
            "fields_held_newer": self.fields_held,
            "fields_within_tolerance": self.fields_within_tolerance,
            "records_within_tolerance": self.records_within_tolerance,
            "write_calls_saved": self.write_calls_saved,
            "duration_s": round(self.duration_s, 3),
        }
        meta["rejected_records"] = self.rejected_records
        meta["rows_quarantined"] = sum(self.quarantined.values())
        if self.blocked_by:
            meta["blocked_by"] = "; ".join(self.blocked_by)
        if self.shadow:
            meta["planned_rows"] = self.planned_rows
            meta["write_calls"] = 0
        if self.push is not None:
            for key, value in self.push.to_metadata().items():
                if key != "object_type":
                    meta[f"push_{key}" if key == "duration_s" else key] = value
        if self.state_writes is not None:
            meta.update(self.state_writes.to_metadata())
        if self.own_writes is not None:
            meta.update(self.own_writes.as_metadata())
        if self.properties is not None:
            meta["properties_created"] = len(self.properties.created)
        if self.custom_object is not None and self.custom_object.object_type_id:
            meta["custom_object_type_id"] = self.custom_object.object_type_id
            meta["custom_object_created"] = str(self.custom_object.created).lower()
        for gate, n in self.gated.items():
            meta[f"gated_{gate}"] = n
        for name, n in self.reported.items():
            meta[f"reported_{name}"] = n
        if self.withheld:
            meta["fields_withheld"] = sum(self.withheld.values())
        meta["events_recorded"] = self.events_recorded
        if self.refresh is not None:
            meta.update({k: v for k, v in self.refresh.as_metadata().items() if k != "object_type"})
        for stage, seconds in self.stages.items():
            meta[f"stage_{stage}_s"] = round(seconds, 3)
        for stage, mb in self.stage_peak_rss_mb.items():
            meta[f"stage_{stage}_peak_rss_mb"] = round(mb, 1)
        for stage, mb in self.stage_rss_mb.items():
            meta[f"stage_{stage}_rss_mb"] = round(mb, 1)
        if self.parked:
            meta["records_parked"] = self.parked
        if self.retried:
            meta["records_retried"] = self.retried
        if self.associations:
            meta["associations_sent"] = sum(a.pairs_sent for a in self.associations)
            meta["associations_ok"] = sum(a.pairs_ok for a in self.associations)
            meta["association_calls"] = sum(a.calls for a in self.associations)
            meta["association_errors"] = sum(len(a.errors) for a in self.associations)
        for c in self.completeness:
            if c.share is not None:
                meta[f"association_completeness_{c.key}"] = round(c.share, 6)
            meta[f"links_desired_{c.key}"] = c.desired
            meta[f"links_confirmed_{c.key}"] = c.confirmed
        return meta

    def memory_mark(self, stage: str, peak: float | None = None) -> None:
        """Note the process's memory at the end of ``stage`` (``peak``: the peak measured then,
        when the stage ended earlier than this call)."""
        self.stage_peak_rss_mb[stage] = peak_rss_mb() if peak is None else peak
        now = rss_mb()
        if now is not None and peak is None:
            self.stage_rss_mb[stage] = now

    def line(self) -> str:
        mode = "shadow (no writes)" if self.shadow else "push"
        text = (
            f"{self.object_type:<10} as_of {self.as_of}  desired {self.records_desired:>7,}  "
            f"changed {self.records_changed:>7,} (new {self.records_new:,}, fields "
            f"{self.fields_changed:,})  {mode}"
        )
        if (
            self.records_adopted
            or self.records_ambiguous
            or self.records_duplicated
            or self.records_merged_away
        ):
            text += (
                f"  adopted {self.records_adopted:,}, ambiguous {self.records_ambiguous:,} "
                f"(not written), duplicated in HubSpot {self.records_duplicated:,}"
                + (
                    f", merged into another of ours {self.records_merged_away:,} (held)"
                    if self.records_merged_away
                    else ""
                )
                + " (`spokesync state ambiguous`)"
            )
        if self.push is not None:
            p = self.push
            text += (
                f": ok {p.records_ok:,} (created {p.records_created:,}), dead-lettered "
                f"{p.records_dead_lettered:,}, write calls {p.write_calls:,}, 429s "
                f"{p.rate_limited:,}, retries {p.retries:,}, {p.records_per_s:,.0f} rec/s"
            )
        if self.fields_held:
            text += f"  ({self.held_note})"
        if self.fields_within_tolerance:
            text += f"  ({self.tolerance_note})"
        if self.retried:
            text += f", retried {self.retried:,} (transient failures of earlier runs)"
        if self.parked:
            text += f", parked {self.parked:,} (rejected before, unchanged: not sent)"
        failed_links = sum(a.pairs_failed for a in self.associations)
        if failed_links:
            text += f", links not confirmed {failed_links:,}"
        if self.records_dropped and not self.blocked_by:
            held = [f"{n:,} quarantined in {where}" for where, n in self.quarantined.items()]
            if self.rejected_records:
                held.append(f"{self.rejected_records:,} rejected (`spokesync state rejected`)")
            tail = " (`spokesync state quarantine`)" if self.quarantined else ""
            text += f"  dropped before the push: {'; '.join(held)}{tail}"
        if self.error:
            text += f"  STOPPED: {self.error}"
        return text


@dataclass
class SyncSummary:
    run_id: str
    as_of: dt.date
    shadow: bool
    objects: list[ObjectSyncSummary] = field(default_factory=list)
    tasks: list[TaskReport] = field(default_factory=list)
    lists: list[ListReport] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            all(o.error is None for o in self.objects)
            and not any(t.errors for t in self.tasks)
            and not any(x.errors for x in self.lists)
        )

    @property
    def blocked(self) -> list[ObjectSyncSummary]:
        """Mappings the quarantine gate stopped before planning."""
        return [o for o in self.objects if o.blocked_by]

    @property
    def exit_code(self) -> ExitCode:
        """0 only when every mapping is in step; else the most serious outcome."""
        codes = [o.outcome for o in self.objects]
        codes += [t.outcome for t in self.tasks]
        codes += [x.outcome for x in self.lists]
        return worst(codes)

    def to_text(self) -> str:
        head = f"spokesync run {self.run_id} (as_of {self.as_of}, {self.duration_s:.1f} s)"
        code = self.exit_code
        tail = f"result: {code.name.lower()} (exit {int(code)}): {MEANING[code]}"
        lines = [head]
        for o in self.objects:
            lines.append("  " + o.line())
            if o.refresh is not None:
                lines.append("    refresh: " + o.refresh.line())
            if o.own_writes is not None:
                lines.append("    own writes: " + o.own_writes.line())
            if o.completeness:
                lines.append("    links: " + "; ".join(c.line() for c in o.completeness))
        for t in self.tasks:
            lines.append("  " + t.line())
            if t.completeness is not None:
                lines.append("    links: " + t.completeness.line())
        lines += ["  " + x.line() for x in self.lists]
        return "\n".join([*lines, tail])


def make_client(settings: Settings, options: SyncOptions) -> HubSpotClient:
    limiter = RateLimiter(
        per_interval=options.rate_limit_per_10s, daily_budget=options.daily_budget
    )
    return HubSpotClient(settings.hubspot_base_url, settings.resolved_token(), limiter=limiter)


async def sync_object(
    settings: Settings,
    mapping: MappingSpec,
    as_of: dt.date,
    run_id: str,
    options: SyncOptions,
    client: HubSpotClient | None,
    existing: dict[str, dict[str, Any]] | None = None,
    only: frozenset[str] | None = None,
) -> ObjectSyncSummary:
    """Plan and push (or, with ``client=None`` / shadow, only plan) one mapping.

    An error in the mapping's setup (reference data, ensure-properties, association types,
    the snapshot refresh: a 403, the daily budget, HubSpot failing past its retries) stops
    this mapping only, with its :class:`~spokesync.failure.Failure` in the summary. ``only``: push only these external
    ids (a replay re-plans its records from the current desired state and sends just them).

    ``existing``: the object's HubSpot property definitions, when the caller read them already
    (see :func:`check_mappings`). The two halves, :func:`prepare_object` and
    :func:`push_object`, are what ``spokesync sync`` overlaps across mappings."""
    prepared = await prepare_object(settings, mapping, as_of, run_id, options, client, existing)
    return await push_object(settings, prepared, run_id, options, client, only)


@dataclass
class PreparedObject:
    """One mapping up to its plan: setup and refresh done, the change plan built (open), or
    the step that failed. :func:`push_object` takes it on (and closes the plan)."""

    mapping: MappingSpec  # association types resolved
    as_of: dt.date
    shadow: bool
    started: float
    summary: ObjectSyncSummary | None = None  # with the plan's counts
    change_plan: ChangePlan | None = None
    stopped: tuple[str, Failure] | None = None  # (step, why) when the setup failed

    def discard(self) -> None:
        """Close the plan without pushing (the run stopped before this mapping)."""
        if self.change_plan is not None:
            self.change_plan.close()
            self.change_plan = None


async def prepare_object(
    settings: Settings,
    mapping: MappingSpec,
    as_of: dt.date,
    run_id: str,
    options: SyncOptions,
    client: HubSpotClient | None,
    existing: dict[str, dict[str, Any]] | None = None,
    host: StateStore | None = None,
) -> PreparedObject:
    """Setup (reference data, properties, association types), the snapshot refresh and the
    plan of one mapping. ``host``: the run's open state store; the plan is then made in its
    DuckDB instance, in a thread, so it can run while another mapping pushes (see
    :func:`spokesync.diff.plan_changes`). Raises :class:`PropertyMismatchError` as
    :func:`sync_object` does; a HubSpot error comes back as ``stopped``."""
    started = time.perf_counter()
    shadow = options.shadow or client is None
    props: EnsureReport | None = None
    schema: SchemaReport | None = None
    step = "reading HubSpot's reference data"
    try:
        if client is not None and mapping.custom_object is not None:
            # The custom object's schema first (found, or created once): every later call
            # addresses the object by the objectTypeId HubSpot gave it.
            step = "custom object schema"
            schema = await ensure_custom_object(client, mapping, run_id, dry_run=shadow)
            if schema.created:
                existing = None  # the new schema's own properties: read them again
            step = "reading HubSpot's reference data"
        if client is not None and reference_tables_used(mapping):
            # Pipeline stage and owner ids as HubSpot has them now (reads only: shadow too).
            await refresh_reference(client, settings.warehouse_dir, f"{run_id}-ref")
        if client is not None and not shadow:
            if options.ensure_properties:
                step = "ensure-properties"
                # The first sync into a portal installs the properties: show it (a run that
                # creates nothing prints nothing).
                with Progress(
                    f"install {mapping.object_type} properties",
                    unit="properties",
                    enabled=options.progress,
                    quiet_if_empty=True,
                ) as installing:
                    props = await ensure_properties(
                        client,
                        specs_from_mapping(mapping),
                        mapping.object_type,
                        run_id=f"{run_id}-props",
                        existing=existing,
                        progress=installing,
                    )
            step = "association types"
            mapping = await resolve_association_types(client, mapping, run_id)
        setup_done = time.perf_counter()
        refresh: RefreshReport | None = None
        if client is not None and not shadow and options.refresh != "none":
            # People's edits since the last run reach the snapshot before the diff.
            step = f"refreshing the snapshot ({options.refresh})"
            if options.refresh == "full":
                refresh = await full_refresh(settings, mapping, client, run_id)
            else:
                refresh = await incremental_refresh(settings, mapping, client, run_id)
    except PropertyMismatchError:
        raise  # the mapping disagrees with HubSpot: the run stops before any write
    except HubSpotError as exc:
        failure = explain(exc, env=settings.env)
        return PreparedObject(mapping, as_of, shadow, started, stopped=(step, failure))
    stages = {"setup": setup_done - started, "refresh": time.perf_counter() - setup_done}
    peak_before_plan = peak_rss_mb()  # setup and refresh (the refresh holds its pages)
    mark = time.perf_counter()
    if host is None:
        change_plan = plan_changes(
            settings.state_db, settings.warehouse_dir, mapping, as_of, options.rollout
        )
    else:  # off the event loop: another mapping's push goes on meanwhile
        change_plan = await asyncio.to_thread(
            plan_changes,
            settings.state_db,
            settings.warehouse_dir,
            mapping,
            as_of,
            options.rollout,
            store=host,
        )
    try:
        summary = ObjectSyncSummary(
            object_type=mapping.object_type,
            mapping_version=mapping.version,
            as_of=as_of,
            shadow=shadow,
            records_desired=change_plan.records_desired,
            records_changed=change_plan.records_changed,
            records_new=change_plan.records_new,
            records_adopted=change_plan.records_adopted,
            records_ambiguous=change_plan.records_ambiguous,
            records_duplicated=change_plan.records_duplicated,
            records_merged_away=change_plan.records_merged_away,
            fields_changed=change_plan.fields_changed,
            rejected_ids=change_plan.rejected_ids,
            duplicates=change_plan.duplicates,
            plan_markdown=change_plan.summary_markdown(),
            fields_by_property=change_plan.fields_changed_by_property(),
            properties=props,
            custom_object=schema,
            fields_held=change_plan.fields_held,
            held_note=change_plan.held_line(),
            fields_within_tolerance=change_plan.fields_within_tolerance,
            records_within_tolerance=change_plan.records_within_tolerance,
            write_calls_saved=change_plan.write_calls_saved,
            tolerance_note=change_plan.tolerance_line(),
            gated=dict(change_plan.desired.gated),
            reported=dict(change_plan.desired.reported),
            withheld=dict(change_plan.rules.withheld),
            refresh=refresh,
            stages=stages,
            quarantined=dropped_at_ingest(settings.warehouse_dir, tables_read(mapping), as_of),
        )
        # the plan: desired state, then the diff; what is left is opening the store and files
        stages["desired"], stages["diff"] = change_plan.desired_s, change_plan.diff_s
        stages["plan_other"] = (
            time.perf_counter() - mark - change_plan.desired_s - change_plan.diff_s
        )
        summary.memory_mark("refresh", peak_before_plan)
        summary.memory_mark("desired", change_plan.desired_peak_rss_mb)
        summary.memory_mark("diff")
    except BaseException:
        change_plan.close()
        raise
    return PreparedObject(mapping, as_of, shadow, started, summary, change_plan)


async def push_object(
    settings: Settings,
    prepared: PreparedObject,
    run_id: str,
    options: SyncOptions,
    client: HubSpotClient | None,
    only: frozenset[str] | None = None,
    pushed: asyncio.Event | None = None,
    counting: list[Counting] | None = None,
) -> ObjectSyncSummary:
    """The rest of :func:`sync_object` after :func:`prepare_object`: the push (or, in shadow,
    saving the plan), associations, the finish; closes the plan. ``pushed``: set once this
    mapping's writes to HubSpot are over (or it stopped); the finish (state writes only) then
    runs in a thread, so the caller can start the next mapping's push beside it. A large
    push's own writes are counted beside it (:mod:`spokesync.sync.verify_push`): until its
    finish is done, or, given ``counting``, handed over there to go on beside the run's
    later mappings (:func:`close_counting` ends it)."""
    mapping, as_of, shadow, started = (
        prepared.mapping,
        prepared.as_of,
        prepared.shadow,
        prepared.started,
    )
    if prepared.stopped is not None:
        step, failure = prepared.stopped
        return stopped_summary(settings, mapping, as_of, run_id, shadow, step, failure)
    summary, change_plan = prepared.summary, prepared.change_plan
    assert summary is not None and change_plan is not None
    stages = summary.stages
    with change_plan, StateStore(settings.state_db, [mapping]) as store:
        store.start_run(run_id, mapping.object_type, mapping.version, shadow, as_of)
        summary.rejected_records = store.rejected.record(
            run_id, mapping.object_type, as_of, change_plan.rejected_rows()
        )
        store.matches.record_ambiguous(mapping.object_type, change_plan.ambiguous_table(), run_id)
        status = "success"
        verifier: verify_push.PushVerifier | None = None
        try:
            if shadow:
                mark = time.perf_counter()
                summary.planned_rows = store.record_planned_changes(
                    run_id, mapping.object_type, change_plan.planned_rows()
                )
                stages["planned_rows"] = time.perf_counter() - mark
                summary.memory_mark("planned_rows")
            else:
                assert client is not None
                # Results are saved by a writer thread, several batches per transaction,
                # so saving never holds up the push; leaving the block saves the rest.
                letters = PendingLetters(store, mapping, only)
                if verify_push.wanted(change_plan.records_changed):
                    verifier = verify_push.PushVerifier(client, mapping.object_type, run_id)
                progress = Progress(
                    f"push {mapping.object_type}",
                    change_plan.records_changed,
                    enabled=options.progress,
                )
                mark = time.perf_counter()
                # Associations go out behind the upserts they need, during the push.
                links = LinkPipeline(client, store, change_plan, run_id)
                try:
                    await links.start()
                    with store.writer() as sink, progress:
                        summary.state_writes = sink.stats
                        push_sink: PushSink = ProgressSink(sink, progress)
                        if verifier is not None:
                            push_sink = verifier.watch(push_sink)
                            verifier.start()
                        summary.push = await push_changes(
                            client,
                            object_type=mapping.object_type,
                            id_property=mapping.id.property,
                            changes=letters.filter(change_plan.batches(options.push.batch_size)),
                            sink=links.sink(push_sink),
                            run_id=run_id,
                            config=options.push,
                        )
                        await sink.drain()
                    if verifier is not None:
                        verifier.writes_done()
                    # push: from the first batch to the last result saved (drained)
                    stages["push"], mark = time.perf_counter() - mark, time.perf_counter()
                    summary.memory_mark("push")
                    summary.parked, summary.retried = letters.parked_skipped, letters.retried
                    summary.replay_in_step = letters.in_step(store, change_plan)
                    try:
                        summary.associations = await links.finish()
                    except HubSpotError as exc:  # 401/403, the daily budget, out of retries
                        failure = explain(exc, env=settings.env)
                        summary.error = f"associations stopped: {failure.message}"
                        summary.failure, status = failure, "failed"
                finally:
                    await links.close()  # the push stopped: record the links confirmed
                summary.completeness = measure_plan(store, change_plan, run_id)
                stages["associations"], mark = time.perf_counter() - mark, time.perf_counter()
                summary.memory_mark("associations")
                if pushed is None:
                    finish_object(store, mapping, change_plan, run_id, summary)
                else:  # HubSpot is done with this mapping: the next one pushes meanwhile
                    pushed.set()
                    await asyncio.to_thread(
                        finish_object, store, mapping, change_plan, run_id, summary
                    )
                stages["finish"] = time.perf_counter() - mark
                summary.memory_mark("finish")
                if verifier is not None and counting is not None:
                    counting.append(Counting(summary, verifier))  # searches go on
                    verifier = None
                elif verifier is not None:
                    summary.own_writes = await verifier.close()
                    store.verified.add(mapping.object_type, summary.own_writes.ranges, run_id)
        except PushAborted as exc:
            failure = explain(exc, env=settings.env)
            summary.push, summary.error, status = exc.report, failure.message, "failed"
            summary.failure = failure
        except BaseException as exc:
            summary.error, status = f"{type(exc).__name__}: {exc}", "failed"
            raise
        finally:
            if verifier is not None:
                verifier.abort()
            if pushed is not None:
                pushed.set()
            summary.duration_s = time.perf_counter() - started
            store.finish_run(run_id, mapping.object_type, status, summary.to_metadata())
    return summary


def finish_object(
    store: StateStore,
    mapping: MappingSpec,
    change_plan: ChangePlan,
    run_id: str,
    summary: ObjectSyncSummary,
) -> None:
    """After the push and its links: state writes only, no HubSpot call."""
    # Adopted records take the values HubSpot already held (not re-sent).
    store.matches.promote(mapping.object_type, run_id)
    # Records now in step as of this day (pushed or already equal, not dead-lettered): a
    # backfill of an older day leaves them alone.
    store.mark_verified(mapping.object_type, change_plan.desired_ids(), change_plan.as_of)
    # The business events these confirmed writes are (audit trail).
    summary.events_recorded = store.events.record(
        plan_events(change_plan.cursor(), mapping, change_plan.as_of, run_id)
    )


class PendingLetters:
    """Dead letters between the plan and the push: parked records whose planned change is
    exactly what HubSpot rejected are not sent (see :mod:`spokesync.state.dead_letters`);
    records of transient letters go again and are counted; ``only`` restricts a replay."""

    def __init__(
        self, store: StateStore, mapping: MappingSpec, only: frozenset[str] | None = None
    ) -> None:
        self.id_property = mapping.id.property
        self.parked = store.dead_letters.parked(mapping.object_type)
        self.transient = store.dead_letters.transient(mapping.object_type)
        self.only = None if only is None else {canonical_key(self.id_property, k) for k in only}
        self.sent: set[str] = set()
        self.parked_skipped = 0
        self.retried = 0

    def filter(self, batches: Iterable[list[RecordChange]]) -> Iterator[list[RecordChange]]:
        for batch in batches:
            keep = []
            for change in batch:
                key = canonical_key(self.id_property, change.external_id)
                if self.only is not None and key not in self.only:
                    continue
                if self.only is None and self.parked.get(key) == change.properties:
                    self.parked_skipped += 1
                    continue
                self.retried += key in self.transient
                if self.only is not None:  # only a replay asks what was sent (in_step)
                    self.sent.add(key)
                keep.append(change)
            if keep:
                yield keep

    def in_step(self, store: StateStore, plan: ChangePlan) -> int:
        """A replay: resolve the letters of replayed records the plan did not need to send
        (already in step in HubSpot, or no longer desired)."""
        if self.only is None:
            return 0
        return store.dead_letters.resolve_ids(plan.object_type, self.only - self.sent)


def stopped_summary(
    settings: Settings,
    mapping: MappingSpec,
    as_of: dt.date,
    run_id: str,
    shadow: bool,
    step: str,
    failure: Failure,
) -> ObjectSyncSummary:
    """The summary of a mapping whose setup failed (nothing of it was planned or pushed); the
    failed run is recorded so the UI and ``spokesync state runs`` show it too."""
    summary = ObjectSyncSummary.nothing_planned(
        mapping, as_of, shadow, f"{step}: {failure.message}", failure=failure
    )
    with StateStore(settings.state_db, [mapping]) as store:
        store.start_run(run_id, mapping.object_type, mapping.version, shadow, as_of)
        store.finish_run(run_id, mapping.object_type, "failed", summary.to_metadata())
    return summary


async def refresh_snapshot(
    settings: Settings, mappings: Sequence[MappingSpec], client: HubSpotClient, run_id: str
) -> list[DriftReport]:
    """Full refresh of every mapping (see :func:`spokesync.sync.refresh.full_refresh`): the
    snapshot, the portal's unowned records for adoption, merges, and the refresh cursor."""
    await resolve_custom_objects(client, list(mappings), run_id)
    mappings = [
        m for m in mappings if m.custom_object is None or m.object_type in client.object_type_ids
    ]
    return [(await full_refresh(settings, m, client, run_id)).drift for m in mappings]


async def check_mappings(
    client: HubSpotClient, mappings: Sequence[MappingSpec], run_id: str
) -> dict[str, dict[str, dict[str, Any]]]:
    """Before any write: every mapping's properties exist in HubSpot or are declared new, with
    compatible types (raises :class:`~spokesync.hubspot.properties.PropertyMismatchError`
    naming file, field and the nearest existing names). Returns the definitions read, by
    object type, so creating the missing ones costs no second read."""
    return {m.object_type: await check_mapping(client, m, run_id) for m in mappings}


async def check_mapping(
    client: HubSpotClient, mapping: MappingSpec, run_id: str
) -> dict[str, dict[str, Any]]:
    """:func:`check_mappings` for one mapping."""
    await resolve_custom_objects(client, [mapping], run_id)
    if mapping.custom_object is not None and mapping.object_type not in client.object_type_ids:
        # A custom object HubSpot lacks yet (the sync creates its schema): every property must
        # be one the mapping declares new.
        undeclared = [s.origin or s.name for s in specs_from_mapping(mapping) if not s.create]
        if undeclared:
            raise UnknownPropertyError(
                f"custom object {mapping.object_type} is new to HubSpot, so each of its "
                "properties is created: give these fields a `label` and a `group`: "
                + ", ".join(undeclared)
            )
        return {}
    existing = await existing_properties(client, mapping.object_type, run_id=f"{run_id}-props")
    await ensure_properties(
        client,
        specs_from_mapping(mapping),
        mapping.object_type,
        run_id=f"{run_id}-props",
        dry_run=True,
        existing=existing,
    )
    return existing


async def _run(settings: Settings, options: SyncOptions, run_id: str) -> SyncSummary:
    paths = list(options.mapping_paths) or default_mapping_paths()
    if not paths:
        folder = os.environ.get("SPOKESYNC_MAPPINGS") or DEFAULT_MAPPINGS_DIR
        raise MappingError(
            f"{folder}: no mapping files (*.yaml) in this folder: set SPOKESYNC_MAPPINGS to "
            "the folder of your mappings, or name them with --mapping"
        )
    mappings = push_order(load_mappings(paths))
    as_of = options.as_of or latest_partition(settings.warehouse_dir)
    summary = SyncSummary(run_id=run_id, as_of=as_of, shadow=options.shadow)
    client: HubSpotClient | None = None
    try:
        client = make_client(settings, options)
    except SettingsError:
        if not options.shadow:
            raise
        # A shadow run without a token plans from the reference tables last read.
    try:
        # Before any write: every mapping's properties are checked (a mismatch stops the run).
        # A refused token, missing scopes or the daily budget stop only the mappings they hit.
        existing: dict[str, dict[str, dict[str, Any]]] = {}
        setup_failed: dict[str, Failure] = {}
        if client is not None and options.ensure_properties and not options.shadow:
            for mapping in mappings:
                try:
                    existing[mapping.object_type] = await check_mapping(client, mapping, run_id)
                except PropertyMismatchError:
                    raise
                except HubSpotError as exc:
                    setup_failed[mapping.object_type] = explain(exc, env=settings.env)
        await _sync_objects(
            settings, options, run_id, mappings, summary, client, existing, setup_failed
        )
        for trigger in _task_triggers(options):
            summary.tasks.append(
                await run_task_trigger(settings, trigger, as_of, run_id, options, client)
            )
        for spec in _list_mappings(options):  # after the objects: members need HubSpot ids
            summary.lists.append(
                await run_list_mapping(settings, spec, as_of, run_id, options, client)
            )
    except Exception as exc:  # the CLI prints what was done before the error
        attach_summary(exc, summary)
        raise
    finally:
        if client is not None:
            await client.aclose()
    return summary


async def _sync_objects(
    settings: Settings,
    options: SyncOptions,
    run_id: str,
    mappings: Sequence[MappingSpec],
    summary: SyncSummary,
    client: HubSpotClient | None,
    existing: dict[str, dict[str, dict[str, Any]]],
    setup_failed: dict[str, Failure],
) -> None:
    """Every mapping in push order, overlapped: while one mapping pushes (waiting on HubSpot's
    rate limit), the next one is set up, refreshed and planned (the plan in a thread, inside the
    state store's DuckDB instance, which the run keeps open for it). The pushes themselves stay
    one after another, in order, so associations find their targets' HubSpot ids."""
    as_of = summary.as_of
    rate = options.quarantine_error_rate
    rate = error_rate_from_env() if rate is None else rate
    findings = {
        m.object_type: quarantine_gate(settings.warehouse_dir, tables_read(m), as_of, rate)
        for m in mappings
    }
    refused: Failure | None = None  # a 401: no mapping can work with this token
    pending: dict[str, asyncio.Task[PreparedObject]] = {}  # planned ahead
    finishing: list[asyncio.Task[ObjectSyncSummary]] = []  # pushed, finishing
    counting: list[Counting] = []  # pushes whose own writes are still being counted

    def runnable(m: MappingSpec) -> bool:
        return refused is None and not findings[m.object_type] and m.object_type not in setup_failed

    with StateStore(settings.state_db) as host:
        prepare = functools.partial(
            prepare_object, settings, as_of=as_of, run_id=run_id, options=options,
            client=client, host=host,
        )  # fmt: skip
        try:
            for i, mapping in enumerate(mappings):
                failed = refused or setup_failed.get(mapping.object_type)
                task = pending.pop(mapping.object_type, None)
                if findings[mapping.object_type]:
                    summary.objects.append(
                        blocked_summary(
                            mapping, as_of, options.shadow, findings[mapping.object_type]
                        )
                    )
                elif failed is not None:
                    if task is not None:  # planned ahead, then the token was refused
                        (await task).discard()
                    step = "not started" if failed is refused else "checking properties"
                    summary.objects.append(
                        stopped_summary(
                            settings, mapping, as_of, run_id, options.shadow, step, failed
                        )
                    )
                else:
                    ot = mapping.object_type
                    prepared = await (task or prepare(mapping, existing=existing.get(ot)))
                    following = next((m for m in mappings[i + 1 :] if runnable(m)), None)
                    if following is not None:
                        nxt = following.object_type
                        pending[nxt] = asyncio.create_task(
                            prepare(following, existing=existing.get(nxt))
                        )
                    if prepared.stopped is not None:
                        summary.objects.append(
                            await push_object(settings, prepared, run_id, options, client)
                        )
                    else:
                        # The push; its finish (state writes) runs beside the next push.
                        pushed = asyncio.Event()
                        pushing = asyncio.create_task(
                            push_object(
                                settings,
                                prepared,
                                run_id,
                                options,
                                client,
                                pushed=pushed,
                                counting=counting,
                            )
                        )
                        pushing.add_done_callback(lambda _, ev=pushed: ev.set())
                        finishing.append(pushing)
                        await pushed.wait()
                        if pushing.done():
                            await pushing  # raises what stopped it (a push abort is reported)
                        assert prepared.summary is not None
                        summary.objects.append(prepared.summary)  # push_object fills it
                last = summary.objects[-1].failure
                if last is not None and last.status == 401:
                    refused = last
        finally:
            # every mapping's finish (its state writes) is done before the run ends
            results = await asyncio.gather(*finishing, return_exceptions=True)
            await close_counting(host, counting, run_id)
            for task in pending.values():  # a run stopped early: close what was planned ahead
                with contextlib.suppress(BaseException):
                    (await task).discard()
        for result in results:
            if isinstance(result, BaseException):
                raise result


@dataclass
class Counting:
    """A pushed mapping whose own writes are still being counted (see :func:`push_object`)."""

    summary: ObjectSyncSummary
    verifier: verify_push.PushVerifier


async def close_counting(store: StateStore, counting: list[Counting], run_id: str) -> None:
    """The run's pushes are over: count what is old enough now, save the ranges proved (the
    next refresh skips them) and add the counts to each mapping's recorded run."""
    reports = await asyncio.gather(*(c.verifier.close() for c in counting))
    for c, report in zip(counting, reports, strict=True):
        summary = c.summary
        summary.own_writes = report
        store.verified.add(summary.object_type, report.ranges, run_id)
        status = "failed" if summary.error else "success"
        store.finish_run(run_id, summary.object_type, status, summary.to_metadata())
    counting.clear()


def push_order(mappings: Sequence[MappingSpec]) -> list[MappingSpec]:
    """Objects others associate to go first, so both ends have HubSpot ids when associating
    (subscriptions → deals → companies: companies, then deals, then subscriptions); among
    equals by name. A cycle keeps the remaining ones by name."""
    left = sorted(mappings, key=lambda m: (bool(m.associations), m.object_type))
    ordered: list[MappingSpec] = []
    while left:
        names = {m.object_type for m in left}
        ready = [
            m
            for m in left
            if not ({a.to_object_type for a in m.associations} - {m.object_type}) & names
        ]
        nxt = ready[0] if ready else left[0]
        ordered.append(nxt)
        left.remove(nxt)
    return ordered


def blocked_summary(
    mapping: MappingSpec, as_of: dt.date, shadow: bool, findings: list[GateFinding]
) -> ObjectSyncSummary:
    """The summary of a mapping the quarantine gate stopped: nothing planned, nothing sent."""
    what = "; ".join(str(f) for f in findings)
    fix = ", ".join(
        f"spokesync ingest --source {f.source}" + (f" --date {f.partition}" if f.partition else "")
        for f in findings
    )
    return ObjectSyncSummary.nothing_planned(
        mapping,
        as_of,
        shadow,
        f"blocked by the quarantine gate, nothing planned or sent: {what}. Fix the "
        f"landing file(s), re-ingest ({fix}) and sync again",
        blocked_by=[str(f) for f in findings],
    )


def _task_triggers(options: SyncOptions) -> list[TaskTriggerSpec]:
    if options.task_trigger_paths is not None:
        return [load_task_trigger(Path(p)) for p in options.task_trigger_paths]
    if options.mapping_paths:
        return []
    return load_task_triggers(task_trigger_folder())


def _list_mappings(options: SyncOptions) -> list[ListMappingSpec]:
    if options.list_mapping_paths is not None:
        return [load_list_mapping(Path(p)) for p in options.list_mapping_paths]
    if options.mapping_paths:
        return []
    return load_list_mappings(list_mapping_folder())


def list_mapping_folder() -> Path:
    """``<mappings folder>/lists``: the list mappings that go with the mappings."""
    return Path(os.environ.get("SPOKESYNC_MAPPINGS") or DEFAULT_MAPPINGS_DIR) / "lists"


async def run_list_mapping(
    settings: Settings,
    spec: ListMappingSpec,
    as_of: dt.date,
    run_id: str,
    options: SyncOptions,
    client: HubSpotClient | None,
) -> ListReport:
    """Keep one list equal to its segment (shadow: plan only). A terminal HubSpot error (a
    list that cannot be managed, missing list scopes, the daily budget) stops this list only."""
    try:
        return await sync_list(
            settings,
            spec,
            as_of,
            run_id,
            client,
            shadow=options.shadow,
            full_refresh=options.refresh == "full",
        )
    except HubSpotError as exc:
        report = ListReport(spec.name, spec.list_name, spec.object_type, shadow=options.shadow)
        report.failure = explain(exc, env=settings.env)
        report.errors.append(report.failure.message)
        return report


def task_trigger_folder() -> Path:
    """``<mappings folder>/tasks``: the task triggers that go with the mappings."""
    return Path(os.environ.get("SPOKESYNC_MAPPINGS") or DEFAULT_MAPPINGS_DIR) / "tasks"


async def run_task_trigger(
    settings: Settings,
    trigger: TaskTriggerSpec,
    as_of: dt.date,
    run_id: str,
    options: SyncOptions,
    client: HubSpotClient | None,
    since: dt.date | None = None,
) -> TaskReport:
    """Create the trigger's tasks for ``as_of`` exactly once (shadow: only count them);
    ``since``: a backfill range's first day (its events are found too)."""
    if client is not None and "hubspot_" in trigger.source.sql:
        await refresh_reference(client, settings.warehouse_dir, f"{run_id}-ref")
    plan = plan_tasks(settings.warehouse_dir, trigger, as_of, since)
    intents = plan.intents
    not_tasks = {"incomplete_window": len(plan.incomplete), "stale": len(plan.stale)}
    if options.shadow or client is None:
        return TaskReport(trigger=trigger.name, intents=len(intents), **not_tasks)
    with StateStore(settings.state_db) as store:
        report = await create_tasks(client, store, trigger.name, intents, run_id)
        report.incomplete_window = not_tasks["incomplete_window"]
        report.stale = not_tasks["stale"]
        done = report.already_created + report.recovered + report.created
        report.completeness = measure_tasks(
            store, trigger.about, report.intents, done, report.waiting_for_record, run_id
        )
        return report


def replay_records(
    settings: Settings,
    mapping: MappingSpec,
    external_ids: Iterable[str],
    options: SyncOptions | None = None,
) -> SyncSummary:
    """Re-plan ``external_ids`` of one mapping from the current desired state (after a source
    or mapping fix) and push just them: never the stored payload of their dead letters."""
    options = options or SyncOptions()
    run_id = f"replay-{options.run_id or new_run_id()}"
    started = time.perf_counter()

    async def go() -> SyncSummary:
        as_of = options.as_of or latest_partition(settings.warehouse_dir)
        summary = SyncSummary(run_id=run_id, as_of=as_of, shadow=False)
        client = make_client(settings, options)
        try:
            summary.objects.append(
                await sync_object(
                    settings, mapping, as_of, run_id, options, client, only=frozenset(external_ids)
                )
            )
        finally:
            await client.aclose()
        return summary

    summary = asyncio.run(go())
    summary.duration_s = time.perf_counter() - started
    return summary


def run_sync(settings: Settings, options: SyncOptions | None = None) -> SyncSummary:
    """Plan and push every mapping for ``options.as_of``; returns the summary."""
    options = options or SyncOptions()
    run_id = options.run_id or new_run_id()
    started = time.perf_counter()
    summary = asyncio.run(_run(settings, options, run_id))
    summary.duration_s = time.perf_counter() - started
    return summary


def write_desired_parquet(
    settings: Settings, mapping: MappingSpec, as_of: dt.date, rollout: Rollout | None = None
) -> tuple[Path, DesiredStats]:
    """Materialise one mapping's desired state for ``as_of`` as Parquet (for inspection and
    lineage): ``warehouse/desired/<object>/date=<as_of>/data.parquet``. Streams through DuckDB."""
    out = warehouse.partition_path(
        settings.warehouse_dir / "desired", mapping.object_type, as_of.isoformat()
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".parquet.tmp")
    con = warehouse.connect(settings.warehouse_dir)
    try:
        stats = build_desired(con, mapping, as_of, rollout)
        con.execute(
            f"COPY (SELECT * FROM {DESIRED_TABLE} ORDER BY {ID_COLUMN}) "
            f"TO {warehouse.sql_literal(str(tmp))} (FORMAT parquet)"
        )
    finally:
        con.close()
    tmp.replace(out)
    return out, stats
