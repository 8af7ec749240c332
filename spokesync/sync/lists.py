"""Keep a static HubSpot list's members equal to a SQL segment (``mappings/lists/*.yaml``).

One run of a list mapping:

1. the segment: the mapping's SQL over the warehouse for ``as_of`` → the members' external
   ids, canonical as the object's mapping keys them (contacts: the email trimmed and
   lowercased);
2. the list: by the id the state store holds (``GET``: it also gives the list's ``size``), else
   by name, else created as ``MANUAL`` — a lost create answer is read back by name, never sent
   again; a DYNAMIC or other-object list of that name is refused before any membership call;
3. the re-read: the members are read back from HubSpot (pages of 250) into the membership
   snapshot when it was never read, on a full refresh, when the last read is older than the
   mapping's ``reread_days``, or when HubSpot's ``size`` differs from the snapshot — this is
   how a person's manual edit of the list is seen and undone;
4. the diff, in DuckDB (:meth:`~spokesync.state.list_memberships.ListMembershipStore.plan`):
   desired external ids → HubSpot ids through the object snapshot; members to add, members to
   remove, and desired records not in HubSpot yet (reported; a later run adds them once their
   record is pushed);
5. the push: only the adds and removes, ``BATCH`` ids per side per call (``add``, ``remove``, or
   both in one ``add-and-remove``); the calls are idempotent in HubSpot, so the client retries
   5xx, 429 and dropped connections; a 2xx without the membership fields confirms nothing and
   is sent again (up to ``CONFIRM_ATTEMPTS``), then reported unconfirmed. Only confirmed changes
   enter the snapshot, batch by batch, so a run that dies half-way leaves it true.

Shadow mode reads (the list, its members) and plans, and writes nothing to HubSpot.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from spokesync import warehouse
from spokesync.canonical import configure_connection
from spokesync.desired import DesiredStateError
from spokesync.exit_codes import ExitCode
from spokesync.failure import Failure
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.errors import DailyLimitReached, HubSpotAuthError, HubSpotError
from spokesync.hubspot.lists import (
    HubSpotList,
    MembershipAnswer,
    change_members,
    check_manageable,
    ensure_list,
    find_list,
    get_list,
    read_members,
)
from spokesync.hubspot.redact import get_logger
from spokesync.hubspot.reference import refresh_reference
from spokesync.mapping.list_spec import ListMappingSpec
from spokesync.mapping.spec import quote_identifier
from spokesync.quality import register_macros
from spokesync.settings import Settings
from spokesync.state.list_memberships import MembershipPlan
from spokesync.state.store import StateStore

log = get_logger(__name__)

BATCH = 100  # ids per side per membership call (HubSpot documents no maximum; see docs)
CONFIRM_ATTEMPTS = 3  # sends of a chunk whose 2xx answer had no membership fields
WAITING_SAMPLE = 10


@dataclass
class ListReport:
    """What one list mapping's run did."""

    name: str
    list_name: str
    object_type: str
    shadow: bool = False
    list_id: str | None = None
    list_created: bool = False
    desired: int = 0
    members_before: int = 0
    members_after: int = 0
    planned_add: int = 0
    planned_remove: int = 0
    added: int = 0
    removed: int = 0
    waiting_for_record: int = 0
    waiting_sample: list[str] = field(default_factory=list)
    missing: int = 0  # ids HubSpot answered as missing (record gone since the last refresh)
    unconfirmed: int = 0
    reread: bool = False
    manual_added: int = 0  # members found in HubSpot that the snapshot did not hold
    manual_removed: int = 0  # members the snapshot held that HubSpot no longer has
    membership_calls: int = 0  # membership writes sent (each attempt counted by the client)
    errors: list[str] = field(default_factory=list)
    failure: Failure | None = None  # why the list stopped early (auth, budget, unmanageable)

    @property
    def outcome(self) -> ExitCode:
        """The exit code this list alone would give."""
        if self.failure is not None:
            return self.failure.code
        if self.errors or self.unconfirmed:
            return ExitCode.DEAD_LETTERED  # finished, not all in step: the next run sends it
        return ExitCode.OK

    def line(self) -> str:
        mode = "shadow (no writes): would add" if self.shadow else "added"
        text = (
            f"list {self.name} ({self.object_type}, {self.list_name!r}"
            + (f", id {self.list_id}" if self.list_id else "")
            + ("; created" if self.list_created else "")
            + f"): desired {self.desired:,}, {mode} "
            + (
                f"{self.planned_add:,}, remove {self.planned_remove:,}"
                if self.shadow
                else f"{self.added:,}, removed {self.removed:,}"
            )
            + f", members {self.members_after:,}, membership calls {self.membership_calls}"
        )
        if self.reread:
            text += (
                f", re-read ({self.manual_added:,} added and {self.manual_removed:,} removed "
                "in HubSpot since)"
            )
        if self.waiting_for_record:
            text += f", waiting for their record {self.waiting_for_record:,}"
        if self.missing:
            text += f", missing in HubSpot {self.missing:,}"
        if self.unconfirmed:
            text += f", unconfirmed {self.unconfirmed:,} (sent again next run)"
        if self.errors:
            text += "  ERRORS: " + "; ".join(self.errors)
        return text

    def to_metadata(self) -> dict[str, int | str]:
        return {
            "list_name": self.list_name,
            "list_id": self.list_id or "",
            "object_type": self.object_type,
            "shadow": str(self.shadow).lower(),
            "list_created": int(self.list_created),
            "members_desired": self.desired,
            "members_added": self.added,
            "members_removed": self.removed,
            "members_total": self.members_after,
            "members_planned_add": self.planned_add,
            "members_planned_remove": self.planned_remove,
            "members_waiting_for_record": self.waiting_for_record,
            "members_missing_in_hubspot": self.missing,
            "members_unconfirmed": self.unconfirmed,
            "reread": int(self.reread),
            "manual_edits_added": self.manual_added,
            "manual_edits_removed": self.manual_removed,
            "membership_calls": self.membership_calls,
            "errors": len(self.errors),
        }


