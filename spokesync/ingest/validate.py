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

FAILURE_COLUMNS = ["pos", "column", "check", "failure_case"]


def failures_frame(
    pos: np.ndarray | list[int], column: object, check: object, case: object
) -> pd.DataFrame:
    """Failures as a frame: one row per (row position, column, check, failing value)."""
    n = len(pos)
    frame = pd.DataFrame(
        {
            "pos": np.asarray(pos, dtype=np.int64),
            "column": column if isinstance(column, (pd.Series, np.ndarray, list)) else [column] * n,
            "check": check if isinstance(check, (pd.Series, np.ndarray, list)) else [check] * n,
            "failure_case": case if isinstance(case, (pd.Series, np.ndarray, list)) else [case] * n,
        }
    )
    return frame.astype({"column": "object", "check": "object", "failure_case": "object"})


NO_FAILURES = failures_frame([], None, None, None)


@dataclass(slots=True)
class Validated:
    frame: pd.DataFrame  # typed, contract columns only, same positions as the input
    valid: np.ndarray  # bool per row
    failures: pd.DataFrame  # FAILURE_COLUMNS; ``pos`` = row position in the chunk
    normalised: int
    columns_added: list[str]
    columns_missing: list[str]

    def failures_at(self, pos: int) -> list[dict[str, object]]:
        rows = self.failures[self.failures["pos"] == pos]
        return rows.drop(columns="pos").to_dict("records")


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
    found: list[pd.DataFrame] = []
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
            if unparsable.any():
                pos = np.flatnonzero(unparsable)
                cases = raw.iloc[pos].astype("str").to_numpy(dtype=object)
                found.append(failures_frame(pos, col.name, f"parse_{col.kind}", cases))
            bad |= unparsable
        typed[col.name] = parsed

    if missing_required:
        every = np.repeat(np.arange(n), len(missing_required))
        columns = np.tile(np.array(missing_required, dtype=object), n)
        fails = failures_frame(every, columns, "column_in_dataframe", None)
        return Validated(typed, np.zeros(n, dtype=bool), fails, 0, added, missing)

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
            for r in whole.itertuples():
                found.append(
                    failures_frame(
                        np.arange(n), r.column, _check_name(r.check), _plain(r.failure_case)
                    )
                )
            bad[:] = True
        rows = cases[cases["index"].notna()]
        if len(rows):
            pos = rows["index"].astype("int64").to_numpy()
            bad[pos] = True
            checks = rows["check"].astype("str").str.split("(", n=1).str[0].to_numpy(dtype=object)
            found.append(
                failures_frame(
                    pos,
                    rows["column"].to_numpy(dtype=object),
                    checks,
                    [_plain(v) for v in rows["failure_case"]],
                )
            )
    if not found:
        return Validated(typed, ~bad, NO_FAILURES, n_normalised, added, missing)
    fails = pd.concat(found, ignore_index=True)
    # A value that did not parse is null afterwards: its not_nullable failure is a consequence.
    parsed_bad = fails[fails["check"].str.startswith("parse_")][["pos", "column"]]
    if len(parsed_bad):
        keys = pd.MultiIndex.from_frame(fails[["pos", "column"]])
        echo = keys.isin(pd.MultiIndex.from_frame(parsed_bad)) & (fails["check"] == "not_nullable")
        fails = fails[~echo].reset_index(drop=True)
    return Validated(typed, ~bad, fails, n_normalised, added, missing)


def _check_name(check: object) -> str:
    """``isin(['a', 'b'])`` → ``isin``: the check's name without its arguments."""
    return str(check).split("(", 1)[0]


def _plain(value: object) -> str | None:
    """A failing value as text (None for a null), as it is stored in the quarantine."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)
