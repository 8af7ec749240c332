"""Pydantic models of a mapping file (``mappings/<object>.yaml``).

A mapping says which warehouse query feeds one HubSpot object type, which column carries the
external id, and how each selected column becomes a HubSpot property (type, null policy,
ownership, allowed options). ``docs/mappings.md`` is the reference for authors.
"""

from __future__ import annotations

import re
import zoneinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from spokesync.canonical import PropertyType
from spokesync.events import EventType

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
STANDARD_OBJECTS = frozenset(
    {"companies", "contacts", "deals", "tickets", "products", "line_items"}
)
CUSTOM_OBJECT = re.compile(r"^(2-\d+|p\d*_[a-z][a-z0-9_]*)$")

# HubSpot fieldType used when a mapping does not name one.
DEFAULT_FIELD_TYPES: dict[str, str] = {
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "bool": "booleancheckbox",
    "enumeration": "select",
    "enumeration_multi": "checkbox",
}
VALID_FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"text", "textarea", "html", "phonenumber", "file"}),
    "number": frozenset({"number"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"date"}),
    "bool": frozenset({"booleancheckbox"}),
    "enumeration": frozenset({"select", "radio"}),
    "enumeration_multi": frozenset({"checkbox"}),
}


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a safe SQL identifier, else raise ``ValueError`` naming it."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a valid identifier (^[A-Za-z_][A-Za-z0-9_]*$)")
    return name


def quote_identifier(name: str) -> str:
    """Validate and double-quote an identifier for SQL."""
    return '"' + validate_identifier(name) + '"'


def _property_name(value: str) -> str:
    if not PROPERTY_NAME.match(value):
        raise ValueError(
            f"HubSpot property name {value!r} must be lowercase letters, digits and _ "
            "and start with a letter"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdSpec(_Strict):
    """The external id: a unique HubSpot property (or ``email`` for contacts) and its column."""

    property: str
    column: str
    label: str | None = None

    _check_property = field_validator("property")(_property_name)

    @field_validator("column")
    @classmethod
    def _check_column(cls, v: str) -> str:
        return validate_identifier(v, "column")


class SourceSpec(_Strict):
    """A SELECT over the warehouse views; ``$as_of`` is bound to the partition date (DATE)."""

    sql: str

    @field_validator("sql")
    @classmethod
    def _check_sql(cls, v: str) -> str:
        stripped = v.strip().rstrip(";").strip()
        if not re.match(r"^(select|with|from)\b", stripped, re.IGNORECASE):
            raise ValueError("must be a SELECT (or WITH …) query over the warehouse views")
        if ";" in stripped:
            raise ValueError("must be a single statement (found ';' inside)")
        return stripped

    @property
    def uses_as_of(self) -> bool:
        return re.search(r"\$as_of\b", self.sql) is not None


# Change thresholds (``tolerance`` / ``resolution`` / ``buckets``) are compared exactly in
# DECIMAL(38, 18) for values below this magnitude (see spokesync.tolerance), so thresholds
# keep to it and to at most this many decimal places.
THRESHOLD_MAX = Decimal(10) ** 13
THRESHOLD_PLACES = 6
RESOLUTION_UNITS: dict[str, tuple[str, ...]] = {
    "datetime": ("second", "minute", "hour", "day", "week", "month"),
    "date": ("week", "month", "quarter", "year"),
}


def _threshold(value: Any, what: str) -> Decimal:
    """A mapping number (YAML int/float/str) as the exact Decimal it was written as."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{what} must be a number (got {value!r})")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{what} must be a number (got {value!r})") from None
    if not d.is_finite() or abs(d) >= THRESHOLD_MAX:
        raise ValueError(f"{what} must be a finite number below 10^13 in size (got {value!r})")
    if -d.as_tuple().exponent > THRESHOLD_PLACES:  # type: ignore[operator]
        raise ValueError(f"{what} has more than {THRESHOLD_PLACES} decimal places (got {value!r})")
    return d


class ToleranceSpec(_Strict):
    """How far a number may move from HubSpot's value before it is worth a write: within
    ``absolute`` of it, or within ``relative`` (a fraction: 0.1 = 10%) of its size."""

    absolute: Decimal | None = None
    relative: Decimal | None = None

    @field_validator("absolute", "relative", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Decimal | None:
        return None if v is None else _threshold(v, "a tolerance")

    @model_validator(mode="after")
    def _check(self) -> ToleranceSpec:
        for name in ("absolute", "relative"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"tolerance {name} must not be negative (got {v})")
        if not (self.absolute or self.relative):
            raise ValueError(
                "a tolerance needs 'absolute' or 'relative' above 0 (a tolerance of 0 is the "
                "default, exact comparison: remove the key)"
            )
        if self.relative is not None and self.relative > 1:
            raise ValueError(
                f"tolerance relative is a fraction of HubSpot's value, 0 to 1 (0.1 = 10%); "
                f"got {self.relative}"
            )
        return self

    def describe(self) -> str:
        parts = []
        if self.absolute:
            parts.append(f"±{self.absolute.normalize():f}")
        if self.relative:
            parts.append(f"±{(self.relative * 100).normalize():f}%")
        return "tolerance " + " or ".join(parts)


class ResolutionSpec(_Strict):
    """A date/datetime is worth a write only when it moves to another ``unit`` (a calendar
    day, hour, … in ``timezone``) than the one HubSpot's value is in."""

    unit: Literal["second", "minute", "hour", "day", "week", "month", "quarter", "year"]
    timezone: str = "UTC"

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, v: Any) -> Any:
        return {"unit": v} if isinstance(v, str) else v  # `resolution: day`

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, v: str) -> str:
        if v not in zoneinfo.available_timezones() and v != "UTC":
            raise ValueError(f"unknown IANA time zone {v!r} (e.g. UTC, Europe/Berlin)")
        return v

    def describe(self) -> str:
        tz = "" if self.timezone == "UTC" else f" in {self.timezone}"
        return f"resolution {self.unit}{tz}"


