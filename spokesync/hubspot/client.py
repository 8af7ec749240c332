"""The async HubSpot CRM client: one httpx connection pool, rate-limited and retried.

Every request waits for the :class:`~spokesync.hubspot.rate_limit.RateLimiter`, carries
``X-Request-Id`` and ``User-Agent: spokesync/<version>``, feeds the rate-limit headers back to
the limiter, and is retried per :class:`~spokesync.hubspot.retry.RetryPolicy` (429 by policy,
5xx/423/52x/transport errors with full-jitter backoff). 401/403 raise
:class:`~spokesync.hubspot.errors.HubSpotAuthError`; other 4xx come back to the caller as an
:class:`ApiResponse` so it can decide (the push splits a 400, dead-letters the rest).

The token lives only in the httpx client's default headers: it is not in ``repr()``, logs or
exception messages (see :mod:`spokesync.hubspot.redact`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json as jsonlib
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from spokesync import __version__
from spokesync.hubspot.errors import (
    ApiError,
    DailyLimitReached,
    HubSpotAuthError,
    HubSpotConfigError,
    HubSpotError,
    RetriesExhausted,
    parse_batch_errors,
    parse_error,
)
from spokesync.hubspot.rate_limit import RateLimiter, Sleep
from spokesync.hubspot.redact import get_logger, redact, register_secret
from spokesync.hubspot.retry import RetryPolicy, parse_retry_after
from spokesync.hubspot.scopes import missing_scopes_message

log = get_logger(__name__)

DEFAULT_API_VERSION = "2026-03"
# HubSpot's own objects, addressed by name in every path. Any other object is a custom object,
# which HubSpot addresses only by its objectTypeId (2-…), fully qualified name
# (p{portal}_{name}) or p_{name}: its bare name gets 400 "Unable to infer object type from".
STANDARD_OBJECT_TYPES = frozenset(
    {
        "contacts", "companies", "deals", "tickets", "tasks", "notes", "calls", "emails",
        "meetings", "communications", "postal_mail", "products", "line_items", "quotes",
        "leads", "users",
    }
)  # fmt: skip
_ADDRESSABLE = re.compile(r"^(?:\d+-\d+|p\d*_\w+)$")
USER_AGENT = f"spokesync/{__version__}"


@dataclass(frozen=True, slots=True)
class AttemptLog:
    """One HTTP attempt, reported to the caller's ``on_attempt`` hook (the push's sync log)."""

    request_id: str
    attempt: int
    method: str
    endpoint: str
    status_code: int | None  # None when the transport failed
    correlation_id: str | None
    latency_ms: float
    error: str | None = None


OnAttempt = Callable[[AttemptLog], None]


@dataclass(slots=True)
class ApiResponse:
    """The final response of a (possibly retried) request."""

    status_code: int
    body: Any
    headers: httpx.Headers
    correlation_id: str | None
    request_id: str
    attempts: int
    latency_ms: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def error(self) -> ApiError:
        """The body parsed as an error (meaningful for non-2xx responses)."""
        err = parse_error(self.body, self.status_code)
        if err.correlation_id is None and self.correlation_id:
            err = dataclasses.replace(err, correlation_id=self.correlation_id)
        return err


@dataclass(slots=True)
class BatchResponse:
    """A batch endpoint's answer: ``results`` and per-input ``errors`` (207), or a whole error."""

    response: ApiResponse
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ApiError] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def correlation_id(self) -> str | None:
        return self.response.correlation_id

    @classmethod
    def from_response(cls, response: ApiResponse) -> BatchResponse:
        body = response.body if isinstance(response.body, dict) else {}
        if not response.ok:
            return cls(response)
        results = [r for r in body.get("results") or () if isinstance(r, dict)]
        return cls(response, results, parse_batch_errors(body, response.status_code))


