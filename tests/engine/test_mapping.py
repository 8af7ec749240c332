"""Mapping loader: the repo's mappings load; every mistake names the file, field and problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from spokesync.mapping import MappingError, MappingSpec, load_mapping, load_mappings

REPO_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"

VALID = """
object_type: deals
id: {property: spokesync_subscription_id, column: subscription_id}
source: {sql: "SELECT * FROM subscriptions WHERE date <= $as_of"}
fields:
  - {property: dealname, type: string, column: plan}
  - {property: dealstage, type: enumeration, expr: "'closedwon'", options: [closedwon, closedlost]}
  - {property: spokesync_tags, type: enumeration_multi, column: plan, options: [a, b]}
"""


def test_repo_mappings_load_with_required_properties() -> None:
    specs = {m.object_type: m for m in load_mappings(REPO_MAPPINGS)}
    assert sorted(specs) == ["companies", "contacts", "deals", "erp_subscription", "tickets"]
    sub = specs["erp_subscription"].custom_object
    assert sub is not None and sub.associated_objects == ["companies", "deals"]
    assert sub.required_properties == ["spokesync_subscription_id", "spokesync_subscription_name"]
    assert specs["contacts"].id.property == "email"
    deal_props = {f.property for f in specs["deals"].fields}
    assert {"dealname", "dealstage", "pipeline"} <= deal_props
    ticket_props = {f.property for f in specs["tickets"].fields}
    assert {"subject", "hs_pipeline", "hs_pipeline_stage"} <= ticket_props
    owners = [f.owner for m in specs.values() for f in m.fields]
    policies = [f.null_policy for m in specs.values() for f in m.fields]
    assert "hubspot" in owners and "clear" in policies
    for m in specs.values():
        assert len(m.version) == 12 and m.source.uses_as_of


def test_valid_mapping_fields_and_version(write_mapping: Callable[[str, str], MappingSpec]) -> None:
    m = write_mapping("deals", VALID)
    assert m.property_types == {
        "spokesync_subscription_id": "string",
        "dealname": "string",
        "dealstage": "enumeration",
        "spokesync_tags": "enumeration_multi",
    }
    multi = m.field("spokesync_tags")
    assert (multi.hubspot_type, multi.hubspot_field_type) == ("enumeration", "checkbox")
    assert m.field("dealstage").hubspot_field_type == "select"
    again = write_mapping("deals", VALID)
    assert again.version == m.version
    changed = write_mapping("deals", VALID.replace("closedlost]", "closedlost, x]"))
    assert changed.version != m.version


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("options: [closedwon, closedlost]", ""),
            "fields[1] (dealstage): Value error, type enumeration needs 'options'",
        ),
        (
            ("column: plan}", "column: plan, expr: plan}"),
            "fields[0] (dealname): Value error, give exactly one of 'column' or 'expr'",
        ),
        (("property: dealname", "property: DealName"), "fields[0] (DealName).property"),
        (("type: string", "type: text"), "fields[0] (dealname).type"),
        (("column: plan}", "column: plan, nul_policy: skip}"), "fields[0] (dealname).nul_policy"),
        (("column: subscription_id", "column: 'sub id'"), "id.column"),
        (("object_type: deals", "object_type: dealz"), "object_type"),
        (
            ("property: dealname", "property: dealstage"),
            "fields[1] (dealstage): a duplicate",
        ),
    ],
)
def test_errors_name_file_field_and_problem(
    write_mapping: Callable[[str, str], MappingSpec], edit: tuple[str, str], expected: str
) -> None:
    text = VALID.replace(*edit)
    assert text != VALID
    with pytest.raises(MappingError) as exc:
        write_mapping("deals", text)
    msg = str(exc.value)
    assert msg.startswith(str(Path("mappings") / "deals.yaml")) or "deals.yaml: " in msg
    assert expected.replace("Value error, ", "") in msg


def test_unreadable_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="missing.yaml: cannot read mapping file"):
        load_mapping(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("object_type: [unclosed\n")
    with pytest.raises(MappingError, match="bad.yaml: not valid YAML"):
        load_mapping(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(MappingError, match="list.yaml: expected a mapping"):
        load_mapping(listy)


def test_two_mappings_for_one_object_type(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(VALID)
    with pytest.raises(MappingError, match=r"b.yaml: object_type 'deals' is already mapped by"):
        load_mappings(tmp_path)


def test_sql_must_be_one_select(write_mapping: Callable[[str, str], MappingSpec]) -> None:
    with pytest.raises(MappingError, match=r"source.sql: must be a single statement"):
        write_mapping("deals", VALID.replace("<= $as_of", "<= $as_of; DROP TABLE x"))
    with pytest.raises(MappingError, match=r"source.sql: must be a SELECT"):
        write_mapping("deals", VALID.replace('"SELECT * FROM', '"DELETE FROM'))


CUSTOM = """
object_type: seat_pack
custom_object:
  name: seat_pack
  labels: {singular: Seat pack, plural: Seat packs}
  primary_display_property: pack_name
  required_properties: [pack_id]
  associated_objects: [companies]
id: {property: pack_id, column: pack_id, label: Pack ID}
source:
  sql: SELECT * FROM accounts
fields:
  - {property: pack_name, type: string, column: name, label: Pack, group: spokesync}
associations:
  - {to_object_type: companies, column: account_id}
"""


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("object_type: seat_pack", "object_type: seat_packs"), "is its custom_object.name"),
        (("primary_display_property: pack_name", "primary_display_property: x"), "'x' is not a"),
        (("associated_objects: [companies]", "associated_objects: [deals]"), "associated_objects"),
        (("associated_objects: [companies]", "associated_objects: [cars]"), "name standard"),
        (("  name: seat_pack", "  name: Seat-Pack"), "must be lowercase"),
        (("object_type: seat_pack", "object_type: deals"), "is its custom_object.name"),
    ],
)
def test_custom_object_block_is_checked(
    write_mapping: Callable[[str, str], MappingSpec], edit: tuple[str, str], expected: str
) -> None:
    assert write_mapping("seat_pack", CUSTOM).custom_object is not None
    with pytest.raises(MappingError, match=expected):
        write_mapping("seat_pack", CUSTOM.replace(*edit))
