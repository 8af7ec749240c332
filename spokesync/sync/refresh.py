"""Reading HubSpot back into the snapshot: full refresh and incremental refresh.

**Full refresh** (:func:`full_refresh`): every record of a synced object, paged, with the
managed properties, the match properties adoption needs (``domain``, ``hs_additional_emails``,
a mapping's ``match:`` properties) and ``hs_merged_object_ids``. Records with our external id
replace the snapshot; the others are kept as the portal's unowned records
(:mod:`spokesync.state.matches`), so the next plan can adopt them. It sets the refresh cursor.

**Incremental refresh** (:func:`incremental_refresh`): before each push, the records HubSpot
modified since the cursor, through the search API on the object's last-modified property
(``lastmodifieddate`` on contacts, ``hs_lastmodifieddate`` elsewhere), ascending, 200 a page,
through the client's separate 5 requests/s search bucket. The window starts ``overlap`` before
the cursor (search indexing lags writes), duplicates are dropped by id, and when a query nears
the search API's 10,000-result cap the query restarts from the last modification time seen
(and, if more than 10,000 records share one millisecond, walks that millisecond by
``hs_object_id``). The records read replace their snapshot rows; drift is reported per
property. Stretches of the window that only records whose last modification we know fill
(our own confirmed writes: HubSpot's ``updatedAt``; records read before) are counted, not
read, when a push was too large to read back cheaply (:mod:`spokesync.sync.own_window`); ranges
a large push already proved by counting while it ran (:mod:`spokesync.sync.verify_push`) are
left out of the window.

Both remap merges: a record whose ``hs_merged_object_ids`` names a HubSpot id the snapshot
holds under one of our external ids keeps that external id (a survivor without it is pinned to
it, so the next push stamps it by id instead of creating a duplicate). When the survivor carries
another of our external ids (a person merged two of our records), the merged-away one maps to
the survivor and is held, never re-created (:mod:`spokesync.state.merged`). Links are kept: the
association snapshot is keyed by external ids, and both resolve to the survivor.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import queue
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from spokesync.canonical import canonical
from spokesync.hubspot.client import HubSpotClient, counting_calls
from spokesync.hubspot.read import read_all
from spokesync.mapping.spec import MappingSpec
from spokesync.settings import Settings
from spokesync.state.matches import PortalCollector
from spokesync.state.snapshot import DriftReport
from spokesync.state.store import StateStore
from spokesync.sync import own_window
from spokesync.sync.own_window import KnownTimes, WindowStats, checked_records

REFRESH_QUEUE = 10_000  # records in flight between HubSpot pages and the store
SEARCH_PAGE = 200
SEARCH_CAP = 10_000
DEFAULT_OVERLAP = dt.timedelta(minutes=5)
MERGED_IDS = "hs_merged_object_ids"


def modified_property(object_type: str) -> str:
    """The last-modified property HubSpot's search filters on, per object."""
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def read_properties(mapping: MappingSpec) -> list[str]:
    """What a refresh reads per record: managed, match and merge properties."""
    return list(
        dict.fromkeys(
            [
                *mapping.managed_properties,
                *mapping.match_properties,
                MERGED_IDS,
                modified_property(mapping.object_type),
            ]
        )
    )


