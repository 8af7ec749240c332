"""The CLI options, and webhook deliveries verified with HubSpot's own signature checker."""

from __future__ import annotations

import argparse
import json
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from hubspot.utils.signature import Signature

from spokesync.sandbox import command
from spokesync.sandbox.app import SandboxConfig, create_app
from spokesync.settings import SANDBOX_DEV_TOKEN


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_accept_the_development_token_with_every_scope(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SPOKESYNC_HOME", str(tmp_path))
    config = command.build_config(_parse())
    assert config.tokens == {SANDBOX_DEV_TOKEN: None}
    assert config.db_path == tmp_path / "sandbox.sqlite"
    assert (config.rate_limit, config.retry_after, config.shuffle_results) == (190, False, True)


def test_tokens_with_scopes_and_fault_options() -> None:
    args = _parse(
        "--token",
        "a",
        "--token",
        "b:crm.objects.contacts.read, tickets",
        "--fault-status",
        "503=0.1",
        "--fault-status",
        "423=0.05",
        "--fault-writes-only",
        "--seed",
        "3",
        "--no-shuffle-results",
        "--retry-after",
        "--rate-limit",
        "100",
    )
    config = command.build_config(args)
    assert config.tokens == {"a": None, "b": frozenset({"crm.objects.contacts.read", "tickets"})}
    assert config.faults.status_probability == {503: 0.1, 423: 0.05}
    assert (config.faults.writes_only, config.faults.seed, config.shuffle_results) == (
        True,
        3,
        False,
    )
    assert (config.retry_after, config.rate_limit) == (True, 100)
    with pytest.raises(SystemExit):
        _parse("--fault-status", "503")


def test_webhooks_are_signed_with_v3(tmp_path: Path) -> None:
    received: list[tuple[dict[str, str], str, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            received.append((dict(self.headers), body, self.path))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hooks"
    app = create_app(
        SandboxConfig(db_path=tmp_path / "s.sqlite", webhook_url=url, webhook_secret="shh")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    try:
        with TestClient(app) as client:
            r = client.post(
                "/crm/v3/objects/contacts",
                json={"properties": {"email": "w@x.com"}},
                headers={"Authorization": f"Bearer {SANDBOX_DEV_TOKEN}"},
            )
            assert r.status_code == 201
            deadline = time.monotonic() + 5
            while not received and time.monotonic() < deadline:
                time.sleep(0.02)
            edit = {"objectType": "contacts", "id": r.json()["id"], "properties": {"city": "Oslo"}}
            assert client.post("/__sandbox/edit", json=edit).status_code == 200
            while len(received) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            other = client.post(
                "/crm/v3/objects/contacts",
                json={"properties": {"email": "w2@x.com"}},
                headers={"Authorization": f"Bearer {SANDBOX_DEV_TOKEN}"},
            ).json()["id"]
            merge = client.post(
                "/crm/v3/objects/contacts/merge",
                json={"primaryObjectId": r.json()["id"], "objectIdToMerge": other},
                headers={"Authorization": f"Bearer {SANDBOX_DEV_TOKEN}"},
            )
            assert merge.status_code == 200

            def merges() -> list[dict]:
                return [
                    e
                    for _, b, _ in received[2:]
                    for e in json.loads(b)
                    if e["subscriptionType"] == "contact.merge"
                ]

            while not merges() and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        server.shutdown()
    (headers, body, path), (_, person_body, _) = received[:2]
    [merged] = merges()
    assert (merged["primaryObjectId"], merged["mergedObjectIds"]) == (
        int(r.json()["id"]),
        [int(other)],
    )
    assert merged["newObjectId"] == merged["objectId"] == int(merge.json()["id"])
    [person_event] = json.loads(person_body)
    assert (person_event["propertyName"], person_event["changeSource"]) == ("city", "CRM_UI")
    assert person_event["sourceId"] == "userId:166322228"
    assert path == "/hooks"
    assert Signature.is_valid(
        headers["X-HubSpot-Signature-v3"],
        "shh",
        body,
        url,
        "POST",
        "v3",
        headers["X-HubSpot-Request-Timestamp"],
    )
    events = json.loads(body)
    assert [e["subscriptionType"] for e in events] == ["contact.creation", "contact.propertyChange"]
    assert events[1]["propertyName"] == "email" and events[1]["propertyValue"] == "w@x.com"
    assert events[0]["objectId"] == int(r.json()["id"])


def test_invalid_fault_status_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.run(_parse("--fault-status", "418=0.5")) == 2
    assert "status 418 is not injectable" in capsys.readouterr().err


def test_every_option_reaches_the_config() -> None:
    config = command.build_config(
        _parse(
            "--search-lag-ms",
            "250",
            "--latency-ms",
            "5",
            "--daily-limit",
            "9",
            "--email-upsert-partial",
            "--request-log-size",
            "10",
        )
    )
    assert (config.search_lag_ms, config.latency_ms, config.daily_limit) == (250, 5, 9)
    assert (config.email_upsert_partial, config.request_log_size) == (True, 10)
    config = command.build_config(
        _parse("--auto-create-companies", "--seed-portal", "accounts=5,companies=1")
    )
    assert (config.auto_create_companies, config.seed_portal) == (True, "accounts=5,companies=1")
    assert command.build_config(_parse()).auto_create_companies is False


def test_invalid_seed_portal_spec_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.run(_parse("--seed-portal", "acounts=5")) == 2
    assert "invalid --seed-portal" in capsys.readouterr().err