def _params(spec: ListMappingSpec, as_of: dt.date, sql: str) -> dict[str, object]:
    values: dict[str, object] = {"as_of": as_of, **spec.parameters}
    return {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}


def segment_members(warehouse_dir: Path, spec: ListMappingSpec, as_of: dt.date) -> list[str]:
    """The segment's external ids for ``as_of``, canonical and distinct (sorted)."""
    col = quote_identifier(spec.id_column)
    key = f"trim(CAST({col} AS VARCHAR))"
    if spec.object_type == "contacts":
        key = f"lower({key})"
    sql = (
        f"SELECT DISTINCT {key} AS external_id FROM ({spec.source.sql}) AS segment "
        f"WHERE {col} IS NOT NULL AND {key} <> '' ORDER BY 1"
    )
    con = warehouse.connect(Path(warehouse_dir))
    try:
        configure_connection(con)
        register_macros(con)
        try:
            rows = con.execute(sql, _params(spec, as_of, sql)).fetchall()
        except Exception as e:  # duckdb.Error: name the file
            raise DesiredStateError(f"{spec.path}: {e}") from e
    finally:
        con.close()
    return [r[0] for r in rows]


def _chunks(add: list[str], remove: list[str]) -> list[tuple[list[str], list[str]]]:
    n = max((len(add) + BATCH - 1) // BATCH, (len(remove) + BATCH - 1) // BATCH)
    return [
        (add[i * BATCH : (i + 1) * BATCH], remove[i * BATCH : (i + 1) * BATCH]) for i in range(n)
    ]


async def _resolve(
    client: HubSpotClient,
    store: StateStore,
    spec: ListMappingSpec,
    shadow: bool,
    run_id: str,
    report: ListReport,
) -> HubSpotList | None:
    managed = store.lists.managed(spec.name)
    known = managed.list_id if managed is not None else None
    if shadow:  # reads only: never create
        lst = await get_list(client, known, request_id=f"{run_id}-list-get") if known else None
        if lst is None or lst.name.casefold() != spec.list_name.casefold():
            lst = await find_list(
                client, spec.object_type, spec.list_name, request_id=f"{run_id}-list-find"
            )
        return None if lst is None else check_manageable(lst, spec.list_name, spec.object_type)
    lst, created = await ensure_list(
        client, spec.list_name, spec.object_type, known_id=known, run_id=run_id
    )
    report.list_created = created
    return lst


def _needs_reread(
    store: StateStore, spec: ListMappingSpec, lst: HubSpotList, full: bool, fresh: bool
) -> bool:
    managed = store.lists.managed(spec.name)
    if managed is None or managed.read_at is None or full:
        return not fresh
    if lst.size is not None and lst.size != store.lists.count(spec.name):
        return True
    age = dt.datetime.now(dt.UTC) - managed.read_at.astimezone(dt.UTC)
    return age >= dt.timedelta(days=spec.reread_days)


async def _push(
    client: HubSpotClient,
    store: StateStore,
    spec: ListMappingSpec,
    list_id: str,
    plan: MembershipPlan,
    run_id: str,
    report: ListReport,
) -> None:
    for n, (add, remove) in enumerate(_chunks(plan.add, plan.remove), start=1):
        answer: MembershipAnswer | None = None
        for attempt in range(1, CONFIRM_ATTEMPTS + 1):
            report.membership_calls += 1
            try:
                answer = await change_members(
                    client,
                    list_id,
                    add,
                    remove,
                    request_id=f"{run_id}-list-{spec.name}-{n}"
                    + (f"-c{attempt}" if attempt > 1 else ""),
                )
            except (HubSpotAuthError, DailyLimitReached):
                raise
            except HubSpotError as exc:  # transient past retries, or a 4xx: next run again
                report.errors.append(str(exc))
                answer = None
                break
            if answer.confirmed:
                break
            log.warning(
                "%s: membership answer without its fields (attempt %d); sending again",
                spec.name,
                attempt,
            )
        if answer is None or not answer.confirmed:
            report.unconfirmed += len(add) + len(remove)
            continue
        missing = set(answer.missing)
        added = {h: plan.external_ids.get(h) for h in add if h not in missing}
        # a remove is confirmed whatever the answer lists: removed, not a member, or gone
        store.lists.record_changes(spec.name, added, remove, run_id)
        report.added += len(added)
        report.removed += len(remove)
        report.missing += len(missing & set(add))


async def sync_list(
    settings: Settings,
    spec: ListMappingSpec,
    as_of: dt.date,
    run_id: str,
    client: HubSpotClient | None,
    *,
    shadow: bool = False,
    full_refresh: bool = False,
) -> ListReport:
    """One run of a list mapping (see the module docstring). Raises the error tree's terminal
    errors (auth, daily budget, a list that cannot be managed); transient failures of single
    membership calls are in ``report.errors`` and sent again by the next run."""
    shadow = shadow or spec.shadow or client is None
    report = ListReport(spec.name, spec.list_name, spec.object_type, shadow=shadow)
    if client is not None and "hubspot_" in spec.source.sql:
        await refresh_reference(client, settings.warehouse_dir, f"{run_id}-ref")
    desired = segment_members(settings.warehouse_dir, spec, as_of)
    report.desired = len(desired)
    with StateStore(settings.state_db) as store:
        lst = None
        if client is not None:
            lst = await _resolve(client, store, spec, shadow, run_id, report)
        if lst is not None:
            report.list_id = lst.list_id
            managed = store.lists.managed(spec.name)
            fresh = report.list_created or managed is None and lst.size == 0
            store.lists.set_list(spec.name, lst.list_id, spec.object_type)
            if _needs_reread(store, spec, lst, full_refresh, fresh):
                ids = await read_members(
                    client,  # type: ignore[arg-type]
                    lst.list_id,
                    request_id=f"{run_id}-list-{spec.name}-read",
                )
                report.reread = True
                report.manual_added, report.manual_removed = store.lists.replace_from_hubspot(
                    spec.name, spec.object_type, ids, run_id
                )
            elif fresh:
                store.lists.replace_from_hubspot(spec.name, spec.object_type, [], run_id)
        report.members_before = store.lists.count(spec.name) if lst is not None else 0
        plan = (
            store.lists.plan(spec.name, spec.object_type, desired)
            if lst is not None
            else store.lists.plan(f"\x00unknown:{spec.name}", spec.object_type, desired)
        )
        report.planned_add, report.planned_remove = len(plan.add), len(plan.remove)
        report.waiting_for_record = len(plan.waiting)
        report.waiting_sample = plan.waiting[:WAITING_SAMPLE]
        if not shadow and lst is not None and (plan.add or plan.remove):
            await _push(client, store, spec, lst.list_id, plan, run_id, report)  # type: ignore[arg-type]
        report.members_after = store.lists.count(spec.name) if lst is not None else 0
    return report
