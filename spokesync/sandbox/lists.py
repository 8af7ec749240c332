"""The Lists API v3 (HubSpot calls lists "segments" in its UI): static lists and their members.

Served as HubSpot's spec and guide describe them (docs/sandbox.md, "Lists"):

- ``POST /crm/v3/lists`` answers **200** ``{"list": …}``; a name is unique across the portal's
  lists, compared without case, and ``GET …/object-type-id/{type}/name/{name}`` finds it the
  same way;
- membership writes (``PUT …/memberships/add|remove|add-and-remove``) only on ``MANUAL`` and
  ``SNAPSHOT`` lists; a ``DYNAMIC`` list answers 400 (HubSpot's exact body is unknown, so the
  message is a module constant). They answer ``recordsIdsAdded`` (the spec's spelling, with the
  extra "s"), ``recordIdsRemoved`` and ``recordIdsMissing``: ids of no live record of the list's
  object type are missing; re-adding a member or removing a non-member is a no-op;
- ``GET …/memberships`` pages by record id ascending, ``limit`` ≤ 250 (default 100), with an
  opaque ``after`` token (not a record id);
- a record deleted in HubSpot leaves every list; a merge leaves the survivor (its new id) in
  every list either record was in; merged-away ids answer as missing on writes. Memberships are
  normalised against the records each time a list is touched, so any way a record goes (API
  archive, GDPR delete, merge) is covered without hooks in the record services.

Lists and memberships live in SQLite (tables ``lists``, ``list_memberships``) and in memory.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from spokesync.sandbox.catalog import ObjectTypeDef
from spokesync.sandbox.errors import ApiError, error_body, not_found, validation_error
from spokesync.sandbox.objects import ObjectService, now_iso

DDL = (
    "CREATE TABLE IF NOT EXISTS lists (list_id INTEGER PRIMARY KEY, definition TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS list_memberships (list_id INTEGER NOT NULL, "
    "record_id INTEGER NOT NULL, added_at TEXT NOT NULL, PRIMARY KEY (list_id, record_id))",
)
TABLES = ("lists", "list_memberships")
PROCESSING_TYPES = ("MANUAL", "SNAPSHOT", "DYNAMIC")
WRITABLE = ("MANUAL", "SNAPSHOT")
MEMBERSHIP_LIMIT_DEFAULT = 100
MEMBERSHIP_LIMIT_MAX = 250
FIRST_LIST_ID = 1
CREATED_BY = "1234567"  # the sandbox app's user
# HubSpot's v3 body for a membership write on a DYNAMIC list was not found in any recorded
# source (v1 said "Can not operate manually on a dynamic list"): keep it in one place.
DYNAMIC_MESSAGE = (
    "List membership endpoints can only be used on MANUAL or SNAPSHOT list processing types; "
    "list {list_id} is DYNAMIC"
)

Result = tuple[int, Any]


@dataclass
class StaticList:
    list_id: int
    name: str
    object_type_id: str
    processing_type: str
    created_at: str
    updated_at: str
    version: int = 1
    deleted_at: str | None = None
    filter_branch: Any = None
    members: dict[int, str] = field(default_factory=dict)  # record id → added at

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "objectTypeId": self.object_type_id,
            "processingType": self.processing_type,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "listVersion": self.version,
            "deletedAt": self.deleted_at,
            "filterBranch": self.filter_branch,
        }

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "listId": str(self.list_id),
            "listVersion": self.version,
            "name": self.name,
            "objectTypeId": self.object_type_id,
            "processingType": self.processing_type,
            "processingStatus": "COMPLETE",
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "createdById": CREATED_BY,
            "updatedById": CREATED_BY,
            "size": len(self.members),
        }
        if self.deleted_at:
            out["deletedAt"] = self.deleted_at
        return out


def _token(record_id: int) -> str:
    """An opaque paging token (clients must not read a record id from it)."""
    return base64.urlsafe_b64encode(f"ils:{record_id}".encode()).decode().rstrip("=")


def _from_token(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, rid = raw.partition(":")
        if prefix != "ils":
            raise ValueError(token)
        return int(rid)
    except ValueError as exc:
        raise validation_error(f"Invalid paging token: {token!r}") from exc


class ListService:
    """Static lists of one sandbox portal (see the module docstring)."""

    def __init__(self, objects: ObjectService) -> None:
        self.objects = objects
        self.store = objects.store
        with self.store.transaction() as db:
            for statement in DDL:
                db.execute(statement)
        self.load()

    # ------------------------------------------------------------ state
    def load(self) -> None:
        self.lists: dict[int, StaticList] = {}
        with self.store.transaction() as db:
            for list_id, definition in db.execute("SELECT list_id, definition FROM lists"):
                d = json.loads(definition)
                self.lists[list_id] = StaticList(
                    list_id,
                    d["name"],
                    d["objectTypeId"],
                    d["processingType"],
                    d["createdAt"],
                    d["updatedAt"],
                    d.get("listVersion", 1),
                    d.get("deletedAt"),
                    d.get("filterBranch"),
                )
            for list_id, rid, added in db.execute(
                "SELECT list_id, record_id, added_at FROM list_memberships"
            ):
                if list_id in self.lists:
                    self.lists[list_id].members[rid] = added

    def reset(self) -> None:
        with self.store.transaction() as db:
            for table in TABLES:
                db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        self.lists = {}

    def _save(self, db: sqlite3.Connection, lst: StaticList) -> None:
        db.execute(
            "INSERT OR REPLACE INTO lists VALUES (?, ?)",
            (lst.list_id, json.dumps(lst.definition())),
        )

    def _live(self, type_id: str, rid: int) -> bool:
        return self.store.is_live(type_id, rid)

    def _normalise(self, lst: StaticList) -> None:
        """Members follow their records: deleted ones leave, merged ones become the survivor."""
        changed: dict[int, str | None] = {}  # record id → added at (None: removed)
        for rid, added in list(lst.members.items()):
            if self._live(lst.object_type_id, rid):
                continue
            del lst.members[rid]
            changed[rid] = None
            survivor = self.store.survivor_id(lst.object_type_id, rid)
            if survivor is not None and self._live(lst.object_type_id, survivor):
                kept = min(added, lst.members.get(survivor, added))
                lst.members[survivor] = kept
                changed[survivor] = kept
        if not changed:
            return
        with self.store.transaction() as db:
            for rid, added in changed.items():
                if added is None:
                    db.execute(
                        "DELETE FROM list_memberships WHERE list_id = ? AND record_id = ?",
                        (lst.list_id, rid),
                    )
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO list_memberships VALUES (?, ?, ?)",
                        (lst.list_id, rid, added),
                    )

    def _list(self, list_id: str) -> StaticList:
        try:
            lst = self.lists.get(int(str(list_id)))
        except ValueError:
            lst = None
        if lst is None or lst.deleted_at is not None:
            raise not_found()
        self._normalise(lst)
        return lst

    def _object_type(self, raw: Any) -> ObjectTypeDef:
        ot = self.store.resolve_type(str(raw or ""))
        if ot is None:
            raise validation_error(f"Unable to infer object type from: {raw}")
        return ot

    # ------------------------------------------------------------ lists
    def create(self, body: Any) -> Result:
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        missing = [k for k in ("name", "objectTypeId", "processingType") if not body.get(k)]
        if missing:
            raise validation_error(
                "Invalid input JSON on line 1, column 1: Some required fields were not set: "
                f"[{', '.join(missing)}]"
            )
        name = str(body["name"]).strip()
        ptype = str(body["processingType"])
        if ptype not in PROCESSING_TYPES:
            raise validation_error(
                f"Invalid processingType {ptype!r}: expected one of {', '.join(PROCESSING_TYPES)}"
            )
        ot = self._object_type(body["objectTypeId"])
        taken = self._by_name(name)
        if taken is not None:  # HubSpot's body for this was not found; the rule is the spec's
            raise ApiError(
                400,
                error_body(
                    f"A list named {taken.name!r} already exists (listId {taken.list_id}): list "
                    "names must be unique across all lists in the portal",
                    "VALIDATION_ERROR",
                ),
            )
        stamp = now_iso()
        list_id = max([FIRST_LIST_ID - 1, *self.lists]) + 1
        lst = StaticList(list_id, name, ot.type_id, ptype, stamp, stamp)
        lst.filter_branch = body.get("filterBranch")
        with self.store.transaction() as db:
            self._save(db, lst)
        self.lists[list_id] = lst
        return 200, {"list": lst.to_json()}

    def _by_name(self, name: str) -> StaticList | None:
        key = name.strip().casefold()
        for lst in self.lists.values():
            if lst.deleted_at is None and lst.name.casefold() == key:
                return lst
        return None

    def get(self, list_id: str) -> Result:
        return 200, {"list": self._list(list_id).to_json()}

    def by_name(self, object_type: str, name: str) -> Result:
        ot = self._object_type(object_type)
        lst = self._by_name(name)
        if lst is None or lst.object_type_id != ot.type_id:
            raise not_found()
        self._normalise(lst)
        return 200, {"list": lst.to_json()}

    def delete(self, list_id: str) -> Result:
        lst = self._list(list_id)
        lst.deleted_at = now_iso()
        with self.store.transaction() as db:
            self._save(db, lst)
        return 204, None

    def restore(self, list_id: str) -> Result:
        try:
            lst = self.lists.get(int(str(list_id)))
        except ValueError:
            lst = None
        if lst is None or lst.deleted_at is None:
            raise not_found()
        if self._by_name(lst.name) is not None:
            raise validation_error(f"A list named {lst.name!r} already exists")
        lst.deleted_at = None
        with self.store.transaction() as db:
            self._save(db, lst)
        return 204, None

    # ------------------------------------------------------------ memberships
    def _ids(self, raw: Any, what: str) -> list[str]:
        if not isinstance(raw, list) or not all(isinstance(v, str | int) for v in raw):
            raise validation_error(
                f"Invalid input JSON on line 1, column 1: {what} must be an array of record ids"
            )
        return [str(v) for v in raw]

    def _writable(self, list_id: str) -> StaticList:
        lst = self._list(list_id)
        if lst.processing_type not in WRITABLE:
            raise validation_error(DYNAMIC_MESSAGE.format(list_id=lst.list_id))
        return lst

    def _apply(self, lst: StaticList, add: list[str], remove: list[str]) -> Result:
        stamp = now_iso()
        added: list[str] = []
        removed: list[str] = []
        missing: list[str] = []
        inserts: list[tuple[int, int, str]] = []
        deletes: list[tuple[int, int]] = []
        for raw in dict.fromkeys(remove):
            rid = int(raw) if raw.isdigit() else None
            if rid is None or not self._live(lst.object_type_id, rid):
                missing.append(raw)
            elif rid in lst.members:
                del lst.members[rid]
                removed.append(raw)
                deletes.append((lst.list_id, rid))
        for raw in dict.fromkeys(add):
            rid = int(raw) if raw.isdigit() else None
            if rid is None or not self._live(lst.object_type_id, rid):
                if raw not in missing:
                    missing.append(raw)
            elif rid not in lst.members:
                lst.members[rid] = stamp
                added.append(raw)
                inserts.append((lst.list_id, rid, stamp))
        if inserts or deletes:
            lst.updated_at = stamp
            with self.store.transaction() as db:
                db.executemany(
                    "DELETE FROM list_memberships WHERE list_id = ? AND record_id = ?", deletes
                )
                db.executemany("INSERT OR REPLACE INTO list_memberships VALUES (?, ?, ?)", inserts)
                self._save(db, lst)
        return 200, {
            "recordsIdsAdded": added,
            "recordIdsRemoved": removed,
            "recordIdsMissing": missing,
        }

    def add(self, list_id: str, body: Any) -> Result:
        return self._apply(self._writable(list_id), self._ids(body, "the body"), [])

    def remove(self, list_id: str, body: Any) -> Result:
        return self._apply(self._writable(list_id), [], self._ids(body, "the body"))

    def add_and_remove(self, list_id: str, body: Any) -> Result:
        lst = self._writable(list_id)
        if (
            not isinstance(body, dict)
            or "recordIdsToAdd" not in body
            or ("recordIdsToRemove" not in body)
        ):
            raise validation_error(
                "Invalid input JSON on line 1, column 1: Some required fields were not set: "
                "[recordIdsToAdd, recordIdsToRemove]"
            )
        return self._apply(
            lst,
            self._ids(body["recordIdsToAdd"], "recordIdsToAdd"),
            self._ids(body["recordIdsToRemove"], "recordIdsToRemove"),
        )

    def remove_all(self, list_id: str) -> Result:
        lst = self._writable(list_id)
        lst.members.clear()
        lst.updated_at = now_iso()
        with self.store.transaction() as db:
            db.execute("DELETE FROM list_memberships WHERE list_id = ?", (lst.list_id,))
            self._save(db, lst)
        return 204, None

    def memberships(self, list_id: str, query: dict[str, Any], base_url: str) -> Result:
        lst = self._list(list_id)
        raw_limit = query.get("limit")
        try:
            limit = int(raw_limit) if raw_limit not in (None, "") else MEMBERSHIP_LIMIT_DEFAULT
        except ValueError as exc:
            raise validation_error(f"limit must be an integer, not {raw_limit!r}") from exc
        if not 1 <= limit <= MEMBERSHIP_LIMIT_MAX:
            raise validation_error(
                f"limit must be between 1 and {MEMBERSHIP_LIMIT_MAX}, not {limit}"
            )
        after = query.get("after")
        ids = sorted(lst.members)
        if after:
            start = _from_token(str(after))
            ids = [i for i in ids if i > start]
        page, rest = ids[:limit], ids[limit:]
        body: dict[str, Any] = {
            "results": [{"recordId": str(i), "membershipTimestamp": lst.members[i]} for i in page],
            "total": len(lst.members),
        }
        if rest:
            token = _token(page[-1])
            body["paging"] = {
                "next": {
                    "after": token,
                    "link": f"{base_url}/crm/v3/lists/{lst.list_id}/memberships"
                    f"?limit={limit}&after={token}",
                }
            }
        return 200, body

    def record_memberships(self, object_type: str, record_id: str) -> Result:
        ot = self._object_type(object_type)
        try:
            rid = int(record_id)
        except ValueError as exc:
            raise not_found() from exc
        out = []
        for lst in sorted(self.lists.values(), key=lambda x: x.list_id):
            if lst.deleted_at is not None or lst.object_type_id != ot.type_id:
                continue
            self._normalise(lst)
            if rid in lst.members:
                out.append(
                    {
                        "listId": str(lst.list_id),
                        "listVersion": lst.version,
                        "firstAddedTimestamp": lst.members[rid],
                        "lastAddedTimestamp": lst.members[rid],
                        "isPublicList": True,
                    }
                )
        return 200, {"results": out, "total": len(out)}


def required_scopes(access: str) -> list[list[str]]:
    """Each inner list is an any-of set; every set must hold (HubSpot's Lists spec)."""
    if access == "lists_read":
        return [["crm.lists.read"]]
    if access == "lists_create":
        return [["crm.lists.write"]]
    # membership writes: crm.lists.write with crm.lists.read (or the CMS access-group scope)
    return [["crm.lists.read"], ["crm.lists.write", "cms.membership.access_groups.write"]]


def routes(service: ListService) -> list[tuple[str, str, Any, str, tuple[str, ...]]]:
    """The route table rows the app registers (method, template, handler, access, types)."""
    s = service
    base = "/crm/v3/lists"
    one = f"{base}/{{list_id}}"
    return [
        ("POST", base, lambda c: s.create(c.body), "lists_create", ()),
        (
            "GET",
            f"{base}/object-type-id/{{list_type}}/name/{{list_name}}",
            lambda c: s.by_name(c.params["list_type"], c.params["list_name"]),
            "lists_read",
            (),
        ),
        (
            "GET",
            f"{base}/records/{{list_type}}/{{record_id}}/memberships",
            lambda c: s.record_memberships(c.params["list_type"], c.params["record_id"]),
            "lists_read",
            (),
        ),
        ("GET", one, lambda c: s.get(c.params["list_id"]), "lists_read", ()),
        ("DELETE", one, lambda c: s.delete(c.params["list_id"]), "lists_create", ()),
        ("PUT", f"{one}/restore", lambda c: s.restore(c.params["list_id"]), "lists_create", ()),
        (
            "GET",
            f"{one}/memberships",
            lambda c: s.memberships(c.params["list_id"], c.query, c.base_url),
            "lists_read",
            (),
        ),
        (
            "DELETE",
            f"{one}/memberships",
            lambda c: s.remove_all(c.params["list_id"]),
            "lists_write",
            (),
        ),
        (
            "PUT",
            f"{one}/memberships/add",
            lambda c: s.add(c.params["list_id"], c.body),
            "lists_write",
            (),
        ),
        (
            "PUT",
            f"{one}/memberships/remove",
            lambda c: s.remove(c.params["list_id"], c.body),
            "lists_write",
            (),
        ),
        (
            "PUT",
            f"{one}/memberships/add-and-remove",
            lambda c: s.add_and_remove(c.params["list_id"], c.body),
            "lists_write",
            (),
        ),
    ]


LIST_ACCESS = ("lists_read", "lists_create", "lists_write")
WRITE_ACCESS = ("lists_create", "lists_write")

__all__ = ["DDL", "TABLES", "ListService", "required_scopes", "routes"]
