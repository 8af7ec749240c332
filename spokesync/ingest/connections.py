"""One in-memory DuckDB connection per thread and purpose, for ingest's checks.

Each ingest thread checks one chunk (or scans one file) at a time, so its connections run
single-threaded; more cores work on other days (:mod:`spokesync.ingest.parallel`). A purpose
keeps its own connection because a query on a connection closes the result still streaming
from it: the fast path's scan streams batches while the engine works on them.
"""

from __future__ import annotations

import threading

import duckdb

_SETTINGS = (
    "SET TimeZone = 'UTC'",
    "SET threads = 1",
    "SET enable_progress_bar = false",
)
_local = threading.local()


def thread_connection(purpose: str, *settings: str) -> duckdb.DuckDBPyConnection:
    """This thread's connection for ``purpose``, created on first use with the common
    settings plus ``settings`` (SQL statements; a purpose always passes the same ones)."""
    connections: dict[str, duckdb.DuckDBPyConnection] = _local.__dict__.setdefault("cons", {})
    con = connections.get(purpose)
    if con is None:
        con = duckdb.connect()
        for statement in (*_SETTINGS, *settings):
            con.execute(statement)
        connections[purpose] = con
    return con
