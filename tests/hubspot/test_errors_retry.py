"""Error-body parsing, Retry-After, backoff bounds and redaction."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from spokesync.hubspot.errors import parse_error
from spokesync.hubspot.redact import mask_email, redact, register_secret
from spokesync.hubspot.retry import RetryPolicy, parse_retry_after


def test_parse_validation_error_body() -> None:
    err = parse_error(
        {
            "status": "error",
            "message": "Property values were not valid",
            "correlationId": "8a3f",
            "category": "VALIDATION_ERROR",
            "errors": [
                {
                    "message": "x",
                    "code": "PROPERTY_DOESNT_EXIST",
                    "context": {"propertyName": ["testproperty"]},
                }
            ],
            "context": {"objectWriteTraceId": ["t1", "t2"], "ids": "12"},
        },
        400,
    )
    assert (err.status_code, err.category, err.correlation_id) == (400, "VALIDATION_ERROR", "8a3f")
    assert err.trace_ids == ["t1", "t2"] and err.ids == ["12"]
    assert err.details[0]["code"] == "PROPERTY_DOESNT_EXIST"


def test_parse_rate_limit_bodies() -> None:
    daily = parse_error(
        '{"status":"error","message":"You have reached your daily limit.",'
        '"errorType":"RATE_LIMIT","policyName":"DAILY"}',
        429,
    )
    assert (daily.category, daily.policy_name) == ("RATE_LIMIT", "DAILY")
    search = parse_error(
        {"message": "You have reached your secondly limit.", "category": "RATE_LIMITS"}
    )
    assert search.policy_name is None and search.category == "RATE_LIMITS"


def test_parse_never_fails_on_odd_bodies() -> None:
    assert parse_error(b"<html>bad gateway</html>", 502).message == "<html>bad gateway</html>"
    assert parse_error(None, 503).message == "HTTP 503 with a non-object error body"
    assert parse_error({}, 500).message == "HTTP 500"
    assert parse_error("", 500).message == "HTTP 500 with a non-object error body"


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_rate_limit_wait_by_policy() -> None:
    policy = RetryPolicy()
    assert policy.rate_limit_wait_s("TEN_SECONDLY_ROLLING", None, 10.0) == 10.0
    assert policy.rate_limit_wait_s("SECONDLY", None, 10.0) == 1.0
    assert policy.rate_limit_wait_s(None, None, 10.0) == 1.0
    assert policy.rate_limit_wait_s("TEN_SECONDLY_ROLLING", 2.5, 10.0) == 2.5


@given(attempt=st.integers(1, 20), seed=st.integers(0, 2**32))
def test_full_jitter_backoff_is_within_bounds(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=30.0, rng=random.Random(seed))
    delay = policy.backoff_s(attempt)
    assert 0.0 <= delay <= min(30.0, 0.5 * 2 ** (attempt - 1))
    assert policy.backoff_s(attempt, 423) >= 2.0


def test_redaction() -> None:
    assert mask_email("jane.doe@acme.com") == "j***@acme.com"
    assert mask_email("contact Jane <J@x.org> now") == "contact Jane <J***@x.org> now"
    assert mask_email("no email here") == "no email here"
    register_secret("s3cr3t-value-xyz")
    assert "s3cr3t" not in redact("token=s3cr3t-value-xyz")
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert "pat-na1" not in redact("using pat-na1-1234-abcd")


def test_a_string_too_short_to_be_a_token_is_not_scrubbed_from_every_text() -> None:
    register_secret("t")
    register_secret("tok")
    text = "contacts: webhook changes reached HubSpot beyond the SLA; token list"
    assert redact(text) == text
    register_secret("a-real-token-9f2c")
    assert redact("sent a-real-token-9f2c twice") == "sent *** twice"