@dataclass
class RefreshReport:
    """One object's refresh: the drift report plus how it read."""

    drift: DriftReport
    mode: str  # 'full' | 'incremental'
    calls: int = 0
    unowned: int = 0
    merges_remapped: int = 0
    archived: int = 0  # full refresh: our records HubSpot no longer has (archived there)
    restarts: int = 0  # incremental: queries restarted at the 10,000-result cap
    known: int = 0  # incremental: records whose last modification we knew inside the window
    known_verified: int = 0  # ... of which confirmed by a count, not read back
    verified_skipped: int = 0  # our writes in ranges a push's counts proved: skipped
    count_checks: int = 0  # search calls spent counting (each one page)
    own_window_s: float = 0.0  # span of the counted parts (see docs/existing-portal.md)
    duration_s: float = 0.0
    cursor: dt.datetime | None = None

    def line(self) -> str:
        """One line for the sync summary."""
        d = self.drift
        text = (
            f"{self.mode}: read {_n(d.records_read, 'record')} ({_n(self.calls, 'call')}), "
            f"{_n(d.values_drifted, 'value')} drifted on {_n(d.records_drifted, 'record')}"
        )
        if self.mode == "full":
            text += f", {_n(d.records_missing, 'record')} missing in HubSpot"
        if self.merges_remapped:
            text += f", {_n(self.merges_remapped, 'merge')} followed"
        return text

    def as_metadata(self) -> dict[str, int | float | str]:
        meta: dict[str, int | float | str] = dict(self.drift.as_metadata())
        meta.update(
            {
                "refresh_mode": self.mode,
                "refresh_calls": self.calls,
                "records_unowned": self.unowned,
                "merges_remapped": self.merges_remapped,
                "records_archived_in_hubspot": self.archived,
                "refresh_restarts": self.restarts,
                "refresh_known": self.known,
                "refresh_known_verified": self.known_verified,
                "refresh_verified_skipped": self.verified_skipped,
                "refresh_count_checks": self.count_checks,
                "refresh_counted_window_s": round(self.own_window_s, 3),
                "refresh_duration_s": round(self.duration_s, 3),
            }
        )
        if self.cursor is not None:
            meta["refresh_cursor"] = self.cursor.isoformat()
        return meta


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _ms(value: Any) -> int | None:
    """Epoch milliseconds of a HubSpot datetime (ISO string or epoch-ms string)."""
    if value is None or value == "":
        return None
    text = str(value)
    if text.isdigit():
        return int(text)
    iso = canonical("datetime", text)
    if iso is None:
        return None
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _read_times(records: list[dict[str, Any]], prop: str) -> Iterator[tuple[str, int]]:
    """(HubSpot id, last-modified ms) of records read."""
    for rec in records:
        ms = _ms((rec.get("properties") or {}).get(prop)) or _ms(rec.get("updatedAt"))
        if ms is not None and rec.get("id") is not None:
            yield str(rec["id"]), ms


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Abort(Exception):
    """Raised inside the store's transaction so a failed read leaves the snapshot unchanged."""


_END: dict[str, Any] = {}
_FAIL: dict[str, Any] = {}


