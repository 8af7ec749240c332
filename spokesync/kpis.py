"""Per-run KPIs and alert thresholds for one synced object, from the run's report, the state
store and the desired state. Plain Python; the Dagster push asset records them as metadata
(plotted over time) and evaluates :func:`breaches` as asset checks.

KPIs (``None`` where they do not apply):

- ``success_rate``: records HubSpot accepted / records sent;
- ``failed_rate``: records dead-lettered / records sent;
- ``retry_rate``: retried requests / write calls;
- ``duration_s``: the object's sync, plan and push;
- ``open_dead_letters``: open dead letters of the object after the run;
- ``duplicate_rate``: HubSpot records sharing their dedupe key (contacts by email, companies by
  domain) with another record of the snapshot / records with that key;
- ``missing_required_rate``: desired records with a required field empty / desired records;
- ``association_completeness``: desired links confirmed in HubSpot / desired links, per kind of
  link (target object, and label if any): the newest measurement the push recorded after its
  associations (:mod:`spokesync.completeness`), not a second count.

:func:`breaches` gives one verdict per threshold: ``failed_records``, ``dead_letters_growing``,
``sync_latency`` and one ``kpi_<name>`` check per KPI (:data:`KPI_CHECKS`), each with the value
and its threshold as metadata.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from spokesync.completeness import latest_completeness
from spokesync.hubspot.push import PushReport
from spokesync.mapping.spec import MappingSpec, quote_identifier
from spokesync.warehouse import sql_literal

# HubSpot's own dedupe keys per object (the property HubSpot treats as the record's identity).
DEDUPE_KEYS: dict[str, str] = {"contacts": "email", "companies": "domain"}


@dataclass(frozen=True)
class Thresholds:
    """When a KPI becomes an alert (fractions are 0..1)."""

    max_failed_rate: float = 0.01
    min_success_rate: float = 0.99
    max_retry_rate: float = 0.2
    max_duplicate_rate: float = 0.02
    max_missing_required_rate: float = 0.01
    min_association_completeness: float = 0.98
    max_duration_s: float = 3600.0  # one object's sync, plan and push
    max_open_dead_letters: int = 100
    batch_sla: dt.timedelta = dt.timedelta(hours=24)
    priority_sla: dt.timedelta = dt.timedelta(minutes=5)
    priority_objects: frozenset[str] = frozenset()


@dataclass
class Kpis:
    object_type: str
    success_rate: float | None = None
    failed_rate: float | None = None
    retry_rate: float | None = None
    duration_s: float = 0.0
    open_dead_letters: int | None = None  # None: the state store could not be read
    open_dead_letters_before: int | None = None
    duplicate_rate: float | None = None
    missing_required_rate: float | None = None
    association_completeness: dict[str, float] = field(default_factory=dict)
    latency_s: float | None = None  # landing of the day's files → the push finished

    def as_metadata(self) -> dict[str, float | int]:
        """Flat numbers (Dagster plots numeric metadata over time)."""
        out: dict[str, float | int] = {"kpi_duration_s": round(self.duration_s, 3)}
        if self.open_dead_letters is not None:
            out["kpi_open_dead_letters"] = self.open_dead_letters
        for name in (
            "success_rate",
            "failed_rate",
            "retry_rate",
            "duplicate_rate",
            "missing_required_rate",
            "latency_s",
        ):
            value = getattr(self, name)
            if value is not None:
                out[f"kpi_{name}"] = round(value, 6)
        for target, value in sorted(self.association_completeness.items()):
            out[f"kpi_association_completeness_{target}"] = round(value, 6)
        return out


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def state_kpis(state_db: Path, mapping: MappingSpec, desired_parquet: Path | None) -> Kpis:
    """The store- and desired-state KPIs (read-only; the caller adds the run's own)."""
    k = Kpis(mapping.object_type)
    obj = mapping.object_type
    con = duckdb.connect()
    try:
        attached = False
        if state_db.exists():
            try:
                con.execute(f"ATTACH {sql_literal(str(state_db))} AS st (READ_ONLY)")
                attached = True
            except duckdb.IOException:  # another process is writing: report the rest
                attached = False
        if attached:
            (k.open_dead_letters,) = con.execute(
                "SELECT count(*) FROM st.dead_letter WHERE object_type = $ot AND state = 'open'",
                {"ot": obj},
            ).fetchone() or (0,)
            key = DEDUPE_KEYS.get(obj)
            if key is not None:
                row = con.execute(
                    "WITH v AS (SELECT lower(value) AS v, count(DISTINCT hubspot_id) AS n "
                    "FROM st.snapshot WHERE object_type = $ot AND property = $p "
                    "AND hubspot_id IS NOT NULL AND coalesce(value, '') <> '' GROUP BY 1) "
                    "SELECT coalesce(sum(n) FILTER (WHERE n > 1), 0), coalesce(sum(n), 0) FROM v",
                    {"ot": obj, "p": key},
                ).fetchone()
                k.duplicate_rate = _ratio(int(row[0]), int(row[1])) if row else None
        if desired_parquet is not None and desired_parquet.exists():
            con.execute(
                f"CREATE VIEW d AS SELECT * FROM read_parquet({sql_literal(str(desired_parquet))})"
            )
            cols = {r[0] for r in con.execute("DESCRIBE d").fetchall()}
            required = [f.property for f in mapping.fields if f.required and f.property in cols]
            (total,) = con.execute("SELECT count(*) FROM d").fetchone() or (0,)
            if required:
                empty = " OR ".join(f"coalesce({quote_identifier(p)}, '') = ''" for p in required)
                (missing,) = con.execute(f"SELECT count(*) FROM d WHERE {empty}").fetchone() or (0,)
                k.missing_required_rate = _ratio(int(missing), int(total))
    finally:
        con.close()
    # the push's own measurement (recorded after its associations), not a second count
    for m in latest_completeness(state_db, obj):
        if m.share is not None:
            k.association_completeness[link_kind(m.to_type, m.label or None)] = m.share
    return k


def link_kind(to_object_type: str, label: str | None) -> str:
    """A kind of link as a metadata-name part: ``companies``, ``contacts_billing_contact``."""
    slug = re.sub(r"[^a-z0-9]+", "_", (label or "").lower()).strip("_")
    return f"{to_object_type}_{slug}" if slug else to_object_type


def landed_at(files: Iterable[Path]) -> dt.datetime | None:
    """When a day's files landed: the newest modification time among them (UTC)."""
    times = [p.stat().st_mtime for p in files if p.exists()]
    return dt.datetime.fromtimestamp(max(times), dt.UTC) if times else None


@dataclass(frozen=True)
class Breach:
    check: str
    passed: bool
    description: str
    severity: str = "warning"  # "error" for failed records beyond the threshold
    metadata: dict[str, float | int] = field(default_factory=dict)  # the value and threshold


def breaches(k: Kpis, t: Thresholds, *, newest_day: bool) -> list[Breach]:
    """One verdict per threshold (passed or not), in a fixed order."""
    out: list[Breach] = []
    if k.failed_rate is None:
        out.append(Breach("failed_records", True, "no records sent"))
    else:
        out.append(
            Breach(
                "failed_records",
                k.failed_rate <= t.max_failed_rate,
                f"{k.failed_rate:.2%} of the records sent were rejected "
                f"(threshold {t.max_failed_rate:.2%})",
                "error",
            )
        )
    before = k.open_dead_letters_before
    now = k.open_dead_letters
    grew = before is not None and now is not None and now > before
    out.append(
        Breach(
            "dead_letters_growing",
            not grew,
            f"open dead letters {before if before is not None else '?'} → {k.open_dead_letters}",
        )
    )
    sla = t.priority_sla if k.object_type in t.priority_objects else t.batch_sla
    kind = "priority" if k.object_type in t.priority_objects else "batch"
    if not newest_day or k.latency_s is None:
        out.append(
            Breach("sync_latency", True, f"{kind} SLA {sla}: not measured (not the newest day)")
        )
    else:
        late = dt.timedelta(seconds=k.latency_s)
        out.append(
            Breach(
                "sync_latency",
                late <= sla,
                f"in HubSpot {late} after the files landed ({kind} SLA {sla})",
            )
        )
    out += kpi_breaches(k, t)
    return out


def _rate_check(
    name: str, value: float | None, limit: float, what: str, *, minimum: bool = False
) -> Breach:
    if value is None:
        return Breach(
            name, True, f"{what}: not measured in this run", metadata={"threshold": limit}
        )
    ok = value >= limit if minimum else value <= limit
    sign = ("≥" if ok else "<") if minimum else ("≤" if ok else ">")
    meta = {"value": round(value, 6), "threshold": limit}
    return Breach(name, ok, f"{what} {value:.2%} {sign} {limit:.2%}", metadata=meta)


def kpi_breaches(k: Kpis, t: Thresholds) -> list[Breach]:
    """One check per KPI (name ``kpi_<kpi>``), each against its own threshold."""
    out = [
        _rate_check(
            "kpi_success_rate", k.success_rate, t.min_success_rate, "success rate", minimum=True
        ),
        _rate_check("kpi_retry_rate", k.retry_rate, t.max_retry_rate, "retry rate"),
        Breach(
            "kpi_duration",
            k.duration_s <= t.max_duration_s,
            f"sync, plan and push took {k.duration_s:,.1f} s "
            f"({'≤' if k.duration_s <= t.max_duration_s else '>'} {t.max_duration_s:,.0f} s)",
            metadata={"value": round(k.duration_s, 3), "threshold": t.max_duration_s},
        ),
    ]
    if k.open_dead_letters is None:
        out.append(Breach("kpi_open_dead_letters", True, "state store busy: not measured"))
    else:
        ok = k.open_dead_letters <= t.max_open_dead_letters
        out.append(
            Breach(
                "kpi_open_dead_letters",
                ok,
                f"{k.open_dead_letters:,} open dead letters "
                f"({'≤' if ok else '>'} {t.max_open_dead_letters:,})",
                metadata={"value": k.open_dead_letters, "threshold": t.max_open_dead_letters},
            )
        )
    key = DEDUPE_KEYS.get(k.object_type)
    out.append(
        _rate_check(
            "kpi_duplicate_rate",
            k.duplicate_rate,
            t.max_duplicate_rate,
            f"HubSpot records sharing their {key} with another" if key else "duplicates",
        )
        if key
        else Breach("kpi_duplicate_rate", True, f"{k.object_type} have no dedupe key in HubSpot")
    )
    out.append(
        _rate_check(
            "kpi_missing_required",
            k.missing_required_rate,
            t.max_missing_required_rate,
            "desired records missing a required field",
        )
    )
    links = sorted(k.association_completeness.items())
    low = [(kind, v) for kind, v in links if v < t.min_association_completeness]
    if not links:
        out.append(Breach("kpi_association_completeness", True, "no associations to measure"))
    else:
        shares = ", ".join(f"{kind} {v:.2%}" for kind, v in links)
        out.append(
            Breach(
                "kpi_association_completeness",
                not low,
                f"links confirmed in HubSpot: {shares} "
                f"({'below' if low else 'all ≥'} {t.min_association_completeness:.2%})",
                metadata={
                    "value": round(min(v for _, v in links), 6),
                    "threshold": t.min_association_completeness,
                },
            )
        )
    return out


KPI_CHECKS = (
    "kpi_success_rate",
    "kpi_retry_rate",
    "kpi_duration",
    "kpi_open_dead_letters",
    "kpi_duplicate_rate",
    "kpi_missing_required",
    "kpi_association_completeness",
)


def add_run_kpis(k: Kpis, push: PushReport | None, duration_s: float) -> Kpis:
    """The run's own KPIs from its push report (``None`` for a shadow run)."""
    k.duration_s = duration_s
    if push is not None:
        sent = push.records_ok + push.records_dead_lettered
        k.success_rate = _ratio(push.records_ok, sent)
        k.failed_rate = _ratio(push.records_dead_lettered, sent)
        k.retry_rate = _ratio(push.retries, push.write_calls)
    return k
