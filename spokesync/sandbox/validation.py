"""HubSpot's property value rules: each write is checked against the property's ``type`` and
turned into the string HubSpot stores and returns (reference §3.2)."""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from spokesync.emails import email_problem, invalid_email_message, normalise_email
from spokesync.sandbox.catalog import Option, PropertyDef
from spokesync.sandbox.errors import PropertyError

VALID_FIELD_TYPES: dict[str, set[str]] = {
    "string": {"text", "textarea", "html", "phonenumber", "file", "calculation_equation"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "bool": {"booleancheckbox", "calculation_equation"},
    "phone_number": {"phonenumber", "text"},
}
MULTI_SELECT_FIELD_TYPES = {"checkbox"}
BOOL_OPTIONS = [Option("Yes", "true", 0), Option("No", "false", 1)]
MAX_STRING_LENGTH = 65_536

_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)$")
_EPOCH_MS = re.compile(r"^-?\d+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MIDNIGHT = dt.time(0, 0)
# The value checks are pure functions of (property name, text): a batch repeats the same dates,
# numbers and (as id and as property) emails many times, so each keeps its recent answers.
# Errors are raised, never cached.
_memo = functools.lru_cache(maxsize=1 << 16)


def as_string(raw: Any) -> str:
    """Property values travel as strings; JSON numbers and booleans are accepted and coerced."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


def format_datetime(moment: dt.datetime) -> str:
    """ISO-8601 UTC with milliseconds, as HubSpot returns datetimes: ``2026-03-31T19:16:51.187Z``."""
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_moment(value: str) -> dt.datetime | None:
    """Epoch milliseconds, ``YYYY-MM-DD`` or ISO-8601 (``Z`` or offset) → aware UTC datetime."""
    value = value.strip()
    try:
        if _EPOCH_MS.match(value):
            return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=int(value))
        if _DATE.match(value):
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def option_list_text(options: list[Option]) -> str:
    """How HubSpot prints the allowed options inside an INVALID_OPTION message."""
    return ", ".join(
        f'label: "{o.label}"\nvalue: "{o.value}"\ndisplay_order: {o.display_order}\n'
        f"hidden: {str(o.hidden).lower()}\nread_only: false\n"
        for o in options
    )


def invalid_option(name: str, value: str, options: list[Option]) -> PropertyError:
    return PropertyError(
        name,
        "INVALID_OPTION",
        f"{value} was not one of the allowed options: [{option_list_text(options)}]",
    )


@_memo
def normalize_number(name: str, value: str) -> str:
    """Digits with at most one decimal point; returned without trailing zeros (``10.50`` → ``10.5``)."""
    text = value.strip()
    if not _NUMBER.match(text):
        if "." in text:
            raise PropertyError(name, "INVALID_INTEGER", f"{value} was not a valid number.")
        raise PropertyError(name, "INVALID_LONG", f"{value} was not a valid long.")
    try:
        number = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex already rules this out
        raise PropertyError(name, "INVALID_LONG", f"{value} was not a valid long.") from exc
    out = format(number.normalize(), "f")
    return "0" if out in ("-0", "0") else out


@_memo
def normalize_date(name: str, value: str) -> str:
    moment = parse_moment(value)
    if moment is None:
        raise PropertyError(name, "INVALID_DATE", f"{value} is not a valid date.")
    if moment.time() != _MIDNIGHT:
        stamp = moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
        raise PropertyError(name, "INVALID_DATE", f"{value} is at {stamp} UTC, not midnight!")
    return moment.date().isoformat()


@_memo
def normalize_datetime(name: str, value: str) -> str:
    moment = parse_moment(value)
    if moment is None:
        raise PropertyError(name, "INVALID_DATE", f"{value} is not a valid datetime.")
    return format_datetime(moment)


_OPTION_VALUES: dict[int, tuple[list[Option], frozenset[str]]] = {}


def _option_values(options: list[Option]) -> frozenset[str]:
    """The values of an option list, kept per list: a property's options are a list that is
    replaced, never changed in place, when the property is updated (the entry holds the list,
    so its id is not reused while the entry lives)."""
    hit = _OPTION_VALUES.get(id(options))
    if hit is not None and hit[0] is options:
        return hit[1]
    values = frozenset(o.value for o in options)
    if len(_OPTION_VALUES) > 10_000:
        _OPTION_VALUES.clear()
    _OPTION_VALUES[id(options)] = (options, values)
    return values


def normalize_enumeration(
    prop: PropertyDef, value: str, options: list[Option], existing: str | None
) -> str:
    """An option value, matched after trimming surrounding whitespace and stored as sent: HubSpot
    accepts ``" customer "`` (its Nov 2025 plan to reject such values was cancelled)."""
    allowed = _option_values(options)
    if prop.field_type not in MULTI_SELECT_FIELD_TYPES:
        if value.strip() not in allowed:
            raise invalid_option(prop.name, value, options)
        return value
    append = value.startswith(";")
    chosen: list[str] = [v for v in (existing or "").split(";") if v] if append else []
    for piece in value.split(";"):
        if not piece.strip():
            continue
        if piece.strip() not in allowed:
            raise invalid_option(prop.name, piece, options)
        if piece not in chosen:
            chosen.append(piece)
    return ";".join(chosen)


@_memo
def normalize_email(name: str, value: str) -> str:
    if email_problem(value) is not None:
        raise PropertyError(name, "INVALID_EMAIL", invalid_email_message(value))
    return normalise_email(value)


def normalize_value(
    prop: PropertyDef,
    raw: Any,
    *,
    existing: str | None = None,
    options: list[Option] | None = None,
    is_email: bool = False,
) -> str:
    """The stored string for ``raw`` written to ``prop``; ``""`` clears. Raises PropertyError."""
    value = raw if type(raw) is str else as_string(raw)
    if value == "":
        return ""
    if prop.type == "string" and not is_email:
        if len(value) > MAX_STRING_LENGTH:
            raise _too_long(prop.name)
        return value
    if prop.type == "number":
        return normalize_number(prop.name, value)
    if prop.type == "date":
        return normalize_date(prop.name, value)
    if prop.type == "datetime":
        return normalize_datetime(prop.name, value)
    if prop.type == "bool":
        lowered = value.strip().lower()
        if lowered not in ("true", "false"):
            raise invalid_option(prop.name, value, BOOL_OPTIONS)
        return lowered
    if prop.type == "enumeration":
        return normalize_enumeration(
            prop, value, prop.options if options is None else options, existing
        )
    if is_email:
        return normalize_email(prop.name, value)
    if len(value) > MAX_STRING_LENGTH:
        raise _too_long(prop.name)
    return value


def _too_long(name: str) -> PropertyError:
    return PropertyError(
        name,
        "INVALID_STRING",
        f"{name} is longer than the maximum of {MAX_STRING_LENGTH} characters",
    )
