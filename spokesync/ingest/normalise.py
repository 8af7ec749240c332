"""Fixes applied before validation. They are not errors: the values are repaired, and counted.

- emails: trimmed and lowercased (``"  Ada.Lovelace@Acme.COM "`` → ``"ada.lovelace@acme.com"``)
- domains: URLs reduced to the bare lowercase host (``"https://www.Acme.com/about"`` → ``"acme.com"``)
- identifiers (keys and references): trimmed of Unicode whitespace (done while parsing, in
  :mod:`spokesync.ingest.validate`; counted here)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spokesync.ingest.contract import SOURCES


def _columns(kind: str) -> dict[str, tuple[str, ...]]:
    """The columns the contract marks ``normalise=kind``, per source."""
    out = {
        s: tuple(c.name for c in spec.columns if c.normalise == kind) for s, spec in SOURCES.items()
    }
    return {s: cols for s, cols in out.items() if cols}


EMAIL_COLUMNS: dict[str, tuple[str, ...]] = _columns("email")
DOMAIN_COLUMNS: dict[str, tuple[str, ...]] = _columns("domain")


def normalise_email(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower()


def canonical_domain(values: pd.Series) -> pd.Series:
    """Bare lowercase host: scheme, ``www.``, port, path, query and trailing dot removed."""
    v = values.str.strip().str.lower()
    v = v.str.replace(r"^[a-z][a-z0-9+.\-]*://", "", regex=True)
    v = v.str.replace(r"[/?#:].*$", "", regex=True)
    v = v.str.replace(r"^www\.", "", regex=True)
    return v.str.rstrip(".")


def normalise(
    source: str, frame: pd.DataFrame, already: np.ndarray | None = None
) -> tuple[pd.DataFrame, int]:
    """Apply the source's fixes in place of the raw values; return the frame and how many rows
    had at least one value changed (``already``: rows changed by an earlier fix)."""
    changed = pd.Series(False if already is None else already, index=frame.index)
    fixes = [(c, normalise_email) for c in EMAIL_COLUMNS.get(source, ())]
    fixes += [(c, canonical_domain) for c in DOMAIN_COLUMNS.get(source, ())]
    for column, fix in fixes:
        if column not in frame.columns:
            continue
        before = frame[column]
        after = fix(before)
        changed |= before.notna() & (before != after).fillna(False)
        frame[column] = after
    return frame, int(changed.sum())
