"""Which row of a duplicated key wins within one partition, in bounded memory.

The newest row by the source's ``updated_at`` wins; on equal timestamps (or for sources
without ``updated_at``) the first row in the file wins. Keys are kept as 64-bit hashes
(DuckDB ``hash``) in a sorted array. For sources with ``updated_at`` the current winner's
timestamp, output ordinal and origin (file, row number) are kept next to each hash, so a
newer row in a later chunk can displace a row that was already written; the engine removes
displaced rows from the output at the end and quarantines them as ``superseded``.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from spokesync.ingest.arrays import arrow_of

_EMPTY_I64 = np.empty(0, dtype=np.int64)


@dataclass(slots=True)
class Displaced:
    """Rows written earlier that a newer row of the same key has replaced."""

    ordinals: np.ndarray  # positions in the output file
    files: np.ndarray  # index into the engine's file list
    row_numbers: np.ndarray
    keys: list[object]


class Winners:
    """The winning row per key seen so far in this partition."""

    def __init__(self, newest_wins: bool) -> None:
        self.newest_wins = newest_wins
        self.hashes = np.empty(0, dtype=np.uint64)
        self.updated = _EMPTY_I64
        self.ordinals = _EMPTY_I64
        self.files = np.empty(0, dtype=np.int32)
        self.rows = _EMPTY_I64
        self.con = duckdb.connect()

    def _hash(self, keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
        tbl = pa.table({"k": keys})  # noqa: F841 - read by DuckDB's replacement scan
        return np.asarray(
            self.con.execute("SELECT hash(k) AS h FROM tbl").fetchnumpy()["h"], dtype=np.uint64
        )

    def offer(
        self,
        keys: pa.Array | pa.ChunkedArray,
        updated: np.ndarray | None,
        file_index: int,
        row_numbers: np.ndarray,
        first_ordinal: int,
        hashes: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Displaced | None]:
        """Offer one chunk's valid rows (in file order). Returns which of them win for now
        (to be written, with ordinals ``first_ordinal + k`` for the k-th winner) and the rows
        written earlier that they displace. ``hashes``: the keys' DuckDB ``hash`` when the
        caller has it already (the fast path computes it in its check query)."""
        hashes = self._hash(keys) if hashes is None else np.asarray(hashes, dtype=np.uint64)
        n = len(hashes)
        u = (
            np.zeros(n, dtype=np.int64)
            if updated is None or not self.newest_wins
            else np.asarray(updated, dtype=np.int64)
        )
        # By key (an unstable sort: ~2x faster than a stable one); the rows of repeated keys
        # (few) are then put in their order within each key: newest first, then file order.
        order = np.argsort(hashes)
        h_sorted = hashes[order]
        same = h_sorted[1:] == h_sorted[:-1]
        if same.any():
            repeated = np.zeros(n, dtype=bool)
            repeated[1:] |= same
            repeated[:-1] |= same
            rows = order[repeated]
            by = (rows, -u[rows], hashes[rows]) if self.newest_wins else (rows, hashes[rows])
            # The repeated slots of ``order`` hold the same hashes in the same (sorted) order.
            order[repeated] = rows[np.lexsort(by)]
        head = np.ones(n, dtype=bool)
        head[1:] = ~same
        cand = order[head]  # the chunk's best row per key
        win = np.zeros(n, dtype=bool)
        win[cand] = True
        displaced = None
        if len(self.hashes):
            idx = np.searchsorted(self.hashes, hashes[cand])
            idx_c = np.minimum(idx, len(self.hashes) - 1)
            found = self.hashes[idx_c] == hashes[cand]
            newer = (
                found & (u[cand] > self.updated[idx_c])
                if self.newest_wins
                else np.zeros(len(cand), dtype=bool)
            )
            win[cand[found & ~newer]] = False
            if newer.any():
                at = idx_c[newer]
                displaced = Displaced(
                    self.ordinals[at].copy(),
                    self.files[at].copy(),
                    self.rows[at].copy(),
                    keys.take(arrow_of(cand[newer])).to_pylist(),
                )
        winners = np.flatnonzero(win)
        ordinals = first_ordinal + np.arange(len(winners), dtype=np.int64)
        ordinal_of = np.full(n, -1, dtype=np.int64)
        ordinal_of[winners] = ordinals
        self._merge(
            hashes[cand], u[cand], ordinal_of[cand], file_index, row_numbers[cand], win[cand]
        )
        return win, displaced

    def _merge(
        self,
        h: np.ndarray,
        u: np.ndarray,
        ordinals: np.ndarray,
        file_index: int,
        rows: np.ndarray,
        won: np.ndarray,
    ) -> None:
        """Record the chunk's winners: replace displaced entries, insert new keys."""
        h, u, ordinals, rows = h[won], u[won], ordinals[won], np.asarray(rows)[won]
        if not len(h):
            return
        if len(self.hashes):
            idx = np.minimum(np.searchsorted(self.hashes, h), len(self.hashes) - 1)
            found = self.hashes[idx] == h
        else:
            idx = np.zeros(len(h), dtype=np.int64)
            found = np.zeros(len(h), dtype=bool)
        if self.newest_wins and found.any():
            at = idx[found]
            self.updated[at] = u[found]
            self.ordinals[at] = ordinals[found]
            self.files[at] = file_index
            self.rows[at] = rows[found]
        new = ~found
        # Both are sorted by hash (``h`` comes in the chunk's key order): insert, no sort.
        at = np.searchsorted(self.hashes, h[new])
        self.hashes = np.insert(self.hashes, at, h[new])
        if self.newest_wins:
            self.updated = np.insert(self.updated, at, u[new])
            self.ordinals = np.insert(self.ordinals, at, ordinals[new])
            self.files = np.insert(self.files, at, np.int32(file_index))
            self.rows = np.insert(self.rows, at, rows[new])
