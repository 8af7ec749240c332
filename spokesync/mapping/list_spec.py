"""List mappings (``mappings/lists/*.yaml``): a static HubSpot list kept equal to a SQL segment.

The segment's SQL runs over the warehouse views (``$as_of`` and ``parameters`` bound) and
yields one row per member, the member's external id in ``id_column`` — the same id the
object's mapping upserts by (contacts: the email, lowercased; companies: the account id). The
list is found by name in HubSpot or created as a ``MANUAL`` (static) list; each run sends only
the members to add and to remove (see ``docs/mappings.md``, "List mappings").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from spokesync.mapping.loader import MappingError, load_spec
from spokesync.mapping.spec import SourceSpec, _Strict, validate_identifier

LIST_NAME_MAX = 255


class ListMappingSpec(_Strict):
    kind: Literal["list"] = Field(description="marks the file as a list mapping")
    name: str = Field(description="the mapping's name (an identifier): the Dagster asset key")
    list_name: str = Field(description="the HubSpot list's name (unique in the portal)")
    object_type: Literal["contacts", "companies"]
    processing_type: str = Field(
        default="MANUAL", description="MANUAL: a static list only spokesync and people change"
    )
    id_column: str = Field(default="external_id", description="column with the member's id")
    source: SourceSpec
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)
    reread_days: int = Field(
        default=7, ge=1, le=90, description="read the members back from HubSpot this often"
    )
    shadow: bool = Field(default=False, description="plan only: send nothing for this list")
    description: str | None = None
    path: Path
    version: str

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        return validate_identifier(v, "list mapping name")

    @field_validator("id_column")
    @classmethod
    def _check_column(cls, v: str) -> str:
        return validate_identifier(v, "id_column")

    @field_validator("list_name")
    @classmethod
    def _check_list_name(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("must not be empty")
        if len(v) > LIST_NAME_MAX:
            raise ValueError(f"must be at most {LIST_NAME_MAX} characters")
        if "/" in v or "\\" in v:
            raise ValueError(
                "must not contain '/' or '\\' (HubSpot's find-by-name route takes the name in "
                "its path)"
            )
        return v

    @field_validator("processing_type")
    @classmethod
    def _check_processing(cls, v: str) -> str:
        if v != "MANUAL":
            raise ValueError(
                f"{v!r} is not supported: a list kept equal to a SQL segment is a MANUAL (static) "
                "list; HubSpot computes DYNAMIC lists' members itself and refuses membership "
                "writes to them, and SNAPSHOT lists are evaluated once by HubSpot's filters"
            )
        return v

    @property
    def asset_name(self) -> str:
        return f"list_{self.name}"


def load_list_mapping(path: Path) -> ListMappingSpec:
    """One list mapping; :class:`MappingError` names the file and the field."""
    return load_spec(path, ListMappingSpec, "list mapping")


def load_list_mappings(folder: Path) -> list[ListMappingSpec]:
    """Every ``*.yaml`` list mapping in ``folder`` (none if it does not exist); two files with
    the same mapping name or the same HubSpot list name (without case) are an error."""
    specs = [load_list_mapping(p) for p in sorted(Path(folder).glob("*.yaml"))]
    names: dict[str, Path] = {}
    lists: dict[str, Path] = {}
    for s in specs:
        if s.name in names:
            raise MappingError(
                f"{s.path}: list mapping {s.name!r} is already defined in {names[s.name]}"
            )
        key = s.list_name.casefold()
        if key in lists:
            raise MappingError(
                f"{s.path}: list_name {s.list_name!r} is already managed by {lists[key]} "
                "(HubSpot list names are unique without case)"
            )
        names[s.name] = s.path
        lists[key] = s.path
    return specs
