"""The Dagster UI in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

A daemon and a webserver on a private ``DAGSTER_HOME``, the sandbox on loopback, a small sample
warehouse ending yesterday, and no ``SPOKESYNC_PARTITIONS_START`` (as ``make dev``). In the
browser: the lineage graph loads without page errors; the Materialize dialog shows exactly the
three landed days (nothing hidden, nothing selected; *All* selects those three); the link
``make dev`` prints opens it with them selected, and the backfill launched from there by
clicking finishes (GraphQL says so, not the toast); the push asset's Overview then shows that
run's metadata and its plots; the sandbox holds exactly the contacts the warehouse wants.

No browser → a loud skip (``scripts/ci-system-deps.sh`` installs it; CI always runs it).
Screenshots go to the test's temp dir, and to ``$SPOKESYNC_UI_SCREENSHOTS`` when set
(``make screenshots`` → ``docs/img/``, used by the README's UI tour).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from pipelines.dev import dialog_link
from spokesync.desired import desired_table
from spokesync.mapping.loader import load_mappings
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync.runner import SyncOptions, default_mapping_paths, run_sync
from tests.live.services import REPO, DagsterServices, build_recent_warehouse

# A loaded two-core CI machine: minutes, not the suite's 300 s default.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.xdist_group("live_dagster"),
    pytest.mark.timeout(600),
]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _open_materialize_dialog(page):
    """Click Materialize… on an asset page; returns the partition dialog."""
    from playwright.sync_api import expect

    materialize = page.get_by_role("button", name="Materialize…")
    expect(materialize).to_be_enabled(timeout=60_000)
    materialize.click()
    # Dagster first warns that upstream assets were never materialized *in Dagster* (the
    # portal was seeded by the CLI): confirm, as a user would.
    confirm = page.get_by_role("dialog").filter(has_text="Are you sure?")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Confirm").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    expect(dialog.get_by_text("Launch runs to materialize contacts_push")).to_be_visible()
    return dialog


def _shot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name))
    target = os.environ.get("SPOKESYNC_UI_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / name, Path(target) / name)


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="NO BROWSER: Debian's chromium is not installed, so the Dagster UI was NOT tested in "
    "a browser; run `bash scripts/ci-system-deps.sh` (CI does)",
)
def test_lineage_backfill_by_clicking_and_push_metadata(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # a loaded two-core CI machine renders slowly

    home = tmp_path / "home"
    home.mkdir()
    days = build_recent_warehouse(home, days=3)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    [contacts_mapping] = [
        m for m in load_mappings(default_mapping_paths()) if m.object_type == "contacts"
    ]
    wanted, _ = desired_table(home / "warehouse", contacts_mapping, dt.date.fromisoformat(days[-1]))

    with SandboxProcess(tmp_path / "sandbox.sqlite", rate_limit=1000) as sandbox:
        settings = Settings.from_env(
            environ={}, home=home, env="test", hubspot_base_url=sandbox.base_url
        )
        # The portal as of the first day (properties created, records pushed), so the
        # backfill has something to change.
        assert run_sync(settings, SyncOptions(as_of=dt.date.fromisoformat(days[0]))).ok
        env = {
            "SPOKESYNC_HOME": str(home),
            "SPOKESYNC_ENV": "test",
            "HUBSPOT_BASE_URL": sandbox.base_url,
            # the run's steps in the run's process: one code load fewer per run (what the
            # browser proves does not depend on the executor; the Postgres test does the same)
            "SPOKESYNC_EXECUTOR": "in_process",
        }
        with DagsterServices(dagster_home, env) as dagster, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-dev-shm-usage"],
            )
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))

            # 1. Lineage of the sync group: every object's desired → changes → push chain.
            page.goto(f"{dagster.url}/locations/spokesync/asset-groups/hubspot_sync")
            # the graph is virtualised: nodes outside the viewport are not rendered
            expect(page.get_by_text(re.compile(r"^\w+_push$")).first).to_be_visible(timeout=60_000)
            # every node has loaded its status (no "Loading…" left)
            expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0, timeout=60_000)
            _shot(page, tmp_path, "ui-lineage.png")

            # The catalog lists every asset with its group, kinds and latest status.
            page.goto(f"{dagster.url}/assets")
            expect(page.get_by_role("link", name="contacts_push").first).to_be_visible(
                timeout=60_000
            )
            expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0, timeout=60_000)
            _shot(page, tmp_path, "ui-catalog.png")

            # 2. The Materialize dialog tells the truth about the days that have data: its
            # window holds exactly the landed days (partitions start at the first landed day
            # and end yesterday), nothing is hidden, nothing is selected (Dagster's default),
            # and "All" selects exactly those days.
            page.goto(f"{dagster.url}/assets/contacts_push")
            dialog = _open_materialize_dialog(page)
            expect(dialog.get_by_text("0 partitions", exact=True)).to_be_visible()
            expect(dialog.get_by_text("Showing 3 of 3 partitions")).to_be_visible()
            expect(dialog.get_by_text(days[0], exact=True)).to_be_visible()
            expect(dialog.get_by_text(days[-1], exact=True)).to_be_visible()
            expect(dialog.get_by_text(re.compile("older partitions are outside"))).to_have_count(0)
            expect(dialog.get_by_role("button", name="Launch backfill")).to_be_disabled()
            dialog.get_by_role("button", name="All", exact=True).click()
            expect(dialog.get_by_text("3 partitions", exact=True)).to_be_visible()
            expect(dialog.get_by_role("textbox")).to_have_value(f"[{days[0]}...{days[-1]}]")
            dialog.get_by_role("button", name="Cancel", exact=True).click()

            # The link `make dev` prints opens the dialog with the landed days already
            # selected; the backfill over them is launched from there by clicking.
            page.goto(dialog_link(dagster.url, "contacts_push", (days[0], days[-1])))
            dialog = _open_materialize_dialog(page)
            expect(dialog.get_by_text("3 partitions", exact=True)).to_be_visible()
            expect(dialog.get_by_role("textbox")).to_have_value(f"[{days[0]}...{days[-1]}]")
            expect(dialog.get_by_text("Backfills all partitions in a single run.")).to_be_visible()
            _shot(page, tmp_path, "ui-backfill-dialog.png")
            dialog.get_by_role("button", name="Launch backfill").click()
            toast = page.get_by_text("Created backfill")
            expect(toast).to_be_visible(timeout=30_000)
            backfill_id = toast.inner_text().split()[-1]

            launched = time.monotonic()
            backfill = dagster.wait_backfill(backfill_id)
            print(f"backfill launched → done in {time.monotonic() - launched:.1f} s")
            assert backfill["status"] == "COMPLETED_SUCCESS", (
                backfill,
                [dagster.run_failure_logs(r["runId"]) for r in backfill["runs"]],
            )
            assert sorted(backfill["partitionNames"]) == days
            [run] = backfill["runs"]  # single-run policy: one run for the range
            tags = {t["key"]: t["value"] for t in run["tags"]}
            assert (run["status"], tags["dagster/asset_partition_range_start"]) == (
                "SUCCESS",
                days[0],
            )
            assert tags["dagster/asset_partition_range_end"] == days[-1]

            # 3. The push asset's Overview: the run's metadata, then its plots.
            page.goto(f"{dagster.url}/assets/contacts_push")
            metadata = page.get_by_role("table").filter(has_text="records_desired")
            expect(metadata).to_be_visible(timeout=60_000)
            row = metadata.get_by_role("row").filter(has_text="records_desired")
            expect(row).to_contain_text(f"{wanted.num_rows}")
            expect(metadata.get_by_role("row").filter(has_text="as_of").first).to_contain_text(
                days[-1]
            )
            _shot(page, tmp_path, "ui-push-metadata.png")
            page.get_by_role("button", name="Plots").click()
            expect(page.get_by_text("records_ok").first).to_be_visible()
            expect(page.get_by_text("Partition").first).to_be_visible()
            _shot(page, tmp_path, "ui-push-plots.png")
            browser.close()
            assert errors == [], errors

        emails = sorted(r["properties"]["email"] for r in sandbox.export("contacts"))
        assert emails == sorted(wanted.column("external_id").to_pylist())
