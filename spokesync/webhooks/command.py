"""``spokesync webhooks serve|status``.

The client secret comes only from the environment: ``HUBSPOT_CLIENT_SECRET_<ENV>`` or
``HUBSPOT_CLIENT_SECRET`` (the HubSpot app's client secret, which signs its deliveries).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_CONFIG = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = sub.add_parser("serve", help="receive deliveries on POST /webhooks/hubspot")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8770)
    serve.add_argument(
        "--public-url",
        default=os.environ.get("SPOKESYNC_WEBHOOK_PUBLIC_URL"),
        help="the URL HubSpot calls, e.g. https://hooks.example.com/webhooks/hubspot (behind a "
        "proxy it differs from what this server sees; the signature covers it)",
    )
    serve.add_argument(
        "--inbox", type=Path, default=None, help="default: $SPOKESYNC_HOME/webhooks/<env>.sqlite"
    )
    serve.add_argument("--log-level", default="warning")
    status = sub.add_parser("status", help="events stored and requests refused, by reason")
    status.add_argument("--inbox", type=Path, default=None)


def client_secret(env: str, environ: dict[str, str] | None = None) -> str | None:
    e = os.environ if environ is None else environ
    return e.get(f"HUBSPOT_CLIENT_SECRET_{env.upper()}") or e.get("HUBSPOT_CLIENT_SECRET")


def run(args: argparse.Namespace) -> int:
    from spokesync.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"spokesync webhooks: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    inbox_path = args.inbox or settings.webhook_inbox
    from spokesync.webhooks.inbox import WebhookInbox

    if args.action == "status":
        with WebhookInbox(inbox_path) as inbox:
            print(json.dumps({"inbox": str(inbox_path), **inbox.counts()}))
        return 0

    secret = client_secret(settings.env)
    if not secret:
        print(
            f"spokesync webhooks: set HUBSPOT_CLIENT_SECRET_{settings.env.upper()} (or "
            "HUBSPOT_CLIENT_SECRET) to your HubSpot app's client secret: it signs the deliveries",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    import uvicorn

    from spokesync.webhooks.server import PATH, create_app

    inbox = WebhookInbox(inbox_path)
    app = create_app(inbox, secret, public_url=args.public_url)
    print(
        json.dumps({"webhooks": f"http://{args.host}:{args.port}{PATH}", "inbox": str(inbox_path)}),
        flush=True,
    )
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    finally:
        inbox.close()
    return 0
