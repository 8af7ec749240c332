"""Static-list memberships: what HubSpot confirmed each managed list holds, and the diff.

Two tables:

- ``managed_list``: one row per list mapping (its name) — the HubSpot list id it resolved to,
  the object type, and when the members were last read back from HubSpot;
- ``list_membership``: one row per member HubSpot confirmed (an add it answered, or a member a
  read-back found, including ones people added by hand), with the member's external id when
  the object snapshot knows it.

The diff is SQL over these and the object snapshot: the segment's external ids → HubSpot ids
(``snapshot_record``), then members to add (desired, not held), members to remove (held, not
desired) and desired records not in HubSpot yet (waiting: a later run adds them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa

from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS managed_list (
        name VARCHAR NOT NULL,           -- the list mapping's (and HubSpot list's) name
        list_id VARCHAR NOT NULL,        -- HubSpot's ILS list id
        object_type VARCHAR NOT NULL,    -- contacts | companies
        read_at TIMESTAMPTZ,             -- members last read back from HubSpot (NULL: never)
        updated_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS list_membership (
        name VARCHAR NOT NULL,
        list_id VARCHAR NOT NULL,
        hubspot_id VARCHAR NOT NULL,     -- the member record's HubSpot id
        external_id VARCHAR,             -- its external id, when the object snapshot knows it
        origin VARCHAR NOT NULL,         -- 'pushed' (an add HubSpot confirmed) | 'hubspot' (read)
        confirmed_at TIMESTAMPTZ NOT NULL,
        run_id VARCHAR
    )""",
)


@dataclass(frozen=True, slots=True)
class ManagedList:
    name: str
    list_id: str
    object_type: str
    read_at: dt.datetime | None


@dataclass
class MembershipPlan:
    """What it takes to make the list equal to the segment (HubSpot ids, sorted)."""

    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # external ids not in HubSpot yet
    desired: int = 0
    held: int = 0
    external_ids: dict[str, str] = field(default_factory=dict)  # hubspot id → external id


