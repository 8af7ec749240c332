"""Duplicate-key detection across the chunks of one partition, in bounded memory."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa


class SeenKeys:
    """Keys already loaded in this partition, as sorted 64-bit hashes (DuckDB ``hash``)."""

    def __init__(self) -> None:
        self.sorted = np.empty(0, dtype=np.uint64)
        self.con = duckdb.connect()

    def first_seen(self, keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """True where the key was not loaded before (and not earlier in ``keys``)."""
        tbl = pa.table({"k": keys})  # noqa: F841 - read by DuckDB's replacement scan
        hashes = np.asarray(
            self.con.execute("SELECT hash(k) AS h FROM tbl").fetchnumpy()["h"], dtype=np.uint64
        )
        order = np.argsort(hashes, kind="stable")  # equal hashes keep their row order
        ordered = hashes[order]
        first = np.ones(len(ordered), dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        if len(self.sorted):
            pos = np.searchsorted(self.sorted, ordered)
            pos[pos == len(self.sorted)] = 0
            first &= self.sorted[pos] != ordered
        merged = np.concatenate([self.sorted, ordered[first]])
        merged.sort(kind="stable")  # two sorted runs: a linear merge
        self.sorted = merged
        fresh = np.empty(len(hashes), dtype=bool)
        fresh[order] = first
        return fresh
