"""DDL of the state store (one DuckDB file per environment).

No primary keys or indexes: the snapshot holds one row per (object type, external id, property)
and can reach tens of millions of rows, where an ART index would cost more memory than the
table. The store keeps rows unique itself (delete-then-insert inside one transaction).
"""

from __future__ import annotations

SCHEMA_VERSION = 2

# The fingerprint of one record, over snapshot rows ``s`` (see ``snapshot_record``).
RECORD_FP_SQL = (
    "coalesce(bit_xor(hash(s.property, s.value)) FILTER (WHERE s.value IS NOT NULL), 0::UBIGINT)"
)

DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS snapshot (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        hubspot_id VARCHAR,
        property VARCHAR NOT NULL,
        value VARCHAR,              -- canonical value; NULL = HubSpot holds no value
        as_of DATE,                 -- partition date the value was computed for (NULL: unknown)
        origin VARCHAR NOT NULL,    -- 'pushed' (confirmed by a write) | 'hubspot' (full refresh)
        updated_at TIMESTAMPTZ NOT NULL,
        run_id VARCHAR
    )""",
    # One row per snapshot record: its HubSpot id and a fingerprint of its values. Kept in step
    # with ``snapshot`` in the same transactions; lets the diff rule out unchanged records
    # without aggregating the whole snapshot.
    """CREATE TABLE IF NOT EXISTS snapshot_record (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        hubspot_id VARCHAR,
        fp UBIGINT NOT NULL         -- bit_xor(hash(property, value)) over non-NULL values
    )""",
    """CREATE TABLE IF NOT EXISTS sync_log (
        run_id VARCHAR NOT NULL,
        batch_seq INTEGER NOT NULL,
        request_id VARCHAR NOT NULL,
        object_type VARCHAR NOT NULL,
        endpoint VARCHAR NOT NULL,
        status_code INTEGER,
        correlation_id VARCHAR,
        latency_ms DOUBLE,
        records_sent INTEGER,
        records_ok INTEGER,
        records_failed INTEGER,
        attempt INTEGER,
        error VARCHAR,
        sent_at TIMESTAMPTZ
    )""",
    "CREATE SEQUENCE IF NOT EXISTS dead_letter_id_seq",
    """CREATE TABLE IF NOT EXISTS dead_letter (
        letter_id BIGINT DEFAULT nextval('dead_letter_id_seq'),
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        payload JSON,
        category VARCHAR,
        message VARCHAR,
        correlation_id VARCHAR,
        attempts INTEGER NOT NULL,
        first_seen TIMESTAMPTZ NOT NULL,
        last_seen TIMESTAMPTZ NOT NULL,
        state VARCHAR NOT NULL,     -- 'open' | 'replayed' | 'resolved'
        run_id VARCHAR,
        as_of DATE
    )""",
    """CREATE TABLE IF NOT EXISTS planned_changes (
        run_id VARCHAR NOT NULL,
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        hubspot_id VARCHAR,
        property VARCHAR NOT NULL,
        old_value VARCHAR,
        new_value VARCHAR,
        kind VARCHAR NOT NULL,      -- 'create' | 'update'
        as_of DATE
    )""",
    """CREATE TABLE IF NOT EXISTS sync_runs (
        run_id VARCHAR NOT NULL,
        object_type VARCHAR NOT NULL,
        mapping_version VARCHAR,
        shadow BOOLEAN NOT NULL,
        as_of DATE,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ,
        status VARCHAR NOT NULL,    -- 'running' | 'succeeded' | 'failed'
        counts JSON
    )""",
    # Associations HubSpot confirmed, by external ids: the association diff sends only links
    # not in here, so a link whose target was not in HubSpot yet is sent by a later run.
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
    # The newest as_of at which a whole record was confirmed in step with the warehouse (pushed
    # or already equal). The as-of guard uses it: a backfill of an older day never changes a
    # record that a newer run verified, even where that run had nothing to write.
    """CREATE TABLE IF NOT EXISTS record_verified (
        object_type VARCHAR NOT NULL,
        external_id VARCHAR NOT NULL,
        verified_as_of DATE NOT NULL
    )""",
)
