"""Change thresholds: how much a value has to move before it is worth a write.

A mapping field may say that small moves are not worth a HubSpot write (each write spends
budget, adds to the record's property history and can fire people's workflows):

- ``tolerance: {absolute: 5}`` / ``{relative: 0.1}`` (numbers): the desired value is *within*
  when ``|desired − held| ≤ absolute`` or ``|desired − held| ≤ relative × |held|``;
- ``resolution: day`` / ``{unit: day, timezone: Europe/Berlin}`` (dates, datetimes): within
  when both fall in the same calendar unit (the same day in that time zone);
- ``buckets: [20, 40, 60]`` (numbers): within when both fall in the same bucket (an edge
  belongs to the bucket above it: ``[20, 40)``).

"Held" is what the snapshot says HubSpot holds, never the last desired value that was not
sent, so the gap between HubSpot and the warehouse never grows past the threshold. A held value
that is empty or not readable as the field's type is never "within": first writes and clears
always go through. :func:`tolerated_sql` builds the predicate the diff (:mod:`spokesync.diff`)
evaluates in DuckDB over the two canonical strings; thresholds are bound as parameters.

Numbers compare exactly in ``DECIMAL(38, 18)`` while both values are below 10^13 in size (a
relative tolerance as the integer ratio p / 10^6: ``|d − h| × 10^6 ≤ |h| × p``, so no rounding
decides a value at the edge), and in DOUBLE beyond that.
"""

from __future__ import annotations

from decimal import Decimal

from spokesync.mapping.spec import (
    RESOLUTION_UNITS,
    THRESHOLD_MAX,
    THRESHOLD_PLACES,
    FieldSpec,
    MappingSpec,
)

DEC = "DECIMAL(38, 18)"
_SCALE = 10**THRESHOLD_PLACES
_LIMIT = f"{int(THRESHOLD_MAX)}"


def _number_within(f: FieldSpec, held: str, desired: str, key: str) -> tuple[str, dict]:
    assert f.tolerance is not None
    tol = f.tolerance
    hx, dx = f"TRY_CAST({held} AS {DEC})", f"TRY_CAST({desired} AS {DEC})"
    hd, dd = f"TRY_CAST({held} AS DOUBLE)", f"TRY_CAST({desired} AS DOUBLE)"
    params: dict[str, object] = {}
    exact, approx = [], []
    if tol.absolute:
        params[f"{key}_a"] = f"{tol.absolute:f}"
        exact.append(f"abs({dx} - {hx}) <= CAST(${key}_a AS {DEC})")
        approx.append(f"abs({dd} - {hd}) <= CAST(${key}_a AS DOUBLE)")
    if tol.relative:
        params[f"{key}_p"] = int(tol.relative * _SCALE)
        params[f"{key}_r"] = f"{tol.relative:f}"
        exact.append(f"abs({dx} - {hx}) * {_SCALE} <= abs({hx}) * CAST(${key}_p AS INTEGER)")
        approx.append(f"abs({dd} - {hd}) <= CAST(${key}_r AS DOUBLE) * abs({hd})")
    sql = (
        f"CASE WHEN abs({hx}) < {_LIMIT} AND abs({dx}) < {_LIMIT} THEN ({' OR '.join(exact)}) "
        f"WHEN isfinite({hd}) AND isfinite({dd}) THEN ({' OR '.join(approx)}) END"
    )
    return sql, params


def _bucket(edges: list[Decimal], value: str, key: str) -> str:
    xd, xx = f"TRY_CAST({value} AS DOUBLE)", f"TRY_CAST({value} AS {DEC})"
    whens = " ".join(f"WHEN {xx} < CAST(${key}_e{i} AS {DEC}) THEN {i}" for i in range(len(edges)))
    n = len(edges)
    return (
        f"(CASE WHEN NOT isfinite({xd}) THEN NULL WHEN {xd} >= {_LIMIT} THEN {n} "
        f"WHEN {xd} <= -{_LIMIT} THEN 0 {whens} ELSE {n} END)"
    )


def _buckets_within(f: FieldSpec, held: str, desired: str, key: str) -> tuple[str, dict]:
    assert f.buckets is not None
    params: dict[str, object] = {f"{key}_e{i}": f"{e:f}" for i, e in enumerate(f.buckets)}
    return f"{_bucket(f.buckets, held, key)} = {_bucket(f.buckets, desired, key)}", params


def _resolution_within(f: FieldSpec, held: str, desired: str, key: str) -> tuple[str, dict]:
    assert f.resolution is not None
    unit = f.resolution.unit
    assert unit in RESOLUTION_UNITS[f.type]  # a fixed word, checked by the spec
    if f.type == "date":
        h, d = f"TRY_CAST({held} AS DATE)", f"TRY_CAST({desired} AS DATE)"
        return f"date_trunc('{unit}', {h}) = date_trunc('{unit}', {d})", {}
    params = {f"{key}_tz": f.resolution.timezone}

    def local(v: str) -> str:
        return f"date_trunc('{unit}', timezone(${key}_tz, TRY_CAST({v} AS TIMESTAMPTZ)))"

    return f"{local(held)} = {local(desired)}", params


def field_within_sql(f: FieldSpec, held: str, desired: str, key: str) -> tuple[str, dict] | None:
    """SQL true when ``desired`` is within ``f``'s threshold of ``held`` (both canonical
    strings), false or NULL otherwise; None when ``f`` has no threshold."""
    if f.tolerance is not None:
        return _number_within(f, held, desired, key)
    if f.buckets is not None:
        return _buckets_within(f, held, desired, key)
    if f.resolution is not None:
        return _resolution_within(f, held, desired, key)
    return None


def tolerated_sql(
    mapping: MappingSpec, prop: str = "d.property", held: str = "s.value", desired: str = "d.value"
) -> tuple[str, dict[str, object]]:
    """A predicate over the diff's (property, held, desired) row: the desired value differs
    only within its field's threshold, so it is not sent. ``false`` for mappings without
    thresholds (the diff then costs nothing more)."""
    whens: list[str] = []
    params: dict[str, object] = {}
    for i, f in enumerate(mapping.fields):
        built = field_within_sql(f, held, desired, f"tol{i}")
        if built is None:
            continue
        sql, p = built
        whens.append(f"WHEN '{f.property}' THEN coalesce(({sql}), false)")
        params.update(p)
    if not whens:
        return "false", {}
    return (
        f"({desired} IS NOT NULL AND {held} IS NOT NULL AND {held} <> {desired} AND "
        f"CASE {prop} {' '.join(whens)} ELSE false END)",
        params,
    )
