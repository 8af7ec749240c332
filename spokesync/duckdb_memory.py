"""How much memory DuckDB may use in one spokesync process, and where it spills beyond that.

DuckDB's own default is 80% of the machine's RAM *per database*, and a sync holds two at once
(the plan's in-memory working database and the state store's file), so without a limit one
sync on a big warehouse can take most of a shared machine. Two settings (``docs/deployment.md``):

- ``SPOKESYNC_MEMORY_LIMIT`` (default ``1.5GB``): what DuckDB may hold in memory in one process.
  The working databases (desired state, diff, plan, task triggers, lists) get two thirds, the
  state store's buffer cache one third (its data is on disk; the cache only keeps hot pages).
  Python's own objects (HTTP, batches in flight) come on top, a few hundred MB.
- ``SPOKESYNC_TEMP_DIR`` (default: the system's temporary folder): where DuckDB writes what does
  not fit (a spill folder per connection, ``spokesync-duckdb-<pid>-<id>``, removed when the
  connection closes; one a killed process left behind can be deleted). The state store spills
  next to its file (``<state>.duckdb.tmp``) unless this is set.

Beyond the limit DuckDB spills (slower, same results); what cannot spill fails with DuckDB's
"out of memory" error, which names the limit to raise.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import duckdb

from spokesync.settings import SettingsError

MEMORY_LIMIT_VAR = "SPOKESYNC_MEMORY_LIMIT"
TEMP_DIR_VAR = "SPOKESYNC_TEMP_DIR"
DEFAULT_MEMORY_LIMIT = "1.5GB"
# The working databases' share of the budget; the state store gets the rest.
WORK_SHARE = 2 / 3
MIN_BYTES = 64 * 1024 * 1024  # below this DuckDB cannot run the plan's joins at all

# "all": the state store's instance while it also hosts the plans' working databases (one
# DuckDB instance then holds the store's cache and every plan; see spokesync.diff). It gets the
# working databases' share, not the whole budget: two plans live side by side then (one
# pushing, the next being made), and the process's resident memory ran ~0.9 GB above DuckDB's
# limit with the whole budget (2.48 GB at 100k; the store's clean cached pages are what DuckDB
# evicts first).
Role = Literal["work", "state", "all"]

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*")


def parse_size(text: str, variable: str = MEMORY_LIMIT_VAR) -> int:
    """``1.5GB``, ``800MB``, ``2GiB`` → bytes (GB = 1000³, GiB = 1024³, as DuckDB reads them)."""
    m = _SIZE.fullmatch(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise SettingsError(
            f"{variable}={text!r} is not a size: write a number and a unit, e.g. 1.5GB, 800MB, 2GiB"
        )
    size = int(float(m.group(1)) * _UNITS[unit])
    if size < MIN_BYTES:
        raise SettingsError(
            f"{variable}={text!r} is too small: spokesync needs at least 64MB for DuckDB"
        )
    return size


def memory_budget(environ: Mapping[str, str] | None = None) -> int:
    """The process's DuckDB budget in bytes, from ``SPOKESYNC_MEMORY_LIMIT``."""
    env = os.environ if environ is None else environ
    return parse_size(env.get(MEMORY_LIMIT_VAR) or DEFAULT_MEMORY_LIMIT)


def limit_bytes(role: Role, environ: Mapping[str, str] | None = None) -> int:
    """One database's share of the budget: ``work`` (plans), ``state`` (the state store) or
    ``all`` (the state store hosting the plans too: the working share, see ``Role``)."""
    budget = memory_budget(environ)
    return (
        int(budget * WORK_SHARE) if role in ("work", "all") else budget - int(budget * WORK_SHARE)
    )


def temp_root(environ: Mapping[str, str] | None = None) -> Path | None:
    """``SPOKESYNC_TEMP_DIR`` when set (created if missing), else None."""
    env = os.environ if environ is None else environ
    text = env.get(TEMP_DIR_VAR)
    if not text:
        return None
    root = Path(text)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SettingsError(f"{TEMP_DIR_VAR}={text!r} cannot be created ({e})") from e
    return root


def spill_dir(environ: Mapping[str, str] | None = None) -> Path:
    """A fresh spill folder name for one connection (DuckDB creates it when it first spills
    and removes it when the connection closes)."""
    root = temp_root(environ) or Path(tempfile.gettempdir())
    return root / f"spokesync-duckdb-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def configure(
    con: duckdb.DuckDBPyConnection, role: Role, environ: Mapping[str, str] | None = None
) -> None:
    """Set ``con``'s database memory limit and spill folder for ``role`` (see module doc).

    ``work`` connections always get a private spill folder (DuckDB's default for an in-memory
    database is ``.tmp`` in whatever the current directory is); the state store keeps DuckDB's
    ``<file>.tmp`` unless ``SPOKESYNC_TEMP_DIR`` is set."""
    set_limit(con, role, environ)
    if role == "work" or temp_root(environ) is not None:
        con.execute(f"SET temp_directory = '{_quoted(str(spill_dir(environ)))}'")


def set_limit(
    con: duckdb.DuckDBPyConnection, role: Role, environ: Mapping[str, str] | None = None
) -> None:
    """Set the memory limit of ``con``'s DuckDB instance to ``role``'s share."""
    con.execute(f"SET memory_limit = '{limit_bytes(role, environ) // 1024}KiB'")


def _quoted(text: str) -> str:
    return text.replace("'", "''")
