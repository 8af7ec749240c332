"""Load and validate mapping files; errors name the file, the field and what is wrong."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from spokesync.mapping.spec import MappingSpec

SpecT = TypeVar("SpecT", bound=BaseModel)


class MappingError(ValueError):
    """A mapping file is missing, unreadable or invalid."""


def _location(data: Any, loc: tuple[int | str, ...]) -> str:
    """``fields[2] (dealstage).options`` from a pydantic error location."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            try:
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("property"), str):
                    label += f" ({node['property']})"
            except (IndexError, KeyError, TypeError):
                node = None
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def load_spec(path: Path | str, model: type[SpecT], what: str = "mapping") -> SpecT:
    """Read one YAML spec file into ``model`` (a mapping, list mapping or task trigger).

    Adds ``path`` and ``version`` (the file's hash). Raises :class:`MappingError` naming the
    file, the field, what is wrong and the bad value."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise MappingError(f"{p}: cannot read {what} file: {e.strerror or e}") from e
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise MappingError(f"{p}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise MappingError(f"{p}: expected a mapping (key: value) at the top level")
    for reserved in ("path", "version"):
        if reserved in data:
            raise MappingError(f"{p}: {reserved}: is set by the loader, remove it from the file")
    version = hashlib.sha256(raw).hexdigest()[:12]
    try:
        return model.model_validate({**data, "path": p, "version": version})
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = _location(data, tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            bad = err.get("input")  # name the bad value (e.g. `type: numbr`)
            scalar = isinstance(bad, str | int | float | bool)
            if scalar and err["type"] not in ("missing", "value_error") and repr(bad) not in msg:
                msg += f" (got {bad!r})"
            problems.append(f"{p}: {where}: {msg}")
        raise MappingError("\n".join(problems)) from None


def load_mapping(path: Path | str) -> MappingSpec:
    """Read one mapping YAML file. Raises :class:`MappingError` naming the file and field."""
    return load_spec(path, MappingSpec)


def load_mappings(paths_or_dir: Path | str | Iterable[Path | str]) -> list[MappingSpec]:
    """Load a directory of ``*.yaml``/``*.yml`` files (sorted by name) or a list of files.

    Two mappings for the same object type are an error.
    """
    if isinstance(paths_or_dir, str | Path):
        root = Path(paths_or_dir)
        if root.is_dir():
            paths = sorted([*root.glob("*.yaml"), *root.glob("*.yml")])
            if not paths:
                raise MappingError(f"{root}: no *.yaml mapping files in this directory")
        else:
            paths = [root]
    else:
        paths = [Path(p) for p in paths_or_dir]
    specs = [load_mapping(p) for p in paths]
    seen: dict[str, Path] = {}
    for spec in specs:
        if spec.object_type in seen:
            raise MappingError(
                f"{spec.path}: object_type {spec.object_type!r} is already mapped by "
                f"{seen[spec.object_type]}"
            )
        seen[spec.object_type] = spec.path
    return specs


def load_mappings_tolerant(
    paths: Iterable[Path | str],
) -> tuple[list[MappingSpec], dict[Path, str]]:
    """Load each file on its own: (the valid mappings, {file: error}) instead of raising.

    For the Dagster code location, where one broken file must not take every other mapping's
    assets down. A second file for an already-mapped object type is reported as that file's
    error. The CLI keeps the strict :func:`load_mappings`."""
    specs: list[MappingSpec] = []
    errors: dict[Path, str] = {}
    seen: dict[str, Path] = {}
    for raw in paths:
        p = Path(raw)
        try:
            spec = load_mapping(p)
        except MappingError as e:
            errors[p] = str(e)
            continue
        if spec.object_type in seen:
            errors[p] = (
                f"{p}: object_type {spec.object_type!r} is already mapped by "
                f"{seen[spec.object_type]}"
            )
            continue
        seen[spec.object_type] = p
        specs.append(spec)
    return specs, errors
