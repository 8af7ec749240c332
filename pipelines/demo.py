"""``make demo``: the main job end to end on the embedded defaults.

Generates the sample warehouse (if ``$SPOKESYNC_LANDING`` is empty), starts the HubSpot
sandbox on loopback as a living portal (seeded with companies and contacts made before
spokesync, :mod:`pipelines.demo_portal`), ingests every landed day as one single-run backfill on
the local Dagster instance (``$DAGSTER_HOME``, so ``make dev`` shows the runs), runs the
adoption dry run, then the push (the first sync: adopt, create, list ambiguous), then the push
again to show that an unchanged warehouse costs zero writes, and prints a summary.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import dagster as dg
import duckdb

from pipelines import demo_portal
from spokesync.ingest.engine import landed_partitions
from spokesync.sample_data.generator import GeneratorConfig, generate
from spokesync.sandbox.launcher import SandboxProcess
from spokesync.settings import SANDBOX_DEFAULT_PORT, Settings
from spokesync.warehouse import ALL_TABLES

SAMPLE = GeneratorConfig(accounts=2000, days=30, seed=7)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)


def _range_tags(days: list[str]) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": days[0],
        "dagster/asset_partition_range_end": days[-1],
    }


def _run(
    job_name: str, days: list[str] | None, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """``days`` None: an unpartitioned job."""
    from pipelines.definitions import defs

    job = defs.resolve_job_def(job_name)
    started = time.perf_counter()
    result = job.execute_in_process(
        instance=instance,
        tags=_range_tags(days) if days else {},
        run_config=QUIET,
        raise_on_error=False,
    )
    status = "succeeded" if result.success else "FAILED"
    span = f" over {days[0]} … {days[-1]}" if days else ""
    print(f"\n{job_name}{span} {status} in {time.perf_counter() - started:.1f} s")
    return result


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict[str, object]:
    # the last event: a range run's figures are on its last day
    for event in reversed(result.get_asset_materialization_events()):
        mat = event.event_specific_data.materialization  # type: ignore[union-attr]
        if mat.asset_key.to_user_string() == key:
            return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return {}


def _summed(result: dg.ExecuteInProcessResult, key: str, fields: list[str]) -> dict[str, int]:
    """A range run records each day's own figures: add them up over the days."""
    out: dict[str, int] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization  # type: ignore[union-attr]
        if mat.asset_key.to_user_string() == key:
            for f in fields:
                value = mat.metadata.get(f)
                out[f] = out.get(f, 0) + int(getattr(value, "value", 0) or 0)
    return out


def _print_ingestion(*results: dg.ExecuteInProcessResult) -> None:
    print(f"  {'source':<16} {'read':>10} {'valid':>10} {'quarantined':>12}")
    for source in ALL_TABLES:
        m: dict[str, int] = {}
        for result in results:
            for k, v in _summed(
                result, source, ["rows_read", "rows_valid", "rows_quarantined"]
            ).items():
                m[k] = m.get(k, 0) + v
        if m:
            print(
                f"  {source:<16} {m.get('rows_read', 0):>10,} {m.get('rows_valid', 0):>10,} "
                f"{m.get('rows_quarantined', 0):>12,}"
            )


def _print_push(result: dg.ExecuteInProcessResult, objects: list[str]) -> None:
    print(
        f"  {'object':<10} {'desired':>8} {'changed':>8} {'fields':>8} {'created':>8} "
        f"{'updated':>8} {'dead':>5} {'calls':>6} {'429s':>5} {'rec/s':>8} {'links':>7}"
    )
    for obj in objects:
        m = _metadata(result, f"{obj}_push")
        if m:
            print(
                f"  {obj:<10} {m.get('records_desired', 0):>8,} {m.get('records_changed', 0):>8,} "
                f"{m.get('fields_changed', 0):>8,} {m.get('records_created', 0):>8,} "
                f"{m.get('records_updated', 0):>8,} {m.get('records_dead_lettered', 0):>5,} "
                f"{m.get('write_calls', 0):>6,} {m.get('rate_limited', 0):>5,} "
                f"{float(m.get('records_per_s', 0)):>8,.0f} {m.get('associations_ok', 0):>7,}"
            )


def _gate_lines(settings: Settings, as_of: str) -> list[str]:
    """Per gated mapping: records past the gate (enriched) and those gated out, by reason, from
    the desired state of the run's day (``warehouse/desired/<object>/date=…``)."""
    from assets.sync import MAPPINGS
    from spokesync.desired import GATE_PREFIX

    out = []
    for m in MAPPINGS:
        path = settings.warehouse_dir / "desired" / m.object_type / f"date={as_of}" / "data.parquet"
        if not m.gates or not path.exists():
            continue
        with duckdb.connect() as con:
            for gate in m.gates:
                col = '"' + GATE_PREFIX + gate + '"'
                rows = con.execute(
                    f"SELECT {col}, count(*) FROM read_parquet($p) GROUP BY 1 ORDER BY 2 DESC",
                    {"p": str(path)},
                ).fetchall()
                passed = sum(n for reason, n in rows if reason is None)
                failed = [(reason, n) for reason, n in rows if reason is not None]
                why = "; ".join(f"{reason}: {n:,}" for reason, n in failed)
                out.append(
                    f"  enrichment:      {m.object_type} {passed:,} enriched ({gate}), "
                    f"{sum(n for _, n in failed):,} gated out, never written"
                    + (f" — {why}" if why else "")
                )
    return out


