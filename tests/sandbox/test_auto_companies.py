"""The "Automatically create and associate companies with contacts" portal setting."""

from __future__ import annotations

from pathlib import Path

from tests.sandbox.conftest import Api, make_api


def _on(tmp_path: Path) -> Api:
    api = make_api(tmp_path)
    response = api.http.patch("/__sandbox/config", json={"auto_create_companies": True})
    assert response.status_code == 200 and response.json()["auto_create_companies"] is True
    return api


def _contact(api: Api, **props: str) -> str:
    status, body = api.post("/crm/v3/objects/contacts", {"properties": props})
    assert status == 201, body
    return str(body["id"])


def _companies_of(api: Api, contact: str) -> dict[str, list[int]]:
    [record] = [c for c in api.export("contacts") if c["id"] == contact]
    return {t["id"]: t["types"] for t in record["associations"].get("companies", [])}


def test_off_creates_nothing(tmp_path: Path) -> None:
    api = make_api(tmp_path, auto_create_companies=False)
    _contact(api, email="ada@acme.io")
    assert api.export("companies") == []


def test_on_creates_one_company_per_domain_and_associates(tmp_path: Path) -> None:
    api = _on(tmp_path)
    first = _contact(api, email="Ada@Acme.io")
    second = _contact(api, email="grace@acme.io")
    sub = _contact(api, email="linus@eu.acme.io")
    companies = api.export("companies")
    assert [(c["properties"]["domain"], c["properties"]["name"]) for c in companies] == [
        ("acme.io", "Acme"),
        ("eu.acme.io", "Eu"),
    ]
    acme, eu = companies[0]["id"], companies[1]["id"]
    assert _companies_of(api, first) == {acme: [1, 279]}
    assert _companies_of(api, second) == {acme: [1, 279]}
    assert _companies_of(api, sub) == {eu: [1, 279]}
    _, body = api.get(f"/crm/v3/objects/companies/{acme}?propertiesWithHistory=domain")
    assert body["propertiesWithHistory"]["domain"][0]["sourceType"] == "AUTO_ASSOCIATE_BY_DOMAIN"
    stats = api.http.get("/__sandbox/stats").json()
    assert stats["records"]["by_type"]["companies"]["created"] == 2


def test_existing_company_is_used_and_own_associations_stand(tmp_path: Path) -> None:
    api = _on(tmp_path)
    _, older = api.post("/crm/v3/objects/companies", {"properties": {"domain": "www.Kite.co.uk"}})
    _, newer = api.post("/crm/v3/objects/companies", {"properties": {"domain": "kite.co.uk"}})
    _, other = api.post("/crm/v3/objects/companies", {"properties": {"domain": "other.com"}})
    rid = _contact(api, email="a@kite.co.uk")
    assert _companies_of(api, rid) == {older["id"]: [1, 279]}  # the oldest of the two
    status, body = api.post(
        "/crm/v3/objects/contacts",
        {
            "properties": {"email": "b@kite.co.uk"},
            "associations": [
                {
                    "to": {"id": other["id"]},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                }
            ],
        },
    )
    assert status == 201
    assert _companies_of(api, body["id"]) == {other["id"]: [279]}
    assert len(api.export("companies")) == 3
    assert newer["id"] not in _companies_of(api, rid)


def test_freemail_uses_the_website_and_batch_upsert_applies(tmp_path: Path) -> None:
    api = _on(tmp_path)
    lead = _contact(api, email="someone@gmail.com")
    assert _companies_of(api, lead) == {}
    site = _contact(api, email="owner@gmail.com", website="https://www.shop.de/about")
    [shop] = api.export("companies")
    assert shop["properties"]["domain"] == "shop.de"
    assert _companies_of(api, site) == {shop["id"]: [1, 279]}
    status, _ = api.post(
        "/crm/v3/objects/contacts/batch/upsert",
        {"inputs": [{"id": "x@new.io", "idProperty": "email", "properties": {}}]},
    )
    assert status == 200
    assert [c["properties"]["domain"] for c in api.export("companies")] == ["shop.de", "new.io"]