class FieldSpec(_Strict):
    """One HubSpot property fed from a source column or a SQL expression over the source."""

    property: str
    type: PropertyType
    field_type: str | None = None
    column: str | None = None
    expr: str | None = None
    format: Literal["email", "domain"] | None = Field(
        default=None, description="refines a string: canonicalise as an email or a bare domain"
    )
    null_policy: Literal["skip", "clear"] = "skip"
    owner: Literal["warehouse", "hubspot"] = "warehouse"
    options: list[str] | None = None
    options_from: Literal["hubspot"] | None = Field(
        default=None,
        description="the options live in HubSpot (pipeline stages, owners): read them there",
    )
    forward_only: bool = Field(
        default=False,
        description="an enumeration that only moves forward in 'options' order (lifecyclestage)",
    )
    send_with: list[str] = Field(
        default_factory=list,
        description="properties always sent together with this one (amount → its currency); "
        "if one has no desired value, this field is withheld",
    )
    gate: str | None = Field(
        default=None, description="name of a gate in 'gates': written only for records passing it"
    )
    required: bool = False
    label: str | None = None
    group: str | None = None
    description: str | None = None
    tolerance: ToleranceSpec | None = Field(
        default=None,
        description="numbers: a move within this of HubSpot's value is not worth a write",
    )
    resolution: ResolutionSpec | None = Field(
        default=None,
        description="dates/datetimes: written only when the value moves to another calendar "
        "unit (day, hour, …) than HubSpot's",
    )
    buckets: list[Decimal] | None = Field(
        default=None,
        description="numbers: ascending edges; written only when the value moves to another "
        "bucket than HubSpot's (e.g. the thresholds workflows test)",
    )

    _check_property = field_validator("property")(_property_name)

    @field_validator("column")
    @classmethod
    def _check_column(cls, v: str | None) -> str | None:
        return None if v is None else validate_identifier(v, "column")

    @field_validator("buckets", mode="before")
    @classmethod
    def _check_buckets(cls, v: Any) -> list[Decimal] | None:
        if v is None:
            return None
        if not isinstance(v, list) or not v:
            raise ValueError(
                f"'buckets' is a list of ascending edges, e.g. [20, 40, 60] (got {v!r})"
            )
        edges = [_threshold(e, "a bucket edge") for e in v]
        for a, b in zip(edges, edges[1:], strict=False):
            if b <= a:
                raise ValueError(
                    f"'buckets' edges must be strictly ascending: {b} follows {a} (got {v!r})"
                )
        return edges

    @model_validator(mode="after")
    def _check_thresholds(self) -> FieldSpec:
        given = [k for k in ("tolerance", "resolution", "buckets") if getattr(self, k) is not None]
        if not given:
            return self
        if len(given) > 1:
            raise ValueError(
                f"give at most one of 'tolerance', 'resolution', 'buckets' (got {given})"
            )
        (key,) = given
        value = getattr(self, key)
        shown = (
            value.model_dump(mode="json", exclude_none=True)
            if key != "buckets"
            else [float(e) if e != int(e) else int(e) for e in value]
        )
        if key in ("tolerance", "buckets") and self.type != "number":
            raise ValueError(
                f"'{key}' applies to number fields, not {self.type} (got {key}: {shown})"
            )
        if key == "resolution":
            units = RESOLUTION_UNITS.get(self.type)
            if units is None:
                raise ValueError(
                    f"'resolution' applies to date and datetime fields, not {self.type} "
                    f"(got resolution: {shown})"
                )
            if value.unit not in units:
                raise ValueError(
                    f"resolution {value.unit!r} does not apply to a {self.type}: use one of "
                    f"{', '.join(units)}"
                )
            if self.type == "date" and value.timezone != "UTC":
                raise ValueError(
                    f"a date has no time of day: 'timezone' applies to datetimes only "
                    f"(got timezone {value.timezone!r})"
                )
        if self.owner != "warehouse":
            raise ValueError(
                f"'{key}' applies to warehouse-owned fields (a hubspot-owned field is only "
                "written while HubSpot's value is empty)"
            )
        return self

    @property
    def threshold(self) -> str | None:
        """How much change is worth a write, in words (None: any change is)."""
        if self.tolerance is not None:
            return self.tolerance.describe()
        if self.resolution is not None:
            return self.resolution.describe()
        if self.buckets is not None:
            return "buckets at " + ", ".join(f"{e.normalize():f}" for e in self.buckets)
        return None

    @model_validator(mode="after")
    def _check_consistency(self) -> FieldSpec:
        if (self.column is None) == (self.expr is None):
            raise ValueError("give exactly one of 'column' or 'expr'")
        if self.expr is not None and ";" in self.expr:
            raise ValueError("'expr' must be a single SQL expression (found ';')")
        if self.type in ("enumeration", "enumeration_multi"):
            if self.options_from is not None:
                if self.options:
                    raise ValueError("give 'options' or 'options_from', not both")
            elif not self.options:
                raise ValueError(f"type {self.type} needs 'options' (the allowed option values)")
            if len(set(self.options or ())) != len(self.options or ()):
                raise ValueError("'options' has duplicates")
            bad = [o for o in self.options or () if not o or o != o.strip() or ";" in o]
            if bad:
                raise ValueError(f"option values must be non-empty, trimmed, without ';': {bad}")
        elif self.options is not None:
            raise ValueError(f"'options' only applies to enumerations, not {self.type}")
        elif self.options_from is not None:
            raise ValueError(f"'options_from' only applies to enumerations, not {self.type}")
        if self.forward_only:
            if self.type != "enumeration" or not self.options:
                raise ValueError("'forward_only' needs an enumeration with its 'options' in order")
            if self.owner != "warehouse" or self.null_policy != "skip":
                raise ValueError("'forward_only' fields are warehouse-owned with null_policy skip")
        if self.format is not None and self.type != "string":
            raise ValueError(f"'format' applies to string fields, not {self.type}")
        if (self.label is None) != (self.group is None):
            raise ValueError(
                "a new custom property needs both 'label' and 'group' (give neither for a "
                "property HubSpot already has)"
            )
        if self.field_type is not None and self.field_type not in VALID_FIELD_TYPES[self.type]:
            allowed = ", ".join(sorted(VALID_FIELD_TYPES[self.type]))
            raise ValueError(
                f"field_type {self.field_type!r} is not valid for {self.type}: {allowed}"
            )
        return self

    @property
    def declares_new_property(self) -> bool:
        """The mapping declares this a new custom property (spokesync may create it)."""
        return self.label is not None and self.group is not None

    @property
    def canonical_form(self) -> str:
        """The :mod:`spokesync.canonical` form values of this field take."""
        if self.format is not None:
            return self.format
        if self.type == "string" and self.property == "email":
            return "email"
        return self.type

    @property
    def hubspot_type(self) -> str:
        """HubSpot's property ``type`` (multi-select is an ``enumeration``)."""
        return "enumeration" if self.type == "enumeration_multi" else self.type

    @property
    def hubspot_field_type(self) -> str:
        """HubSpot's ``fieldType`` for creating the property."""
        return self.field_type or DEFAULT_FIELD_TYPES[self.type]

    @property
    def source_sql(self) -> str:
        """SQL for the value over the source query's columns."""
        return self.expr if self.expr is not None else quote_identifier(self.column or "")


