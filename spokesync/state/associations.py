"""The association snapshot: links HubSpot confirmed, by external ids.

The association diff sends only links not in here, so a link whose target was not in HubSpot
yet is sent by a later run.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from spokesync.state.connection import Connection, now

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS association_snapshot (
        from_type VARCHAR NOT NULL,
        from_external_id VARCHAR NOT NULL,
        to_type VARCHAR NOT NULL,
        to_external_id VARCHAR NOT NULL,
        type_id INTEGER NOT NULL,
        category VARCHAR NOT NULL,
        run_id VARCHAR,
        created_at TIMESTAMPTZ NOT NULL
    )""",
)

# An association by external ids: (from_type, from_external_id, to_type, to_external_id,
# association type id, category).
LinkRow = tuple[str, str, str, str, int, str]

ASSOCIATION_COLUMNS = (
    "from_type", "from_external_id", "to_type", "to_external_id", "type_id", "category",
)  # fmt: skip


def association_table(links: Iterable[LinkRow] | pa.Table) -> pa.Table:
    """Links as the store's Arrow table; a table (e.g. ``ChangePlan.association_table``) keeps
    its columns as they are, without a detour through Python."""
    if isinstance(links, pa.Table):
        return links.select(list(ASSOCIATION_COLUMNS)).cast(LINK_SCHEMA)
    cols = list(zip(*links, strict=True)) or [[] for _ in ASSOCIATION_COLUMNS]
    return pa.table(
        {
            name: pa.array(values, pa.int32() if name == "type_id" else pa.string())
            for name, values in zip(ASSOCIATION_COLUMNS, cols, strict=True)
        }
    )


LINK_SCHEMA = pa.schema(
    [(name, pa.int32() if name == "type_id" else pa.string()) for name in ASSOCIATION_COLUMNS]
)
# A link with its label ('' for the pair's unlabeled association): what plans and the
# completeness measure carry.
LABELLED_LINK_SCHEMA = LINK_SCHEMA.append(pa.field("label", pa.string()))


MISSING_SQL = (
    "SELECT w.* FROM wanted_links w ANTI JOIN association_snapshot a USING "
    "(from_type, from_external_id, to_type, to_external_id, type_id, category)"
)


class AssociationStore:
    ASSOCIATION_COLUMNS = ASSOCIATION_COLUMNS

    def __init__(self, connection: Connection) -> None:
        self._c = connection

    def _select_links(self, links: Iterable[LinkRow] | pa.Table, sql: str) -> list[LinkRow]:
        """Run ``sql`` (a SELECT of link rows) with ``links`` registered as ``wanted_links``."""
        table = association_table(links)
        if table.num_rows == 0:
            return []
        with self._c.connection() as con:
            con.register("wanted_links", table)
            rows = con.execute(sql).fetchall()
            con.unregister("wanted_links")
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def missing_table(self, links: Iterable[LinkRow] | pa.Table) -> pa.Table:
        """:meth:`missing` as an Arrow table (``LINK_SCHEMA``): a first sync's hundreds of
        thousands of links without a Python tuple and six strings each."""
        table = association_table(links)
        if table.num_rows == 0:
            return LINK_SCHEMA.empty_table()
        with self._c.connection() as con:
            con.register("wanted_links", table)
            rows = con.execute(MISSING_SQL).to_arrow_table()
            con.unregister("wanted_links")
        return rows.cast(LINK_SCHEMA)

    def missing(self, links: Iterable[LinkRow] | pa.Table) -> list[LinkRow]:
        """The links (from_type, from_external_id, to_type, to_external_id, type_id, category)
        HubSpot has not confirmed yet (in no particular order)."""
        return self._select_links(links, MISSING_SQL)

    def stale(self, links: Iterable[LinkRow] | pa.Table) -> list[LinkRow]:
        """Confirmed links of the given records that the records no longer want: same record,
        target object and type, another target (a contact that moved to another company)."""
        return self._select_links(
            links,
            "SELECT a.from_type, a.from_external_id, a.to_type, a.to_external_id, "
            "a.type_id, a.category FROM association_snapshot a "
            "SEMI JOIN (SELECT DISTINCT from_type, from_external_id, to_type, type_id "
            "           FROM wanted_links) w "
            "  USING (from_type, from_external_id, to_type, type_id) "
            "ANTI JOIN wanted_links x "
            "  USING (from_type, from_external_id, to_type, to_external_id, type_id, category)",
        )

    def drop(self, links: Iterable[LinkRow]) -> None:
        """Forget links HubSpot confirmed removing."""
        table = association_table(links)
        if table.num_rows == 0:
            return
        with self._c.transaction() as con:
            con.register("gone_links", table)
            con.execute(
                "DELETE FROM association_snapshot a USING gone_links g "
                "WHERE a.from_type = g.from_type AND a.from_external_id = g.from_external_id "
                "AND a.to_type = g.to_type AND a.to_external_id = g.to_external_id "
                "AND a.type_id = g.type_id AND a.category = g.category"
            )
            con.unregister("gone_links")

    def forget(self, object_type: str) -> int:
        """Forget confirmed links from or to ``object_type`` (after a full refresh, whose
        records may have been deleted or re-created in HubSpot): the next sync re-sends them,
        which HubSpot treats as a no-op where they still exist."""
        with self._c.connection() as con:
            row = con.execute(
                "DELETE FROM association_snapshot WHERE from_type = $ot OR to_type = $ot "
                "RETURNING 1",
                {"ot": object_type},
            ).fetchall()
        return len(row)

    def record(self, links: Iterable[LinkRow], run_id: str) -> None:
        """Remember links HubSpot confirmed (idempotent)."""
        table = association_table(links)
        if table.num_rows == 0:
            return
        with self._c.transaction() as con:
            con.register("new_links", table)
            con.execute(
                "INSERT INTO association_snapshot SELECT n.*, $run, $now FROM new_links n "
                "ANTI JOIN association_snapshot a USING "
                "(from_type, from_external_id, to_type, to_external_id, type_id, category)",
                {"run": run_id, "now": now()},
            )
            con.unregister("new_links")
