"""Generate the sample landing files (see ``docs/sources.md`` for the layout and contract).

Deterministic: each file is drawn from its own random stream keyed by (seed, source, day), so
the same seed gives byte-identical files and ``append_day`` can land day N+1 without
regenerating days 0..N. Strings are built in Arrow chunk by chunk (≤ ``part_rows`` rows), so
memory stays bounded at any scale (1M accounts, 50M events).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from spokesync.ingest.contract import (
    CHANNELS,
    COUNTRIES,
    CURRENCIES,
    EVENT_TYPES,
    INDUSTRIES,
    PLANS,
    PRIORITIES,
    ROLES,
    SOURCES,
    TICKET_STATUSES,
)
from spokesync.sample_data.mess import Planted, plant
from spokesync.sample_data.model import (
    FIRST_NAMES,
    JOB_TITLES,
    LAST_NAMES,
    OWNERS,
    PROVIDER_INDUSTRY,
    SUFFIXES,
    US_PER_DAY,
    WORDS_A,
    WORDS_B,
    Company,
    day_start_us,
    iso_date,
    iso_ts,
    join,
    pick,
)

SOURCE_STREAM = {name: i + 10 for i, name in enumerate(SOURCES)}
PARAMS_FILE = "_planted/generator.json"
MASTER_CHUNK_ROWS = 250_000  # master rows are wide (names, emails): smaller chunks


MISSING_COLUMN = "paid_at"  # nullable invoices column dropped on the missing-column day


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def default_start(days: int, today: dt.date | None = None) -> dt.date:
    """The first day of a ``days``-day sample that ends yesterday (UTC): the newest complete
    day, which is also the newest daily partition, so the sample lines up with the calendar."""
    return (today or utc_today()) - dt.timedelta(days=max(days, 1))


class GeneratorConfig(BaseModel):
    """Scale and mess parameters; saved next to the manifest so ``--append-day`` reuses them.

    ``start`` defaults to ``days`` days before today (UTC), so the sample ends yesterday; pass
    it explicitly for a fixed, reproducible calendar (tests with hand-written dates do).
    """

    seed: int = 7
    accounts: int = Field(2000, ge=1)
    # mean users per account (1 … 2 × mean − 1 each); 5 makes the 1M companies + 5M
    # contacts from 1M accounts
    users_per_account: int = Field(3, ge=1, le=50)
    days: int = Field(30, ge=0)
    # After ``days`` (fields validate in order), so the factory sees it.
    start: dt.date = Field(default_factory=lambda data: default_start(data["days"]))
    events_per_day: int | None = Field(None, ge=0, description="default: 5 per account")
    mess_rate: float = Field(0.015, ge=0, le=0.3)
    part_rows: int = Field(1_000_000, ge=1000)
    extra_column_day: int | None = 1  # day index whose usage files carry an extra column
    missing_column_day: int | None = 2  # day index whose invoices file lacks `paid_at`
    truncated_line_day: int | None = 1  # day index whose tickets file ends in a truncated line

    @property
    def n_events(self) -> int:
        return self.accounts * 5 if self.events_per_day is None else self.events_per_day


def _rng(cfg: GeneratorConfig, source: str, day_index: int, part: int = 0) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, SOURCE_STREAM[source], day_index + 1, part])


def _atomic_path(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


class _CsvOut:
    """Write string tables to a CSV file chunk by chunk, then rename into place."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.tmp = path, _atomic_path(path)
        self.writer = pacsv.CSVWriter(self.tmp, schema)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self.writer.close()
        os.replace(self.tmp, self.path)


def _strings(table: pa.Table) -> pa.Table:
    return table.cast(pa.schema([pa.field(f.name, pa.string()) for f in table.schema]))


