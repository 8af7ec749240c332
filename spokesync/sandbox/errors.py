"""HubSpot's error bodies, reproduced exactly where the reference gives them.

Every error body is ``{status, message, correlationId, category, errors?, context?, links?}``;
the caller fills ``correlationId`` with the value it also sends as ``X-HubSpot-Correlation-Id``.
"""

from __future__ import annotations

import json
from typing import Any

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
SCOPES_MESSAGE = (
    "This app hasn't been granted all required scopes to make this call. Read more about "
    "required scopes here: https://developers.hubspot.com/scopes."
)


class ApiError(Exception):
    """An HTTP error answer: raise it anywhere inside a handler."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body
        self.headers = headers or {}


def error_body(message: str, category: str | None = None, **extra: Any) -> dict[str, Any]:
    """The standard HubSpot error body (``correlationId`` is filled in when answering)."""
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": ""}
    if category is not None:
        body["category"] = category
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def validation_error(message: str, **extra: Any) -> ApiError:
    return ApiError(400, error_body(message, "VALIDATION_ERROR", **extra))


def unknown_object_type(name: str) -> ApiError:
    """HubSpot's answer to a path naming no object type it knows (a custom object's bare name
    among them): 400, and the body has no ``category`` (a recorded answer; docs/sandbox.md)."""
    return ApiError(400, error_body(f"Unable to infer object type from: {name}"))


def not_found() -> ApiError:
    return ApiError(404, error_body("resource not found"))


def unauthenticated() -> ApiError:
    return ApiError(401, error_body(AUTH_MESSAGE, "INVALID_AUTHENTICATION"))


def missing_scopes(required_any_of: list[str]) -> ApiError:
    return ApiError(
        403,
        error_body(
            SCOPES_MESSAGE,
            "MISSING_SCOPES",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": required_any_of},
                }
            ],
            links={"scopes": "https://developers.hubspot.com/scopes"},
        ),
    )


def invalid_json(detail: str) -> ApiError:
    return validation_error(f"Invalid input JSON on line 1, column 1: {detail}")


class PropertyError(Exception):
    """One property value HubSpot would reject (an item of "Property values were not valid")."""

    def __init__(self, name: str, code: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.code = code  # PROPERTY_DOESNT_EXIST, INVALID_OPTION, INVALID_DATE, INVALID_LONG, …
        self.message = message

    def __repr__(self) -> str:
        return f"PropertyError({self.name!r}, {self.code!r}, {self.message!r})"


def property_errors_message(errors: list[PropertyError], portal_id: int) -> str:
    """``Property values were not valid: [...]`` with HubSpot's embedded JSON array."""
    items = [
        {
            "isValid": False,
            "message": e.message,
            "error": e.code,
            "name": e.name,
            "localizedErrorMessage": e.message,
            "portalId": portal_id,
        }
        for e in errors
    ]
    return "Property values were not valid: " + json.dumps(items, separators=(",", ":"))


def property_errors_body(errors: list[PropertyError], portal_id: int) -> dict[str, Any]:
    """The whole-request 400 body for invalid property values (reference §3.3)."""
    return error_body(
        property_errors_message(errors, portal_id),
        "VALIDATION_ERROR",
        errors=[
            {"message": e.message, "code": e.code, "context": {"propertyName": [e.name]}}
            for e in errors
        ],
    )


def duplicate_ids(ids: list[str]) -> ApiError:
    """Reference §1.3: duplicate ids (or unique values) in one batch."""
    return ApiError(
        400,
        {
            "status": "error",
            "message": f"Duplicate IDs found in batch input: [{', '.join(ids)}]. IDs must be unique",
            "correlationId": "",
            "context": {"ids": ids},
            "category": "VALIDATION_ERROR",
        },
    )


def non_unique_id_property(type_id: str, name: str, portal_id: int) -> ApiError:
    return validation_error(
        f"Unable to perform update/upsert by non-unique {type_id} property {name} "
        f"in portal ID {portal_id}"
    )


def too_many_inputs(count: int, limit: int) -> ApiError:
    return validation_error(
        f"Batch input size {count} exceeds the limit: at most {limit} inputs are allowed",
        context={"inputs": [str(count)]},
    )


def contact_exists(existing_id: int) -> ApiError:
    return ApiError(
        409, error_body(f"Contact already exists. Existing ID: {existing_id}", "CONFLICT")
    )


def rate_limit_ten_secondly(portal_id: int) -> dict[str, Any]:
    return {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "",
        "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": f"publicapi:private-app-api-calls-ten-secondly:{portal_id}",
    }


def rate_limit_daily(request_id: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": "You have reached your daily limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "",
        "policyName": "DAILY",
        "requestId": request_id,
    }


def rate_limit_search_secondly() -> dict[str, Any]:
    return {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "correlationId": "",
        "category": "RATE_LIMITS",
    }
