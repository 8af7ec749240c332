"""Partial failures on every write route, on a scripted HubSpot (MockTransport edge cases).

A 2xx that confirms nothing is a failure; a create whose answer was lost and whose retry meets
HubSpot's 409 ``OBJECT_ALREADY_EXISTS`` is a success once the read-back matches. The same
classes against the real sandbox (drops, drop-after-apply, empty 2xx, 5xx, 429s) are in
tests/e2e/test_fault_routes.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from spokesync.hubspot.associations import LabelArchive, archive_labels, associate
from spokesync.hubspot.client import HubSpotClient
from spokesync.hubspot.properties import (
    NotConfirmed,
    PropertyMismatchError,
    PropertySpec,
    ensure_properties,
)
from spokesync.hubspot.rate_limit import RateLimiter

from .fakes import TOKEN, FakeClock

Handler = Callable[[httpx.Request], httpx.Response]


def run(handler: Handler, coro: Callable[[HubSpotClient], Any]) -> Any:
    async def go() -> Any:
        clock = FakeClock()
        async with HubSpotClient(
            "http://hubspot.test",
            TOKEN,
            transport=httpx.MockTransport(handler),
            limiter=RateLimiter(100, clock=clock, sleep=clock.sleep),
            sleep=clock.sleep,
        ) as client:
            return await coro(client)

    return asyncio.run(go())


EMPTY = {"status": "COMPLETE", "startedAt": "2026-11-01T00:00:00Z", "completedAt": "x"}


def _results(inputs: list[dict]) -> list[dict]:
    return [{"fromObjectId": i["from"]["id"], "toObjectId": i["to"]["id"]} for i in inputs]


def _associate(client: HubSpotClient, pairs: list[tuple[str, str]], **kw: Any) -> Any:
    return associate(
        client,
        from_type="contacts",
        to_type="companies",
        pairs=pairs,
        association_type_id=279,
        run_id="r",
        **kw,
    )


# -- associations batch/create -----------------------------------------------------------------


def test_association_2xx_without_results_is_resent_and_only_confirmed_pairs_count() -> None:
    sent: list[list[str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["inputs"]
        sent.append([i["from"]["id"] for i in inputs])
        if len(sent) == 1:
            return httpx.Response(200, json=EMPTY)  # confirms nothing
        if len(sent) == 2:  # confirms only the first two pairs
            return httpx.Response(201, json={"status": "COMPLETE", "results": _results(inputs[:2])})
        return httpx.Response(201, json={"status": "COMPLETE", "results": _results(inputs)})

    pairs = [(str(i), "9") for i in range(5)]
    report = run(handle, lambda c: _associate(c, pairs))
    assert sent == [["0", "1", "2", "3", "4"], ["0", "1", "2", "3", "4"], ["2", "3", "4"]]
    assert report.confirmed == set(pairs)
    assert (report.pairs_ok, report.unconfirmed, report.calls, report.errors) == (5, 0, 3, [])


@pytest.mark.parametrize(("concurrency", "expected_in_flight"), [(4, 4), (1, 1)])
def test_association_chunks_go_concurrently_up_to_the_limit(
    concurrency: int, expected_in_flight: int
) -> None:
    in_flight, peak, sent = 0, 0, []

    async def handle(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        inputs = json.loads(request.content)["inputs"]
        sent.append(tuple(i["from"]["id"] for i in inputs))
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return httpx.Response(201, json={"status": "COMPLETE", "results": _results(inputs)})

    pairs = [(str(i), "9") for i in range(10)]
    report = run(
        handle,  # type: ignore[arg-type]
        lambda c: _associate(c, pairs, batch_size=2, concurrency=concurrency),
    )
    assert peak == expected_in_flight
    assert sorted(sent) == [("0", "1"), ("2", "3"), ("4", "5"), ("6", "7"), ("8", "9")]
    assert report.confirmed == set(pairs)
    assert (report.pairs_ok, report.calls, report.errors) == (10, 5, [])


def test_association_never_confirmed_is_reported_not_recorded() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=EMPTY)

    report = run(handle, lambda c: _associate(c, [("1", "9"), ("2", "9")]))
    assert len(calls) == 3
    assert report.confirmed == set()
    assert (report.pairs_ok, report.pairs_failed, report.unconfirmed) == (0, 2, 2)
    assert report.errors == [
        "NOT_CONFIRMED: HubSpot answered 2xx without a result for 2 contacts→companies pairs "
        "after 3 sends; the next run sends them again"
    ]


def test_association_207_rejected_pair_is_not_resent_others_confirmed() -> None:
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        inputs = json.loads(request.content)["inputs"]
        calls.append(inputs)
        good = [i for i in inputs if i["from"]["id"] != "2"]
        error = {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": "One or more associations are invalid",
            "context": {"INVALID_OBJECT_IDS": ["2"]},
        }
        return httpx.Response(
            207, json={"status": "COMPLETE", "results": _results(good), "errors": [error]}
        )

    report = run(handle, lambda c: _associate(c, [("1", "9"), ("2", "9"), ("3", "9")]))
    assert len(calls) == 1
    assert report.confirmed == {("1", "9"), ("3", "9")}
    assert report.errors == ["VALIDATION_ERROR: One or more associations are invalid"]


def test_association_results_for_pairs_not_sent_confirm_nothing() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        bogus = [{"fromObjectId": "77", "toObjectId": "9"}]
        return httpx.Response(201, json={"status": "COMPLETE", "results": bogus})

    report = run(handle, lambda c: _associate(c, [("1", "9")], confirm_attempts=2))
    assert report.confirmed == set() and report.unconfirmed == 1


# -- associations batch/labels/archive ---------------------------------------------------------


def test_label_archive_counts_only_its_204() -> None:
    answers = iter([httpx.Response(200, json=EMPTY), httpx.Response(204)])
    calls = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        return next(answers)

    links = [LabelArchive("1", "9", 279, "HUBSPOT_DEFINED")]
    report = run(
        handle,
        lambda c: archive_labels(
            c, from_type="contacts", to_type="companies", links=links, run_id="r"
        ),
    )
    assert len(calls) == 2 and calls[0] == calls[1]
    assert report.confirmed == {("1", "9")} and report.errors == []


def test_label_archive_out_of_retries_keeps_the_link() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"status": "error", "message": "unavailable"})

    links = [LabelArchive("1", "9", 279, "HUBSPOT_DEFINED")]
    report = run(
        handle,
        lambda c: archive_labels(
            c, from_type="contacts", to_type="companies", links=links, run_id="r"
        ),
    )
    assert report.confirmed == set()
    assert len(report.errors) == 1 and "failed after 6 attempts" in report.errors[0]


# -- property and group creates ----------------------------------------------------------------

SPEC = PropertySpec(
    "spokesync_account_id", "string", "text", label="Account ID", unique=True, group="spokesync"
)
PLAN = PropertySpec(
    "spokesync_plan", "enumeration", "select", options=("starter", "growth"), group="spokesync"
)


class LossyPortal:
    """Properties and groups; ``faults`` scripts what happens to each write, in order:
    ``"lost"`` applies it and answers 503 (the client retries: HubSpot then answers 409),
    ``"empty"`` answers 200 without applying, ``None`` behaves."""

    def __init__(self, faults: list[str | None], props: dict[str, dict] | None = None) -> None:
        self.props: dict[str, dict] = dict(props or {})
        self.groups: set[str] = {"companyinformation"}
        self.faults = list(faults)
        self.writes: list[tuple[str, str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else None
        if method == "GET":
            if path.endswith("/groups"):
                return httpx.Response(200, json={"results": [{"name": g} for g in self.groups]})
            if "/groups/" in path:
                name = path.rsplit("/", 1)[1]
                return httpx.Response(200 if name in self.groups else 404, json={"name": name})
            if path.endswith("/companies"):
                return httpx.Response(200, json={"results": list(self.props.values())})
            name = path.rsplit("/", 1)[1]
            if name in self.props:
                return httpx.Response(200, json=self.props[name])
            return httpx.Response(404, json={"status": "error", "message": "not found"})
        self.writes.append((method, path))
        fault = self.faults.pop(0) if self.faults else None
        if fault == "empty":
            return httpx.Response(200, json=EMPTY)
        is_group = path.endswith("/groups")
        name = path.rsplit("/", 1)[1] if method == "PATCH" else body["name"]
        exists = name in (self.groups if is_group else self.props)
        if method == "POST" and exists:
            return httpx.Response(
                409,
                json={
                    "status": "error",
                    "message": f"Property named '{name}' already exists.",
                    "category": "OBJECT_ALREADY_EXISTS",
                },
            )
        if is_group:
            self.groups.add(name)
            answer = {"name": name, "label": body["label"]}
        elif method == "PATCH":
            self.props[name] = {**self.props[name], **body}
            answer = self.props[name]
        else:
            self.props[name] = body
            answer = body
        if fault == "lost":
            return httpx.Response(503, json={"status": "error", "message": "unavailable"})
        return httpx.Response(201 if method == "POST" else 200, json=answer)


def ensure(portal: LossyPortal, specs: list[PropertySpec]) -> Any:
    return run(portal.handle, lambda c: ensure_properties(c, specs, "companies"))


def test_property_create_answer_lost_then_409_is_a_success_after_read_back() -> None:
    # the group create is lost (its retry meets 409), then the property create is lost too
    portal = LossyPortal(["lost", None, "lost", None])
    report = ensure(portal, [SPEC])
    assert report.created == ["spokesync_account_id"] and report.groups_created == ["spokesync"]
    assert portal.props["spokesync_account_id"]["hasUniqueValue"] is True
    # each create: the lost one, its retry (409) — and nothing else written
    assert [m for m, _ in portal.writes] == ["POST"] * 4


def test_property_create_409_for_a_different_property_stops_naming_it() -> None:
    other = {"name": "spokesync_account_id", "type": "number", "fieldType": "number"}
    portal = LossyPortal([], props={})
    portal.groups.add("spokesync")

    def create_then_someone_else(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":  # someone made it between our list and our create
            portal.props["spokesync_account_id"] = other
        return portal.handle(request)

    with pytest.raises(PropertyMismatchError, match="HubSpot has type 'number'"):
        run(create_then_someone_else, lambda c: ensure_properties(c, [SPEC], "companies"))


def test_property_create_empty_2xx_is_resent_until_it_exists() -> None:
    portal = LossyPortal([None, "empty", None])  # group ok, property: empty, then ok
    report = ensure(portal, [SPEC])
    assert report.created == ["spokesync_account_id"]
    assert "spokesync_account_id" in portal.props
    assert len(portal.writes) == 3


def test_property_create_never_confirmed_raises_not_confirmed() -> None:
    portal = LossyPortal([None, "empty", "empty", "empty"])
    with pytest.raises(NotConfirmed, match="companies.spokesync_account_id 3 times"):
        ensure(portal, [SPEC])


def test_group_create_lost_then_409_and_empty_2xx_are_confirmed_by_read_back() -> None:
    portal = LossyPortal(["empty", "lost", None])  # group: empty; re-sent: lost → retry → 409
    report = ensure(portal, [SPEC])
    assert report.groups_created == ["spokesync"] and "spokesync" in portal.groups
    assert "spokesync_account_id" in portal.props


def test_option_update_empty_2xx_is_resent() -> None:
    current = {
        "name": "spokesync_plan",
        "type": "enumeration",
        "fieldType": "select",
        "options": [{"label": "starter", "value": "starter"}],
    }
    portal = LossyPortal(["empty"], props={"spokesync_plan": current})
    report = ensure(portal, [PLAN])
    assert report.options_added == {"spokesync_plan": ["growth"]}
    assert [o["value"] for o in portal.props["spokesync_plan"]["options"]] == ["starter", "growth"]
    assert [m for m, _ in portal.writes] == ["PATCH", "PATCH"]


# -- list reads (full refresh) -----------------------------------------------------------------


def test_a_page_answered_2xx_without_results_is_read_again_never_taken_as_the_end() -> None:
    pages = iter(
        [
            httpx.Response(
                200, json={"results": [{"id": "1"}], "paging": {"next": {"after": "1"}}}
            ),
            httpx.Response(200, json=EMPTY),  # not an empty page: no results list at all
            httpx.Response(200, json={"results": [{"id": "2"}]}),
        ]
    )

    async def read(client: HubSpotClient) -> list[str]:
        return [r["id"] async for r in client.iter_objects("companies", [], request_id="r")]

    assert run(lambda request: next(pages), read) == ["1", "2"]


def test_a_page_never_answered_with_results_stops_the_read() -> None:
    from spokesync.hubspot.errors import HubSpotError

    async def read(client: HubSpotClient) -> list[str]:
        return [r["id"] async for r in client.iter_objects("companies", [], request_id="r")]

    with pytest.raises(HubSpotError, match="without results to r-p1 \\(companies page\\) 3 times"):
        run(lambda request: httpx.Response(200, json=EMPTY), read)