class _Manifest:
    """Streams planted-case entries to ``_planted/<source>/<partition>.json`` (a JSON list),
    so a 50M-row day with 750k planted rows never holds them all in memory."""

    def __init__(self, out: Path, source: str, partition: str) -> None:
        self.path = out / "_planted" / source / f"{partition}.json"
        self.tmp = _atomic_path(self.path)
        self.fh = self.tmp.open("w")
        self.fh.write("[")
        self.count = 0

    def add(self, entries: list[Planted]) -> None:
        for e in entries:
            self.fh.write(("," if self.count else "") + "\n" + json.dumps(e.to_dict()))
            self.count += 1

    def close(self) -> None:
        self.fh.write("\n]\n")
        self.fh.close()
        os.replace(self.tmp, self.path)


def _write_manifest(out: Path, source: str, partition: str, entries: list[Planted]) -> None:
    manifest = _Manifest(out, source, partition)
    manifest.add(entries)
    manifest.close()


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)


# -- master data --------------------------------------------------------------------------
def write_master(cfg: GeneratorConfig, co: Company, out: Path) -> dict[str, int]:
    counts = {}
    for source, builder, n in (
        ("accounts", _accounts_table, co.n_accounts),
        ("users", _users_table, co.n_users),
        ("firmographics", _firmographics_table, co.n_accounts),
    ):
        rel = f"master/{source}.csv"
        writer: _CsvOut | None = None
        manifest = _Manifest(out, source, "master")
        for part, (lo, hi) in enumerate(_chunks(n, min(cfg.part_rows, MASTER_CHUNK_ROWS))):
            table = _strings(builder(co, np.arange(lo, hi, dtype=np.int64)))
            rng = _rng(cfg, source, -1, part)
            table, planted = plant(
                table,
                source=source,
                partition="master",
                file=rel,
                rate=cfg.mess_rate,
                rng=rng,
                cycle_offset=part,
                first_row_number=2,
                row_base=writer.rows if writer else 0,
            )
            manifest.add(planted)
            if writer is None:
                writer = _CsvOut(out / rel, table.schema)
            writer.write(table)
        assert writer is not None
        writer.close()
        manifest.close()
        counts[source] = writer.rows
    return counts


def _accounts_table(co: Company, idx: np.ndarray) -> pa.Table:
    name = join(
        pc.utf8_capitalize(pick(WORDS_A, co.w1[idx])),
        pc.utf8_capitalize(pick(WORDS_B, co.w2[idx])),
        pick(SUFFIXES, co.suffix[idx]),
        sep=" ",
    )
    return pa.table(
        {
            "account_id": co.account_ids(idx),
            "name": name,
            "domain": co.domains(idx),
            "industry": pick(np.array(INDUSTRIES), co.industry[idx]),
            "country": pick(np.array(COUNTRIES), co.country[idx]),
            "employee_count": pa.array(co.employees[idx]),
            "owner_email": pick(OWNERS, co.owner[idx]),
            "created_at": iso_ts(co.created_us[idx]),
            "updated_at": iso_ts(co.updated_us[idx]),
        }
    )


