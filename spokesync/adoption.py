"""Adoption before creation: find the HubSpot record a new desired record should own.

Runs inside the diff's DuckDB connection (:func:`spokesync.diff.plan_changes`), with the state
DB attached as ``st``, after ``desired``, ``snap_fp`` (records the snapshot knows) and
``candidates`` (the desired records the pre-filter could not rule out: every new one among
them) are built.
Pure set logic over what the last refresh read (``st.portal_match_values``); no API call.

For each desired record the snapshot does not know, the mapping's match rules are tried in
order (:attr:`spokesync.mapping.spec.MappingSpec.match_rules`); both sides are normalised in
SQL with the rule's normaliser. HubSpot records already claimed by one of our external ids are
never candidates for another. The first rule with a candidate decides:

- exactly one candidate, wanted by no other record → ``adopt`` (the push stamps the external id
  by ``batch/update`` on that HubSpot id, together with the values that differ);
- several candidates, or one candidate that several records match → ``ambiguous``: nothing is
  written for the record until a person merges the candidates in HubSpot or pins it;
- no candidate under any rule → the record is created as before.

A record we already own that an unowned HubSpot record also matches is reported as
``duplicate`` (a company HubSpot auto-created from a contact's email domain, or one a person
made): ours is written as usual, nothing is written to the other.

A pin (``st.match_pins``) overrides the rules: adopt that HubSpot id, or (``NULL``) create.
A record of ours a person merged in HubSpot into another of ours (``st.merged_away``) is
``merged``: nothing is written for it (reason ``merged_into_ours``) until it is pinned.
The result is the table ``adoption`` (external_id, hubspot_id, decision, rule, match_key,
candidates, reason).
"""

from __future__ import annotations

import duckdb

from spokesync.canonical import sql_canonical
from spokesync.desired import DESIRED_TABLE, ID_COLUMN
from spokesync.mapping.spec import MappingSpec, MatchRule, quote_identifier

ADOPTION_TABLE = "adoption"
PIN_RULE = "pin"


def normalise_sql(normaliser: str, expr: str) -> str:
    """SQL normalising ``expr`` (VARCHAR) as a match key; NULL when it holds nothing."""
    if normaliser == "email":
        return sql_canonical("email", expr)
    if normaliser == "domain":
        return sql_canonical("domain", expr)
    if normaliser == "lower":
        return f"lower({sql_canonical('string', expr)})"
    if normaliser == "digits":
        return f"NULLIF(regexp_replace(CAST(({expr}) AS VARCHAR), '[^0-9]', '', 'g'), '')"
    return sql_canonical("string", expr)


def _desired_keys(rules: list[MatchRule], ids_table: str = "new_ids") -> str:
    parts = [
        f"SELECT {ID_COLUMN} AS external_id, {i} AS rule, "
        f"{normalise_sql(r.normalise, quote_identifier(f'__match_{i}'))} AS key "
        f"FROM {DESIRED_TABLE} SEMI JOIN {ids_table} USING ({ID_COLUMN})"
        for i, r in enumerate(rules)
    ]
    return "\nUNION ALL\n".join(parts)


def _hubspot_keys(rules: list[MatchRule]) -> str:
    parts = []
    for i, r in enumerate(rules):
        # r.property is validated (^[a-z][a-z0-9_]*$); a literal keeps the filter pushable.
        value = "unnest(string_split(value, ';'))" if r.is_multi else "value"
        parts.append(
            f"SELECT hubspot_id, {i} AS rule, {normalise_sql(r.normalise, 'v')} AS key FROM "
            f"(SELECT hubspot_id, {value} AS v FROM st.portal_match_values "
            f"WHERE object_type = $ot AND property = '{r.property}')"
        )
    return "\nUNION ALL\n".join(parts)


