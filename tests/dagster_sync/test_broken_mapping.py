"""A broken mapping file does not take the code location down: the other objects' assets,
the jobs and schedules load, and the broken file shows one clear error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from assets.sync import build_sync_assets, load_repo_mappings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mappings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", folder)
    path = folder / "companies.yaml"
    text = path.read_text()
    assert "{property: numberofemployees, type: number," in text
    path.write_text(
        text.replace("numberofemployees, type: number,", "numberofemployees, type: numbr,")
    )
    monkeypatch.setenv("SPOKESYNC_MAPPINGS", str(folder))
    return folder


def test_a_typo_leaves_the_other_objects_and_names_file_field_and_value(
    mappings_dir: Path,
) -> None:
    good, broken = load_repo_mappings()
    assert sorted(m.object_type for m in good) == [
        "contacts",
        "deals",
        "erp_subscription",
        "tickets",
    ]
    (error,) = broken.values()
    assert error.startswith(
        f"{mappings_dir / 'companies.yaml'}: fields[4] (numberofemployees).type: Input should be "
    )
    assert error.endswith("(got 'numbr')")
    assets = build_sync_assets(good, broken)
    keys = {k.to_user_string() for a in assets for k in a.keys}
    assert "broken_mapping_companies" in keys and "contacts_push" in keys
    assert not any(k.startswith("companies_") for k in keys)
    stand_in = next(a for a in assets if a.key.to_user_string() == "broken_mapping_companies")
    spec = next(iter(stand_in.specs))
    assert spec.description.startswith("BROKEN MAPPING `companies.yaml`")
    assert error in spec.description
    result = dg.materialize([stand_in], raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.event_specific_data
    assert data.user_failure_data.description.startswith("mapping companies.yaml does not load: ")
    assert data.user_failure_data.metadata["mapping_error"].value == error


def test_the_code_location_loads_with_a_broken_mapping(mappings_dir: Path) -> None:
    script = (
        "import json; from pipelines.definitions import defs; "
        "print(json.dumps({'assets': sorted(k.to_user_string() for k in "
        "defs.resolve_asset_graph().get_all_asset_keys()), "
        "'jobs': sorted(j.name for j in defs.resolve_all_job_defs()), "
        "'schedules': sorted(s.name for s in defs.schedules)}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**os.environ, "SPOKESYNC_MAPPINGS": str(mappings_dir)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "broken_mapping_companies" in loaded["assets"]
    assert {"contacts_push", "deals_push", "tickets_push", "invoices"} <= set(loaded["assets"])
    assert {"sync_job", "hubspot_push_job", "hubspot_shadow_job"} <= set(loaded["jobs"])
    assert {"nightly_sync_schedule", "nightly_ingestion_schedule"} <= set(loaded["schedules"])
