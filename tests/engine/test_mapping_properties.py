"""Property-based: random but valid mapping specs (every field type, both null policies, both
owners, formats, options, Unicode and SQL-looking labels) over random warehouse rows (random
Unicode, control characters, long strings, SQL-looking text, null tokens, numbers at the
edges, duplicate and blank keys).

Every source row is either in the desired state with exactly its value (the canonical form
computed here in Python, independently of the engine's SQL) or rejected with a reason, never a
crash; the plan sends exactly what the diff rules say (a cleared value only under
``null_policy: clear``, a hubspot-owned value only where HubSpot holds none); after the writes
are confirmed, the same warehouse plans zero changes. Bounded examples, small data.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spokesync.canonical import canonical
from spokesync.desired import desired_table
from spokesync.mapping import MappingSpec, load_mapping
from tests.engine.conftest import AS_OF, Warehouse
from tests.engine.helpers import confirm_all, plan

SETTINGS = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
NULL_TOKENS = ["NA", "N/A", "NULL", "null", "nan", "NaN", "#N/A", "None", "-", "n/a"]
SQL_LIKE = ["'; DROP TABLE accounts; --", '" OR 1=1 --', "$as_of", "{{x}}", "' || '", "%s", "?"]
WS = [" ", "\t", "\n", "\r", "\u00a0", "\u2003", "\u3000", "\ufeff"]
NUMBERS = [
    "inf", "-inf", "Infinity", "NaN", "\tinf", "inf\n", " -Infinity ", "1e3", "1E-7", "-0",
    "00012.50", "9" * 40 + ".000000001", str(2**53 + 1), "0.1", "1e400", "12abc", "١٢",
]  # fmt: skip
DATES = ["2026-01-15", "2026-13-45", "garbage", "2026-02-29", "1700000000000", " 2026-01-02 "]
BOOLS = ["yes", "No", " TRUE ", "off", "1", "0", "maybe", "2", "t"]
DOMAINS = ["https://www.Acme.com:443/x", "acme.com.", "https://", "www.", "xn--bcher-kva.ch"]

text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),  # control chars too
    st.sampled_from(NULL_TOKENS + SQL_LIKE + NUMBERS + DATES + BOOLS + DOMAINS),
    st.text(st.sampled_from(WS), min_size=1, max_size=3),
    st.text(min_size=300, max_size=1500),  # long
    st.builds(lambda a, b, c: a + b + c, st.sampled_from(WS), st.sampled_from(SQL_LIKE), st.text()),
)
maybe_text = st.one_of(st.none(), text)
# Option-like values (the specs' options draw from OPTION_POOL too, so some are among them).
OPTION_POOL = ["SOFTWARE", "RETAIL", "Ünïcode"]
INDUSTRIES = ["SOFTWARE", " RETAIL ", "SOFTWARE;RETAIL", "RETAIL; SOFTWARE;", "Ünïcode", "software"]
KEYS = ["K1", "K1 ", " K1", "K2", "k2", "\u00a0K3", "", "   ", "\t"]
stamp = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(dt.UTC)
)


@st.composite
def source_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Accounts rows: keys from a small pool (duplicates, blanks) or any text; unique
    ``updated_at`` per row, so the newest row of a duplicated key is well defined."""
    n = draw(st.integers(1, 7))
    updated = draw(st.lists(stamp, min_size=n, max_size=n, unique=True))
    return [
        {
            "account_id": draw(st.one_of(st.sampled_from(KEYS), maybe_text)),
            "name": draw(maybe_text),
            "domain": draw(st.one_of(st.sampled_from(DOMAINS), maybe_text)),
            "industry": draw(st.one_of(st.sampled_from(INDUSTRIES), maybe_text)),
            "country": draw(st.one_of(st.sampled_from(NUMBERS + DATES + BOOLS), maybe_text)),
            "employee_count": draw(
                st.one_of(
                    st.none(),
                    st.integers(-(2**63), 2**63 - 1),
                    st.sampled_from([0, -1, 2**53 + 1, 2**63 - 1]),
                )
            ),
            "owner_email": draw(maybe_text),
            "created_at": draw(st.one_of(st.none(), stamp)),
            "updated_at": updated[i],
        }
        for i in range(n)
    ]


