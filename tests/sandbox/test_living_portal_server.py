"""A real sandbox server on a seeded portal: what an incremental refresh sees after people edit
and merge records (the search-by-modified-date rules of a real HubSpot portal)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx

from spokesync.sandbox.launcher import SandboxProcess


def _ms(iso: str) -> str:
    return str(int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000))


def test_incremental_search_finds_exactly_what_people_changed(tmp_path: Path) -> None:
    spec = "accounts=40,companies=0.8,contacts=0.5,duplicates=0.2,merged=0.1,edited=0.2"
    with SandboxProcess(tmp_path / "s.sqlite", extra_args=["--seed-portal", spec]) as sb:
        manifest = sb.seed_manifest()
        api = httpx.Client(
            base_url=sb.base_url, headers={"Authorization": f"Bearer {sb.token}"}, timeout=10
        )
        companies = sb.export("companies")
        # every seeded record was modified before the warehouse's first day
        assert max(c["updatedAt"] for c in companies) < "2026-01-01"
        cursor = max(c["properties"]["hs_lastmodifieddate"] for c in companies)
        edited_id = manifest["companies"]["matching"][0]
        merged = manifest["companies"]["duplicated_domains"][0]["ids"]
        sb.edit_as_person("companies", edited_id, {"name": "Renamed By Sales"})
        response = api.post(
            "/crm/v3/objects/companies/merge",
            json={"primaryObjectId": merged[0], "objectIdToMerge": merged[1]},
        )
        assert response.status_code == 200
        survivor = response.json()["id"]
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": "hs_lastmodifieddate",
                            "operator": "GT",
                            "value": _ms(cursor),
                        }
                    ]
                }
            ],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["name", "domain", "hs_merged_object_ids"],
            "limit": 200,
        }
        found = api.post("/crm/v3/objects/companies/search", json=body).json()
        assert [r["id"] for r in found["results"]] == [edited_id, survivor]
        assert found["total"] == 2
        assert found["results"][0]["properties"]["name"] == "Renamed By Sales"
        assert found["results"][1]["properties"]["hs_merged_object_ids"] == ";".join(sorted(merged))
        read = api.get(
            f"/crm/v3/objects/companies/{edited_id}",
            params={"propertiesWithHistory": "name"},
        ).json()
        assert read["propertiesWithHistory"]["name"][0]["sourceType"] == "CRM_UI"
        # a page past the 10,000-result cap is a 400, as in HubSpot
        too_far = api.post("/crm/v3/objects/companies/search", json={**body, "after": "9900"})
        assert too_far.status_code == 400
        api.close()
