"""Field rules applied to a change plan after the field-level diff, in DuckDB SQL.

- ``forward_only`` (e.g. ``lifecyclestage``): a value that would move HubSpot's value
  backwards in the field's ``options`` order is never sent. A HubSpot value outside the
  options (a stage someone set by hand that the mapping does not rank) stands too.
- ``send_with`` (e.g. ``amount`` with ``deal_currency_code``): when the field is sent, the
  companions go in the same payload (their desired value, even if HubSpot already holds it);
  when a companion has no desired value, the field is withheld and counted — an amount never
  goes out without its currency.

:func:`apply_field_rules` runs while the state DB is attached as ``st`` and before the plan's
counts are taken, so the counts, batches and shadow rows all reflect the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from spokesync.desired import DESIRED_TABLE, ID_COLUMN
from spokesync.mapping.spec import MappingSpec, quote_identifier


@dataclass
class RuleStats:
    backward_moves_blocked: dict[str, int] = field(default_factory=dict)
    withheld: dict[str, int] = field(default_factory=dict)  # field → records held back
    companions_added: int = 0


def apply_field_rules(
    con: duckdb.DuckDBPyConnection, mapping: MappingSpec, plan_table: str = "plan"
) -> RuleStats:
    stats = RuleStats()
    for f in mapping.fields:
        if not f.forward_only:
            continue
        row = con.execute(
            f"DELETE FROM {plan_table} p WHERE p.property = $prop AND p.old_value IS NOT NULL "
            "AND NOT (coalesce(list_position($opts, p.old_value), 0) > 0 AND "
            "coalesce(list_position($opts, p.new_value), 0) > list_position($opts, p.old_value))",
            {"prop": f.property, "opts": list(f.options or ())},
        ).fetchall()
        stats.backward_moves_blocked[f.property] = int(row[0][0]) if row else 0
    for f in mapping.fields:
        if not f.send_with:
            continue
        missing = " OR ".join(
            f"d.{_col(mapping, c)} IS NULL" for c in f.send_with if c != mapping.id.property
        )
        if missing:
            row = con.execute(
                f"DELETE FROM {plan_table} p WHERE p.property = $prop AND EXISTS ("
                f"SELECT 1 FROM {DESIRED_TABLE} d WHERE d.{ID_COLUMN} = p.{ID_COLUMN} "
                f"AND ({missing}))",
                {"prop": f.property},
            ).fetchall()
            stats.withheld[f.property] = int(row[0][0]) if row else 0
        for companion in f.send_with:
            row = con.execute(
                f"INSERT INTO {plan_table} SELECT p.{ID_COLUMN}, p.hubspot_id, $comp, "
                "(SELECT s.value FROM st.snapshot s WHERE s.object_type = $ot AND "
                f"s.external_id = p.{ID_COLUMN} AND s.property = $comp LIMIT 1), "
                f"d.{_col(mapping, companion)}, p.kind, p.as_of "
                f"FROM {plan_table} p JOIN {DESIRED_TABLE} d ON d.{ID_COLUMN} = p.{ID_COLUMN} "
                "WHERE p.property = $prop AND NOT EXISTS (SELECT 1 FROM "
                f"{plan_table} q WHERE q.{ID_COLUMN} = p.{ID_COLUMN} AND q.property = $comp)",
                {"prop": f.property, "comp": companion, "ot": mapping.object_type},
            ).fetchall()
            stats.companions_added += int(row[0][0]) if row else 0
    return stats


def _col(mapping: MappingSpec, prop: str) -> str:
    return ID_COLUMN if prop == mapping.id.property else quote_identifier(prop)
