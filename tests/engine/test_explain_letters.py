"""`spokesync explain` on records with dead letters: parked only for a permanent rejection of
exactly the planned values; a transient failure is "retrying (attempt N)"."""

from __future__ import annotations

from pathlib import Path

from spokesync.changes import DeadLetter
from spokesync.explain import explain
from spokesync.mapping import MappingSpec
from spokesync.settings import Settings
from spokesync.state import StateStore
from tests.engine.conftest import AS_OF, Warehouse, account


def _settings(tmp_path: Path) -> Settings:
    return Settings.from_env(environ={}, home=tmp_path, env="test")


def _letter(ext: str, category: str, attempts: int, **props: str) -> DeadLetter:
    payload = {"id": ext, "idProperty": "spokesync_account_id", "properties": props}
    return DeadLetter("companies", ext, payload, category, "boom", "cid-1", attempts, AS_OF)


def test_parked_only_for_permanent_letters_with_the_same_payload(
    tmp_path: Path, accounts_mapping: MappingSpec
) -> None:
    settings = _settings(tmp_path)
    Warehouse(settings.warehouse_dir).write("accounts", [account(1), account(2), account(3)])
    planned = {
        "spokesync_account_id": "A0001",
        "name": "Account 1",
        "domain": "acct1.example.com",
        "numberofemployees": "10",
        "country": "DE",
        "industry": "COMPUTER_SOFTWARE",
        "lifecyclestage": "customer",
    }
    a2 = {**planned, "spokesync_account_id": "A0002", "name": "Account 2"}
    a2 |= {"domain": "acct2.example.com", "numberofemployees": "20"}
    with StateStore(settings.state_db, [accounts_mapping]) as store:
        store.record_dead_letters(
            [
                _letter("A0001", "VALIDATION_ERROR", 1, **planned),  # exactly the plan: parked
                _letter("A0002", "RETRIES_EXHAUSTED", 2, **a2),  # transient: sent again
                _letter("A0003", "VALIDATION_ERROR", 1, name="Old name"),  # values changed
            ],
            "run-1",
        )

    one = explain(settings, accounts_mapping, "A0001", AS_OF)
    assert {p.property: p.decision for p in one.properties}["name"] == (
        "parked dead letter (VALIDATION_ERROR: HubSpot rejected exactly these values; not sent "
        "until the desired values change or `spokesync state replay`)"
    )
    assert one.dead_letters == [
        "parked (HubSpot rejected it for a permanent reason): VALIDATION_ERROR: boom"
    ]

    two = explain(settings, accounts_mapping, "A0002", AS_OF)
    decisions = {p.property: p.decision for p in two.properties}
    assert decisions["name"] == "send: Account 2 (retrying (attempt 3) after RETRIES_EXHAUSTED)"
    assert not any("parked" in d for d in decisions.values())
    assert two.dead_letters == ["retrying (attempt 3; 2 failed so far): RETRIES_EXHAUSTED: boom"]
    assert "  dead letter: retrying (attempt 3; 2 failed so far)" in two.to_text()

    three = explain(settings, accounts_mapping, "A0003", AS_OF)
    assert {p.property: p.decision for p in three.properties}["name"] == (
        "send: Account 3 (the desired values changed since HubSpot rejected the record: sent again)"
    )
