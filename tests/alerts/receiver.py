"""A Slack-style webhook receiver on loopback for alert tests (port 0: a free port)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Records each POSTed JSON body; answers ``fail_next`` requests with ``fail_status``."""

    def __init__(self, port: int = 0) -> None:
        self.bodies: list[dict] = []
        self.attempts = 0
        self.fail_next = 0
        self.fail_status = 503
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                owner.attempts += 1
                if owner.fail_next > 0:
                    owner.fail_next -= 1
                    self.send_response(owner.fail_status)
                    self.end_headers()
                    self.wfile.write(b"try later")
                    return
                owner.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
