"""Task triggers (``mappings/tasks/*.yaml``): SQL that yields one row per event worth a
HubSpot task (e.g. an account crossing a usage threshold on a day), and how the task reads.

Each row's event id is derived from the trigger name and its ``key`` columns only, so the same
crossing always has the same id: a rerun, a backfill replaying the day, or a run after a crash
finds it in the task ledger and creates nothing again (see ``docs/workflows.md``).

An event is worth a task only when it is real and recent: ``complete_window`` names the daily
table whose partitions must all be present for the days the event was computed from (a 7-day
count on the warehouse's first days is the window filling up, not a crossing), and
``lookback_days`` bounds how old an event may be, counted back from the newest data, so a first
sync over a year of history does not flood the owners with tasks about last spring.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from spokesync.mapping.loader import MappingError, load_spec
from spokesync.mapping.spec import SourceSpec, _Strict, validate_identifier


class CompleteWindow(_Strict):
    """The days an event is computed from: it counts only when all of them are in the
    warehouse (one partition per day of ``table``)."""

    table: str = Field(description="daily-partitioned warehouse table (product_usage)")
    days: int = Field(
        ge=1,
        le=366,
        description="consecutive days ending on the event's day whose partitions must exist",
    )

    @field_validator("table")
    @classmethod
    def _check_table(cls, v: str) -> str:
        from spokesync.warehouse import PARTITIONED_TABLES

        if v not in PARTITIONED_TABLES:
            raise ValueError(
                f"{v!r} is not a daily-partitioned warehouse table; expected one of "
                + ", ".join(PARTITIONED_TABLES)
            )
        return v


class TaskTriggerSpec(_Strict):
    name: str
    about: str = Field(description="object type the task is associated with (companies)")
    about_column: str = Field(description="column holding that record's external id")
    key: list[str] = Field(min_length=1, description="columns identifying one event")
    source: SourceSpec
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    subject: str = Field(description="SQL expression: the task title")
    body: str = Field(description="SQL expression: the task notes (the event marker is added)")
    due: str = Field(description="SQL expression: the due date/time (hs_timestamp)")
    owner_column: str | None = Field(
        default=None, description="column with the HubSpot owner id (hubspot_owner_id)"
    )
    occurred_column: str | None = Field(
        default=None, description="column with the event's day (a DATE): its age and window"
    )
    lookback_days: int = Field(
        default=7,
        ge=1,
        le=366,
        description="an event older than this many days before the newest data is history, "
        "not a task (bound as $lookback_days too)",
    )
    complete_window: CompleteWindow | None = None
    priority: Literal["LOW", "MEDIUM", "HIGH"] = "HIGH"
    task_type: Literal["EMAIL", "CALL", "TODO"] = "TODO"
    event_type: str = "task_created"
    path: Path
    version: str

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        return validate_identifier(v, "trigger name")

    @field_validator("about_column", "owner_column", "occurred_column")
    @classmethod
    def _check_column(cls, v: str | None) -> str | None:
        return None if v is None else validate_identifier(v, "column")

    @field_validator("parameters")
    @classmethod
    def _check_parameters(cls, v: dict[str, object]) -> dict[str, object]:
        for name in v:
            validate_identifier(name, "parameter name")
            if name in ("as_of", "since"):
                raise ValueError(f"parameters: {name!r} is bound by the run (the partition days)")
            if name == "lookback_days":
                raise ValueError(
                    "parameters: 'lookback_days' is a top-level setting of the trigger "
                    "(it bounds the events' age too)"
                )
        return v

    @field_validator("key")
    @classmethod
    def _check_key(cls, v: list[str]) -> list[str]:
        return [validate_identifier(c, "key column") for c in v]

    @field_validator("subject", "body", "due")
    @classmethod
    def _check_expr(cls, v: str) -> str:
        if ";" in v:
            raise ValueError("must be a single SQL expression (found ';')")
        return v.strip()

    @model_validator(mode="after")
    def _check_occurred(self) -> TaskTriggerSpec:
        if self.occurred_column is None and self.complete_window is not None:
            raise ValueError("complete_window needs occurred_column (the event's day)")
        return self

    def event_id(self, key_values: Iterable[object]) -> str:
        """``evt`` + 32 hex digits of sha256(trigger name, key values): stable across runs,
        one token (the marker HubSpot search finds)."""
        text = "\x1f".join([self.name, *("" if v is None else str(v) for v in key_values)])
        return "evt" + hashlib.sha256(text.encode()).hexdigest()[:32]


def load_task_trigger(path: Path) -> TaskTriggerSpec:
    """One task trigger; :class:`MappingError` names the file and the field."""
    return load_spec(path, TaskTriggerSpec, "task trigger")


def load_task_triggers(folder: Path) -> list[TaskTriggerSpec]:
    """Every ``*.yaml`` trigger in ``folder`` (none if the folder does not exist)."""
    specs = [load_task_trigger(p) for p in sorted(Path(folder).glob("*.yaml"))]
    names: dict[str, Path] = {}
    for s in specs:
        if s.name in names:
            raise MappingError(
                f"{s.path}: trigger {s.name!r} is already defined in {names[s.name]}"
            )
        names[s.name] = s.path
    return specs
