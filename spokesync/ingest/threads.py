"""Overlap I/O with validation: read the next chunk and write the last one on other threads
(Arrow releases the GIL while decoding and encoding Parquet)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

T = TypeVar("T")


def prefetch(chunks: Iterator[T]) -> Iterator[T]:
    """Read the next chunk on a second thread while this one is validated (Arrow releases
    the GIL while decoding Parquet). Errors are re-raised in the caller, in order."""
    done = object()
    box: queue.Queue[object] = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            for chunk in chunks:
                box.put(chunk)
        except BaseException as e:  # handed to the consumer
            box.put(e)
        box.put(done)

    thread = threading.Thread(target=produce, name="landing-reader", daemon=True)
    thread.start()
    while (item := box.get()) is not done:
        if isinstance(item, BaseException):
            thread.join()
            raise item
        yield item  # type: ignore[misc]
    thread.join()


class BackgroundWriter:
    """Writes Arrow tables on a second thread (Arrow releases the GIL while encoding), so
    writing chunk N overlaps validating chunk N+1. At most one write is pending."""

    def __init__(self, writer: pq.ParquetWriter) -> None:
        self.writer = writer
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-writer")
        self.pending: Future[None] | None = None

    def submit(self, table: pa.Table) -> None:
        self.wait()
        self.pending = self.pool.submit(self.writer.write_table, table)

    def wait(self) -> None:
        if self.pending is not None:
            self.pending.result()
            self.pending = None

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)
