"""Full refresh: read every managed property of every record of a type back from HubSpot.

Paged ``GET /crm/objects/{version}/{type}?properties=…&limit=100&after=…`` within the same rate
limiter as the push (each page is one call of the ten-second budget). Long property lists are
split across several passes so the URL stays far below HubSpot's 414 limit; the passes are
merged per record id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from spokesync.hubspot.client import HubSpotClient

MAX_PROPERTIES_CHARS = 6000  # per request's ``properties=`` value; HubSpot 414s near 15,000


def chunk_properties(properties: list[str], limit: int = MAX_PROPERTIES_CHARS) -> list[list[str]]:
    """Split ``properties`` into lists whose comma-joined length stays within ``limit``."""
    chunks: list[list[str]] = [[]]
    size = 0
    for name in dict.fromkeys(properties):
        if chunks[-1] and size + len(name) + 1 > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(name)
        size += len(name) + 1
    return chunks


async def read_all(
    client: HubSpotClient,
    object_type: str,
    properties: list[str],
    *,
    run_id: str = "refresh",
    page_size: int = 100,
) -> AsyncIterator[dict[str, Any]]:
    """Yield ``{"id", "properties", "updatedAt", …}`` for every record (each record once).

    With one property chunk (the usual case) records stream page by page; with several, the
    later passes are merged into the first before yielding.
    """
    chunks = chunk_properties(properties)
    if len(chunks) == 1:
        async for record in client.iter_objects(
            object_type, chunks[0], request_id=f"{run_id}-{object_type}", page_size=page_size
        ):
            yield record
        return
    merged: dict[str, dict[str, Any]] = {}
    for n, chunk in enumerate(chunks, start=1):
        async for record in client.iter_objects(
            object_type, chunk, request_id=f"{run_id}-{object_type}-c{n}", page_size=page_size
        ):
            target = merged.setdefault(str(record["id"]), {**record, "properties": {}})
            target["properties"].update(record.get("properties") or {})
    for record in merged.values():
        yield record
