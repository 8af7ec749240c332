"""Alerting: a run-failure sensor posting to the alerts webhook (thin: :mod:`spokesync.alerts`
builds the message, retries and keeps what cannot be delivered). The threshold alerts are
asset checks on each ``<obj>_push`` (``assets/sync.py``)."""

from __future__ import annotations

import dagster as dg

from resources.alerts import AlertsResource
from resources.hubspot import HubSpotResource
from spokesync.alerts import Alert


def _root_error(err: object) -> str | None:
    # A step failure wraps the user's exception; the useful message is the innermost cause.
    while err is not None and getattr(err, "cause", None) is not None:
        err = err.cause  # type: ignore[attr-defined]
    return getattr(err, "message", None) and err.message.strip()  # type: ignore[union-attr]


@dg.run_failure_sensor(
    name="alert_on_run_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Posts every failed run of this code location to the alerts webhook "
    "(SPOKESYNC_ALERT_WEBHOOK_URL[_<ENV>]; else the log): job, partition or range, failed "
    "steps with their root error.",
)
def alert_on_run_failure(
    context: dg.RunFailureSensorContext, alerts: AlertsResource, hubspot: HubSpotResource
) -> None:
    run = context.dagster_run
    tags = run.tags
    day = tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']} … {tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags
        else "-"
    )
    steps = [
        f"{e.step_key}: {_root_error(e.event_specific_data.error) or 'failed'}"  # type: ignore[union-attr]
        for e in context.get_step_failure_events()
    ]
    alert = Alert(
        kind="run_failure",
        title=f"spokesync run failed: {run.job_name}",
        text="\n".join(steps) or (context.failure_event.message or "the run failed"),
        fields={
            "job": run.job_name,
            "partition": day,
            "run_id": run.run_id,
            "backfill": tags.get("dagster/backfill", "-"),
            "failed steps": str(len(steps)),
        },
        run_id=run.run_id,
    )
    delivery = alerts.sender(hubspot.settings()).send(alert)
    if not delivery.delivered:
        context.log.error(
            f"alert {alert.id} not delivered ({delivery.error}); kept in the outbox "
            f"({delivery.outbox_pending} pending), re-sent with the next alert"
        )


@dg.sensor(
    name="alert_outbox_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Re-sends alerts the webhook could not take (kept in the outbox, "
    "$SPOKESYNC_HOME/state/<env>-alerts-outbox.jsonl) as soon as it answers again, without "
    "waiting for a new alert. Its tick says how many are still pending and why.",
)
def alert_outbox_sensor(
    context: dg.SensorEvaluationContext, alerts: AlertsResource, hubspot: HubSpotResource
) -> dg.SkipReason:
    sender = alerts.sender(hubspot.settings())
    if not sender.outbox.read():
        return dg.SkipReason("no undelivered alerts")
    sent, left = sender.flush()
    if not left:
        return dg.SkipReason(f"re-sent {sent} undelivered alert(s); none pending")
    oldest = sender.outbox.read()[0]
    message = (
        f"re-sent {sent} undelivered alert(s); {left} still pending (oldest "
        f"{oldest['alert']['created_at']}, {oldest['attempts']} attempts, last error: "
        f"{oldest['error']})"
    )
    context.log.error(message)
    return dg.SkipReason(message)


SENSORS = [alert_on_run_failure, alert_outbox_sensor]
