"""The adoption dry run as a Dagster job, and the weekly full refresh schedule."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.definitions import defs
from resources.hubspot import HubSpotResource
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from tests.portals.portal import person_creates, write_calls

pytestmark = pytest.mark.e2e


def test_adopt_dry_run_job_reports_and_checks_ambiguous(
    settings: Settings, sandbox: SandboxProcess
) -> None:
    person_creates(sandbox, "companies", name="Silver", domain="silveranalytics1.co")
    person_creates(sandbox, "companies", name="Acme A", domain="acmecapital2.co")
    person_creates(sandbox, "companies", name="Acme B", domain="acmecapital2.co")
    job = defs.resolve_job_def("hubspot_adopt_dry_run_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance,
            resources={
                "hubspot": HubSpotResource(
                    home=str(settings.home), env="test", base_url=sandbox.base_url
                )
            },
        )
    assert result.success
    (mat,) = [
        e.event_specific_data.materialization for e in result.get_asset_materialization_events()
    ]
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert (meta["companies_would_adopt"], meta["companies_would_create"]) == (1, 38)
    assert (meta["companies_ambiguous"], meta["companies_left_alone"]) == (1, 2)
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "no_ambiguous_matches" and check.passed is False
    assert check.metadata["records_ambiguous"].value == 1
    assert write_calls(sandbox) == {}


def test_weekly_full_refresh_schedule() -> None:
    schedule = defs.resolve_schedule_def("weekly_full_refresh_schedule")
    assert schedule.cron_schedule == "0 4 * * 0"
    assert schedule.job_name == "hubspot_refresh_job"
