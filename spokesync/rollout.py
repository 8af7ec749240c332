"""Rollout filter: write only a segment of a mapping's records during a controlled cutover.

Three ways to pick the segment, combinable (a record must pass both):

- ``predicate``: a SQL boolean expression over the mapping's source columns
  (e.g. ``country = 'DE'``), trusted configuration like the mapping SQL itself;
- ``external_ids``: exactly these records (a webhook-triggered run pushes only the records
  HubSpot told us about);
- ``percent``: a stable hash percentage of external ids. The bucket of an id is
  DuckDB's ``md5_number_lower(id)`` modulo 10,000, so the same ids are chosen every run and raising
  the percentage only adds ids.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

BUCKETS = 10_000


def rollout_bucket(external_id: str) -> int:
    """The id's bucket in ``[0, 10000)``; equals DuckDB ``md5_number_lower(id) % 10000``."""
    digest = hashlib.md5(external_id.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "little") % BUCKETS


@dataclass(frozen=True, slots=True)
class Rollout:
    """A segment of records to write; ``None`` fields do not filter."""

    predicate: str | None = None
    percent: float | None = None
    external_ids: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.percent is not None and not 0 <= self.percent <= 100:
            raise ValueError(f"rollout percent must be between 0 and 100, not {self.percent}")
        if self.predicate is not None and (";" in self.predicate or not self.predicate.strip()):
            raise ValueError(f"rollout predicate must be one SQL expression: {self.predicate!r}")

    @property
    def threshold(self) -> int:
        """Ids whose bucket is below this are in the segment."""
        return BUCKETS if self.percent is None else round(self.percent * BUCKETS / 100)

    def includes(self, external_id: str) -> bool:
        """Whether the percentage part selects ``external_id`` (the predicate needs the row)."""
        return rollout_bucket(external_id) < self.threshold

    def sql_percent_filter(self, id_expr: str) -> str | None:
        """A SQL condition on the canonical id expression, or None when every id passes."""
        if self.percent is None or self.threshold >= BUCKETS:
            return None
        return f"(md5_number_lower({id_expr}) % {BUCKETS}) < {int(self.threshold)}"

    def describe(self) -> str:
        parts = []
        if self.predicate:
            parts.append(f"where {self.predicate}")
        if self.percent is not None:
            parts.append(f"{self.percent:g}% of ids")
        if self.external_ids is not None:
            parts.append(f"{len(self.external_ids):,} chosen records")
        return " and ".join(parts) or "all records"
