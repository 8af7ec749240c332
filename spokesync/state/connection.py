"""Opening the state store's DuckDB file, transactions, and :class:`StateStoreBusy`.

DuckDB allows one writing process per file, so the store never holds a connection across steps:
inside ``with StateStore(...)`` one connection serves every call; outside, each call opens the
file and closes it again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from spokesync import duckdb_memory
from spokesync.canonical import configure_connection


class StateStoreBusy(RuntimeError):
    """The state DB file is locked by another process."""


def is_not_a_database(error: BaseException) -> bool:
    return "not a valid duckdb database" in str(error).lower()


def not_a_database(path: Path) -> StateStoreUnwritable:
    """The error for a state DB file DuckDB cannot read at all (damaged, or another file)."""
    return StateStoreUnwritable(
        f"the state DB {path} is not a DuckDB database (damaged, or another file under that "
        "name): restore it from a backup, or move it away to start a new one (spokesync then "
        "re-reads HubSpot on the next sync)"
    )


class StateStoreUnwritable(OSError):
    """The state DB file (or its folder) cannot be written: disk full, read-only, no access."""


_UNWRITABLE = ("read-only", "permission denied", "no space left", "disk quota")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Store files whose DuckDB instance hosts plans' working databases right now, with how many
# (see :func:`spokesync.diff.plan_changes` with ``store``): one instance holds both, so every
# connection opened to such a file in this process keeps the whole memory budget on it.
_PLAN_HOSTS: Counter[Path] = Counter()


def host_plan(path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """A plan's working database now lives in ``con``'s instance (the store at ``path``)."""
    _PLAN_HOSTS[path.resolve()] += 1
    duckdb_memory.set_limit(con, "all")


def release_plan(path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """That plan is closed; the last one gives the store its own share back."""
    key = path.resolve()
    _PLAN_HOSTS[key] -= 1
    if _PLAN_HOSTS[key] <= 0:
        del _PLAN_HOSTS[key]
        # Only cached pages are left above the store's share: DuckDB evicts them.
        with contextlib.suppress(duckdb.Error):
            duckdb_memory.set_limit(con, "state")


class Connection:
    """The one DuckDB file of a store; ``setup`` runs on every fresh connection (schema)."""

    def __init__(self, path: Path, setup: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        self.path = path
        self._setup = setup
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def is_open(self) -> bool:
        return self._con is not None

    def open(self) -> None:
        if self._con is not None:
            raise RuntimeError(f"state store {self.path} is already open")
        self._con = self._connect()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Another connection to the open file, for a thread of its own (see ``writer.py``)."""
        if self._con is None:
            raise RuntimeError(f"state store {self.path} is not open (use `with StateStore(…)`)")
        return self._con.cursor()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.path))
        except duckdb.IOException as e:
            if any(word in str(e).lower() for word in _UNWRITABLE):
                raise StateStoreUnwritable(
                    f"cannot open the state DB {self.path} for writing ({e}); make it and its "
                    "folder writable, free space on the disk, or set SPOKESYNC_HOME to a "
                    "writable folder"
                ) from e
            if is_not_a_database(e):
                raise not_a_database(self.path) from e
            raise StateStoreBusy(
                f"state store {self.path} cannot be opened (another process is probably "
                f"writing to it; DuckDB allows one writer per file): {e}"
            ) from e
        # its share of SPOKESYNC_MEMORY_LIMIT (all of it while plans live in the instance)
        duckdb_memory.configure(con, "all" if self.path.resolve() in _PLAN_HOSTS else "state")
        configure_connection(con)
        self._setup(con)
        return con

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The open connection, or one opened (and closed) for this block."""
        if self._con is not None:
            yield self._con
            return
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction: committed at the end of the block, rolled back on any exception."""
        with self.connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
