"""HubSpot's Lists API v3 (static lists, "segments" in HubSpot's UI): find or create a list by
name, read its members, add and remove members.

- Every call goes through :meth:`HubSpotClient.request`, so 5xx, 429, 423 and dropped
  connections are retried and raise the one error tree (``RetriesExhausted`` transient,
  ``HubSpotAuthError`` / ``DailyLimitReached`` / :class:`ListConfigError` terminal).
- Membership writes are idempotent in HubSpot (re-adding a member, removing a non-member are
  no-ops), so retrying one that may have been applied is safe.
- Creating is not idempotent by itself, but list names are unique in a portal: a create whose
  answer was lost is never sent blindly again — the list is read back by name first.
- Membership answers carry ``recordsIdsAdded`` (the spec's spelling), ``recordIdsRemoved`` and
  ``recordIdsMissing``; ``recordIdsAdded`` (an older reference page's spelling) is read too. A
  2xx with none of them confirms nothing (:class:`MembershipAnswer.confirmed` is False).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from spokesync.hubspot.client import ApiResponse, HubSpotClient
from spokesync.hubspot.errors import HubSpotConfigError, HubSpotError, RetriesExhausted
from spokesync.hubspot.retry import RetryPolicy

OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "tickets": "0-5"}
MEMBERSHIP_PAGE = 250  # HubSpot's maximum `limit` for GET …/memberships
ONCE = RetryPolicy(max_attempts=1)
MANAGEABLE = ("MANUAL",)


class ListConfigError(HubSpotConfigError):
    """The list cannot be managed as it is (DYNAMIC, another object type, name taken): terminal."""


@dataclass(frozen=True, slots=True)
class HubSpotList:
    list_id: str
    name: str
    object_type_id: str
    processing_type: str
    size: int | None

    @classmethod
    def from_json(cls, body: Any) -> HubSpotList:
        lst = body.get("list") if isinstance(body, dict) else None
        if not isinstance(lst, dict) or not lst.get("listId"):
            raise HubSpotError(f"HubSpot answered a list request without a list: {body!r:.200}")
        size = lst.get("size")
        return cls(
            str(lst["listId"]),
            str(lst.get("name") or ""),
            str(lst.get("objectTypeId") or ""),
            str(lst.get("processingType") or ""),
            int(size) if isinstance(size, int | str) and str(size).isdigit() else None,
        )


@dataclass
class MembershipAnswer:
    """One membership write's answer."""

    status_code: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    confirmed: bool = False  # the answer had the membership fields
    correlation_id: str | None = None

    @classmethod
    def from_response(cls, response: ApiResponse) -> MembershipAnswer:
        body = response.body if isinstance(response.body, dict) else {}
        keys = ("recordsIdsAdded", "recordIdsAdded", "recordIdsRemoved", "recordIdsMissing")
        confirmed = response.ok and any(isinstance(body.get(k), list) for k in keys)

        def ids(*names: str) -> list[str]:
            out: list[str] = []
            for n in names:
                out += [str(v) for v in body.get(n) or () if v is not None]
            return list(dict.fromkeys(out))

        return cls(
            response.status_code,
            ids("recordsIdsAdded", "recordIdsAdded"),
            ids("recordIdsRemoved"),
            ids("recordIdsMissing"),
            confirmed,
            response.correlation_id,
        )


def object_type_id(object_type: str) -> str:
    try:
        return OBJECT_TYPE_IDS[object_type]
    except KeyError:
        raise ListConfigError(f"lists of {object_type!r} are not supported") from None


def _fail(response: ApiResponse, what: str) -> HubSpotError:
    err = response.error()
    return HubSpotError(
        f"HubSpot answered HTTP {response.status_code} to {what}: {err.short()} "
        f"(correlation id {response.correlation_id})",
        err,
    )


async def get_list(client: HubSpotClient, list_id: str, *, request_id: str) -> HubSpotList | None:
    """The list by id; None when HubSpot has no such (live) list."""
    response = await client.request(
        "GET", f"/crm/v3/lists/{quote(list_id, safe='')}", request_id=request_id
    )
    if response.status_code == 404:
        return None
    if not response.ok:
        raise _fail(response, f"reading list {list_id}")
    return HubSpotList.from_json(response.body)


async def find_list(
    client: HubSpotClient, object_type: str, name: str, *, request_id: str
) -> HubSpotList | None:
    """The list named ``name`` (HubSpot compares names without case); None when absent."""
    path = f"/crm/v3/lists/object-type-id/{object_type_id(object_type)}/name/{quote(name, safe='')}"
    response = await client.request("GET", path, request_id=request_id)
    if response.status_code == 404:
        return None
    if not response.ok:
        raise _fail(response, f"finding list {name!r}")
    return HubSpotList.from_json(response.body)