def _workflow_summary(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    days: list[str],
    first: dg.ExecuteInProcessResult,
    again: dg.ExecuteInProcessResult,
) -> list[str]:
    """The revenue workflows in numbers, from the state store and the runs
    (docs/workflows.md)."""

    def one(sql: str) -> int:
        row = con.execute(sql).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def tables() -> set[str]:
        return {r[0] for r in con.execute("SHOW TABLES").fetchall()}

    deals = one("SELECT count(DISTINCT external_id) FROM snapshot WHERE object_type = 'deals'")
    with_currency = one(
        "SELECT count(*) FROM snapshot WHERE object_type = 'deals' "
        "AND property = 'deal_currency_code' AND value IS NOT NULL"
    )
    currencies = one(
        "SELECT count(DISTINCT value) FROM snapshot WHERE object_type = 'deals' "
        "AND property = 'deal_currency_code'"
    )
    amount_alone = one(
        "SELECT count(*) FROM snapshot a WHERE a.object_type = 'deals' AND a.property = 'amount' "
        "AND a.value IS NOT NULL AND NOT EXISTS (SELECT 1 FROM snapshot c WHERE "
        "c.object_type = 'deals' AND c.external_id = a.external_id "
        "AND c.property = 'deal_currency_code' AND c.value IS NOT NULL)"
    )
    subscriptions = one(
        "SELECT count(DISTINCT external_id) FROM snapshot WHERE object_type = 'erp_subscription'"
    )
    tickets = one("SELECT count(DISTINCT external_id) FROM snapshot WHERE object_type = 'tickets'")
    to_contacts = one(
        "SELECT count(DISTINCT from_external_id) FROM association_snapshot "
        "WHERE from_type = 'tickets' AND to_type = 'contacts'"
    )
    tasks = one("SELECT count(*) FROM task_ledger WHERE state = 'created'")
    # A range run records the task step's figures once per day of the range: read one.
    created = _metadata(first, "tasks_usage_threshold_crossed")
    rerun = _metadata(again, "tasks_usage_threshold_crossed")
    unknown_owner = one(
        "SELECT count(*) FROM snapshot s JOIN snapshot o USING (object_type, external_id) "
        "WHERE s.object_type = 'companies' AND s.property = 'hubspot_owner_id' "
        "AND o.property = 'spokesync_account_id' AND s.value IS NOT NULL"
    )
    events = con.execute(
        "SELECT type, count(*) FROM canonical_events GROUP BY type ORDER BY type"
    ).fetchall()
    lines = ["\nworkflows:", *_gate_lines(settings, days[-1])]
    lines += [
        f"  usage lifecycle: {int(created.get('tasks_created', 0) or 0):,} usage-threshold tasks "
        f"created for the owners (the real crossings of the last 7 days of {days[0]} … "
        f"{days[-1]}); not tasks: {int(created.get('incomplete_window', 0) or 0):,} crossings on "
        "an incomplete 7-day window (the first week filling up), "
        f"{int(created.get('older_than_lookback', 0) or 0):,} older than the lookback; the rerun "
        f"created {int(rerun.get('tasks_created', 0) or 0):,}; {tasks:,} in the task ledger",
        f"  quote to cash:   {with_currency:,} of {deals:,} deals carry their currency "
        f"({currencies} currencies); amounts without a currency: {amount_alone}; "
        f"{subscriptions:,} subscriptions (custom object) linked to company and deal",
        f"  support context: {to_contacts:,} of {tickets:,} tickets linked to the requester's "
        "contact (the others' requesters are not contacts)",
        f"  routing:         {unknown_owner:,} companies with a HubSpot owner "
        "(unknown account owners routed to the fallback owner)",
    ]
    if "association_completeness" in tables():
        from spokesync.state.completeness import LATEST_SQL, LinkCompleteness

        kinds = [LinkCompleteness(*r) for r in con.execute(LATEST_SQL, {"ft": None}).fetchall()]
        lines.append("  links:           " + "; ".join(k.line() for k in kinds))
    lines.append("  events:          " + (", ".join(f"{t} {n:,}" for t, n in events) or "none"))
    return lines


