"""The v3 check against HubSpot's own SDK, and the receiver's answers to each kind of request."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import pytest
from hubspot.utils.signature import Signature

from spokesync.webhooks.events import parse_delivery
from spokesync.webhooks.inbox import WebhookInbox
from spokesync.webhooks.server import PATH, create_app
from spokesync.webhooks.signature import SignatureRejected, sign_v3, signing_uri, verify_v3

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRET = "client-secret-1"
NOW = 1_780_000_000_000
URL = "http://testserver" + PATH


def _event(event_id: int, object_id: int = 101, value: str = "a@x.com") -> dict[str, object]:
    return {
        "eventId": event_id,
        "subscriptionId": 7,
        "portalId": 62515,
        "appId": 1,
        "occurredAt": NOW - 1000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": object_id,
        "propertyName": "email",
        "propertyValue": value,
        "changeSource": "CRM_UI",
    }


def test_signature_matches_hubspots_own_sdk() -> None:
    body = b'[{"eventId":1,"objectId":2}]'
    uri = "https://hooks.example.com/webhooks/hubspot?portal=62515&x=a%20b"
    now = int(time.time() * 1000)  # the SDK checks the age against the real clock
    sig = sign_v3(SECRET, "POST", uri, body, now)
    assert Signature.is_valid(sig, SECRET, body.decode(), uri, "POST", "v3", str(now))
    got = verify_v3(
        SECRET, method="POST", uri=uri, body=body, signature=sig, timestamp=str(now), now_ms=now
    )
    assert got == now


def test_only_hubspots_twelve_escapes_are_decoded() -> None:
    assert signing_uri("https://h/p%3Aa%2fb%40c%21%24%27%28%29%2A%2C%3B?q=%3F") == (
        "https://h/p:a/b@c!$'()*,;?q=?"
    )
    assert signing_uri("https://h/p?x=a%20b%26c%3Dd%2B") == "https://h/p?x=a%20b%26c%3Dd%2B"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"signature": None}, "missing_signature"),
        ({"timestamp": "yesterday"}, "bad_timestamp"),
        ({"timestamp": str(NOW - 300_001)}, "stale_timestamp"),
        ({"timestamp": str(NOW + 300_001)}, "stale_timestamp"),
        ({"body": b"[]"}, "bad_signature"),
        ({"uri": URL + "?x=1"}, "bad_signature"),
        ({"method": "PUT"}, "bad_signature"),
    ],
)
def test_each_way_a_request_fails(kwargs: dict[str, object], reason: str) -> None:
    good = {"method": "POST", "uri": URL, "body": b"[1]", "timestamp": str(NOW)}
    sig = sign_v3(SECRET, "POST", URL, b"[1]", kwargs.get("timestamp", NOW))  # type: ignore[arg-type]
    args = {**good, "signature": sig, **kwargs}
    with pytest.raises(SignatureRejected) as err:
        verify_v3(SECRET, now_ms=NOW, **args)  # type: ignore[arg-type]
    assert err.value.reason == reason


def test_event_identity_is_not_the_event_id_alone() -> None:
    a, b = parse_delivery(json.dumps([_event(5, 101), _event(5, 102)]).encode())
    assert a.event_id == b.event_id and a.identity != b.identity
    assert (a.object_type, a.object_ids) == ("contacts", ("101",))
    merge = parse_delivery(
        b'[{"eventId":9,"subscriptionType":"company.merge","objectId":1,'
        b'"primaryObjectId":1,"mergedObjectIds":[2],"newObjectId":3}]'
    )[0]
    assert (merge.object_type, merge.object_ids) == ("companies", ("1", "3"))


def _post(client: TestClient, body: bytes, *, stamp: int = NOW, secret: str = SECRET, sig=None):
    signature = sig or sign_v3(secret, "POST", URL, body, stamp)
    return client.post(
        PATH,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": str(stamp),
        },
    )


def test_receiver_accepts_once_and_refuses_each_forgery(tmp_path: Path) -> None:
    inbox = WebhookInbox(tmp_path / "inbox.sqlite")
    app = create_app(inbox, SECRET, clock_ms=lambda: NOW)
    body = json.dumps([_event(1), _event(2, 102, "b@x.com")]).encode()
    with TestClient(app) as client:
        ok = _post(client, body)
        assert (ok.status_code, ok.json()) == (200, {"accepted": 2, "duplicates": 0})
        # the same request again, byte for byte: a replay
        assert _post(client, body).status_code == 409
        # a fresh, validly signed delivery repeating event 2 (HubSpot retry): not stored twice
        again = json.dumps([_event(2, 102, "b@x.com"), _event(3, 103)]).encode()
        r = _post(client, again, stamp=NOW - 10)
        assert (r.status_code, r.json()) == (200, {"accepted": 1, "duplicates": 1})
        tampered = body.replace(b"a@x.com", b"evil@x.com")
        assert (
            _post(client, tampered, sig=sign_v3(SECRET, "POST", URL, body, NOW)).status_code == 401
        )
        assert _post(client, body, stamp=NOW - 301_000).status_code == 401
        assert _post(client, body, secret="wrong-secret").status_code == 401
        assert _post(client, b'{"not": "a delivery"}').status_code == 400
        assert client.post(PATH, content=body).status_code == 401
        health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "events": 3,
        "rejected_bad_payload": 1,
        "rejected_bad_signature": 2,
        "rejected_missing_signature": 1,
        "rejected_replayed_request": 1,
        "rejected_stale_timestamp": 1,
    }
    stored = inbox.events_after(0)
    assert [e.object_ids for e in stored] == [("101",), ("102",), ("103",)]
    assert [e.object_ids for e in inbox.events_after(stored[1].seq)] == [("103",)]
    last = stored[2].seq
    inbox.close()
    # durable: a new process (here: a new connection) sees the same events
    with WebhookInbox(tmp_path / "inbox.sqlite") as reopened:
        assert reopened.last_seq() == last


def test_public_url_is_what_is_signed(tmp_path: Path) -> None:
    public = "https://hooks.example.com/hubspot"
    with WebhookInbox(tmp_path / "i.sqlite") as inbox:
        app = create_app(inbox, SECRET, public_url=public, clock_ms=lambda: NOW)
        body = json.dumps([_event(1)]).encode()
        with TestClient(app) as client:
            signed_for_public = sign_v3(SECRET, "POST", public + "?a=1", body, NOW)
            r = client.post(
                PATH + "?a=1",
                content=body,
                headers={
                    "X-HubSpot-Signature-v3": signed_for_public,
                    "X-HubSpot-Request-Timestamp": str(NOW),
                },
            )
            assert r.status_code == 200
            assert _post(client, body, stamp=NOW - 1).status_code == 401  # signed for URL
