"""``POST /crm/v3/objects/{type}/search``: filter groups (AND within, OR across), one sort,
integer ``after`` paging, and HubSpot's limits (reference §1.4).

Paging through one query asks the same question again with a larger ``after``: the sorted hits
of the last few questions are kept while the portal does not change (``Store.version``), so
page n costs its page, not a scan of every record. A question that bounds a date or number
property (an incremental read's ``lastmodifieddate GTE t``, restarted with a new ``t`` at each
10,000-result cap, or a count over one stretch of time) is answered from a sorted index of
that property, built once per change of that object's records (a push of companies leaves the
contacts' index): its records are a slice found by bisection, not a scan and a sort of the
whole object, as HubSpot answers such a page in about constant time."""

from __future__ import annotations

import bisect
import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from spokesync.sandbox.catalog import ObjectTypeDef, PropertyDef
from spokesync.sandbox.errors import validation_error
from spokesync.sandbox.objects import ObjectService
from spokesync.sandbox.store import Record
from spokesync.sandbox.validation import parse_moment

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
DEFAULT_LIMIT = 10
MAX_RESULTS = 10_000
MAX_BODY_CHARS = 3_000
CACHED_QUERIES = 8
RANGE_OPERATORS = {"EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"}
OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}


def _comparable(prop: PropertyDef | None, value: Any) -> Any:
    """A value in the property's order: numbers and moments compare numerically."""
    text = "" if value is None else str(value)
    if prop is not None and prop.type == "number":
        try:
            return Decimal(text)
        except InvalidOperation:
            return None
    if prop is not None and prop.type in ("date", "datetime"):
        moment = parse_moment(text)
        return None if moment is None else moment.timestamp()
    if prop is not None and prop.type == "enumeration":
        return text  # enumerations are case-sensitive
    return text.lower()


def _token_match(value: str, pattern: str) -> bool:
    regex = re.escape(pattern.lower()).replace(r"\*", ".*")
    return any(
        re.fullmatch(regex, tok) for tok in re.split(r"[\s@.,;]+", value.lower()) + [value.lower()]
    )


