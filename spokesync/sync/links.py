"""A mapping's associations, sent behind the upserts they need (v4 batch, 2,000 pairs a call).

Only links the association snapshot does not hold yet are sent, and only once both ends have
a HubSpot id. :class:`LinkPipeline` does that *during* the mapping's push: the sink tells it
each batch HubSpot confirmed, and a chunk of links goes out as soon as every record it names
is settled, within the same client and rate budget as the push. The calls and the final links
are those of sending everything after the push:

- the links of each kind (target object, type, category) are taken in the order of their
  records' external ids (the push's order), deduplicated, and cut into chunks of 2,000 in
  that order, whether a chunk goes out during the push or after it;
- a record the push sends is settled when HubSpot confirmed it (its id is then known); a record
  the plan does not send is settled from the start, with the id the snapshot holds; a record
  that ends dead-lettered, or is held back (parked), stops the early sending of that kind of
  link there, and the rest is sent after the push, with the ids the store then holds — exactly
  what sending after the push would have done;
- links to the mapping's own object type wait for the end of the push (both ends move);
- stale links (``remove_stale``) are removed before any link is added, as before.

Only links HubSpot confirmed enter the association snapshot (also when a 401/403 or the daily
budget stops the links half-way, or the push stops); the next run sends the others again.
Re-creating an existing association is a no-op in HubSpot, so a retry is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from spokesync.changes import ConfirmedTap, ConfirmedWrite, PushSink
from spokesync.diff import ChangePlan
from spokesync.hubspot.associations import (
    ASSOCIATION_BATCH_LIMIT,
    AssociationReport,
    AssociationSender,
    LabelArchive,
    Pair,
    archive_labels,
)
from spokesync.hubspot.client import HubSpotClient
from spokesync.state.store import LinkRow, StateStore

LINK_BATCH = ASSOCIATION_BATCH_LIMIT  # pairs per call (HubSpot's v4 batch limit)


# One missing link of a kind, by external ids: (from_external_id, to_external_id). The kind
# holds the rest of its ``LinkRow``; a first sync has hundreds of thousands of them.
Ends = tuple[str, str]


@dataclass
class _Kind:
    """The missing links of one kind (target object, association type, category)."""

    from_type: str
    to_type: str
    type_id: int
    category: str
    links: list[Ends]  # in the order of their records' external ids
    early: bool  # may go out during the push (the target is another object type)
    to_ids: dict[str, str] = field(default_factory=dict)  # targets' HubSpot ids (early kinds)
    pos: int = 0  # links before this one are offered (or left out: an end without an id)
    sender: AssociationSender | None = None
    offered: list[tuple[Ends, Pair]] = field(default_factory=list)

    def row(self, link: Ends) -> LinkRow:
        return (self.from_type, link[0], self.to_type, link[1], self.type_id, self.category)


class LinkPipeline:
    """The associations of one mapping's push; see the module doc. ``await start()`` before the
    push, feed it the push's confirmations (:meth:`sink`), ``await finish()`` after the push's
    results are saved; ``await close()`` on every way out (records what HubSpot confirmed)."""

    def __init__(
        self, client: HubSpotClient, store: StateStore, plan: ChangePlan, run_id: str
    ) -> None:
        self.client = client
        self.store = store
        self.plan = plan
        self.object_type = plan.object_type
        self.run_id = run_id
        self.kinds: list[_Kind] = []
        self.reports: list[AssociationReport] = []
        self._pending: set[str] = set()  # records the push may still confirm
        self._ids: dict[str, str] = {}  # settled records' HubSpot ids
        self._archive: asyncio.Future[list[AssociationReport]] | None = None
        self._context: contextvars.Context | None = None
        self._stopped = False  # an error, or the push stopped: no more early sending
        self._closed = False

    async def start(self) -> None:
        """Work out what to send; start removing stale links (additions wait for it). Call it
        before the push: the link calls run in this context, not the push's (whose calls are
        the push's write calls)."""
        self._context = contextvars.copy_context()
        wanted = self.plan.association_table(changed_only=False)  # Arrow: not in Python
        removable = wanted.filter(wanted.column("remove_stale"))
        if removable.num_rows:
            self._archive = asyncio.ensure_future(
                archive_stale_associations(
                    self.client, self.store, self.object_type, removable, self.run_id
                )
            )
            self._archive.add_done_callback(lambda _: self._advance())
        groups = missing_by_kind(self.store.associations.missing_table(wanted))
        if not groups:
            return
        self._pending = self.plan.planned_ids()
        settled: set[str] = set()
        for (from_type, to_type, type_id, category), links in sorted(groups.items()):
            links.sort(key=lambda x: x[0])
            early = to_type != self.object_type
            kind = _Kind(from_type, to_type, type_id, category, links, early)
            if early:
                kind.to_ids = self.store.hubspot_ids(to_type, (x[1] for x in links))
                settled.update(x[0] for x in links if x[0] not in self._pending)
            self.kinds.append(kind)
        self._ids = self.store.hubspot_ids(self.object_type, settled)
        self._advance()

    def sink(self, inner: PushSink) -> PushSink:
        """``inner`` (the store's writer), also telling this pipeline what HubSpot confirmed."""
        return ConfirmedTap(inner, self.confirmed)

    def confirmed(self, writes: list[ConfirmedWrite]) -> None:
        for w in writes:
            if w.object_type == self.object_type and w.external_id in self._pending:
                self._pending.discard(w.external_id)
                self._ids[w.external_id] = w.hubspot_id
        self._advance()

    def _advance(self) -> None:
        """Offer every link whose ends are settled, in order, up to the first that is not."""
        if self._stopped or (self._archive is not None and not self._archive.done()):
            return
        if self._archive is not None and self._archive.exception() is not None:
            self._stopped = True
            return
        for kind in self.kinds:
            if not kind.early:
                continue
            if kind.sender is not None and kind.sender.failed() is not None:
                self._stopped = True
                return
            links = kind.links
            while kind.pos < len(links):
                link = links[kind.pos]
                if link[0] in self._pending:
                    break  # the push has not confirmed this record (yet)
                self._offer(kind, link, self._ids.get(link[0]), kind.to_ids.get(link[1]))
                kind.pos += 1

    def _offer(self, kind: _Kind, link: Ends, from_id: str | None, to_id: str | None) -> None:
        if from_id is None or to_id is None:
            return  # an end without a HubSpot id: a later run sends it
        if kind.sender is None:
            kind.sender = AssociationSender(
                self.client,
                from_type=self.object_type,
                to_type=kind.to_type,
                association_type_id=kind.type_id,
                category=kind.category,
                run_id=self.run_id,
                batch_size=LINK_BATCH,
                context=self._context,
            )
        pair = (from_id, to_id)
        kind.offered.append((link, pair))
        kind.sender.offer(pair)

    async def finish(self) -> list[AssociationReport]:
        """After the push (its results saved): send the rest with the ids the store holds now,
        wait for every call, record the confirmed links. Raises a 401/403 or the daily budget
        as before (after recording what was confirmed)."""
        try:
            if self._archive is not None:
                self.reports.extend(await self._archive)
            for kind in self.kinds:
                if kind.sender is not None and (error := kind.sender.failed()) is not None:
                    raise error
                rest = kind.links[kind.pos :]
                if rest:
                    from_ids = self.store.hubspot_ids(self.object_type, (x[0] for x in rest))
                    to_ids = self.store.hubspot_ids(kind.to_type, (x[1] for x in rest))
                    for link in rest:
                        self._offer(kind, link, from_ids.get(link[0]), to_ids.get(link[1]))
                    kind.pos = len(kind.links)
            for kind in self.kinds:
                if kind.sender is not None:
                    self.reports.append(await kind.sender.wait())
        except BaseException:
            await self.close()
            raise
        await self.close()
        return self.reports

    async def close(self) -> None:
        """Stop what is still in flight and record every link HubSpot confirmed (once)."""
        if self._closed:
            return
        self._closed = self._stopped = True
        if self._archive is not None and not self._archive.done():
            self._archive.cancel()
            with contextlib.suppress(BaseException):
                await self._archive
        for kind in self.kinds:
            if kind.sender is None:
                continue
            await kind.sender.cancel()  # a no-op for calls already answered
            confirmed = kind.sender.report.confirmed
            self.store.record_associations(
                [kind.row(link) for link, pair in kind.offered if pair in confirmed], self.run_id
            )
        # A first sync's links are hundreds of thousands of tuples: free them before the
        # mapping's finish. The confirmed pairs are in the store now; the reports keep their
        # counts (pairs_ok was taken when the calls ended).
        for kind in self.kinds:
            if kind.sender is not None:
                kind.sender.report.confirmed = set()
        self.kinds = []
        self._ids, self._pending = {}, set()


