"""Turn a raw chunk into typed valid rows plus per-row failures (vectorised, no per-row Python
on the valid path).

Steps: drop extra columns; add missing nullable columns as nulls; fail every row on a missing
required column; parse each column to its contract type (a value that does not parse is a
``parse_<kind>`` failure); normalise emails/domains; pandera lazy validation, whose
``failure_cases`` map failures to row positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from spokesync.ingest.contract import SOURCES
from spokesync.ingest.normalise import normalise
from spokesync.ingest.schemas import schema_for

Failure = dict[str, object]  # {"column", "check", "failure_case"}


@dataclass(slots=True)
class Validated:
    frame: pd.DataFrame  # typed, contract columns only, same positions as the input
    valid: np.ndarray  # bool per row
    failures: dict[int, list[Failure]]  # position -> failed checks (only for invalid rows)
    normalised: int
    columns_added: list[str]
    columns_missing: list[str]


def _parse(kind: str, values: pd.Series) -> pd.Series:
    if kind == "int":
        num = pd.to_numeric(values, errors="coerce")
        whole = num.where(num.isna() | (num == np.floor(num)))
        return whole.astype("Int64")
    if kind == "float":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if kind == "timestamp":
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            return values.dt.tz_convert("UTC").dt.as_unit("us")
        return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601").dt.as_unit("us")
    if kind == "date":
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return values.astype("datetime64[us]")
        return pd.to_datetime(values, errors="coerce", format="%Y-%m-%d").astype("datetime64[us]")
    return values if values.dtype == "str" else values.astype("str").where(values.notna(), None)


_ALREADY_TYPED = {
    "int": lambda s: isinstance(s.dtype, pd.Int64Dtype),
    "float": lambda s: s.dtype == "float64",
    "timestamp": lambda s: str(s.dtype) == "datetime64[us, UTC]",
    "date": lambda s: str(s.dtype) == "datetime64[us]",
    "str": lambda s: s.dtype == "str",
}


def validate_chunk(source: str, frame: pd.DataFrame, day: str | None) -> Validated:
    spec = SOURCES[source]
    n = len(frame)
    present = list(frame.columns)
    added = [c for c in present if c not in spec.column_names]
    missing = [c.name for c in spec.columns if c.name not in present]
    failures: dict[int, list[Failure]] = {}
    typed = pd.DataFrame(index=frame.index)
    bad = np.zeros(n, dtype=bool)

    missing_required = [c for c in missing if c in spec.required_columns]
    for col in spec.columns:
        if col.name not in present:
            typed[col.name] = pd.Series([None] * n, index=frame.index, dtype="object")
            continue
        raw = frame[col.name]
        if _ALREADY_TYPED[col.kind](raw):
            typed[col.name] = raw
            continue
        parsed = _parse(col.kind, raw)
        if col.kind != "str":
            unparsable = (raw.notna() & parsed.isna()).to_numpy()
            for pos in np.flatnonzero(unparsable):
                failures.setdefault(int(pos), []).append(
                    {
                        "column": col.name,
                        "check": f"parse_{col.kind}",
                        "failure_case": str(raw.iat[pos]),
                    }  # fmt: skip
                )
            bad |= unparsable
        typed[col.name] = parsed

    if missing_required:
        for pos in range(n):
            failures.setdefault(pos, []).extend(
                {"column": c, "check": "column_in_dataframe", "failure_case": None}
                for c in missing_required
            )
        return Validated(typed, np.zeros(n, dtype=bool), failures, 0, added, missing)

    for col in spec.columns:  # missing optional columns: typed nulls
        if col.name in missing:
            typed[col.name] = _parse(col.kind, pd.Series([None] * n, dtype="str"))

    typed, n_normalised = normalise(source, typed)
    try:
        schema_for(source, day).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as e:
        cases = e.failure_cases
        whole = cases[cases["index"].isna()]
        if len(whole):  # a column-level failure (e.g. wrong dtype) fails every row
            for pos in range(n):
                failures.setdefault(pos, []).extend(
                    {
                        "column": r.column,
                        "check": _check_name(r.check),
                        "failure_case": _plain(r.failure_case),
                    }  # fmt: skip
                    for r in whole.itertuples()
                )
            bad[:] = True
        rows = cases[cases["index"].notna()]
        positions = rows["index"].astype("int64").to_numpy()
        bad[positions] = True
        for pos, column, check, case in zip(
            positions, rows["column"], rows["check"], rows["failure_case"], strict=True
        ):
            earlier = failures.get(int(pos), [])
            if check == "not_nullable" and any(f["column"] == column for f in earlier):
                continue  # already reported as unparseable: the null is its consequence
            failures.setdefault(int(pos), []).append(
                {"column": column, "check": _check_name(check), "failure_case": _plain(case)}
            )
    return Validated(typed, ~bad, failures, n_normalised, added, missing)


def _check_name(check: object) -> str:
    """``isin(['a', 'b'])`` → ``isin``: the check's name without its arguments."""
    return str(check).split("(", 1)[0]


def _plain(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (int, float, str, bool)) else str(value)
