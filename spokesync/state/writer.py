"""The store writer: a thread that saves the push's results off the event loop.

The push reports every confirmed batch, dead letter and HTTP call through a
:class:`~spokesync.changes.PushSink`. Saving each batch in its own DuckDB transaction on the
event loop cost ~37 ms per batch — most of a push at HubSpot's rate. :class:`StoreWriter`
implements the sink by queueing: a single writer thread takes everything queued since its last
commit and saves it in **one** transaction (group commit): the confirmed values of all those
batches as one Arrow table per object type (snapshot, value history, fingerprints, resolved dead
letters), the dead letters, and the sync-log rows as one Arrow append.

Crash safety: a batch reaches the queue only after HubSpot confirmed it, and a transaction
commits whole or not at all, so after a crash (even SIGKILL) the snapshot holds a prefix of what
HubSpot confirmed — never a value HubSpot lacks. What was queued but not committed (at most
``LINGER_S`` plus one commit's worth of batches) is simply re-sent by the next run (upserts
are idempotent). The queue is bounded, so a slow disk slows the
push instead of growing memory or the amount a crash would re-send.

Errors: if a commit fails, the writer stops; the next call on the sink (from the push) and
:meth:`StoreWriter.close` raise :class:`StateWriteError`, so the push stops instead of writing to
HubSpot what it can no longer record.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

import duckdb

from spokesync.canonical import configure_connection
from spokesync.changes import BatchLog, ConfirmedWrite, DeadLetter
from spokesync.state import dead_letters, snapshot
from spokesync.state.runs import sync_log_table

if TYPE_CHECKING:
    from spokesync.state.store import StateStore

MAX_QUEUED = 512  # sink calls waiting for the writer before the push waits for it
MAX_GROUP = 256  # sink calls saved in one transaction at most
LINGER_S = 0.2  # after the first call of a group, wait this long for more before committing
# While the writer runs, DuckDB checkpoints (rewrites the table files from the WAL) only past
# this much WAL instead of every 16 MB: each checkpoint inside a commit cost seconds on a big
# snapshot. The WAL is durable on commit; closing the store checkpoints it.
CHECKPOINT_THRESHOLD = "1GB"
# DuckDB threads while the writer runs. A group is tens of thousands of rows: splitting each
# statement over worker threads costs more CPU than it saves (measured ~10% more per batch on
# 2 cores under load), and the CPU the push's two processes get is what sets its pace.
WRITER_THREADS = 1


class StateWriteError(RuntimeError):
    """Saving the push's results to the state store failed; the push must stop."""


@dataclass
class WriterStats:
    commits: int = 0
    batches_confirmed: int = 0  # record_confirmed calls saved
    records_confirmed: int = 0
    log_rows: int = 0
    busy_s: float = 0.0  # time spent in transactions
    max_group: int = 0  # most sink calls saved in one transaction
    waited_s: float = 0.0  # time the caller waited for room in a full queue

    def to_metadata(self) -> dict[str, int | float]:
        return {
            "state_commits": self.commits,
            "state_batches": self.batches_confirmed,
            "state_write_s": round(self.busy_s, 3),
            "state_max_group": self.max_group,
            "state_wait_s": round(self.waited_s, 3),
        }


_Item = (
    tuple[str, list[ConfirmedWrite], str]
    | tuple[str, list[DeadLetter], str]
    | tuple[str, BatchLog, None]
    | tuple[str, threading.Event, None]
)