def missing_by_kind(missing: pa.Table) -> dict[tuple[str, str, int, str], list[Ends]]:
    """The missing links (``LINK_SCHEMA``) by kind (from type, target type, association type,
    category), each kind's links as (from, to) external ids in the order of the table."""
    out: dict[tuple[str, str, int, str], list[Ends]] = {}
    if missing.num_rows == 0:
        return out
    key_columns = ["from_type", "to_type", "type_id", "category"]
    keys = missing.select(key_columns).group_by(key_columns).aggregate([]).to_pylist()
    for key in keys:
        mask = pa.scalar(True)
        for name in key_columns:
            column = missing.column(name)
            test = (
                pc.is_null(column)
                if key[name] is None
                else pc.fill_null(pc.equal(column, pa.scalar(key[name], column.type)), False)
            )
            mask = pc.and_(mask, test)
        rows = missing.filter(mask)
        ends = zip(
            rows.column("from_external_id").to_pylist(),
            rows.column("to_external_id").to_pylist(),
            strict=True,
        )
        out[tuple(key[n] for n in key_columns)] = list(ends)  # type: ignore[assignment]
    return out


async def push_associations(
    client: HubSpotClient, store: StateStore, change_plan: ChangePlan, run_id: str
) -> list[AssociationReport]:
    """Associate the mapping's records after its push (no push running: everything is
    settled, so this is the pipeline's last step alone)."""
    pipeline = LinkPipeline(client, store, change_plan, run_id)
    try:
        await pipeline.start()
        return await pipeline.finish()
    finally:
        await pipeline.close()


