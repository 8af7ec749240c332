"""End to end: the sandbox sends v3-signed deliveries to ``spokesync webhooks serve``."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from spokesync.sandbox.launcher import SandboxProcess
from spokesync.sandbox.webhooks import sign_v3 as sandbox_sign_v3
from tests.webhooks.conftest import SECRET, WebhookServer

pytestmark = pytest.mark.e2e


def _create_contact(sandbox: SandboxProcess, email: str) -> str:
    r = httpx.post(
        f"{sandbox.base_url}/crm/v3/objects/contacts",
        json={"properties": {"email": email}},
        headers={"Authorization": f"Bearer {sandbox.token}"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _send(
    server: WebhookServer, body: str, *, stamp: int, secret: str = SECRET, signed: str | None = None
):
    return httpx.post(
        server.url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": sandbox_sign_v3(
                secret, "POST", server.url, signed or body, stamp
            ),
            "X-HubSpot-Request-Timestamp": str(stamp),
        },
    )


def test_sandbox_deliveries_accepted_forgeries_refused(
    tmp_path: Path, webhook_server: WebhookServer
) -> None:
    args = ["--webhook-url", webhook_server.url, "--webhook-secret", SECRET]
    with SandboxProcess(tmp_path / "good.sqlite", extra_args=args) as sandbox:
        ids = [
            _create_contact(sandbox, "ada@example.com"),
            _create_contact(sandbox, "bo@example.com"),
        ]
        # each creation: contact.creation + one propertyChange for email
        webhook_server.wait_for("events", 4)
    wrong = ["--webhook-url", webhook_server.url, "--webhook-secret", "not-the-secret"]
    with SandboxProcess(tmp_path / "wrong.sqlite", extra_args=wrong) as sandbox:
        _create_contact(sandbox, "eve@example.com")
        webhook_server.wait_for("rejected_bad_signature", 1)

    con = sqlite3.connect(webhook_server.inbox)
    stored = con.execute(
        "SELECT object_type, object_ids, subscription_type, payload FROM events ORDER BY seq"
    ).fetchall()
    con.close()
    assert sorted({json.loads(r[1])[0] for r in stored}) == sorted(ids)
    assert {r[0] for r in stored} == {"contacts"}
    assert sorted(r[2] for r in stored) == ["contact.creation"] * 2 + ["contact.propertyChange"] * 2

    now = int(time.time() * 1000)
    one_event = "[" + stored[1][3] + "]"  # an event the sandbox delivered, in a new request
    replayed = _send(webhook_server, one_event, stamp=now)
    assert (replayed.status_code, replayed.json()) == (200, {"accepted": 0, "duplicates": 1})
    assert _send(webhook_server, one_event, stamp=now).status_code == 409  # same request again
    tampered = one_event.replace("ada@example.com", "mallory@example.com")
    assert _send(webhook_server, tampered, stamp=now + 1, signed=one_event).status_code == 401
    assert _send(webhook_server, one_event, stamp=now - 6 * 60 * 1000).status_code == 401

    assert webhook_server.health() == {
        "status": "ok",
        "events": 4,
        "rejected_bad_signature": 2,
        "rejected_replayed_request": 1,
        "rejected_stale_timestamp": 1,
    }


def test_serve_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "spokesync.cli", "webhooks", "serve", "--port", "1"],
        env={"PATH": "/usr/bin:/bin", "SPOKESYNC_HOME": str(tmp_path), "SPOKESYNC_ENV": "prod"},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "set HUBSPOT_CLIENT_SECRET_PROD (or HUBSPOT_CLIENT_SECRET)" in r.stderr
    assert "Traceback" not in r.stderr