def _list_lines(first: dg.ExecuteInProcessResult, again: dg.ExecuteInProcessResult) -> list[str]:
    """Segments as static lists: members added / removed per list, then by the unchanged rerun."""
    from assets.lists import LIST_MAPPINGS

    out = []
    for spec in LIST_MAPPINGS:
        m, r = _metadata(first, spec.asset_name), _metadata(again, spec.asset_name)
        if m:
            out.append(
                f"  segment list:    {spec.name}: list members added {m.get('members_added', 0):,}"
                f"/removed {m.get('members_removed', 0):,} ({m.get('members_total', 0):,} members,"
                f" {m.get('membership_calls', 0)} calls); rerun added "
                f"{r.get('members_added', 0):,}/removed {r.get('members_removed', 0):,} "
                f"({r.get('membership_calls', 0)} calls)"
            )
    return out


def main() -> int:
    settings = Settings.from_env()
    if not (settings.landing / "master").exists():
        print(f"generating the sample warehouse in {settings.landing} …")
        generate(SAMPLE, settings.landing)
    days = landed_partitions("product_usage", settings.landing)
    if not days:
        print(f"no landing files in {settings.landing}", file=sys.stderr)
        return 1
    port = int(os.environ.get("SANDBOX_PORT", SANDBOX_DEFAULT_PORT))
    sandbox_db = settings.home / "sandbox.sqlite"
    demo_portal.fresh_start(settings, sandbox_db)
    sandbox = SandboxProcess(sandbox_db, port=port, extra_args=demo_portal.SANDBOX_ARGS)
    try:
        sandbox.start()
    except Exception as exc:  # noqa: BLE001 - a clear message beats a traceback here
        print(
            f"could not start the sandbox on port {port} (another one: SANDBOX_PORT=…): {exc}",
            file=sys.stderr,
        )
        return 1
    try:
        os.environ["HUBSPOT_BASE_URL"] = sandbox.base_url
        print(f"HubSpot sandbox on {sandbox.base_url} (state in {sandbox.db_path})")
        manifest = demo_portal.seed(sandbox, settings.landing)
        seeded = sandbox.stats()["records"]  # the seeding's own writes, not spokesync's
        from assets.sync import MAPPINGS

        objects = [m.object_type for m in MAPPINGS]
        with dg.DagsterInstance.get() as instance:
            master = _run("master_data_job", None, instance)
            ingest = _run("ingestion_job", days, instance)
            _print_ingestion(ingest, master)
            dry = _run("hubspot_adopt_dry_run_job", None, instance)
            dry_meta = _metadata(dry, "hubspot_adoption_dry_run")
            report = str(dry_meta.get("report", "")).splitlines()
            print("  " + "\n  ".join(ln for ln in report if ln and ln[0].isalpha()))
            first = _run("hubspot_push_job", days, instance)
            checks = [  # one per check and day
                *ingest.get_asset_check_evaluations(),
                *first.get_asset_check_evaluations(),
            ]
            warned: dict[str, int] = {}
            for e in checks:
                if not e.passed:
                    name = f"{e.asset_key.to_user_string()}.{e.check_name}"
                    warned[name] = warned.get(name, 0) + 1
            failed = sum(warned.values())
            print(f"  asset checks: {len(checks) - failed} passed, {failed} warned:")
            print("    " + ", ".join(f"{k} ({n} d)" for k, n in sorted(warned.items())))
            _print_push(first, objects)
            written = sandbox.stats()["records"]["written"]
            again = _run("hubspot_push_job", days, instance)
            print("  an unchanged warehouse is pushed again:")
            _print_push(again, objects)
        stats = sandbox.stats()
        adoption = demo_portal.summary_lines(
            dry_meta,
            {o: _metadata(first, f"{o}_push") for o in ("companies", "contacts")},
            manifest,
            demo_portal.duplicates(sandbox, manifest),
            stats["records"]["written"] - written,
        )

        def written_by_type(counts: dict[str, int]) -> int:
            return counts.get("created", 0) + counts.get("updated", 0)

        by_type = ", ".join(
            f"{t} {written_by_type(c) - written_by_type(seeded['by_type'].get(t, {})):,}"
            for t, c in stats["records"]["by_type"].items()
        )
        print(
            f"\nsandbox: {stats['records']['written'] - seeded['written']:,} records written by "
            f"spokesync ({by_type}); "
            f"429s {sum(stats['rate_limited'].values())}"
        )
        with duckdb.connect(str(settings.state_db), read_only=True) as con:
            (dead,) = con.execute(
                "SELECT count(*) FROM dead_letter WHERE state = 'open'"
            ).fetchone()
            workflows = _workflow_summary(con, settings, days, first, again)
        print(f"state store {settings.state_db}: {dead} open dead letters")
        for line in [*adoption, *workflows]:
            print(line)
        for line in _list_lines(first, again):
            print(line)
        print("\nNext: `make dev` opens the Dagster UI on this data (http://127.0.0.1:3000).")
        ok = all(r.success for r in (master, ingest, dry, first, again))
        return 0 if ok else 1
    finally:
        sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
