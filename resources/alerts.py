"""Where alerts go and when a KPI becomes one, as a Dagster resource (thin: the delivery and
the arithmetic are in :mod:`spokesync.alerts` and :mod:`spokesync.kpis`)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
from pydantic import Field

from spokesync.alerts import AlertSender
from spokesync.kpis import Thresholds
from spokesync.settings import Settings


class AlertsResource(dg.ConfigurableResource):
    """The webhook (Slack-compatible JSON; default: SPOKESYNC_ALERT_WEBHOOK_URL[_<ENV>], else
    the log) and the thresholds of the alerting asset checks."""

    webhook_url: str | None = Field(default=None, description="default: from the environment")
    max_failed_rate: float = Field(0.01, ge=0, le=1, description="records rejected / sent")
    min_success_rate: float = Field(0.99, ge=0, le=1)
    max_retry_rate: float = Field(0.2, ge=0, description="retried requests / write calls")
    max_duplicate_rate: float = Field(0.02, ge=0, le=1, description="HubSpot duplicates")
    max_missing_required_rate: float = Field(0.01, ge=0, le=1)
    min_association_completeness: float = Field(0.98, ge=0, le=1)
    max_duration_s: float = Field(3600, gt=0, description="one object's sync, plan and push")
    max_open_dead_letters: int = Field(100, ge=0, description="open dead letters per object")
    batch_sla_hours: float = Field(24, gt=0, description="batch enrichment: landing → HubSpot")
    priority_sla_minutes: float = Field(5, gt=0, description="priority signals")
    priority_objects: list[str] = Field(
        default_factory=list, description="objects on the 5 min SLA"
    )

    def thresholds(self) -> Thresholds:
        return Thresholds(
            max_failed_rate=self.max_failed_rate,
            min_success_rate=self.min_success_rate,
            max_retry_rate=self.max_retry_rate,
            max_duplicate_rate=self.max_duplicate_rate,
            max_missing_required_rate=self.max_missing_required_rate,
            min_association_completeness=self.min_association_completeness,
            max_duration_s=self.max_duration_s,
            max_open_dead_letters=self.max_open_dead_letters,
            batch_sla=dt.timedelta(hours=self.batch_sla_hours),
            priority_sla=dt.timedelta(minutes=self.priority_sla_minutes),
            priority_objects=frozenset(self.priority_objects),
        )

    def sender(self, settings: Settings) -> AlertSender:
        return AlertSender(settings, self.webhook_url)
