"""How long a webhook-triggered change took to reach HubSpot: the priority-signal SLA.

A webhook is a priority signal: HubSpot says a record changed, and a warehouse-owned field a
person overwrote must be put back within minutes (the priority SLA, 5 minutes by default), not
by the nightly batch (24 hours). Latency runs from our receipt of the earliest event of the run
(``received_at`` in the inbox, our clock) to the run's last confirmed write of that object (the
value history's ``recorded_at``: HubSpot accepted it and the snapshot holds it). When the run
had nothing to write (the edit was to a HubSpot-owned field, or already undone), it ends when
the run had planned that: the record was in step from then.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from spokesync.kpis import Breach, Thresholds
from spokesync.state.store import StateStore
from spokesync.webhooks.inbox import WebhookInbox


@dataclass(frozen=True)
class EventLatency:
    object_type: str
    events: int
    first_received: dt.datetime
    confirmed_at: dt.datetime | None  # the run's last confirmed write; None: nothing written
    done_at: dt.datetime  # confirmed_at, else when the run had planned (nothing to write)

    @property
    def seconds(self) -> float:
        return (self.done_at - self.first_received).total_seconds()

    def metadata(self) -> dict[str, float | int | str]:
        return {
            "kpi_webhook_latency_s": round(self.seconds, 3),
            "webhook_events": self.events,
            "first_received_at": self.first_received.isoformat(timespec="milliseconds"),
            "done_at": self.done_at.isoformat(timespec="milliseconds"),
            "latency_ends": "confirmed write" if self.confirmed_at else "plan (nothing to write)",
        }


def _utc(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC) if t.tzinfo else t.replace(tzinfo=dt.UTC)


def measure(
    inbox_path: Path,
    state_db: Path,
    first_seq: int,
    last_seq: int,
    run_id: str,
    planned_at: dt.datetime,
    object_types: list[str],
) -> list[EventLatency]:
    """The latency of each object type the run synced, from the inbox and the value history."""
    with WebhookInbox(inbox_path) as inbox:
        receipts = inbox.receipts(first_seq, last_seq)
    out: list[EventLatency] = []
    with StateStore(state_db) as store:
        for obj in object_types:
            if obj not in receipts:
                continue
            events, first_ms = receipts[obj]
            confirmed = store.history.last_confirmed_at(obj, run_id)
            confirmed = _utc(confirmed) if confirmed is not None else None
            out.append(
                EventLatency(
                    obj,
                    events,
                    dt.datetime.fromtimestamp(first_ms / 1000, dt.UTC),
                    confirmed,
                    confirmed or _utc(planned_at),
                )
            )
    return out


def breach(latency: EventLatency, t: Thresholds) -> Breach:
    """The ``sync_latency`` verdict of a webhook-triggered run (always the priority SLA)."""
    late = dt.timedelta(seconds=round(latency.seconds, 3))
    return Breach(
        "sync_latency",
        late <= t.priority_sla,
        f"webhook: {latency.events} event(s) for {latency.object_type} in HubSpot {late} after "
        f"receipt ({latency.metadata()['latency_ends']}; priority SLA {t.priority_sla})",
    )