@dataclass(slots=True)
class ClientStats:
    """Counters over the client's life; the push reports the difference over its run."""

    calls: int = 0  # HTTP requests sent (every attempt, including failed ones)
    write_calls: int = 0  # of which to write endpoints
    retries: int = 0  # attempts after the first, for any reason
    rate_limited: int = 0  # 429 responses

    def copy(self) -> ClientStats:
        return ClientStats(self.calls, self.write_calls, self.retries, self.rate_limited)


# The counters of the current task's scope (see :func:`counting_calls`), besides the client's.
_SCOPE: contextvars.ContextVar[ClientStats | None] = contextvars.ContextVar(
    "spokesync_call_scope", default=None
)


@contextlib.contextmanager
def counting_calls() -> Iterator[ClientStats]:
    """Count the calls made inside this block, by this task and the tasks it starts — not
    those of other tasks sharing the client meanwhile (the sync sets up and refreshes the next
    mapping while one pushes, so the client's own counters mix both)."""
    stats = ClientStats()
    token = _SCOPE.set(stats)
    try:
        yield stats
    finally:
        _SCOPE.reset(token)


class HubSpotClient:
    """Async HubSpot CRM client. Use as ``async with HubSpotClient(url, token) as client:``.

    ``api_version`` is the date-based version (``"2026-03"``) or ``"v3"`` for legacy paths.
    ``transport`` (an ``httpx.AsyncBaseTransport``) and ``sleep`` are for tests.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        limiter: RateLimiter | None = None,
        api_version: str = DEFAULT_API_VERSION,
        timeout_s: float = 30,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 8,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not token:
            raise ValueError("a HubSpot access token is required")
        register_secret(token)
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.limiter = limiter if limiter is not None else RateLimiter(sleep=sleep)
        self.retry = retry if retry is not None else RetryPolicy()
        self.stats = ClientStats()
        self.max_concurrency = max_concurrency
        # A custom object's name in our mappings → HubSpot's objectTypeId (``2-…``), registered
        # by spokesync.hubspot.schemas once the schema is found: every path addresses it by id.
        self.object_type_ids: dict[str, str] = {}
        self._sleep = sleep
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=max_concurrency * 2),
        )

    def __repr__(self) -> str:
        return f"HubSpotClient(base_url={self.base_url!r}, api_version={self.api_version!r})"

    async def __aenter__(self) -> HubSpotClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- paths ---------------------------------------------------------------------------------

    def type_path(self, object_type: str) -> str:
        """How a path names ``object_type``: a custom object by its ``objectTypeId``, read from
        the schemas API (:mod:`spokesync.hubspot.schemas`) before any path names it."""
        registered = self.object_type_ids.get(object_type)
        if registered is not None:
            return registered
        if object_type in STANDARD_OBJECT_TYPES or _ADDRESSABLE.match(object_type):
            return object_type
        raise HubSpotConfigError(
            f"custom object {object_type!r}: HubSpot addresses it by its objectTypeId, which was "
            "not read from the schemas API before this request (HubSpot refuses a custom "
            "object's bare name). Does the portal have its schema yet? `spokesync sync` finds "
            "or creates it."
        )

    def objects_path(self, object_type: str, suffix: str = "") -> str:
        """``/crm/objects/2026-03/{type}{suffix}`` (or ``/crm/v3/objects/…`` for ``v3``)."""
        object_type = self.type_path(object_type)
        if self.api_version == "v3":
            return f"/crm/v3/objects/{object_type}{suffix}"
        return f"/crm/objects/{self.api_version}/{object_type}{suffix}"

    def properties_path(self, object_type: str, suffix: str = "") -> str:
        object_type = self.type_path(object_type)
        if self.api_version == "v3":
            return f"/crm/v3/properties/{object_type}{suffix}"
        return f"/crm/properties/{self.api_version}/{object_type}{suffix}"

    # -- the request loop ----------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        request_id: str,
        search: bool = False,
        write: bool = False,
        on_attempt: OnAttempt | None = None,
        retry: RetryPolicy | None = None,
    ) -> ApiResponse:
        """Send one logical request, retrying transient failures and 429s.

        ``retry`` overrides the client's policy for this call: a create that is not idempotent
        (tasks) passes ``max_attempts=1``, since a 5xx or a dropped connection may have been
        applied; a 429 is never applied, so it is still retried.

        Returns the final response for 2xx and non-retryable 4xx. Raises
        :class:`HubSpotAuthError` (401/403), :class:`DailyLimitReached` (429 DAILY or no budget
        left) and :class:`RetriesExhausted` (transient failures or 429s past the policy's caps).
        """
        policy = retry if retry is not None else self.retry
        # Encoded once for all attempts; orjson is ~10x faster than the json module httpx uses
        # (a 100-input batch is ~50–100 kB).
        encoded = None if json is None else _encode(json)
        attempt = 0
        transient = 0
        limited = 0
        while True:
            attempt += 1
            rid = request_id if attempt == 1 else f"{request_id}-{attempt}"
            headers = {"X-Request-Id": rid}
            if attempt > 1:
                self.stats.retries += 1
                if (scope := _SCOPE.get()) is not None:
                    scope.retries += 1
            sent_at = await self.limiter.acquire(search=search)
            started = time.perf_counter()
            try:
                async with self._semaphore:
                    resp = await self._http.request(
                        method,
                        path,
                        content=encoded,
                        params=params,
                        headers=headers if encoded is None else {**headers, **_JSON_HEADERS},
                    )
                    content = resp.content
            except httpx.TransportError as exc:
                self.limiter.settle(sent_at, search=search)
                latency = (time.perf_counter() - started) * 1000
                self._count(write)
                reason = f"{type(exc).__name__}: {redact(exc)}"
                self._report(on_attempt, rid, attempt, method, path, None, None, latency, reason)
                transient += 1
                if transient >= policy.max_attempts:
                    raise RetriesExhausted(
                        f"{method} {path} failed after {attempt} attempts: {reason}",
                        attempts=attempt,
                        status_code=None,
                        unreachable=isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout),
                    ) from None
                delay = policy.backoff_s(transient)
                log.warning("%s %s: %s; retry in %.2fs", rid, path, reason, delay)
                await self._sleep(delay)
                continue
            self.limiter.settle(sent_at, search=search)
            latency = (time.perf_counter() - started) * 1000
            self._count(write)
            self.limiter.update_from_headers(resp.headers)
            body = _decode(content)
            correlation_id = resp.headers.get("x-hubspot-correlation-id") or (
                body.get("correlationId") if isinstance(body, dict) else None
            )
            status = resp.status_code
            response = ApiResponse(
                status, body, resp.headers, correlation_id, rid, attempt, latency
            )
            error_text = None if response.ok else response.error().short()
            self._report(
                on_attempt, rid, attempt, method, path, status, correlation_id, latency, error_text
            )

            if status == 429:
                self.stats.rate_limited += 1
                if (scope := _SCOPE.get()) is not None:
                    scope.rate_limited += 1
                limited += 1
                err = response.error()
                if err.policy_name == "DAILY":
                    self.limiter.spend_daily()
                    raise DailyLimitReached(
                        f"HubSpot daily API limit reached (429 DAILY, correlation id"
                        f" {correlation_id}): {err.message}",
                        err,
                    )
                if limited > policy.max_rate_limited:
                    raise RetriesExhausted(
                        f"{method} {path} still rate limited after {limited} 429s: {err.short()}",
                        err,
                        attempts=attempt,
                        status_code=status,
                        correlation_id=correlation_id,
                    )
                wait = policy.rate_limit_wait_s(
                    err.policy_name,
                    parse_retry_after(resp.headers.get("retry-after")),
                    self.limiter.window.interval_s,
                )
                log.warning(
                    "%s: 429 %s; holding requests for %.2fs",
                    rid,
                    err.policy_name or err.category or "rate limit",
                    wait,
                )
                self.limiter.block_for(wait)
                continue
            if status in (401, 403):
                err = response.error()
                if status == 403:
                    raise HubSpotAuthError(missing_scopes_message(method, path, err), err)
                raise HubSpotAuthError(
                    f"HubSpot refused the access token for {method} {path}: HTTP {status}"
                    f" {err.category or ''} {err.message} (correlation id {correlation_id})",
                    err,
                )
            if policy.is_retryable_status(status):
                transient += 1
                if transient >= policy.max_attempts:
                    err = response.error()
                    raise RetriesExhausted(
                        f"{method} {path} failed after {attempt} attempts: HTTP {status}"
                        f" {err.message}",
                        err,
                        attempts=attempt,
                        status_code=status,
                        correlation_id=correlation_id,
                    )
                delay = policy.backoff_s(transient, status)
                log.warning("%s %s: HTTP %s; retry in %.2fs", rid, path, status, delay)
                await self._sleep(delay)
                continue
            return response

    async def backoff(self, attempt: int, status_code: int | None = None) -> None:
        """Wait the retry policy's full-jitter delay after failed attempt ``attempt``, for a
        caller that re-sends a write itself after checking what the failed one applied (a
        task create: see :mod:`spokesync.hubspot.tasks`)."""
        await self._sleep(self.retry.backoff_s(attempt, status_code))

    def _count(self, write: bool) -> None:
        for stats in (self.stats, _SCOPE.get()):
            if stats is not None:
                stats.calls += 1
                stats.write_calls += write

    @staticmethod
    def _report(
        hook: OnAttempt | None,
        rid: str,
        attempt: int,
        method: str,
        path: str,
        status: int | None,
        correlation_id: str | None,
        latency_ms: float,
        error: str | None,
    ) -> None:
        if hook is not None:
            hook(AttemptLog(rid, attempt, method, path, status, correlation_id, latency_ms, error))

    # -- CRM operations ------------------------------------------------------------------------

    async def batch_upsert(
        self,
        object_type: str,
        inputs: list[dict[str, Any]],
        *,
        request_id: str,
        on_attempt: OnAttempt | None = None,
    ) -> BatchResponse:
        """``POST …/{type}/batch/upsert`` with ``{"inputs": inputs}`` (≤ 100 inputs)."""
        return await self._batch_write(object_type, "upsert", inputs, request_id, on_attempt)

    async def batch_update(
        self,
        object_type: str,
        inputs: list[dict[str, Any]],
        *,
        request_id: str,
        on_attempt: OnAttempt | None = None,
    ) -> BatchResponse:
        """``POST …/{type}/batch/update`` by HubSpot record id (≤ 100 inputs ``{"id",
        "properties"}``). Used only to adopt an existing record: setting the same values again
        is harmless, so a retry is safe."""
        return await self._batch_write(object_type, "update", inputs, request_id, on_attempt)

    async def _batch_write(
        self,
        object_type: str,
        verb: str,
        inputs: list[dict[str, Any]],
        request_id: str,
        on_attempt: OnAttempt | None,
    ) -> BatchResponse:
        if len(inputs) > 100:
            raise ValueError(f"batch/{verb} takes at most 100 inputs, got {len(inputs)}")
        response = await self.request(
            "POST",
            self.objects_path(object_type, f"/batch/{verb}"),
            json={"inputs": inputs},
            request_id=request_id,
            write=True,
            on_attempt=on_attempt,
        )
        return BatchResponse.from_response(response)

    async def batch_read(
        self,
        object_type: str,
        ids: list[str],
        properties: list[str],
        *,
        id_property: str | None = None,
        request_id: str,
    ) -> list[dict[str, Any]]:
        """``POST …/{type}/batch/read``; ids HubSpot does not know are left out (207)."""
        body: dict[str, Any] = {"properties": properties, "inputs": [{"id": i} for i in ids]}
        if id_property:
            body["idProperty"] = id_property
        response = await self.request(
            "POST",
            self.objects_path(object_type, "/batch/read"),
            json=body,
            request_id=request_id,
        )
        return BatchResponse.from_response(_raise_unless_ok(response)).results

    async def get_or_none(self, path: str, request_id: str) -> dict[str, Any] | None:
        """``GET path`` as a JSON object, or ``None`` when HubSpot answers 404 (no such thing)."""
        response = await self.request("GET", path, request_id=request_id)
        if response.status_code == 404:
            return None
        body = _raise_unless_ok(response).body
        return dict(body) if isinstance(body, dict) else None

    async def list_properties(self, object_type: str, *, request_id: str) -> list[dict[str, Any]]:
        """All property definitions of an object type."""
        response = await self.request(
            "GET", self.properties_path(object_type), request_id=request_id
        )
        body = _raise_unless_ok(response).body
        return [p for p in (body or {}).get("results") or () if isinstance(p, dict)]

    async def get_property(
        self, object_type: str, name: str, *, request_id: str
    ) -> dict[str, Any] | None:
        """One property definition, or ``None`` when HubSpot has no such (active) property."""
        return await self.get_or_none(self.properties_path(object_type, f"/{name}"), request_id)

    async def create_property(
        self, object_type: str, definition: dict[str, Any], *, request_id: str
    ) -> dict[str, Any]:
        """``POST /crm/properties/{version}/{type}`` (HubSpot answers 201 with the property)."""
        response = await self.request(
            "POST",
            self.properties_path(object_type),
            json=definition,
            request_id=request_id,
            write=True,
        )
        return dict(_raise_unless_ok(response).body or {})

    def associations_path(self, from_type: str, to_type: str, suffix: str) -> str:
        """v4 batch associations: ``/crm/associations/{version}/…`` or ``/crm/v4/associations/…``."""
        from_type, to_type = self.type_path(from_type), self.type_path(to_type)
        if self.api_version in ("v3", "v4"):
            return f"/crm/v4/associations/{from_type}/{to_type}{suffix}"
        return f"/crm/associations/{self.api_version}/{from_type}/{to_type}{suffix}"

    async def batch_create_associations(
        self,
        from_type: str,
        to_type: str,
        inputs: list[dict[str, Any]],
        *,
        request_id: str,
        on_attempt: OnAttempt | None = None,
    ) -> BatchResponse:
        """``POST …/associations/{from}/{to}/batch/create`` (labelled; ≤ 2,000 inputs).

        Each input is ``{"from": {"id"}, "to": {"id"}, "types": [{associationCategory,
        associationTypeId}]}``; creating an existing association again is a no-op, so retries
        are safe.
        """
        response = await self.request(
            "POST",
            self.associations_path(from_type, to_type, "/batch/create"),
            json={"inputs": inputs},
            request_id=request_id,
            write=True,
            on_attempt=on_attempt,
        )
        return BatchResponse.from_response(response)

    async def batch_archive_association_labels(
        self,
        from_type: str,
        to_type: str,
        inputs: list[dict[str, Any]],
        *,
        request_id: str,
    ) -> ApiResponse:
        """``POST …/associations/{from}/{to}/batch/labels/archive``: remove only the given
        association types between each pair (``{"from": {"id"}, "to": {"id"}, "types": […]}``),
        leaving any other labels people added. 204 on success; removing a link that is already
        gone is harmless, so retries are safe."""
        return await self.request(
            "POST",
            self.associations_path(from_type, to_type, "/batch/labels/archive"),
            json={"inputs": inputs},
            request_id=request_id,
            write=True,
        )

    async def update_property(
        self, object_type: str, name: str, changes: dict[str, Any], *, request_id: str
    ) -> dict[str, Any]:
        """``PATCH /crm/properties/{version}/{type}/{name}`` (e.g. a complete ``options`` list)."""
        response = await self.request(
            "PATCH",
            self.properties_path(object_type, f"/{name}"),
            json=changes,
            request_id=request_id,
            write=True,
        )
        return dict(_raise_unless_ok(response).body or {})

    async def list_property_groups(
        self, object_type: str, *, request_id: str
    ) -> list[dict[str, Any]]:
        response = await self.request(
            "GET", self.properties_path(object_type, "/groups"), request_id=request_id
        )
        body = _raise_unless_ok(response).body
        return [g for g in (body or {}).get("results") or () if isinstance(g, dict)]

    async def get_property_group(
        self, object_type: str, name: str, *, request_id: str
    ) -> dict[str, Any] | None:
        """One property group, or ``None`` when HubSpot has no such group."""
        return await self.get_or_none(
            self.properties_path(object_type, f"/groups/{name}"), request_id
        )

    async def create_property_group(
        self, object_type: str, name: str, label: str, *, request_id: str
    ) -> dict[str, Any]:
        response = await self.request(
            "POST",
            self.properties_path(object_type, "/groups"),
            json={"name": name, "label": label, "displayOrder": -1},
            request_id=request_id,
            write=True,
        )
        return dict(_raise_unless_ok(response).body or {})

    async def search(
        self, object_type: str, body: dict[str, Any], *, request_id: str
    ) -> dict[str, Any]:
        """``POST …/{type}/search`` through the separate 5/s search bucket (one page)."""
        response = await self.request(
            "POST",
            self.objects_path(object_type, "/search"),
            json=body,
            request_id=request_id,
            search=True,
        )
        return dict(_raise_unless_ok(response).body or {})

    async def _page(
        self, object_type: str, params: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """One page of a list read. A 2xx without a ``results`` list is not an empty page (that
        would end the read early and make a full refresh forget records): it is read again."""
        for attempt in range(1, PAGE_ATTEMPTS + 1):
            rid = request_id if attempt == 1 else f"{request_id}-r{attempt}"
            response = await self.request(
                "GET", self.objects_path(object_type), params=params, request_id=rid
            )
            body = _raise_unless_ok(response).body
            if _is_page(body):
                return dict(body)
            log.warning(
                "%s: HTTP %s without results; reading the page again", rid, response.status_code
            )
        raise HubSpotError(
            f"HubSpot answered 2xx without results to {request_id} ({object_type} page) "
            f"{PAGE_ATTEMPTS} times; the snapshot is left as it was — run the refresh again"
        )

    async def iter_objects(
        self,
        object_type: str,
        properties: list[str],
        *,
        request_id: str,
        page_size: int = 100,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every (non-archived) record of a type, following ``paging.next.after``."""
        after: str | None = None
        page = 0
        while True:
            page += 1
            params: dict[str, Any] = {"limit": page_size, "archived": "false"}
            if properties:
                params["properties"] = ",".join(properties)
            if after is not None:
                params["after"] = after
            body = await self._page(object_type, params, f"{request_id}-p{page}")
            for record in body.get("results") or ():
                yield record
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return


PAGE_ATTEMPTS = 3  # reads of a page whose 2xx answer carries no ``results`` list


def _is_page(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("results"), list)


_JSON_HEADERS = {"Content-Type": "application/json"}


def _encode(payload: Any) -> bytes:
    """A request body as JSON, UTF-8 and compact, as httpx's ``json=`` sends it but ~10x faster
    (a 100-input batch is 50–100 kB). NaN and infinities raise ``ValueError`` as with httpx:
    orjson would send them as ``null``, which clears a property, so a body with a ``null`` in
    it is checked by the standard encoder (upserts send canonical strings: never a null)."""
    try:
        out = orjson.dumps(payload)
    except TypeError:  # a type orjson does not know (e.g. a non-str key): the stdlib's answer
        out = None
    if out is None or b"null" in out:
        return jsonlib.dumps(
            payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
    return out


def _decode(content: bytes) -> Any:
    if not content:
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:  # what orjson refuses but the stdlib reads (NaN, integers past 64 bits)
        return jsonlib.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def _raise_unless_ok(response: ApiResponse) -> ApiResponse:
    if not response.ok:
        err = response.error()
        raise HubSpotError(
            f"HubSpot answered HTTP {response.status_code} to request {response.request_id}:"
            f" {err.short()} (correlation id {response.correlation_id})",
            err,
        )
    return response