async def archive_stale_associations(
    client: HubSpotClient,
    store: StateStore,
    object_type: str,
    wanted: pa.Table,
    run_id: str,
) -> list[AssociationReport]:
    """Remove links spokesync made that a record no longer wants (it moved to another
    company): only that association type, so labels people added stay. Only links HubSpot
    confirmed removed leave the association snapshot; the others are tried again next run."""
    stale = store.stale_associations(wanted)
    groups: dict[str, list[LinkRow]] = {}
    for link in stale:
        groups.setdefault(link[2], []).append(link)
    reports = []
    for to_type, links in sorted(groups.items()):
        from_ids = store.hubspot_ids(object_type, (x[1] for x in links))
        to_ids = store.hubspot_ids(to_type, (x[3] for x in links))
        ready = [x for x in links if x[1] in from_ids and x[3] in to_ids]
        if ready:
            report = await archive_labels(
                client,
                from_type=object_type,
                to_type=to_type,
                links=[LabelArchive(from_ids[x[1]], to_ids[x[3]], x[4], x[5]) for x in ready],
                run_id=run_id,
            )
            reports.append(report)
            store.drop_associations(
                [x for x in ready if (from_ids[x[1]], to_ids[x[3]]) in report.confirmed]
            )
        # Links whose other end is gone from the snapshot cannot be addressed; forget them.
        store.drop_associations([x for x in links if x not in ready])
    return reports