def _drain(pages: queue.Queue[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    while (item := pages.get()) is not _END:
        if item is _FAIL:
            raise _Abort
        yield item


async def _stream_into(records: AsyncIterator[dict[str, Any]], store_records: Any) -> Any:
    """Feed ``records`` to ``store_records(iterator)`` running in a thread, through a bounded
    queue (the event loop never blocks); a failed read makes the store roll back."""
    pages: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=REFRESH_QUEUE)
    loop = asyncio.get_running_loop()
    writer = loop.run_in_executor(None, store_records, _drain(pages))
    try:
        async for record in records:
            while not writer.done():
                try:
                    pages.put_nowait(record)
                    break
                except queue.Full:
                    await asyncio.sleep(0.01)
            if writer.done():
                break
    except BaseException:
        if not writer.done():
            await loop.run_in_executor(None, pages.put, _FAIL)
        with contextlib.suppress(_Abort):
            await writer
        raise
    if not writer.done():
        await loop.run_in_executor(None, pages.put, _END)
    return await writer


class _MergeTracker:
    """Survivors seen in a refresh: (survivor id, its external id or None, merged-away ids)."""

    def __init__(self, mapping: MappingSpec) -> None:
        self.mapping = mapping
        self.id_form = mapping.id_form
        self.survivors: list[tuple[str, str | None, list[str]]] = []

    def tee(self, records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for rec in records:
            values = rec.get("properties") or {}
            merged = values.get(MERGED_IDS)
            if merged and rec.get("id") is not None:
                ext = canonical(self.id_form, values.get(self.mapping.id.property))
                ids = [m.strip() for m in str(merged).split(";") if m.strip()]
                self.survivors.append((str(rec["id"]), ext, ids))
            yield rec


def _remap_merges(
    store: StateStore,
    mapping: MappingSpec,
    tracker: _MergeTracker,
    ids_table: str = "snapshot",
    run_id: str | None = None,
) -> int:
    """Apply merges seen in a refresh; returns how many of our records were remapped.
    ``ids_table`` holds (object_type, external_id, hubspot_id) as they were before the read."""
    ot = mapping.object_type
    remapped = 0
    gone: list[str] = []
    for survivor, survivor_ext, merged_ids in tracker.survivors:
        gone += merged_ids
        store.merged.follow(ot, survivor, merged_ids)  # merged away into a survivor merged again
        with store.connection.connection() as con:
            rows = con.execute(
                f"SELECT DISTINCT external_id, hubspot_id FROM {ids_table} WHERE object_type = $ot "
                "AND list_contains($ids, hubspot_id)",
                {"ot": ot, "ids": merged_ids},
            ).fetchall()
        for ext, old in rows:
            if survivor_ext == ext:
                continue  # the survivor carries our id: the refresh already re-keyed it
            if survivor_ext is None:
                # The survivor lost our external id: pin it, so the push stamps it by id.
                store.matches.pin(ot, ext, survivor, note=f"merged in HubSpot into {survivor}")
                with store.connection.transaction() as con:
                    con.execute(
                        "DELETE FROM snapshot WHERE object_type = $ot AND external_id = $ext",
                        {"ot": ot, "ext": ext},
                    )
                    con.execute(
                        "DELETE FROM snapshot_record WHERE object_type = $ot "
                        "AND external_id = $ext",
                        {"ot": ot, "ext": ext},
                    )
                remapped += 1
            else:
                # Merged into a record another of our ids owns: the survivor keeps that id;
                # this one maps to the survivor too, so it is never re-created and its links
                # resolve there; its own values are held (spokesync.state.merged).
                store.merged.record(ot, ext, survivor, survivor_ext, old, run_id)
                remapped += 1
    store.matches.forget_records(ot, gone)
    return remapped


async def full_refresh(
    settings: Settings, mapping: MappingSpec, client: HubSpotClient, run_id: str
) -> RefreshReport:
    """Read every record of ``mapping``'s object back (see the module docstring)."""
    started = time.perf_counter()
    started_ms = _now_ms()
    managed = mapping.managed_properties
    collector = PortalCollector(
        mapping.object_type,
        mapping.id.property,
        managed,
        mapping.match_properties,
        mapping.property_types,
    )
    tracker = _MergeTracker(mapping)
    remapped = 0

    missing = 0

    def store_records(records: Iterator[dict[str, Any]]) -> DriftReport:
        nonlocal remapped, missing
        with StateStore(settings.state_db, [mapping]) as store:
            with store.connection.connection() as con:  # who held which id before the read
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE ids_before AS SELECT object_type, "
                    "external_id, hubspot_id FROM snapshot_record WHERE object_type = $ot",
                    {"ot": mapping.object_type},
                )
            report = store.replace_snapshot_from_hubspot(
                mapping.object_type,
                mapping.id.property,
                collector.tee(tracker.tee(records)),
                managed,
                mapping.property_types,
                run_id=run_id,
            )
            store.matches.replace_portal(collector)
            remapped = _remap_merges(store, mapping, tracker, "ids_before", run_id)
            with store.connection.transaction() as con:
                missing = store.matches.record_archived(con, mapping.object_type)
            # Records may have been deleted or re-created in HubSpot: re-check links.
            store.forget_associations(mapping.object_type)
            store.matches.promote(mapping.object_type, run_id)
            store.cursors.advance(mapping.object_type, started_ms, full=True)
            before = started_ms - int(DEFAULT_OVERLAP.total_seconds() * 1000)
            store.modified.prune(mapping.object_type, before)
            store.verified.prune(mapping.object_type, before)
            return report

    # this refresh's calls only: another mapping may push through the same client meanwhile
    with counting_calls() as counted:
        records = read_all(client, mapping.object_type, read_properties(mapping), run_id=run_id)
        drift = await _stream_into(records, store_records)
    return RefreshReport(
        drift=drift,
        mode="full",
        archived=missing,
        calls=counted.calls,
        unowned=collector.unowned_records,
        merges_remapped=remapped,
        duration_s=time.perf_counter() - started,
        cursor=dt.datetime.fromtimestamp(started_ms / 1000, dt.UTC),
    )


@dataclass
class _SearchState:
    calls: int = 0
    restarts: int = 0
    newest_ms: int | None = None
    seen: set[str] = field(default_factory=set)
    known: KnownTimes | None = None  # our writes' times, kept up to date by every read


async def search_modified_since(
    client: HubSpotClient,
    object_type: str,
    properties: list[str],
    since_ms: int,
    *,
    run_id: str,
    state: _SearchState | None = None,
    page_size: int = SEARCH_PAGE,
    cap: int = SEARCH_CAP,
    until_ms: int | None = None,
    first_page: dict[str, Any] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Every record modified at or after ``since_ms`` (and at or before ``until_ms``), oldest
    first, each once per refresh. ``first_page``: the answer to this range's first page,
    already fetched (by a count check)."""
    state = state or _SearchState()
    prop = modified_property(object_type)
    seen = state.seen
    low = since_ms
    by_id_from: str | None = None  # walking one crowded millisecond by hs_object_id
    while True:
        after = 0
        last_ms: int | None = None
        last_id: str | None = None
        while True:
            if first_page is not None:
                page, first_page = first_page, None
            else:
                state.calls += 1
                page = await client.search(
                    object_type,
                    window_query(prop, low, until_ms, by_id_from, properties, page_size, after),
                    request_id=f"{run_id}-inc-{object_type}-{state.calls}",
                )
            for record in page.get("results") or ():
                rid = str(record.get("id"))
                ms = _ms((record.get("properties") or {}).get(prop)) or _ms(record.get("updatedAt"))
                if ms is not None:
                    last_ms = ms
                    state.newest_ms = max(state.newest_ms or ms, ms)
                    if state.known is not None:
                        state.known.saw(rid, ms)
                last_id = rid
                if rid not in seen:
                    seen.add(rid)
                    yield record
            nxt = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not nxt:
                if by_id_from is None:
                    return
                by_id_from, low = None, low + 1  # that millisecond is done
                if until_ms is not None and low > until_ms:
                    return
                break
            if int(nxt) + page_size > cap:  # the next page would pass the 10,000 cap
                state.restarts += 1
                if by_id_from is not None:
                    by_id_from = last_id
                elif last_ms is None or last_ms <= low:
                    by_id_from = "0"  # over 10,000 records share one millisecond
                else:
                    low = last_ms  # restart from the last time seen; `seen` drops repeats
                break
            after = int(nxt)


def window_query(
    prop: str,
    low: int,
    until_ms: int | None,
    by_id_from: str | None,
    properties: list[str],
    page_size: int,
    after: int,
) -> dict[str, Any]:
    """One search page: modified in [low, until] by date, or one millisecond by id."""
    if by_id_from is None:
        filters = [{"propertyName": prop, "operator": "GTE", "value": str(low)}]
        if until_ms is not None:
            filters.append({"propertyName": prop, "operator": "LTE", "value": str(until_ms)})
        sort = prop
    else:
        filters = [
            {"propertyName": prop, "operator": "EQ", "value": str(low)},
            {"propertyName": "hs_object_id", "operator": "GT", "value": by_id_from},
        ]
        sort = "hs_object_id"
    return {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": properties,
        "limit": page_size,
        "after": str(after),
    }


def modified_records(
    client: HubSpotClient,
    object_type: str,
    properties: list[str],
    since_ms: int,
    *,
    run_id: str,
    state: _SearchState,
    own: tuple[list[str], list[int]],
    stats: WindowStats,
    readback_limit: int | None = None,
    verified: Sequence[tuple[int, int]] = (),
) -> AsyncIterator[dict[str, Any]]:
    """The records an incremental refresh must read: everything modified since ``since_ms``,
    except the ``verified`` ranges (counted while a push ran: :mod:`spokesync.sync.verify_push`)
    and stretches only our own confirmed writes (``own``: HubSpot ids and ``updatedAt`` ms,
    outside the verified ranges) fill, when there are more of those than ``readback_limit``
    (see :mod:`spokesync.sync.own_window`)."""
    limit = own_window.READBACK_LIMIT if readback_limit is None else readback_limit
    ids, times = own
    if len(ids) <= limit and not verified:
        return search_modified_since(
            client, object_type, properties, since_ms, run_id=run_id, state=state
        )
    state.known = KnownTimes(ids, times)
    prop = modified_property(object_type)

    async def page(lo: int, hi: int | None, after: int) -> dict[str, Any]:
        state.calls += 1
        return await client.search(
            object_type,
            window_query(prop, lo, hi, None, properties, own_window.COUNT_LIMIT, after),
            request_id=f"{run_id}-inc-{object_type}-{state.calls}",
        )

    def read(
        lo: int, hi: int | None, first: dict[str, Any] | None
    ) -> AsyncIterator[dict[str, Any]]:
        return search_modified_since(
            client,
            object_type,
            properties,
            lo,
            run_id=run_id,
            state=state,
            until_ms=hi,
            first_page=first,
        )

    return checked_records(
        state.known, since_ms, page, read, stats, verified, count=len(ids) > limit
    )


async def incremental_refresh(
    settings: Settings,
    mapping: MappingSpec,
    client: HubSpotClient,
    run_id: str,
    *,
    overlap: dt.timedelta = DEFAULT_OVERLAP,
    readback_limit: int | None = None,
) -> RefreshReport:
    """Read the records modified since the cursor (see the module docstring). Falls back to
    a full refresh when the object has no cursor yet. Stretches of the window only our own
    confirmed writes fill are counted, not read, when there are more than ``readback_limit``
    of those (default :data:`spokesync.sync.own_window.READBACK_LIMIT`)."""
    with StateStore(settings.state_db, [mapping]) as store:
        cursor = store.cursors.get(mapping.object_type)
    if cursor is None:
        return await full_refresh(settings, mapping, client, run_id)
    started = time.perf_counter()
    started_ms = _now_ms()
    lag_ms = int(overlap.total_seconds() * 1000)
    since = cursor.cursor_ms - lag_ms
    with StateStore(settings.state_db, [mapping]) as store:
        verified = store.verified.since(mapping.object_type, since)
        skip = [(r.lo_ms, r.hi_ms) for r in verified]
        own = store.modified.since(mapping.object_type, since, skip)
    prop = modified_property(mapping.object_type)
    managed = mapping.managed_properties
    collector = PortalCollector(
        mapping.object_type,
        mapping.id.property,
        managed,
        mapping.match_properties,
        mapping.property_types,
    )
    tracker = _MergeTracker(mapping)
    state = _SearchState()
    remapped = 0

    def store_records(records: Iterator[dict[str, Any]]) -> DriftReport:
        nonlocal remapped
        read = list(collector.tee(tracker.tee(records)))  # 1 % of a portal: small
        with StateStore(settings.state_db, [mapping]) as store:
            report = store.snapshot.merge_from_hubspot(
                mapping.object_type,
                mapping.id.property,
                read,
                managed,
                mapping.property_types,
                run_id=run_id,
            )
            store.matches.update_portal(collector)
            remapped = _remap_merges(store, mapping, tracker, run_id=run_id)
            store.matches.promote(mapping.object_type, run_id)
            store.modified.record_reads(mapping.object_type, _read_times(read, prop))
            # Never move past "now minus the overlap" on an empty window: indexing lag.
            seen = [m for m in (state.newest_ms, window.newest_ms) if m is not None]
            seen += [hi for _, hi in skip]  # proved clean when counted (after the index lag)
            newest = max(seen) if seen else since
            store.cursors.advance(mapping.object_type, min(newest, started_ms), full=False)
            moved = store.cursors.get(mapping.object_type)
            if moved is not None:  # no later window starts before this
                store.modified.prune(mapping.object_type, moved.cursor_ms - lag_ms)
                store.verified.prune(mapping.object_type, moved.cursor_ms - lag_ms)
            return report

    window = WindowStats()
    records = modified_records(
        client,
        mapping.object_type,
        read_properties(mapping),
        since,
        run_id=run_id,
        state=state,
        own=own,
        stats=window,
        readback_limit=readback_limit,
        verified=skip,
    )
    drift = await _stream_into(records, store_records)
    with StateStore(settings.state_db, [mapping]) as store:
        now_cursor = store.cursors.get(mapping.object_type)
    return RefreshReport(
        drift=drift,
        mode="incremental",
        calls=state.calls,
        unowned=collector.unowned_records,
        merges_remapped=remapped,
        restarts=state.restarts,
        duration_s=time.perf_counter() - started,
        cursor=now_cursor.cursor if now_cursor else None,
        known=len(own[0]),
        verified_skipped=sum(r.records for r in verified),
        known_verified=window.verified,
        count_checks=window.count_calls,
        own_window_s=window.window_ms / 1000,
    )
