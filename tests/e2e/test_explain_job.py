"""The explain job an analyst launches: it runs `explain` on a record and attaches the answer."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.explain_job import explain_record_job
from resources.hubspot import HubSpotResource
from spokesync.settings import Settings
from spokesync.sync.runner import run_sync

pytestmark = pytest.mark.e2e


def test_explain_job_attaches_the_explanation(fixed_settings: Settings) -> None:
    run_sync(fixed_settings)
    result = explain_record_job.execute_in_process(
        run_config={
            "ops": {
                "explain_record": {"config": {"object_type": "deals", "external_id": "SUB-000028"}}
            }
        },
        resources={
            "hubspot": HubSpotResource(
                home=str(fixed_settings.home),
                env="test",
                base_url=fixed_settings.hubspot_base_url,
            )
        },
    )
    assert result.success
    (meta,) = [
        e.event_specific_data.metadata
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.STEP_OUTPUT
    ] or [{}]
    text = meta["explanation"].value
    assert "deals SUB-000028" in text and "amount" in text and "now:      equal" in text
    assert meta["properties_to_send"].value == 0
