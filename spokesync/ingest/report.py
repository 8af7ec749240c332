"""The outcome of ingesting one source and partition, and where the last one is kept."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(slots=True)
class IngestReport:
    source: str
    partition: str | None
    run_id: str
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    rows_normalised: int = 0
    rows_superseded: int = 0  # duplicated keys: rows a newer (or the first) row replaced
    columns_added: list[str] = field(default_factory=list)
    columns_missing: list[str] = field(default_factory=list)
    failed_checks: dict[str, int] = field(default_factory=dict)  # "column:check" -> rows
    preview_markdown: str = ""
    duration_s: float = 0.0
    output_path: str = ""
    quarantine_path: str | None = None

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "quarantine_rate": self.quarantine_rate}


def _report_path(warehouse_dir: Path, source: str, partition: str | None) -> Path:
    return Path(warehouse_dir) / "_reports" / source / f"{partition or 'master'}.json"


def save_report(warehouse_dir: Path, report: IngestReport) -> None:
    """Keep the last report of each source and partition (read by the Dagster checks)."""
    path = _report_path(warehouse_dir, report.source, report.partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{report.run_id}.tmp")
    tmp.write_text(json.dumps(asdict(report), indent=1))
    os.replace(tmp, path)


def load_report(warehouse_dir: Path, source: str, partition: str | None) -> IngestReport | None:
    """The last successful report of a source and partition, or None if never ingested."""
    path = _report_path(warehouse_dir, source, partition)
    if not path.exists():
        return None
    return IngestReport(**json.loads(path.read_text()))
