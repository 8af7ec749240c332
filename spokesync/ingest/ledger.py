"""Which landing files were last ingested, so ``spokesync ingest`` can skip unchanged ones.

One small JSON file per source and partition under ``warehouse/_ingested/`` holds the
fingerprint (relative path, size, mtime) of the files that were loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from spokesync.ingest.readers import landing_files


def _ledger_path(warehouse_dir: Path, source: str, partition: str | None) -> Path:
    return Path(warehouse_dir) / "_ingested" / source / f"{partition or 'master'}.json"


def fingerprint(source: str, landing: Path, partition: str | None) -> list[list[object]]:
    out: list[list[object]] = []
    for f in landing_files(source, landing, partition):
        st = f.stat()
        out.append([str(f.relative_to(landing)), st.st_size, st.st_mtime_ns])
    return out


def is_up_to_date(source: str, landing: Path, warehouse_dir: Path, partition: str | None) -> bool:
    path = _ledger_path(warehouse_dir, source, partition)
    if not path.exists():
        return False
    return json.loads(path.read_text()) == fingerprint(source, landing, partition)


def record(source: str, landing: Path, warehouse_dir: Path, partition: str | None) -> None:
    path = _ledger_path(warehouse_dir, source, partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(fingerprint(source, landing, partition)))
    os.replace(tmp, path)
