"""The sandbox ASGI app: routing (v3/v4 and date-versioned paths), auth and scopes, rate limits,
fault injection, the request log and the ``/__sandbox`` admin API, around the pure services in
:mod:`objects`, :mod:`search`, :mod:`associations` and :mod:`properties`."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from spokesync.sandbox import people
from spokesync.sandbox.associations import AssociationService
from spokesync.sandbox.autocompanies import AutoCompanies
from spokesync.sandbox.bulk import BulkLoad, bulk_load_file
from spokesync.sandbox.catalog import ObjectTypeDef
from spokesync.sandbox.errors import (
    ApiError,
    PropertyError,
    error_body,
    invalid_json,
    missing_scopes,
    not_found,
    rate_limit_daily,
    rate_limit_search_secondly,
    rate_limit_ten_secondly,
    unauthenticated,
)
from spokesync.sandbox.faults import FaultConfig, FaultPlan
from spokesync.sandbox.gdpr import GdprService
from spokesync.sandbox.lists import LIST_ACCESS, ListService
from spokesync.sandbox.lists import WRITE_ACCESS as LIST_WRITES
from spokesync.sandbox.lists import required_scopes as list_scopes
from spokesync.sandbox.lists import routes as list_routes
from spokesync.sandbox.merges import MergeService
from spokesync.sandbox.objects import ObjectService, now_iso
from spokesync.sandbox.properties import MetadataService
from spokesync.sandbox.ratelimit import RateLimiter
from spokesync.sandbox.search import SearchService
from spokesync.sandbox.seed import PortalSeed, PortalSeeder
from spokesync.sandbox.store import Store
from spokesync.settings import SANDBOX_DEV_TOKEN

logger = logging.getLogger(__name__)
ALL_SCOPES = None  # a token configured without scopes has every scope
_VERSION = r"\d{4}-\d{2}(?:-beta)?"
_ALIASES = [
    (
        re.compile(rf"^/crm/objects/{_VERSION}/([^/]+)/([^/]+)/associations(/.*)?$"),
        lambda m: f"/crm/v4/objects/{m[1]}/{m[2]}/associations{m[3] or ''}",
    ),
    (re.compile(rf"^/crm/objects/{_VERSION}(/.*)?$"), lambda m: f"/crm/v3/objects{m[1] or ''}"),
    (
        re.compile(rf"^/crm/associations/{_VERSION}(/.*)?$"),
        lambda m: f"/crm/v4/associations{m[1] or ''}",
    ),
    (
        re.compile(rf"^/crm/properties/{_VERSION}(/.*)?$"),
        lambda m: f"/crm/v3/properties{m[1] or ''}",
    ),
    (re.compile(rf"^/crm/pipelines/{_VERSION}(/.*)?$"), lambda m: f"/crm/v3/pipelines{m[1] or ''}"),
    (re.compile(rf"^/crm/owners/{_VERSION}(/.*)?$"), lambda m: f"/crm/v3/owners{m[1] or ''}"),
    (re.compile(rf"^/crm/lists/{_VERSION}(/.*)?$"), lambda m: f"/crm/v3/lists{m[1] or ''}"),
    (
        re.compile(rf"^/crm-object-schemas/{_VERSION}(/.*)?$"),
        lambda m: f"/crm-object-schemas/v3{m[1] or ''}",
    ),
]


class ConnectionDropped(Exception):
    """Raised in-process (TestClient) where a real server would close the socket."""


@dataclass
class SandboxConfig:
    """Everything ``spokesync sandbox`` can be told at start."""

    db_path: Path | None = None
    portal_id: int = 12345678
    tokens: dict[str, frozenset[str] | None] = field(
        default_factory=lambda: {SANDBOX_DEV_TOKEN: ALL_SCOPES}
    )
    rate_limit: int = 190
    daily_limit: int = 1_000_000
    search_rate_limit: int = 5
    retry_after: bool = False
    latency_ms: int = 0
    search_lag_ms: int = 0
    shuffle_results: bool = True
    email_upsert_partial: bool = False
    faults: FaultConfig = field(default_factory=FaultConfig)
    request_log_size: int = 2_000
    seed: int | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    seed_portal: str | None = None  # a PortalSeed spec: seeds an empty portal at start
    auto_create_companies: bool = False  # the portal setting; docs/sandbox.md says why off


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    template: str
    handler: Callable[..., Any]
    access: str  # read | write | search | props_read | props_write | schemas_read | schemas_write | owners | assoc_read | assoc_write
    type_params: tuple[str, ...] = ("object_type",)


@dataclass
class Call:
    """One parsed API request, as handlers see it."""

    params: dict[str, str]
    query: dict[str, Any]
    body: Any
    raw_body: bytes
    base_url: str


def _compile(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{regex}/?$")


def _query(raw: bytes) -> dict[str, Any]:
    parsed = parse_qs(raw.decode("latin-1"), keep_blank_values=True)
    out: dict[str, Any] = {}
    for key, values in parsed.items():
        if key in ("properties", "propertiesWithHistory", "associations"):
            out[key] = [p for v in values for p in v.split(",") if p]
        else:
            out[key] = values[-1]
    return out


class SandboxApp:
    """The ASGI application. Build with :func:`create_app`."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = Store(config.db_path, config.portal_id)
        self.objects = ObjectService(
            self.store,
            shuffle_results=config.shuffle_results,
            email_upsert_partial=config.email_upsert_partial,
            seed=config.seed,
        )
        self.associations = AssociationService(self.objects)
        self.objects.associations = self.associations
        self.objects.search_lag_s = config.search_lag_ms / 1000
        self.searcher = SearchService(self.objects)
        self.merges = MergeService(self.objects)
        self.gdpr = GdprService(self.objects)
        self.lists = ListService(self.objects)
        self.seeder = PortalSeeder(self.objects, self.merges)
        self.auto_companies = AutoCompanies(self.objects, config.auto_create_companies)
        # Called after a bulk load or a seeding through the admin routes added records: the
        # server freezes them for the cycle collector, as it does what it loads at start.
        self.after_load: Callable[[], None] | None = None
        if config.seed_portal and not any(self.store.records.values()):
            self.seeder.seed(PortalSeed.parse(config.seed_portal))
        self.meta = MetadataService(self.objects)
        self.limiter = RateLimiter(
            per_ten_seconds=config.rate_limit,
            daily=config.daily_limit,
            search_per_second=config.search_rate_limit,
        )
        self.faults = FaultPlan(config.faults)
        self.log: deque[dict[str, Any]] = deque(maxlen=config.request_log_size)
        self._seq = 0
        self.requests_by_route: Counter[tuple[str, int]] = Counter()
        self.rate_limited: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.started_at = now_iso()
        self.webhooks: Any = None
        if config.webhook_url:
            from spokesync.sandbox.webhooks import WebhookSender

            self.webhooks = WebhookSender(
                config.webhook_url, config.webhook_secret or "", config.portal_id
            )
            self.objects.listeners.append(self.webhooks.notify)
            self.merges.listeners.append(self.webhooks.notify_merge)
        self.routes = self._routes()

    # ------------------------------------------------------------ routes
    def _routes(self) -> list[Route]:
        o, a, m, s = self.objects, self.associations, self.meta, self.searcher
        obj = "/crm/v3/objects/{object_type}"
        v4 = "/crm/v4/associations/{from_type}/{to_type}"
        rec = "/crm/v4/objects/{object_type}/{object_id}/associations"
        props = "/crm/v3/properties/{object_type}"
        pair = ("from_type", "to_type")
        rec_pair = ("object_type", "to_type")
        table: list[tuple[str, str, Callable[[Call], Any], str, tuple[str, ...]]] = [
            (
                "POST",
                f"{obj}/batch/create",
                lambda c: o.batch_create(c.params["object_type"], c.body),
                "write",
                ("object_type",),
            ),
            (
                "POST",
                f"{obj}/batch/update",
                lambda c: o.batch_update(c.params["object_type"], c.body),
                "write",
                ("object_type",),
            ),
            (
                "POST",
                f"{obj}/batch/upsert",
                lambda c: o.batch_upsert(c.params["object_type"], c.body),
                "write",
                ("object_type",),
            ),
            (
                "POST",
                f"{obj}/batch/archive",
                lambda c: o.batch_archive(c.params["object_type"], c.body),
                "write",
                ("object_type",),
            ),
            (
                "POST",
                f"{obj}/batch/read",
                lambda c: o.batch_read(
                    c.params["object_type"],
                    c.body,
                    str(c.query.get("archived", "false")).lower() == "true",
                ),
                "read",
                ("object_type",),
            ),
            (
                "POST",
                f"{obj}/merge",
                lambda c: self.merges.merge(c.params["object_type"], c.body),
                "write",
                ("object_type",),
            ),
            (
                "POST",
                f"{obj}/gdpr-delete",
                lambda c: self.gdpr.delete(c.params["object_type"], c.body),
                "write",
                ("object_type",),
            ),
            (
                "POST",
                f"{obj}/search",
                lambda c: s.search(c.params["object_type"], c.body, c.raw_body),
                "search",
                ("object_type",),
            ),
            (
                "GET",
                obj,
                lambda c: o.list(c.params["object_type"], c.query, c.base_url),
                "read",
                ("object_type",),
            ),
            (
                "POST",
                obj,
                lambda c: o.create(c.params["object_type"], c.body),
                "write",
                ("object_type",),
            ),
            (
                "GET",
                f"{obj}/{{object_id}}",
                lambda c: o.get(c.params["object_type"], c.params["object_id"], c.query),
                "read",
                ("object_type",),
            ),
            (
                "PATCH",
                f"{obj}/{{object_id}}",
                lambda c: o.update(c.params["object_type"], c.params["object_id"], c.body, c.query),
                "write",
                ("object_type",),
            ),
            (
                "DELETE",
                f"{obj}/{{object_id}}",
                lambda c: o.archive(c.params["object_type"], c.params["object_id"]),
                "write",
                ("object_type",),
            ),
            (
                "POST",
                f"{v4}/batch/create",
                lambda c: a.batch_create(c.params["from_type"], c.params["to_type"], c.body),
                "assoc_write",
                pair,
            ),
            (
                "POST",
                f"{v4}/batch/associate/default",
                lambda c: a.batch_associate_default(
                    c.params["from_type"], c.params["to_type"], c.body
                ),
                "assoc_write",
                pair,
            ),
            (
                "POST",
                f"{v4}/batch/read",
                lambda c: a.batch_read(c.params["from_type"], c.params["to_type"], c.body),
                "assoc_read",
                pair,
            ),
            (
                "POST",
                f"{v4}/batch/archive",
                lambda c: a.batch_archive(c.params["from_type"], c.params["to_type"], c.body),
                "assoc_write",
                pair,
            ),
            (
                "POST",
                f"{v4}/batch/labels/archive",
                lambda c: a.batch_archive_labels(
                    c.params["from_type"], c.params["to_type"], c.body
                ),
                "assoc_write",
                pair,
            ),
            (
                "GET",
                f"{v4}/labels",
                lambda c: a.labels(c.params["from_type"], c.params["to_type"]),
                "assoc_read",
                pair,
            ),
            (
                "POST",
                f"{v4}/labels",
                lambda c: a.create_label(c.params["from_type"], c.params["to_type"], c.body),
                "props_write",
                ("from_type",),
            ),
            (
                "PUT",
                f"{rec}/default/{{to_type}}/{{to_id}}",
                lambda c: a.put_default(
                    c.params["object_type"],
                    c.params["object_id"],
                    c.params["to_type"],
                    c.params["to_id"],
                ),
                "assoc_write",
                rec_pair,
            ),
            (
                "GET",
                f"{rec}/{{to_type}}",
                lambda c: a.list_for_record(
                    c.params["object_type"], c.params["object_id"], c.params["to_type"], c.query
                ),
                "assoc_read",
                rec_pair,
            ),
            (
                "PUT",
                f"{rec}/{{to_type}}/{{to_id}}",
                lambda c: a.put_labeled(
                    c.params["object_type"],
                    c.params["object_id"],
                    c.params["to_type"],
                    c.params["to_id"],
                    c.body,
                ),
                "assoc_write",
                rec_pair,
            ),
            (
                "DELETE",
                f"{rec}/{{to_type}}/{{to_id}}",
                lambda c: a.delete_pair(
                    c.params["object_type"],
                    c.params["object_id"],
                    c.params["to_type"],
                    c.params["to_id"],
                ),
                "assoc_write",
                rec_pair,
            ),
            (
                "POST",
                f"{props}/batch/create",
                lambda c: m.batch_create_properties(c.params["object_type"], c.body),
                "props_write",
                ("object_type",),
            ),
            (
                "POST",
                f"{props}/batch/read",
                lambda c: m.batch_read_properties(c.params["object_type"], c.body),
                "props_read",
                ("object_type",),
            ),
            (
                "POST",
                f"{props}/batch/archive",
                lambda c: m.batch_archive_properties(c.params["object_type"], c.body),
                "props_write",
                ("object_type",),
            ),
            (
                "GET",
                f"{props}/groups",
                lambda c: m.list_groups(c.params["object_type"]),
                "props_read",
                ("object_type",),
            ),
            (
                "POST",
                f"{props}/groups",
                lambda c: m.create_group(c.params["object_type"], c.body),
                "props_write",
                ("object_type",),
            ),
            (
                "GET",
                f"{props}/groups/{{group_name}}",
                lambda c: m.get_group(c.params["object_type"], c.params["group_name"]),
                "props_read",
                ("object_type",),
            ),
            (
                "GET",
                props,
                lambda c: m.list_properties(
                    c.params["object_type"], str(c.query.get("archived", "false")).lower() == "true"
                ),
                "props_read",
                ("object_type",),
            ),
            (
                "POST",
                props,
                lambda c: m.create_property(c.params["object_type"], c.body),
                "props_write",
                ("object_type",),
            ),
            (
                "GET",
                f"{props}/{{property_name}}",
                lambda c: m.get_property(c.params["object_type"], c.params["property_name"]),
                "props_read",
                ("object_type",),
            ),
            (
                "PATCH",
                f"{props}/{{property_name}}",
                lambda c: m.update_property(
                    c.params["object_type"], c.params["property_name"], c.body
                ),
                "props_write",
                ("object_type",),
            ),
            (
                "DELETE",
                f"{props}/{{property_name}}",
                lambda c: m.archive_property(c.params["object_type"], c.params["property_name"]),
                "props_write",
                ("object_type",),
            ),
            (
                "GET",
                "/crm-object-schemas/v3/schemas",
                lambda c: m.list_schemas(),
                "schemas_read",
                (),
            ),
            (
                "POST",
                "/crm-object-schemas/v3/schemas",
                lambda c: m.create_schema(c.body),
                "schemas_write",
                (),
            ),
            (
                "GET",
                "/crm-object-schemas/v3/schemas/{schema}",
                lambda c: m.get_schema(c.params["schema"]),
                "schemas_read",
                (),
            ),
            (
                "POST",
                "/crm-object-schemas/v3/schemas/{schema}/associations",
                lambda c: m.create_schema_association(c.params["schema"], c.body),
                "schemas_write",
                (),
            ),
            ("GET", "/crm/v3/owners", lambda c: m.owners(c.query), "owners", ()),
            (
                "GET",
                "/crm/v3/owners/{owner_id}",
                lambda c: m.owner(c.params["owner_id"]),
                "owners",
                (),
            ),
            (
                "GET",
                "/crm/v3/pipelines/{object_type}",
                lambda c: m.pipelines(c.params["object_type"]),
                "read",
                ("object_type",),
            ),
            (
                "GET",
                "/crm/v3/pipelines/{object_type}/{pipeline_id}",
                lambda c: m.pipeline(c.params["object_type"], c.params["pipeline_id"]),
                "read",
                ("object_type",),
            ),
            (
                "GET",
                "/crm/v3/pipelines/{object_type}/{pipeline_id}/stages",
                lambda c: m.stages(c.params["object_type"], c.params["pipeline_id"]),
                "read",
                ("object_type",),
            ),
        ]
        table += list_routes(self.lists)
        return [Route(meth, _compile(t), t, h, acc, tp) for meth, t, h, acc, tp in table]

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path params, path exists for another method)."""
        for pattern, rewrite in _ALIASES:
            m = pattern.match(path)
            if m:
                path = rewrite(m)
                break
        other = False
        for route in self.routes:
            m = route.pattern.match(path)
            if m:
                if route.method == method:
                    return route, m.groupdict(), True
                other = True
        return None, {}, other

    # ------------------------------------------------------------ auth
    def _required_scopes(self, route: Route, params: dict[str, str]) -> list[list[str]]:
        """Each inner list is an any-of set; every set must be satisfied."""
        acc = route.access
        if acc == "owners":
            return [["crm.objects.owners.read"]]
        if acc == "schemas_read":
            return [["crm.schemas.custom.read", "crm.objects.custom.read"]]
        if acc == "schemas_write":
            return [["crm.schemas.custom.write"]]
        if acc in LIST_ACCESS:
            return list_scopes(acc)
        types: list[ObjectTypeDef] = []
        for name in route.type_params:
            ot = self.store.resolve_type(params.get(name, ""))
            if ot is not None:
                types.append(ot)
        out = []
        for ot in types:
            schema_name = "custom" if ot.type_id.startswith("2-") else ot.name
            if acc in ("read", "search", "assoc_read"):
                out.append(ot.read_scopes + ot.write_scopes)
            elif acc in ("write", "assoc_write"):
                out.append(list(ot.write_scopes))
            elif acc == "props_read":
                out.append([f"crm.schemas.{schema_name}.read", *ot.read_scopes])
            elif acc == "props_write":
                out.append([f"crm.schemas.{schema_name}.write"])
        return out

    def _authenticate(self, headers: dict[str, str]) -> tuple[str, frozenset[str] | None]:
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or token not in self.config.tokens:
            raise unauthenticated()
        return token, self.config.tokens[token]

    # ------------------------------------------------------------ ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # pragma: no cover - websockets are not served
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path: str = scope["path"]
        method: str = scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if path.startswith("/__sandbox"):
            status, answer = self._admin(method, path, scope.get("query_string", b""), body)
            await self._send_json(send, status, answer, {})
            return
        if path in ("", "/") and method == "GET":
            await self._send_json(send, 200, self.status(), {})
            return
        await self._api(scope, send, method, path, headers, body)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.webhooks is not None:
                    self.webhooks.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.webhooks is not None:
                    await self.webhooks.stop()
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def status(self) -> dict[str, Any]:
        return {
            "service": "spokesync-sandbox",
            "status": "ok",
            "portalId": self.config.portal_id,
            "startedAt": self.started_at,
            "records": {
                ot.name: len(self.store.records.get(t, {}))
                for t, ot in self.store.object_types.items()
            },
        }

    async def _api(
        self, scope: Scope, send: Send, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> None:
        started = time.perf_counter()
        correlation_id = str(uuid.uuid4())
        query_string: bytes = scope.get("query_string", b"")
        extra_headers: dict[str, str] = {}
        route: Route | None = None
        fault: str | int | None = None
        drop = False
        status: int
        answer: Any
        try:
            token, scopes = self._authenticate(headers)
            route, params, exists = self.match(method, path)
            search = route is not None and route.access == "search"
            decision = self.limiter.check(token, search=search)
            extra_headers.update(decision.headers)
            if not decision.allowed:
                self.rate_limited[decision.policy or ""] += 1
                if self.config.retry_after:
                    extra_headers["Retry-After"] = str(decision.retry_after_s)
                if decision.policy == "DAILY":
                    raise ApiError(429, rate_limit_daily(str(uuid.uuid4())))
                if decision.policy == "SECONDLY":
                    raise ApiError(429, rate_limit_search_secondly())
                raise ApiError(429, rate_limit_ten_secondly(self.config.portal_id))
            if route is None:
                if exists:
                    raise ApiError(
                        405, error_body(f"HTTP {method} is not supported by this endpoint")
                    )
                raise not_found()
            if scopes is not ALL_SCOPES:
                for any_of in self._required_scopes(route, params):
                    if not scopes & set(any_of):
                        raise missing_scopes(any_of)
            if self.config.latency_ms:
                await asyncio.sleep(self.config.latency_ms / 1000)
            is_write = route.access in ("write", "assoc_write", "props_write", "schemas_write")
            is_write = is_write or route.access in LIST_WRITES
            fault = self.faults.draw(path, is_write)
            if fault is not None:
                self.faults_injected[str(fault)] += 1
            if fault == "latency":
                await asyncio.sleep(self.faults.config.latency_spike_ms / 1000)
            elif fault == "drop":
                drop = True
                raise _Dropped()
            elif isinstance(fault, int):
                raise ApiError(fault, _fault_body(fault, self.config.portal_id))
            elif fault == "daily":
                raise ApiError(429, rate_limit_daily(str(uuid.uuid4())))
            elif fault == "empty":
                stamp = now_iso()
                raise _Answer(200, {"status": "COMPLETE", "startedAt": stamp, "completedAt": stamp})
            parsed: Any = None
            if body and method in ("POST", "PUT", "PATCH"):
                try:
                    parsed = orjson.loads(body)
                except ValueError as exc:  # NaN / Infinity too, like HubSpot's JSON parser
                    raise invalid_json(str(exc)) from exc
            host = headers.get("host", "127.0.0.1")
            call = Call(params, _query(query_string), parsed, body, f"http://{host}")
            status, answer = route.handler(call)
            if fault == "drop_after_apply":
                drop = True
        except ApiError as exc:
            status, answer = exc.status, exc.body
            extra_headers.update(exc.headers)
        except _Answer as ans:
            status, answer = ans.status, ans.body
        except _Dropped:
            status, answer = 0, None
        except Exception:  # a sandbox bug: answer like HubSpot's 500 and keep the traceback
            logger.exception("sandbox error on %s %s", method, path)
            status, answer = 500, error_body("internal error", "INTERNAL_ERROR")
        if isinstance(answer, dict) and "correlationId" in answer:
            answer["correlationId"] = correlation_id
        extra_headers["X-HubSpot-Correlation-Id"] = correlation_id
        extra_headers["X-Request-Id"] = headers.get("x-request-id") or str(uuid.uuid4())
        template = route.template if route else path
        self._record(
            method,
            path,
            template,
            query_string,
            headers,
            body,
            0 if drop else status,
            answer,
            correlation_id,
            started,
            fault,
        )
        if drop:
            await _drop_connection(send)
            return
        await self._send_json(send, status, answer, extra_headers)

    async def _send_json(
        self, send: Send, status: int, answer: Any, headers: dict[str, str]
    ) -> None:
        payload = b"" if answer is None else orjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS)
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if answer is not None:
            raw_headers.append((b"content-type", b"application/json;charset=utf-8"))
        raw_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})

    # ------------------------------------------------------------ log and stats
    def _record(
        self,
        method: str,
        path: str,
        template: str,
        query_string: bytes,
        headers: dict[str, str],
        body: bytes,
        status: int,
        answer: Any,
        correlation_id: str,
        started: float,
        fault: str | int | None,
    ) -> None:
        self._seq += 1
        self.requests_by_route[(f"{method} {template}", status)] += 1
        safe_headers = {
            k: ("Bearer ***" if k == "authorization" else v) for k, v in headers.items()
        }
        self.log.append(
            {
                "seq": self._seq,
                "timestamp": now_iso(),
                "method": method,
                "path": path,
                "route": template,
                "query": _query(query_string),
                "headers": safe_headers,
                "request_id": headers.get("x-request-id"),
                "body": body,  # raw bytes: decoded when the log is read (_logged)
                "status": status,
                "response_body": answer,
                "correlation_id": correlation_id,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "fault": fault,
            }
        )

    def stats(self) -> dict[str, Any]:
        by_route: dict[str, dict[str, int]] = {}
        by_status: Counter[str] = Counter()
        for (route, status), n in sorted(self.requests_by_route.items()):
            by_route.setdefault(route, {})[str(status)] = n
            by_status[str(status)] += n
        return {
            "requests_total": sum(self.requests_by_route.values()),
            "requests": by_route,
            "requests_by_status": dict(by_status),
            "rate_limited_total": sum(self.rate_limited.values()),
            "rate_limited": dict(self.rate_limited),
            "faults_injected": dict(self.faults_injected),
            "records": self.objects.counters.to_json(),
            "rate_limit": self.limiter.snapshot(),
        }

    def requests_log(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        out = list(self.log)
        if query.get("method"):
            out = [e for e in out if e["method"] == str(query["method"]).upper()]
        if query.get("path"):
            out = [e for e in out if e["path"] == query["path"]]
        if query.get("path_contains"):
            out = [e for e in out if query["path_contains"] in e["path"]]
        if query.get("route"):
            out = [e for e in out if e["route"] == query["route"]]
        if query.get("status"):
            out = [e for e in out if str(e["status"]) == str(query["status"])]
        if query.get("request_id"):
            out = [e for e in out if e["request_id"] == query["request_id"]]
        if query.get("since_seq"):
            out = [e for e in out if e["seq"] > int(query["since_seq"])]
        if query.get("limit"):
            out = out[-int(query["limit"]) :]
        return [_logged(e) for e in out]

    def export(self, query: dict[str, Any]) -> dict[str, Any]:
        include_archived = str(query.get("archived", "false")).lower() == "true"
        wanted = query.get("objectType")
        types = (
            [self.objects.admin_type(wanted)] if wanted else list(self.store.object_types.values())
        )
        linked: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = {}
        for (ft, fid, to), targets in self.store.associations.items():
            if targets:
                linked.setdefault((ft, fid), {})[self.store.object_types[to].name] = [
                    {"id": str(tid), "types": sorted(ids)} for tid, ids in sorted(targets.items())
                ]
        out: dict[str, Any] = {}
        for ot in types:
            records = sorted(self.store.records.get(ot.type_id, {}).values(), key=lambda r: r.id)
            out[ot.name] = [
                {
                    "id": str(r.id),
                    "properties": dict(r.properties),
                    "createdAt": r.created_at,
                    "updatedAt": r.updated_at,
                    "archived": r.archived,
                    "associations": linked.get((ot.type_id, r.id), {}),
                }
                for r in records
                if include_archived or not r.archived
            ]
        return out

    def _loaded(self, answer: dict[str, Any]) -> dict[str, Any]:
        if self.after_load is not None:
            self.after_load()
        return answer

    def _admin(self, method: str, path: str, query_string: bytes, body: bytes) -> tuple[int, Any]:
        query = _query(query_string)
        sub = path[len("/__sandbox") :].rstrip("/")
        try:
            parsed = json.loads(body) if body else {}
        except ValueError:
            return 400, {"error": "body is not valid JSON"}
        try:
            if sub == "/stats" and method == "GET":
                return 200, self.stats()
            if sub == "/requests" and method == "GET":
                return 200, {"results": self.requests_log(query)}
            if sub == "/requests" and method == "DELETE":
                self.log.clear()
                return 200, {"cleared": True}
            if sub == "/reset" and method == "POST":
                self.reset()
                return 200, {"reset": True}
            if sub == "/export" and method == "GET":
                return 200, self.export(query)
            if sub == "/edit" and method == "POST":
                return people.edit(self.objects, parsed)
            if sub == "/seed-portal" and method == "POST":
                spec = parsed.get("spec") if isinstance(parsed.get("spec"), str) else None
                try:
                    seed = PortalSeed.parse(spec) if spec else PortalSeed.model_validate(parsed)
                    return 200, self._loaded(self.seeder.seed(seed))
                except ValueError as exc:  # pydantic's ValidationError is a ValueError
                    return 400, {"error": str(exc)}
            if sub == "/seed-portal" and method == "GET":
                return 200, self.seeder.manifest() or {}
            if sub == "/bulk-load" and method == "POST":
                try:
                    load = BulkLoad.model_validate(parsed)
                    return 200, self._loaded(bulk_load_file(self.objects, load))
                except ValueError as exc:  # a refused row, a missing file, a bad body
                    return 400, {"error": str(exc)}
            if sub == "/faults" and method == "GET":
                return 200, self.faults.to_json()
            if sub == "/faults" and method in ("PUT", "PATCH", "DELETE"):
                base = {} if method in ("PUT", "DELETE") else self.faults.to_json()
                config = FaultConfig.model_validate(
                    {**base, **(parsed if method != "DELETE" else {})}
                )
                self.faults.configure(config)
                return 200, self.faults.to_json()
            if sub == "/config" and method == "GET":
                return 200, self._runtime_config()
            if sub == "/config" and method in ("PUT", "PATCH"):
                return 200, self._set_runtime_config(parsed)
        except ValidationError as exc:
            return 400, {"error": "invalid fault configuration", "detail": json.loads(exc.json())}
        except ApiError as exc:
            return exc.status, exc.body
        except PropertyError as exc:
            return 400, {"error": str(exc), "code": exc.code, "name": exc.name}
        return 404, {"error": f"no admin route {method} {path}"}

    def _runtime_config(self) -> dict[str, Any]:
        return {
            "rate_limit": self.limiter.per_ten_seconds,
            "daily_limit": self.limiter.daily,
            "search_rate_limit": self.limiter.search_per_second,
            "retry_after": self.config.retry_after,
            "latency_ms": self.config.latency_ms,
            "shuffle_results": self.objects.shuffle_results,
            "search_lag_ms": int(self.objects.search_lag_s * 1000),
            "email_upsert_partial": self.objects.email_upsert_partial,
            "auto_create_companies": self.auto_companies.enabled,
        }

    def _set_runtime_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        known = set(self._runtime_config())
        unknown = set(changes) - known
        if unknown:
            raise ApiError(400, {"error": f"unknown config keys: {sorted(unknown)}"})
        if "rate_limit" in changes:
            self.limiter.per_ten_seconds = int(changes["rate_limit"])
        if "daily_limit" in changes:
            self.limiter.daily = int(changes["daily_limit"])
        if "search_rate_limit" in changes:
            self.limiter.search_per_second = int(changes["search_rate_limit"])
        if "retry_after" in changes:
            self.config.retry_after = bool(changes["retry_after"])
        if "latency_ms" in changes:
            self.config.latency_ms = int(changes["latency_ms"])
        if "search_lag_ms" in changes:
            self.objects.search_lag_s = int(changes["search_lag_ms"]) / 1000
        if "shuffle_results" in changes:
            self.objects.shuffle_results = bool(changes["shuffle_results"])
        if "email_upsert_partial" in changes:
            self.objects.email_upsert_partial = bool(changes["email_upsert_partial"])
        if "auto_create_companies" in changes:
            self.auto_companies.enabled = bool(changes["auto_create_companies"])
        return self._runtime_config()

    def reset(self) -> None:
        """Empty portal, fresh counters and log; the fault and limit settings stay."""
        self.store.reset()
        self.lists.reset()
        self.limiter.reset()
        self.log.clear()
        self.requests_by_route.clear()
        self.rate_limited.clear()
        self.faults_injected.clear()
        self.objects.counters = type(self.objects.counters)()
        self.objects.forget_search_pending()


def _logged(entry: dict[str, Any]) -> dict[str, Any]:
    """A log entry as the admin API shows it: the request body decoded (JSON, else text)."""
    raw = entry["body"]
    if not isinstance(raw, bytes):
        return entry
    try:
        body: Any = orjson.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    return {**entry, "body": body}


class _Dropped(Exception):
    pass


class _Answer(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body


_FAULT_MESSAGES = {
    423: ("Record is locked; retry after at least 2 seconds", "LOCKED"),
    500: ("internal error", "INTERNAL_ERROR"),
    502: ("Bad Gateway", None),
    503: ("Service Unavailable", None),
    504: ("Gateway Timeout", None),
    521: ("Web server is down", None),
    523: ("Origin is unreachable", None),
    524: ("A timeout occurred", None),
}


def _fault_body(status: int, portal_id: int) -> dict[str, Any]:
    if status == 429:
        return rate_limit_ten_secondly(portal_id)
    message, category = _FAULT_MESSAGES[status]
    return error_body(message, category)


async def _drop_connection(send: Send) -> None:
    """Close the socket without an answer (uvicorn); raise in-process (TestClient)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionDropped("the sandbox dropped this connection (fault injection)")
    transport.abort()
    cycle.disconnected = True  # type: ignore[union-attr]
    await asyncio.sleep(0)


def create_app(config: SandboxConfig | None = None) -> SandboxApp:
    """The sandbox as an ASGI app (uvicorn, Starlette's TestClient or httpx's ASGITransport)."""
    return SandboxApp(config or SandboxConfig())
