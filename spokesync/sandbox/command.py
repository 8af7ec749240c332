"""``spokesync sandbox``: serve the sandbox on loopback with uvicorn."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from spokesync.settings import SANDBOX_DEFAULT_PORT, SANDBOX_DEV_TOKEN

if TYPE_CHECKING:  # the app is imported only when the command runs
    from spokesync.sandbox.app import SandboxConfig


def _token(value: str) -> tuple[str, frozenset[str] | None]:
    """``TOKEN`` (every scope) or ``TOKEN:scope1,scope2``."""
    token, sep, scopes = value.partition(":")
    if not token:
        raise argparse.ArgumentTypeError("--token needs a value: TOKEN or TOKEN:scope1,scope2")
    if not sep:
        return token, None
    return token, frozenset(s.strip() for s in scopes.split(",") if s.strip())


def _probability(value: str) -> float:
    p = float(value)
    if not 0 <= p <= 1:
        raise argparse.ArgumentTypeError(f"a probability must be within [0, 1], not {value}")
    return p


def _status_probability(value: str) -> tuple[int, float]:
    status, sep, p = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(
            f"expected STATUS=PROBABILITY (e.g. 503=0.05), not {value!r}"
        )
    return int(status), _probability(p)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=SANDBOX_DEFAULT_PORT)
    parser.add_argument(
        "--db", type=Path, default=None, help="SQLite file (default $SPOKESYNC_HOME/sandbox.sqlite)"
    )
    parser.add_argument(
        "--token",
        action="append",
        type=_token,
        default=[],
        metavar="TOKEN[:SCOPES]",
        help=f"accepted bearer token, repeatable; without any, {SANDBOX_DEV_TOKEN!r} "
        "is accepted with every scope",
    )
    parser.add_argument("--portal-id", type=int, default=12345678)
    parser.add_argument("--rate-limit", type=int, default=190, help="requests per 10 s per token")
    parser.add_argument(
        "--daily-limit", type=int, default=1_000_000, help="requests per day per portal"
    )
    parser.add_argument(
        "--search-rate-limit", type=int, default=5, help="search requests per second"
    )
    parser.add_argument(
        "--retry-after",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="send Retry-After (seconds) on 429s (HubSpot usually does not)",
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every API request")
    parser.add_argument(
        "--search-lag-ms",
        type=int,
        default=0,
        help="search shows a record's previous state for this long after a write",
    )
    parser.add_argument(
        "--shuffle-results",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="return batch results out of input order, as HubSpot does",
    )
    parser.add_argument(
        "--email-upsert-partial",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="allow 207 partial results on contact upserts by email (HubSpot: no)",
    )
    parser.add_argument(
        "--request-log-size",
        type=int,
        default=2_000,
        help="requests kept (with bodies) for /__sandbox/requests",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for shuffling and faults")
    parser.add_argument(
        "--auto-create-companies",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="the portal setting 'Automatically create and associate companies with contacts' "
        "(default off; docs/sandbox.md)",
    )
    parser.add_argument(
        "--seed-portal",
        default=None,
        metavar="SPEC",
        help="start from a populated portal (if the db is empty): 'default', key=value pairs "
        "such as 'accounts=2000,companies=0.6,merged=0.02', JSON or @file.json (docs/sandbox.md)",
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--fault-status",
        type=_status_probability,
        action="append",
        default=[],
        metavar="STATUS=P",
        help="e.g. 503=0.05; 423, 502, 503, 504, 524, …",
    )
    faults.add_argument("--fault-latency-probability", type=_probability, default=0.0)
    faults.add_argument("--fault-latency-ms", type=int, default=1500)
    faults.add_argument(
        "--fault-drop-probability",
        type=_probability,
        default=0.0,
        help="close the connection without an answer, write not applied",
    )
    faults.add_argument(
        "--fault-drop-after-apply-probability",
        type=_probability,
        default=0.0,
        help="apply the write, then close without an answer",
    )
    faults.add_argument(
        "--fault-empty-probability",
        type=_probability,
        default=0.0,
        help="answer 200 with neither results nor errors, write not applied",
    )
    faults.add_argument("--fault-route", default=None, help="regex: only matching paths get faults")
    faults.add_argument("--fault-writes-only", action="store_true")
    parser.add_argument("--webhook-url", default=None, help="POST change events here (v3-signed)")
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("SPOKESYNC_SANDBOX_WEBHOOK_SECRET"),
        help="client secret for the v3 signature (or $SPOKESYNC_SANDBOX_WEBHOOK_SECRET)",
    )
    parser.add_argument("--log-level", default="warning")


def build_config(args: argparse.Namespace) -> SandboxConfig:
    from spokesync.sandbox.app import SandboxConfig
    from spokesync.sandbox.faults import FaultConfig

    home = Path(os.environ.get("SPOKESYNC_HOME", "data"))
    tokens = dict(args.token) if args.token else {SANDBOX_DEV_TOKEN: None}
    faults = FaultConfig(
        seed=args.seed,
        status_probability=dict(args.fault_status),
        latency_spike_probability=args.fault_latency_probability,
        latency_spike_ms=args.fault_latency_ms,
        drop_probability=args.fault_drop_probability,
        drop_after_apply_probability=args.fault_drop_after_apply_probability,
        empty_2xx_probability=args.fault_empty_probability,
        route_pattern=args.fault_route,
        writes_only=args.fault_writes_only,
    )
    return SandboxConfig(
        db_path=args.db or home / "sandbox.sqlite",
        portal_id=args.portal_id,
        tokens=tokens,
        rate_limit=args.rate_limit,
        daily_limit=args.daily_limit,
        search_rate_limit=args.search_rate_limit,
        retry_after=args.retry_after,
        latency_ms=args.latency_ms,
        search_lag_ms=args.search_lag_ms,
        shuffle_results=args.shuffle_results,
        email_upsert_partial=args.email_upsert_partial,
        faults=faults,
        seed=args.seed,
        request_log_size=args.request_log_size,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        seed_portal=args.seed_portal,
        auto_create_companies=args.auto_create_companies,
    )


def _tune_gc() -> None:
    """The server holds every record as small dicts that live for the whole run: freeze what is
    loaded and collect the young generation less often, so the cycle collector does not walk a
    portal of a million records again and again (it cost up to 60% of an association call)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from spokesync.sandbox.app import create_app

    try:
        config = build_config(args)
    except ValueError as exc:  # pydantic's ValidationError names the bad fault knob
        print(f"spokesync sandbox: invalid option: {exc}", file=sys.stderr)
        return 2
    if config.seed_portal:
        from spokesync.sandbox.seed import PortalSeed

        try:
            PortalSeed.parse(config.seed_portal)
        except (ValueError, OSError) as exc:
            print(f"spokesync sandbox: invalid --seed-portal: {exc}", file=sys.stderr)
            return 2
    app = create_app(config)
    _tune_gc()
    app.after_load = _tune_gc  # records a bulk load or seeding adds live as long
    print(
        json.dumps(
            {
                "sandbox": f"http://{args.host}:{args.port}",
                "db": str(config.db_path),
                "portalId": config.portal_id,
            }
        ),
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        # Keep idle connections longer than a client keeps them in its pool (httpx: 5 s).
        # With uvicorn's default of 5 s both sides time out together, and a request sent on
        # a connection the server is closing fails with a reset (seen as one ReadError and a
        # retry in a nightly sync). HubSpot's edge keeps idle connections far longer.
        timeout_keep_alive=75,
    )
    return 0