class GateRule(_Strict):
    """One rule of a quality gate: a SQL predicate over the source row that must hold."""

    check: str
    reason: str

    @field_validator("check")
    @classmethod
    def _check_sql(cls, v: str) -> str:
        if ";" in v:
            raise ValueError("'check' must be a single SQL predicate (found ';')")
        return v.strip()


class ReportSpec(_Strict):
    """A condition worth telling a person about (counted and listed each run, nothing held
    back), e.g. an account owner HubSpot does not know, routed to the fallback owner."""

    name: str
    when: str
    message: str

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        return validate_identifier(v, "report name")

    @field_validator("when")
    @classmethod
    def _check_sql(cls, v: str) -> str:
        if ";" in v:
            raise ValueError("'when' must be a single SQL predicate (found ';')")
        return v.strip()


class SourceRowSpec(_Strict):
    """A warehouse row behind an event: its table and a SQL expression giving its key."""

    table: str
    key: str

    @field_validator("table")
    @classmethod
    def _check_table(cls, v: str) -> str:
        return validate_identifier(v, "table")


class EventSpec(_Strict):
    """A canonical event this mapping's writes can be (see ``docs/events.md``): recorded when a
    sync writes one of ``properties`` for a record matching ``when``."""

    type: EventType
    when: str
    occurrence: str = Field(
        default="CAST($as_of AS VARCHAR)",
        description="SQL expression telling one occurrence from another (its event id)",
    )
    occurred_at: str | None = None
    properties: list[str] = Field(min_length=1)
    source_rows: list[SourceRowSpec] = Field(default_factory=list)

    @field_validator("when", "occurrence", "occurred_at")
    @classmethod
    def _check_sql(cls, v: str | None) -> str | None:
        if v is not None and ";" in v:
            raise ValueError("must be a single SQL expression (found ';')")
        return None if v is None else v.strip()