def check_manageable(lst: HubSpotList, name: str, object_type: str) -> HubSpotList:
    """Refuse, before any membership call, a list spokesync must not manage."""
    if lst.object_type_id != object_type_id(object_type):
        raise ListConfigError(
            f"HubSpot list {lst.name!r} (id {lst.list_id}) holds object type "
            f"{lst.object_type_id}, not {object_type}: rename the mapping's list or that list"
        )
    if lst.processing_type not in MANAGEABLE:
        raise ListConfigError(
            f"HubSpot list {lst.name!r} (id {lst.list_id}) is {lst.processing_type}, not MANUAL: "
            "spokesync only manages static (MANUAL) lists; HubSpot computes the members of "
            "DYNAMIC lists itself. Give the mapping another list name, or delete that list"
        )
    return lst


async def ensure_list(
    client: HubSpotClient,
    name: str,
    object_type: str,
    *,
    known_id: str | None,
    run_id: str,
) -> tuple[HubSpotList, bool]:
    """The MANUAL list ``name``: by the id the state store knows, else by name, else created.
    Returns (list, created now). Never makes a second list of the same name: a create whose
    answer was lost (a dropped connection, a 5xx after applying, an empty 2xx) is followed by a
    read by name, and only a 404 there lets the error stand."""
    if known_id is not None:
        found = await get_list(client, known_id, request_id=f"{run_id}-list-get")
        if found is not None and found.name.casefold() == name.casefold():
            return check_manageable(found, name, object_type), False
    found = await find_list(client, object_type, name, request_id=f"{run_id}-list-find")
    if found is not None:
        return check_manageable(found, name, object_type), False
    body = {"name": name, "objectTypeId": object_type_id(object_type), "processingType": "MANUAL"}
    failure: HubSpotError | None = None
    try:
        response = await client.request(
            "POST",
            "/crm/v3/lists",
            json=body,
            request_id=f"{run_id}-list-create",
            write=True,
            retry=ONCE,
        )
    except RetriesExhausted as exc:  # maybe applied: read back by name below
        failure = exc
    else:
        if response.ok:
            try:
                return check_manageable(HubSpotList.from_json(response.body), name, object_type), (
                    True
                )
            except ListConfigError:
                raise
            except HubSpotError as exc:  # an empty 2xx
                failure = exc
        else:
            failure = _fail(response, f"creating list {name!r}")
    found = await find_list(client, object_type, name, request_id=f"{run_id}-list-readback")
    if found is not None:
        return check_manageable(found, name, object_type), True
    if (
        failure.error is not None
        and failure.error.status_code is not None
        and 400 <= failure.error.status_code < 500
    ):
        raise ListConfigError(
            f"HubSpot refused to create list {name!r}: {failure} (a list of another object "
            "type may have this name: list names are unique across a portal)",
            failure.error,
        )
    raise failure


async def read_members(client: HubSpotClient, list_id: str, *, request_id: str) -> list[str]:
    """Every member's record id (pages of 250, HubSpot's maximum; ``after`` is opaque)."""
    out: list[str] = []
    after: str | None = None
    page = 0
    while True:
        page += 1
        params: dict[str, Any] = {"limit": MEMBERSHIP_PAGE}
        if after:
            params["after"] = after
        response = await client.request(
            "GET",
            f"/crm/v3/lists/{quote(list_id, safe='')}/memberships",
            params=params,
            request_id=f"{request_id}-{page}",
        )
        if not response.ok:
            raise _fail(response, f"reading the members of list {list_id}")
        body = response.body
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise RetriesExhausted(
                f"HubSpot answered a page of list {list_id}'s members without results",
                attempts=1,
                status_code=response.status_code,
                correlation_id=response.correlation_id,
            )
        for r in body["results"]:
            rid = r.get("recordId") if isinstance(r, dict) else r  # old SDKs typed plain ids
            if rid is not None:
                out.append(str(rid))
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return list(dict.fromkeys(out))


async def change_members(
    client: HubSpotClient,
    list_id: str,
    add: list[str],
    remove: list[str],
    *,
    request_id: str,
) -> MembershipAnswer:
    """One membership write: ``add`` / ``remove`` alone, or both in one add-and-remove."""
    base = f"/crm/v3/lists/{quote(list_id, safe='')}/memberships"
    if add and remove:
        path, body = f"{base}/add-and-remove", {"recordIdsToAdd": add, "recordIdsToRemove": remove}
    elif add:
        path, body = f"{base}/add", add
    else:
        path, body = f"{base}/remove", remove
    response = await client.request("PUT", path, json=body, request_id=request_id, write=True)
    if not response.ok:
        raise _fail(response, f"changing the members of list {list_id}")
    return MembershipAnswer.from_response(response)
