"""Load and validate mapping files; errors name the file, the field and what is wrong."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from spokesync.mapping.spec import MappingSpec


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


def load_mapping(path: Path | str) -> MappingSpec:
    """Read one mapping YAML file. Raises :class:`MappingError` naming the file and field."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise MappingError(f"{p}: cannot read mapping file: {e.strerror or e}") from e
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
        return MappingSpec.model_validate({**data, "path": p, "version": version})
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = _location(data, tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{p}: {where}: {msg}")
        raise MappingError("\n".join(problems)) from None


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
