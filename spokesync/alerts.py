"""Alerts: a Slack-compatible webhook when one is configured, else the log; never lost silently.

An :class:`Alert` is posted as Slack's incoming-webhook JSON (``text`` plus ``blocks``; other
tools that take Slack's format, e.g. Mattermost or a Teams/Discord bridge, accept it too) to
``SPOKESYNC_ALERT_WEBHOOK_URL_<ENV>`` (else ``SPOKESYNC_ALERT_WEBHOOK_URL``). Without a webhook
the alert is logged at ERROR/WARNING on ``spokesync.alerts``.

Delivery retries transient failures (transport errors, 429, 5xx) with exponential backoff. An
alert that still cannot be delivered is appended to an outbox file
(``$SPOKESYNC_HOME/state/<env>-alerts-outbox.jsonl``, with its attempts and last error) and
logged; every later delivery first re-sends what the outbox holds, oldest first, and the
``alert_outbox_sensor`` re-sends it every minute without waiting for a new alert, so nothing is
dropped. Text is redacted (emails
masked, tokens removed) before it leaves the process.

Plain Python: the Dagster sensor and checks call :class:`AlertSender` (``pipelines/alerts.py``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from spokesync.hubspot.redact import get_logger, redact
from spokesync.settings import Settings

log = get_logger("spokesync.alerts")
Severity = Literal["error", "warning"]
WEBHOOK_VARIABLE = "SPOKESYNC_ALERT_WEBHOOK_URL"


@dataclass(frozen=True)
class Alert:
    """One thing a person should look at."""

    kind: str  # run_failure, failed_records, dead_letters_growing, sync_latency, kpi
    title: str
    text: str
    severity: Severity = "error"
    fields: Mapping[str, str] = field(default_factory=dict)
    run_id: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    )

    def payload(self) -> dict[str, object]:
        """Slack incoming-webhook JSON; every string redacted."""
        icon = ":rotating_light:" if self.severity == "error" else ":warning:"
        title, text = redact(self.title), redact(self.text)
        facts = [
            {"type": "mrkdwn", "text": f"*{redact(k)}*\n{redact(v)}"}
            for k, v in list(self.fields.items())[:10]  # Slack allows 10 fields per section
        ]
        blocks: list[dict[str, object]] = [
            {"type": "header", "text": {"type": "plain_text", "text": f"{title}"[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        ]
        if facts:
            blocks.append({"type": "section", "fields": facts})
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"spokesync · {self.kind} · alert {self.id}"}
                ],
            }
        )
        return {
            "text": f"{icon} {title}: {text}"[:3000],
            "blocks": blocks,
            "spokesync": {
                "kind": self.kind,
                "severity": self.severity,
                "alert_id": self.id,
                "run_id": self.run_id,
                "created_at": self.created_at,
            },
        }


@dataclass
class Delivery:
    """What happened to one :meth:`AlertSender.send`."""

    alert_id: str
    delivered: bool
    via: Literal["webhook", "log"]
    attempts: int = 0
    error: str | None = None
    outbox_resent: int = 0
    outbox_pending: int = 0


def webhook_url(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    e = os.environ if environ is None else environ
    return e.get(f"{WEBHOOK_VARIABLE}_{settings.env.upper()}") or e.get(WEBHOOK_VARIABLE) or None


def outbox_path(settings: Settings) -> Path:
    return settings.home / "state" / f"{settings.env}-alerts-outbox.jsonl"


class Outbox:
    """Undelivered alerts, one JSON line each; a file lock keeps concurrent senders apart."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _locked(self, fn: Callable[[list[dict]], list[dict] | None]) -> list[dict]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                items = self.read()
                new = fn(items)
                if new is not None:
                    tmp = self.path.with_suffix(".tmp")
                    tmp.write_text("".join(json.dumps(i) + "\n" for i in new))
                    os.replace(tmp, self.path)
                    return new
                return items
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def add(self, alert: Alert, error: str, attempts: int) -> int:
        # Kept redacted, as it would be sent: no email or token rests in the file.
        kept = {
            **asdict(alert),
            "title": redact(alert.title),
            "text": redact(alert.text),
            "fields": {redact(k): redact(v) for k, v in alert.fields.items()},
        }
        entry = {"alert": kept, "error": error, "attempts": attempts}
        return len(self._locked(lambda items: [*items, entry]))

    def replace(self, keep: Callable[[list[dict]], list[dict]]) -> list[dict]:
        return self._locked(keep)


class AlertSender:
    """Deliver alerts to the webhook (with retries and the outbox) or to the log."""

    def __init__(
        self,
        settings: Settings,
        url: str | None = None,
        *,
        attempts: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url if url is not None else webhook_url(settings)
        self.outbox = Outbox(outbox_path(settings))
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.transport = transport
        self.sleep = sleep

    def _post(self, client: httpx.Client, alert: Alert) -> tuple[bool, int, str | None]:
        error: str | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                r = client.post(self.url or "", json=alert.payload())
                if r.status_code < 300:
                    return True, attempt, None
                error = f"HTTP {r.status_code}: {redact(r.text[:200])}"
                if r.status_code < 500 and r.status_code != 429:
                    return False, attempt, error  # the receiver refuses it: retrying won't help
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {redact(exc)}"
            if attempt < self.attempts:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
        return False, self.attempts, error

    def send(self, alert: Alert) -> Delivery:
        if not self.url:
            level = log.error if alert.severity == "error" else log.warning
            level("ALERT %s: %s — %s %s", alert.kind, alert.title, alert.text, dict(alert.fields))
            return Delivery(alert.id, delivered=True, via="log")
        with httpx.Client(timeout=self.timeout_s, transport=self.transport) as client:
            resent = self._flush(client)
            ok, attempts, error = self._post(client, alert)
        delivery = Delivery(alert.id, ok, "webhook", attempts, error, outbox_resent=resent)
        if not ok:
            delivery.outbox_pending = self.outbox.add(alert, error or "unknown", attempts)
            log.error(
                "ALERT NOT DELIVERED after %d attempts (%s), kept in %s: %s — %s",
                attempts,
                error,
                self.outbox.path,
                alert.title,
                alert.text,
            )
        else:
            delivery.outbox_pending = len(self.outbox.read())
        return delivery

    def flush(self) -> tuple[int, int]:
        """Re-send what the outbox holds without a new alert (the outbox sensor does, every
        minute): (re-sent, still pending)."""
        if not self.url or not self.outbox.read():
            return 0, len(self.outbox.read())
        with httpx.Client(timeout=self.timeout_s, transport=self.transport) as client:
            sent = self._flush(client)
        return sent, len(self.outbox.read())

    def _flush(self, client: httpx.Client) -> int:
        """Re-send what the outbox holds (oldest first); keep what still fails. After the first
        failure the rest is kept untried: the receiver is still down or refusing."""
        sent = 0

        def keep(items: list[dict]) -> list[dict]:
            nonlocal sent
            left = []
            for item in items:
                if left:
                    left.append(item)
                    continue
                alert = Alert(**item["alert"])
                ok, attempts, error = self._post(client, alert)
                if ok:
                    sent += 1
                else:
                    left.append({**item, "error": error, "attempts": item["attempts"] + attempts})
            return left

        if self.outbox.read():
            self.outbox.replace(keep)
        return sent
