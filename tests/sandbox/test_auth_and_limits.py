"""Auth (401/403 bodies), the three rate-limit buckets, their headers and 429 bodies."""

from __future__ import annotations

from pathlib import Path

from spokesync.sandbox.errors import AUTH_MESSAGE, SCOPES_MESSAGE
from spokesync.sandbox.ratelimit import RateLimiter
from tests.sandbox.conftest import make_api

LIST = "/crm/v3/objects/contacts"


def test_missing_or_unknown_token_is_401_invalid_authentication(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic abc"},
    ):
        status, body = api.get(LIST, headers=headers)
        assert status == 401
        assert body == {
            "status": "error",
            "message": AUTH_MESSAGE,
            "correlationId": api.last.headers["X-HubSpot-Correlation-Id"],
            "category": "INVALID_AUTHENTICATION",
        }
    assert AUTH_MESSAGE.startswith(
        "Authentication credentials not found. This API supports OAuth 2.0"
    )


def test_scoped_token_gets_403_missing_scopes_with_required_scopes(tmp_path: Path) -> None:
    api = make_api(tmp_path, tokens={"reader": frozenset({"crm.objects.contacts.read"})})
    auth = {"Authorization": "Bearer reader"}
    assert api.get(LIST, headers=auth)[0] == 200
    status, body = api.post("/crm/v3/objects/contacts/batch/upsert", {"inputs": []}, headers=auth)
    assert status == 403
    assert body["category"] == "MISSING_SCOPES" and body["message"] == SCOPES_MESSAGE
    assert body["errors"] == [
        {
            "message": "One or more of the following scopes are required.",
            "context": {
                "requiredGranularScopes": [
                    "crm.objects.contacts.write",
                    "crm.objects.contacts.sensitive.write.v2",
                ]
            },
        }
    ]
    assert body["links"] == {"scopes": "https://developers.hubspot.com/scopes"}
    status, body = api.post("/crm/v3/properties/contacts", {}, headers=auth)
    assert (status, body["errors"][0]["context"]["requiredGranularScopes"]) == (
        403,
        ["crm.schemas.contacts.write"],
    )
    # the development token is not accepted once tokens are configured
    assert api.get(LIST)[0] == 401


def test_ten_second_bucket_headers_and_exact_429_body(tmp_path: Path) -> None:
    api = make_api(tmp_path, rate_limit=3)
    remaining = []
    for _ in range(3):
        assert api.get(LIST)[0] == 200
        remaining.append(api.last.headers["X-HubSpot-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    h = api.last.headers
    assert (h["X-HubSpot-RateLimit-Max"], h["X-HubSpot-RateLimit-Interval-Milliseconds"]) == (
        "3",
        "10000",
    )
    assert (h["X-HubSpot-RateLimit-Daily"], h["X-HubSpot-RateLimit-Daily-Remaining"]) == (
        "1000000",
        "999997",
    )
    status, body = api.get(LIST)
    assert status == 429
    assert body == {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": api.last.headers["X-HubSpot-Correlation-Id"],
        "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": "publicapi:private-app-api-calls-ten-secondly:12345678",
    }
    assert "Retry-After" not in api.last.headers
    stats = api.http.get("/__sandbox/stats").json()
    assert (stats["rate_limited_total"], stats["rate_limited"]) == (1, {"TEN_SECONDLY_ROLLING": 1})


def test_retry_after_is_optional(tmp_path: Path) -> None:
    api = make_api(tmp_path, rate_limit=1, retry_after=True)
    api.get(LIST)
    assert api.get(LIST)[0] == 429
    assert 1 <= int(api.last.headers["Retry-After"]) <= 10


def test_daily_bucket_body(tmp_path: Path) -> None:
    api = make_api(tmp_path, daily_limit=2)
    assert [api.get(LIST)[0] for _ in range(2)] == [200, 200]
    status, body = api.get(LIST)
    assert status == 429
    assert {k: body[k] for k in ("status", "message", "errorType", "policyName")} == {
        "status": "error",
        "message": "You have reached your daily limit.",
        "errorType": "RATE_LIMIT",
        "policyName": "DAILY",
    }
    assert set(body) == {
        "status",
        "message",
        "errorType",
        "correlationId",
        "policyName",
        "requestId",
    }


def test_search_has_its_own_secondly_bucket_and_only_daily_headers(tmp_path: Path) -> None:
    api = make_api(tmp_path, rate_limit=2)
    assert [api.get(LIST)[0] for _ in range(2)] == [200, 200]
    statuses = [api.post("/crm/v3/objects/contacts/search", {})[0] for _ in range(5)]
    assert statuses == [200] * 5  # exempt from the exhausted ten-second bucket
    assert "X-HubSpot-RateLimit-Max" not in api.last.headers
    assert api.last.headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(1_000_000 - 7)
    status, body = api.post("/crm/v3/objects/contacts/search", {})
    assert status == 429
    assert body == {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "correlationId": api.last.headers["X-HubSpot-Correlation-Id"],
        "category": "RATE_LIMITS",
    }


def test_rolling_window_frees_slots_exactly_ten_seconds_later() -> None:
    now = [100.0]
    limiter = RateLimiter(per_ten_seconds=2, clock=lambda: now[0])
    assert limiter.check("t", search=False).allowed
    now[0] = 105.0
    assert limiter.check("t", search=False).allowed
    assert not limiter.check("t", search=False).allowed
    now[0] = 109.999
    assert limiter.check("t", search=False).policy == "TEN_SECONDLY_ROLLING"
    now[0] = 110.0
    assert limiter.check("t", search=False).allowed
    assert not limiter.check("t", search=False).allowed
    assert limiter.check("other-token", search=False).allowed  # buckets are per token