def _firmographics_table(co: Company, idx: np.ndarray) -> pa.Table:
    """The provider knows 9 in 10 of the accounts' domains (not those whose number ends in 7);
    its head counts are a little off and its industry words are its own."""
    idx = idx[(idx + 1) % 10 != 7]
    rng = np.random.default_rng([int(idx[0]) if len(idx) else 0, 99])
    labels = [
        PROVIDER_INDUSTRY[INDUSTRIES[i]][int(k)]
        for i, k in zip(co.industry[idx], (idx // 3) % 3, strict=True)
    ]
    employees = np.maximum(
        1, (co.employees[idx] * rng.uniform(0.9, 1.1, len(idx))).astype(np.int64)
    )
    name = join(
        pc.utf8_capitalize(pick(WORDS_A, co.w1[idx])),
        pc.utf8_capitalize(pick(WORDS_B, co.w2[idx])),
        sep=" ",
    )
    return pa.table(
        {
            "domain": co.domains(idx),
            "company_name": name,
            "industry_label": pa.array(labels, pa.string()),
            "employees": pa.array(employees),
            "hq_country": pick(np.array(COUNTRIES), co.country[idx]),
            "updated_at": iso_ts(co.updated_us[idx]),
        }
    )


def _users_table(co: Company, uidx: np.ndarray) -> pa.Table:
    acc = co.user_account[uidx].astype(np.int64)
    title = co.title[uidx]
    titles = pa.array(JOB_TITLES[np.maximum(title, 0)], mask=title < 0)
    return pa.table(
        {
            "user_id": co.user_ids(uidx),
            "account_id": co.account_ids(acc),
            "email": co.emails(uidx),
            "first_name": pc.utf8_capitalize(pick(FIRST_NAMES, co.first[uidx])),
            "last_name": pc.utf8_capitalize(pick(LAST_NAMES, co.last[uidx])),
            "job_title": titles,
            "role": pick(np.array(ROLES), co.role[uidx]),
            "created_at": iso_ts(co.user_created_us[uidx]),
            "updated_at": iso_ts(co.user_created_us[uidx] + US_PER_DAY),
        }
    )


# -- daily files --------------------------------------------------------------------------
def write_day(cfg: GeneratorConfig, co: Company, out: Path, day_index: int) -> dict[str, int]:
    day = cfg.start + dt.timedelta(days=day_index)
    return {
        "product_usage": _write_usage(cfg, co, out, day_index, day),
        "invoices": _write_invoices(cfg, co, out, day_index, day),
        "subscriptions": _write_subscriptions(cfg, co, out, day_index, day),
        "support_tickets": _write_tickets(cfg, co, out, day_index, day),
    }


# Usage is not flat: about one account in eight goes quiet for a week (a holiday, an outage,
# a champion on leave) some time from the 8th day on, then comes back. Its weekly active users
# fall to zero and cross the task trigger's threshold again on the way back, a renewal-risk
# flag can rise and fall, and a long sample (the demo's 30 days) has threshold crossings after
# its first week. Samples of up to 7 days are unchanged.
DIP_FIRST_DAY = 7
DIP_DAYS = 7
DIP_SHARE_PERCENT = 12


def in_usage_dip(account_index: np.ndarray, day_index: int) -> np.ndarray:
    """Whether each account is in its quiet week on ``day_index`` (deterministic per account,
    independent of the sample's length, so ``--append-day`` continues the same story)."""
    h = (account_index.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    chosen = (h % np.uint64(100)) < np.uint64(DIP_SHARE_PERCENT)
    start = DIP_FIRST_DAY + (h // np.uint64(100)) % np.uint64(16)
    return chosen & (start <= day_index) & (day_index < start + np.uint64(DIP_DAYS))


def _write_usage(cfg: GeneratorConfig, co: Company, out: Path, di: int, day: dt.date) -> int:
    source, part_dir = "product_usage", f"product_usage/date={day.isoformat()}"
    schema = SOURCES[source].arrow_schema()
    manifest = _Manifest(out, source, day.isoformat())
    written = 0
    start_us = day_start_us(day)
    stamp = day.strftime("%Y%m%d")
    # Remove stale parts from an earlier generation of this day with a different scale.
    for old in (out / part_dir).glob("part-*.parquet"):
        old.unlink()
    for part, (lo, hi) in enumerate(_chunks(cfg.n_events, cfg.part_rows)):
        rng = _rng(cfg, source, di, part)
        n = hi - lo
        uidx = rng.integers(0, co.n_users, n)
        acc = co.user_account[uidx].astype(np.int64)
        table = pa.table(
            {
                "event_id": pc.binary_join_element_wise(
                    f"EVT-{stamp}-",
                    pc.utf8_lpad(pc.cast(pa.array(np.arange(lo, hi) + 1), pa.string()), 9, "0"),
                    "",
                ),
                "account_id": co.account_ids(acc),
                "user_id": co.user_ids(uidx),
                "event_type": pick(
                    np.array(EVENT_TYPES), rng.choice(5, n, p=[0.35, 0.4, 0.08, 0.15, 0.02])
                ),
                "occurred_at": pa.array(
                    start_us + np.sort(rng.integers(0, US_PER_DAY, n)), pa.timestamp("us", "UTC")
                ),
                "quantity": pa.array(rng.geometric(0.5, n).astype(np.int64)),
            },
            schema=schema,
        )
        if di >= DIP_FIRST_DAY:  # accounts in a quiet week send no events (ids keep gaps)
            table = table.filter(pa.array(~in_usage_dip(acc, di)))
        rel = f"{part_dir}/part-{part:04d}.parquet"
        table, planted = plant(
            table,
            source=source,
            partition=day.isoformat(),
            file=rel,
            rate=cfg.mess_rate,
            rng=rng,
            cycle_offset=di + part,
            first_row_number=0,
        )
        manifest.add(planted)
        if di == cfg.extra_column_day:
            table = table.append_column("client_version", pa.array(["4.2.1"] * table.num_rows))
            drift = Planted(
                source, day.isoformat(), rel, None, "extra_column", "client_version",
                "schema_drift", "drift",
            )  # fmt: skip
            manifest.add([drift])
        path = out / rel
        tmp = _atomic_path(path)
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
        written += table.num_rows
    manifest.close()
    return written


def _write_small(
    cfg: GeneratorConfig,
    out: Path,
    source: str,
    di: int,
    day: dt.date,
    rel: str,
    table: pa.Table,
    rng: np.random.Generator,
) -> int:
    """Plant mess in a (small, daily) string table and write it as CSV or JSONL."""
    table = _strings(table)
    fmt = SOURCES[source].format
    table, entries = plant(
        table,
        source=source,
        partition=day.isoformat(),
        file=rel,
        rate=cfg.mess_rate,
        rng=rng,
        cycle_offset=di,
        first_row_number=2 if fmt == "csv" else 1,
    )
    if source == "invoices" and di == cfg.missing_column_day:
        # An ERP export that lost an optional column: the rows load with nulls and the
        # schema-drift check warns. (A missing *required* column quarantines every row and
        # blocks the push; tests/ingest covers that with its own file.)
        table = table.drop_columns([MISSING_COLUMN])
        entries.append(
            Planted(
                source,
                day.isoformat(),
                rel,
                None,
                "missing_column",
                MISSING_COLUMN,
                "schema_drift",
                "drift",
            )  # fmt: skip
        )
    path = out / rel
    tmp = _atomic_path(path)
    if fmt == "csv":
        pacsv.write_csv(table, tmp)
    else:
        lines = [json.dumps(r, separators=(",", ":")) for r in table.to_pylist()]
        if source == "support_tickets" and di == cfg.truncated_line_day and lines:
            # The export was cut off mid-line: a copy of a real ticket, so no data is lost.
            lines.append(lines[0][: len(lines[0]) // 2])
            entries.append(
                Planted(
                    source,
                    day.isoformat(),
                    rel,
                    len(lines),
                    "truncated_line",
                    None,
                    "parse_json",
                    "quarantined",
                )  # fmt: skip
            )
        tmp.write_text("\n".join(lines) + ("\n" if lines else ""))
    os.replace(tmp, path)
    _write_manifest(out, source, day.isoformat(), entries)
    return table.num_rows + (
        1 if source == "support_tickets" and di == cfg.truncated_line_day else 0
    )


def _write_invoices(cfg: GeneratorConfig, co: Company, out: Path, di: int, day: dt.date) -> int:
    rng = _rng(cfg, "invoices", di)
    acc = np.flatnonzero(co.billing_day == min(day.day, 28)).astype(np.int64)
    n = len(acc)
    start_us = day_start_us(day)
    status_idx = rng.choice(5, n, p=[0.05, 0.2, 0.7, 0.03, 0.02])
    paid = status_idx == 2
    paid_at = iso_ts(start_us + rng.integers(0, US_PER_DAY, n))
    stamp = day.strftime("%Y%m%d")
    table = pa.table(
        {
            "invoice_id": pc.binary_join_element_wise(
                f"INV-{stamp}-", pc.utf8_lpad(pc.cast(pa.array(acc + 1), pa.string()), 6, "0"), ""
            ),
            "account_id": co.account_ids(acc),
            "subscription_id": co.subscription_ids(acc),
            "invoice_date": pa.array([day.isoformat()] * n, pa.string()),
            "due_date": pa.array([(day + dt.timedelta(days=30)).isoformat()] * n, pa.string()),
            "amount": pa.array(co.mrr(acc)),
            "currency": pick(np.array(CURRENCIES), co.currency[acc]),
            "status": pick(
                np.array(("draft", "open", "paid", "void", "uncollectible")), status_idx
            ),
            "paid_at": pc.if_else(pa.array(paid), paid_at, pa.scalar(None, pa.string())),
        }
    )
    rel = f"erp/invoices/invoices_{day.isoformat()}.csv"
    return _write_small(cfg, out, "invoices", di, day, rel, table, rng)


def _write_subscriptions(
    cfg: GeneratorConfig, co: Company, out: Path, di: int, day: dt.date
) -> int:
    rng = _rng(cfg, "subscriptions", di)
    start_us = day_start_us(day)
    if di == 0:  # initial export: every subscription
        acc = np.arange(co.n_accounts, dtype=np.int64)
        seats = co.seats[acc]
        status = rng.choice(4, len(acc), p=[0.08, 0.85, 0.05, 0.02])
    else:  # the ~2% that changed that day (seats, status, renewal)
        acc = np.sort(rng.choice(co.n_accounts, max(1, co.n_accounts // 50), replace=False))
        seats = np.maximum(1, co.seats[acc] + rng.integers(-5, 10, len(acc)))
        status = rng.choice(4, len(acc), p=[0.02, 0.8, 0.1, 0.08])
    n = len(acc)
    canceled = status == 3
    started = co.created_us[acc] + 7 * US_PER_DAY
    renews = np.full(n, start_us + 365 * US_PER_DAY)
    null_str = pa.scalar(None, pa.string())
    table = pa.table(
        {
            "subscription_id": co.subscription_ids(acc),
            "account_id": co.account_ids(acc),
            "plan": pick(np.array(PLANS), co.plan[acc]),
            "status": pick(np.array(("trialing", "active", "past_due", "canceled")), status),
            "seats": pa.array(seats.astype(np.int64)),
            "mrr": pa.array(np.where(canceled, 0.0, co.mrr(acc, seats))),
            "currency": pick(np.array(CURRENCIES), co.currency[acc]),
            "started_on": iso_date(started),
            "renews_on": pc.if_else(pa.array(canceled), null_str, iso_date(renews)),
            "canceled_on": pc.if_else(
                pa.array(canceled), pa.array([day.isoformat()] * n), null_str
            ),
            "updated_at": iso_ts(start_us + rng.integers(0, US_PER_DAY, n)),
        }
    )
    rel = f"erp/subscriptions/subscriptions_{day.isoformat()}.csv"
    return _write_small(cfg, out, "subscriptions", di, day, rel, table, rng)


def _write_tickets(cfg: GeneratorConfig, co: Company, out: Path, di: int, day: dt.date) -> int:
    rng = _rng(cfg, "support_tickets", di)
    n = max(1, co.n_accounts // 30)
    uidx = rng.integers(0, co.n_users, n)
    acc = co.user_account[uidx].astype(np.int64)
    start_us = day_start_us(day)
    created = start_us + rng.integers(0, US_PER_DAY // 2, n)
    stamp = day.strftime("%Y%m%d")
    subjects = np.array(
        ["Cannot export report", "Invoice question", "SSO login fails", "Add seats", "API 429s"]
    )
    subj = rng.integers(0, len(subjects), n)
    table = pa.table(
        {
            "ticket_id": pc.binary_join_element_wise(
                f"TCK-{stamp}-",
                pc.utf8_lpad(pc.cast(pa.array(np.arange(n) + 1), pa.string()), 6, "0"),
                "",
            ),
            "account_id": co.account_ids(acc),
            "requester_email": co.emails(uidx),
            "subject": pick(subjects, subj),
            "description": join(pick(subjects, subj), "— details from the customer", sep=" "),
            "priority": pick(np.array(PRIORITIES), rng.choice(4, n, p=[0.3, 0.4, 0.2, 0.1])),
            "status": pick(np.array(TICKET_STATUSES), rng.integers(0, 5, n)),
            "channel": pick(np.array(CHANNELS), rng.integers(0, 4, n)),
            "created_at": iso_ts(created),
            "updated_at": iso_ts(created + rng.integers(0, US_PER_DAY // 2, n)),
        }
    )
    rel = f"support/tickets/tickets_{day.isoformat()}.jsonl"
    return _write_small(cfg, out, "support_tickets", di, day, rel, table, rng)


# -- entry points -------------------------------------------------------------------------
def generate(cfg: GeneratorConfig, out: Path) -> dict[str, int]:
    """Write master data and ``cfg.days`` days; returns rows written per source."""
    out = Path(out)
    co = Company.build(cfg.seed, cfg.accounts, cfg.start, cfg.users_per_account)
    totals = write_master(cfg, co, out)
    for di in range(cfg.days):
        for source, n in write_day(cfg, co, out, di).items():
            totals[source] = totals.get(source, 0) + n
    _save_params(cfg, out)
    return totals


def append_day(out: Path) -> tuple[str, dict[str, int]]:
    """Land the next day after the last generated one (same seed and scale)."""
    out = Path(out)
    params = out / PARAMS_FILE
    if not params.exists():
        raise FileNotFoundError(f"{params} not found: run `spokesync sample-data` first")
    cfg = GeneratorConfig.model_validate_json(params.read_text())
    co = Company.build(cfg.seed, cfg.accounts, cfg.start, cfg.users_per_account)
    counts = write_day(cfg, co, out, cfg.days)
    day = (cfg.start + dt.timedelta(days=cfg.days)).isoformat()
    _save_params(cfg.model_copy(update={"days": cfg.days + 1}), out)
    return day, counts


def catch_up(out: Path, today: dt.date | None = None, limit: int = 90) -> list[str]:
    """Append days to a generated sample until it ends yesterday (UTC), like the nightly
    exports a real warehouse would have landed meanwhile; returns the days appended. A sample
    that was generated on an earlier day then still lines up with the daily partitions.
    At most ``limit`` days (older samples are better regenerated)."""
    params = Path(out) / PARAMS_FILE
    if not params.exists():
        return []
    cfg = GeneratorConfig.model_validate_json(params.read_text())
    yesterday = (today or utc_today()) - dt.timedelta(days=1)
    behind = (yesterday - (cfg.start + dt.timedelta(days=cfg.days - 1))).days
    if behind <= 0 or behind > limit:
        return []
    return [append_day(out)[0] for _ in range(behind)]


def _save_params(cfg: GeneratorConfig, out: Path) -> None:
    path = out / PARAMS_FILE
    tmp = _atomic_path(path)
    tmp.write_text(cfg.model_dump_json(indent=1) + "\n")
    os.replace(tmp, path)


def load_manifest(landing: Path, source: str, partition: str) -> list[dict[str, object]]:
    """The planted cases for one source and partition ("master" for master data)."""
    path = Path(landing) / "_planted" / source / f"{partition}.json"
    return json.loads(path.read_text()) if path.exists() else []
