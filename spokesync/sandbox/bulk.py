"""Bulk loading records into the sandbox: a portal of millions for benchmarks, in minutes.

A first sync of 1M companies and 5M contacts takes hours of HubSpot's rate limit; a benchmark
of the nights after it needs the portal that sync leaves behind, not the wait. ``bulk_load``
writes records the way ``batch/create`` does — the same validation of every value
(``ObjectService.validate_properties``: unknown, read-only and invalid values refused with the
row's number), the unique index (a value already held, or held twice in the file, is refused),
one history version per record attributed to ``source`` — 100 records per write time and
10,000 per SQLite transaction, without HTTP, the rate limit, JSON answers or webhooks. Write
times are one millisecond apart per 100 records, ending now, as a real push would leave them
(never more than 100 records on one ``lastmodifieddate``, so search's 10,000-result cap can be
walked as against HubSpot), or ending at a given earlier moment (``endsAt``, epoch ms: a portal
written before a refresh cursor the benchmark gives its state store).

Ids are consecutive in row order (``firstId`` … ``lastId`` in the answer; nothing else writes
while a load runs), so a benchmark can give its state store the ids the portal holds.

``associate`` links each loaded record to the record of another type whose unique property
holds the value of one of its columns (contacts → the company whose ``spokesync_account_id`` is
the contact's), with the default type plus the given labels (``Primary``).

Sources: an iterable of ``{property: value}`` rows in Python, or a file — Parquet (one column
per property) or JSON lines (one object per line) — through ``POST /__sandbox/bulk-load`` (docs/sandbox.md)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from spokesync.sandbox.history import API_WRITE, WriteSource
from spokesync.sandbox.objects import ObjectService
from spokesync.sandbox.validation import format_datetime

BATCH = 100  # records per write time, as one batch call
TRANSACTION = 10_000  # records per SQLite transaction


class BulkLoadError(ValueError):
    """A row the load refused; nothing of its transaction's rows was written."""


class Associate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    to_object_type: str = Field(alias="toObjectType")
    column: str  # the loaded row's value to look up (a property of the row, or an extra column)
    to_property: str = Field(alias="toProperty")  # a unique property of the target type
    labels: list[str] = Field(default_factory=list)  # labels besides the default type


class BulkLoad(BaseModel):
    """The body of ``POST /__sandbox/bulk-load``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    object_type: str = Field(alias="objectType")
    path: Path
    source_type: str = Field("INTEGRATION", alias="sourceType")
    associate: Associate | None = None
    # epoch ms of the last write time (default: the moment of the call); never in the future
    ends_at: int | None = Field(None, alias="endsAt", ge=0)


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a Parquet file (by record batches) or of a JSON-lines file."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=TRANSACTION):
            yield from batch.to_pylist()
        return
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def _as_text(value: Any) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return format_datetime(moment)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def bulk_load(
    objects: ObjectService,
    type_name: str,
    rows: Iterable[dict[str, Any]],
    *,
    source: WriteSource = API_WRITE,
    associate: Associate | None = None,
    total: int | None = None,
    ends_at: int | None = None,
) -> dict[str, Any]:
    """Create one record per row (see the module docstring); returns counts and seconds.
    ``total`` (the row count, if known) lets the write times end now — or at ``ends_at``
    (epoch ms, not after now); otherwise they start now."""
    started = time.perf_counter()
    store = objects.store
    ot = objects.object_type(type_name)
    defs = store.properties.get(ot.type_id, {})
    target = objects.object_type(associate.to_object_type) if associate else None
    if associate is not None and target is not None:
        if associate.to_property not in store.unique_properties(target.type_id):
            raise BulkLoadError(
                f"{associate.to_property} is not a unique property of {target.name}: "
                "associate by a property with hasUniqueValue"
            )
        by_value = store.unique[target.type_id][associate.to_property]
        assoc = objects.associations
        labels = [
            at
            for at in store.association_types_between(ot.type_id, target.type_id)
            if at.label in associate.labels
        ]
        missing = set(associate.labels) - {at.label for at in labels}
        if missing:
            raise BulkLoadError(f"no association label {sorted(missing)} from {ot.name}")
    now_ms = int(time.time() * 1000)
    if ends_at is not None and (total is None or ends_at > now_ms):
        raise BulkLoadError("endsAt needs the row count (a Parquet file) and must not be after now")
    end_ms = now_ms if ends_at is None else ends_at
    base_ms = end_ms - (0 if total is None else -(-total // BATCH) - 1)
    loaded = linked = 0
    first_id: int | None = None
    last_id: int | None = None
    pending: list[tuple[int, dict[str, str], str]] = []  # (row number, values, link value)
    seen: dict[tuple[str, str], int] = {}

    def flush() -> None:
        nonlocal loaded, linked, first_id, last_id
        if not pending:
            return
        with store.transaction():
            for start in range(0, len(pending), BATCH):
                part = pending[start : start + BATCH]
                moment = dt.datetime.fromtimestamp((base_ms + loaded // BATCH) / 1000, dt.UTC)
                applied = objects._apply(
                    ot, [(None, values) for _, values, _ in part], format_datetime(moment),
                    source, notify=False,
                )  # fmt: skip
                loaded += len(part)
                if first_id is None:
                    first_id = applied[0][0].id
                last_id = applied[-1][0].id
                if associate is None or target is None:
                    continue
                for (_, _, key), (rec, _) in zip(part, applied, strict=True):
                    to_id = by_value.get(key) if key else None
                    if to_id is not None:
                        assoc._link_with_default(ot, rec.id, target, to_id, labels)
                        linked += 1
        pending.clear()
        seen.clear()

    unique = store.unique_properties(ot.type_id)
    for number, row in enumerate(rows, start=1):
        raw = {k: text for k, v in row.items() if k in defs and (text := _as_text(v))}
        values, errors = objects.validate_properties(ot, raw, None, creating=True)
        if errors:
            first = errors[0]
            raise BulkLoadError(f"row {number}: {first.name}: {first.message}")
        conflict = objects._unique_conflict(ot, values, None)
        if conflict is not None:
            raise BulkLoadError(f"row {number}: {conflict.message}")
        for name in unique:
            value = values.get(name)
            if value and (name, value) in seen:
                raise BulkLoadError(
                    f"row {number}: {name} {value!r} is also in row {seen[(name, value)]}"
                )
            if value:
                seen[(name, value)] = number
        key = _as_text(row.get(associate.column)) if associate else ""
        pending.append((number, values, key))
        if len(pending) >= TRANSACTION:
            flush()
    flush()
    return {
        "objectType": ot.name,
        "loaded": loaded,
        "associated": linked,
        "firstId": None if first_id is None else str(first_id),
        "lastId": None if last_id is None else str(last_id),
        "seconds": round(time.perf_counter() - started, 1),
    }


def bulk_load_file(objects: ObjectService, spec: BulkLoad) -> dict[str, Any]:
    """``POST /__sandbox/bulk-load``: the rows of ``spec.path``."""
    if not spec.path.is_file():
        raise BulkLoadError(f"{spec.path}: no such file (the path is read by the sandbox)")
    total = None
    if spec.path.suffix == ".parquet":
        import pyarrow.parquet as pq

        total = pq.ParquetFile(spec.path).metadata.num_rows
    return bulk_load(
        objects,
        spec.object_type,
        read_rows(spec.path),
        source=WriteSource.of(spec.source_type),
        associate=spec.associate,
        total=total,
        ends_at=spec.ends_at,
    )


__all__ = ["Associate", "BulkLoad", "BulkLoadError", "bulk_load", "bulk_load_file", "read_rows"]
