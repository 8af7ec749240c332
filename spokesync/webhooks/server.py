"""The receiving endpoint: ``POST /webhooks/hubspot``.

Order of checks: size → v3 signature and age (before the body is parsed) → exact-request replay →
payload shape → store. Answers: 200 ``{"accepted", "duplicates"}``; 401 bad/missing/stale
signature; 409 a request already received; 400 not a HubSpot delivery; 413 too large. Every
refusal is recorded in the inbox (reason only, never the body). HubSpot retries any 4xx and
anything slower than 5 s, so the store is one short SQLite transaction off the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from spokesync.webhooks.events import BadPayload, parse_delivery
from spokesync.webhooks.inbox import ReplayedRequest, WebhookInbox
from spokesync.webhooks.signature import MAX_AGE_MS, SignatureRejected, verify_v3

PATH = "/webhooks/hubspot"
MAX_BODY = 1_000_000  # 100 notifications are a few tens of kB
log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


def create_app(
    inbox: WebhookInbox,
    secret: str,
    *,
    public_url: str | None = None,
    clock_ms: Callable[[], int] = _now_ms,
) -> Starlette:
    """``public_url``: the URL HubSpot calls (behind a proxy it differs from what this server
    sees); the query string of the request is appended. Default: the request's own URL."""

    def uri_of(request: Request) -> str:
        if public_url is None:
            return str(request.url)
        query = request.url.query
        return public_url + (f"?{query}" if query else "")

    async def refuse(request: Request, status: int, reason: str, detail: str) -> JSONResponse:
        remote = request.client.host if request.client else None
        await run_in_threadpool(inbox.reject, reason, detail, received_ms=clock_ms(), remote=remote)
        log.warning("webhook refused (%s): %s", reason, detail)
        return JSONResponse({"status": "error", "reason": reason, "message": detail}, status)

    async def receive(request: Request) -> JSONResponse:
        received = clock_ms()
        body = await request.body()
        if len(body) > MAX_BODY:
            return await refuse(request, 413, "too_large", f"{len(body)} bytes")
        try:
            stamp = verify_v3(
                secret,
                method=request.method,
                uri=uri_of(request),
                body=body,
                signature=request.headers.get("x-hubspot-signature-v3"),
                timestamp=request.headers.get("x-hubspot-request-timestamp"),
                now_ms=received,
            )
        except SignatureRejected as e:
            return await refuse(request, 401, e.reason, str(e))
        try:
            events = parse_delivery(body)
        except BadPayload as e:
            return await refuse(request, 400, "bad_payload", str(e))
        try:
            result = await run_in_threadpool(
                inbox.accept,
                events,
                signature=request.headers["x-hubspot-signature-v3"].strip(),
                timestamp_ms=stamp,
                received_ms=received,
                forget_before_ms=received - 2 * MAX_AGE_MS,
            )
        except ReplayedRequest:
            return await refuse(
                request, 409, "replayed_request", "this request was already received"
            )
        return JSONResponse({"accepted": result.accepted, "duplicates": result.duplicates})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", **(await run_in_threadpool(inbox.counts))})

    return Starlette(
        routes=[Route(PATH, receive, methods=["POST"]), Route("/healthz", health, methods=["GET"])]
    )