class StoreWriter:
    """A :class:`~spokesync.changes.PushSink` that group-commits in a thread (see the module
    docstring). Use as a context manager on an open store: ``with store.writer() as sink``;
    leaving the block saves everything queued (also when the push failed) and stops the thread."""

    def __init__(self, store: StateStore, *, max_queued: int = MAX_QUEUED) -> None:
        self._store = store
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max_queued)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._threshold = "16MB"
        self._threads = 0
        self.stats = WriterStats()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> StoreWriter:
        if self._thread is not None:
            raise RuntimeError("the store writer is already running")
        self._con = self._store.connection.cursor()
        configure_connection(self._con)
        self._threshold, self._threads = self._con.execute(
            "SELECT current_setting('checkpoint_threshold'), current_setting('threads')"
        ).fetchall()[0]
        self._con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        self._con.execute(f"SET threads = {WRITER_THREADS}")
        self._thread = threading.Thread(target=self._run, name="spokesync-store-writer")
        self._thread.daemon = True
        self._thread.start()
        return self

    def __enter__(self) -> StoreWriter:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(raise_error=exc is None)

    def close(self, *, raise_error: bool = True) -> None:
        """Save everything queued, stop the thread; raise the writer's error, if any."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._con is not None:
            with contextlib.suppress(duckdb.Error):
                self._con.execute("SET checkpoint_threshold = $t", {"t": self._threshold})
                self._con.execute(f"SET threads = {int(self._threads)}")
            self._con.close()
            self._con = None
        if raise_error:
            self._check()

    def flush(self) -> None:
        """Block until everything queued so far is committed; raise the writer's error."""
        self._check()
        done = threading.Event()
        self._put(("flush", done, None))
        while not done.wait(0.05):
            if self._thread is None or not self._thread.is_alive():
                break
        self._check()

    async def drain(self) -> None:
        """:meth:`flush` without blocking the event loop."""
        await asyncio.to_thread(self.flush)

    # ------------------------------------------------------------------ PushSink

    def record_confirmed(self, writes: list[ConfirmedWrite], run_id: str) -> None:
        if writes:
            self._put(("confirmed", writes, run_id))

    def record_dead_letters(self, letters: list[DeadLetter], run_id: str) -> None:
        if letters:
            self._put(("dead", letters, run_id))

    def record_batch(self, entry: BatchLog) -> None:
        self._put(("log", entry, None))

    def _check(self) -> None:
        if self._error is not None:
            raise StateWriteError(
                f"saving to the state store {self._store.path} failed: {self._error}; the "
                "snapshot holds every batch saved before it, the next sync re-sends the rest"
            ) from self._error

    def _put(self, item: _Item) -> None:
        self._check()
        if self._thread is None:
            raise RuntimeError("the store writer is not running (use `with store.writer()`)")
        try:
            self._queue.put_nowait(item)
        except queue.Full:  # the disk is slower than HubSpot: the push waits for it
            started = time.perf_counter()
            self._queue.put(item)
            self.stats.waited_s += time.perf_counter() - started

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        stop = False
        while not stop:
            group: list[_Item] = []
            item: _Item | None = self._queue.get()
            deadline = time.monotonic() + LINGER_S
            while True:
                if item is None:
                    stop = True
                    break
                group.append(item)
                if len(group) >= MAX_GROUP or item[0] == "flush":
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            if self._error is None:
                try:
                    self._commit(group)
                except BaseException as exc:  # surfaced to the push by the next sink call
                    self._error = exc
            for it in group:  # release flushes (also after an error: they re-check it)
                if it[0] == "flush":
                    it[1].set()  # type: ignore[union-attr]

    def _commit(self, group: list[_Item]) -> None:
        if all(kind == "flush" for kind, _, _ in group):
            return
        con = self._con
        assert con is not None
        started = time.perf_counter()
        types = self._store.types
        confirmed: list[ConfirmedWrite] = []
        confirmed_run: str | None = None
        logs: list[BatchLog] = []
        calls = 0

        def save_confirmed() -> None:
            nonlocal confirmed
            if confirmed and confirmed_run is not None:
                snapshot.save_confirmed(con, confirmed, types, confirmed_run)
            confirmed = []

        con.execute("BEGIN TRANSACTION")
        try:
            for kind, payload, run_id in group:
                if kind == "confirmed":
                    if run_id != confirmed_run:
                        save_confirmed()
                        confirmed_run = run_id
                    confirmed.extend(payload)  # type: ignore[arg-type]
                    self.stats.batches_confirmed += 1
                    self.stats.records_confirmed += len(payload)  # type: ignore[arg-type]
                    calls += 1
                elif kind == "dead":
                    save_confirmed()  # keep the order: a later confirmation resolves a letter
                    dead_letters.record(con, payload, run_id or "")  # type: ignore[arg-type]
                    calls += 1
                elif kind == "log":
                    logs.append(payload)  # type: ignore[arg-type]
                    calls += 1
            save_confirmed()
            if logs:
                con.register("new_log_rows", sync_log_table(logs))
                con.execute("INSERT INTO sync_log SELECT * FROM new_log_rows")
                con.unregister("new_log_rows")
                self.stats.log_rows += len(logs)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self.stats.commits += 1
        self.stats.max_group = max(self.stats.max_group, calls)
        self.stats.busy_s += time.perf_counter() - started