def plan_adoption(con: duckdb.DuckDBPyConnection, mapping: MappingSpec) -> None:
    """Create table ``adoption`` in ``con`` (see the module docstring)."""
    params = {"ot": mapping.object_type}
    rules = mapping.match_rules
    if (
        rules
        and not con.execute(
            "SELECT EXISTS (SELECT 1 FROM st.portal_match_values WHERE object_type = $ot)", params
        ).fetchall()[0][0]
    ):
        rules = []  # no HubSpot values to match against (no refresh read any): skip the keys
    # Every record the snapshot lacks is a candidate of the diff's pre-filter (``candidates``:
    # the few records that may change), so the new ones are found among those, not among
    # every desired record.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE new_ids AS SELECT {ID_COLUMN} FROM candidates "
        f"ANTI JOIN snap_fp USING ({ID_COLUMN})"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE pins AS SELECT p.external_id, p.hubspot_id "
        "FROM st.match_pins p SEMI JOIN new_ids n ON n.external_id = p.external_id "
        "WHERE p.object_type = $ot",
        params,
    )
    # Claimed HubSpot records: in the snapshot under one of our external ids. With contacts
    # keyed by email every contact is in the snapshot; there only a desired email claims one.
    # Only match rules and pins read it: without either (no HubSpot values read, no pin of a
    # new record) it stays empty instead of grouping every snapshot record (~0.6 s per 1M).
    pinned = bool(con.execute("SELECT EXISTS (SELECT 1 FROM pins)").fetchall()[0][0])
    email_keyed = mapping.id.property == "email"
    claimed_where = (
        f"AND external_id IN (SELECT {ID_COLUMN} FROM {DESIRED_TABLE})" if email_keyed else ""
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE claimed AS SELECT hubspot_id, any_value(external_id) AS owner "
        "FROM st.snapshot_record WHERE object_type = $ot AND hubspot_id IS NOT NULL "
        f"{claimed_where} {'' if rules or pinned else 'AND false '}GROUP BY hubspot_id",
        params,
    )
    # Ours, merged in HubSpot into a record another of ours owns (spokesync.state.merged):
    # held, never matched or created, unless a person pinned it.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE merged AS SELECT m.external_id, m.survivor_hubspot_id, "
        "m.survivor_external_id FROM st.merged_away m SEMI JOIN new_ids n "
        "ON n.external_id = m.external_id WHERE m.object_type = $ot "
        "AND m.external_id NOT IN (SELECT external_id FROM pins)",
        params,
    )
    if rules:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE match_candidates AS "
            f"WITH d AS ({_desired_keys(rules)}), h AS ({_hubspot_keys(rules)}) "
            "SELECT DISTINCT d.external_id, d.rule, d.key, h.hubspot_id FROM d "
            "JOIN h ON h.rule = d.rule AND h.key = d.key "
            "WHERE d.key IS NOT NULL "
            "AND h.hubspot_id NOT IN (SELECT hubspot_id FROM claimed) "
            "AND h.hubspot_id NOT IN (SELECT hubspot_id FROM pins WHERE hubspot_id IS NOT NULL) "
            "AND d.external_id NOT IN (SELECT external_id FROM pins) "
            "AND d.external_id NOT IN (SELECT external_id FROM merged)",
            params,
        )
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE match_candidates (external_id VARCHAR, rule INTEGER, "
            "key VARCHAR, hubspot_id VARCHAR)"
        )
    labels = "[" + ", ".join(_literal(r.describe()) for r in rules) + "]::VARCHAR[]"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {ADOPTION_TABLE} AS
        WITH first_rule AS (
            SELECT external_id, min(rule) AS rule FROM match_candidates GROUP BY external_id
        ),
        per_record AS (
            SELECT c.external_id, c.rule, any_value(c.key) AS match_key,
                   list(DISTINCT c.hubspot_id ORDER BY c.hubspot_id) AS candidates
            FROM match_candidates c JOIN first_rule f USING (external_id, rule)
            GROUP BY c.external_id, c.rule
        ),
        wanted AS (  -- a single candidate chosen by several records is theirs to share: no
            SELECT candidates[1] AS hubspot_id, count(*) AS n  -- one adopts it alone
            FROM per_record WHERE len(candidates) = 1 GROUP BY 1
        )
        SELECT p.external_id,
               CASE WHEN len(p.candidates) = 1 AND w.n = 1 THEN p.candidates[1] END
                   AS hubspot_id,
               CASE WHEN len(p.candidates) = 1 AND w.n = 1 THEN 'adopt' ELSE 'ambiguous' END
                   AS decision,
               ({labels})[p.rule + 1] AS rule, p.match_key, p.candidates,
               CASE WHEN len(p.candidates) > 1 THEN 'several_candidates'
                    WHEN w.n > 1 THEN 'contested' END AS reason
        FROM per_record p LEFT JOIN wanted w ON w.hubspot_id = p.candidates[1]
        UNION ALL
        SELECT p.external_id,
               CASE WHEN c.owner IS NULL THEN p.hubspot_id END,
               CASE WHEN p.hubspot_id IS NULL THEN 'create'
                    WHEN c.owner IS NULL THEN 'adopt' ELSE 'ambiguous' END,
               '{PIN_RULE}', NULL, CASE WHEN p.hubspot_id IS NULL THEN []::VARCHAR[]
                                         ELSE [p.hubspot_id] END,
               CASE WHEN c.owner IS NOT NULL THEN 'pin_claimed' END
        FROM pins p LEFT JOIN claimed c ON c.hubspot_id = p.hubspot_id
        UNION ALL
        SELECT external_id, NULL, 'merged', 'merged in HubSpot into', survivor_external_id,
               [survivor_hubspot_id], 'merged_into_ours'
        FROM merged
        """
    )
    if rules:
        # Records we already own that another, unowned HubSpot record also matches: a duplicate
        # in HubSpot (auto-created by the "create and associate companies with contacts"
        # setting, or made by a person). Ours is written as usual; the other is reported.
        con.execute(
            f"""
            INSERT INTO {ADOPTION_TABLE}
            WITH d AS ({_desired_keys(rules, "snap_fp")}), h AS ({_hubspot_keys(rules)})
            SELECT d.external_id, NULL, 'duplicate', ({labels})[any_value(d.rule) + 1],
                   any_value(d.key), list(DISTINCT h.hubspot_id ORDER BY h.hubspot_id),
                   'duplicate_in_hubspot'
            FROM d JOIN h ON h.rule = d.rule AND h.key = d.key
            WHERE d.key IS NOT NULL
              AND h.hubspot_id NOT IN (SELECT hubspot_id FROM claimed)
              AND h.hubspot_id NOT IN (SELECT hubspot_id FROM {ADOPTION_TABLE}
                                       WHERE hubspot_id IS NOT NULL)
              AND h.hubspot_id NOT IN (SELECT hubspot_id FROM st.snapshot_record
                                       WHERE object_type = $ot AND hubspot_id IS NOT NULL)
            GROUP BY d.external_id
            """,
            params,
        )
    # Records archived in HubSpot (a full refresh no longer found them): re-created by
    # default, reported; with ``archived: leave`` left alone (nothing written).
    con.execute(
        f"""
        INSERT INTO {ADOPTION_TABLE}
        SELECT a.external_id, NULL, $decision, 'archived', NULL, [a.hubspot_id], 'archived_in_hubspot'
        FROM st.portal_archived a SEMI JOIN new_ids n ON n.external_id = a.external_id
        WHERE a.object_type = $ot
          AND a.external_id NOT IN (SELECT external_id FROM {ADOPTION_TABLE})
        """,
        {**params, "decision": "left_archived" if mapping.archived == "leave" else "recreate"},
    )
    for table in ("new_ids", "claimed", "pins", "merged", "match_candidates"):
        con.execute(f"DROP TABLE {table}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