# (type, column or expr, extra spec keys): every type, text and typed sources.
TEMPLATES: list[tuple[str, dict[str, Any]]] = [
    ("string", {"column": "name"}),
    ("string", {"expr": "name || ' -- ' || industry"}),  # SQL-looking data inside SQL
    ("string", {"column": "owner_email", "format": "email"}),
    ("string", {"column": "domain", "format": "domain"}),
    ("number", {"column": "employee_count"}),
    ("number", {"column": "country"}),  # numeric text: exact digits, inf/NaN
    ("bool", {"column": "country"}),
    ("bool", {"expr": "employee_count % 2 = 0"}),
    ("date", {"column": "country"}),  # text that may be no date
    ("date", {"column": "created_at"}),
    ("datetime", {"column": "updated_at"}),
    ("enumeration", {"column": "industry"}),
    ("enumeration_multi", {"column": "industry"}),
]
option = st.one_of(
    st.sampled_from(OPTION_POOL),
    st.text(
        st.characters(blacklist_categories=("Cs", "Zs", "Cc"), blacklist_characters=";"),
        min_size=1,
        max_size=12,
    ).filter(lambda o: o == o.strip()),
)


@st.composite
def mapping_specs(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(
        st.lists(st.sampled_from(range(len(TEMPLATES))), min_size=1, max_size=7, unique=True)
    )
    names = draw(
        st.lists(
            st.from_regex(r"p[a-z0-9_]{0,20}", fullmatch=True),
            min_size=len(chosen),
            max_size=len(chosen),
            unique=True,
        )
    )
    fields = []
    for i, name in zip(chosen, names, strict=True):
        type_, source = TEMPLATES[i]
        spec: dict[str, Any] = {"property": name, "type": type_, **source}
        spec["null_policy"] = draw(st.sampled_from(["skip", "clear"]))
        spec["owner"] = draw(st.sampled_from(["warehouse", "hubspot"]))
        if type_ in ("enumeration", "enumeration_multi"):
            spec["options"] = draw(st.lists(option, min_size=1, max_size=4, unique=True))
        if draw(st.booleans()):  # a new custom property: any label, even SQL-looking
            spec["label"] = draw(st.one_of(text.filter(str.strip), st.sampled_from(SQL_LIKE)))
            spec["group"] = "spokesync"
        fields.append(spec)
    return {
        "object_type": "companies",
        "id": {"property": "spokesync_account_id", "column": "account_id"},
        "source": {"sql": "SELECT * FROM accounts"},
        "as_of_column": "updated_at",
        "fields": fields,
    }


def _raw(row: dict[str, Any], spec: dict[str, Any]) -> Any:
    """The field's value over the source row, computed in Python (the independent oracle)."""
    if "column" in spec:
        return row[spec["column"]]
    if spec["expr"].startswith("name ||"):
        parts = [row["name"], " -- ", row["industry"]]
        return None if None in parts else "".join(parts)
    n = row["employee_count"]
    return None if n is None else n % 2 == 0


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip(" \t\n\x0b\x0c\r") == "")


_NON_FINITE = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")  # written by hand


def _readable(spec: MappingSpec, field: Any, value: Any) -> str | None | bool:
    """The canonical value of a field (None: no value), or False when the value is present
    but cannot be sent (its record must be rejected)."""
    form = field.canonical_form
    if _blank(value):
        return None
    if form == "bool" and isinstance(value, str):
        low = value.strip(" \t\n\x0b\x0c\r").lower()
        if low in {"true", "t", "1", "yes", "y", "on"}:
            return "true"
        if low in {"false", "f", "0", "no", "n", "off"}:
            return "false"
        return False
    if form in ("date", "datetime") and isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip(" \t\n\x0b\x0c\r"))
        except ValueError:
            return False
        return canonical(form, parsed.replace(tzinfo=parsed.tzinfo or dt.UTC))
    if form == "number" and isinstance(value, str):
        # numeric text only (HubSpot refuses 12abc, and inf/NaN are no value to send)
        stripped = value.strip(" \t\n\x0b\x0c\r")
        if _NON_FINITE.fullmatch(stripped) or not _NUMBER.fullmatch(stripped):
            return False
    out = canonical(form, value)
    values = (out or "").split(";") if form == "enumeration_multi" else [out]
    if out is not None and field.options and not set(values) <= set(field.options):
        return False  # an enumeration value not among the field's options: HubSpot refuses it
    return False if out is None else out


def _changes(state_db: Path, wh: Warehouse, mapping: MappingSpec) -> list[Any]:
    p, changes = plan(state_db, wh.root, mapping, AS_OF)
    p.close()
    return changes


def _first_difference(got: dict[str, Any], want: dict[str, Any]) -> str:
    """The first record and property where two {id: {property: value}} maps differ."""
    for key in sorted(set(got) | set(want), key=repr):
        if key not in got or key not in want:
            return f"record {key!r}: got {key in got}, expected {key in want}"
        a, b = got[key], want[key]
        for prop in sorted(set(a) | set(b)):
            if a.get(prop, "<absent>") != b.get(prop, "<absent>"):
                return f"{key!r}.{prop}: got {a.get(prop, '<absent>')!r}, want {b.get(prop, '<absent>')!r}"
    return "equal"