class AssociationSpec(_Strict):
    """Associate each record to a record of another synced object via a source column that holds
    the other record's external id (v4 batch associations)."""

    to_object_type: str
    column: str
    association_type_id: int | None = Field(
        default=None, gt=0, description="omit it: the type id is read from HubSpot's labels API"
    )
    category: Literal["HUBSPOT_DEFINED", "USER_DEFINED"] = "HUBSPOT_DEFINED"
    label: str | None = Field(
        default=None,
        description="the association label (None: the pair's unlabeled default type); "
        "a USER_DEFINED label is created through the labels API when missing",
    )
    remove_stale: bool = Field(
        default=False,
        description="archive links spokesync made that the record no longer wants",
    )

    @field_validator("column")
    @classmethod
    def _check_column(cls, v: str) -> str:
        return validate_identifier(v, "column")

    @model_validator(mode="after")
    def _check_label(self) -> AssociationSpec:
        if self.category == "USER_DEFINED" and not self.label and not self.association_type_id:
            raise ValueError("a USER_DEFINED association needs its 'label'")
        return self

    @property
    def label_name(self) -> str:
        """Internal name for a label spokesync creates (no hyphens, not starting with a digit)."""
        name = re.sub(r"[^a-z0-9_]+", "_", (self.label or "").lower()).strip("_")
        return name if name and not name[0].isdigit() else f"label_{name}"


class SchemaLabels(_Strict):
    singular: str = Field(min_length=1)
    plural: str = Field(min_length=1)


SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class CustomObjectSpec(_Strict):
    """A HubSpot custom object the mapping writes, created through the schemas API when the
    portal lacks it (``spokesync.hubspot.schemas``). ``name`` can never change in HubSpot."""

    name: str
    labels: SchemaLabels
    primary_display_property: str
    secondary_display_properties: list[str] = Field(default_factory=list)
    searchable_properties: list[str] = Field(default_factory=list)
    required_properties: list[str] = Field(default_factory=list)
    associated_objects: list[str] = Field(
        default_factory=list,
        description="standard objects the custom object is associated with (companies, deals…)",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not SCHEMA_NAME.match(v):
            raise ValueError(
                f"custom object name {v!r} must be lowercase letters, digits and _ and start "
                "with a letter (HubSpot never lets it change)"
            )
        if v in STANDARD_OBJECTS:
            raise ValueError(f"custom object name {v!r} is a standard HubSpot object")
        return v

    @field_validator("associated_objects")
    @classmethod
    def _check_targets(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if t not in STANDARD_OBJECTS]
        if bad:
            raise ValueError(
                f"associated_objects {bad}: name standard objects "
                f"({', '.join(sorted(STANDARD_OBJECTS))})"
            )
        return v

    @property
    def schema_properties(self) -> list[str]:
        """Properties the schema itself names (so its create body must define them)."""
        return list(
            dict.fromkeys(
                [
                    self.primary_display_property,
                    *self.secondary_display_properties,
                    *self.searchable_properties,
                    *self.required_properties,
                ]
            )
        )


NORMALISERS = ("exact", "lower", "email", "domain", "digits")
# HubSpot properties that hold several ``;``-separated values, each a match key.
MULTI_VALUED_PROPERTIES = frozenset({"hs_additional_emails", "hs_additional_domains"})


class MatchRule(_Strict):
    """One adoption rule: a warehouse column (or SQL expression over the source) matched, after
    ``normalise``, against a HubSpot property of records spokesync does not own yet."""

    property: str
    column: str | None = None
    expr: str | None = None
    normalise: Literal["exact", "lower", "email", "domain", "digits"] = "exact"
    multi: bool | None = Field(
        default=None,
        description="HubSpot's value holds several ';'-separated keys (default: true for "
        "hs_additional_emails / hs_additional_domains)",
    )

    _check_property = field_validator("property")(_property_name)

    @field_validator("column")
    @classmethod
    def _check_column(cls, v: str | None) -> str | None:
        return None if v is None else validate_identifier(v, "column")

    @model_validator(mode="after")
    def _check_source(self) -> MatchRule:
        if (self.column is None) == (self.expr is None):
            raise ValueError("give exactly one of 'column' or 'expr'")
        if self.expr is not None and ";" in self.expr:
            raise ValueError("'expr' must be a single SQL expression (found ';')")
        return self

    @property
    def is_multi(self) -> bool:
        return self.multi if self.multi is not None else self.property in MULTI_VALUED_PROPERTIES

    @property
    def source_sql(self) -> str:
        return self.expr if self.expr is not None else quote_identifier(self.column or "")

    def describe(self) -> str:
        side = self.column or f"({self.expr})"
        return f"{side} → {self.property} ({self.normalise}{', any of' if self.is_multi else ''})"


class MappingSpec(_Strict):
    """One mapping file. ``path`` and ``version`` (short sha256 of the file) are set by the loader."""

    object_type: str
    id: IdSpec
    source: SourceSpec
    fields: list[FieldSpec] = Field(min_length=1)
    associations: list[AssociationSpec] = Field(default_factory=list)
    gates: dict[str, list[GateRule]] = Field(
        default_factory=dict,
        description="named quality gates; a field with 'gate: <name>' is written only for "
        "records passing every rule of it. Failures are counted and listed, never written",
    )
    reports: list[ReportSpec] = Field(default_factory=list)
    events: list[EventSpec] = Field(default_factory=list)
    parameters: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="values bound as $name in the SQL (never pasted into it)",
    )
    as_of_column: str | None = Field(
        default=None,
        description="source column whose latest value wins when the query yields duplicate ids",
    )
    match: list[MatchRule] | None = Field(
        default=None,
        description="adoption rules, tried in order, for records not yet in HubSpot by id "
        "(default: contacts by email, companies by domain, others none; [] turns adoption off)",
    )
    custom_object: CustomObjectSpec | None = Field(
        default=None,
        description="the custom object's schema: object_type is then its name, and the schema "
        "is found or created through HubSpot's schemas API",
    )
    archived: Literal["recreate", "leave"] = Field(
        default="recreate",
        description="a record archived (deleted) in HubSpot: create it again, or leave it alone",
    )
    path: Path
    version: str

    @model_validator(mode="after")
    def _check_object_type(self) -> MappingSpec:
        v, co = self.object_type, self.custom_object
        if co is not None:
            if v != co.name:
                raise ValueError(
                    f"object_type {v!r}: a custom object's object_type is its custom_object.name "
                    f"({co.name!r})"
                )
            mapped = set(self.property_types)
            for prop in co.schema_properties:
                if prop not in mapped:
                    raise ValueError(f"custom_object: {prop!r} is not a mapped property")
            for i, a in enumerate(self.associations):
                if a.to_object_type not in co.associated_objects:
                    raise ValueError(
                        f"associations[{i}] ({a.to_object_type}): list it in "
                        "custom_object.associated_objects too (the schema's associations)"
                    )
        elif v not in STANDARD_OBJECTS and not CUSTOM_OBJECT.match(v):
            raise ValueError(
                f"object_type {v!r} is not a HubSpot object: use one of "
                f"{', '.join(sorted(STANDARD_OBJECTS))}, a custom type id 2-NNN or p_<name>, "
                "or give a custom_object block (its schema)"
            )
        return self

    @field_validator("as_of_column")
    @classmethod
    def _check_as_of_column(cls, v: str | None) -> str | None:
        return None if v is None else validate_identifier(v, "as_of_column")

    @model_validator(mode="after")
    def _check_fields(self) -> MappingSpec:
        seen: set[str] = {self.id.property}
        for i, f in enumerate(self.fields):
            if f.property in seen:
                what = "the id property" if f.property == self.id.property else "a duplicate"
                raise ValueError(f"fields[{i}] ({f.property}): {what}; map each property once")
            seen.add(f.property)
        for name in self.gates:
            validate_identifier(name, "gate name")
        for i, f in enumerate(self.fields):
            if f.gate is not None and f.gate not in self.gates:
                raise ValueError(f"fields[{i}] ({f.property}): gate {f.gate!r} is not in 'gates'")
            if f.gate is not None and f.null_policy != "skip":
                raise ValueError(
                    f"fields[{i}] ({f.property}): a gated field has null_policy skip (a record "
                    "failing the gate must never be cleared)"
                )
            for other in f.send_with:
                if other not in seen or other == f.property:
                    raise ValueError(
                        f"fields[{i}] ({f.property}): send_with {other!r} is not another "
                        "mapped property"
                    )
        for i, e in enumerate(self.events):
            for prop in e.properties:
                if prop not in seen:
                    raise ValueError(f"events[{i}] ({e.type}): {prop!r} is not a mapped property")
        for name in self.parameters:
            validate_identifier(name, "parameter name")
            if name == "as_of":
                raise ValueError("parameters: 'as_of' is bound to the partition date")
        return self

    @property
    def match_rules(self) -> list[MatchRule]:
        """The adoption rules in force: the mapping's own, else the default for the object."""
        if self.match is not None:
            return list(self.match)
        id_rules = [
            MatchRule(property=p, column=self.id.column, normalise="email")
            for p in ("email", "hs_additional_emails")
        ]
        if self.object_type == "contacts":
            if self.id.property == "email":
                # Primary emails already key the snapshot; only additional emails are left.
                return id_rules[1:]
            email = next((f for f in self.fields if f.property == "email"), None)
            if email is None:
                return []
            return [
                MatchRule(property=p, column=email.column, expr=email.expr, normalise="email")
                for p in ("email", "hs_additional_emails")
            ]
        if self.object_type == "companies":
            domain = next((f for f in self.fields if f.property == "domain"), None)
            if domain is None:
                return []
            return [
                MatchRule(property=p, column=domain.column, expr=domain.expr, normalise="domain")
                for p in ("domain", "hs_additional_domains")
            ]
        return []

    @property
    def match_properties(self) -> list[str]:
        """HubSpot properties the full refresh must read for adoption."""
        return list(dict.fromkeys(r.property for r in self.match_rules))

    @property
    def id_form(self) -> str:
        """Canonical form of the external id (emails are lowercased)."""
        return "email" if self.id.property == "email" else "string"

    @property
    def property_types(self) -> dict[str, str]:
        """Canonical form per managed property, the id property included."""
        out = {self.id.property: self.id_form}
        out.update({f.property: f.canonical_form for f in self.fields})
        return out

    @property
    def managed_properties(self) -> list[str]:
        """Every property this mapping reads back from HubSpot (id first)."""
        return [self.id.property, *(f.property for f in self.fields)]

    def field(self, prop: str) -> FieldSpec:
        for f in self.fields:
            if f.property == prop:
                return f
        raise KeyError(prop)