class SearchService:
    def __init__(self, objects: ObjectService) -> None:
        self.objects = objects
        # (type id, question) -> (store version, ids of the hits in order)
        self._hits: OrderedDict[tuple[str, bytes], tuple[int, Sequence[int]]] = OrderedDict()
        # (type id, property) -> ((type's records version, properties version), sort keys,
        # record ids in key order)
        self._index: dict[tuple[str, str], tuple[tuple[int, int], list[Any], list[int]]] = {}

    def _check(self, body: dict[str, Any]) -> None:
        groups = body.get("filterGroups") or []
        if len(groups) > MAX_GROUPS:
            raise validation_error(
                f"Too many filter groups: {len(groups)}. At most {MAX_GROUPS} filterGroups are allowed."
            )
        total = 0
        for g in groups:
            filters = (g or {}).get("filters") or []
            if len(filters) > MAX_FILTERS_PER_GROUP:
                raise validation_error(
                    f"Too many filters in a filter group: {len(filters)}. At most "
                    f"{MAX_FILTERS_PER_GROUP} filters are allowed in a group."
                )
            total += len(filters)
            for f in filters:
                if f.get("operator") not in OPERATORS:
                    raise validation_error(f"Invalid operator: {f.get('operator')}")
                if not f.get("propertyName"):
                    raise validation_error("Some required fields were not set: [propertyName]")
        if total > MAX_FILTERS:
            raise validation_error(
                f"Too many filters: {total}. At most {MAX_FILTERS} filters are allowed in total."
            )
        if len(body.get("sorts") or []) > 1:
            raise validation_error("Only one sort is allowed in a search request.")

    def _matches(self, ot: ObjectTypeDef, rec: Record, f: dict[str, Any]) -> bool:
        name = f["propertyName"]
        op = f["operator"]
        if name.startswith("associations."):
            target = self.objects.store.resolve_type(name.split(".", 1)[1])
            linked: set[str] = set()
            if target is not None:
                linked = {
                    str(i)
                    for i in self.objects.store.associations.target_ids(
                        ot.type_id, rec.id, target.type_id
                    )
                }
            if op == "EQ":
                return str(f.get("value")) in linked
            if op == "IN":
                return bool(linked & {str(v) for v in f.get("values") or []})
            if op == "HAS_PROPERTY":
                return bool(linked)
            if op == "NOT_HAS_PROPERTY":
                return not linked
            return str(f.get("value")) not in linked
        prop = self.objects.store.properties.get(ot.type_id, {}).get(name)
        raw = rec.properties.get(name)
        if name == "hs_object_id":
            raw = str(rec.id)
        if op == "HAS_PROPERTY":
            return bool(raw)
        if op == "NOT_HAS_PROPERTY":
            return not raw
        if op in ("IN", "NOT_IN"):
            values = {_comparable(prop, v) for v in f.get("values") or []}
            found = raw is not None and (
                _comparable(prop, raw) in values
                or (
                    prop is not None
                    and prop.field_type == "checkbox"
                    and bool(set(raw.split(";")) & {str(v) for v in f.get("values") or []})
                )
            )
            return found if op == "IN" else not found
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            found = raw is not None and _token_match(raw, str(f.get("value", "")))
            return found if op == "CONTAINS_TOKEN" else not found
        if raw is None:
            return op == "NEQ"
        left = _comparable(prop, raw)
        right = _comparable(prop, f.get("value"))
        if left is None or right is None:
            return op == "NEQ"
        if op == "EQ":
            if prop is not None and prop.field_type == "checkbox":
                return str(f.get("value")) in raw.split(";")
            return left == right
        if op == "NEQ":
            return left != right
        if op == "BETWEEN":
            high = _comparable(prop, f.get("highValue"))
            return high is not None and right <= left <= high
        try:
            return {
                "LT": left < right,
                "LTE": left <= right,
                "GT": left > right,
                "GTE": left >= right,
            }[op]
        except TypeError:
            return False

    def search(self, type_name: str, body: Any, raw_body: bytes) -> tuple[int, Any]:
        ot = self.objects.object_type(type_name)
        if len(raw_body) > MAX_BODY_CHARS:
            raise validation_error(
                f"The request body is {len(raw_body)} characters long; a search request can "
                f"contain at most {MAX_BODY_CHARS} characters."
            )
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        self._check(body)
        limit = body.get("limit", DEFAULT_LIMIT)
        if not isinstance(limit, int) or limit < 0 or limit > MAX_LIMIT:
            raise validation_error(
                f"limit must be between 0 and {MAX_LIMIT}, not {json.dumps(limit)}"
            )
        after_raw = body.get("after") or "0"
        try:
            after = int(str(after_raw))
        except ValueError as exc:
            raise validation_error(
                f"after must be formatted as an integer, not {after_raw!r}"
            ) from exc
        if after + limit > MAX_RESULTS:
            raise validation_error(
                f"Requested results {after}-{after + limit} are beyond the {MAX_RESULTS} result "
                "limit for search. Narrow the query (e.g. hs_object_id GT the last id) instead."
            )
        hits = self._cached_hits(ot, body)
        table = self.objects.store.records[ot.type_id]
        page = [r if isinstance(r, Record) else table[r] for r in hits[after : after + limit]]
        props = body.get("properties") or None
        answer: dict[str, Any] = {
            "total": len(hits),
            "results": [self.objects.record_json(ot, r, props) for r in page],
        }
        if after + limit < len(hits) and limit > 0:
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return 200, answer

    def _cached_hits(self, ot: ObjectTypeDef, body: dict[str, Any]) -> Sequence[Record | int]:
        """Every hit of the question in ``body``, sorted (record ids, or the records search
        sees while a search lag shows older values); reused while nothing changed. With a
        search lag the index view moves by itself, so then nothing is reused."""
        if self.objects.search_lag_s > 0 or self.objects.has_search_pending():
            return self._hits_of(ot, body)
        question = orjson.dumps(
            [body.get("filterGroups"), body.get("sorts"), body.get("query")],
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
        )
        key = (ot.type_id, question)
        version = self.objects.store.version
        cached = self._hits.get(key)
        if cached is not None and cached[0] == version:
            self._hits.move_to_end(key)
            return cached[1]
        ranged = self._ranged_hits(ot, body)
        hits = ranged if ranged is not None else self._hits_of(ot, body)
        self._hits[key] = (version, hits)
        self._hits.move_to_end(key)
        while len(self._hits) > CACHED_QUERIES:
            self._hits.popitem(last=False)
        return hits

    def _sorted_index(self, ot: ObjectTypeDef, prop: PropertyDef) -> tuple[list[Any], list[int]]:
        """Ids of the live records holding ``prop``, in (value, id) order, with their values'
        sort keys; rebuilt when that type's records or the properties changed (a push of
        another type leaves it), from the packed records' one column."""
        key = (ot.type_id, prop.name)
        store = self.objects.store
        version = (store.record_versions.get(ot.type_id, 0), store.properties_version)
        cached = self._index.get(key)
        if cached is not None and cached[0] == version:
            return cached[1], cached[2]
        memo: dict[str, Any] = {}  # a batch's records share one timestamp: parse it once
        pairs: list[tuple[Any, int]] = []
        for rid, raw in self.objects.store.records[ot.type_id].column(prop.name):
            value = memo.get(raw)
            if value is None:
                value = memo[raw] = _comparable(prop, raw)
            if value is not None:
                pairs.append((value, rid))
        pairs.sort()
        keys, ids = [p[0] for p in pairs], [p[1] for p in pairs]
        self._index[key] = (version, keys, ids)
        return keys, ids

    def _ranged_hits(self, ot: ObjectTypeDef, body: dict[str, Any]) -> list[int] | None:
        """Hits of a one-group question with a range on a date or number property, from that
        property's sorted index; None when the question has another shape."""
        groups = body.get("filterGroups") or []
        if len(groups) != 1 or body.get("query"):
            return None
        filters = (groups[0] or {}).get("filters") or []
        props = self.objects.store.properties.get(ot.type_id, {})
        name = next(
            (
                f["propertyName"]
                for f in filters
                if f.get("operator") in RANGE_OPERATORS
                and f.get("propertyName") != "hs_object_id"
                and getattr(props.get(f["propertyName"]), "type", None)
                in ("datetime", "date", "number")
            ),
            None,
        )
        if name is None:
            return None
        sorts = body.get("sorts") or []
        sort = sorts[0] if sorts else {"propertyName": "hs_object_id"}
        if isinstance(sort, str):
            sort = {
                "propertyName": sort.lstrip("-"),
                "direction": "DESCENDING" if sort.startswith("-") else "ASCENDING",
            }
        by = sort.get("propertyName", "hs_object_id")
        if by not in (name, "hs_object_id"):
            return None  # another sort: the general path
        desc = sort.get("direction") == "DESCENDING"
        prop = props[name]
        keys, ids = self._sorted_index(ot, prop)
        start, end = 0, len(keys)
        for f in filters:
            if f["propertyName"] != name or f["operator"] not in RANGE_OPERATORS:
                continue
            low = _comparable(prop, f.get("value"))
            if low is None:
                return []
            op = f["operator"]
            if op in ("GTE", "EQ", "BETWEEN"):
                start = max(start, bisect.bisect_left(keys, low))
            if op == "GT":
                start = max(start, bisect.bisect_right(keys, low))
            if op in ("LTE", "EQ"):
                end = min(end, bisect.bisect_right(keys, low))
            if op == "LT":
                end = min(end, bisect.bisect_left(keys, low))
            if op == "BETWEEN":
                high = _comparable(prop, f.get("highValue"))
                if high is None:
                    return []
                end = min(end, bisect.bisect_right(keys, high))
        if end <= start:
            return []
        rest = [
            f for f in filters if f["propertyName"] != name or f["operator"] not in RANGE_OPERATORS
        ]
        if rest:
            table = self.objects.store.records[ot.type_id]
            pairs = [
                (k, i)
                for k, i in zip(keys[start:end], ids[start:end], strict=True)
                if all(self._matches(ot, table[i], f) for f in rest)
            ]
        else:
            pairs = list(zip(keys[start:end], ids[start:end], strict=True))
        if by == name:
            if desc:  # equal values stay in id order, as the full sort leaves them
                pairs.sort(key=lambda p: p[0], reverse=True)
            return [i for _, i in pairs]
        return sorted((i for _, i in pairs), reverse=desc)

    def _hits_of(self, ot: ObjectTypeDef, body: dict[str, Any]) -> list[Any]:
        """Every hit, sorted: record ids, or while a search lag is or was on the records as
        search sees them. A scan keeps only (sort key, id) per hit, not unpacked records."""
        groups = [g.get("filters") or [] for g in body.get("filterGroups") or []]
        query = str(body.get("query") or "").lower()
        sorts = body.get("sorts") or []
        name, desc, prop = None, False, None
        if sorts:
            s = sorts[0]
            if isinstance(s, str):
                name, desc = s.lstrip("-"), s.startswith("-")
            else:
                name, desc = (
                    s.get("propertyName", "hs_object_id"),
                    s.get("direction") == "DESCENDING",
                )
            prop = self.objects.store.properties.get(ot.type_id, {}).get(name)
        lagging = self.objects.search_lag_s > 0 or self.objects.has_search_pending()
        rows: list[tuple[Any, int, Record | None]] = []  # (sort key, id, record if lagging)
        for stored in self.objects.store.records[ot.type_id].values():
            visible = self.objects.search_view(ot, stored)
            if visible is None:
                continue
            rec = (
                stored
                if visible is stored.properties
                else Record(stored.id, visible, stored.created_at, stored.updated_at)
            )
            if groups and not any(all(self._matches(ot, rec, f) for f in g) for g in groups):
                continue
            if query and not any(
                query in (rec.properties.get(p) or "").lower() for p in ot.default_properties
            ):
                continue
            if name is None:
                key = None
            elif name == "hs_object_id":
                key = rec.id
            else:
                key = _comparable(prop, rec.properties.get(name))
            rows.append((key, rec.id, rec if lagging else None))
        rows.sort(key=lambda r: r[1])
        if name is not None:
            present = [r for r in rows if r[0] not in (None, "")]
            absent = [r for r in rows if r[0] in (None, "")]
            present.sort(key=lambda r: r[0], reverse=desc)
            rows = present + absent  # empty values sort last
        if lagging:
            return [r[2] for r in rows]
        return [r[1] for r in rows]