def _fresh() -> Path:
    return Path(tempfile.mkdtemp(prefix="values-mapping-prop-"))


def _write(base: Path, spec: dict[str, Any]) -> MappingSpec:
    path = base / "mappings" / "companies.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return load_mapping(path)


def expected_state(
    mapping: MappingSpec, spec: dict[str, Any], rows: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, str | None]], list[tuple[str | None, str]]]:
    """(desired record by id, [(id, reason kind)] rejected), by hand from the rules."""
    fields = list(zip(mapping.fields, spec["fields"], strict=True))
    kept: dict[str, tuple[dt.datetime, dict[str, str | None]]] = {}
    rejected: list[tuple[str | None, str]] = []
    for row in rows:
        key = canonical("string", row["account_id"])
        if key is None:
            rejected.append((None, "empty id"))
            continue
        values = {f.property: _readable(mapping, f, _raw(row, s)) for f, s in fields}
        if any(v is False for v in values.values()):
            rejected.append((key, "unreadable"))
            continue
        held = kept.get(key)
        if held is None or row["updated_at"] > held[0]:
            if held is not None:
                rejected.append((key, "duplicate"))
            kept[key] = (row["updated_at"], values)  # type: ignore[assignment]
        else:
            rejected.append((key, "duplicate"))
    return {k: v for k, (_, v) in kept.items()}, sorted(rejected, key=repr)


def _kind(reason: str) -> str:
    if reason.startswith("the id "):
        return "empty id"
    if reason.startswith("duplicate id"):
        return "duplicate"
    assert reason.startswith("field ") and reason.endswith(
        ": the record is not sent, HubSpot keeps its values"
    ), reason
    return "unreadable"


@SETTINGS
@given(spec=mapping_specs(), rows=source_rows(), later=source_rows())
def test_every_row_is_desired_exactly_or_rejected_and_the_plan_follows_the_rules(
    spec: dict[str, Any], rows: list[dict[str, Any]], later: list[dict[str, Any]]
) -> None:
    base = _fresh()
    try:
        mapping = _write(base, spec)
        wh = Warehouse(base / "warehouse")
        state_db = base / "state.duckdb"
        owners = {f.property: f.owner for f in mapping.fields}
        policies = {f.property: f.null_policy for f in mapping.fields}

        # 1. Desired state: exactly the hand-computed values, or rejected with a reason.
        wh.write("accounts", rows)
        want, want_rejected = expected_state(mapping, spec, rows)
        table, _ = desired_table(wh.root, mapping, AS_OF)
        got = {r.pop("external_id"): r for r in table.to_pylist()}
        assert got == want, _first_difference(got, want)
        first, changes = plan(state_db, wh.root, mapping, AS_OF)
        with first:
            rejected = sorted(
                ((r["external_id"], _kind(r["reason"])) for r in first.rejected_rows().to_pylist()),
                key=repr,
            )
        assert rejected == want_rejected, (rejected, want_rejected)

        # 2. From an empty portal: every record created with each value it has, nothing else.
        assert {c.external_id: c.kind for c in changes} == dict.fromkeys(want, "create")
        for c in changes:
            values = {p: v for p, v in want[c.external_id].items() if v is not None}
            assert c.properties == {"spokesync_account_id": c.external_id, **values}
        confirm_all(state_db, mapping, changes, "run-1")
        assert _changes(state_db, wh, mapping) == []  # unchanged: zero writes

        # 3. New rows for the same and other keys: the diff rules, by hand.
        wh.write("accounts", later)
        held = {k: {p: v for p, v in r.items() if v is not None} for k, r in want.items()}
        want2, _ = expected_state(mapping, spec, later)
        changes2 = _changes(state_db, wh, mapping)
        expected_changes: dict[str, dict[str, str]] = {}
        for key, values in want2.items():
            old = held.get(key)
            if old is None:
                new = {p: v for p, v in values.items() if v is not None}
                expected_changes[key] = {"spokesync_account_id": key, **new}
                continue
            diff = {}
            for p, v in values.items():
                if owners[p] == "hubspot":
                    if p not in old and v is not None:
                        diff[p] = v
                elif v is None:
                    if policies[p] == "clear" and p in old:
                        diff[p] = ""  # a clear, only under null_policy clear
                elif old.get(p) != v:
                    diff[p] = v
            if diff:
                expected_changes[key] = diff
        got2 = {c.external_id: dict(c.properties) for c in changes2}
        assert got2 == expected_changes, _first_difference(got2, expected_changes)
        confirm_all(state_db, mapping, changes2, "run-2")
        assert _changes(state_db, wh, mapping) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)
