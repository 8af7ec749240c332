"""Webhook deliveries on record changes, signed like HubSpot's v3 signature (reference §5.3):
``base64(HMAC-SHA256(secret, method + uri + body + timestamp))`` in ``X-HubSpot-Signature-v3``
with ``X-HubSpot-Request-Timestamp`` in epoch milliseconds."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import time
from typing import Any

import httpx

from spokesync.sandbox.catalog import ObjectTypeDef
from spokesync.sandbox.history import API_WRITE, APP_ID, WriteSource
from spokesync.sandbox.store import Record

SUBSCRIPTION_ID = 2_000_001
log = logging.getLogger(__name__)


def sign_v3(secret: str, method: str, uri: str, body: str, timestamp_ms: int) -> str:
    message = f"{method}{uri}{body}{timestamp_ms}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


class WebhookSender:
    """Collects change events and POSTs them as JSON arrays to one URL, at most 100 per call."""

    def __init__(self, url: str, secret: str, portal_id: int) -> None:
        self.url = url
        self.secret = secret
        self.portal_id = portal_id
        self._events: list[dict[str, Any]] = []
        self._ids = itertools.count(int(time.time() * 1000))
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self.delivered = 0
        self.failed = 0

    def notify(
        self,
        ot: ObjectTypeDef,
        rec: Record,
        values: dict[str, str],
        created: bool,
        source: WriteSource = API_WRITE,
    ) -> None:
        """``changeSource`` / ``sourceId`` are the write's history source (a person's edit is
        ``CRM_UI`` with ``userId:N``, as in property histories)."""
        now = int(time.time() * 1000)
        base = {
            "portalId": self.portal_id,
            "appId": APP_ID,
            "occurredAt": now,
            "subscriptionId": SUBSCRIPTION_ID,
            "attemptNumber": 0,
            "objectId": rec.id,
            "changeSource": source.source_type,
        }
        if source.source_id is not None:
            base["sourceId"] = source.source_id
        if created:
            self._events.append(
                {
                    **base,
                    "eventId": next(self._ids),
                    "subscriptionType": f"{ot.singular}.creation",
                    "changeFlag": "CREATED",
                }
            )
        for name, value in values.items():
            self._events.append(
                {
                    **base,
                    "eventId": next(self._ids),
                    "subscriptionType": f"{ot.singular}.propertyChange",
                    "propertyName": name,
                    "propertyValue": value,
                }
            )
        if self._wake is not None:
            self._wake.set()

    def notify_merge(
        self, ot: ObjectTypeDef, primary: int, merged: list[int], new_id: int, moved: int
    ) -> None:
        """``{type}.merge`` with ``primaryObjectId``, ``mergedObjectIds``, ``newObjectId``,
        ``numberOfPropertiesMoved`` (reference §21.4)."""
        self._events.append(
            {
                "portalId": self.portal_id,
                "appId": APP_ID,
                "occurredAt": int(time.time() * 1000),
                "subscriptionId": SUBSCRIPTION_ID,
                "attemptNumber": 0,
                "eventId": next(self._ids),
                "subscriptionType": f"{ot.singular}.merge",
                "objectId": new_id,
                "primaryObjectId": primary,
                "mergedObjectIds": merged,
                "newObjectId": new_id,
                "numberOfPropertiesMoved": moved,
                "changeSource": "INTEGRATION",
                "sourceId": str(APP_ID),
            }
        )
        if self._wake is not None:
            self._wake.set()

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        assert self._wake is not None
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._events:
                    batch, self._events = self._events[:100], self._events[100:]
                    await self._deliver(client, batch)

    async def _deliver(self, client: httpx.AsyncClient, batch: list[dict[str, Any]]) -> None:
        body = json.dumps(batch, separators=(",", ":"))
        stamp = int(time.time() * 1000)
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sign_v3(self.secret, "POST", self.url, body, stamp),
            "X-HubSpot-Signature-Version": "v3",
            "X-HubSpot-Request-Timestamp": str(stamp),
        }
        try:
            response = await client.post(self.url, content=body, headers=headers)
            response.raise_for_status()
            self.delivered += len(batch)
        except httpx.HTTPError as exc:
            self.failed += len(batch)
            log.warning("webhook delivery to %s failed: %s", self.url, type(exc).__name__)
