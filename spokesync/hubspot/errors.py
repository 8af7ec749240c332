"""HubSpot error bodies parsed into typed values, and the exceptions the client raises.

HubSpot's docs say every field of an error body is optional, so parsing never fails: what is
missing stays ``None``/empty. Messages pass through :func:`~spokesync.hubspot.redact.redact`
before they reach an exception, so neither tokens nor full emails leak.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from spokesync.hubspot.redact import redact

RETRYABLE_STATUSES = frozenset({408, 423, 500, 502, 503, 504, 520, 521, 523, 524})
"""Transient server states: back off with full jitter and retry (upsert is idempotent)."""


@dataclass(frozen=True, slots=True)
class ApiError:
    """One HubSpot error: a whole-response error body or one entry of a 207's ``errors[]``."""

    status_code: int | None
    category: str | None
    message: str
    correlation_id: str | None = None
    policy_name: str | None = None  # 429: DAILY | TEN_SECONDLY_ROLLING | SECONDLY | None (search)
    sub_category: str | None = None
    context: dict[str, list[str]] = field(default_factory=dict)
    details: tuple[dict[str, Any], ...] = ()  # the body's own ``errors[]`` (ErrorDetail)

    @property
    def trace_ids(self) -> list[str]:
        """The ``objectWriteTraceId`` values this error names (207 per-input errors)."""
        return list(self.context.get("objectWriteTraceId", []))

    @property
    def ids(self) -> list[str]:
        """The ids this error names (``context.ids``, e.g. duplicate or missing ids)."""
        return list(self.context.get("ids", []))

    def short(self) -> str:
        """``CATEGORY: message`` for logs and dead letters (redacted)."""
        return redact(f"{self.category or 'ERROR'}: {self.message}")


def _as_context(raw: object) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        return {}
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, list):
            out[str(key)] = [str(v) for v in value]
        elif value is not None:
            out[str(key)] = [str(value)]
    return out


def parse_error(body: object, status_code: int | None = None) -> ApiError:
    """Parse an error body (already decoded JSON, raw text or bytes) into an :class:`ApiError`."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body or "null")
        except ValueError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return ApiError(status_code, None, redact(text[:500]) or f"HTTP {status_code}")
    if not isinstance(body, dict):
        return ApiError(status_code, None, f"HTTP {status_code} with a non-object error body")
    category = body.get("category") or body.get("errorType")
    details = tuple(d for d in body.get("errors") or () if isinstance(d, dict))
    return ApiError(
        status_code=status_code,
        category=str(category) if category else None,
        message=redact(str(body.get("message") or f"HTTP {status_code}")),
        correlation_id=_str_or_none(body.get("correlationId")),
        policy_name=_str_or_none(body.get("policyName")),
        sub_category=_str_or_none(body.get("subCategory")),
        context=_as_context(body.get("context")),
        details=details,
    )


def parse_batch_errors(body: dict[str, Any], status_code: int) -> list[ApiError]:
    """The per-input errors of a 207 (``errors[]`` of ``StandardError``)."""
    return [parse_error(e, status_code) for e in body.get("errors") or () if isinstance(e, dict)]


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


class HubSpotError(Exception):
    """Base class; its message is always redacted."""

    def __init__(self, message: str, error: ApiError | None = None) -> None:
        super().__init__(redact(message))
        self.error = error


class HubSpotAuthError(HubSpotError):
    """401/403: the token is missing, wrong, expired or lacks scopes. Stops the push."""


class HubSpotConfigError(HubSpotError):
    """A request HubSpot rejects for every record alike (e.g. a non-unique ``idProperty``)."""


class DailyLimitReached(HubSpotError):
    """The portal's daily API budget is spent (429 ``DAILY`` or the headers say 0 left)."""


class RetriesExhausted(HubSpotError):
    """A transient failure persisted past the retry policy's attempts."""

    def __init__(
        self,
        message: str,
        error: ApiError | None = None,
        *,
        attempts: int,
        status_code: int | None,
        correlation_id: str | None = None,
        unreachable: bool = False,
    ) -> None:
        super().__init__(message, error)
        self.attempts = attempts
        self.status_code = status_code
        self.correlation_id = correlation_id
        self.unreachable = unreachable  # no connection could be made (wrong URL, network)
