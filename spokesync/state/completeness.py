"""Association completeness: per kind of link, the share of desired links HubSpot confirmed.

A *kind* is one association a mapping (or a task trigger) wants: its from and to object types
and its label (``deals → contacts (Billing contact)``). After each push the sync measures every
kind it pushed — desired links, links in the association snapshot (confirmed by HubSpot), and
links still waiting for one end to exist in HubSpot — and records the figures here, so reports,
KPIs and checks read the latest measurement per kind without recomputing it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from spokesync.state.associations import LABELLED_LINK_SCHEMA
from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS association_completeness (
        run_id VARCHAR NOT NULL,
        from_type VARCHAR NOT NULL,
        to_type VARCHAR NOT NULL,
        label VARCHAR NOT NULL,          -- '' for the pair's unlabeled association
        desired BIGINT NOT NULL,         -- links the mapping wants
        confirmed BIGINT NOT NULL,       -- of which HubSpot confirmed (association snapshot)
        waiting BIGINT NOT NULL,         -- of which one end is not in HubSpot yet
        measured_at TIMESTAMPTZ NOT NULL
    )""",
)


@dataclass(frozen=True, slots=True)
class LinkCompleteness:
    """One kind of link and how many of its desired links HubSpot holds."""

    from_type: str
    to_type: str
    label: str  # '' = unlabeled
    desired: int
    confirmed: int
    waiting: int = 0
    run_id: str | None = None
    measured_at: dt.datetime | None = None

    @property
    def share(self) -> float | None:
        """confirmed / desired (None: nothing desired)."""
        return self.confirmed / self.desired if self.desired else None

    @property
    def missing(self) -> int:
        """Desired links HubSpot does not hold (waiting ones included)."""
        return self.desired - self.confirmed

    @property
    def kind(self) -> str:
        """``deals→contacts (Billing contact)``, for people."""
        text = f"{self.from_type}→{self.to_type}"
        return f"{text} ({self.label})" if self.label else text

    @property
    def key(self) -> str:
        """``deals_contacts_billing_contact``: a metadata / metric name part."""
        parts = [self.from_type, self.to_type, self.label]
        raw = "_".join(p for p in parts if p).lower()
        return re.sub(r"[^a-z0-9]+", "_", raw).strip("_")

    def line(self) -> str:
        share = f"{self.share:.1%}" if self.share is not None else "-"
        text = f"{self.kind} {self.confirmed:,}/{self.desired:,} ({share})"
        return text + (f", {self.waiting:,} waiting for a record" if self.waiting else "")


# A desired link with its label: (from_type, from_external_id, to_type, to_external_id,
# type_id, category, label).
LabelledLink = tuple[str, str, str, str, int, str, str]


class CompletenessStore:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def measure(self, links: Iterable[LabelledLink] | pa.Table) -> list[LinkCompleteness]:
        """Per kind of ``links``: desired, confirmed (same pair, type and category in the
        association snapshot) and waiting (an end without a HubSpot id in the snapshot).
        ``links``: rows, or an Arrow table with (at least) those columns."""
        if isinstance(links, pa.Table):
            table = links.select(LABELLED_LINK_SCHEMA.names).cast(LABELLED_LINK_SCHEMA)
        else:
            rows = list(links)
            table = pa.Table.from_pylist(
                [dict(zip(LABELLED_LINK_SCHEMA.names, r, strict=True)) for r in rows],
                schema=LABELLED_LINK_SCHEMA,
            )
        if table.num_rows == 0:
            return []
        with self._c.connection() as con:
            con.register("desired_links", table)
            try:
                result = con.execute(
                    """
                    WITH d AS (SELECT DISTINCT * FROM desired_links),
                    ids AS (SELECT object_type, external_id FROM snapshot_record
                            WHERE hubspot_id IS NOT NULL)
                    SELECT d.from_type, d.to_type, d.label, count(*) AS desired,
                           count(*) FILTER (WHERE a.from_type IS NOT NULL) AS confirmed,
                           count(*) FILTER (WHERE a.from_type IS NULL
                                            AND (f.external_id IS NULL OR t.external_id IS NULL))
                             AS waiting
                    FROM d
                    LEFT JOIN (SELECT DISTINCT from_type, from_external_id, to_type,
                                      to_external_id, type_id, category
                               FROM association_snapshot) a
                      USING (from_type, from_external_id, to_type, to_external_id, type_id,
                             category)
                    LEFT JOIN ids f ON f.object_type = d.from_type
                                   AND f.external_id = d.from_external_id
                    LEFT JOIN ids t ON t.object_type = d.to_type
                                   AND t.external_id = d.to_external_id
                    GROUP BY ALL ORDER BY ALL
                    """
                ).fetchall()
            finally:
                con.unregister("desired_links")
        return [
            LinkCompleteness(f, t, label, int(n), int(ok), int(w))
            for f, t, label, n, ok, w in result
        ]

    def record(self, run_id: str, measured: Iterable[LinkCompleteness]) -> None:
        """Keep one run's measurements (the latest per kind is what reports read)."""
        rows = list(measured)
        if not rows:
            return
        stamp = now()
        with self._c.transaction() as con:
            con.executemany(
                "INSERT INTO association_completeness VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (run_id, m.from_type, m.to_type, m.label, m.desired, m.confirmed, m.waiting,
                     stamp)
                    for m in rows
                ],
            )  # fmt: skip

    def latest(self, from_type: str | None = None) -> list[LinkCompleteness]:
        """The newest measurement of every kind (of ``from_type``'s links, or all)."""
        with self._c.connection() as con:
            rows = con.execute(LATEST_SQL, {"ft": from_type}).fetchall()
        return [LinkCompleteness(*r) for r in rows]


LATEST_SQL = """
    SELECT from_type, to_type, label, desired, confirmed, waiting, run_id, measured_at
    FROM association_completeness
    WHERE $ft IS NULL OR from_type = $ft
    QUALIFY row_number() OVER (PARTITION BY from_type, to_type, label
                               ORDER BY measured_at DESC) = 1
    ORDER BY from_type, to_type, label
"""
