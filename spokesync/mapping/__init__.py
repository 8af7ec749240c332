"""Mapping specifications: one YAML file per synced HubSpot object (see docs/mappings.md)."""

from spokesync.mapping.loader import MappingError, load_mapping, load_mappings
from spokesync.mapping.spec import (
    AssociationSpec,
    FieldSpec,
    IdSpec,
    MappingSpec,
    SourceSpec,
    validate_identifier,
)

__all__ = [
    "AssociationSpec",
    "FieldSpec",
    "IdSpec",
    "MappingError",
    "MappingSpec",
    "SourceSpec",
    "load_mapping",
    "load_mappings",
    "validate_identifier",
]
