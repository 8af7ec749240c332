"""A mapping property HubSpot does not have is created only when declared new (label + group);
otherwise the sync stops before any write, naming file, field and the nearest names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spokesync.hubspot.properties import UnknownPropertyError, nearest_names
from spokesync.mapping.loader import load_mappings
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import Settings
from spokesync.sync.runner import DEFAULT_MAPPINGS_DIR, SyncOptions, run_sync

pytestmark = pytest.mark.e2e


def _mappings_with_typo(folder: Path) -> Path:
    folder.mkdir()
    for name in ("companies.yaml", "deals.yaml"):
        shutil.copy(DEFAULT_MAPPINGS_DIR / name, folder / name)
    deals = folder / "deals.yaml"
    text = deals.read_text()
    assert "{property: amount, type: number" in text
    deals.write_text(
        text.replace("{property: amount, type: number", "{property: amout, type: number")
    )
    return folder


def test_typo_stops_the_sync_before_any_write(
    tmp_path: Path, settings: Settings, sandbox: SandboxProcess
) -> None:
    folder = _mappings_with_typo(tmp_path / "mappings")
    paths = sorted(folder.glob("*.yaml"))
    with pytest.raises(UnknownPropertyError) as info:
        run_sync(settings, SyncOptions(mapping_paths=paths))
    message = str(info.value)
    # fields[3] of the shipped deals mapping is amount (dealname, pipeline, dealstage, amount)
    assert f"{folder / 'deals.yaml'}: fields[3] (amout)" in message
    assert "HubSpot deals have no property `amout`" in message
    assert "did you mean `amount`" in message
    writes = [r for r in sandbox.requests() if r["method"] in ("POST", "PATCH", "PUT", "DELETE")]
    assert writes == []  # no property, no group, no record: nothing was written
    assert sandbox.export("deals") == [] and sandbox.export("companies") == []


def test_shipped_mappings_declare_every_property_they_create() -> None:
    """Every field of the shipped mappings either is a HubSpot default property or is declared
    new with label and group (so nothing is created by accident)."""
    created = {
        (m.object_type, f.property)
        for m in load_mappings(sorted(DEFAULT_MAPPINGS_DIR.glob("*.yaml")))
        for f in m.fields
        if f.declares_new_property
    }
    assert all(p.startswith("spokesync_") for _, p in created)
    assert ("deals", "amount") not in created and ("companies", "domain") not in created


def test_nearest_names_by_name_and_label() -> None:
    existing = {
        "amount": {"label": "Amount"},
        "amount_in_home_currency": {"label": "Amount in company currency"},
        "closedate": {"label": "Close date"},
        "dealname": {"label": "Deal name"},
    }
    assert nearest_names("amout", existing) == ["amount"]
    assert nearest_names("close_date", existing) == ["closedate"]
    assert nearest_names("zzz", existing) == []


def test_label_without_group_is_a_mapping_error() -> None:
    from pydantic import ValidationError

    from spokesync.mapping.spec import FieldSpec

    with pytest.raises(ValidationError, match="needs both 'label' and 'group'"):
        FieldSpec(property="spokesync_x", type="string", column="x", label="X")
    assert FieldSpec(
        property="x_y", type="string", column="x", label="X", group="g"
    ).declares_new_property
    assert not FieldSpec(property="amount", type="number", column="x").declares_new_property