class ListMembershipStore:
    def __init__(self, connection: Connection) -> None:
        self._c = connection

    # ------------------------------------------------------------------ the list itself
    def managed(self, name: str) -> ManagedList | None:
        with self._c.connection() as con:
            row = con.execute(
                "SELECT name, list_id, object_type, read_at FROM managed_list WHERE name = $n",
                {"n": name},
            ).fetchall()
        return ManagedList(*row[0]) if row else None

    def set_list(self, name: str, list_id: str, object_type: str) -> None:
        """The list ``name`` is HubSpot list ``list_id``; a different id than before (the list
        was deleted in HubSpot and made again) forgets the old list's members."""
        with self._c.transaction() as con:
            old = con.execute(
                "SELECT list_id FROM managed_list WHERE name = $n", {"n": name}
            ).fetchall()
            if old and old[0][0] == list_id:
                return
            con.execute("DELETE FROM managed_list WHERE name = $n", {"n": name})
            con.execute("DELETE FROM list_membership WHERE name = $n", {"n": name})
            con.execute(
                "INSERT INTO managed_list VALUES ($n, $id, $ot, NULL, $now)",
                {"n": name, "id": list_id, "ot": object_type, "now": now()},
            )

    # ------------------------------------------------------------------ members
    def members(self, name: str) -> dict[str, str | None]:
        """``{hubspot_id: external_id}`` of the members HubSpot confirmed."""
        with self._c.connection() as con:
            rows = con.execute(
                "SELECT hubspot_id, external_id FROM list_membership WHERE name = $n",
                {"n": name},
            ).fetchall()
        return dict(rows)

    def count(self, name: str | None = None) -> int:
        with self._c.connection() as con:
            row = con.execute(
                "SELECT count(*) FROM list_membership WHERE $n IS NULL OR name = $n", {"n": name}
            ).fetchall()
        return int(row[0][0]) if row else 0

    def replace_from_hubspot(
        self, name: str, object_type: str, hubspot_ids: Iterable[str], run_id: str
    ) -> tuple[int, int]:
        """A read-back: the members are exactly ``hubspot_ids`` (external ids from the object
        snapshot). Returns (members that appeared, members that disappeared) since the last
        snapshot: people's edits of the list in HubSpot."""
        ids = pa.table({"hubspot_id": pa.array(sorted(set(hubspot_ids)), pa.string())})
        stamp = now()
        with self._c.transaction() as con:
            con.register("read_members", ids)
            try:
                appeared, gone = con.execute(
                    "SELECT (SELECT count(*) FROM read_members r ANTI JOIN list_membership m "
                    "ON m.hubspot_id = r.hubspot_id AND m.name = $n), "
                    "(SELECT count(*) FROM list_membership m ANTI JOIN read_members r "
                    "ON m.hubspot_id = r.hubspot_id WHERE m.name = $n)",
                    {"n": name},
                ).fetchall()[0]
                con.execute("DELETE FROM list_membership WHERE name = $n", {"n": name})
                con.execute(
                    "INSERT INTO list_membership "
                    "SELECT $n, l.list_id, r.hubspot_id, s.external_id, 'hubspot', $now, $run "
                    "FROM read_members r CROSS JOIN (SELECT list_id FROM managed_list "
                    "WHERE name = $n) l LEFT JOIN (SELECT hubspot_id, any_value(external_id) "
                    "AS external_id FROM snapshot_record WHERE object_type = $ot "
                    "AND hubspot_id IS NOT NULL GROUP BY hubspot_id) s USING (hubspot_id)",
                    {"n": name, "ot": object_type, "now": stamp, "run": run_id},
                )
                con.execute(
                    "UPDATE managed_list SET read_at = $now, updated_at = $now WHERE name = $n",
                    {"n": name, "now": stamp},
                )
            finally:
                con.unregister("read_members")
        return int(appeared), int(gone)

    def record_changes(
        self,
        name: str,
        added: dict[str, str | None],
        removed: Iterable[str],
        run_id: str,
    ) -> None:
        """Confirmed changes only: ``added`` {hubspot id: external id}, ``removed`` ids."""
        gone = sorted(set(removed) | set(added))
        if not gone and not added:
            return
        stamp = now()
        with self._c.transaction() as con:
            list_id_row = con.execute(
                "SELECT list_id FROM managed_list WHERE name = $n", {"n": name}
            ).fetchall()
            if not list_id_row:
                raise RuntimeError(f"list {name!r} is not registered in the state store")
            con.execute(
                "DELETE FROM list_membership WHERE name = $n AND list_contains($ids, hubspot_id)",
                {"n": name, "ids": gone},
            )
            if added:
                con.executemany(
                    "INSERT INTO list_membership VALUES ($n, $l, $h, $e, 'pushed', $now, $run)",
                    [
                        {
                            "n": name,
                            "l": list_id_row[0][0],
                            "h": h,
                            "e": e,
                            "now": stamp,
                            "run": run_id,
                        }
                        for h, e in sorted(added.items())
                    ],
                )
            con.execute(
                "UPDATE managed_list SET updated_at = $now WHERE name = $n",
                {"n": name, "now": stamp},
            )

    # ------------------------------------------------------------------ the diff
    def plan(self, name: str, object_type: str, desired: Iterable[str]) -> MembershipPlan:
        """Desired external ids vs the confirmed members, in DuckDB (see the module docstring)."""
        wanted = pa.table({"external_id": pa.array(sorted(set(desired)), pa.string())})
        plan = MembershipPlan(desired=wanted.num_rows)
        with self._c.connection() as con:
            con.register("desired_members", wanted)
            try:
                rows = con.execute(
                    """
                    WITH ids AS (
                        SELECT external_id, any_value(hubspot_id) AS hubspot_id
                        FROM snapshot_record
                        WHERE object_type = $ot AND hubspot_id IS NOT NULL
                        GROUP BY external_id
                    ),
                    want AS (
                        SELECT d.external_id, i.hubspot_id
                        FROM desired_members d LEFT JOIN ids i USING (external_id)
                    ),
                    held AS (
                        SELECT hubspot_id, any_value(external_id) AS external_id
                        FROM list_membership WHERE name = $n GROUP BY hubspot_id
                    )
                    SELECT 'add' AS action, w.hubspot_id, w.external_id FROM want w
                    WHERE w.hubspot_id IS NOT NULL
                      AND w.hubspot_id NOT IN (SELECT hubspot_id FROM held)
                    UNION ALL
                    SELECT 'remove', h.hubspot_id, h.external_id FROM held h
                    WHERE h.hubspot_id NOT IN (
                        SELECT hubspot_id FROM want WHERE hubspot_id IS NOT NULL)
                    UNION ALL
                    SELECT 'waiting', NULL, w.external_id FROM want w WHERE w.hubspot_id IS NULL
                    UNION ALL
                    SELECT 'held', NULL, NULL FROM held
                    """,
                    {"ot": object_type, "n": name},
                ).fetchall()
            finally:
                con.unregister("desired_members")
        for action, hubspot_id, external_id in rows:
            if action == "add":
                plan.add.append(hubspot_id)
                plan.external_ids[hubspot_id] = external_id
            elif action == "remove":
                plan.remove.append(hubspot_id)
                if external_id is not None:
                    plan.external_ids[hubspot_id] = external_id
            elif action == "waiting":
                plan.waiting.append(external_id)
            else:
                plan.held += 1
        plan.add.sort(key=_id_order)
        plan.remove.sort(key=_id_order)
        plan.waiting.sort()
        return plan


def _id_order(hubspot_id: str) -> tuple[int, str]:
    return (int(hubspot_id) if hubspot_id.isdigit() else -1, hubspot_id)
