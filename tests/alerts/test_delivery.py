"""Alert delivery: Slack-compatible JSON to a loopback webhook, retries, the outbox, the log."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from spokesync.alerts import Alert, AlertSender, outbox_path, webhook_url
from spokesync.sandbox.launcher import free_port
from spokesync.settings import Settings
from tests.alerts.receiver import Receiver


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, home=tmp_path, env="test")


def _alert(n: int = 1) -> Alert:
    return Alert(
        kind="run_failure",
        title=f"sync_job failed ({n})",
        text="contacts_push: HubSpot said 400 for jane.doe@acme.com",
        fields={"partition": "2026-11-30", "token": "Bearer pat-na1-secret"},
        run_id="run-1",
    )


def test_alert_is_posted_as_slack_json_with_pii_masked(settings: Settings) -> None:
    with Receiver() as hook:
        delivery = AlertSender(settings, hook.url, backoff_s=0).send(_alert())
    assert (delivery.delivered, delivery.via, delivery.attempts) == (True, "webhook", 1)
    (body,) = hook.bodies
    assert body["text"] == (
        ":rotating_light: sync_job failed (1): contacts_push: HubSpot said 400 for j***@acme.com"
    )
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "sync_job failed (1)"},
    }
    assert body["blocks"][2]["fields"] == [
        {"type": "mrkdwn", "text": "*partition*\n2026-11-30"},
        {"type": "mrkdwn", "text": "*token*\nBearer ***"},
    ]
    assert body["spokesync"]["kind"] == "run_failure" and body["spokesync"]["run_id"] == "run-1"
    assert "jane.doe" not in str(body) and "pat-na1-secret" not in str(body)


def test_transient_failures_are_retried(settings: Settings) -> None:
    waits: list[float] = []
    with Receiver() as hook:
        hook.fail_next = 2
        delivery = AlertSender(settings, hook.url, backoff_s=0.5, sleep=waits.append).send(_alert())
    assert (delivery.delivered, delivery.attempts) == (True, 3)
    assert waits == [0.5, 1.0] and hook.attempts == 3 and len(hook.bodies) == 1


def test_an_undeliverable_alert_is_kept_and_sent_with_the_next_one(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with Receiver() as hook:
        hook.fail_next = 4
        sender = AlertSender(settings, hook.url, attempts=4, sleep=lambda s: None)
        with caplog.at_level(logging.ERROR, logger="spokesync.alerts"):
            first = sender.send(_alert(1))
        assert (first.delivered, first.attempts, first.outbox_pending) == (False, 4, 1)
        assert first.error == "HTTP 503: try later"
        assert "ALERT NOT DELIVERED after 4 attempts" in caplog.text
        kept = outbox_path(settings).read_text()
        assert len(kept.splitlines()) == 1
        assert "j***@acme.com" in kept and "jane.doe" not in kept and "pat-na1" not in kept
        second = sender.send(_alert(2))  # the receiver is back: the kept alert goes first
    assert (second.delivered, second.outbox_resent, second.outbox_pending) == (True, 1, 0)
    assert [b["blocks"][0]["text"]["text"] for b in hook.bodies] == [
        "sync_job failed (1)",
        "sync_job failed (2)",
    ]
    assert outbox_path(settings).read_text() == ""


def test_a_receiver_that_refuses_is_not_hammered(settings: Settings) -> None:
    with Receiver() as hook:
        hook.fail_next, hook.fail_status = 10, 404
        delivery = AlertSender(settings, hook.url, sleep=lambda s: None).send(_alert())
    assert (delivery.delivered, delivery.attempts, hook.attempts) == (False, 1, 1)
    assert delivery.outbox_pending == 1


def test_without_a_webhook_alerts_go_to_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="spokesync.alerts"):
        delivery = AlertSender(settings, url="").send(_alert())
    assert (delivery.delivered, delivery.via) == (True, "log")
    (record,) = [r for r in caplog.records if r.name == "spokesync.alerts"]
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("ALERT run_failure: sync_job failed (1) — contacts_push")
    assert "jane.doe" not in record.getMessage()


def test_the_webhook_is_per_environment(settings: Settings) -> None:
    env = {
        "SPOKESYNC_ALERT_WEBHOOK_URL": "http://127.0.0.1:1/generic",
        "SPOKESYNC_ALERT_WEBHOOK_URL_TEST": "http://127.0.0.1:1/test",
    }
    assert webhook_url(settings, env) == "http://127.0.0.1:1/test"
    assert webhook_url(settings, {"SPOKESYNC_ALERT_WEBHOOK_URL": "http://x/g"}) == "http://x/g"
    assert webhook_url(settings, {}) is None


def test_a_receiver_that_is_down_then_back_gets_every_alert_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there yet: connection refused
    url = f"http://127.0.0.1:{port}/hooks/alerts"
    sender = AlertSender(settings, url, attempts=3, backoff_s=0.5, sleep=lambda s: None)
    with caplog.at_level(logging.ERROR, logger="spokesync.alerts"):
        first = sender.send(_alert(1))
        second = sender.send(_alert(2))  # still down: the first is tried once, then kept
    assert (first.delivered, first.attempts, first.outbox_pending) == (False, 3, 1)
    assert first.error is not None and first.error.startswith("ConnectError")
    assert (second.delivered, second.outbox_resent, second.outbox_pending) == (False, 0, 2)
    kept = [json.loads(line) for line in outbox_path(settings).read_text().splitlines()]
    assert [(k["alert"]["title"], k["attempts"]) for k in kept] == [
        ("sync_job failed (1)", 6),
        ("sync_job failed (2)", 3),
    ]
    assert caplog.text.count("ALERT NOT DELIVERED after 3 attempts") == 2
    assert sender.flush() == (0, 2)  # still down: nothing lost, nothing sent
    with Receiver(port) as hook:
        assert sender.flush() == (2, 0)  # back: both go, oldest first, without a new alert
        assert sender.flush() == (0, 0)
    assert [b["blocks"][0]["text"]["text"] for b in hook.bodies] == [
        "sync_job failed (1)",
        "sync_job failed (2)",
    ]
    assert outbox_path(settings).read_text() == ""
